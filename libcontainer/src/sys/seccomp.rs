//! seccomp(2): install a filter, probe the flags the kernel takes.

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;
use seccompiler::sock_filter;

/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`: the call returns the filter's notification listener.
pub const FLAG_NEW_LISTENER: u32 = 8;

/// seccomp(SECCOMP_SET_MODE_FILTER, `flags`, `program`); the listener when `flags` asks for
/// one (`FLAG_NEW_LISTENER`). Allocates nothing: callers install filters that may deny brk.
pub fn set_mode_filter(flags: u32, program: &[sock_filter]) -> nix::Result<Option<OwnedFd>> {
    let len = u16::try_from(program.len()).map_err(|_| Errno::EINVAL)?;
    let prog = libc::sock_fprog {
        len,
        // seccompiler's sock_filter is #[repr(C)] with the kernel's layout.
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: the kernel only reads `prog` and the `len` instructions it points to, which
    // live across the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    let ret = Errno::result(ret)?;
    if flags & FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    let fd = i32::try_from(ret).map_err(|_| Errno::EBADF)?;
    // SAFETY: with NEW_LISTENER the return value is a new descriptor that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Whether the kernel takes filter `flags`: seccomp(2) with a null program fails with EFAULT
/// once the flags passed its checks, with EINVAL when one is unknown to it.
pub fn filter_flags_supported(flags: u32) -> bool {
    // SAFETY: a null program: the kernel fails before it reads or installs anything.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    Errno::result(ret) == Err(Errno::EFAULT)
}
