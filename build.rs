// Records the git commit for `brig --version`.
fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=BRIG_COMMIT={commit}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    // Issue 18: relative relocations packed as DT_RELR (glibc 2.36, binutils 2.38). The
    // static-pie brig relocates itself at every start, twice per create/run/exec (the re-exec):
    // 4.6 KB of RELR to read rather than 370 KB of RELA. Binary 7.8 -> 7.4 MB, 4-9 % less CPU
    // per command (hack/bench.sh); ASLR stays. Linkers without it ignore the -z option.
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
