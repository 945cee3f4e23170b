//! Layer application: a layer blob (any `Read`: a store file or a network stream) is
//! decompressed by its media type, hashed on the fly against its `diff_id`, and its tar
//! entries applied beneath a rootfs, whiteouts included, never writing outside it.
//!
//! `unpack` builds a whole rootfs from an image's layers in a temporary directory beside the
//! destination and renames it into place only when every layer applied and verified, so a
//! bad layer leaves nothing behind.

mod apply;
mod decompress;
mod owner;
mod path;
mod tar;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;

pub use decompress::Compression;
use owner::DeferredModes;
pub use owner::{rootless_xattr, Ownership, ROOTLESS_XATTR};

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("unsupported layer media type {0:?}")]
    MediaType(String),

    #[error("invalid diff_id {0:?}: want sha256:<64 hex> or sha512:<128 hex>")]
    BadDiffId(String),

    #[error("layer content does not match its diff_id: expected {expected}, got {actual}")]
    DiffIdMismatch { expected: String, actual: String },

    /// Reading or decompressing the layer stream failed (truncated gzip, corrupt zstd, ...).
    #[error("read layer: {0}")]
    Read(io::Error),

    #[error("malformed tar at byte {offset}: {reason}")]
    Tar { offset: u64, reason: String },

    #[error("tar entry {entry:?}: {reason}")]
    Entry { entry: String, reason: String },

    #[error("tar entry {entry:?}: {what}: {source}")]
    EntryIo {
        entry: String,
        what: String,
        source: io::Error,
    },

    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },

    /// Which layer (0-based, as in the manifest) failed in `unpack`.
    #[error("layer {index} ({diff_id}): {source}")]
    Layer {
        index: usize,
        diff_id: String,
        source: Box<UnpackError>,
    },
}

/// What one layer did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LayerStats {
    /// The verified uncompressed digest (equal to the `diff_id` asked for).
    pub diff_id: String,
    /// Uncompressed bytes read (the tar stream).
    pub tar_bytes: u64,
    pub entries: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub devices: u64,
    pub whiteouts: u64,
    /// Device nodes not permitted here (an unprivileged user namespace), skipped with a warning.
    pub skipped: u64,
    /// Entries whose header owner could not be given and was recorded in
    /// `user.rootlesscontainers` instead (a rootless unpack; see [`Ownership`]).
    pub owners_recorded: u64,
    /// Apparent size of the regular files written.
    pub bytes_written: u64,
}

/// One layer to apply: its blob stream, the media type from the manifest descriptor and the
/// `diff_id` from the image config.
pub struct Layer<R> {
    pub reader: R,
    pub media_type: String,
    pub diff_id: String,
}

/// Apply one layer to `rootfs` (an existing directory), owned as [`Ownership::for_caller`]
/// says. The digest is checked at the end of the stream, so on `DiffIdMismatch` (or any error)
/// the rootfs holds a partly applied layer: callers that must not keep it use `unpack`, which
/// throws the whole tree away.
pub fn apply_layer(
    rootfs: &Path,
    reader: impl Read + Send,
    media_type: &str,
    diff_id: &str,
) -> Result<LayerStats, UnpackError> {
    let root = open_root(rootfs)?;
    let mut deferred = DeferredModes::default();
    let stats = apply_one(
        root.as_fd(),
        reader,
        media_type,
        diff_id,
        Ownership::for_caller(),
        &mut deferred,
    )?;
    apply::apply_deferred_modes(root.as_fd(), &mut deferred)?;
    Ok(stats)
}

fn open_root(rootfs: &Path) -> Result<OwnedFd, UnpackError> {
    open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| UnpackError::Io {
        what: format!("open rootfs {}", rootfs.display()),
        source: e.into(),
    })
}

/// One layer; directory modes a rootless unpack holds back are added to `deferred`.
fn apply_one(
    root: BorrowedFd<'_>,
    reader: impl Read + Send,
    media_type: &str,
    diff_id: &str,
    ownership: Ownership,
    deferred: &mut DeferredModes,
) -> Result<LayerStats, UnpackError> {
    let compression = decompress::compression(media_type)?;
    let expected = decompress::parse_digest(diff_id)?;
    let mut applier = apply::Applier::new(root, ownership, std::mem::take(deferred));
    let result = decompress::read_ahead(reader, compression, expected.algorithm, |plain| {
        applier.apply_all(&mut tar::Archive::new(plain))
    });
    *deferred = std::mem::take(&mut applier.deferred);
    let ((), actual, tar_bytes) = result?;
    let wanted = format!("{}:{}", expected.algorithm, expected.hex);
    if actual != wanted {
        return Err(UnpackError::DiffIdMismatch {
            expected: wanted,
            actual,
        });
    }
    let mut stats = applier.stats;
    stats.diff_id = actual;
    stats.tar_bytes = tar_bytes;
    Ok(stats)
}

/// Build `rootfs` from `layers`, bottom first, owned as [`Ownership::for_caller`] says (see
/// [`unpack_with`]).
pub fn unpack<R, I>(rootfs: &Path, layers: I) -> Result<Vec<LayerStats>, UnpackError>
where
    R: Read + Send,
    I: IntoIterator<Item = Layer<R>>,
{
    unpack_with(rootfs, layers, Ownership::for_caller())
}

/// Build `rootfs` from `layers`, bottom first. `rootfs` must not exist (or be an empty
/// directory); its parent must. The layers go into a temporary directory beside it, renamed
/// into place at the end; on any error the temporary directory is removed and `rootfs` is
/// left as it was. Layers are read one after the other, so an iterator that opens (or starts
/// downloading) each lazily overlaps the next download with this application.
pub fn unpack_with<R, I>(
    rootfs: &Path,
    layers: I,
    ownership: Ownership,
) -> Result<Vec<LayerStats>, UnpackError>
where
    R: Read + Send,
    I: IntoIterator<Item = Layer<R>>,
{
    let io_err = |what: String| move |source: io::Error| UnpackError::Io { what, source };
    let parent = match rootfs.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = rootfs
        .file_name()
        .ok_or_else(|| UnpackError::Io {
            what: format!("unpack into {}", rootfs.display()),
            source: io::Error::new(io::ErrorKind::InvalidInput, "no final path component"),
        })?
        .to_string_lossy()
        .into_owned();
    // What a crashed unpack into the same place left (see `TempDir`).
    sweep_stale(&parent);
    match fs::read_dir(rootfs) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(UnpackError::Io {
                    what: format!("unpack into {}", rootfs.display()),
                    source: io::Error::new(io::ErrorKind::AlreadyExists, "directory is not empty"),
                });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(format!("unpack into {}", rootfs.display()))(e)),
    }

    let tmp = TempDir::create(&parent, &base)?;
    let root = open_root(&tmp.path)?;
    let mut deferred = DeferredModes::default();
    let mut all = Vec::new();
    for (index, layer) in layers.into_iter().enumerate() {
        let stats = apply_one(
            root.as_fd(),
            layer.reader,
            &layer.media_type,
            &layer.diff_id,
            ownership,
            &mut deferred,
        )
        .map_err(|e| UnpackError::Layer {
            index,
            diff_id: layer.diff_id.clone(),
            source: Box::new(e),
        })?;
        tracing::debug!(index, diff_id = %stats.diff_id, entries = stats.entries, "layer applied");
        all.push(stats);
    }
    apply::apply_deferred_modes(root.as_fd(), &mut deferred)?;
    fs::rename(&tmp.path, rootfs).map_err(io_err(format!(
        "rename {} to {}",
        tmp.path.display(),
        rootfs.display()
    )))?;
    tmp.keep();
    Ok(all)
}

/// Removes `path` and everything beneath it, never following a symlink. A rootfs a rootless
/// unpack wrote can hold directories whose mode keeps their owner out (an image's 0555
/// `/usr/bin`): those are made u+rwx first, which the owner may always do.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            unlock_dirs(path)?;
            fs::remove_dir_all(path)
        }
        other => other,
    }
}

/// Gives the owner rwx on every directory at or beneath `path`. Each directory is opened
/// with `O_NOFOLLOW` and changed through its own fd, so a name swapped for a symlink (by a
/// container that ran on this tree) changes nothing outside it.
fn unlock_dirs(path: &Path) -> io::Result<()> {
    let fd = match open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        // Not a directory, a symlink, or gone: nothing to unlock.
        Err(nix::errno::Errno::ENOTDIR)
        | Err(nix::errno::Errno::ELOOP)
        | Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let st = nix::sys::stat::fstat(&fd)?;
    if st.st_mode & 0o700 != 0o700 {
        // An O_PATH fd cannot be fchmod'ed; its /proc magic link names the directory itself.
        let proc = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        fs::set_permissions(
            &proc,
            fs::Permissions::from_mode((st.st_mode & 0o7777) | 0o700),
        )?;
    }
    for entry in fs::read_dir(path)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            unlock_dirs(&entry.path())?;
        }
    }
    Ok(())
}

/// The marker in the name of every temporary directory: `.BASE.unpack-PID-N`.
const TEMP_MARK: &str = ".unpack-";

fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(TEMP_MARK)
}

/// A directory being built (a rootfs, a copy of one), named `.BASE.unpack-PID-N` beside its
/// destination. Its owner holds an exclusive `flock` on it for as long as it lives, so
/// [`sweep_stale`] can tell one a crashed process left (lock free) from one being written (lock
/// held). Removed on drop unless renamed into place.
pub struct TempDir {
    path: PathBuf,
    lock: Flock<File>,
    keep: bool,
}

impl TempDir {
    /// A new, locked temporary directory in `parent` for the destination `base`.
    pub fn create(parent: &Path, base: &str) -> Result<Self, UnpackError> {
        let pid = std::process::id();
        let io_err = |path: &Path, source: io::Error| UnpackError::Io {
            what: format!("create {}", path.display()),
            source,
        };
        for attempt in 0..100u32 {
            let path = parent.join(format!(".{base}{TEMP_MARK}{pid}-{attempt}"));
            match nix::unistd::mkdir(&path, Mode::from_bits_truncate(0o755)) {
                Ok(()) => {}
                Err(nix::errno::Errno::EEXIST) => continue,
                Err(e) => return Err(io_err(&path, e.into())),
            }
            let dir = open_dir(&path).map_err(|e| io_err(&path, e))?;
            // A sweeper may hold the lock of a directory this process has just made (a crash
            // left one of this name and pid) and remove it: then take another name.
            let Ok(lock) = Flock::lock(dir, FlockArg::LockExclusiveNonblock) else {
                continue;
            };
            if !same_dir(&lock, &path) {
                continue;
            }
            return Ok(TempDir {
                path,
                lock,
                keep: false,
            });
        }
        Err(UnpackError::Io {
            what: format!("create a temporary directory in {}", parent.display()),
            source: io::Error::new(io::ErrorKind::AlreadyExists, "too many leftovers"),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes what is in the directory's filesystem to disk (`syncfs`).
    pub fn sync(&self) -> io::Result<()> {
        nix::unistd::syncfs(&*self.lock).map_err(io::Error::from)
    }

    /// Renames the directory to `dest` (complete); the lock goes with it.
    pub fn rename_to(self, dest: &Path) -> Result<(), UnpackError> {
        fs::rename(&self.path, dest).map_err(|source| UnpackError::Io {
            what: format!("rename {} to {}", self.path.display(), dest.display()),
            source,
        })?;
        self.keep();
        Ok(())
    }

    /// Not removed on drop (renamed into place).
    pub fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Removed while still locked, so no sweeper races the removal. remove_tree does not
        // follow symlinks (the layer may have planted some).
        if !self.keep {
            if let Err(e) = remove_tree(&self.path) {
                tracing::warn!(path = %self.path.display(), "remove unpack directory: {e}");
            }
        }
    }
}

fn open_dir(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// `dir` (an open directory) is still the one at `path`.
fn same_dir(dir: &File, path: &Path) -> bool {
    match (dir.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Removes the temporary directories (`.BASE.unpack-*`) in `parent` that a crashed unpack or
/// copy left: those whose owner's lock is free. One being written is left alone. Returns how
/// many went; errors are logged, never fatal (this is housekeeping before real work).
pub fn sweep_stale(parent: &Path) -> usize {
    let Ok(entries) = fs::read_dir(parent) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !is_temp_name(&name.to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        let Ok(dir) = open_dir(&path) else {
            continue;
        };
        let Ok(lock) = Flock::lock(dir, FlockArg::LockExclusiveNonblock) else {
            continue; // its owner is at work
        };
        if !same_dir(&lock, &path) {
            continue;
        }
        match fs::remove_dir_all(&path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "removed what a crashed unpack left");
                removed += 1;
            }
            Err(e) => tracing::warn!(path = %path.display(), "remove stale unpack directory: {e}"),
        }
        drop(lock);
    }
    removed
}
