//! One `clone3` into every new namespace at once: the child returns like fork, in the new
//! namespaces, with no re-exec of brig.

use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::unistd::Pid;

use crate::error::{Context, Result};

/// clone3's flag (1 << 33); libc's constant is an i32 that overflows.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

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
    match clone3(flags, cgroup) {
        // Kernels before 5.7 reject CLONE_INTO_CGROUP (E2BIG: a shorter clone_args), before
        // 5.3 clone3 itself. The child's cgroup namespace (if any) is then rooted at our cgroup.
        Err(Errno::E2BIG | Errno::EINVAL | Errno::ENOSYS) if cgroup.is_some() => {
            clone3(flags, None).map(|f| (f, false))
        }
        other => other.map(|f| (f, cgroup.is_some())),
    }
    .ctx(|| "clone the container init")
}

fn clone3(flags: u64, cgroup: Option<RawFd>) -> std::result::Result<Forked, Errno> {
    let into_cgroup = if cgroup.is_some() {
        CLONE_INTO_CGROUP
    } else {
        0
    };
    let mut args = libc::clone_args {
        flags: flags | into_cgroup,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        // With CLONE_PARENT the exit signal is our own (and clone3 wants 0 here).
        exit_signal: if flags & libc::CLONE_PARENT as u64 != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup.map_or(0, |fd| fd as u64),
    };
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork; `args` outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    let ret = match Errno::result(ret) {
        // Kernels before 5.3 (or a seccomp profile around us) lack clone3: fall back to clone.
        Err(Errno::ENOSYS) if flags & libc::CLONE_NEWTIME as u64 == 0 && cgroup.is_none() => {
            // SAFETY: clone without CLONE_VM and a null stack is fork with namespace flags.
            Errno::result(unsafe {
                libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD as u64, 0, 0, 0, 0)
            })
        }
        other => other,
    }?;
    Ok(if ret == 0 {
        Forked::Child
    } else {
        Forked::Parent(Pid::from_raw(ret as i32))
    })
}
