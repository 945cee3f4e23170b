//! Process setup, hooks and seccomp as runc 1.1.5 does them (its own suite's cases): the
//! working directory entered before the user switch, stdio owned by the user, hooks' cwd,
//! fds and filter, and runc's reading of seccomp argument rules.

use integration::*;
use serde_json::json;

#[test]
fn create_container_hooks_run_in_the_rootfs() {
    let mut b = Bundle::with_script("hookcwd", "true");
    let log = b.dir.join("hookcwd.log");
    b.edit(|c| {
        c["hooks"] = json!({"createContainer": [{"path": "/bin/sh",
            "args": ["sh", "-c", format!("pwd -P > {}", log.display())]}]});
    });
    ok(&b.run(&unique_id("hookcwd")));
    let rootfs = std::fs::canonicalize(b.rootfs()).unwrap();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().trim_end(),
        rootfs.to_str().unwrap()
    );
}

#[test]
fn start_container_hooks_run_under_the_filter_with_stdio_only() {
    // runc's seccomp.bats and seccomp-notify.bats: the hook is in the container's filter (a
    // KILL on mkdir kills it) and sees fds 0, 1, 2 (+ the one ls opens).
    let mut b = Bundle::with_script("hookscmp", "true");
    b.add_script(
        "/bin/fds.sh",
        "#!/bin/sh\nn=$(ls /proc/self/fd | wc -l); [ \"$n\" -eq 4 ] || { echo \"fds: $n\" >&2; exit 1; }\n",
    );
    b.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(true);
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"}]});
        c["hooks"] = json!({"startContainer": [{"path": "/bin/fds.sh"}]});
    });
    ok(&b.run(&unique_id("hookfds")));

    b.edit(|c| {
        c["hooks"] = json!({"startContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", "mkdir /tmp/foo"]}]});
    });
    let err = fails(&b.run(&unique_id("hookscmp")));
    assert!(err.contains("error running hook"), "{err}");
    assert!(err.contains("bad system call"), "{err}");
    assert!(!b.rootfs().join("tmp/foo").exists());
}

#[test]
fn seccomp_conditions_on_one_argument_mean_or() {
    // Two conditions on argument 0 of kill: pid 1 (sh itself) or pid 99999 is refused (runc makes each a
    // rule of its own); before, the two could never both hold and the rule never matched.
    let mut b = Bundle::with_script(
        "scmpor",
        "kill -0 1 2>&1; echo rc=$?; sleep 100 & kill -0 $! && echo child-ok; kill $!",
    );
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 99999, "op": "SCMP_CMP_EQ"}]}
        ]});
    });
    let out = ok(&b.run(&unique_id("scmpor")));
    assert!(out.contains("Function not implemented"), "{out}");
    assert!(out.contains("rc=1"), "{out}");
    assert!(out.contains("child-ok"), "{out}");
}

#[test]
fn seccomp_notify_on_write_is_refused() {
    let mut b = Bundle::with_script("scmpnotifywrite", "true");
    let agent = b.dir.join("agent.sock");
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": agent,
            "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]});
    });
    let err = fails(&b.brig(&["create", &unique_id("scmpnotifywrite")]));
    assert!(
        err.contains("SCMP_ACT_NOTIFY cannot be used for the write syscall"),
        "{err}"
    );
    assert!(b.containers().is_empty());
}

#[test]
fn the_working_directory_is_entered_before_the_user_switch() {
    // runc's cwd.bats: a cwd only root may enter works for another user, for run and exec.
    let mut b = Bundle::with_script("cwdroot", "pwd; id -u");
    std::fs::create_dir_all(b.rootfs().join("home/private")).unwrap();
    std::fs::set_permissions(
        b.rootfs().join("home/private"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    b.edit(|c| {
        c["process"]["cwd"] = json!("/home/private");
        c["process"]["user"] = json!({"uid": 42, "gid": 42});
        c["process"]["capabilities"] = json!({"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"],
            "effective": ["CAP_KILL"]});
    });
    assert_eq!(ok(&b.run(&unique_id("cwdroot"))), "/home/private\n42\n");

    // exec --user 0 without CAP_DAC_OVERRIDE into a cwd owned by uid 42, mode 700.
    std::os::unix::fs::chown(b.rootfs().join("home/private"), Some(42), Some(42)).unwrap();
    b.set_args(&["sleep", "100"]);
    let id = unique_id("cwdexec");
    ok(&b.brig(&["run", "-d", &id]));
    let out = ok(&b.brig(&["exec", "--user", "0", &id, "pwd"]));
    assert_eq!(out, "/home/private\n");
    ok(&b.brig(&["delete", "--force", &id]));
}

#[test]
fn the_terminal_belongs_to_the_process_user() {
    // runc's tty.bats "tty owner ({u,g}id != 0)": the owner is the user, the group devpts'.
    let mut b = Bundle::with_script("ttyowner", "stat -c %u:%g $(tty)");
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["user"] = json!({"uid": 1000, "gid": 100});
    });
    let out = b.run(&unique_id("ttyowner"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim_end().split(':').next(), Some("1000"));
}

#[test]
fn an_exec_process_file_without_user_runs_as_root() {
    let mut b = Bundle::with_script("execnouser", "sleep 100");
    b.edit(|c| c["process"]["user"] = json!({"uid": 1000, "gid": 1000}));
    let id = unique_id("execnouser");
    ok(&b.brig(&["run", "-d", &id]));
    let process = b.dir.join("process.json");
    std::fs::write(
        &process,
        json!({"args": ["sh", "-c", "id; grep -E '^Cap(Eff|Bnd)' /proc/self/status"],
            "cwd": "/", "env": ["PATH=/bin"]})
        .to_string(),
    )
    .unwrap();
    let out = ok(&b.brig(&["exec", "--process", process.to_str().unwrap(), &id]));
    assert!(out.starts_with("uid=0(root) gid=0(root)"), "{out}");
    // Without `capabilities` it gets the container's (runc), never every capability.
    let caps = ok(&b.brig(&[
        "exec",
        "--user",
        "0",
        &id,
        "grep",
        "-E",
        "^Cap(Eff|Bnd)",
        "/proc/self/status",
    ]));
    assert_eq!(
        out.lines().skip(1).collect::<Vec<_>>(),
        caps.lines().collect::<Vec<_>>()
    );
    ok(&b.brig(&["delete", "--force", &id]));
}

#[test]
fn a_host_file_given_as_stdio_is_not_handed_to_the_user() {
    let mut b = Bundle::with_script("stdiofile", "sleep 100");
    b.edit(|c| c["process"]["user"] = json!({"uid": 1000, "gid": 1000}));
    let id = unique_id("stdiofile");
    ok(&b.brig(&["run", "-d", &id]));
    let input = b.dir.join("input");
    std::fs::write(&input, "x").unwrap();
    let out = output_via_files(
        b.command(&["exec", &id, "id", "-u"])
            .stdin(std::fs::File::open(&input).unwrap()),
        &b.dir,
    );
    assert_eq!(ok(&out), "1000\n");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&input).unwrap().uid(), 0);
    ok(&b.brig(&["delete", "--force", &id]));
}

#[test]
fn a_syscall_newer_than_the_profile_gets_enosys() {
    // runc's seccomp.bats "-ENOSYS handling": under a default-deny profile (containerd's), a
    // syscall numbered above all the profile knows says ENOSYS, so programs fall back as on
    // an older kernel, instead of the default EPERM.
    let b = Bundle::with_script("enosys", "/enosys");
    let source = b.dir.join("enosys.c");
    std::fs::write(
        &source,
        "#include <stdio.h>\n#include <errno.h>\n#include <unistd.h>\n\
         int main(void) { long r = syscall(1000, 0, 0, 0); printf(\"%ld %d\\n\", r, errno); \
         return 0; }\n",
    )
    .unwrap();
    let status = std::process::Command::new("gcc")
        .args(["-static", "-o"])
        .arg(b.rootfs().join("enosys"))
        .arg(&source)
        .status()
        .unwrap();
    assert!(status.success(), "gcc -static");
    let profile: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/seccomp/containerd.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut b = b;
    b.edit(|c| c["linux"]["seccomp"] = profile);
    assert_eq!(
        ok(&b.run(&unique_id("enosys"))),
        format!("-1 {}\n", libc::ENOSYS)
    );
}
