//! One `clone3` into every new namespace at once: the child returns like fork, in the new
//! namespaces, with no re-exec of brig. Joining an existing user namespace goes through a
//! short-lived launcher (see the diagram in `sync`).

use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::unistd::Pid;

use super::sync::{launcher_pair, FromLauncher};
use crate::config::Config;
use crate::error::{Context, Result};
use crate::namespaces::{self, JoinNamespace};
use crate::sys::clone::{clone, clone3, CLONE_INTO_CGROUP};
use crate::user_ns;

/// Which side of the clone we are on.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// Fork with `flags` (CLONE_NEW*), born straight into the cgroup v2 directory `cgroup` when
/// given (CLONE_INTO_CGROUP). The caller must be single-threaded: the child runs on a copy of
/// this address space until it execs. The flag says whether the child is in `cgroup` (false
/// when the kernel could not do it: the caller then moves it).
pub fn clone_with_flags(flags: u64, cgroup: Option<RawFd>) -> Result<(Forked, bool)> {
    match fork_with(flags, cgroup) {
        // Kernels before 5.7 reject CLONE_INTO_CGROUP (E2BIG: a shorter clone_args), before
        // 5.3 clone3 itself. The child's cgroup namespace (if any) is then rooted at our cgroup.
        Err(Errno::E2BIG | Errno::EINVAL | Errno::ENOSYS) if cgroup.is_some() => {
            fork_with(flags, None).map(|f| (f, false))
        }
        other => other.map(|f| (f, cgroup.is_some())),
    }
    .ctx(|| "clone the container init")
}

fn fork_with(flags: u64, cgroup: Option<RawFd>) -> std::result::Result<Forked, Errno> {
    let into_cgroup = if cgroup.is_some() {
        CLONE_INTO_CGROUP
    } else {
        0
    };
    // With CLONE_PARENT the exit signal is our own (and clone3 wants 0 here).
    let exit_signal = if flags & libc::CLONE_PARENT as u64 != 0 {
        0
    } else {
        libc::SIGCHLD as u64
    };
    let ret = match clone3(flags | into_cgroup, exit_signal, cgroup) {
        // Kernels before 5.3 (or a seccomp profile around us) lack clone3: fall back to clone.
        Err(Errno::ENOSYS) if flags & libc::CLONE_NEWTIME as u64 == 0 && cgroup.is_none() => {
            clone(flags)
        }
        other => other,
    }?;
    Ok(if ret == 0 {
        Forked::Child
    } else {
        Forked::Parent(Pid::from_raw(ret))
    })
}

/// Joining an existing user namespace: the container's new namespaces must belong to it (or
/// init could not mount in its own mount namespace), so they are made from inside it. A
/// launcher child joins it and clones init with CLONE_PARENT (init is still our child), sends
/// init's pid and exits. With config mappings, they must be the namespace's own.
pub fn clone_in_user_ns(
    userns: &JoinNamespace,
    config: &Config,
    flags: u64,
    cgroup: Option<RawFd>,
) -> Result<(Forked, bool)> {
    let (listener, reporter) = launcher_pair()?;
    match clone_with_flags(0, None)?.0 {
        Forked::Child => {
            drop(listener);
            let launched = namespaces::join(userns)
                .and_then(|()| user_ns::check_joined_maps(config))
                .and_then(|()| clone_with_flags(flags | libc::CLONE_PARENT as u64, cgroup));
            let report = match launched {
                Ok((Forked::Child, placed)) => {
                    drop(reporter);
                    return Ok((Forked::Child, placed));
                }
                Ok((Forked::Parent(pid), placed)) => FromLauncher::Launched {
                    pid: pid.as_raw(),
                    placed,
                },
                Err(err) => FromLauncher::Failed(err.to_string()),
            };
            reporter.report(&report);
            crate::sys::process::exit_now(0)
        }
        Forked::Parent(launcher) => {
            drop(reporter);
            let launched = listener.expect_launched();
            let _ = nix::sys::wait::waitpid(launcher, None);
            launched.map(|(pid, placed)| (Forked::Parent(pid), placed))
        }
    }
}
