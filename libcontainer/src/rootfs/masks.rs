//! `linux.maskedPaths` and `linux.readonlyPaths`, applied after the switch to the new root.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use nix::sys::statvfs::statvfs;

use super::locked_flags;
use crate::error::{Context, Error, Result};
use crate::sys;

const NONE: Option<&str> = None;

/// Hide each masked path: a file under a bind of the container's `/dev/null`, a directory
/// under an empty read-only tmpfs. Every mount goes by descriptor: `/dev/null` is opened without
/// following a symlink and checked to be the null device (1:3), so a rootfs whose `/dev/null`
/// is, or is swapped for, a symlink to a host file cannot turn a mask into a writable bind of
/// that file (CVE-2025-31133).
pub fn mask_paths(paths: &[String], label: Option<&str>) -> Result<()> {
    let mut null: Option<OwnedFd> = None;
    for path in paths {
        let path = Path::new(path);
        let target = match nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(target) => target,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(e).ctx(|| format!("masked path {}", path.display())),
        };
        let stat = nix::sys::stat::fstat(&target).ctx(|| format!("stat {}", path.display()))?;
        if stat.st_mode & libc::S_IFMT == libc::S_IFDIR {
            mask_directory(&target, label).ctx(|| format!("mask directory {}", path.display()))?;
            continue;
        }
        let null = match &null {
            Some(null) => null,
            None => null.insert(open_dev_null()?),
        };
        let tree = sys::mount::open_tree_fd(null.as_fd()).ctx(|| "clone /dev/null to mask")?;
        sys::mount::move_mount(tree.as_fd(), target.as_fd())
            .ctx(|| format!("mask {}", path.display()))?;
    }
    Ok(())
}

/// The container's `/dev/null`, checked to be the null device itself (not a symlink, not a
/// file, not another device).
fn open_dev_null() -> Result<OwnedFd> {
    let null = nix::fcntl::open(
        "/dev/null",
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /dev/null to mask paths")?;
    let stat = nix::sys::stat::fstat(&null).ctx(|| "stat /dev/null")?;
    check_dev_null(stat.st_mode, stat.st_rdev)?;
    Ok(null)
}

fn check_dev_null(mode: u32, rdev: u64) -> Result<()> {
    if mode & libc::S_IFMT != libc::S_IFCHR || rdev != nix::sys::stat::makedev(1, 3) {
        return Err(Error::Other(format!(
            "can't mask paths: the container's /dev/null is not the null device (mode {:o}, device {}:{})",
            mode & libc::S_IFMT,
            nix::sys::stat::major(rdev),
            nix::sys::stat::minor(rdev)
        )));
    }
    Ok(())
}

/// An empty read-only tmpfs over the directory `target` refers to.
fn mask_directory(target: &OwnedFd, label: Option<&str>) -> std::io::Result<()> {
    let fs = sys::mount::fsopen("tmpfs")?;
    if let Some(label) = label.filter(|l| !l.is_empty() && crate::lsm::selinux_enabled()) {
        sys::mount::fsconfig_set_string(fs.as_fd(), "context", label)?;
    }
    sys::mount::fsconfig_create(fs.as_fd())?;
    let tree = sys::mount::fsmount(fs.as_fd(), sys::mount::MOUNT_ATTR_RDONLY)?;
    sys::mount::move_mount(tree.as_fd(), target.as_fd())
}

pub fn readonly_path(path: &Path) -> Result<()> {
    match mount(
        Some(path),
        path,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    ) {
        Ok(()) => {}
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e).ctx(|| format!("bind read-only path {}", path.display())),
    }
    let locked = locked_flags(&statvfs(path).ctx(|| format!("statfs {}", path.display()))?);
    mount(
        NONE,
        path,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked,
        NONE,
    )
    .ctx(|| format!("make {} read-only", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_null_device_masks() {
        use nix::sys::stat::makedev;
        assert!(check_dev_null(libc::S_IFCHR | 0o666, makedev(1, 3)).is_ok());
        // A symlink, a regular file, /dev/zero, a block device 1:3.
        for (mode, rdev) in [
            (libc::S_IFLNK | 0o777, 0),
            (libc::S_IFREG | 0o644, 0),
            (libc::S_IFCHR | 0o666, makedev(1, 5)),
            (libc::S_IFBLK | 0o666, makedev(1, 3)),
        ] {
            let err = check_dev_null(mode, rdev).unwrap_err().to_string();
            assert!(err.contains("is not the null device"), "{err}");
        }
    }
}
