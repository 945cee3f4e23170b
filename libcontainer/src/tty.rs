//! The container's terminal: a pty made inside the container's own devpts, the slave as the
//! process's stdio and controlling terminal (and /dev/console); the master goes to the caller
//! (see `process::sync` and `container::handoff`) or, for a foreground `run`, is proxied to
//! brig's own stdio here.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{posix_openpt, ptsname_r, unlockpt};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Context, Error, Result};
use crate::sys::tty::{set_controlling_terminal, set_window_size, window_size};

/// A pty made inside the container: the master for the caller, the slave for the process.
pub struct Pty {
    pub master: OwnedFd,
    slave: OwnedFd,
}

/// Inside the container (init after pivot_root, or an exec'd process after joining the mount
/// namespace): make the pty. Init also makes the slave /dev/console.
pub fn open_pty(size: Option<(u16, u16)>, dev_console: bool) -> Result<Pty> {
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
        crate::rootfs::console::mount_console(slave.as_fd(), &name)?;
    }
    Ok(Pty {
        master: OwnedFd::from(master),
        slave,
    })
}

impl Pty {
    /// Once the master is handed over: close our copy, and make the slave our controlling
    /// terminal and stdio.
    pub fn into_stdio(self) -> Result<()> {
        drop(self.master);
        nix::unistd::setsid().ctx(|| "start a session for the terminal")?;
        set_controlling_terminal(self.slave.as_fd())
            .ctx(|| "make the pty the controlling terminal")?;
        nix::unistd::dup2_stdin(&self.slave).ctx(|| "dup the pty to fd 0")?;
        nix::unistd::dup2_stdout(&self.slave).ctx(|| "dup the pty to fd 1")?;
        nix::unistd::dup2_stderr(&self.slave).ctx(|| "dup the pty to fd 2")?;
        Ok(())
    }
}

pub fn resize(fd: BorrowedFd<'_>, height: u16, width: u16) -> Result<()> {
    set_window_size(fd, height, width).ctx(|| "set the terminal size")
}

/// Puts stdin's terminal back the way it was.
struct RawMode {
    saved: Termios,
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

fn copy_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    if let Ok((rows, cols)) = window_size(from) {
        if rows > 0 {
            let _ = resize(to, rows, cols);
        }
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
            copy_size(stdin.as_fd(), master.as_fd());
            Some(RawMode { saved })
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
                    Some(Signal::SIGWINCH) => copy_size(stdin.as_fd(), master.as_fd()),
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
                    let _ = write_all(std::io::stdout().as_fd(), &buf[..n]);
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e).ctx(|| "read the container's terminal"),
            }
        }
        if stdin_slot.is_some_and(|i| ready[i]) {
            match nix::unistd::read(&stdin, &mut buf) {
                Ok(0) => stdin_open = false,
                Ok(n) => {
                    let _ = write_all(master.as_fd(), &buf[..n]);
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(_) => stdin_open = false,
            }
        }
    }
    drop(raw);
    exit.ok_or_else(|| Error::Other("the container's terminal closed before it exited".into()))
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
