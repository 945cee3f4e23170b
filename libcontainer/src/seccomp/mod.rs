//! `linux.seccomp` → BPF with seccompiler, installed with seccomp(2).
//!
//! seccompiler builds filters with one action on match. A profile mixes actions, so brig
//! compiles one filter per distinct action (its rules → that action, anything else → allow)
//! plus one for the default (any rule of the profile → allow, anything else → the default
//! action), and lets the kernel combine them: it runs every filter and takes the most
//! restrictive result (KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > TRACE > LOG > ALLOW), which
//! is the answer of the rule that matched, or the default where none did.

use std::collections::BTreeMap;
use std::str::FromStr;

use nix::errno::Errno;
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

use crate::error::{Context, Error, Result};

/// Compiled filters and the seccomp(2) flags to install them with.
#[derive(Debug, Clone)]
pub struct Filters {
    pub programs: Vec<BpfProgram>,
    pub flags: u32,
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
pub const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];
/// Filters check the native ABI; calls from others get the profile's default action.
#[cfg(target_arch = "x86_64")]
pub const ARCHS: &[&str] = &["SCMP_ARCH_X86_64"];
#[cfg(target_arch = "aarch64")]
pub const ARCHS: &[&str] = &["SCMP_ARCH_AARCH64"];

#[cfg(target_arch = "x86_64")]
const NATIVE: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const NATIVE: TargetArch = TargetArch::aarch64;

fn action(
    kind: LinuxSeccompAction,
    errno: Option<u32>,
    default_errno: u32,
    field: &str,
) -> Result<SeccompAction> {
    use LinuxSeccompAction::*;
    Ok(match kind {
        ScmpActKill | ScmpActKillThread => SeccompAction::KillThread,
        ScmpActKillProcess => SeccompAction::KillProcess,
        ScmpActTrap => SeccompAction::Trap,
        ScmpActErrno => SeccompAction::Errno(errno.unwrap_or(default_errno)),
        ScmpActTrace => SeccompAction::Trace(errno.unwrap_or(default_errno)),
        ScmpActLog => SeccompAction::Log,
        ScmpActAllow => SeccompAction::Allow,
        ScmpActNotify => {
            return Err(Error::config(
                field,
                "SCMP_ACT_NOTIFY is not supported by this version of brig yet",
            ))
        }
    })
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
    unconditional: std::collections::HashSet<i64>,
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

pub fn compile(profile: &LinuxSeccomp) -> Result<Filters> {
    let default_errno = profile.default_errno_ret().unwrap_or(libc::EPERM as u32);
    let default = action(
        profile.default_action(),
        profile.default_errno_ret(),
        default_errno,
        "linux.seccomp.defaultAction",
    )?;
    let mut any_rule = RuleSet::default();
    let mut by_action: Vec<(SeccompAction, RuleSet)> = Vec::new();
    for (i, syscall) in profile.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(
            syscall.action(),
            syscall.errno_ret(),
            default_errno,
            &format!("{field}.action"),
        )?;
        let conditions = syscall
            .args()
            .iter()
            .flatten()
            .enumerate()
            .map(|(j, arg)| condition(arg, &format!("{field}.args[{j}]")))
            .collect::<Result<Vec<_>>>()?;
        let rule = if conditions.is_empty() {
            None
        } else {
            Some(SeccompRule::new(conditions).map_err(|e| Error::config(&field, e.to_string()))?)
        };
        let slot = match by_action.iter().position(|(a, _)| *a == act) {
            Some(p) => p,
            None => {
                by_action.push((act, RuleSet::default()));
                by_action.len() - 1
            }
        };
        for name in syscall.names() {
            let Ok(sysno) = syscalls::Sysno::from_str(name) else {
                tracing::debug!(
                    "seccomp: syscall {name:?} is unknown on this architecture: skipped"
                );
                continue;
            };
            let nr = sysno.id() as i64;
            any_rule.add(nr, &rule);
            by_action[slot].1.add(nr, &rule);
        }
    }
    // A default of ALLOW needs no default filter: the per-action filters say everything.
    let mut programs = Vec::new();
    if default != SeccompAction::Allow {
        programs.push(program(
            any_rule.rules,
            default.clone(),
            SeccompAction::Allow,
            &default,
        )?);
    }
    for (act, set) in by_action {
        if act == SeccompAction::Allow || set.rules.is_empty() {
            continue;
        }
        programs.push(program(set.rules, SeccompAction::Allow, act, &default)?);
    }
    let mut flags = 0;
    for flag in profile.flags().iter().flatten() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 1,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => 2,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => 4,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 32,
        };
    }
    Ok(Filters { programs, flags })
}

/// One filter; a call from another ABI (x86 or x32 on x86_64, arm on aarch64) gets the
/// profile's default action instead of seccompiler's kill.
fn program(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: SeccompAction,
    matched: SeccompAction,
    default: &SeccompAction,
) -> Result<BpfProgram> {
    let filter = SeccompFilter::new(rules, mismatch, matched, NATIVE)
        .map_err(|e| Error::config("linux.seccomp", e.to_string()))?;
    let mut program: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| Error::config("linux.seccomp", format!("{e:?}")))?;
    // The prologue is: load arch; jump if native; return KILL_PROCESS.
    if let Some(ret) = program.get_mut(2) {
        if ret.code == 0x06 && ret.k == libc::SECCOMP_RET_KILL_PROCESS {
            ret.k = u32::from(default.clone());
        }
    }
    Ok(program)
}

/// Install every filter (seccomp(2), with the profile's flags).
pub fn install(filters: &Filters) -> Result<()> {
    for program in &filters.programs {
        let prog = libc::sock_fprog {
            len: program.len() as u16,
            filter: program.as_ptr() as *mut sock_filter as *mut libc::sock_filter,
        };
        // SAFETY: seccomp reads the program, which lives across the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                filters.flags,
                &prog as *const libc::sock_fprog,
            )
        };
        Errno::result(ret).ctx(|| "install the seccomp filter")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
