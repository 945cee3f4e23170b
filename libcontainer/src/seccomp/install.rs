//! Installing compiled filters with seccomp(2), and which filter flags the kernel takes.

use seccompiler::BpfProgram;
use std::os::fd::OwnedFd;

use super::bpf::{evaluate, lets_through, Call};
use super::compile::{
    Filters, AUDIT_ARCH_NATIVE, FLAGS, FLAG_TSYNC, FLAG_TSYNC_ESRCH, FLAG_WAIT_KILLABLE_RECV,
};
use crate::error::{Context, Error, Result};
use crate::sys;

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
    pub(super) fn install_order<'a>(
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
            flags |= sys::seccomp::FLAG_NEW_LISTENER;
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
        let listener_fd = sys::seccomp::set_mode_filter(flags, program).ctx(|| {
            if listener {
                "install the seccomp filter of the SCMP_ACT_NOTIFY rules"
            } else {
                "install the seccomp filter"
            }
        })?;
        Ok(listener_fd)
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
                bit | sys::seccomp::FLAG_NEW_LISTENER
            } else {
                *bit
            };
            sys::seccomp::filter_flags_supported(probe)
        })
        .map(|(name, _)| *name)
        .collect()
}
