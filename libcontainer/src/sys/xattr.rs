//! setxattr(2) family: extended attributes on files brig creates (image layers carry
//! `user.*`, `trusted.*` and `security.capability`). nix does not wrap these calls.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

/// `fsetxattr(fd, name, value, 0)`: set an attribute on an open (not `O_PATH`) file.
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &CStr, value: &[u8]) -> nix::Result<()> {
    // SAFETY: name is NUL-terminated and value is valid for value.len() bytes during the call;
    // the kernel copies both.
    let ret = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// `lsetxattr(path, name, value, 0)`: set an attribute on `path` itself, never following a
/// symlink in its last component (for symlinks and device nodes, which cannot be opened).
pub fn lsetxattr(path: &CStr, name: &CStr, value: &[u8]) -> nix::Result<()> {
    // SAFETY: path and name are NUL-terminated and value is valid for value.len() bytes during
    // the call; the kernel copies all three.
    let ret = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// `llistxattr(path, buf, len)`: the NUL-separated names of `path`'s attributes (a symlink's
/// own), or with an empty `buf` the size they need.
pub fn llistxattr(path: &CStr, buf: &mut [u8]) -> nix::Result<usize> {
    // SAFETY: path is NUL-terminated; buf is valid for writes of buf.len() bytes and the
    // kernel writes at most that many.
    let ret = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    Errno::result(ret).map(|n| n as usize)
}

/// `lgetxattr(path, name, buf, len)`: the value of `path`'s attribute `name` (never following
/// a symlink in the last component), or with an empty `buf` the size it needs.
pub fn lgetxattr(path: &CStr, name: &CStr, buf: &mut [u8]) -> nix::Result<usize> {
    // SAFETY: path and name are NUL-terminated; buf is valid for writes of buf.len() bytes and
    // the kernel writes at most that many.
    let ret = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    Errno::result(ret).map(|n| n as usize)
}
