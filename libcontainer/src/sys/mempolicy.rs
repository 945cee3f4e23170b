//! set_mempolicy(2): the NUMA memory policy of this thread.

use nix::errno::Errno;

/// Set `mode` (with its flags) over the nodes of `mask` (bit N: node N; `None`: no nodes).
pub fn set_mempolicy(mode: i32, mask: Option<&[u64]>) -> nix::Result<()> {
    let (ptr, maxnode) = match mask {
        Some(mask) => (mask.as_ptr(), (mask.len() * 64) as libc::c_ulong),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: set_mempolicy reads `maxnode` bits from the mask, which lives across the call.
    let ret = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    Errno::result(ret).map(drop)
}
