//! Writes to the calling thread's procfs files that cannot be redirected. Inside the container
//! `/proc` is whatever the config and the rootfs made it: a volume over `/proc`, or a file bound
//! over `/proc/self/attr/exec`, turns a plain path write into a write to something else and the
//! setting silently does not apply. So `/proc` is opened as a handle checked to be the root of
//! a procfs, and every file below it is reached without crossing a mount or following a magic
//! link, then checked to be on procfs too.
//!
//! The handle lives only for the one call that uses it (close-on-exec, closed on return): it is
//! the `/proc` the caller can already see, and nothing of it stays in the process.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, Mode};
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

use crate::error::{Context, Error, Result};

/// The inode number of a procfs root (PROC_ROOT_INO in the kernel).
const PROC_ROOT_INO: u64 = 1;

/// `/proc`, checked to be the root of a procfs.
pub fn open_root() -> Result<OwnedFd> {
    let proc = open(
        "/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /proc")?;
    check_procfs(&proc, "/proc")?;
    let ino = fstat(&proc).ctx(|| "stat /proc")?.st_ino;
    if ino != PROC_ROOT_INO {
        return Err(Error::Other(format!(
            "/proc is not the root of a procfs (inode {ino}): refusing to write through it"
        )));
    }
    Ok(proc)
}

fn check_procfs(fd: &OwnedFd, what: &str) -> Result<()> {
    let fs = fstatfs(fd).ctx(|| format!("statfs {what}"))?;
    if fs.filesystem_type() != PROC_SUPER_MAGIC {
        return Err(Error::Other(format!(
            "{what} is not on procfs (filesystem type {:#x}): refusing to write through it",
            fs.filesystem_type().0
        )));
    }
    Ok(())
}

/// Open `path` (relative, e.g. `thread-self/attr/exec`) below the checked procfs `proc`: no
/// `..` out, no magic link, no mount crossed (a bind over the file is refused, EXDEV).
pub fn open_beneath(proc: &OwnedFd, path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    openat2(
        proc.as_fd(),
        Path::new(path),
        OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_XDEV
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        ),
    )
}

/// Whether `path` exists below the checked procfs.
pub fn exists(proc: &OwnedFd, path: &str) -> bool {
    open_beneath(proc, path, OFlag::O_PATH).is_ok()
}

/// Write `value` to `/proc/<path>` through `proc`, checking the file is procfs's own.
pub fn write(proc: &OwnedFd, path: &str, value: &[u8]) -> Result<()> {
    let what = || format!("/proc/{path}");
    let fd = open_beneath(proc, path, OFlag::O_WRONLY).map_err(|e| match e {
        Errno::EXDEV => Error::Other(format!(
            "/proc/{path} is covered by another mount: refusing to write through it"
        )),
        e => Error::Other(format!("open /proc/{path}: {}", e.desc().to_lowercase())),
    })?;
    check_procfs(&fd, &what())?;
    let written = nix::unistd::write(&fd, value).ctx(|| format!("write /proc/{path}"))?;
    if written != value.len() {
        return Err(Error::Other(format!("short write to /proc/{path}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_proc_is_procfs() {
        let proc = open_root().unwrap();
        assert!(exists(&proc, "thread-self/attr"));
        // A symlink to a magic link, or a way out, is not followed.
        assert!(open_beneath(&proc, "self/root/etc", OFlag::O_PATH).is_err());
        assert!(open_beneath(&proc, "../etc", OFlag::O_PATH).is_err());
    }

    #[test]
    fn a_file_off_procfs_is_refused() {
        let dir = nix::fcntl::open(
            std::env::temp_dir().as_path(),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        if fstatfs(&dir).unwrap().filesystem_type() != PROC_SUPER_MAGIC {
            let err = check_procfs(&dir, "/tmp").unwrap_err().to_string();
            assert!(err.contains("is not on procfs"), "{err}");
        }
    }
}

/// A process's identity from `/proc/<pid>/stat`: a pid alone may be reused.
pub mod stat {
    use std::fs;

    /// What /proc says about a process: enough to tell it apart from a later one with the same pid.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ProcStat {
        pub state: char,
        /// Field 22 of /proc/PID/stat: clock ticks after boot when the process started.
        pub start_time: u64,
    }

    pub fn proc_stat(pid: i32) -> Option<ProcStat> {
        let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_proc_stat(&text)
    }

    fn parse_proc_stat(text: &str) -> Option<ProcStat> {
        // comm (field 2) may hold spaces and parentheses: fields resume after the last ')'.
        let rest = &text[text.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace();
        let state = fields.next()?.chars().next()?;
        // rest starts at field 3 (state); start time is field 22.
        let start_time = fields.nth(18)?.parse().ok()?;
        Some(ProcStat { state, start_time })
    }

    /// True while `pid` is the very process that started at `start_time` and has not exited.
    pub fn process_alive(pid: i32, start_time: u64) -> bool {
        match proc_stat(pid) {
            Some(stat) => stat.start_time == start_time && stat.state != 'Z' && stat.state != 'X',
            None => false,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_stat_with_odd_comm() {
            let line =
                "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10";
            let stat = parse_proc_stat(line).unwrap();
            assert_eq!(stat.state, 'S');
            assert_eq!(stat.start_time, 98765);
        }
        #[test]
        fn own_process_is_alive_and_identity_is_checked() {
            let me = std::process::id() as i32;
            let stat = proc_stat(me).unwrap();
            assert!(process_alive(me, stat.start_time));
            assert!(!process_alive(me, stat.start_time + 1));
        }
    }
}
