//! setdomainname(2) (nix wraps sethostname only).

use nix::errno::Errno;

/// Set the NIS domain name of this UTS namespace.
pub fn setdomainname(domain: &str) -> nix::Result<()> {
    // SAFETY: setdomainname reads `len` bytes of the buffer during the call.
    let ret = unsafe { libc::setdomainname(domain.as_ptr().cast(), domain.len()) };
    Errno::result(ret).map(drop)
}
