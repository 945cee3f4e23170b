//! Paths inside the container's root, resolved by the kernel (`openat2` with `RESOLVE_IN_ROOT`)
//! so that no symlink or `..` in the rootfs can send a mount or a device node outside it.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

use crate::error::{Context, Error, Result};

/// `path` without its leading `/`: container paths are relative to the root we resolve in.
pub fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect()
}

/// Open `path` beneath `root`; symlinks are followed but clamped to `root`.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = relative(path);
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    openat2(
        root,
        &rel,
        OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS),
    )
}

/// `mkdir -p` beneath `root`; returns an `O_PATH` handle on the directory. A dangling symlink
/// on the way is followed (inside `root`) and its target created, as runc does.
pub fn mkdir_all(root: BorrowedFd<'_>, path: &Path, mode: u32) -> Result<OwnedFd> {
    mkdir_all_following(root, path, mode, 0)
}

/// Symlinks followed while creating one path before we call it a loop (the kernel's limit).
const MAX_SYMLINKS: usize = 40;

fn mkdir_all_following(
    root: BorrowedFd<'_>,
    path: &Path,
    mode: u32,
    links: usize,
) -> Result<OwnedFd> {
    let what = || format!("create directory {} in the container", path.display());
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    match open_in_root(root, path, dir_flags) {
        Err(Errno::ENOENT) => {}
        other => return other.ctx(what),
    }
    let mut current = open_in_root(root, Path::new("."), dir_flags).ctx(what)?;
    let mut walked = PathBuf::new();
    let relative_path = relative(path);
    let components: Vec<Component> = relative_path.components().collect();
    for (i, component) in components.iter().enumerate() {
        let parent = walked.clone();
        walked.push(component);
        match open_in_root(root, &walked, dir_flags) {
            Ok(fd) => current = fd,
            Err(Errno::ENOENT) => {
                let name = component.as_os_str();
                match mkdirat(current.as_fd(), name, Mode::from_bits_truncate(mode)) {
                    Ok(()) => {}
                    Err(Errno::EEXIST) => {
                        // A dangling symlink: create where it points, still inside the root.
                        let target = readlinkat(current.as_fd(), name).ctx(what)?;
                        if links >= MAX_SYMLINKS {
                            return Err(Errno::ELOOP).ctx(what);
                        }
                        let mut next = parent.join(target);
                        next.extend(&components[i + 1..]);
                        return mkdir_all_following(root, &next, mode, links + 1);
                    }
                    Err(e) => return Err(e).ctx(what),
                }
                current = open_in_root(root, &walked, dir_flags).ctx(what)?;
            }
            Err(e) => return Err(e).ctx(what),
        }
    }
    Ok(current)
}

/// Make sure a regular file exists at `path` beneath `root` (a bind-mount target for a file).
pub fn create_file(root: BorrowedFd<'_>, path: &Path, mode: u32) -> Result<OwnedFd> {
    let what = || format!("create file {} in the container", path.display());
    match open_in_root(root, path, OFlag::O_PATH) {
        Err(Errno::ENOENT) => {}
        other => return other.ctx(what),
    }
    let name = path
        .file_name()
        .ok_or_else(|| Error::Other(format!("{}: not a file path", path.display())))?;
    let parent = mkdir_all(root, path.parent().unwrap_or(Path::new("/")), 0o755)?;
    match openat(
        parent.as_fd(),
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    ) {
        Ok(_) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e).ctx(what),
    }
    open_in_root(root, path, OFlag::O_PATH).ctx(what)
}

/// The `/proc/self/fd/N` name of an open file: mounting on it mounts on exactly that file.
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn relative_strips_root() {
        assert_eq!(relative(Path::new("/a/b")), PathBuf::from("a/b"));
        assert_eq!(relative(Path::new("a/b")), PathBuf::from("a/b"));
        assert_eq!(relative(Path::new("/")), PathBuf::from(""));
    }

    #[test]
    fn symlinks_cannot_escape_the_root() {
        let base = std::env::temp_dir().join(format!("brig-resolve-{}", std::process::id()));
        let root = base.join("root");
        let outside = base.join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("evil")).unwrap();
        std::os::unix::fs::symlink("../../../../outside", root.join("dotdot")).unwrap();
        let root_fd =
            nix::fcntl::open(&root, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();

        mkdir_all(root_fd.as_fd(), Path::new("/evil/sub"), 0o755).unwrap();
        mkdir_all(root_fd.as_fd(), Path::new("/dotdot/sub2"), 0o755).unwrap();
        create_file(root_fd.as_fd(), Path::new("/evil/file"), 0o644).unwrap();
        assert!(!outside.join("sub").exists());
        assert!(!outside.join("file").exists());
        // The symlink is followed as if the root were `/`: it lands inside.
        assert!(root
            .join(outside.strip_prefix("/").unwrap())
            .join("sub")
            .is_dir());
        assert!(root.join("outside/sub2").is_dir());
        fs::remove_dir_all(&base).unwrap();
    }
}
