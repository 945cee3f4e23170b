//! Handing a descriptor to the caller's unix socket, as runc does: the pty master to the
//! console socket, a pidfd of the container's process to the pidfd socket.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::error::{Context, Result};
use crate::sys::pidfd::pidfd_open;
use crate::sys::socket::send_fd;

/// Hand the pty master to the engine, with the name runc sends.
pub fn send_console(socket: &Path, master: &OwnedFd) -> Result<()> {
    send_to_socket(
        socket,
        "console socket",
        b"/dev/ptmx",
        master,
        "the pty master",
    )
}

/// A pidfd of `pid` for the caller.
pub fn send_pidfd(socket: &Path, pid: i32) -> Result<()> {
    let fd = pidfd_open(pid).ctx(|| format!("open a pidfd of {pid}"))?;
    send_to_socket(socket, "pidfd socket", b"pidfd", &fd, "the pidfd")
}

/// Connect to the unix socket at `socket` (the `kind` of socket, for messages) and send it
/// `fd` (SCM_RIGHTS) with `name` as the message.
fn send_to_socket(socket: &Path, kind: &str, name: &[u8], fd: &OwnedFd, what: &str) -> Result<()> {
    let stream =
        UnixStream::connect(socket).ctx(|| format!("connect to {kind} {}", socket.display()))?;
    send_fd(stream.as_fd(), name, fd.as_fd())
        .map(drop)
        .ctx(|| format!("send {what} to {}", socket.display()))
}
