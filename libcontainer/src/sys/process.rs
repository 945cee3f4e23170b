//! Leaving a cloned child: _exit(2) without the parent's atexit handlers or destructors.

/// End this process at once with `code`. A cloned child shares its parent's buffers and
/// handlers until it execs: it must not run them.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an integer and does not return; it touches no memory of ours.
    unsafe { libc::_exit(code) }
}
