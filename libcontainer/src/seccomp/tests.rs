//! Decisions of the compiled filters, by a small interpreter of the BPF seccompiler emits,
//! combined with the kernel's precedence.

use super::*;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;

/// Run one program on (arch, nr, args): the instructions seccompiler emits.
fn run(program: &BpfProgram, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let data = |offset: u32| -> u32 {
        match offset {
            0 => nr,
            4 => arch,
            8..=8 => 0,
            16..=63 => {
                let arg = args[((offset - 16) / 8) as usize];
                if (offset - 16).is_multiple_of(8) {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
            other => panic!("load at {other}"),
        }
    };
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let insn = &program[pc];
        pc += 1;
        match insn.code {
            0x20 => acc = data(insn.k),    // LD W ABS
            0x54 => acc &= insn.k,         // ALU AND K
            0x05 => pc += insn.k as usize, // JA
            0x15 => pc += if acc == insn.k { insn.jt } else { insn.jf } as usize, // JEQ
            0x25 => pc += if acc > insn.k { insn.jt } else { insn.jf } as usize, // JGT
            0x35 => pc += if acc >= insn.k { insn.jt } else { insn.jf } as usize, // JGE
            0x06 => return insn.k,         // RET K
            other => panic!("instruction {other:#x}"),
        }
    }
}

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
    filters
        .programs
        .iter()
        .map(|p| run(p, arch, nr as u32, args))
        .min_by_key(|r| rank(*r))
        .unwrap()
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
    // Another ABI gets the default action, never a kill.
    assert_eq!(decide(&f, AUDIT_ARCH_I386, 3, [0; 6]), errno(1));
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
    .starts_with("linux.seccomp.syscalls[0].action"));
    assert!(serde_json::from_value::<LinuxSeccomp>(
        serde_json::json!({"defaultAction": "SCMP_ACT_BOGUS"})
    )
    .is_err());
}

#[test]
fn the_feature_tables_match_what_compile_accepts() {
    for name in ACTIONS {
        let p = profile(serde_json::json!({"defaultAction": name}));
        compile(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for name in OPERATORS {
        let p = profile(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": name}]}]}),
        );
        compile(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for name in FLAGS {
        let p = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [name]}));
        compile(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
