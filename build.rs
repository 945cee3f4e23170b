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
    symbol_order();
}

/// Issue 18: the functions a container's start runs, first in `.text` (lld's
/// `--symbol-ordering-file`, hack/symbol-order.txt, made by hack/symbol-order.sh). The kernel
/// maps a file's pages 64 KB around each fault (fault-around), so code run once but spread
/// over the 6 MB of text made nearly all of it resident: peak RSS of `create` 5.4 -> ~2.5 MB,
/// fewer page faults. The list names symbols; one missing from a later build is only placed
/// among the rest. rustc links x86_64 Linux with its own lld since 1.90; another linker
/// (`-C link-self-contained=-linker`, `-fuse-ld=...` in RUSTFLAGS) or BRIG_NO_SYMBOL_ORDER=1
/// leaves the order alone.
fn symbol_order() {
    const LIST: &str = "hack/symbol-order.txt";
    println!("cargo:rerun-if-changed={LIST}");
    println!("cargo:rerun-if-env-changed=BRIG_NO_SYMBOL_ORDER");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    let own_lld = var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && !flags.contains("link-self-contained=-linker")
        && !flags.contains("fuse-ld")
        && !flags.contains("linker-flavor")
        && std::env::var_os("RUSTC_LINKER").is_none()
        && rustc_minor() >= 90;
    let list = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join(LIST);
    if own_lld && list.is_file() && std::env::var_os("BRIG_NO_SYMBOL_ORDER").is_none() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    // hack/symbol-order.sh: the link map, to name the functions of the stripped binary it traced.
    println!("cargo:rerun-if-env-changed=BRIG_LINK_MAP");
    if let Some(map) = std::env::var_os("BRIG_LINK_MAP") {
        let map = map.to_string_lossy();
        println!("cargo:rustc-link-arg-bins=-Wl,-Map={map}");
    }
}

/// The minor version of the rustc building us (0 when it cannot be told).
fn rustc_minor() -> u32 {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    std::process::Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.split_whitespace()
                .nth(1)?
                .split('.')
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
