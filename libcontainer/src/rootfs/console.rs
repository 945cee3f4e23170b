//! `/dev/console`: the container's pty bound over it. The target is made and opened without
//! following a symlink and the mount goes by descriptor, so a rootfs whose `/dev/console` is,
//! or is swapped for, a symlink cannot send the pty over another file (CVE-2025-52565); what
//! is mounted is checked to be the pty that was opened, before and after.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, makedev, Mode};
use nix::sys::statfs::{fstatfs, DEVPTS_SUPER_MAGIC};

use super::resolve::open_in_root;
use crate::error::{Context, Error, Result};
use crate::sys;

/// The major number of Unix98 pty slaves (UNIX98_PTY_SLAVE_MAJOR).
const PTY_SLAVE_MAJOR: u64 = 136;

/// Bind the pty slave `pty` (named `name`, `/dev/pts/N`) over the container's `/dev/console`.
/// Runs in init after the switch to the container's root.
pub fn mount_console(pty: BorrowedFd<'_>, name: &str) -> Result<()> {
    let rdev = check_pty(pty, name)?;
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open the container's root")?;
    let dev = open_in_root(
        root.as_fd(),
        Path::new("/dev"),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
    )
    .ctx(|| "open /dev in the container")?;
    let target = match open_console(dev.as_fd()) {
        Err(Errno::ENOENT) => {
            match openat(
                dev.as_fd(),
                "console",
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_WRONLY
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o666),
            ) {
                Ok(_) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e).ctx(|| "create /dev/console"),
            }
            open_console(dev.as_fd())
        }
        other => other,
    }
    .map_err(|e| match e {
        Errno::ELOOP => Error::Other(
            "/dev/console is a symlink: refusing to mount the console through it".into(),
        ),
        e => Error::Other(format!("open /dev/console: {}", e.desc().to_lowercase())),
    })?;
    let kind = fstat(&target).ctx(|| "stat /dev/console")?.st_mode & libc::S_IFMT;
    if kind != libc::S_IFREG && kind != libc::S_IFCHR {
        return Err(Error::Other(format!(
            "/dev/console is not a file or a device (mode {kind:o}): refusing to mount the console over it"
        )));
    }
    let tree = sys::mount::open_tree_fd(pty).ctx(|| format!("clone {name} for /dev/console"))?;
    sys::mount::move_mount(tree.as_fd(), target.as_fd())
        .ctx(|| format!("bind {name} to /dev/console"))?;
    // What the container now finds at /dev/console must be our pty.
    let mounted = open_console(dev.as_fd()).ctx(|| "open /dev/console after mounting it")?;
    let now = fstat(&mounted).ctx(|| "stat /dev/console")?;
    if now.st_mode & libc::S_IFMT != libc::S_IFCHR || now.st_rdev != rdev {
        return Err(Error::Other(
            "/dev/console is not the container's pty after mounting it".into(),
        ));
    }
    Ok(())
}

/// `console` in `dev`, without following a symlink anywhere (ELOOP for one).
fn open_console(dev: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    openat2(
        dev,
        "console",
        OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS),
    )
}

/// `pty` must be the slave `/dev/pts/N` on a devpts: a char device 136:N. Returns its device.
fn check_pty(pty: BorrowedFd<'_>, name: &str) -> Result<u64> {
    let index: u64 = name
        .strip_prefix("/dev/pts/")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Error::Other(format!("{name} is not a pty slave name")))?;
    let stat = fstat(pty).ctx(|| format!("stat {name}"))?;
    let fs = fstatfs(pty).ctx(|| format!("statfs {name}"))?;
    let want = makedev(PTY_SLAVE_MAJOR, index);
    if fs.filesystem_type() != DEVPTS_SUPER_MAGIC
        || stat.st_mode & libc::S_IFMT != libc::S_IFCHR
        || stat.st_rdev != want
    {
        return Err(Error::Other(format!(
            "{name} is not the pty that was allocated: refusing to mount it on /dev/console"
        )));
    }
    Ok(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_pts_name_is_a_pty() {
        let null = nix::fcntl::open("/dev/null", OFlag::O_RDONLY, Mode::empty()).unwrap();
        for name in ["/dev/console", "/dev/pts/x", "/victim"] {
            let err = check_pty(null.as_fd(), name).unwrap_err().to_string();
            assert!(err.contains("is not a pty slave name"), "{err}");
        }
        // A path that names a pty but a descriptor that is not one.
        let err = check_pty(null.as_fd(), "/dev/pts/0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not the pty that was allocated"), "{err}");
    }
}
