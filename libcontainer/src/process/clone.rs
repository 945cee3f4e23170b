//! One `clone3` into every new namespace at once: the child returns like fork, in the new
//! namespaces, with no re-exec of brig.

use nix::errno::Errno;
use nix::unistd::Pid;

use crate::error::{Context, Result};

/// Which side of the clone we are on.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// Fork with `flags` (CLONE_NEW*). The caller must be single-threaded: the child runs on a copy
/// of this address space until it execs.
pub fn clone_with_flags(flags: u64) -> Result<Forked> {
    let mut args = libc::clone_args {
        flags,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: 0,
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
        Err(Errno::ENOSYS) if flags & libc::CLONE_NEWTIME as u64 == 0 => {
            // SAFETY: clone without CLONE_VM and a null stack is fork with namespace flags.
            Errno::result(unsafe {
                libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD as u64, 0, 0, 0, 0)
            })
        }
        other => other,
    }
    .ctx(|| "clone the container init")?;
    Ok(if ret == 0 {
        Forked::Child
    } else {
        Forked::Parent(Pid::from_raw(ret as i32))
    })
}
