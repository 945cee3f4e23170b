//! The container's terminal: a pty made inside the container's own devpts, the slave as the
//! process's stdio and controlling terminal (and /dev/console), the master handed to the
//! caller over `--console-socket` or, for a foreground `run`, proxied to brig's own stdio.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{posix_openpt, ptsname_r, unlockpt};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Context, Error, Result};
use crate::process::sync::{Channel, Message};

nix::ioctl_write_ptr_bad!(set_window_size, libc::TIOCSWINSZ, libc::winsize);
nix::ioctl_read_bad!(get_window_size, libc::TIOCGWINSZ, libc::winsize);

/// Inside the container (init after pivot_root, or an exec'd process after joining the mount
/// namespace): make the pty, send the master to the parent, and make the slave our controlling
/// terminal and stdio. Init also makes it /dev/console.
pub fn setup_console(size: Option<(u16, u16)>, channel: &Channel, dev_console: bool) -> Result<()> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .ctx(|| "open /dev/ptmx")?;
    unlockpt(&master).ctx(|| "unlock the pty")?;
    let name = ptsname_r(&master).ctx(|| "name the pty")?;
    let slave = nix::fcntl::open(
        Path::new(&name),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open pty {name}"))?;
    if let Some((height, width)) = size {
        resize(slave.as_fd(), height, width)?;
    }
    // /dev/console is the container's terminal, as runc makes it (init only).
    if dev_console {
        let console = Path::new("/dev/console");
        if !console.exists() {
            std::fs::File::create(console).ctx(|| "create /dev/console")?;
        }
        mount(
            Some(Path::new(&name)),
            console,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| format!("bind {name} to /dev/console"))?;
    }
    channel.send_with_fd(&Message::Console, master.as_raw_fd())?;
    drop(master);
    nix::unistd::setsid().ctx(|| "start a session for the terminal")?;
    // SAFETY: TIOCSCTTY takes an integer argument.
    Errno::result(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) })
        .ctx(|| "make the pty the controlling terminal")?;
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors; the slave stays open until all three point at it.
        Errno::result(unsafe { libc::dup2(slave.as_raw_fd(), target) })
            .ctx(|| format!("dup the pty to fd {target}"))?;
    }
    Ok(())
}

pub fn resize(fd: BorrowedFd<'_>, height: u16, width: u16) -> Result<()> {
    let size = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize that lives across the call.
    unsafe { set_window_size(fd.as_raw_fd(), &size) }
        .map(drop)
        .ctx(|| "set the terminal size")
}

/// Hand the pty master to the engine: connect to its socket and send the fd with the pty name.
pub fn send_to_console_socket(socket: &Path, master: &OwnedFd) -> Result<()> {
    send_to_socket(
        socket,
        "console socket",
        b"/dev/ptmx",
        master,
        "the pty master",
    )
}

/// Connect to the unix socket at `socket` (the `kind` of socket, for messages) and hand it `fd`
/// (SCM_RIGHTS) with `name` as the message, as runc does for `--console-socket` and
/// `--pidfd-socket`.
pub fn send_to_socket(
    socket: &Path,
    kind: &str,
    name: &[u8],
    fd: &OwnedFd,
    what: &str,
) -> Result<()> {
    let stream =
        UnixStream::connect(socket).ctx(|| format!("connect to {kind} {}", socket.display()))?;
    crate::process::sync::send_fd(stream.as_raw_fd(), name, fd.as_raw_fd())
        .ctx(|| format!("send {what} to {}", socket.display()))
}

/// `--pidfd-socket`: a pidfd of `pid` for the caller.
pub fn send_pidfd(socket: &Path, pid: i32) -> Result<()> {
    // SAFETY: pidfd_open takes integers and returns a new descriptor we own.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = nix::errno::Errno::result(ret).ctx(|| format!("open a pidfd of {pid}"))?;
    // SAFETY: the kernel just gave us this descriptor.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as RawFd) };
    send_to_socket(socket, "pidfd socket", b"pidfd", &fd, "the pidfd")
}

/// Puts a terminal back the way it was.
struct RawMode {
    fd: RawFd,
    saved: Termios,
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: stdin outlives this guard.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = tcsetattr(fd, SetArg::TCSANOW, &self.saved);
    }
}

fn copy_size(from: RawFd, to: BorrowedFd<'_>) {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize we own.
    if unsafe { get_window_size(from, &mut size) }.is_ok() && size.ws_row > 0 {
        let _ = resize(to, size.ws_row, size.ws_col);
    }
}

/// Foreground `run` with a terminal: copy stdin → master and master → stdout, pass signals
/// (and window size changes) on, until init exits. Returns its exit code (128+N if killed).
pub fn proxy(master: OwnedFd, init: Pid, mask: &SigSet) -> Result<i32> {
    let stdin = std::io::stdin();
    let raw = match tcgetattr(stdin.as_fd()) {
        Ok(saved) => {
            let mut raw = saved.clone();
            cfmakeraw(&mut raw);
            tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)
                .ctx(|| "put the terminal in raw mode")?;
            copy_size(0, master.as_fd());
            Some(RawMode { fd: 0, saved })
        }
        Err(_) => None,
    };
    let signals = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .ctx(|| "open a signalfd")?;
    let mut stdin_open = true;
    let mut master_open = true;
    let mut exit = None;
    let mut buf = [0u8; 8192];
    while exit.is_none() || master_open {
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        let master_slot = master_open.then(|| {
            fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let stdin_slot = (stdin_open && exit.is_none()).then(|| {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        // Once init is gone, drain what is left in the pty and stop.
        let timeout = if exit.is_some() {
            PollTimeout::from(100u16)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(0) => break,
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).ctx(|| "wait for terminal input"),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        if ready[0] {
            while let Ok(Some(info)) = signals.read_signal() {
                let signal = Signal::try_from(info.ssi_signo as i32).ok();
                match signal {
                    Some(Signal::SIGCHLD) => loop {
                        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                            Ok(WaitStatus::Exited(pid, code)) if pid == init => exit = Some(code),
                            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == init => {
                                exit = Some(128 + sig as i32)
                            }
                            Ok(WaitStatus::StillAlive) | Err(_) => break,
                            Ok(_) => {}
                        }
                    },
                    Some(Signal::SIGWINCH) => copy_size(0, master.as_fd()),
                    Some(other) => {
                        let _ = nix::sys::signal::kill(init, other);
                    }
                    None => {}
                }
            }
        }
        if master_slot.is_some_and(|i| ready[i]) {
            match nix::unistd::read(&master, &mut buf) {
                Ok(0) | Err(Errno::EIO) => master_open = false,
                Ok(n) => {
                    let _ = write_all(1, &buf[..n]);
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e).ctx(|| "read the container's terminal"),
            }
        }
        if stdin_slot.is_some_and(|i| ready[i]) {
            match nix::unistd::read(&stdin, &mut buf) {
                Ok(0) => stdin_open = false,
                Ok(n) => {
                    let _ = write_all(master.as_raw_fd(), &buf[..n]);
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(_) => stdin_open = false,
            }
        }
    }
    drop(raw);
    exit.ok_or_else(|| Error::Other("the container's terminal closed before it exited".into()))
}

fn write_all(fd: RawFd, mut data: &[u8]) -> nix::Result<()> {
    // SAFETY: the descriptor is open for the duration of the call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
