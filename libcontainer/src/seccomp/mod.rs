//! `linux.seccomp` → BPF with seccompiler, installed with seccomp(2); `SCMP_ACT_NOTIFY`
//! listeners handed to the seccomp agent.
//!
//! seccompiler builds filters with one action on match. A profile mixes actions, so brig
//! compiles one filter per distinct action (its rules → that action, anything else → allow)
//! plus one for the default (any rule of the profile → allow, anything else → the default
//! action), and lets the kernel combine them: it runs every filter and takes the most
//! restrictive result (KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > USER_NOTIF > TRACE > LOG >
//! ALLOW), which is the answer of the rule that matched, or the default where none did.
//!
//! ABIs: the filters check the native audit arch. On x86_64, x32 calls come with the same arch
//! and `__X32_SYSCALL_BIT` set in the number: when the profile lists `SCMP_ARCH_X32` its rules
//! are compiled for the x32 numbers too, into filters of their own (a guard after the arch
//! check lets the other ABI's calls through), so no filter nears the kernel's 4096
//! instructions. The NOTIFY filter keeps both ABIs in one filter: only one may have a
//! listener. What seccompiler cannot express (another audit arch: x86 on x86_64, arm on
//! aarch64; x32 when it is not listed) gets the profile's default action, never a kill of every
//! process that uses that ABI.

mod x32;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::str::FromStr;

use nix::errno::Errno;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

use crate::error::{Context, Error, Result};

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

/// The kernel refuses a filter longer than BPF_MAXINSNS; say so before it does.
fn check_length<T>(program: &[T]) -> Result<()> {
    if program.len() > 4096 {
        return Err(Error::config(
            "linux.seccomp",
            format!(
                "compiles to a filter of {} instructions, above the kernel's 4096",
                program.len()
            ),
        ));
    }
    Ok(())
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
const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;
const FLAG_NEW_LISTENER: u32 = 8;
const FLAG_TSYNC_ESRCH: u32 = 16;
const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// The `architectures` brig recognizes: the native ABI and its compat ABIs (see the module
/// comment for which of them the rules reach).
#[cfg(target_arch = "x86_64")]
pub const ARCHS: &[&str] = &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
#[cfg(target_arch = "aarch64")]
pub const ARCHS: &[&str] = &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"];

#[cfg(target_arch = "x86_64")]
const NATIVE: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const NATIVE: TargetArch = TargetArch::aarch64;
#[cfg(target_arch = "x86_64")]
pub(crate) const AUDIT_ARCH_NATIVE: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
pub(crate) const AUDIT_ARCH_NATIVE: u32 = 0xc000_00b7;

/// x32 syscall numbers are the x32 table's with this bit set.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const RET_USER_NOTIF: u32 = 0x7fc0_0000;
/// Stands for USER_NOTIF while seccompiler builds the NOTIFY filter (it has no such action).
const NOTIFY_STAND_IN: SeccompAction = SeccompAction::Log;

/// The syscall that carries the listener out of the filtered process: notifying it would wait
/// for an agent that cannot have the listener yet. (Calls after it wait until the agent has it.)
/// `write` too, as runc refuses it: brig writes to the parent and the exec FIFO after the
/// NOTIFY filter is in.
const NOTIFY_REFUSED: &[&str] = &["sendmsg", "write"];

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

fn condition(arg: &oci_spec::runtime::LinuxSeccompArg, field: &str) -> Result<SeccompCondition> {
    use LinuxSeccompOperator::*;
    if arg.index() > 5 {
        return Err(Error::config(
            format!("{field}.index"),
            format!("{} is above 5", arg.index()),
        ));
    }
    let (op, value) = match arg.op() {
        ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
        ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
        ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
        ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
        ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
        ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
        // libseccomp's form: (arg & value) == valueTwo.
        ScmpCmpMaskedEq => (
            SeccompCmpOp::MaskedEq(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    SeccompCondition::new(arg.index() as u8, SeccompCmpArgLen::Qword, op, value)
        .map_err(|e| Error::config(field, e.to_string()))
}

/// The rules of one filter, per syscall number. An unconditional rule (no args) matches every
/// call of the syscall, which seccompiler writes as an empty rule list.
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

/// The numbers a syscall name has in the ABIs the filters check.
fn numbers(name: &str, x32: Option<&HashMap<&str, u32>>) -> Vec<i64> {
    let mut nrs = Vec::with_capacity(2);
    if let Ok(sysno) = syscalls::Sysno::from_str(name) {
        nrs.push(sysno.id() as i64);
    }
    if let Some(nr) = x32.and_then(|table| table.get(name)) {
        nrs.push(i64::from(nr | X32_SYSCALL_BIT));
    }
    nrs
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
    let archs = profile.architectures().as_deref().unwrap_or(&[]);
    let x32_table: Option<HashMap<&str, u32>> = (NATIVE == TargetArch::x86_64
        && archs.contains(&Arch::ScmpArchX32))
    .then(|| x32::SYSCALLS.iter().copied().collect());

    let mut any_rule = RuleSet::default();
    let mut notify = RuleSet::default();
    let mut by_action: Vec<(SeccompAction, RuleSet)> = Vec::new();
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
        let conditions = syscall
            .args()
            .iter()
            .flatten()
            .enumerate()
            .map(|(j, arg)| condition(arg, &format!("{field}.args[{j}]")))
            .collect::<Result<Vec<_>>>()?;
        let indices: Vec<usize> = syscall.args().iter().flatten().map(|a| a.index()).collect();
        let rules: Vec<Option<SeccompRule>> = if conditions.is_empty() {
            vec![None]
        } else if (1..indices.len()).any(|k| indices[..k].contains(&indices[k])) {
            // Two conditions on one argument could never both hold: runc (libseccomp-golang)
            // then makes every condition a rule of its own, so they mean OR.
            conditions
                .into_iter()
                .map(|c| {
                    SeccompRule::new(vec![c])
                        .map(Some)
                        .map_err(|e| Error::config(&field, e.to_string()))
                })
                .collect::<Result<_>>()?
        } else {
            vec![Some(
                SeccompRule::new(conditions).map_err(|e| Error::config(&field, e.to_string()))?,
            )]
        };
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
                        by_action.push((act.clone(), RuleSet::default()));
                        by_action.len() - 1
                    }
                };
                &mut by_action[slot].1
            }
        };
        for name in syscall.names() {
            let nrs = numbers(name, x32_table.as_ref());
            if nrs.is_empty() {
                tracing::debug!(
                    "seccomp: syscall {name:?} is unknown on this architecture: skipped"
                );
            }
            for nr in nrs {
                for rule in &rules {
                    any_rule.add(nr, rule);
                    set.add(nr, rule);
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
    let (notify, listener) = if notify.rules.is_empty() {
        (None, None)
    } else {
        let Some(listener) = listener else {
            return Err(Error::config(
                "linux.seccomp.listenerPath",
                "is required: SCMP_ACT_NOTIFY rules need a seccomp agent to answer them",
            ));
        };
        let mut program = program(
            notify.rules,
            SeccompAction::Allow,
            NOTIFY_STAND_IN,
            &default,
            None,
        )?;
        for insn in program.iter_mut().skip(3) {
            if insn.code == BPF_RET_K && insn.k == u32::from(NOTIFY_STAND_IN) {
                insn.k = RET_USER_NOTIF;
            }
        }
        (Some(program), Some(listener))
    };

    let x32 = x32_table.is_some();
    // A default of ALLOW needs no default filter: the per-action filters say everything.
    let mut programs = Vec::new();
    if default != SeccompAction::Allow {
        let bit = i64::from(X32_SYSCALL_BIT);
        let highest = |x32: bool| {
            any_rule
                .rules
                .keys()
                .filter(|nr| (*nr & bit != 0) == x32)
                .max()
                .map(|nr| *nr as u32)
        };
        let stub = enosys_stub(
            &default,
            profile.default_errno_ret(),
            highest(false),
            highest(true),
        );
        // Every listed ABI gets its default filter, rules or not.
        for (abi, rules) in by_abi(any_rule.rules, x32) {
            let mut program = program(rules, default.clone(), SeccompAction::Allow, &default, abi)?;
            program.splice(0..0, stub.iter().cloned());
            check_length(&program)?;
            programs.push(program);
        }
    }
    for (act, set) in by_action {
        if act == SeccompAction::Allow {
            continue;
        }
        for (abi, rules) in by_abi(set.rules, x32) {
            if !rules.is_empty() {
                programs.push(program(
                    rules,
                    SeccompAction::Allow,
                    act.clone(),
                    &default,
                    abi,
                )?);
            }
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
/// syscall numbered above every one the profile names is one the profile could not know
/// about (newer than it, or none at all), and gets ENOSYS instead of the default errno, so
/// programs fall back as on an older kernel (glibc's clone3 → clone). Native calls are
/// compared with the highest native number, x32 calls with the highest x32 one (left to the
/// filter when the profile lists no x32 call). Prepended to the default filter; empty when
/// runc adds none (a permissive default, or ENOSYS already the default errno).
fn enosys_stub(
    default: &SeccompAction,
    default_errno: Option<u32>,
    max_native: Option<u32>,
    max_x32: Option<u32>,
) -> Vec<sock_filter> {
    let permissive = matches!(
        default,
        SeccompAction::Allow | SeccompAction::Log | SeccompAction::Trace(_)
    );
    if permissive || default_errno == Some(libc::ENOSYS as u32) {
        return Vec::new();
    }
    let insn = |code: u16, jt: u8, jf: u8, k: u32| sock_filter { code, jt, jf, k };
    const BPF_JGT_K: u16 = 0x25;
    const BPF_JEQ_K: u16 = 0x15;
    // 0 load arch; 1 not native → the filter (7); 2 load nr; 3 x32 bit → 5, else 4;
    // 4 native above → 6, else 7; 5 x32 above → 6, else 7; 6 ENOSYS; 7 the filter.
    vec![
        insn(BPF_LD_W_ABS, 0, 0, 4),
        insn(BPF_JEQ_K, 0, 5, AUDIT_ARCH_NATIVE),
        insn(BPF_LD_W_ABS, 0, 0, 0),
        insn(BPF_JSET_K, 1, 0, X32_SYSCALL_BIT),
        insn(BPF_JGT_K, 1, 2, max_native.unwrap_or(u32::MAX)),
        insn(BPF_JGT_K, 0, 1, max_x32.unwrap_or(u32::MAX)),
        insn(
            BPF_RET_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        ),
    ]
}

const BPF_RET_K: u16 = 0x06;
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JSET_K: u16 = 0x45;

/// The ABIs of the native audit arch that get filters of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abi {
    Native,
    X32,
}

type Rules = BTreeMap<i64, Vec<SeccompRule>>;

/// Rules split by ABI when x32 is listed (`None`: one filter sees both).
fn by_abi(rules: Rules, x32: bool) -> Vec<(Option<Abi>, Rules)> {
    if !x32 {
        return vec![(None, rules)];
    }
    let (x32, native): (Rules, Rules) = rules
        .into_iter()
        .partition(|(nr, _)| *nr & i64::from(X32_SYSCALL_BIT) != 0);
    vec![(Some(Abi::Native), native), (Some(Abi::X32), x32)]
}

/// One filter; a call from another audit arch gets the profile's default action instead of
/// seccompiler's kill. With `abi`, calls of the other ABI are let through (their own filters
/// judge them).
fn program(
    rules: Rules,
    mismatch: SeccompAction,
    matched: SeccompAction,
    default: &SeccompAction,
    abi: Option<Abi>,
) -> Result<BpfProgram> {
    let filter = SeccompFilter::new(rules, mismatch, matched, NATIVE)
        .map_err(|e| Error::config("linux.seccomp", e.to_string()))?;
    let mut program: BpfProgram = filter.try_into().map_err(|e| match e {
        seccompiler::BackendError::FilterTooLarge(n) => Error::config(
            "linux.seccomp",
            format!("compiles to a filter of {n} instructions, above the kernel's 4096"),
        ),
        other => Error::config("linux.seccomp", format!("{other:?}")),
    })?;
    // The prologue is: load arch; jump if native; return KILL_PROCESS.
    match program.get_mut(2) {
        Some(ret) if ret.code == BPF_RET_K && ret.k == libc::SECCOMP_RET_KILL_PROCESS => {
            ret.k = u32::from(default.clone())
        }
        _ => {
            return Err(Error::Other(
                "seccomp: unexpected filter prologue from seccompiler".into(),
            ))
        }
    }
    if let Some(abi) = abi {
        // After the arch check: load nr; if the x32 bit says "the other ABI", allow.
        let (jt, jf) = match abi {
            Abi::Native => (0, 1),
            Abi::X32 => (1, 0),
        };
        let guard = [
            sock_filter {
                code: BPF_LD_W_ABS,
                jt: 0,
                jf: 0,
                k: 0,
            },
            sock_filter {
                code: BPF_JSET_K,
                jt,
                jf,
                k: X32_SYSCALL_BIT,
            },
            sock_filter {
                code: BPF_RET_K,
                jt: 0,
                jf: 0,
                k: libc::SECCOMP_RET_ALLOW,
            },
        ];
        program.splice(3..3, guard);
        check_length(&program)?;
    }
    Ok(program)
}

/// The seccomp_data a filter reads: (arch, nr, args).
pub(crate) struct Call {
    pub arch: u32,
    pub nr: u32,
    pub args: [u64; 6],
}

/// Run `program` on `call` as the kernel would; `None` for an instruction seccompiler never
/// emits (or a jump out of the program).
pub(crate) fn evaluate(program: &[sock_filter], call: &Call) -> Option<u32> {
    let load = |offset: u32| -> Option<u32> {
        Some(match offset {
            0 => call.nr,
            4 => call.arch,
            8 | 12 => 0, // instruction pointer
            16..=63 => {
                let arg = call.args[((offset - 16) / 8) as usize];
                if (offset - 16).is_multiple_of(8) {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
            _ => return None,
        })
    };
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let insn = program.get(pc)?;
        pc += 1;
        let jump = |taken: bool| usize::from(if taken { insn.jt } else { insn.jf });
        match insn.code {
            0x20 => acc = load(insn.k)?,   // LD W ABS
            0x54 => acc &= insn.k,         // ALU AND K
            0x05 => pc += insn.k as usize, // JA
            0x15 => pc += jump(acc == insn.k),
            0x25 => pc += jump(acc > insn.k),
            0x35 => pc += jump(acc >= insn.k),
            0x45 => pc += jump(acc & insn.k != 0),
            BPF_RET_K => return Some(insn.k),
            _ => return None,
        }
    }
}

/// Whether a filter's answer lets the call through (LOG does, after logging it).
fn lets_through(ret: Option<u32>) -> bool {
    matches!(ret, Some(r) if r == libc::SECCOMP_RET_ALLOW || r == libc::SECCOMP_RET_LOG)
}

impl Filters {
    /// Install the filters without a listener (the NOTIFY one went in with `install_notify`).
    /// The last step before execve: once the first filter is in, nothing here may need a
    /// syscall the profile could deny, so nothing is allocated or freed (brk, mmap, munmap).
    pub fn install_programs(&self) -> Result<()> {
        let order = std::mem::ManuallyDrop::new(self.install_order(None)?);
        for (program, _) in order.iter() {
            self.install_one(program, false)?;
        }
        Ok(())
    }

    /// The filters in the order to install them, each with whether it is the NOTIFY one.
    /// Each filter applies from the moment it is in, to our next seccomp(2) as well: one that
    /// refuses seccomp(2) (an allow-list without it), or notifies it (the agent has no listener
    /// yet), must be the last one.
    fn install_order<'a>(
        &'a self,
        notify: Option<&'a BpfProgram>,
    ) -> Result<Vec<(&'a BpfProgram, bool)>> {
        let ours = Call {
            arch: AUDIT_ARCH_NATIVE,
            nr: libc::SYS_seccomp as u32,
            args: [
                libc::SECCOMP_SET_MODE_FILTER as u64,
                u64::from(self.flags),
                0,
                0,
                0,
                0,
            ],
        };
        let mut order: Vec<(&BpfProgram, bool)> =
            self.programs.iter().map(|p| (p, false)).collect();
        order.extend(notify.map(|p| (p, true)));
        order.sort_by_key(|(p, _)| !lets_through(evaluate(p, &ours)));
        let refusing = order
            .iter()
            .filter(|(p, _)| !lets_through(evaluate(p, &ours)))
            .count();
        if refusing > 1 {
            return Err(Error::config(
                "linux.seccomp",
                "the profile refuses (or notifies) seccomp(2) in more than one of its compiled \
                 filters: brig could not install them all",
            ));
        }
        Ok(order)
    }

    /// Install the NOTIFY filter alone (the rest waits for `install`): with no_new_privs the
    /// other filters go in just before execve, but the agent needs its listener during create.
    pub fn install_notify(&mut self) -> Result<Option<OwnedFd>> {
        match self.notify.take() {
            Some(program) => self.install_one(&program, true),
            None => Ok(None),
        }
    }

    /// seccomp(2) for one filter; the listener when `listener` asks for one.
    fn install_one(&self, program: &BpfProgram, listener: bool) -> Result<Option<OwnedFd>> {
        let mut flags = self.flags;
        if listener {
            flags |= FLAG_NEW_LISTENER;
            // TSYNC reports a failing thread by its id, the listener comes as the return value:
            // the kernel takes both only when TSYNC failures are plain ESRCH.
            if flags & FLAG_TSYNC != 0 {
                flags |= FLAG_TSYNC_ESRCH;
            }
        } else {
            // Only a listener filter can wait killably for its agent: the kernel refuses the
            // flag anywhere else.
            flags &= !FLAG_WAIT_KILLABLE_RECV;
        }
        let prog = libc::sock_fprog {
            len: program.len() as u16,
            filter: program.as_ptr() as *mut sock_filter as *mut libc::sock_filter,
        };
        // SAFETY: seccomp reads the program, which lives across the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &prog as *const libc::sock_fprog,
            )
        };
        let ret = Errno::result(ret).ctx(|| {
            if listener {
                "install the seccomp filter of the SCMP_ACT_NOTIFY rules"
            } else {
                "install the seccomp filter"
            }
        })?;
        if !listener {
            return Ok(None);
        }
        // SAFETY: with NEW_LISTENER the return value is a new descriptor that we own.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as i32) }))
    }
}

/// The profile flags this kernel takes: seccomp(2) with a null program fails with EFAULT once
/// the flags passed the kernel's checks, with EINVAL when one is unknown to it.
pub fn supported_flags() -> Vec<&'static str> {
    FLAGS
        .iter()
        .filter(|(_, bit)| {
            // WAIT_KILLABLE_RECV is only taken together with NEW_LISTENER.
            let probe = if *bit == FLAG_WAIT_KILLABLE_RECV {
                bit | FLAG_NEW_LISTENER
            } else {
                *bit
            };
            // SAFETY: a null program: the kernel fails before it reads or installs anything.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    probe,
                    std::ptr::null::<libc::sock_fprog>(),
                )
            };
            Errno::result(ret) == Err(Errno::EFAULT)
        })
        .map(|(name, _)| *name)
        .collect()
}

/// Hand the NOTIFY listener `fd` of `filters` to the seccomp agent at `listenerPath`: one
/// connection, the container process state as JSON with the descriptor attached
/// (SCM_RIGHTS), then close. `state` is the container's state JSON, `pid` the process filtered.
pub fn send_to_agent(
    filters: Option<&Filters>,
    fd: &OwnedFd,
    pid: i32,
    state: &[u8],
) -> Result<()> {
    let listener = filters.and_then(|f| f.listener.as_ref()).ok_or_else(|| {
        Error::Other("a seccomp listener came from a process whose profile has none".into())
    })?;
    let state: serde_json::Value = serde_json::from_slice(state)
        .map_err(|e| Error::Other(format!("decode the container state: {e}")))?;
    let mut message = serde_json::json!({
        "ociVersion": crate::config::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let Some(metadata) = &listener.metadata {
        message["metadata"] = serde_json::Value::String(metadata.clone());
    }
    let data = serde_json::to_vec(&message)
        .map_err(|e| Error::Other(format!("encode the container process state: {e}")))?;
    let path = &listener.path;
    let what = || {
        format!(
            "send the seccomp listener to the agent at {}",
            path.display()
        )
    };
    // runc's wording for an agent that is not there.
    let mut stream = UnixStream::connect(path)
        .ctx(|| format!("failed to connect with seccomp agent at {}", path.display()))?;
    let iov = [std::io::IoSlice::new(&data)];
    let fds = [fd.as_raw_fd()];
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .ctx(what)?;
    // A stream may take part of a long message: the rest follows without descriptors.
    stream.write_all(&data[sent..]).ctx(what)?;
    Ok(())
}

#[cfg(test)]
mod tests;
