//! The store's cache of unpacked rootfs trees (issue 15: a second `run --image` of an image
//! must cost about what a `run` of a ready bundle does).
//!
//! `STORE/rootfs/HEX` is one image's layers unpacked, read-only by convention, named by the
//! layers' chain ID (image-spec config.md: images that share all their layers share a tree).
//! It is made once, under the lock `.locks/rootfs-HEX` and the store lock shared (so `rmi`'s
//! collection never runs meanwhile), in `.HEX.unpack-PID-N` beside it, written to disk and
//! renamed into place: a tree that exists is complete. A container's rootfs is then
//!
//! - an overlayfs mount on `BUNDLE/rootfs`, the tree as its only lower layer, upper and work
//!   directories in `BUNDLE/.overlay/`: the container's writes land in the bundle, never in the
//!   tree (as root, when the kernel has overlayfs and accepts the directories); or
//! - a copy of the tree (`copy_file_range`, which clones extents where the filesystem can;
//!   holes stay holes; hard links stay links; owners, modes, xattrs and times kept): no
//!   hard link into the tree, so nothing the container does reaches it.
//!
//! Which trees are in use: an overlay bundle writes `BUNDLE/.brig-rootfs` (the store and the
//! tree it mounts) and registers itself in `STORE/rootfs/HEX.users/` (a file per bundle, holding
//! the bundle's path). [`collect`] removes a tree no image of the store names unless a
//! registered bundle still exists and still names it; registrations whose bundle is gone are
//! stale (a crash, a wiped state directory) and dropped. A copy needs the tree only while it
//! is made (under the store lock), so it registers nothing.

use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsStr};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::Whence;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::error::{Error, Result};
use super::pull::Progress;
use super::store::Store;
use super::unpack::{self, Layer, LayerStats, TempDir};
use crate::sys::xattr;

/// The cache's directory in the store.
pub const CACHE_DIR: &str = "rootfs";
/// In an overlay bundle: which tree of which store it mounts.
pub const MARKER: &str = ".brig-rootfs";
/// In an overlay bundle: the upper and work directories.
const OVERLAY_DIR: &str = ".overlay";

/// How a container gets its rootfs from the cached tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Attach {
    /// Overlay when it can be mounted, else a copy.
    #[default]
    Auto,
    Overlay,
    Copy,
}

impl FromStr for Attach {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "" | "auto" => Ok(Attach::Auto),
            "overlay" => Ok(Attach::Overlay),
            "copy" => Ok(Attach::Copy),
            other => Err(Error::invalid(
                format!("rootfs attach mode {other:?}"),
                "want auto, overlay or copy",
            )),
        }
    }
}

/// What [`attach`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attached {
    Overlay,
    Copy,
}

/// A complete tree of the cache.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The chain ID's hex: the tree's name.
    pub key: String,
    pub path: PathBuf,
    /// The layers' stats when this call unpacked it, None when the cache had it.
    pub unpacked: Option<Vec<LayerStats>>,
}

/// What `BUNDLE/.brig-rootfs` says.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    store: PathBuf,
    tree: String,
    /// The overlay was mounted `volatile` (no syncs, so a plain unmount is cheap).
    #[serde(default)]
    volatile: bool,
}

/// The chain ID (image-spec config.md) of `diff_ids`, as hex: ChainID(L0) = DiffID(L0),
/// ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln)). No layers: sha256 of "".
pub fn chain_id(diff_ids: &[String]) -> String {
    let mut chain: Option<String> = None;
    for diff_id in diff_ids {
        chain = Some(match chain {
            None => diff_id.clone(),
            Some(prev) => format!(
                "sha256:{}",
                hex(&Sha256::digest(format!("{prev} {diff_id}").as_bytes()))
            ),
        });
    }
    match chain {
        Some(c) => c.rsplit(':').next().unwrap_or(&c).to_string(),
        None => hex(&Sha256::digest(b"")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cache_dir(store: &Store) -> PathBuf {
    store.root().join(CACHE_DIR)
}

fn is_key(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The image's layers, read from the store, unpacked into `rootfs` (see [`unpack::unpack`]).
pub fn unpack_image(
    store: &Store,
    manifest: &ImageManifest,
    config: &ImageConfiguration,
    rootfs: &Path,
    what: &str,
    progress: &dyn Progress,
) -> Result<Vec<LayerStats>> {
    let open = |desc: &Descriptor| -> Result<Box<dyn Read + Send>> {
        let path = store.blob_path(desc.digest());
        match File::open(&path) {
            Ok(file) => Ok(Box::new(file)),
            Err(e) => Err(Error::io("open layer blob", path, e)),
        }
    };
    unpack_layers(&open, manifest, config, rootfs, what, progress)
}

/// A layer's blob by its descriptor.
pub type OpenLayer<'a> = dyn Fn(&Descriptor) -> Result<Box<dyn Read + Send + 'a>> + 'a;

/// The image's layers, each opened with `open` when the one before is applied, unpacked into
/// `rootfs` (see [`unpack::unpack`]).
pub fn unpack_layers(
    open: &OpenLayer<'_>,
    manifest: &ImageManifest,
    config: &ImageConfiguration,
    rootfs: &Path,
    what: &str,
    progress: &dyn Progress,
) -> Result<Vec<LayerStats>> {
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(Error::invalid(
            what,
            format!(
                "the manifest has {} layers but the config's rootfs.diff_ids has {}",
                manifest.layers().len(),
                diff_ids.len()
            ),
        ));
    }
    // Each layer's blob is opened only when the unpacker reaches it (the one before is
    // then done).
    let mut open_error = None;
    let mut previous: Option<&Descriptor> = None;
    let layers = manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map_while(|(desc, diff_id)| {
            if let Some(done) = previous.replace(desc) {
                progress.layer_done(done);
            }
            match open(desc) {
                Ok(inner) => Some(Layer {
                    reader: Counting {
                        inner,
                        desc,
                        progress,
                    },
                    media_type: desc.media_type().to_string(),
                    diff_id: diff_id.clone(),
                }),
                Err(e) => {
                    open_error = Some(e);
                    None
                }
            }
        });
    let stats = unpack::unpack(rootfs, layers).map_err(|e| Error::Unpack {
        what: what.to_string(),
        source: Box::new(e),
    });
    if let Some(e) = open_error {
        let _ = unpack::remove_tree(rootfs);
        return Err(e);
    }
    if stats.is_ok() {
        if let Some(last) = manifest.layers().last() {
            progress.layer_done(last);
        }
    }
    stats
}

/// A layer blob's reader that reports the compressed bytes read.
struct Counting<'a, 'r> {
    inner: Box<dyn Read + Send + 'r>,
    desc: &'a Descriptor,
    progress: &'a dyn Progress,
}

impl Read for Counting<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.layer_bytes(self.desc, n as u64);
        Ok(n)
    }
}

/// The cached tree of the image, unpacked now if the cache has none. The caller holds the
/// store lock shared (no collection meanwhile) for as long as it uses the tree unregistered.
pub fn tree(
    store: &Store,
    manifest: &ImageManifest,
    config: &ImageConfiguration,
    what: &str,
    progress: &dyn Progress,
) -> Result<Tree> {
    let key = chain_id(config.rootfs().diff_ids());
    let dir = cache_dir(store);
    let path = dir.join(&key);
    if path.is_dir() {
        return Ok(Tree {
            key,
            path,
            unpacked: None,
        });
    }
    create_cache_dir(&dir)?;
    let _lock = store.lock_named(&format!("rootfs-{key}"))?;
    // Another process may have made it while this one waited for the lock.
    if path.is_dir() {
        return Ok(Tree {
            key,
            path,
            unpacked: None,
        });
    }
    // Built in a locked temporary directory of the cache (what a crash leaves is swept),
    // written to disk, then renamed into place: a tree that exists is complete.
    let unpack_err = |e| Error::Unpack {
        what: what.to_string(),
        source: Box::new(e),
    };
    unpack::sweep_stale(&dir);
    let tmp = TempDir::create(&dir, &key).map_err(unpack_err)?;
    let built = tmp.path().join("rootfs");
    let stats = unpack_image(store, manifest, config, &built, what, progress)?;
    tmp.sync().map_err(|e| Error::io("sync", tmp.path(), e))?;
    fs::rename(&built, &path).map_err(|e| Error::io("rename", &built, e))?;
    drop(tmp);
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync directory", &dir, e))?;
    Ok(Tree {
        key,
        path,
        unpacked: Some(stats),
    })
}

/// `STORE/rootfs`, 0700: the trees hold the images' setuid files, for root's eyes only.
fn create_cache_dir(dir: &Path) -> Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io("create", dir, e)),
    }
}

/// Makes `BUNDLE/rootfs` (absent) from `tree`: an overlay mount or a copy, as `mode` says
/// (`Auto`: overlay as root when the kernel takes it, else a copy). `volatile`: the container's
/// writes are thrown away with it (`run --rm`), so the overlay skips every sync of its upper
/// directory (overlayfs' `volatile`, Linux 5.10; without it, an unmount syncs the whole upper
/// filesystem). On error nothing of it is left.
pub fn attach(
    store: &Store,
    tree: &Tree,
    bundle: &Path,
    mode: Attach,
    volatile: bool,
) -> Result<Attached> {
    let want_overlay = match mode {
        Attach::Copy => false,
        Attach::Overlay => true,
        Attach::Auto => nix::unistd::geteuid().is_root(),
    };
    if want_overlay {
        match overlay(store, tree, bundle, volatile) {
            Ok(()) => return Ok(Attached::Overlay),
            Err(e) if mode == Attach::Auto => {
                tracing::debug!("overlay rootfs not possible, copying the tree: {e}");
            }
            Err(e) => return Err(e),
        }
    }
    let rootfs = bundle.join("rootfs");
    let tmp = TempDir::create(bundle, "rootfs").map_err(|e| Error::Unpack {
        what: format!("copy {}", tree.path.display()),
        source: Box::new(e),
    })?;
    copy_tree(&tree.path, tmp.path())
        .map_err(|e| Error::io("copy the cached rootfs into", tmp.path(), e))?;
    tmp.rename_to(&rootfs).map_err(|e| Error::Unpack {
        what: format!("copy {}", tree.path.display()),
        source: Box::new(e),
    })?;
    Ok(Attached::Copy)
}

fn users_dir(store: &Store, key: &str) -> PathBuf {
    cache_dir(store).join(format!("{key}.users"))
}

/// A bundle's registration file name: its path hashed.
fn user_name(bundle: &Path) -> String {
    hex(&Sha256::digest(bundle.as_os_str().as_bytes()))[..32].to_string()
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io("resolve", path, e))
}

fn overlay(store: &Store, tree: &Tree, bundle: &Path, volatile: bool) -> Result<()> {
    let bundle = absolute(bundle)?;
    let store_root = absolute(store.root())?;
    let rootfs = bundle.join("rootfs");
    let upper = bundle.join(OVERLAY_DIR).join("upper");
    let work = bundle.join(OVERLAY_DIR).join("work");
    let lower = absolute(&tree.path)?;
    // The option string separates with ',' and lowerdir's list with ':'.
    for p in [&lower, &upper, &work] {
        if p.as_os_str().as_bytes().iter().any(|b| b",:\\".contains(b)) {
            return Err(Error::unsupported(
                format!("overlay rootfs {}", p.display()),
                "the path has ',', ':' or '\\'",
            ));
        }
    }
    let undo = |e: Error| {
        let _ = fs::remove_file(users_dir(store, &tree.key).join(user_name(&bundle)));
        let _ = fs::remove_file(bundle.join(MARKER));
        let _ = fs::remove_dir_all(bundle.join(OVERLAY_DIR));
        let _ = fs::remove_dir(&rootfs);
        e
    };
    let setup = || -> Result<()> {
        for dir in [&upper, &work] {
            fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        // The merged root shows the upper root's owner and mode: the image's, not ours.
        let top = fs::metadata(&lower).map_err(|e| Error::io("stat", &lower, e))?;
        std::os::unix::fs::chown(&upper, Some(top.uid()), Some(top.gid()))
            .map_err(|e| Error::io("chown", &upper, e))?;
        fs::set_permissions(&upper, fs::Permissions::from_mode(top.mode() & 0o7777))
            .map_err(|e| Error::io("chmod", &upper, e))?;
        fs::create_dir(&rootfs).map_err(|e| Error::io("create", &rootfs, e))?;
        // Registered before the mount: a collection never sees the tree mounted yet unused.
        let marker_path = bundle.join(MARKER);
        let write_marker = |volatile: bool| -> Result<()> {
            let marker = serde_json::to_vec(&Marker {
                store: store_root.clone(),
                tree: tree.key.clone(),
                volatile,
            })
            .map_err(|source| Error::Json {
                what: MARKER.into(),
                source,
            })?;
            fs::write(&marker_path, marker).map_err(|e| Error::io("write", &marker_path, e))
        };
        write_marker(volatile)?;
        let users = users_dir(store, &tree.key);
        fs::create_dir_all(&users).map_err(|e| Error::io("create", &users, e))?;
        let user = users.join(user_name(&bundle));
        fs::write(&user, bundle.as_os_str().as_bytes())
            .map_err(|e| Error::io("write", &user, e))?;
        // No redirects or metacopy: a layer's trusted.overlay.* xattrs steer nothing.
        let options = format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=nofollow,metacopy=off,index=off",
            lower.display(),
            upper.display(),
            work.display()
        );
        let mount = |options: &str| {
            nix::mount::mount(
                Some("overlay"),
                &rootfs,
                Some("overlay"),
                MsFlags::empty(),
                Some(options),
            )
        };
        let mounted = if volatile {
            match mount(&format!("{options},volatile")) {
                // A kernel before 5.10 does not know `volatile`: mount without it.
                Err(Errno::EINVAL) => {
                    write_marker(false)?;
                    mount(&options)
                }
                other => other,
            }
        } else {
            mount(&options)
        };
        mounted.map_err(|e| Error::io("mount overlay on", &rootfs, e.into()))
    };
    setup().map_err(undo)
}

/// `rootfs` is a mount point of its own (its device differs from its parent's).
fn is_mount_point(path: &Path) -> bool {
    match (
        fs::symlink_metadata(path),
        path.parent().map(fs::symlink_metadata),
    ) {
        (Ok(m), Some(Ok(p))) => m.is_dir() && m.dev() != p.dev(),
        _ => false,
    }
}

/// Removes a bundle made by [`attach`] (or any other bundle): the overlay unmounted first,
/// its registration dropped, then the directory (with `keep_dir`, only what is in it). The
/// container must be gone. A tree no image names any more and no other bundle uses goes
/// too, unless a pull or `rmi` holds the store.
pub fn release(bundle: &Path, keep_dir: bool) -> Result<()> {
    let rootfs = bundle.join("rootfs");
    let marker = fs::read(bundle.join(MARKER))
        .ok()
        .and_then(|b| serde_json::from_slice::<Marker>(&b).ok());
    if is_mount_point(&rootfs) {
        // A volatile overlay unmounts at once; another would sync its upper filesystem, which
        // a lazy unmount leaves to the kernel's writeback.
        let flags = match &marker {
            Some(m) if m.volatile => MntFlags::empty(),
            _ => MntFlags::MNT_DETACH,
        };
        nix::mount::umount2(&rootfs, flags)
            .or_else(|_| nix::mount::umount2(&rootfs, MntFlags::MNT_DETACH))
            .map_err(|e| Error::io("unmount", &rootfs, e.into()))?;
    }
    if is_mount_point(&rootfs) {
        return Err(Error::invalid(
            format!("bundle {}", bundle.display()),
            "its rootfs is still mounted",
        ));
    }
    let removed = if keep_dir {
        fs::read_dir(bundle).and_then(|entries| {
            for entry in entries {
                let path = entry?.path();
                if fs::symlink_metadata(&path)?.is_dir() {
                    unpack::remove_tree(&path)?;
                } else {
                    fs::remove_file(&path)?;
                }
            }
            Ok(())
        })
    } else {
        unpack::remove_tree(bundle)
    };
    match removed {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("remove", bundle, e)),
    }
    if let Some(marker) = marker {
        if !is_key(&marker.tree) {
            return Ok(());
        }
        let Ok(store) = Store::open_existing(&marker.store) else {
            return Ok(());
        };
        let bundle = absolute(bundle)?;
        let _ = fs::remove_file(users_dir(&store, &marker.tree).join(user_name(&bundle)));
        if let Ok(Some(_lock)) = store.try_lock_exclusive() {
            if let Err(e) = collect_locked(&store, Some(marker.tree.as_str())) {
                tracing::warn!("collect the cached rootfs {}: {e}", marker.tree);
            }
        }
    }
    Ok(())
}

/// What [`collect`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    /// Trees of images that are gone, no bundle using them.
    pub trees: usize,
    /// Trees kept because a bundle uses them although their image is gone.
    pub in_use: usize,
    /// Temporary directories a crashed unpack left.
    pub stale: usize,
}

/// Removes the cached trees no image of the store names and no bundle uses, stale
/// registrations, and what crashed unpacks left. Takes the store lock exclusive.
pub fn collect(store: &Store) -> Result<Collected> {
    let _lock = store.lock_exclusive()?;
    collect_locked(store, None)
}

/// The chain IDs of the images the store names.
fn live_keys(store: &Store) -> Result<HashSet<String>> {
    let mut keys = HashSet::new();
    for desc in store.index()?.manifests() {
        // An image that cannot be read keeps every tree: an error must not delete one.
        let (_, config) = store.image(desc)?;
        keys.insert(chain_id(config.rootfs().diff_ids()));
    }
    Ok(keys)
}

/// [`collect`] with the store lock held; `only`: look at that tree alone.
fn collect_locked(store: &Store, only: Option<&str>) -> Result<Collected> {
    let dir = cache_dir(store);
    let mut done = Collected {
        stale: unpack::sweep_stale(&dir),
        ..Collected::default()
    };
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(done),
        Err(e) => return Err(Error::io("read", &dir, e)),
    };
    let mut keys: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let key = name.strip_suffix(".users").unwrap_or(&name).to_string();
            is_key(&key).then_some(key)
        })
        .filter(|k| only.is_none_or(|o| o == k.as_str()))
        .collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return Ok(done);
    }
    let live = live_keys(store)?;
    for key in keys {
        let users = live_users(store, &key);
        let tree = dir.join(&key);
        if live.contains(&key) {
            continue;
        }
        if users > 0 {
            done.in_use += 1;
            continue;
        }
        let _ = fs::remove_dir(users_dir(store, &key));
        if tree.is_dir() {
            // Renamed out of its name first: a tree that is there is always complete.
            let doomed = dir.join(format!(".{key}.unpack-gc-{}", std::process::id()));
            fs::rename(&tree, &doomed).map_err(|e| Error::io("rename", &tree, e))?;
            unpack::remove_tree(&doomed).map_err(|e| Error::io("remove", &doomed, e))?;
            done.trees += 1;
        }
    }
    Ok(done)
}

/// The bundles registered as using tree `key` that still exist and still name it; the
/// registrations of the others are removed.
fn live_users(store: &Store, key: &str) -> usize {
    let users = users_dir(store, key);
    let Ok(entries) = fs::read_dir(&users) else {
        return 0;
    };
    let mut live = 0;
    for entry in entries.flatten() {
        let bundle = fs::read(entry.path())
            .ok()
            .map(|b| PathBuf::from(OsStr::from_bytes(&b)));
        let uses = bundle
            .and_then(|b| fs::read(b.join(MARKER)).ok())
            .and_then(|m| serde_json::from_slice::<Marker>(&m).ok())
            .is_some_and(|m| m.tree == key);
        if uses {
            live += 1;
        } else {
            let _ = fs::remove_file(entry.path());
        }
    }
    live
}

/// Copies the tree `src` into the existing empty directory `dst`: every file type, owners,
/// modes, xattrs, times, hard links among the copied files, holes. Never follows a symlink.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let mut links = HashMap::new();
    let root = fs::symlink_metadata(src)?;
    copy_dir(src, dst, &mut links)?;
    set_meta(src, dst, &root)
}

fn copy_dir(src: &Path, dst: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let meta = fs::symlink_metadata(&from)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            fs::DirBuilder::new().mode(0o700).create(&to)?;
            copy_dir(&from, &to, links)?;
            set_meta(&from, &to, &meta)?;
            continue;
        }
        if meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                // linkat without AT_SYMLINK_FOLLOW: a link to a symlink stays one.
                fs::hard_link(first, &to)?;
                continue;
            }
            links.insert((meta.dev(), meta.ino()), to.clone());
        }
        if kind.is_file() {
            copy_file(&from, &to, &meta)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else if kind.is_char_device() || kind.is_block_device() || kind.is_fifo() {
            let sflag = if kind.is_char_device() {
                SFlag::S_IFCHR
            } else if kind.is_block_device() {
                SFlag::S_IFBLK
            } else {
                SFlag::S_IFIFO
            };
            nix::sys::stat::mknod(&to, sflag, Mode::from_bits_truncate(0o600), meta.rdev())?;
        } else {
            continue; // sockets: an image has none worth keeping
        }
        set_meta(&from, &to, &meta)?;
    }
    Ok(())
}

/// A regular file, data extent by data extent (holes stay holes); `copy_file_range` below
/// `io::copy` clones extents where the filesystem can.
fn copy_file(from: &Path, to: &Path, meta: &fs::Metadata) -> io::Result<()> {
    let src = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(from)?;
    let mut dst = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(to)?;
    let size = meta.len() as i64;
    let mut pos = 0i64;
    while pos < size {
        let data = match nix::unistd::lseek(&src, pos, Whence::SeekData) {
            Ok(off) => off,
            Err(Errno::ENXIO) => break, // only a hole is left
            Err(e) => return Err(e.into()),
        };
        let hole = nix::unistd::lseek(&src, data, Whence::SeekHole).unwrap_or(size);
        let len = (hole.min(size) - data).max(0) as u64;
        (&src).seek(SeekFrom::Start(data as u64))?;
        dst.seek(SeekFrom::Start(data as u64))?;
        let copied = io::copy(&mut (&src).take(len), &mut dst)?;
        if copied < len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} shrank while copied", from.display()),
            ));
        }
        pos = data + len as i64;
    }
    dst.set_len(meta.len())
}

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))
}

/// Owner, then mode (a chown clears setuid), xattrs (a chown clears security.capability),
/// times last; never following `to` if it is a symlink.
fn set_meta(from: &Path, to: &Path, meta: &fs::Metadata) -> io::Result<()> {
    let symlink = meta.file_type().is_symlink();
    match std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid())) {
        Ok(()) => {}
        // Not root: the tree is the caller's own (an unprivileged unpack), keep what we can.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
        Err(e) => return Err(e),
    }
    if !symlink {
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    copy_xattrs(from, to)?;
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        to,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

fn copy_xattrs(from: &Path, to: &Path) -> io::Result<()> {
    let (from, to) = (cpath(from)?, cpath(to)?);
    let names = match read_sized(|buf| xattr::llistxattr(&from, buf)) {
        Ok(n) => n,
        Err(Errno::ENOTSUP) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = CString::new(name) else {
            continue;
        };
        let value = match read_sized(|buf| xattr::lgetxattr(&from, &name, buf)) {
            Ok(v) => v,
            Err(Errno::ENODATA) => continue,
            Err(e) => return Err(e.into()),
        };
        match xattr::lsetxattr(&to, &name, &value) {
            Ok(()) => {}
            // What this filesystem or this user cannot set (security.selinux, trusted.* as
            // non-root) the unpack could not have set either.
            Err(Errno::EPERM | Errno::ENOTSUP) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Calls `get` with an empty buffer for the size, then with one of that size (again if the
/// value grew meanwhile).
fn read_sized(get: impl Fn(&mut [u8]) -> nix::Result<usize>) -> nix::Result<Vec<u8>> {
    loop {
        let size = get(&mut [])?;
        let mut buf = vec![0u8; size];
        match get(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(Errno::ERANGE) => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = "sha256:".to_string() + &"a".repeat(64);
        let b = "sha256:".to_string() + &"b".repeat(64);
        assert_eq!(chain_id(std::slice::from_ref(&a)), "a".repeat(64));
        let ab = hex(&Sha256::digest(format!("{a} {b}").as_bytes()));
        assert_eq!(chain_id(&[a.clone(), b.clone()]), ab);
        assert_ne!(chain_id(&[b, a]), ab, "the order of layers counts");
        assert_eq!(chain_id(&[]).len(), 64);
    }

    #[test]
    fn attach_modes_parse() {
        assert_eq!("copy".parse::<Attach>().unwrap(), Attach::Copy);
        assert_eq!("".parse::<Attach>().unwrap(), Attach::Auto);
        assert!("reflink".parse::<Attach>().is_err());
    }

    #[test]
    fn copies_keep_links_holes_and_modes() {
        let base = std::env::temp_dir().join(format!("brig-cache-copy-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let (src, dst) = (base.join("src"), base.join("dst"));
        fs::create_dir_all(src.join("d")).unwrap();
        fs::write(src.join("d/f"), b"data").unwrap();
        fs::set_permissions(src.join("d/f"), fs::Permissions::from_mode(0o4751)).unwrap();
        fs::hard_link(src.join("d/f"), src.join("link")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("abs")).unwrap();
        let sparse = File::create(src.join("sparse")).unwrap();
        sparse.set_len(8 << 20).unwrap();
        (&sparse).seek(SeekFrom::Start(4 << 20)).unwrap();
        io::Write::write_all(&mut &sparse, b"x").unwrap();
        fs::create_dir(&dst).unwrap();
        copy_tree(&src, &dst).unwrap();
        assert_eq!(fs::read(dst.join("d/f")).unwrap(), b"data");
        let f = fs::symlink_metadata(dst.join("d/f")).unwrap();
        assert_eq!(f.mode() & 0o7777, 0o4751);
        assert_eq!(f.nlink(), 2);
        assert_eq!(
            f.ino(),
            fs::symlink_metadata(dst.join("link")).unwrap().ino()
        );
        assert_eq!(
            fs::read_link(dst.join("abs")).unwrap(),
            Path::new("/etc/passwd")
        );
        let s = fs::symlink_metadata(dst.join("sparse")).unwrap();
        assert_eq!(s.len(), 8 << 20);
        assert!(s.blocks() < 64, "holes stay holes: {} blocks", s.blocks());
        assert_eq!(
            fs::metadata(src.join("d")).unwrap().mtime(),
            fs::metadata(dst.join("d")).unwrap().mtime()
        );
        fs::remove_dir_all(&base).unwrap();
    }
}
