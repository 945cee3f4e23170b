//! Terminal ioctls nix does not wrap safely: the controlling terminal and the window size.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);
nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, libc::winsize);

/// TIOCSCTTY: make `tty` the controlling terminal of this process (a session leader).
pub fn set_controlling_terminal(tty: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument; `tty` is open for the call.
    Errno::result(unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSCTTY, 0) }).map(drop)
}

/// TIOCSWINSZ: set the window size of `tty` to `rows` x `cols`.
pub fn set_window_size(tty: BorrowedFd<'_>, rows: u16, cols: u16) -> nix::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize that lives across the call.
    unsafe { tiocswinsz(tty.as_raw_fd(), &size) }.map(drop)
}

/// TIOCGWINSZ: the window size of `tty` as (rows, cols).
pub fn window_size(tty: BorrowedFd<'_>) -> nix::Result<(u16, u16)> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize we own, which lives across the call.
    unsafe { tiocgwinsz(tty.as_raw_fd(), &mut size) }?;
    Ok((size.ws_row, size.ws_col))
}
