//! `/dev` inside the container: the default nodes every container has, `linux.devices`,
//! and the standard symlinks.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::resolve::{create_file, fd_path, mkdir_all};
use crate::error::{Context, Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The nodes runc gives every container whose `/dev` is not the host's.
pub fn default_devices() -> Vec<DeviceNode> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| DeviceNode {
        path: PathBuf::from("/dev").join(name),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// A `linux.devices` entry as a node to make; `index` names it in errors.
pub fn from_spec(device: &LinuxDevice, index: usize) -> Result<DeviceNode> {
    let field = |f: &str| format!("linux.devices[{index}].{f}");
    let kind = match device.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(Error::config(field("type"), "must be one of c, u, b or p"))
        }
    };
    if !device.path().is_absolute() {
        return Err(Error::config(
            field("path"),
            format!("must be absolute, got {:?}", device.path()),
        ));
    }
    let number = |value: i64, name: &str| {
        u64::try_from(value).map_err(|_| Error::config(field(name), format!("{value} is negative")))
    };
    Ok(DeviceNode {
        path: device.path().clone(),
        kind,
        major: number(device.major(), "major")?,
        minor: number(device.minor(), "minor")?,
        mode: device.file_mode().unwrap_or(0o666) & 0o7777,
        uid: device.uid().unwrap_or(0),
        gid: device.gid().unwrap_or(0),
    })
}

/// Make `node` beneath `root`. In a user namespace mknod is not allowed: bind-mount the host's
/// node at the same path instead, as runc does.
pub fn create(root: BorrowedFd<'_>, node: &DeviceNode, bind: bool) -> Result<()> {
    let what = || format!("create device {}", node.path.display());
    if bind {
        let target = create_file(root, &node.path, 0o600)?;
        return mount(
            Some(&node.path),
            fd_path(&target).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| format!("bind-mount device {} from the host", node.path.display()));
    }
    let name = node.path.file_name().ok_or_else(|| Error::Other(what()))?;
    let parent = mkdir_all(root, node.path.parent().unwrap_or(Path::new("/dev")), 0o755)?;
    match mknodat(
        parent.as_fd(),
        name,
        node.kind,
        Mode::from_bits_truncate(node.mode),
        makedev(node.major, node.minor),
    ) {
        Ok(()) => {}
        // runc keeps a node the rootfs already has.
        Err(Errno::EEXIST) => return Ok(()),
        Err(e) => return Err(e).ctx(what),
    }
    fchownat(
        parent.as_fd(),
        name,
        Some(Uid::from_raw(node.uid)),
        Some(Gid::from_raw(node.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ctx(|| format!("chown device {}", node.path.display()))
}

/// `/dev/fd`, `/dev/std{in,out,err}`, `/dev/ptmx` and, where the host has it, `/dev/core`.
pub fn create_symlinks(root: BorrowedFd<'_>) -> Result<()> {
    let dev = mkdir_all(root, Path::new("/dev"), 0o755)?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).ctx(|| format!("create symlink /dev/{name}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_devices_are_checked() {
        let dev: LinuxDevice = serde_json::from_value(serde_json::json!(
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 8630, "uid": 5}
        ))
        .unwrap();
        let node = from_spec(&dev, 0).unwrap();
        assert_eq!(
            (node.major, node.minor, node.mode, node.uid),
            (10, 229, 0o666, 5)
        );
        let bad: LinuxDevice = serde_json::from_value(
            serde_json::json!({"path": "dev/x", "type": "c", "major": 1, "minor": 1}),
        )
        .unwrap();
        assert!(from_spec(&bad, 3)
            .unwrap_err()
            .to_string()
            .starts_with("linux.devices[3].path"));
        let neg: LinuxDevice = serde_json::from_value(
            serde_json::json!({"path": "/dev/x", "type": "b", "major": -1, "minor": 1}),
        )
        .unwrap();
        assert!(from_spec(&neg, 1)
            .unwrap_err()
            .to_string()
            .starts_with("linux.devices[1].major"));
    }
}
