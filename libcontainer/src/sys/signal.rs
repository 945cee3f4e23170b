//! Signals by number: kill(2) with a raw signal (nix's `Signal` has no real-time signals, which
//! `kill ID SIGRTMIN+3` must reach), and resetting a disposition through the raw rt_sigaction
//! (glibc refuses to touch its reserved signals 32 and 33).

use nix::errno::Errno;

/// kill(2) with a raw signal number.
pub fn kill(pid: i32, signal: i32) -> nix::Result<()> {
    // SAFETY: kill with integer arguments only.
    Errno::result(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// Set `signal`'s disposition to SIG_DFL. Allocates nothing (runs just before execve).
pub fn reset_to_default(signal: i32) -> nix::Result<()> {
    // The kernel's struct sigaction: handler, flags, restorer, mask (one word).
    let default: [libc::c_ulong; 4] = [libc::SIG_DFL as libc::c_ulong, 0, 0, 0];
    // SAFETY: rt_sigaction reads a kernel sigaction of 8-byte mask size that lives across the
    // call; SIG_DFL runs no code; no old action is written.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            default.as_ptr(),
            std::ptr::null_mut::<u8>(),
            8,
        )
    };
    Errno::result(ret).map(drop)
}

/// What the C library calls `signal` ("Bad system call" for SIGSYS), or None.
pub fn describe(signal: i32) -> Option<String> {
    // SAFETY: strsignal returns a pointer to a NUL-terminated string that stays valid until the
    // next call; it is copied at once, and brig calls it from one thread only.
    unsafe {
        let ptr = libc::strsignal(signal);
        (!ptr.is_null()).then(|| std::ffi::CStr::from_ptr(ptr).to_string_lossy().into_owned())
    }
}
