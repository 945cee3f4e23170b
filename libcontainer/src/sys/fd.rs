//! Descriptor flags: close_range(2) with CLOSE_RANGE_CLOEXEC (nix has no close_range), the
//! per-descriptor fcntl fallback, and borrowing the standard descriptors by number.

use std::os::fd::BorrowedFd;

use nix::errno::Errno;

/// Mark every descriptor from `first` up close-on-exec, so none survives the next execve.
/// Async-signal-safe (one syscall, no allocation), so it may run between fork and exec.
pub fn close_range_cloexec(first: u32) -> nix::Result<()> {
    // SAFETY: close_range only changes descriptor flags; it touches no memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(ret).map(drop)
}

/// fcntl(F_SETFD, FD_CLOEXEC) on a descriptor number that may not be open (EBADF then).
/// Async-signal-safe.
pub fn set_cloexec(fd: i32) -> nix::Result<()> {
    // SAFETY: fcntl with integer arguments only; a descriptor not open gives EBADF.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) }).map(drop)
}

/// fcntl(F_GETFD): whether `fd` is close-on-exec (None when it is not open).
pub fn is_cloexec(fd: i32) -> Option<bool> {
    // SAFETY: fcntl with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    (flags >= 0).then_some(flags & libc::FD_CLOEXEC != 0)
}

/// Standard descriptor 0, 1 or 2, borrowed. None for any other number.
pub fn standard(fd: i32) -> Option<BorrowedFd<'static>> {
    match fd {
        // SAFETY: the standard descriptors are never closed by brig; a closed one gives EBADF
        // on use, not undefined behaviour, since no other file can be confused with it here.
        0..=2 => Some(unsafe { BorrowedFd::borrow_raw(fd) }),
        _ => None,
    }
}
