//! clone3(2) and clone(2) without CLONE_VM: fork with namespace flags (and a cgroup).

use nix::errno::Errno;

/// The old clone(2) with `flags` and SIGCHLD, for kernels without clone3. Same contract.
pub fn clone(flags: u64) -> nix::Result<i32> {
    // SAFETY: clone without CLONE_VM and a null stack is fork with namespace flags.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD as u64, 0, 0, 0, 0) };
    Errno::result(ret).map(|pid| pid as i32)
}
