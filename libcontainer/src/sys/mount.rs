//! The new mount API (Linux 5.2+, mount_setattr 5.12): open_tree, move_mount, fsopen,
//! fsconfig, fsmount, mount_setattr. nix wraps none of them. Every call works on descriptors,
//! so a mount lands on exactly the file a handle was checked to be, never on a path that a
//! container could swap for a symlink in between.

use std::ffi::CString;
use std::io::{Error, Result};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

pub const OPEN_TREE_CLONE: u32 = 1;
pub const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
pub const MOUNT_ATTR_NOSUID: u64 = 0x0000_0002;
pub const MOUNT_ATTR_NODEV: u64 = 0x0000_0004;
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
const FSOPEN_CLOEXEC: u32 = 0x1;
const FSMOUNT_CLOEXEC: u32 = 0x1;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;

fn cstring(text: &[u8]) -> Result<CString> {
    CString::new(text).map_err(|_| Error::from_raw_os_error(libc::EINVAL))
}

/// Take ownership of the descriptor a syscall returned (or its error).
fn owned(ret: libc::c_long) -> Result<OwnedFd> {
    if ret < 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

fn unit(ret: libc::c_long) -> Result<()> {
    if ret < 0 {
        Err(Error::last_os_error())
    } else {
        Ok(())
    }
}

/// open_tree(2) on a path: a detached clone of the mount (tree with `recursive`) at `path`.
pub fn open_tree_path(path: &Path, recursive: bool) -> Result<OwnedFd> {
    let path = cstring(path.as_os_str().as_encoded_bytes())?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: open_tree reads the NUL-terminated path during the call; the result is checked.
    owned(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) })
}

/// open_tree(2) on a descriptor: a detached bind mount of exactly the file `fd` refers to.
pub fn open_tree_fd(fd: BorrowedFd<'_>) -> Result<OwnedFd> {
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as u32 | libc::AT_EMPTY_PATH as u32;
    // SAFETY: open_tree on a descriptor we borrow, with a static empty path.
    owned(unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) })
}

/// move_mount(2): attach the detached mount `tree` on the file `target` refers to.
pub fn move_mount(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> Result<()> {
    // SAFETY: move_mount between two descriptors we borrow, with static empty paths.
    unit(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
}

/// fsopen(2): a filesystem context for `fstype`.
pub fn fsopen(fstype: &str) -> Result<OwnedFd> {
    let name = cstring(fstype.as_bytes())?;
    // SAFETY: fsopen reads the NUL-terminated name during the call; the result is checked.
    owned(unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) })
}

/// fsconfig(2) FSCONFIG_SET_STRING: set option `key` to `value` on a filesystem context.
pub fn fsconfig_set_string(fs: BorrowedFd<'_>, key: &str, value: &str) -> Result<()> {
    let (key, value) = (cstring(key.as_bytes())?, cstring(value.as_bytes())?);
    // SAFETY: fsconfig reads both NUL-terminated strings during the call.
    unit(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    })
}

/// fsconfig(2) FSCONFIG_CMD_CREATE: make the superblock of a filesystem context.
pub fn fsconfig_create(fs: BorrowedFd<'_>) -> Result<()> {
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value.
    unit(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })
}

/// fsmount(2): a detached mount of a created filesystem context, with MOUNT_ATTR_* `attrs`.
pub fn fsmount(fs: BorrowedFd<'_>, attrs: u64) -> Result<OwnedFd> {
    // SAFETY: fsmount takes integers only; the result is checked.
    owned(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) })
}

/// mount_setattr(2) on the mount `target` refers to (and below it with `recursive`): set and
/// clear MOUNT_ATTR_* bits; `userns_fd` goes with MOUNT_ATTR_IDMAP.
pub fn mount_setattr(
    target: BorrowedFd<'_>,
    recursive: bool,
    set: u64,
    clear: u64,
    userns_fd: Option<BorrowedFd<'_>>,
) -> Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: userns_fd.map_or(0, |fd| fd.as_raw_fd() as u64),
    };
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    // SAFETY: mount_setattr reads a mount_attr of the size we pass; the empty path is static.
    unit(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            target.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
}
