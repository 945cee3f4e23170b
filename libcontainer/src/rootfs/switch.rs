//! Making the rootfs the container's `/`: pivot_root (the default), `--no-pivot`'s move and
//! chroot (with the outer procfs and sysfs detached first), and plain chroot when the container
//! has no mount namespace of its own.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;

use crate::error::{Context, Result};

const NONE: Option<&str> = None;

pub fn pivot_root(rootfs: &Path) -> Result<()> {
    let new_root = nix::fcntl::open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open rootfs {}", rootfs.display()))?;
    nix::unistd::fchdir(&new_root).ctx(|| format!("chdir to rootfs {}", rootfs.display()))?;
    // Stack the old root on top of the new one, then detach it: no temporary directory needed.
    nix::unistd::pivot_root(".", ".").ctx(|| format!("pivot_root to {}", rootfs.display()))?;
    // Make sure the detach below cannot propagate back to the host.
    mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE)
        .ctx(|| "make the old root a slave")?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detach the old root")?;
    nix::unistd::chdir("/").ctx(|| "chdir to / in the container")
}

pub fn move_root(rootfs: &Path) -> Result<()> {
    hide_outer_pseudo_filesystems(rootfs)?;
    nix::unistd::chdir(rootfs).ctx(|| format!("chdir to rootfs {}", rootfs.display()))?;
    mount(Some(rootfs), "/", NONE, MsFlags::MS_MOVE, NONE)
        .ctx(|| format!("move rootfs {} to /", rootfs.display()))?;
    nix::unistd::chroot(".").ctx(|| "chroot to the rootfs")?;
    nix::unistd::chdir("/").ctx(|| "chdir to / in the container")
}

/// `--no-pivot` leaves the old root's mounts in the container's mount namespace, below the
/// chroot. The kernel lets a user namespace mount procfs or sysfs when the mount namespace
/// holds a full, unmasked one: the host's /proc out there would make the container's masks
/// worthless (`unshare -mrpf mount -t proc`). So every full procfs and sysfs mount outside
/// the rootfs is detached, or covered by a tmpfs where it cannot be (runc does the same).
fn hide_outer_pseudo_filesystems(rootfs: &Path) -> Result<()> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ctx(|| "read mountinfo")?;
    let mut points: Vec<PathBuf> = text
        .lines()
        .filter_map(crate::mountinfo::parse)
        .filter(|m| m.root == "/" && matches!(m.fs_type, "proc" | "sysfs"))
        .map(|m| PathBuf::from(unescape_mount_point(m.mount_point)))
        .filter(|p| !p.starts_with(rootfs))
        .collect();
    // Deepest first, so a parent's detach does not hide a child we still have to handle.
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for point in points {
        // The detach must not reach the namespace this one was copied from.
        match mount(
            NONE,
            &point,
            NONE,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            NONE,
        ) {
            Ok(()) => {}
            // Gone with a parent already detached.
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(e).ctx(|| format!("make {} a slave mount", point.display())),
        }
        match umount2(&point, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(Errno::EINVAL | Errno::EPERM) => {
                mount(Some("tmpfs"), &point, Some("tmpfs"), MsFlags::empty(), NONE)
                    .ctx(|| format!("cover {} with a tmpfs", point.display()))?
            }
            Err(e) => return Err(e).ctx(|| format!("detach {}", point.display())),
        }
    }
    Ok(())
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_point(text: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    std::ffi::OsString::from_vec(out)
}

pub fn chroot(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs).ctx(|| format!("chdir to rootfs {}", rootfs.display()))?;
    nix::unistd::chroot(".").ctx(|| "chroot to the rootfs")?;
    nix::unistd::chdir("/").ctx(|| "chdir to / in the container")
}
