//! What keeps a container process from reaching back into brig (issue 12, escapes 1 and 3):
//! brig's processes are not dumpable until the user program runs, init drops the host's
//! /proc before anyone in the container can see it, and the working directory must be inside
//! the container's root.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::Mode;
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

use crate::error::{Context, Error, Result};

/// Make this process non-dumpable: its /proc entries (exe, fd, mem, ...) then belong to root
/// and need CAP_SYS_PTRACE to follow, so the container cannot reach brig's binary or its
/// descriptors (runc does the same, CVE-2016-9962). execve of the user program restores it.
pub fn undumpable() -> Result<()> {
    nix::sys::prctl::set_dumpable(false).ctx(|| "make the runtime process non-dumpable")
}

/// Mark every descriptor from `first` up close-on-exec, before any chdir into the container
/// (CVE-2024-21626). A kernel without close_range(2) leaves it to the last step before execve,
/// which has a fallback; the cwd check below is what stops the escape there.
pub fn close_on_exec_from(first: u32) {
    let _ = crate::sys::fd::close_range_cloexec(first);
}

/// After the chdir to `cwd`: the working directory must be reachable from our root. A cwd
/// reached through a descriptor of the host (`/proc/self/fd/N`) is not, and getcwd(2) says so
/// (ENOENT, "(unreachable)"); runc's check for CVE-2024-21626.
pub fn check_cwd(cwd: &Path) -> Result<()> {
    match nix::unistd::getcwd() {
        Ok(dir) if dir.is_absolute() => Ok(()),
        Ok(_) | Err(Errno::ENOENT) => Err(Error::config(
            "process.cwd",
            format!(
                "{} is outside the container's root (possible container breakout)",
                cwd.display()
            ),
        )),
        Err(e) => Err(e).ctx(|| format!("check the working directory {}", cwd.display())),
    }
}

/// The container's own /proc, if it is a procfs: init reopens the exec FIFO through it, so it
/// can drop the host's /proc before `Ready` (escape 1: the container could otherwise reach
/// init's handle on the host's /proc through /proc/1/fd).
pub fn container_proc() -> Option<OwnedFd> {
    let proc = open(
        "/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    // O_PATH descriptors support fstatfs.
    let fs = fstatfs(&proc).ok()?;
    (fs.filesystem_type() == PROC_SUPER_MAGIC).then_some(proc)
}

/// Reopen the `O_PATH` descriptor `fifo` for writing through `proc` (blocks until `start`
/// opens the other end), checking that what opened is that very FIFO: the container's /proc
/// is the container's to shape.
pub fn reopen_fifo(proc: BorrowedFd<'_>, fifo: BorrowedFd<'_>) -> Result<OwnedFd> {
    let fd = openat(
        proc,
        format!("self/fd/{}", fifo.as_raw_fd()).as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open the exec fifo")?;
    let want = nix::sys::stat::fstat(fifo).ctx(|| "fstat the exec fifo")?;
    let got = nix::sys::stat::fstat(fd.as_fd()).ctx(|| "fstat the reopened exec fifo")?;
    if (want.st_dev, want.st_ino) != (got.st_dev, got.st_ino) {
        return Err(Error::Other(format!(
            "reopening the exec fifo through /proc/self/fd/{} gave another file (fd {})",
            fifo.as_raw_fd(),
            fd.as_raw_fd()
        )));
    }
    Ok(fd)
}
