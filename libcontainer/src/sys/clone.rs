//! clone3(2) and clone(2) without CLONE_VM: fork with namespace flags (and a cgroup).

use std::os::fd::RawFd;

use nix::errno::Errno;

/// clone3's flag (1 << 33); libc's constant is an i32 that overflows.
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3 with `flags`, `exit_signal` and, with CLONE_INTO_CGROUP in `flags`, the cgroup v2
/// directory `cgroup`. Returns 0 in the child and the child's pid in the parent, as fork does.
/// Like fork, the caller must be single-threaded: the child runs on a copy of this address
/// space until it execs.
pub fn clone3(flags: u64, exit_signal: u64, cgroup: Option<RawFd>) -> nix::Result<i32> {
    let mut args = libc::clone_args {
        flags,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup.map_or(0, |fd| fd as u64),
    };
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork; `args` outlives
    // the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    Errno::result(ret).map(|pid| pid as i32)
}

/// The old clone(2) with `flags` and SIGCHLD, for kernels without clone3. Same contract.
pub fn clone(flags: u64) -> nix::Result<i32> {
    // SAFETY: clone without CLONE_VM and a null stack is fork with namespace flags.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD as u64, 0, 0, 0, 0) };
    Errno::result(ret).map(|pid| pid as i32)
}
