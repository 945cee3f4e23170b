//! The runtime's binary out of the container's reach (CVE-2019-5736).
//!
//! brig enters containers without a re-exec: init and the processes of `exec` are clones of
//! the brig that the engine ran, so `/proc/<pid>/exe` of each is that binary, and a program
//! run as `#!/proc/self/exe` from inside the container runs it too. Whoever opens that link
//! could write the host's brig. So `create`, `run` and `exec` first re-execute themselves from
//! a binary nobody can write, and the host's file is never reachable from a container process:
//!
//! 1. Without a copy (runc 1.2's way, issue 18): the binary as seen through a private,
//!    read-only overlayfs whose top layer is the binary's directory. The mount is detached
//!    (fsopen/fsmount: in no mount namespace, so no container can see or remount it), and an
//!    overlay without an upper layer cannot be written through at all: opening
//!    `/proc/<pid>/exe` for writing fails with EROFS. It costs four syscalls and shares the page
//!    cache with the file on disk, where the copy cost 4.9 MB of writes and as many page faults
//!    on every start.
//! 2. Where that is not possible (no CAP_SYS_ADMIN, no overlayfs, a binary whose directory
//!    overlayfs refuses): a sealed memfd copy that nobody can write or grow (F_SEAL_WRITE and
//!    friends, F_SEAL_SEAL so the seals stay), as runc 1.1's `cloned_binary.c` did for every
//!    `runc init`.
//!
//! Either is made per invocation: a copy or mount kept across invocations would have to be
//! proven unwritable on every reuse.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

use nix::errno::Errno;
use nix::fcntl::{fcntl, openat, AtFlags, FcntlArg, OFlag, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::stat::Mode;
use nix::sys::statfs::{fstatfs, OVERLAYFS_SUPER_MAGIC};
use nix::sys::statvfs::{fstatvfs, FsFlags};

use crate::sys::mount::{
    fsconfig_create, fsconfig_set_string, fsmount, fsopen, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID,
    MOUNT_ATTR_RDONLY,
};

use crate::error::{Context, Error, Result};

/// Set in the environment of the re-executed brig: were its binary still not a sealed copy,
/// it must fail rather than loop.
const MARKER: &str = "_BRIG_SEALED_EXE";

fn seals() -> SealFlag {
    SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE
}

/// Whether this process runs from a binary nobody can write: a sealed copy of brig, or brig
/// seen through a read-only overlayfs.
pub fn running_sealed() -> Result<bool> {
    let exe = File::open("/proc/self/exe").ctx(|| "open /proc/self/exe")?;
    Ok(is_sealed(&exe) || is_read_only_overlay(&exe))
}

/// An overlayfs mounted read-only. The ones that `read_only_view` makes have no upper layer
/// either; one that has could only be made writable by remounting it, which a container
/// cannot do to a mount outside its namespace.
fn is_read_only_overlay(file: &impl AsFd) -> bool {
    let overlay = fstatfs(file).is_ok_and(|fs| fs.filesystem_type() == OVERLAYFS_SUPER_MAGIC);
    overlay && fstatvfs(file).is_ok_and(|fs| fs.flags().contains(FsFlags::ST_RDONLY))
}

fn is_sealed(file: &impl AsFd) -> bool {
    match fcntl(file, FcntlArg::F_GET_SEALS) {
        Ok(bits) => SealFlag::from_bits_truncate(bits).contains(seals()),
        // Not a memfd (EINVAL): the binary on disk.
        Err(_) => false,
    }
}

/// This process's binary through a detached, read-only overlayfs mount (an `O_PATH`
/// descriptor to exec). Overlayfs wants two lower layers when it has no upper one: the
/// binary's directory is the top one, so `name` is found there; /dev (another filesystem, so
/// never overlapping it) is the other.
pub fn read_only_view() -> Result<OwnedFd> {
    let exe = std::fs::read_link("/proc/self/exe").ctx(|| "read /proc/self/exe")?;
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
        return Err(Error::Other(format!("no directory in {}", exe.display())));
    };
    let dir = dir.to_string_lossy();
    if exe.to_string_lossy().ends_with(" (deleted)") || dir.starts_with("/dev") {
        return Err(Error::Other(format!("cannot overlay {}", exe.display())));
    }
    // A ':' or '\\' in the path is escaped for overlayfs' list syntax.
    let lower = format!("{}:/dev", dir.replace('\\', "\\\\").replace(':', "\\:"));
    let fs = fsopen("overlay").ctx(|| "fsopen overlay")?;
    fsconfig_set_string(fs.as_fd(), "lowerdir", &lower)
        .ctx(|| format!("set overlayfs lowerdir={lower}"))?;
    // xino only logs noise when the layers are on different filesystems; nothing relies on it.
    let _ = fsconfig_set_string(fs.as_fd(), "xino", "off");
    fsconfig_create(fs.as_fd()).ctx(|| "create the overlayfs of brig's directory")?;
    let attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID;
    let mount = fsmount(fs.as_fd(), attrs).ctx(|| "fsmount the overlayfs of brig's directory")?;
    let file = openat(
        &mount,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {} through its overlayfs", exe.display()))?;
    // Renamed in between, `name` would be found in /dev, or not be the binary at all.
    let meta = nix::sys::stat::fstat(&file).ctx(|| "fstat brig through its overlayfs")?;
    let disk = std::fs::metadata("/proc/self/exe").ctx(|| "stat /proc/self/exe")?;
    if meta.st_mode & libc::S_IFMT != libc::S_IFREG || meta.st_size as u64 != disk.len() {
        return Err(Error::Other(format!(
            "{} through its overlayfs is not the running binary",
            exe.display()
        )));
    }
    Ok(file)
}

/// Copy this process's binary into a memfd and seal it.
pub fn sealed_copy() -> Result<OwnedFd> {
    let mut exe = File::open("/proc/self/exe").ctx(|| "open /proc/self/exe")?;
    let flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3) keeps the copy executable under vm.memfd_noexec=1; older kernels
    // reject the flag.
    let memfd = match memfd_create(c"brig", flags | MFdFlags::from_bits_retain(libc::MFD_EXEC)) {
        Err(Errno::EINVAL) => memfd_create(c"brig", flags),
        other => other,
    }
    .ctx(|| "create a memfd for the sealed copy of brig")?;
    let mut copy = File::from(memfd);
    std::io::copy(&mut exe, &mut copy).ctx(|| "copy brig into its memfd")?;
    fcntl(&copy, FcntlArg::F_ADD_SEALS(seals())).ctx(|| "seal the copy of brig")?;
    Ok(copy.into())
}

/// Unless already running from a sealed copy, re-execute this very command from one. Returns
/// only when there is nothing to do; it never starts anything itself.
pub fn ensure_sealed() -> Result<()> {
    if running_sealed()? {
        return Ok(());
    }
    if std::env::var_os(MARKER).is_some() {
        return Err(Error::Other(
            "brig was re-executed from its sealed copy but does not run from it".into(),
        ));
    }
    let copy = match read_only_view() {
        Ok(view) => view,
        Err(err) => {
            tracing::debug!("no read-only overlayfs view of brig ({err}), copying it");
            sealed_copy()?
        }
    };
    let argv = std::env::args_os()
        .map(|a| c_string(a.into_vec()))
        .collect::<Result<Vec<_>>>()?;
    let mut envp = std::env::vars_os()
        .filter(|(k, _)| k != MARKER)
        .map(|(k, v)| {
            let mut pair = k.into_vec();
            pair.push(b'=');
            pair.extend(v.into_vec());
            c_string(pair)
        })
        .collect::<Result<Vec<_>>>()?;
    envp.push(c_string(OsString::from(format!("{MARKER}=1")).into_vec())?);
    let err = match nix::unistd::execveat(&copy, c"", &argv, &envp, AtFlags::AT_EMPTY_PATH) {
        Err(err) => err,
        Ok(never) => match never {},
    };
    Err(err).ctx(|| "re-execute brig from its sealed copy")
}

fn c_string(bytes: Vec<u8>) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::Other("argument or environment has a NUL byte".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn the_copy_is_sealed_and_cannot_be_written() {
        let copy = sealed_copy().unwrap();
        assert!(is_sealed(&copy));
        let mut file = File::from(copy);
        assert!(
            file.write_all(b"x").is_err(),
            "a sealed copy refused a write"
        );
        assert!(file.set_len(0).is_err(), "a sealed copy refused to shrink");
    }

    #[test]
    fn the_read_only_view_cannot_be_opened_for_writing() {
        let view = match read_only_view() {
            Ok(view) => view,
            // Not root, or no overlayfs: the sealed copy is what runs then.
            Err(err) => return eprintln!("skipped: {err}"),
        };
        let path = format!("/proc/self/fd/{}", view.as_raw_fd());
        assert!(is_read_only_overlay(&File::open(&path).unwrap()));
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
        let disk = std::fs::read("/proc/self/exe").unwrap();
        assert!(
            std::fs::read(&path).unwrap() == disk,
            "the view is the binary"
        );
    }

    #[test]
    fn the_test_binary_on_disk_is_not_sealed() {
        assert!(!running_sealed().unwrap());
    }
}
