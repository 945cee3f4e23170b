//! Applying tar entries to a rootfs without ever leaving it.
//!
//! Every parent directory is resolved from the rootfs fd with `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)`, so a symlink in the path (absolute, `..`, planted by this or an
//! earlier layer) is clamped to the rootfs. The last component is then handled with `*at`
//! calls on that parent fd that never follow it (`O_NOFOLLOW | O_EXCL`, `AT_SYMLINK_NOFOLLOW`,
//! `linkat` without `AT_SYMLINK_FOLLOW`, `unlinkat`). Nothing here takes a path from the host.

use std::collections::HashSet;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{
    fchown, fchownat, ftruncate, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags,
};

use super::owner::{rootless_xattr, DeferredModes, Ownership, ROOTLESS_XATTR};
use super::path::{clamp_join, classify, normalize, with_ancestors, Action};
use super::tar::{Archive, Entry, Kind};
use super::{LayerStats, UnpackError};
use crate::sys::xattr;

const COPY_BUF: usize = 256 * 1024;
/// overlayfs' private attributes (opaque, redirect, metacopy, origin, whiteout, ...): a lower
/// layer carrying them changes what an overlay mount shows, so a layer may not set them (as
/// containerd, which sets no `trusted.*` attribute from a layer at all).
const OVERLAY_XATTRS: &[u8] = b"trusted.overlay.";
/// Dangling symlinks followed while creating one parent directory (the kernel's limit).
const MAX_SYMLINKS: usize = 40;

/// One layer being applied to one rootfs.
pub struct Applier<'a> {
    root: BorrowedFd<'a>,
    /// Paths this layer created or named, with their ancestors: whiteouts in this layer leave
    /// them alone (whiteouts only hide what lower layers put there).
    layer_paths: HashSet<PathBuf>,
    /// Directories whose mtime is set once the layer's content is in place.
    dir_times: Vec<(PathBuf, TimeSpec)>,
    /// The last parent directory resolved: consecutive entries mostly share one.
    cached_parent: Option<(PathBuf, OwnedFd)>,
    buf: Vec<u8>,
    ownership: Ownership,
    /// Owners already warned about as unmapped in this user namespace.
    unmapped_warned: HashSet<(u32, u32)>,
    /// Rootless: directory modes applied once every layer is in (they outlive the layer).
    pub deferred: DeferredModes,
    pub stats: LayerStats,
}

fn entry_io(entry: &Entry, what: impl Into<String>, err: impl Into<io::Error>) -> UnpackError {
    UnpackError::EntryIo {
        entry: entry.display_name(),
        what: what.into(),
        source: err.into(),
    }
}

fn entry_err(entry: &Entry, reason: impl Into<String>) -> UnpackError {
    UnpackError::Entry {
        entry: entry.display_name(),
        reason: reason.into(),
    }
}

fn in_root(path: &Path) -> &Path {
    if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    }
}

/// `openat2` beneath `root`: symlinks followed but clamped to `root`, no magic links.
fn open_beneath(root: BorrowedFd<'_>, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    openat2(
        root,
        in_root(path),
        OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS),
    )
}

fn split(path: &Path) -> (&Path, &OsStr) {
    let parent = path.parent().unwrap_or(Path::new(""));
    let name = path.file_name().unwrap_or(OsStr::new("."));
    (parent, name)
}

/// Remove `name` in `dir` whatever it is, never following a symlink; a missing name is fine.
pub fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) | Err(Errno::EPERM) => {}
        Err(e) => return Err(e),
    }
    let fd = match openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    for child in list_dir(fd.as_fd())? {
        remove_all_at(fd.as_fd(), &child)?;
    }
    match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The names in a directory (not `.`/`..`).
fn list_dir(fd: BorrowedFd<'_>) -> nix::Result<Vec<std::ffi::OsString>> {
    let dup = fd
        .try_clone_to_owned()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let mut dir = nix::dir::Dir::from_fd(dup)?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(names)
}

fn timespec(entry: &Entry) -> TimeSpec {
    TimeSpec::new(entry.mtime, i64::from(entry.mtime_nsec))
}

fn mode_of(entry: &Entry) -> Mode {
    Mode::from_bits_truncate(entry.mode)
}

impl<'a> Applier<'a> {
    pub fn new(root: BorrowedFd<'a>, ownership: Ownership, deferred: DeferredModes) -> Self {
        Applier {
            root,
            layer_paths: HashSet::new(),
            dir_times: Vec::new(),
            cached_parent: None,
            buf: vec![0u8; COPY_BUF],
            ownership,
            unmapped_warned: HashSet::new(),
            deferred,
            stats: LayerStats::default(),
        }
    }

    /// Apply every entry of `archive`.
    pub fn apply_all<R: io::Read>(&mut self, archive: &mut Archive<R>) -> Result<(), UnpackError> {
        while let Some(entry) = archive.next_entry()? {
            self.stats.entries += 1;
            self.apply(&entry, archive)?;
        }
        self.finish()
    }

    fn apply<R: io::Read>(
        &mut self,
        entry: &Entry,
        archive: &mut Archive<R>,
    ) -> Result<(), UnpackError> {
        if let Some((key, _)) = entry
            .xattrs
            .iter()
            .find(|(key, _)| key.starts_with(OVERLAY_XATTRS))
        {
            return Err(entry_err(
                entry,
                format!(
                    "extended attribute {} refused: overlayfs' own attributes would steer an \
                     overlay mount that uses this tree as a layer",
                    String::from_utf8_lossy(key)
                ),
            ));
        }
        match classify(&entry.name).map_err(|r| entry_err(entry, r))? {
            Action::Skip => Ok(()),
            Action::Whiteout(path) => {
                self.stats.whiteouts += 1;
                self.whiteout(entry, &path)
            }
            Action::Opaque(dir) => {
                self.stats.whiteouts += 1;
                self.opaque(entry, &dir)
            }
            Action::Put(path) => {
                for p in with_ancestors(&path) {
                    if !self.layer_paths.insert(p.to_path_buf()) {
                        break;
                    }
                }
                if path.as_os_str().is_empty() {
                    return self.put_root(entry);
                }
                self.put(entry, &path, archive)
            }
        }
    }

    /// The parent directory of an entry, created (`mkdir -p`, 0755, root-owned) if missing.
    fn parent(&mut self, entry: &Entry, parent: &Path) -> Result<BorrowedFd<'_>, UnpackError> {
        let hit = matches!(&self.cached_parent, Some((p, _)) if p == parent);
        if !hit {
            let fd = self.open_or_create_dir(entry, parent)?;
            self.cached_parent = Some((parent.to_path_buf(), fd));
        }
        match &self.cached_parent {
            Some((_, fd)) => Ok(fd.as_fd()),
            None => Err(entry_err(entry, "no parent directory")),
        }
    }

    fn open_or_create_dir(&self, entry: &Entry, dir: &Path) -> Result<OwnedFd, UnpackError> {
        self.mkdir_all(entry, dir, 0)
    }

    /// `mkdir -p` beneath the rootfs. A dangling symlink on the way (`var/run -> /run` before
    /// `/run` exists) has its target created, inside the rootfs, as containerd does.
    fn mkdir_all(&self, entry: &Entry, dir: &Path, depth: usize) -> Result<OwnedFd, UnpackError> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        let fail = |what: &Path, e: Errno| {
            entry_io(
                entry,
                format!("create parent directory {}", what.display()),
                e,
            )
        };
        match open_beneath(self.root, dir, flags) {
            Err(Errno::ENOENT) => {}
            other => return other.map_err(|e| fail(dir, e)),
        }
        if depth > MAX_SYMLINKS {
            return Err(fail(dir, Errno::ELOOP));
        }
        let components: Vec<&OsStr> = dir.iter().collect();
        let mut walked = PathBuf::new();
        let mut current =
            open_beneath(self.root, Path::new(""), flags).map_err(|e| fail(dir, e))?;
        for (i, component) in components.iter().enumerate() {
            walked.push(component);
            match open_beneath(self.root, &walked, flags) {
                Ok(fd) => {
                    current = fd;
                    continue;
                }
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(fail(&walked, e)),
            }
            match mkdirat(current.as_fd(), *component, Mode::from_bits_truncate(0o755)) {
                Ok(()) => {}
                Err(Errno::EEXIST) => {
                    let target =
                        readlinkat(current.as_fd(), *component).map_err(|e| fail(&walked, e))?;
                    // Relative targets are taken from the path as named (lexically): wrong
                    // only for chains of symlinks, and contained either way, since every
                    // step below is resolved beneath the rootfs again.
                    let base = walked.parent().unwrap_or(Path::new(""));
                    let mut next = clamp_join(base, Path::new(&target));
                    for rest in &components[i + 1..] {
                        next.push(rest);
                    }
                    return self.mkdir_all(entry, &next, depth + 1);
                }
                Err(e) => return Err(fail(&walked, e)),
            }
            current = open_beneath(self.root, &walked, flags).map_err(|e| fail(&walked, e))?;
        }
        Ok(current)
    }

    fn forget_parents(&mut self) {
        self.cached_parent = None;
    }

    /// `.wh.NAME`: remove what lower layers put at `path`.
    fn whiteout(&mut self, entry: &Entry, path: &Path) -> Result<(), UnpackError> {
        let (parent, name) = split(path);
        let dir = match open_beneath(self.root, parent, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(fd) => fd,
            // Nothing below to hide.
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(()),
            Err(e) => return Err(entry_io(entry, "open whiteout's directory", e)),
        };
        self.forget_parents();
        self.remove_lower(entry, dir.as_fd(), path, name)
    }

    /// `.wh..wh..opq`: remove what lower layers put inside `dir`.
    fn opaque(&mut self, entry: &Entry, dir_path: &Path) -> Result<(), UnpackError> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
        let dir = match open_beneath(self.root, dir_path, flags) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(()),
            Err(e) => return Err(entry_io(entry, "open opaque directory", e)),
        };
        self.forget_parents();
        let children = list_dir(dir.as_fd()).map_err(|e| entry_io(entry, "list directory", e))?;
        for child in children {
            self.remove_lower(entry, dir.as_fd(), &dir_path.join(&child), &child)?;
        }
        Ok(())
    }

    /// Remove `name` in `dir` unless this layer put it there; of a directory this layer
    /// merged into, remove only the lower layers' children.
    fn remove_lower(
        &mut self,
        entry: &Entry,
        dir: BorrowedFd<'_>,
        path: &Path,
        name: &OsStr,
    ) -> Result<(), UnpackError> {
        if !self.layer_paths.contains(path) {
            self.deferred.forget(path, true);
            return remove_all_at(dir, name)
                .map_err(|e| entry_io(entry, format!("remove {}", path.display()), e));
        }
        let sub = match openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            // Not a directory (or gone): this layer's own entry stays.
            Err(_) => return Ok(()),
        };
        let children = list_dir(sub.as_fd()).map_err(|e| entry_io(entry, "list directory", e))?;
        for child in children {
            self.remove_lower(entry, sub.as_fd(), &path.join(&child), &child)?;
        }
        Ok(())
    }

    /// `./` itself: the rootfs directory's owner and mode.
    fn put_root(&mut self, entry: &Entry) -> Result<(), UnpackError> {
        if entry.kind != Kind::Dir {
            return Err(entry_err(entry, "the root of a layer must be a directory"));
        }
        let fd = open_beneath(
            self.root,
            Path::new(""),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        )
        .map_err(|e| entry_io(entry, "open the rootfs", e))?;
        self.fd_attrs(entry, fd.as_fd(), Some(Path::new("")))?;
        self.dir_times.push((PathBuf::new(), timespec(entry)));
        self.stats.dirs += 1;
        Ok(())
    }

    fn put<R: io::Read>(
        &mut self,
        entry: &Entry,
        path: &Path,
        archive: &mut Archive<R>,
    ) -> Result<(), UnpackError> {
        let (parent, name) = split(path);
        match entry.kind {
            Kind::File => {
                let file = self.create_file(entry, parent, name)?;
                self.write_data(entry, &file, archive)?;
                self.fd_attrs(entry, file.as_fd(), None)?;
                futimens(&file, &timespec(entry), &timespec(entry))
                    .map_err(|e| entry_io(entry, "set mtime", e))?;
                self.stats.files += 1;
            }
            Kind::Dir => {
                let dir = self.create_dir(entry, parent, name)?;
                self.fd_attrs(entry, dir.as_fd(), Some(path))?;
                self.dir_times.push((path.to_path_buf(), timespec(entry)));
                self.stats.dirs += 1;
            }
            Kind::Symlink => {
                let target = entry.link.clone();
                self.create_retrying(entry, parent, name, |dir| {
                    symlinkat(OsStr::from_bytes(&target), dir, name)
                })?;
                // A symlink replacing a directory changes where later paths resolve:
                // create_retrying forgets the cached parent when it replaced something.
                self.path_attrs(entry, parent, name, false)?;
                self.stats.symlinks += 1;
            }
            Kind::Hardlink => {
                self.hardlink(entry, parent, name)?;
                self.stats.hardlinks += 1;
            }
            Kind::Char | Kind::Block | Kind::Fifo => {
                let kind = match entry.kind {
                    Kind::Char => SFlag::S_IFCHR,
                    Kind::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let dev = libc::makedev(entry.dev_major, entry.dev_minor);
                let made = self.create_retrying(entry, parent, name, |dir| {
                    mknodat(dir, name, kind, Mode::from_bits_truncate(0o600), dev)
                });
                match made {
                    Err(UnpackError::EntryIo { source, .. })
                        if source.raw_os_error() == Some(libc::EPERM) =>
                    {
                        tracing::warn!(
                            "tar entry {:?}: device node skipped: not permitted here",
                            entry.display_name()
                        );
                        self.stats.skipped += 1;
                        return Ok(());
                    }
                    other => other?,
                }
                self.path_attrs(entry, parent, name, true)?;
                self.stats.devices += 1;
            }
        }
        Ok(())
    }

    /// Run `make` in the parent; if the name exists, remove it (whatever it is, never
    /// following it) and run `make` again.
    fn create_retrying<T>(
        &mut self,
        entry: &Entry,
        parent: &Path,
        name: &OsStr,
        make: impl Fn(BorrowedFd<'_>) -> nix::Result<T>,
    ) -> Result<T, UnpackError> {
        let dir = self.parent(entry, parent)?;
        match make(dir) {
            Err(Errno::EEXIST) => {}
            other => return other.map_err(|e| entry_io(entry, "create", e)),
        }
        remove_all_at(dir, name).map_err(|e| entry_io(entry, "remove the existing file", e))?;
        let result = make(dir).map_err(|e| entry_io(entry, "create", e));
        // The removed name may have been a directory we cached, or one whose mode waits.
        self.forget_parents();
        self.deferred.forget(&parent.join(name), true);
        result
    }

    fn create_file(
        &mut self,
        entry: &Entry,
        parent: &Path,
        name: &OsStr,
    ) -> Result<std::fs::File, UnpackError> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = self.create_retrying(entry, parent, name, |dir| {
            openat(dir, name, flags, Mode::from_bits_truncate(0o600))
        })?;
        Ok(std::fs::File::from(fd))
    }

    fn create_dir(
        &mut self,
        entry: &Entry,
        parent: &Path,
        name: &OsStr,
    ) -> Result<OwnedFd, UnpackError> {
        let dir = self.parent(entry, parent)?;
        let open = |dir: BorrowedFd<'_>| {
            openat(
                dir,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        };
        match mkdirat(dir, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(|e| entry_io(entry, "stat the existing file", e))?;
                if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                    // A file (or symlink) replaced by a directory.
                    remove_all_at(dir, name)
                        .map_err(|e| entry_io(entry, "remove the existing file", e))?;
                    mkdirat(dir, name, Mode::from_bits_truncate(0o700))
                        .map_err(|e| entry_io(entry, "create directory", e))?;
                    let fd = open(dir).map_err(|e| entry_io(entry, "open directory", e))?;
                    self.forget_parents();
                    return Ok(fd);
                }
            }
            Err(e) => return Err(entry_io(entry, "create directory", e)),
        }
        open(dir).map_err(|e| entry_io(entry, "open directory", e))
    }

    fn hardlink(&mut self, entry: &Entry, parent: &Path, name: &OsStr) -> Result<(), UnpackError> {
        let target = normalize(&entry.link)
            .map_err(|r| entry_err(entry, format!("hardlink target: {r}")))?;
        if target.as_os_str().is_empty() {
            return Err(entry_err(entry, "hardlink to the root directory"));
        }
        if target == parent.join(name) {
            return Ok(());
        }
        let (tparent, tname) = split(&target);
        let tdir =
            open_beneath(self.root, tparent, OFlag::O_PATH | OFlag::O_DIRECTORY).map_err(|e| {
                entry_io(
                    entry,
                    format!(
                        "open hardlink target {}",
                        String::from_utf8_lossy(&entry.link)
                    ),
                    e,
                )
            })?;
        // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
        self.create_retrying(entry, parent, name, |dir| {
            linkat(tdir.as_fd(), tname, dir, name, AtFlags::empty())
        })
        .map_err(|e| match e {
            UnpackError::EntryIo { entry, source, .. } => UnpackError::EntryIo {
                entry,
                what: format!("hardlink to {}", target.display()),
                source,
            },
            other => other,
        })
    }

    fn write_data<R: io::Read>(
        &mut self,
        entry: &Entry,
        file: &std::fs::File,
        archive: &mut Archive<R>,
    ) -> Result<(), UnpackError> {
        let segments: Vec<(u64, u64)> = match &entry.sparse {
            Some(map) => map.clone(),
            None => vec![(0, entry.size)],
        };
        for (mut offset, mut len) in segments {
            while len > 0 {
                let want = len.min(self.buf.len() as u64) as usize;
                let n = archive.read_data(&mut self.buf[..want])?;
                if n == 0 {
                    return Err(entry_err(entry, "file data shorter than its header says"));
                }
                file.write_all_at(&self.buf[..n], offset)
                    .map_err(|e| entry_io(entry, "write file", e))?;
                offset += n as u64;
                len -= n as u64;
            }
        }
        if entry.sparse.is_some() {
            let size = i64::try_from(entry.size).map_err(|_| entry_err(entry, "size too large"))?;
            ftruncate(file, size).map_err(|e| entry_io(entry, "set sparse file size", e))?;
        }
        self.stats.bytes_written += entry.size;
        Ok(())
    }

    /// Owner, then mode (chown clears setuid/setgid), then xattrs (chown clears
    /// security.capability), on an open file or directory (`dir`: its path, for a directory).
    fn fd_attrs(
        &mut self,
        entry: &Entry,
        fd: BorrowedFd<'_>,
        dir: Option<&Path>,
    ) -> Result<(), UnpackError> {
        let record = match self.ownership {
            Ownership::Rootless => true,
            Ownership::Chown => match fchown(
                fd,
                Some(Uid::from_raw(entry.uid)),
                Some(Gid::from_raw(entry.gid)),
            ) {
                Ok(()) => false,
                Err(Errno::EINVAL) => {
                    self.warn_unmapped(entry);
                    true
                }
                Err(e) => {
                    return Err(entry_io(
                        entry,
                        format!("chown to {}:{}", entry.uid, entry.gid),
                        e,
                    ))
                }
            },
        };
        let mut mode = entry.mode & 0o7777;
        if let (Ownership::Rootless, Some(path)) = (self.ownership, dir) {
            // The caller is no root: a directory it may not write or search would stop the
            // entries below it (this layer's and the next ones').
            if mode & 0o700 != 0o700 {
                self.deferred.push(path, mode);
                mode |= 0o700;
            }
        }
        fchmod(fd, Mode::from_bits_truncate(mode)).map_err(|e| entry_io(entry, "chmod", e))?;
        for (key, value) in &entry.xattrs {
            if record && key.as_slice() == ROOTLESS_XATTR {
                tracing::warn!(
                    "tar entry {:?}: the layer's own user.rootlesscontainers attribute \
                     ignored: the owner recorded is the tar header's",
                    entry.display_name()
                );
                continue;
            }
            let cname = xattr_name(entry, key)?;
            Self::xattr_result(entry, key, xattr::fsetxattr(fd, &cname, value))?;
        }
        if record {
            if let Some(value) = rootless_xattr(entry.uid, entry.gid) {
                let cname = xattr_name(entry, ROOTLESS_XATTR)?;
                Self::xattr_result(entry, ROOTLESS_XATTR, xattr::fsetxattr(fd, &cname, &value))?;
                self.stats.owners_recorded += 1;
            }
        }
        Ok(())
    }

    /// Root of a user namespace whose maps lack the entry's uid or gid: the entry stays owned
    /// by the namespace's root and its owner is recorded (one warning per owner).
    fn warn_unmapped(&mut self, entry: &Entry) {
        if self.unmapped_warned.insert((entry.uid, entry.gid)) {
            tracing::warn!(
                "tar entry {:?}: owner {}:{} is not mapped in this user namespace: entries it \
                 owns are kept as root's and their owner recorded in user.rootlesscontainers",
                entry.display_name(),
                entry.uid,
                entry.gid
            );
        }
    }

    /// Attributes of a symlink, device or fifo, by name in its parent: never followed.
    /// Rootless, their owner is the caller's and goes unrecorded (the kernel allows `user.*`
    /// attributes on regular files and directories only).
    fn path_attrs(
        &mut self,
        entry: &Entry,
        parent: &Path,
        name: &OsStr,
        chmod: bool,
    ) -> Result<(), UnpackError> {
        if self.ownership == Ownership::Chown {
            let dir = self.parent(entry, parent)?;
            match fchownat(
                dir,
                name,
                Some(Uid::from_raw(entry.uid)),
                Some(Gid::from_raw(entry.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(()) => {}
                Err(Errno::EINVAL) => self.warn_unmapped(entry),
                Err(e) => {
                    return Err(entry_io(
                        entry,
                        format!("chown to {}:{}", entry.uid, entry.gid),
                        e,
                    ))
                }
            }
        }
        let dir = self.parent(entry, parent)?;
        if chmod {
            // A device or fifo we just made in a directory we hold: the name is not a
            // symlink (fchmodat has no working AT_SYMLINK_NOFOLLOW).
            fchmodat(dir, name, mode_of(entry), FchmodatFlags::FollowSymlink)
                .map_err(|e| entry_io(entry, "chmod", e))?;
        }
        if !entry.xattrs.is_empty() {
            // The parent fd's magic link resolves to the directory we hold; the last
            // component is not followed by lsetxattr.
            let mut proc_path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
            proc_path.extend_from_slice(name.as_bytes());
            let proc_path =
                CString::new(proc_path).map_err(|_| entry_err(entry, "name contains NUL"))?;
            for (key, value) in &entry.xattrs {
                let cname = xattr_name(entry, key)?;
                Self::xattr_result(entry, key, xattr::lsetxattr(&proc_path, &cname, value))?;
            }
        }
        utimensat(
            dir,
            name,
            &timespec(entry),
            &timespec(entry),
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| entry_io(entry, "set mtime", e))
    }

    /// A filesystem without xattrs, or one the caller may not set (`trusted.*` and
    /// `security.capability` need privileges an unprivileged user or a user namespace lacks),
    /// only warns.
    fn xattr_result(entry: &Entry, key: &[u8], r: nix::Result<()>) -> Result<(), UnpackError> {
        match r {
            Ok(()) => Ok(()),
            Err(Errno::ENOTSUP) => {
                tracing::warn!(
                    "tar entry {:?}: extended attribute {} not supported by this filesystem, \
                     skipped",
                    entry.display_name(),
                    String::from_utf8_lossy(key)
                );
                Ok(())
            }
            Err(Errno::EPERM) => {
                tracing::warn!(
                    "tar entry {:?}: extended attribute {} not permitted to this user, skipped",
                    entry.display_name(),
                    String::from_utf8_lossy(key)
                );
                Ok(())
            }
            Err(e) => Err(entry_io(
                entry,
                format!("set xattr {}", String::from_utf8_lossy(key)),
                e,
            )),
        }
    }

    /// Directory mtimes, now that nothing more is written into them.
    fn finish(&mut self) -> Result<(), UnpackError> {
        self.cached_parent = None;
        for (path, time) in self.dir_times.drain(..).rev() {
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
            match open_beneath(self.root, &path, flags) {
                Ok(fd) => futimens(&fd, &time, &time).map_err(|e| UnpackError::Io {
                    what: format!("set mtime of {}", path.display()),
                    source: e.into(),
                })?,
                // Replaced or removed later in the same layer.
                Err(Errno::ENOENT) | Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => {}
                Err(e) => {
                    return Err(UnpackError::Io {
                        what: format!("open {} to set its mtime", path.display()),
                        source: e.into(),
                    })
                }
            }
        }
        Ok(())
    }
}

/// Rootless: the directory modes held back while the layers went in, deepest first.
pub fn apply_deferred_modes(
    root: BorrowedFd<'_>,
    deferred: &mut DeferredModes,
) -> Result<(), UnpackError> {
    for (path, mode) in deferred.take_deepest_first() {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
        match open_beneath(root, &path, flags) {
            Ok(fd) => fchmod(&fd, Mode::from_bits_truncate(mode)).map_err(|e| UnpackError::Io {
                what: format!("chmod {} to {mode:o}", in_root(&path).display()),
                source: e.into(),
            })?,
            // Replaced by something else since.
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => {}
            Err(e) => {
                return Err(UnpackError::Io {
                    what: format!("open {} to set its mode", in_root(&path).display()),
                    source: e.into(),
                })
            }
        }
    }
    Ok(())
}

fn xattr_name(entry: &Entry, key: &[u8]) -> Result<CString, UnpackError> {
    CString::new(key.to_vec()).map_err(|_| entry_err(entry, "xattr name contains NUL"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn marker(name: &str) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            link: Vec::new(),
            kind: Kind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            mtime_nsec: 0,
            dev_major: 0,
            dev_minor: 0,
            size: 0,
            sparse: None,
            xattrs: Vec::new(),
        }
    }

    /// Whiteouts hide what lower layers put there, never this layer's own entries, and of a
    /// directory this layer merged into only the lower children go.
    #[test]
    fn whiteouts_spare_this_layers_entries() {
        let dir = std::env::temp_dir().join(format!("brig-unpack-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for p in [
            "o/lower",
            "o/merged/lower",
            "o/merged/mine",
            "o/mine",
            "w/lower",
        ] {
            fs::create_dir_all(dir.join(p).parent().unwrap_or(&dir)).unwrap();
            fs::write(dir.join(p), "x").unwrap();
        }
        let root =
            nix::fcntl::open(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let mut a = Applier::new(root.as_fd(), Ownership::Chown, DeferredModes::default());
        for p in ["o/mine", "o/merged/mine"] {
            for q in with_ancestors(Path::new(p)) {
                a.layer_paths.insert(q.to_path_buf());
            }
        }
        a.opaque(&marker("o/.wh..wh..opq"), Path::new("o")).unwrap();
        assert!(!dir.join("o/lower").exists());
        assert!(!dir.join("o/merged/lower").exists());
        assert!(dir.join("o/merged/mine").exists());
        assert!(dir.join("o/mine").exists());
        a.whiteout(&marker("o/.wh.mine"), Path::new("o/mine"))
            .unwrap();
        assert!(dir.join("o/mine").exists(), "same-layer entry hidden");
        a.whiteout(&marker(".wh.w"), Path::new("w")).unwrap();
        assert!(!dir.join("w").exists());
        a.whiteout(&marker(".wh.nothing"), Path::new("nothing/here"))
            .unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    fn lgetxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
        let p = CString::new(path.as_os_str().as_bytes()).unwrap();
        let n = CString::new(name).unwrap();
        let mut buf = vec![0u8; 256];
        match xattr::lgetxattr(&p, &n, &mut buf) {
            Ok(len) => Some(buf[..len].to_vec()),
            Err(Errno::ENODATA) => None,
            Err(e) => panic!("lgetxattr {}: {e}", path.display()),
        }
    }

    /// Rootless: no chown (the files stay the caller's), the header's owner recorded, and a
    /// directory's mode that would lock its owner out held back until the end; a whiteout of
    /// the directory drops what was held back for it.
    #[test]
    fn rootless_records_owners_and_holds_back_dir_modes() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("brig-unpack-rl-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let root =
            nix::fcntl::open(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let mut a = Applier::new(root.as_fd(), Ownership::Rootless, DeferredModes::default());
        let mut archive = Archive::new(&[][..]);
        let mut locked = marker("locked");
        (locked.kind, locked.mode, locked.uid, locked.gid) = (Kind::Dir, 0o555, 1000, 1000);
        a.put(&locked, Path::new("locked"), &mut archive).unwrap();
        let mut f = marker("locked/f");
        (f.mode, f.uid) = (0o4755, 1000);
        a.put(&f, Path::new("locked/f"), &mut archive).unwrap();
        let mut gone = marker("gone");
        (gone.kind, gone.mode) = (Kind::Dir, 0o500);
        a.put(&gone, Path::new("gone"), &mut archive).unwrap();
        a.finish().unwrap();
        let meta = fs::metadata(dir.join("locked")).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o755, "held back while layers go in");
        let fmeta = fs::metadata(dir.join("locked/f")).unwrap();
        assert_eq!(fmeta.mode() & 0o7777, 0o4755);
        assert_eq!(
            (fmeta.uid(), fmeta.gid()),
            (0, 0),
            "chowned although rootless"
        );
        assert_eq!(
            lgetxattr(&dir.join("locked/f"), "user.rootlesscontainers"),
            rootless_xattr(1000, 0)
        );
        assert_eq!(
            lgetxattr(&dir.join("locked"), "user.rootlesscontainers"),
            rootless_xattr(1000, 1000)
        );
        // A later layer: the held-back modes carry over; a whiteout drops one.
        let deferred = std::mem::take(&mut a.deferred);
        let mut b = Applier::new(root.as_fd(), Ownership::Rootless, deferred);
        b.whiteout(&marker(".wh.gone"), Path::new("gone")).unwrap();
        b.finish().unwrap();
        let mut deferred = std::mem::take(&mut b.deferred);
        apply_deferred_modes(root.as_fd(), &mut deferred).unwrap();
        let meta = fs::metadata(dir.join("locked")).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o555);
        assert!(!dir.join("gone").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
