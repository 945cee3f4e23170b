//! Decisions of the compiled filters, by the interpreter of the BPF seccompiler emits, combined
//! with the kernel's precedence, against what the profile says.

use std::str::FromStr;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

use super::bpf::{evaluate, Call};
use super::compile::*;
use super::install::supported_flags;
use super::x32;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const KILL_THREAD: u32 = libc::SECCOMP_RET_KILL_THREAD;

/// The kernel's answer for several filters: the most restrictive action wins.
fn decide(filters: &Filters, arch: u32, nr: i64, args: [u64; 6]) -> u32 {
    let rank = |ret: u32| match ret & 0xffff_0000 {
        0x8000_0000 => 0, // KILL_PROCESS
        0x0000_0000 => 1, // KILL_THREAD
        0x0003_0000 => 2, // TRAP
        0x0005_0000 => 3, // ERRNO
        0x7fc0_0000 => 4, // USER_NOTIF
        0x7ff0_0000 => 5, // TRACE
        0x7ffc_0000 => 6, // LOG
        _ => 7,           // ALLOW
    };
    let call = Call {
        arch,
        nr: nr as u32,
        args,
    };
    filters
        .programs
        .iter()
        .chain(filters.notify.iter())
        .map(|p| evaluate(p, &call).expect("an instruction the interpreter knows"))
        .min_by_key(|r| rank(*r))
        .unwrap_or(ALLOW)
}

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | e as u32
}

fn profile(json: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(json).unwrap()
}

#[test]
fn mixed_actions_and_argument_filters() {
    let p = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "syscalls": [
            {"names": ["read", "write", "getpid", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS",
             "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ALLOW"}
        ]
    }));
    let f = compile(&p).unwrap();
    let nr = |name: &str| syscalls::Sysno::from_str(name).unwrap().id() as i64;
    let x = AUDIT_ARCH_X86_64;
    assert_eq!(decide(&f, x, nr("read"), [0; 6]), ALLOW);
    assert_eq!(decide(&f, x, nr("getcwd"), [0; 6]), errno(1));
    assert_eq!(decide(&f, x, nr("mkdir"), [0; 6]), errno(38));
    assert_eq!(decide(&f, x, nr("personality"), [0, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(decide(&f, x, nr("personality"), [8, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(
        decide(&f, x, nr("personality"), [4, 0, 0, 0, 0, 0]),
        errno(1)
    );
    // clone without namespace flags is allowed; CLONE_NEWUSER (0x10000000) is not.
    assert_eq!(decide(&f, x, nr("clone"), [0x11, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(
        decide(&f, x, nr("clone"), [0x1000_0011, 0, 0, 0, 0, 0]),
        errno(1)
    );
    // Conditions in one rule AND; the matching rule's action beats ALLOW.
    assert_eq!(
        decide(&f, x, nr("kill"), [1, 9, 0, 0, 0, 0]),
        libc::SECCOMP_RET_KILL_PROCESS
    );
    assert_eq!(decide(&f, x, nr("kill"), [2, 9, 0, 0, 0, 0]), ALLOW);
    // An ABI the profile does not list is killed, as libseccomp's bad-arch action.
    assert_eq!(decide(&f, AUDIT_ARCH_I386, 3, [0; 6]), KILL_THREAD);
    assert_eq!(
        decide(&f, x, (3 | X32_SYSCALL_BIT).into(), [0; 6]),
        KILL_THREAD
    );
    assert_eq!(decide(&f, 0xc000_00b7, 63, [0; 6]), KILL_THREAD);
}

#[test]
fn default_allow_with_denials_and_flags() {
    let p = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["uname"], "action": "SCMP_ACT_TRAP"},
            {"names": ["sync"], "action": "SCMP_ACT_LOG"}
        ]
    }));
    let f = compile(&p).unwrap();
    let nr = |name: &str| syscalls::Sysno::from_str(name).unwrap().id() as i64;
    let x = AUDIT_ARCH_X86_64;
    assert_eq!(f.flags, 2 | 4);
    assert_eq!(decide(&f, x, nr("read"), [0; 6]), ALLOW);
    assert_eq!(decide(&f, x, nr("getcwd"), [0; 6]), errno(libc::EPERM));
    assert_eq!(decide(&f, x, nr("uname"), [0; 6]), libc::SECCOMP_RET_TRAP);
    assert_eq!(decide(&f, x, nr("sync"), [0; 6]), libc::SECCOMP_RET_LOG);
}

#[test]
fn conditions_on_the_same_argument_mean_or() {
    // runc's seccomp_syscall_test1.json: process_vm_readv(100 | 9001, ...) is allowed.
    let p = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["process_vm_readv"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 100, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 9001, "op": "SCMP_CMP_EQ"}]},
            {"names": ["process_vm_writev"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 7, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 8, "op": "SCMP_CMP_EQ"}]},
            // One argument repeated makes every condition of the rule a rule of its own.
            {"names": ["kill"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    let f = compile(&p).unwrap();
    let nr = |name: &str| syscalls::Sysno::from_str(name).unwrap().id() as i64;
    let x = AUDIT_ARCH_X86_64;
    let eperm = errno(libc::EPERM);
    let readv = nr("process_vm_readv");
    assert_eq!(decide(&f, x, readv, [100, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(decide(&f, x, readv, [9001, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(decide(&f, x, readv, [101, 0, 0, 0, 0, 0]), eperm);
    // Different arguments still AND.
    let writev = nr("process_vm_writev");
    assert_eq!(decide(&f, x, writev, [7, 8, 0, 0, 0, 0]), ALLOW);
    assert_eq!(decide(&f, x, writev, [7, 0, 0, 0, 0, 0]), eperm);
    let kill = nr("kill");
    assert_eq!(decide(&f, x, kill, [5, 9, 0, 0, 0, 0]), ALLOW);
    assert_eq!(decide(&f, x, kill, [2, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(decide(&f, x, kill, [3, 3, 0, 0, 0, 0]), eperm);
    for args in interesting_args() {
        assert_eq!(
            decide(&f, x, readv, args),
            expected(&p, "process_vm_readv", args)
        );
    }
}

#[test]
fn calls_newer_than_the_profile_get_enosys_as_in_runc() {
    let x = AUDIT_ARCH_X86_64;
    let nr = |name: &str| syscalls::Sysno::from_str(name).unwrap().id() as i64;
    let f = compile(&profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["read", "openat", "unshare"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["setns"], "action": "SCMP_ACT_ERRNO"}]
    })))
    .unwrap();
    let enosys = errno(libc::ENOSYS);
    // setns (308) is the highest named: above it ENOSYS, below or at it the profile decides.
    assert_eq!(decide(&f, x, 1000, [0; 6]), enosys);
    assert_eq!(decide(&f, x, nr("clone3"), [0; 6]), enosys);
    assert_eq!(decide(&f, x, nr("setns"), [0; 6]), errno(libc::EPERM));
    assert_eq!(decide(&f, x, nr("mkdir"), [0; 6]), errno(libc::EPERM));
    assert_eq!(decide(&f, x, nr("read"), [0; 6]), ALLOW);
    // x32 calls against the x32 numbers.
    let x32_read = i64::from(X32_SYSCALL_BIT);
    assert_eq!(decide(&f, x, x32_read, [0; 6]), ALLOW);
    assert_eq!(decide(&f, x, x32_read + 1000, [0; 6]), enosys);
    // i386 calls against the i386 numbers: setns is 346 there, clone3 435, read 3.
    assert_eq!(decide(&f, AUDIT_ARCH_I386, 3, [0; 6]), ALLOW);
    assert_eq!(decide(&f, AUDIT_ARCH_I386, 346, [0; 6]), errno(libc::EPERM));
    assert_eq!(decide(&f, AUDIT_ARCH_I386, 435, [0; 6]), enosys);
    assert_eq!(decide(&f, AUDIT_ARCH_I386, 39, [0; 6]), errno(libc::EPERM));
    // No stub under a permissive default.
    let f = compile(&profile(
        serde_json::json!({"defaultAction": "SCMP_ACT_LOG",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"}]}),
    ))
    .unwrap();
    assert_eq!(decide(&f, x, 1000, [0; 6]), libc::SECCOMP_RET_LOG);
}

#[test]
fn bad_profiles_name_the_rule() {
    let err = |json| compile(&profile(json)).unwrap_err().to_string();
    assert!(err(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}
    ]}))
    .starts_with("linux.seccomp.syscalls[0].args[0].index: 6 is above 5"));
    assert!(err(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_NOTIFY"}
        ]})
    )
    .starts_with("linux.seccomp.listenerPath: is required"));
    assert!(err(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 5}
        ]})
    )
    .starts_with("linux.seccomp.syscalls[0].errnoRet: 5 is set, but only"));
    assert!(
        err(serde_json::json!({"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 5}))
            .starts_with("linux.seccomp.defaultErrnoRet: 5 is set")
    );
    assert!(err(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": [], "action": "SCMP_ACT_ERRNO"}
        ]})
    )
    .starts_with("linux.seccomp.syscalls[0].names: is empty"));
    assert!(
        err(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"}))
            .starts_with("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default")
    );
    assert!(err(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
        "syscalls": [{"names": ["mkdir", "sendmsg"], "action": "SCMP_ACT_NOTIFY"}]})
    )
    .starts_with(
        "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY cannot be used for the sendmsg syscall"
    ));
    // runc refuses write, with these words.
    assert!(err(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
        "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]})
    )
    .contains("SCMP_ACT_NOTIFY cannot be used for the write syscall"));
    assert!(
        err(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}))
            .starts_with("linux.seccomp.listenerMetadata: is set without listenerPath")
    );
    assert!(serde_json::from_value::<LinuxSeccomp>(
        serde_json::json!({"defaultAction": "SCMP_ACT_BOGUS"})
    )
    .is_err());
}

#[test]
fn the_feature_tables_match_what_compile_accepts() {
    for name in ACTIONS {
        let p = profile(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
            "syscalls": [{"names": ["mkdir"], "action": name}]}),
        );
        compile(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for name in OPERATORS {
        let p = profile(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": name}]}]}),
        );
        compile(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, _) in FLAGS {
        let p = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [name]}));
        compile(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// What the profile says for a call, straight from the JSON semantics: the most restrictive
/// action of the rules that match (names and every condition), else the default.
fn expected(p: &LinuxSeccomp, name: &str, args: [u64; 6]) -> u32 {
    expected_in(p, name, args, Abi::Native)
}

/// `expected` for the numbers of `abi` (on i386 arguments are 32 bits).
fn expected_in(p: &LinuxSeccomp, name: &str, args: [u64; 6], abi: Abi) -> u32 {
    use LinuxSeccompAction::*;
    use LinuxSeccompOperator::*;
    let value = |act: LinuxSeccompAction, errno: Option<u32>| {
        let data = errno.unwrap_or(libc::EPERM as u32);
        match act {
            ScmpActKill | ScmpActKillThread => libc::SECCOMP_RET_KILL_THREAD,
            ScmpActKillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            ScmpActTrap => libc::SECCOMP_RET_TRAP,
            ScmpActErrno => libc::SECCOMP_RET_ERRNO | data,
            ScmpActTrace => libc::SECCOMP_RET_TRACE | data,
            ScmpActLog => libc::SECCOMP_RET_LOG,
            ScmpActAllow => ALLOW,
            ScmpActNotify => RET_USER_NOTIF,
        }
    };
    let narrow = |v: u64| if abi == Abi::I386 { v & 0xffff_ffff } else { v };
    let holds = |a: &oci_spec::runtime::LinuxSeccompArg| {
        let x = narrow(args[a.index()]);
        let v = narrow(a.value());
        match a.op() {
            ScmpCmpNe => x != v,
            ScmpCmpLt => x < v,
            ScmpCmpLe => x <= v,
            ScmpCmpEq => x == v,
            ScmpCmpGe => x >= v,
            ScmpCmpGt => x > v,
            ScmpCmpMaskedEq => x & v == a.value_two().unwrap_or(0),
        }
    };
    // Conditions AND, unless two name the same argument: then each is a rule (runc's rule).
    let matches = |r: &&oci_spec::runtime::LinuxSyscall| {
        let conds: Vec<_> = r.args().iter().flatten().collect();
        let repeated = conds
            .iter()
            .enumerate()
            .any(|(k, c)| conds[..k].iter().any(|d| d.index() == c.index()));
        if repeated {
            conds.iter().any(|c| holds(c))
        } else {
            conds.iter().all(|c| holds(c))
        }
    };
    // runc's -ENOSYS stub: above the highest syscall the profile names, under a default that
    // is not permissive (and not ENOSYS already), the call gets ENOSYS.
    let number = |n: &str| -> Option<u32> {
        match abi {
            Abi::X32 => x32::SYSCALLS
                .iter()
                .find(|(name, _)| *name == n)
                .map(|(_, nr)| nr | X32_SYSCALL_BIT),
            Abi::Native => syscalls::Sysno::from_str(n).ok().map(|s| s.id() as u32),
            Abi::I386 => syscalls::x86::Sysno::from_str(n)
                .ok()
                .map(|s| s.id() as u32),
        }
    };
    let highest = p
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|r| r.names().iter().filter_map(|n| number(n)))
        .max();
    let permissive = matches!(p.default_action(), ScmpActAllow | ScmpActLog | ScmpActTrace);
    let unknown = !permissive
        && p.default_errno_ret() != Some(libc::ENOSYS as u32)
        && matches!((number(name), highest), (Some(nr), Some(max)) if nr > max);
    if unknown {
        return libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    }
    p.syscalls()
        .iter()
        .flatten()
        .filter(|r| r.names().iter().any(|n| n == name))
        .filter(matches)
        .map(|r| value(r.action(), r.errno_ret()))
        .min_by_key(|r| rank(*r))
        .unwrap_or_else(|| value(p.default_action(), p.default_errno_ret()))
}

fn rank(ret: u32) -> u32 {
    match ret & 0xffff_0000 {
        0x8000_0000 => 0,
        0x0000_0000 => 1,
        0x0003_0000 => 2,
        0x0005_0000 => 3,
        0x7fc0_0000 => 4,
        0x7ff0_0000 => 5,
        0x7ffc_0000 => 6,
        _ => 7,
    }
}

/// Argument vectors that reach both sides of every condition in the engines' profiles.
fn interesting_args() -> Vec<[u64; 6]> {
    let mut all = vec![[0; 6], [u64::MAX; 6], [1, 2, 3, 4, 5, 6]];
    for v in [
        8,
        16,
        131072,
        131080,
        0xffff_ffff,
        0x1000_0011,
        0x11,
        0x7e02_0000,
    ] {
        for i in 0..3 {
            let mut args = [0; 6];
            args[i] = v;
            all.push(args);
        }
    }
    all.push([16, 0, 9, 0, 0, 0]);
    all.push([16, 0, 0, 0, 0, 0]);
    all.push([2, 0, 9, 0, 0, 0]);
    all
}

fn engine_profile(name: &str) -> LinuxSeccomp {
    let text = match name {
        "podman" => include_str!("../../../integration/tests/fixtures/seccomp/podman.json"),
        _ => include_str!("../../../integration/tests/fixtures/seccomp/containerd.json"),
    };
    serde_json::from_str(text).unwrap()
}

#[test]
fn engine_profiles_decide_every_syscall_as_the_profile_says() {
    for engine in ["podman", "containerd"] {
        let p = engine_profile(engine);
        let f = compile(&p).unwrap();
        let args = interesting_args();
        for sysno in syscalls::Sysno::iter() {
            for a in &args {
                assert_eq!(
                    decide(&f, AUDIT_ARCH_X86_64, sysno.id() as i64, *a),
                    expected(&p, sysno.name(), *a),
                    "{engine}: {} {a:?}",
                    sysno.name()
                );
            }
        }
        // The profiles list x32: its numbers get the same answers.
        for (name, nr) in x32::SYSCALLS {
            for a in &args {
                assert_eq!(
                    decide(&f, AUDIT_ARCH_X86_64, i64::from(nr | X32_SYSCALL_BIT), *a),
                    expected_in(&p, name, *a, Abi::X32),
                    "{engine}: x32 {name} {a:?}"
                );
            }
        }
        // The profiles list x86 too: the i386 numbers get the same answers (the socket and
        // IPC calls, also reachable through socketcall/ipc, are checked in their own test).
        for sysno in syscalls::x86::Sysno::iter() {
            if ["socketcall", "ipc"].contains(&sysno.name()) {
                continue;
            }
            for a in &args {
                assert_eq!(
                    decide(&f, AUDIT_ARCH_I386, sysno.id() as i64, *a),
                    expected_in(&p, sysno.name(), *a, Abi::I386),
                    "{engine}: i386 {} {a:?}",
                    sysno.name()
                );
            }
        }
    }
}

#[test]
fn podman_profile_size() {
    let f = compile(&engine_profile("podman")).unwrap();
    let sizes: Vec<usize> = f.programs.iter().map(Vec::len).collect();
    // Printed for the note (cargo test -- --nocapture).
    println!(
        "podman default profile: {} filters, {:?} instructions, {} in all",
        sizes.len(),
        sizes,
        sizes.iter().sum::<usize>()
    );
    // Default (ERRNO 38), ERRNO 1 and ERRNO 22 (socket of NETLINK_AUDIT), for x86_64, x32 and
    // x86: the default bodies need two programs, each other action's fit one.
    assert!(sizes.len() <= 6);
    assert!(sizes.iter().all(|n| *n <= 4096));
}

#[test]
fn x32_rules_apply_only_when_the_profile_lists_x32() {
    let rules = serde_json::json!([
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["rt_sigaction"], "action": "SCMP_ACT_TRAP"},
        {"names": ["getpid", "read"], "action": "SCMP_ACT_ALLOW"}
    ]);
    let mkdir32 = 83 | X32_SYSCALL_BIT;
    let sigaction32 = 512 | X32_SYSCALL_BIT;
    let getpid32 = 39 | X32_SYSCALL_BIT;
    let x = AUDIT_ARCH_X86_64;

    let listed = compile(&profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
        "syscalls": rules
    })))
    .unwrap();
    assert_eq!(decide(&listed, x, mkdir32.into(), [0; 6]), errno(38));
    assert_eq!(
        decide(&listed, x, sigaction32.into(), [0; 6]),
        libc::SECCOMP_RET_TRAP
    );
    assert_eq!(decide(&listed, x, getpid32.into(), [0; 6]), ALLOW);
    // The x86_64 number of rt_sigaction (13) is a different syscall on x32 (x32 uses 512).
    assert_eq!(
        decide(&listed, x, (13 | X32_SYSCALL_BIT).into(), [0; 6]),
        errno(libc::EPERM)
    );
    assert_eq!(decide(&listed, x, 83, [0; 6]), errno(38));

    // Not listed: every x32 call is killed (libseccomp's bad-arch action).
    let native_only = compile(&profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": rules
    })))
    .unwrap();
    for nr in [mkdir32, sigaction32, getpid32] {
        assert_eq!(decide(&native_only, x, nr.into(), [0; 6]), KILL_THREAD);
    }
    assert_eq!(decide(&native_only, x, 39, [0; 6]), ALLOW);
}

#[test]
fn rules_errno_defaults_to_eperm_not_default_errno_ret() {
    let f = compile(&profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"}
        ]
    })))
    .unwrap();
    let nr = |name: &str| syscalls::Sysno::from_str(name).unwrap().id() as i64;
    let x = AUDIT_ARCH_X86_64;
    assert_eq!(decide(&f, x, nr("mkdir"), [0; 6]), errno(libc::EPERM));
    assert_eq!(decide(&f, x, nr("rmdir"), [0; 6]), errno(38));
}

#[test]
fn notify_rules_make_one_listener_filter() {
    let mut f = compile(&profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "listenerMetadata": "hello",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["chmod"], "action": "SCMP_ACT_NOTIFY",
             "args": [{"index": 1, "value": 0o777, "op": "SCMP_CMP_EQ"}]},
            {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getcwd"], "action": "SCMP_ACT_LOG"}
        ]
    })))
    .unwrap();
    assert_eq!(
        f.listener,
        Some(Listener {
            path: "/run/agent.sock".into(),
            metadata: Some("hello".into())
        })
    );
    assert_eq!(f.programs.len(), 2, "ERRNO and LOG; ALLOW needs none");
    assert!(f.notify.is_some());
    let nr = |name: &str| syscalls::Sysno::from_str(name).unwrap().id() as i64;
    let x = AUDIT_ARCH_X86_64;
    assert_eq!(decide(&f, x, nr("mkdir"), [0; 6]), RET_USER_NOTIF);
    // ERRNO beats USER_NOTIF, as in the kernel.
    assert_eq!(decide(&f, x, nr("mkdirat"), [0; 6]), errno(libc::EPERM));
    assert_eq!(
        decide(&f, x, nr("chmod"), [0, 0o777, 0, 0, 0, 0]),
        RET_USER_NOTIF
    );
    assert_eq!(decide(&f, x, nr("chmod"), [0, 0o755, 0, 0, 0, 0]), ALLOW);
    assert_eq!(decide(&f, x, nr("getcwd"), [0; 6]), libc::SECCOMP_RET_LOG);
    assert_eq!(decide(&f, x, nr("read"), [0; 6]), ALLOW);
    // The NOTIFY filter is the one installed with NEW_LISTENER; taking it leaves the rest.
    let order = f.install_order(f.notify.as_ref()).unwrap();
    assert_eq!(order.iter().filter(|(_, listener)| *listener).count(), 1);
    f.notify = None;
    assert_eq!(f.install_order(None).unwrap().len(), 2);
}

#[test]
fn a_filter_refusing_seccomp_itself_is_installed_last() {
    // The default filter (allow-list without seccomp) refuses seccomp(2): it must go in after
    // the ERRNO 38 filter, or that one could not be installed.
    let f = compile(&profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 39}
        ]
    })))
    .unwrap();
    let seccomp_call = Call {
        arch: AUDIT_ARCH_X86_64,
        nr: libc::SYS_seccomp as u32,
        args: [1, 0, 0, 0, 0, 0],
    };
    let order = f.install_order(None).unwrap();
    assert_eq!(order.len(), 3);
    for (program, _) in &order[..2] {
        assert_eq!(evaluate(program, &seccomp_call), Some(ALLOW));
    }
    // seccomp(2) is numbered above every call the profile names: runc's -ENOSYS stub.
    assert_eq!(
        evaluate(order[2].0, &seccomp_call),
        Some(errno(libc::ENOSYS))
    );

    // Two filters refusing it cannot both be installed: a clear error, not a half-filtered init.
    let f = compile(&profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["seccomp"], "action": "SCMP_ACT_TRAP"},
            {"names": ["seccomp"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]
    })))
    .unwrap();
    assert!(f
        .install_order(None)
        .unwrap_err()
        .to_string()
        .contains("refuses (or notifies) seccomp(2) in more than one"));
}

#[test]
fn supported_flags_are_known_flags() {
    let supported = supported_flags();
    assert!(supported.iter().all(|s| FLAGS.iter().any(|(n, _)| n == s)));
    // Every kernel brig runs on (>= 5.x) has TSYNC and LOG.
    assert!(supported.contains(&"SECCOMP_FILTER_FLAG_TSYNC"));
    assert!(supported.contains(&"SECCOMP_FILTER_FLAG_LOG"));
}

/// Escape 6 of issue 12: a deny-list profile bypassed by `int 0x80`.
#[test]
fn i386_calls_get_the_rules_when_x86_is_listed_and_are_killed_when_not() {
    const MKDIR_I386: i64 = 39;
    const MKDIRAT_I386: i64 = 296;
    const GETPID_I386: i64 = 20;
    let rules = serde_json::json!([
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 0xffff_ffff_u64 + 9, "op": "SCMP_CMP_EQ"}]}
    ]);
    let listed = compile(&profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": rules
    })))
    .unwrap();
    let i = AUDIT_ARCH_I386;
    assert_eq!(decide(&listed, i, MKDIR_I386, [0; 6]), errno(libc::EPERM));
    assert_eq!(decide(&listed, i, MKDIRAT_I386, [0; 6]), errno(libc::EPERM));
    assert_eq!(decide(&listed, i, GETPID_I386, [0; 6]), ALLOW);
    // The x86_64 number of mkdir (83) is another call on i386 (rmdir is 40; 83 is symlink).
    assert_eq!(decide(&listed, i, 83, [0; 6]), ALLOW);
    // Only the low 32 bits of an argument exist on i386.
    assert_eq!(
        decide(&listed, i, 136, [8, 0, 0, 0, 0, 0]),
        errno(libc::EPERM)
    );
    assert_eq!(decide(&listed, i, 136, [7, 0, 0, 0, 0, 0]), ALLOW);
    // x32 is not listed: killed.
    assert_eq!(
        decide(
            &listed,
            AUDIT_ARCH_X86_64,
            (83 | X32_SYSCALL_BIT).into(),
            [0; 6]
        ),
        KILL_THREAD
    );

    for archs in [
        serde_json::json!(null),
        serde_json::json!(["SCMP_ARCH_X86_64"]),
    ] {
        let native_only = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW", "architectures": archs, "syscalls": rules
        })))
        .unwrap();
        for nr in [MKDIR_I386, GETPID_I386] {
            assert_eq!(decide(&native_only, i, nr, [0; 6]), KILL_THREAD);
        }
        assert_eq!(decide(&native_only, AUDIT_ARCH_X86_64, 39, [0; 6]), ALLOW);
    }
    // Even a profile that allows everything kills an unlisted ABI, as libseccomp does.
    let allow_all = compile(&profile(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"}),
    ))
    .unwrap();
    assert_eq!(allow_all.programs.len(), 1);
    assert_eq!(decide(&allow_all, i, GETPID_I386, [0; 6]), KILL_THREAD);
    assert_eq!(decide(&allow_all, AUDIT_ARCH_X86_64, 39, [0; 6]), ALLOW);
}

#[test]
fn i386_socket_and_ipc_rules_reach_socketcall_and_ipc() {
    const SOCKETCALL: i64 = 102;
    const IPC: i64 = 117;
    let f = compile(&profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [
            {"names": ["socket", "shmget"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["connect"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 2, "value": 16, "op": "SCMP_CMP_EQ"}]}
        ]
    })))
    .unwrap();
    let i = AUDIT_ARCH_I386;
    let direct = |n: &str| syscalls::x86::Sysno::from_str(n).unwrap().id() as i64;
    assert_eq!(decide(&f, i, direct("socket"), [0; 6]), errno(libc::EPERM));
    assert_eq!(
        decide(&f, i, SOCKETCALL, [1, 0, 0, 0, 0, 0]),
        errno(libc::EPERM)
    );
    assert_eq!(decide(&f, i, SOCKETCALL, [2, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(decide(&f, i, direct("shmget"), [0; 6]), errno(libc::EPERM));
    assert_eq!(decide(&f, i, IPC, [23, 0, 0, 0, 0, 0]), errno(libc::EPERM));
    assert_eq!(decide(&f, i, IPC, [21, 0, 0, 0, 0, 0]), ALLOW);
    // Conditions cannot be checked through socketcall's pointer: only the direct call.
    assert_eq!(
        decide(&f, i, direct("connect"), [0, 0, 16, 0, 0, 0]),
        errno(libc::EPERM)
    );
    assert_eq!(decide(&f, i, SOCKETCALL, [3, 0, 16, 0, 0, 0]), ALLOW);
    // The engines' allow-lists let 32-bit programs open sockets both ways.
    for engine in ["podman", "containerd"] {
        let f = compile(&engine_profile(engine)).unwrap();
        assert_eq!(
            decide(&f, i, SOCKETCALL, [1, 0, 0, 0, 0, 0]),
            ALLOW,
            "{engine}"
        );
        assert_eq!(
            decide(&f, i, direct("socket"), [2, 1, 0, 0, 0, 0]),
            ALLOW,
            "{engine}"
        );
        assert_eq!(decide(&f, i, IPC, [23, 0, 0, 0, 0, 0]), ALLOW, "{engine}");
    }
}
