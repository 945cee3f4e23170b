//! Seccomp profiles on real containers: what the process inside gets from each action.

use integration::*;
use serde_json::{json, Value};

fn with_profile(name: &str, script: &str, profile: Value) -> Bundle {
    let mut b = Bundle::with_script(name, script);
    b.edit(|c| c["linux"]["seccomp"] = profile);
    b
}

#[test]
fn errno_rules_deny_one_syscall_and_leave_the_rest() {
    let b = with_profile(
        "scmpmkdir",
        "mkdir /tmp/x 2>&1; echo rc=$?; echo still fine; touch /dev/shm/y && echo touch-ok",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]}),
    );
    let out = ok(&b.run(&unique_id("scmpmkdir")));
    assert!(out.contains("Function not implemented"), "{out}");
    assert!(out.contains("rc=1\nstill fine\ntouch-ok\n"), "{out}");
}

#[test]
fn argument_filters_allow_only_the_listed_values() {
    // personality(0) (PER_LINUX) allowed; PER_LINUX32 (8) falls to the default ERRNO.
    let b = with_profile(
        "scmparg",
        "linux32 true 2>&1; echo rc32=$?; uname -m >/dev/null && echo linux64-ok",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
        ]}),
    );
    let out = ok(&b.run(&unique_id("scmparg")));
    assert!(out.contains("rc32=1"), "{out}");
    assert!(out.contains("linux64-ok"), "{out}");
}

#[test]
fn kill_trap_and_log_actions() {
    for (action, expect) in [
        ("SCMP_ACT_KILL_PROCESS", "rc=159"),
        ("SCMP_ACT_TRAP", "rc=159"),
        ("SCMP_ACT_LOG", "rc=0"),
    ] {
        let b = with_profile(
            "scmpkill",
            "(sync); echo rc=$?",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["sync"], "action": action}]}),
        );
        let out = ok(&b.run(&unique_id("scmpkill")));
        assert!(out.contains(expect), "{action}: {out}");
    }
}

#[test]
fn a_default_deny_profile_without_no_new_privs_and_exec_gets_it_too() {
    // An allow-list profile (ERRNO by default), installed while init still has CAP_SYS_ADMIN.
    let allowed = [
        "read",
        "write",
        "openat",
        "open",
        "close",
        "fstat",
        "newfstatat",
        "stat",
        "lstat",
        "statx",
        "mmap",
        "munmap",
        "mprotect",
        "brk",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "ioctl",
        "access",
        "faccessat",
        "faccessat2",
        "execve",
        "exit",
        "exit_group",
        "getpid",
        "getppid",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "setgroups",
        "setresuid",
        "setresgid",
        "capget",
        "capset",
        "prctl",
        "chdir",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "getrandom",
        "wait4",
        "clone",
        "fork",
        "vfork",
        "dup2",
        "dup3",
        "fcntl",
        "getcwd",
        "lseek",
        "pipe2",
        "pipe",
        "umask",
        "close_range",
        "sendto",
        "sendmsg",
        "getdents64",
        "uname",
        "sysinfo",
        "nanosleep",
        "clock_nanosleep",
        "futex",
        "readlink",
        "readlinkat",
        "getpgrp",
        "setpgid",
        "getrlimit",
        "sched_getaffinity",
        "poll",
        "ppoll",
        "pselect6",
        "select",
        "kill",
        "tgkill",
        "gettid",
        "madvise",
        "writev",
        "readv",
    ];
    let mut b = with_profile(
        "scmpdeny",
        "echo started; mkdir /tmp/z 2>/dev/null || echo mkdir-denied; sleep 1000",
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "syscalls": [
            {"names": allowed.to_vec(), "action": "SCMP_ACT_ALLOW"}
        ]}),
    );
    b.edit(|c| c["process"]["noNewPrivileges"] = json!(false));
    let id = unique_id("scmpdeny");
    ok(&b.brig(&["run", "-d", &id]));
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Seccomp:") && l.ends_with('2')),
        "{status}"
    );
    let filters = status
        .lines()
        .find(|l| l.starts_with("Seccomp_filters:"))
        .unwrap();
    assert!(
        filters.ends_with('1'),
        "one filter for the default, allow rules need none: {filters}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("NoNewPrivs:") && l.ends_with('0')),
        "{status}"
    );
    // exec'd processes get the same profile.
    let out = b.brig(&[
        "exec",
        &id,
        "sh",
        "-c",
        "mkdir /tmp/q 2>/dev/null || echo exec-mkdir-denied",
    ]);
    assert_eq!(stdout(&out), "exec-mkdir-denied\n", "{}", stderr(&out));
}

#[test]
fn a_profile_blocking_getcwd_still_starts_the_container() {
    let b = with_profile(
        "scmpgetcwd",
        "echo started",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}),
    );
    assert_eq!(ok(&b.run(&unique_id("scmpgetcwd"))), "started\n");
}

#[test]
fn bad_profiles_fail_create_naming_the_rule() {
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "linux.seccomp.syscalls[0].args[0].index: 7 is above 5",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOPE"}]}),
            "unknown variant",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BAD"}]}]}),
            "unknown variant",
        ),
    ];
    for (profile, message) in cases {
        let b = with_profile("scmpbad", "true", profile.clone());
        let err = fails(&b.brig(&["create", &unique_id("scmpbad")]));
        assert!(err.contains(message), "{profile}: {err}");
        assert!(b.containers().is_empty());
    }
}
