//! `linux.seccomp` → BPF programs: pure (no syscall, no I/O), validating the profile's fields.
//!
//! seccompiler builds filters with one action on match. A profile mixes actions, so brig
//! compiles one filter per distinct action (its rules → that action, anything else → allow)
//! plus one for the default (any rule of the profile → allow, anything else → the default
//! action), and lets the kernel combine them: it runs every filter and takes the most
//! restrictive result (KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > USER_NOTIF > TRACE > LOG >
//! ALLOW), which is the answer of the rule that matched, or the default where none did.
//!
//! ABIs, as libseccomp (runc, crun) treats them: the native one is always in; the profile's
//! `architectures` add x32 (same audit arch as x86_64, `__X32_SYSCALL_BIT` in the number) and
//! x86 (i386, `int 0x80`, its own numbers and audit arch). Each listed ABI gets the rules by its
//! own numbers; on i386 a rule without conditions on a socket or SysV IPC call also matches the
//! `socketcall`/`ipc` multiplexer with that sub-call (conditions cannot be checked there: the
//! arguments are behind a pointer). A call from an ABI the profile does not list is killed
//! (libseccomp's bad-arch action, SCMP_ACT_KILL = KILL_THREAD).
//!
//! Layout: seccompiler compiles each (action, ABI) rule set into a body; bodies of one action
//! share a program behind a dispatcher (arch, then the x32 bit) while they fit the kernel's 4096
//! instructions, so podman's profile stays a handful of filters. The first program's
//! dispatcher also kills the unlisted ABIs; the others let them through.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

use super::x32;
use crate::error::{Error, Result};

/// Compiled filters, the seccomp(2) flags to install them with, and where a listener goes.
#[derive(Debug, Clone)]
pub struct Filters {
    /// Filters without a listener.
    pub programs: Vec<BpfProgram>,
    /// The `SCMP_ACT_NOTIFY` rules (→ USER_NOTIF, anything else → allow): installed with
    /// `SECCOMP_FILTER_FLAG_NEW_LISTENER`, the only filter that may have a listener.
    pub notify: Option<BpfProgram>,
    /// The profile's flags (`SECCOMP_FILTER_FLAG_*`).
    pub flags: u32,
    /// `listenerPath` and `listenerMetadata`, set when there are NOTIFY rules.
    pub listener: Option<Listener>,
}

/// The seccomp agent's socket and the opaque metadata it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub path: PathBuf,
    pub metadata: Option<String>,
}

/// The kernel's BPF_MAXINSNS.
const MAX_INSNS: usize = 4096;

fn too_long(n: usize) -> Error {
    Error::config(
        "linux.seccomp",
        format!("compiles to a filter of {n} instructions, above the kernel's {MAX_INSNS}"),
    )
}

/// What `compile` accepts, by runtime-spec name (for `features`).
pub const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_LOG",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_NOTIFY",
];
pub const OPERATORS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];
/// The profile's `flags`. `SECCOMP_FILTER_FLAG_NEW_LISTENER` (and `TSYNC_ESRCH` with it) is
/// brig's own, set on the NOTIFY filter: not a flag a profile names.
pub const FLAGS: &[(&str, u32)] = &[
    ("SECCOMP_FILTER_FLAG_TSYNC", FLAG_TSYNC),
    ("SECCOMP_FILTER_FLAG_LOG", FLAG_LOG),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", FLAG_SPEC_ALLOW),
    (
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        FLAG_WAIT_KILLABLE_RECV,
    ),
];
pub(crate) const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;
pub(crate) const FLAG_TSYNC_ESRCH: u32 = 16;
pub(crate) const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// The `architectures` brig recognizes: the native ABI and its compat ABIs.
#[cfg(target_arch = "x86_64")]
pub const ARCHS: &[&str] = &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
#[cfg(target_arch = "aarch64")]
pub const ARCHS: &[&str] = &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"];

/// seccompiler compiles every body as the native arch; the dispatcher checks the real one.
#[cfg(target_arch = "x86_64")]
const NATIVE: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const NATIVE: TargetArch = TargetArch::aarch64;
#[cfg(target_arch = "x86_64")]
pub(crate) const AUDIT_ARCH_NATIVE: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
pub(crate) const AUDIT_ARCH_NATIVE: u32 = 0xc000_00b7;
/// AUDIT_ARCH_I386 (EM_386 | __AUDIT_ARCH_LE).
pub(crate) const AUDIT_ARCH_I386: u32 = 0x4000_0003;

/// x32 syscall numbers are the x32 table's with this bit set.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

pub(crate) const RET_USER_NOTIF: u32 = 0x7fc0_0000;
/// Stands for USER_NOTIF while seccompiler builds the NOTIFY filter (it has no such action).
const NOTIFY_STAND_IN: SeccompAction = SeccompAction::Log;

/// The syscall that carries the listener out of the filtered process: notifying it would wait
/// for an agent that cannot have the listener yet. (Calls after it wait until the agent has it.)
/// `write` too, as runc refuses it: brig writes to the parent and the exec FIFO after the
/// NOTIFY filter is in.
const NOTIFY_REFUSED: &[&str] = &["sendmsg", "write"];

/// An ABI a filter body is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Abi {
    Native,
    X32,
    I386,
}

const ABIS: [Abi; 3] = [Abi::Native, Abi::X32, Abi::I386];

impl Abi {
    fn index(self) -> usize {
        self as usize
    }

    /// The ABIs a profile's `architectures` puts in (the native one always, as libseccomp).
    fn listed(archs: &[Arch]) -> [bool; 3] {
        let x86_64 = cfg!(target_arch = "x86_64");
        [
            true,
            x86_64 && archs.contains(&Arch::ScmpArchX32),
            x86_64 && archs.contains(&Arch::ScmpArchX86),
        ]
    }
}

/// i386's socketcall(2) and ipc(2) and their sub-call numbers (linux/net.h, linux/ipc.h).
const SOCKETCALL: i64 = 102;
const IPC: i64 = 117;
const MULTIPLEXED: &[(&str, i64, u32)] = &[
    ("socket", SOCKETCALL, 1),
    ("bind", SOCKETCALL, 2),
    ("connect", SOCKETCALL, 3),
    ("listen", SOCKETCALL, 4),
    ("accept", SOCKETCALL, 5),
    ("getsockname", SOCKETCALL, 6),
    ("getpeername", SOCKETCALL, 7),
    ("socketpair", SOCKETCALL, 8),
    ("send", SOCKETCALL, 9),
    ("recv", SOCKETCALL, 10),
    ("sendto", SOCKETCALL, 11),
    ("recvfrom", SOCKETCALL, 12),
    ("shutdown", SOCKETCALL, 13),
    ("setsockopt", SOCKETCALL, 14),
    ("getsockopt", SOCKETCALL, 15),
    ("sendmsg", SOCKETCALL, 16),
    ("recvmsg", SOCKETCALL, 17),
    ("accept4", SOCKETCALL, 18),
    ("recvmmsg", SOCKETCALL, 19),
    ("sendmmsg", SOCKETCALL, 20),
    ("semop", IPC, 1),
    ("semget", IPC, 2),
    ("semctl", IPC, 3),
    ("semtimedop", IPC, 4),
    ("msgsnd", IPC, 11),
    ("msgrcv", IPC, 12),
    ("msgget", IPC, 13),
    ("msgctl", IPC, 14),
    ("shmat", IPC, 21),
    ("shmdt", IPC, 22),
    ("shmget", IPC, 23),
    ("shmctl", IPC, 24),
];

/// An action of the profile; NOTIFY is not one of seccompiler's.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    Filter(SeccompAction),
    Notify,
}

fn action(kind: LinuxSeccompAction, errno: Option<u32>, field: &str) -> Result<Action> {
    use LinuxSeccompAction::*;
    let with_errno = matches!(kind, ScmpActErrno | ScmpActTrace);
    if let Some(value) = errno {
        if !with_errno {
            return Err(Error::config(
                field,
                format!("{value} is set, but only SCMP_ACT_ERRNO and SCMP_ACT_TRACE return one"),
            ));
        }
        if value > 0xffff {
            return Err(Error::config(field, format!("{value} is above 65535")));
        }
    }
    // The spec's default for both is EPERM (not defaultErrnoRet), as libseccomp users do.
    let data = errno.unwrap_or(libc::EPERM as u32);
    Ok(Action::Filter(match kind {
        ScmpActKill | ScmpActKillThread => SeccompAction::KillThread,
        ScmpActKillProcess => SeccompAction::KillProcess,
        ScmpActTrap => SeccompAction::Trap,
        ScmpActErrno => SeccompAction::Errno(data),
        ScmpActTrace => SeccompAction::Trace(data),
        ScmpActLog => SeccompAction::Log,
        ScmpActAllow => SeccompAction::Allow,
        ScmpActNotify => return Ok(Action::Notify),
    }))
}

/// One condition; on i386 arguments are 32 bits and only their low half is compared (as
/// libseccomp does for a 32-bit ABI).
fn condition(
    arg: &oci_spec::runtime::LinuxSeccompArg,
    field: &str,
    abi: Abi,
) -> Result<SeccompCondition> {
    use LinuxSeccompOperator::*;
    if arg.index() > 5 {
        return Err(Error::config(
            format!("{field}.index"),
            format!("{} is above 5", arg.index()),
        ));
    }
    let narrow = |v: u64| if abi == Abi::I386 { v & 0xffff_ffff } else { v };
    let (op, value) = match arg.op() {
        ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
        ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
        ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
        ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
        ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
        ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
        // libseccomp's form: (arg & value) == valueTwo.
        ScmpCmpMaskedEq => (
            SeccompCmpOp::MaskedEq(narrow(arg.value())),
            arg.value_two().unwrap_or(0),
        ),
    };
    let len = if abi == Abi::I386 {
        SeccompCmpArgLen::Dword
    } else {
        SeccompCmpArgLen::Qword
    };
    SeccompCondition::new(arg.index() as u8, len, op, narrow(value))
        .map_err(|e| Error::config(field, e.to_string()))
}

/// The rules of one filter body, per syscall number. An unconditional rule (no args) matches
/// every call of the syscall, which seccompiler writes as an empty rule list.
#[derive(Default)]
struct RuleSet {
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    unconditional: HashSet<i64>,
}

impl RuleSet {
    fn add(&mut self, nr: i64, rule: &Option<SeccompRule>) {
        if self.unconditional.contains(&nr) {
            return;
        }
        match rule {
            None => {
                self.unconditional.insert(nr);
                self.rules.insert(nr, vec![]);
            }
            Some(rule) => self.rules.entry(nr).or_default().push(rule.clone()),
        }
    }
}

/// One rule set per ABI.
#[derive(Default)]
struct AbiRules([RuleSet; 3]);

impl AbiRules {
    fn is_empty(&self) -> bool {
        self.0.iter().all(|s| s.rules.is_empty())
    }
}

/// The number `name` has in `abi`, if it has one.
fn number(name: &str, abi: Abi) -> Option<i64> {
    match abi {
        Abi::Native => syscalls::Sysno::from_str(name).ok().map(|s| s.id() as i64),
        Abi::X32 => x32::SYSCALLS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, nr)| i64::from(nr | X32_SYSCALL_BIT)),
        #[cfg(target_arch = "x86_64")]
        Abi::I386 => syscalls::x86::Sysno::from_str(name)
            .ok()
            .map(|s| s.id() as i64),
        #[cfg(not(target_arch = "x86_64"))]
        Abi::I386 => None,
    }
}

/// The rules of one profile entry for one ABI: its conditions as rules (`None`: no condition).
fn rules_of(
    syscall: &oci_spec::runtime::LinuxSyscall,
    field: &str,
    abi: Abi,
) -> Result<Vec<Option<SeccompRule>>> {
    let conditions = syscall
        .args()
        .iter()
        .flatten()
        .enumerate()
        .map(|(j, arg)| condition(arg, &format!("{field}.args[{j}]"), abi))
        .collect::<Result<Vec<_>>>()?;
    let indices: Vec<usize> = syscall.args().iter().flatten().map(|a| a.index()).collect();
    if conditions.is_empty() {
        Ok(vec![None])
    } else if (1..indices.len()).any(|k| indices[..k].contains(&indices[k])) {
        // Two conditions on one argument could never both hold: runc (libseccomp-golang)
        // then makes every condition a rule of its own, so they mean OR.
        conditions
            .into_iter()
            .map(|c| {
                SeccompRule::new(vec![c])
                    .map(Some)
                    .map_err(|e| Error::config(field, e.to_string()))
            })
            .collect()
    } else {
        Ok(vec![Some(
            SeccompRule::new(conditions).map_err(|e| Error::config(field, e.to_string()))?,
        )])
    }
}

pub fn compile(profile: &LinuxSeccomp) -> Result<Filters> {
    let default = match action(
        profile.default_action(),
        profile.default_errno_ret(),
        "linux.seccomp.defaultErrnoRet",
    )? {
        Action::Filter(default) => default,
        Action::Notify => {
            return Err(Error::config(
                "linux.seccomp.defaultAction",
                "SCMP_ACT_NOTIFY cannot be the default action: brig's own calls before the \
                 agent has the listener would wait forever",
            ))
        }
    };
    let listed = Abi::listed(profile.architectures().as_deref().unwrap_or(&[]));
    let abis: Vec<Abi> = ABIS.into_iter().filter(|a| listed[a.index()]).collect();

    let mut any_rule = AbiRules::default();
    let mut notify = AbiRules::default();
    let mut by_action: Vec<(SeccompAction, AbiRules)> = Vec::new();
    for (i, syscall) in profile.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        if syscall.names().is_empty() {
            return Err(Error::config(
                format!("{field}.names"),
                "is empty: a rule names at least one syscall",
            ));
        }
        let act = action(
            syscall.action(),
            syscall.errno_ret(),
            &format!("{field}.errnoRet"),
        )?;
        // Validated whatever the ABIs listed.
        let native_rules = rules_of(syscall, &field, Abi::Native)?;
        let set = match &act {
            Action::Notify => {
                if let Some(name) = syscall
                    .names()
                    .iter()
                    .find(|n| NOTIFY_REFUSED.contains(&n.as_str()))
                {
                    return Err(Error::config(
                        format!("{field}.action"),
                        format!(
                            "SCMP_ACT_NOTIFY cannot be used for the {name} syscall: brig needs \
                             it to hand the listener to the agent, so it would wait for itself"
                        ),
                    ));
                }
                &mut notify
            }
            Action::Filter(act) => {
                let slot = match by_action.iter().position(|(a, _)| a == act) {
                    Some(p) => p,
                    None => {
                        by_action.push((act.clone(), AbiRules::default()));
                        by_action.len() - 1
                    }
                };
                &mut by_action[slot].1
            }
        };
        for &abi in &abis {
            let rules = match abi {
                Abi::I386 => rules_of(syscall, &field, abi)?,
                _ => native_rules.clone(),
            };
            for name in syscall.names() {
                let mut nrs: Vec<(i64, &[Option<SeccompRule>])> = Vec::new();
                if let Some(nr) = number(name, abi) {
                    nrs.push((nr, &rules));
                }
                // The multiplexed form: only a rule without conditions reaches it.
                let mux;
                if abi == Abi::I386 && rules == [None] {
                    if let Some((_, nr, sub)) = MULTIPLEXED.iter().find(|(n, ..)| n == name) {
                        let cond = SeccompCondition::new(
                            0,
                            SeccompCmpArgLen::Dword,
                            SeccompCmpOp::Eq,
                            u64::from(*sub),
                        )
                        .and_then(|c| SeccompRule::new(vec![c]))
                        .map_err(|e| Error::config(&field, e.to_string()))?;
                        mux = [Some(cond)];
                        nrs.push((*nr, &mux));
                    }
                }
                if nrs.is_empty() && abi == Abi::Native {
                    tracing::debug!(
                        "seccomp: syscall {name:?} is unknown on this architecture: skipped"
                    );
                }
                for (nr, rules) in nrs {
                    for rule in rules {
                        any_rule.0[abi.index()].add(nr, rule);
                        set.0[abi.index()].add(nr, rule);
                    }
                }
            }
        }
    }

    let listener = match (profile.listener_path(), profile.listener_metadata()) {
        (None, Some(_)) => {
            return Err(Error::config(
                "linux.seccomp.listenerMetadata",
                "is set without listenerPath",
            ))
        }
        (Some(path), _) if path.as_os_str().is_empty() => {
            return Err(Error::config("linux.seccomp.listenerPath", "is empty"))
        }
        (Some(path), metadata) => Some(Listener {
            path: path.clone(),
            metadata: metadata.clone(),
        }),
        (None, None) => None,
    };
    // The spec ignores listenerPath without NOTIFY rules; NOTIFY rules need somewhere to go.
    let (notify, listener) = if notify.is_empty() {
        (None, None)
    } else {
        let Some(listener) = listener else {
            return Err(Error::config(
                "linux.seccomp.listenerPath",
                "is required: SCMP_ACT_NOTIFY rules need a seccomp agent to answer them",
            ));
        };
        let mut parts = Vec::new();
        for (abi, set) in ABIS.into_iter().zip(notify.0) {
            if set.rules.is_empty() {
                continue;
            }
            let mut part = body(set.rules, SeccompAction::Allow, NOTIFY_STAND_IN)?;
            for insn in part.iter_mut() {
                if insn.code == BPF_RET_K && insn.k == u32::from(NOTIFY_STAND_IN) {
                    insn.k = RET_USER_NOTIF;
                }
            }
            parts.push((abi, part));
        }
        // Only one filter may have a listener: every ABI's NOTIFY rules in one program.
        let total = DISPATCH_LEN + parts.iter().map(|(_, p)| p.len()).sum::<usize>();
        let mut programs = pack(parts)?;
        let program = match (programs.pop(), programs.is_empty()) {
            (Some(p), true) => assemble(p, None),
            _ => return Err(too_long(total)),
        };
        (Some(program), Some(listener))
    };

    let mut programs: Vec<Vec<(Abi, BpfProgram)>> = Vec::new();
    // A default of ALLOW needs no default filter: the per-action filters say everything.
    if default != SeccompAction::Allow {
        let mut parts = Vec::new();
        // Every listed ABI gets its default body, rules or not.
        for (abi, set) in ABIS.into_iter().zip(any_rule.0) {
            if !listed[abi.index()] {
                continue;
            }
            let highest = set.rules.keys().max().map(|nr| *nr as u32);
            let mut part = body(set.rules, default.clone(), SeccompAction::Allow)?;
            part.splice(
                0..0,
                enosys_stub(&default, profile.default_errno_ret(), highest),
            );
            parts.push((abi, part));
        }
        programs.extend(pack(parts)?);
    }
    for (act, sets) in by_action {
        if act == SeccompAction::Allow {
            continue;
        }
        let mut parts = Vec::new();
        for (abi, set) in ABIS.into_iter().zip(sets.0) {
            if !set.rules.is_empty() {
                parts.push((abi, body(set.rules, SeccompAction::Allow, act.clone())?));
            }
        }
        programs.extend(pack(parts)?);
    }
    // The first program also kills the ABIs the profile does not list; with no program at all,
    // one that does only that.
    if programs.is_empty() {
        programs.push(Vec::new());
    }
    let programs: Vec<BpfProgram> = programs
        .into_iter()
        .enumerate()
        .map(|(i, parts)| assemble(parts, (i == 0).then_some(&listed)))
        .collect();
    for p in &programs {
        if p.len() > MAX_INSNS {
            return Err(too_long(p.len()));
        }
    }

    let mut flags = 0;
    for flag in profile.flags().iter().flatten() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        };
    }
    Ok(Filters {
        programs,
        notify,
        flags,
        listener,
    })
}

/// runc's -ENOSYS stub (libcontainer/seccomp/patchbpf): under a restrictive default, a
/// syscall numbered above every one the profile names (in this ABI) is one the profile could
/// not know about (newer than it, or none at all), and gets ENOSYS instead of the default
/// errno, so programs fall back as on an older kernel (glibc's clone3 → clone). Prepended to
/// an ABI's default body; empty when runc adds none (a permissive default, ENOSYS already the
/// default errno, or no rule in this ABI).
fn enosys_stub(
    default: &SeccompAction,
    default_errno: Option<u32>,
    highest: Option<u32>,
) -> Vec<sock_filter> {
    let permissive = matches!(
        default,
        SeccompAction::Allow | SeccompAction::Log | SeccompAction::Trace(_)
    );
    let Some(highest) = highest else {
        return Vec::new();
    };
    if permissive || default_errno == Some(libc::ENOSYS as u32) {
        return Vec::new();
    }
    vec![
        insn(BPF_LD_W_ABS, 0, 0, 0),
        insn(BPF_JGT_K, 0, 1, highest),
        insn(
            BPF_RET_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        ),
    ]
}

pub(crate) const BPF_RET_K: u16 = 0x06;
pub(crate) const BPF_LD_W_ABS: u16 = 0x20;
pub(crate) const BPF_JA: u16 = 0x05;
pub(crate) const BPF_JEQ_K: u16 = 0x15;
pub(crate) const BPF_JGT_K: u16 = 0x25;
pub(crate) const BPF_JSET_K: u16 = 0x45;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

type Rules = BTreeMap<i64, Vec<SeccompRule>>;

/// seccompiler's program for `rules` without its arch prologue: the dispatcher in front of it
/// checks the ABI.
fn body(rules: Rules, mismatch: SeccompAction, matched: SeccompAction) -> Result<BpfProgram> {
    let filter = SeccompFilter::new(rules, mismatch, matched, NATIVE)
        .map_err(|e| Error::config("linux.seccomp", e.to_string()))?;
    let mut program: BpfProgram = filter.try_into().map_err(|e| match e {
        seccompiler::BackendError::FilterTooLarge(n) => too_long(n),
        other => Error::config("linux.seccomp", format!("{other:?}")),
    })?;
    // The prologue is: load arch; jump if native; return KILL_PROCESS.
    match program.get(..3) {
        Some([load, check, kill])
            if load.code == BPF_LD_W_ABS
                && load.k == 4
                && check.code == BPF_JEQ_K
                && kill.code == BPF_RET_K =>
        {
            program.drain(..3);
            Ok(program)
        }
        _ => Err(Error::Other(
            "seccomp: unexpected filter prologue from seccompiler".into(),
        )),
    }
}

/// Bodies grouped into programs of at most the kernel's limit (with their dispatcher), in ABI
/// order.
fn pack(parts: Vec<(Abi, BpfProgram)>) -> Result<Vec<Vec<(Abi, BpfProgram)>>> {
    let mut programs: Vec<Vec<(Abi, BpfProgram)>> = Vec::new();
    let mut size = 0;
    for (abi, part) in parts {
        if DISPATCH_LEN + part.len() > MAX_INSNS {
            return Err(too_long(DISPATCH_LEN + part.len()));
        }
        match programs.last_mut() {
            Some(last) if size + part.len() <= MAX_INSNS => {
                size += part.len();
                last.push((abi, part));
            }
            _ => {
                size = DISPATCH_LEN + part.len();
                programs.push(vec![(abi, part)]);
            }
        }
    }
    Ok(programs)
}

const DISPATCH_LEN: usize = 10;

/// A program: the dispatcher, then the bodies. Each ABI's calls jump to its body; an ABI
/// without a body here is allowed (other programs judge it) unless `judge` (the ABIs listed)
/// says it is not listed: then it is killed, libseccomp's bad-arch action.
fn assemble(parts: Vec<(Abi, BpfProgram)>, judge: Option<&[bool; 3]>) -> BpfProgram {
    const RET_KILL: usize = 8;
    const RET_ALLOW: usize = 9;
    let mut start = [None; 3];
    let mut at = DISPATCH_LEN;
    for (abi, part) in &parts {
        start[abi.index()] = Some(at);
        at += part.len();
    }
    let target = |abi: Abi| -> usize {
        match start[abi.index()] {
            Some(s) => s,
            None if judge.is_some_and(|listed| !listed[abi.index()]) => RET_KILL,
            None => RET_ALLOW,
        }
    };
    // Another arch altogether: killed by the judge, as every unlisted ABI.
    let unknown = if judge.is_some() { RET_KILL } else { RET_ALLOW };
    // A jump from instruction `from` to `to` (offsets count from the next instruction).
    let ja = |from: usize, to: usize| insn(BPF_JA, 0, 0, (to - from - 1) as u32);
    let mut program = vec![
        insn(BPF_LD_W_ABS, 0, 0, 4),                              // 0: arch
        insn(BPF_JEQ_K, 0, 4, AUDIT_ARCH_NATIVE),                 // 1: native → 2, else 6
        insn(BPF_LD_W_ABS, 0, 0, 0),                              // 2: nr
        insn(BPF_JSET_K, 0, 1, X32_SYSCALL_BIT),                  // 3: x32 → 4, else 5
        ja(4, target(Abi::X32)),                                  // 4
        ja(5, target(Abi::Native)),                               // 5
        insn(BPF_JEQ_K, 0, (unknown - 7) as u8, AUDIT_ARCH_I386), // 6: i386 → 7, else unknown
        ja(7, target(Abi::I386)),                                 // 7
        insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_THREAD),     // 8
        insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),           // 9
    ];
    for (_, part) in parts {
        program.extend(part);
    }
    program
}
