//! keyctl(2) KEYCTL_JOIN_SESSION_KEYRING: a new session keyring for the container.

use std::ffi::CStr;

use nix::errno::Errno;

/// Join (creating it) the session keyring called `name`.
pub fn join_session_keyring(name: &CStr) -> nix::Result<()> {
    // SAFETY: keyctl reads the NUL-terminated name during the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING,
            name.as_ptr(),
        )
    };
    Errno::result(ret).map(drop)
}
