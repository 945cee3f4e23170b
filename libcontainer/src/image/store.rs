//! The image store: an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`)
//! whose blobs are all verified, plus brig's private `.tmp/` (blobs being written) and
//! `.locks/` (one lock file per digest prefix).
//!
//! Concurrency and crashes: a pull holds the store lock shared (so `rmi`'s garbage
//! collection, which takes it exclusive, never deletes a blob a pull counts on) and takes
//! a blob's lock to write it. A blob is written to `.tmp/sha256-HEX.partial` through its
//! digest, fsynced, renamed to `.tmp/sha256-HEX` (verified, staged) and, once the whole image
//! is verified, renamed into `blobs/` (then the directory is fsynced) before `index.json`
//! (temp file, fsync, rename) names the image. A pull killed at any moment leaves at most a
//! partial or staged file in `.tmp/`, never a blob in `blobs/` that does not hash to its
//! name, nor an image whose blobs are not all there. A failed pull removes what it staged.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

use nix::fcntl::{Flock, FlockArg};
use oci_spec::image::{Descriptor, Digest, ImageConfiguration, ImageIndex, ImageManifest};

use super::digest::{self, VerifyingReader};
use super::error::{Error, Result};
use super::layout::REF_NAME;
use super::reference::Reference;
use super::tee::Tee;
use super::verify::{self, Parsed};

pub const DEFAULT_ROOT: &str = "/var/lib/brig/images";
/// The largest image config read into memory.
pub const CONFIG_LIMIT: u64 = 32 << 20;

pub struct Store {
    root: PathBuf,
}

/// The store lock, shared (pull) or exclusive (rmi); released when dropped.
pub struct StoreLock(#[allow(dead_code)] Flock<File>);

impl Store {
    /// `/var/lib/brig/images` for root, `$XDG_DATA_HOME/brig/images` (or
    /// `~/.local/share/brig/images`) for anyone else.
    pub fn default_root() -> PathBuf {
        if nix::unistd::geteuid().is_root() {
            return PathBuf::from(DEFAULT_ROOT);
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        data.join("brig/images")
    }

    /// Opens the store at `root`, creating an empty layout there if there is none.
    pub fn open(root: &Path) -> Result<Store> {
        let store = Store { root: root.into() };
        for dir in [
            root.join("blobs/sha256"),
            root.join(".tmp"),
            root.join(".locks"),
        ] {
            fs::create_dir_all(&dir).map_err(|e| Error::io("create store directory", &dir, e))?;
        }
        let _index = store.index_lock()?;
        let header = root.join("oci-layout");
        if !header.exists() {
            store.write_atomic(&header, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = root.join("index.json");
        if !index.exists() {
            store.write_atomic(&index, br#"{"schemaVersion":2,"manifests":[]}"#)?;
        }
        Ok(store)
    }

    /// The store at `root` if there is one, without creating anything.
    pub fn open_existing(root: &Path) -> Result<Store> {
        let header = root.join("oci-layout");
        if !header.is_file() {
            return Err(Error::NotFound {
                what: format!("image store {}", root.display()),
            });
        }
        Ok(Store { root: root.into() })
    }

    /// The image manifest `manifest` describes and the image config it points to, both read
    /// from the store and checked against their descriptors.
    pub fn image(&self, manifest: &Descriptor) -> Result<(ImageManifest, ImageConfiguration)> {
        let what = format!("image {}", manifest.digest());
        let bytes = self.read_blob(manifest, crate::image::source::MANIFEST_LIMIT)?;
        let manifest = match verify::parse(&what, &bytes, Some(manifest.media_type().as_ref()))?.0 {
            Parsed::Manifest(m) => *m,
            Parsed::Index(_) => {
                return Err(Error::invalid(
                    what,
                    "the store names an index, not an image manifest",
                ))
            }
        };
        let config_bytes = self.read_blob(manifest.config(), CONFIG_LIMIT)?;
        let config: ImageConfiguration =
            serde_json::from_slice(&config_bytes).map_err(|source| Error::Json {
                what: format!("{what}: config {}", manifest.config().digest()),
                source,
            })?;
        Ok((manifest, config))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().as_ref())
            .join(digest.digest())
    }

    fn staged_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join(".tmp")
            .join(format!("{}-{}", digest.algorithm(), digest.digest()))
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    fn lock_file(&self, path: &Path, arg: FlockArg) -> Result<Flock<File>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io("open lock", path, e))?;
        Flock::lock(file, arg).map_err(|(_, errno)| Error::io("lock", path, errno.into()))
    }

    /// Held (shared) for a whole pull.
    pub fn lock_shared(&self) -> Result<StoreLock> {
        self.lock_file(&self.root.join(".lock"), FlockArg::LockShared)
            .map(StoreLock)
    }

    /// Held by `rmi`: no pull is running meanwhile.
    pub fn lock_exclusive(&self) -> Result<StoreLock> {
        self.lock_file(&self.root.join(".lock"), FlockArg::LockExclusive)
            .map(StoreLock)
    }

    /// The store lock exclusive if no one holds it now (a `delete` collecting what it freed
    /// does not wait for a pull).
    pub fn try_lock_exclusive(&self) -> Result<Option<StoreLock>> {
        match self.lock_file(&self.root.join(".lock"), FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(StoreLock(lock))),
            Err(Error::Io { source, .. })
                if source.raw_os_error() == Some(nix::errno::Errno::EWOULDBLOCK as i32) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The exclusive lock `.locks/NAME` (one per cached rootfs tree: it is made once).
    pub fn lock_named(&self, name: &str) -> Result<StoreLock> {
        self.lock_file(
            &self.root.join(".locks").join(name),
            FlockArg::LockExclusive,
        )
        .map(StoreLock)
    }

    fn index_lock(&self) -> Result<Flock<File>> {
        self.lock_file(&self.root.join(".index.lock"), FlockArg::LockExclusive)
    }

    /// The lock of every digest whose hex starts like `digest`'s (at most 256 lock files).
    fn blob_lock(&self, digest: &Digest) -> Result<Flock<File>> {
        let stripe = digest.digest().get(..2).unwrap_or("00");
        self.lock_file(
            &self.root.join(".locks").join(stripe),
            FlockArg::LockExclusive,
        )
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("sync directory", dir, e))
    }

    /// `path` replaced by `bytes` in one step: temp file, fsync, rename, fsync of the directory.
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let write = || -> io::Result<()> {
            let mut file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o644)
                .open(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, path)
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io("write", path, e));
        }
        self.sync_dir(path.parent().unwrap_or(Path::new(".")))
    }

    /// A blob of the store, checked again against its descriptor as it is read.
    pub fn read_blob(&self, desc: &Descriptor, limit: u64) -> Result<Vec<u8>> {
        let path = self.blob_path(desc.digest());
        let file = File::open(&path).map_err(|e| Error::io("open blob", &path, e))?;
        digest::read_verified(
            file,
            &format!("store blob {}", desc.digest()),
            desc.digest(),
            desc.size(),
            limit,
        )
    }

    pub fn index(&self) -> Result<ImageIndex> {
        let path = self.root.join("index.json");
        let bytes = fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            what: path.display().to_string(),
            source,
        })
    }

    fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let path = self.root.join("index.json");
        let bytes = serde_json::to_vec_pretty(index).map_err(|source| Error::Json {
            what: path.display().to_string(),
            source,
        })?;
        self.write_atomic(&path, &bytes)
    }

    /// Names `desc` `name` in index.json (replacing what had that name). Writes nothing when
    /// the entry is already there.
    pub fn add_image(&self, name: &str, desc: &Descriptor) -> Result<bool> {
        let _lock = self.index_lock()?;
        let mut index = self.index()?;
        let mut desc = desc.clone();
        let mut annotations = desc.annotations().clone().unwrap_or_default();
        annotations.insert(REF_NAME.into(), name.into());
        desc.set_annotations(Some(annotations));
        let mut manifests = index.manifests().clone();
        if manifests.contains(&desc) {
            return Ok(false);
        }
        manifests.retain(|d| ref_name(d) != Some(name));
        manifests.push(desc);
        index.set_manifests(manifests);
        self.write_index(&index)?;
        Ok(true)
    }

    /// The images of the store, as index.json lists them.
    pub fn images(&self) -> Result<Vec<ImageInfo>> {
        let mut images = Vec::new();
        for desc in self.index()?.manifests() {
            let mut info = ImageInfo {
                name: ref_name(desc).map(str::to_string),
                digest: desc.digest().clone(),
                config: None,
                platform: desc
                    .platform()
                    .as_ref()
                    .map(|p| format!("{}/{}", p.os(), p.architecture())),
                size: desc.size(),
                created: None,
            };
            if let Ok(bytes) = self.read_blob(desc, crate::image::source::MANIFEST_LIMIT) {
                if let Ok((Parsed::Manifest(m), _)) =
                    verify::parse("manifest", &bytes, Some(desc.media_type().as_ref()))
                {
                    info.config = Some(m.config().digest().clone());
                    info.size +=
                        m.config().size() + m.layers().iter().map(|l| l.size()).sum::<u64>();
                    if let Ok(config) = self.read_blob(m.config(), CONFIG_LIMIT) {
                        if let Ok(config) = serde_json::from_slice::<serde_json::Value>(&config) {
                            info.created = config
                                .get("created")
                                .and_then(|c| c.as_str())
                                .map(str::to_string);
                            if let (Some(os), Some(arch)) = (
                                config.get("os").and_then(|v| v.as_str()),
                                config.get("architecture").and_then(|v| v.as_str()),
                            ) {
                                let variant = config
                                    .get("variant")
                                    .and_then(|v| v.as_str())
                                    .map(|v| format!("/{v}"))
                                    .unwrap_or_default();
                                info.platform = Some(format!("{os}/{arch}{variant}"));
                            }
                        }
                    }
                }
            }
            images.push(info);
        }
        Ok(images)
    }

    /// Removes the images `target` names (a name as pulled or as written on the command line,
    /// a digest, or a unique prefix of one's hex) and collects the blobs no image uses.
    pub fn remove(&self, target: &str) -> Result<Removed> {
        let _lock = self.lock_exclusive()?;
        let mut index = self.index()?;
        let canonical = target.parse::<Reference>().ok().map(|r| r.store_name());
        let hex = target.strip_prefix("sha256:").unwrap_or(target);
        let by_name: Vec<&Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| {
                let name = ref_name(d);
                name == Some(target) || (canonical.is_some() && name == canonical.as_deref())
            })
            .collect();
        let matched: Vec<Descriptor> = if !by_name.is_empty() {
            by_name.into_iter().cloned().collect()
        } else if hex.len() >= 3 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            let digests: HashSet<&Digest> = index
                .manifests()
                .iter()
                .map(|d| d.digest())
                .filter(|d| d.digest().starts_with(hex))
                .collect();
            if digests.len() > 1 {
                return Err(Error::invalid(
                    format!("image {target:?}"),
                    "the digest prefix names more than one image",
                ));
            }
            index
                .manifests()
                .iter()
                .filter(|d| digests.contains(d.digest()))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        if matched.is_empty() {
            return Err(Error::NotFound {
                what: format!("image {target:?} in the store {}", self.root.display()),
            });
        }
        let names = matched
            .iter()
            .map(|d| ref_name(d).unwrap_or("").to_string())
            .collect();
        let mut manifests = index.manifests().clone();
        manifests.retain(|d| !matched.contains(d));
        index.set_manifests(manifests);
        {
            let _index_lock = self.index_lock()?;
            self.write_index(&index)?;
        }
        let (blobs, bytes) = self.collect_garbage(&index)?;
        Ok(Removed {
            names,
            digest: matched[0].digest().clone(),
            blobs,
            bytes,
        })
    }

    /// Deletes every blob that no image of `index` reaches, and `.tmp/` (no pull runs: the
    /// caller holds the store lock exclusive).
    fn collect_garbage(&self, index: &ImageIndex) -> Result<(usize, u64)> {
        let mut keep: HashSet<String> = HashSet::new();
        let mut todo: Vec<Descriptor> = index.manifests().clone();
        while let Some(desc) = todo.pop() {
            if !keep.insert(desc.digest().digest().to_string()) {
                continue;
            }
            let media_type = desc.media_type().to_string();
            let is_manifest = verify::is_index_type(&media_type)
                || media_type == verify::OCI_MANIFEST
                || media_type == verify::DOCKER_MANIFEST;
            if !is_manifest {
                continue;
            }
            // An image whose manifest cannot be read keeps its manifest only; an error here
            // must not turn into deleting blobs another image uses, so reachability of what
            // can be read is all that decides.
            let Ok(bytes) = self.read_blob(&desc, crate::image::source::MANIFEST_LIMIT) else {
                continue;
            };
            match verify::parse("manifest", &bytes, Some(&media_type)) {
                Ok((Parsed::Index(i), _)) => todo.extend(i.manifests().iter().cloned()),
                Ok((Parsed::Manifest(m), _)) => {
                    todo.push(m.config().clone());
                    todo.extend(m.layers().iter().cloned());
                }
                Err(_) => {}
            }
        }
        let dir = self.root.join("blobs/sha256");
        let mut removed = (0usize, 0u64);
        for entry in fs::read_dir(&dir).map_err(|e| Error::io("read", &dir, e))? {
            let entry = entry.map_err(|e| Error::io("read", &dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if keep.contains(&name) {
                continue;
            }
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            fs::remove_file(entry.path()).map_err(|e| Error::io("remove", entry.path(), e))?;
            removed.0 += 1;
            removed.1 += size;
        }
        self.sync_dir(&dir)?;
        let tmp = self.root.join(".tmp");
        for entry in fs::read_dir(&tmp).map_err(|e| Error::io("read", &tmp, e))? {
            let entry = entry.map_err(|e| Error::io("read", &tmp, e))?;
            let _ = fs::remove_file(entry.path());
        }
        Ok(removed)
    }
}

pub fn ref_name(desc: &Descriptor) -> Option<&str> {
    desc.annotations()
        .as_ref()
        .and_then(|a| a.get(REF_NAME))
        .map(String::as_str)
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageInfo {
    pub name: Option<String>,
    pub digest: Digest,
    pub config: Option<Digest>,
    pub platform: Option<String>,
    /// Manifest, config and layers, as stored.
    pub size: u64,
    pub created: Option<String>,
}

#[derive(Debug)]
pub struct Removed {
    pub names: Vec<String>,
    pub digest: Digest,
    /// Blobs the garbage collection deleted, and their bytes.
    pub blobs: usize,
    pub bytes: u64,
}

/// The blobs one pull writes: staged in `.tmp/` while the image is verified, then committed
/// into `blobs/` together. Dropped without [`Staging::commit`], it removes what it staged.
pub struct Staging<'s> {
    store: &'s Store,
    created: Mutex<Vec<Digest>>,
}

/// What [`Staging::stage`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staged {
    /// Already in the store (or staged by a concurrent pull): nothing transferred.
    Present,
    /// Transferred, this many bytes.
    Fetched(u64),
}

impl<'s> Staging<'s> {
    pub fn new(store: &'s Store) -> Self {
        Staging {
            store,
            created: Mutex::new(Vec::new()),
        }
    }

    fn created(&self) -> std::sync::MutexGuard<'_, Vec<Digest>> {
        self.created
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes the blob `desc` present: unless the store (or a concurrent pull) has it, opens it
    /// with `open` and writes it through its digest and size. `progress` gets byte counts.
    pub fn stage<'a>(
        &self,
        desc: &Descriptor,
        what: &str,
        open: impl FnOnce() -> Result<Box<dyn Read + Send + 'a>>,
        progress: &dyn Fn(u64),
    ) -> Result<Staged> {
        self.stage_teed(desc, what, open, progress, None)
    }

    /// [`Staging::stage`], telling `tee` how far the blob is written and whether it verified,
    /// so that its bytes can be read while they arrive (see `tee`). A blob already present
    /// is handed to `tee` complete; on any error `tee` is failed.
    pub fn stage_teed<'a>(
        &self,
        desc: &Descriptor,
        what: &str,
        open: impl FnOnce() -> Result<Box<dyn Read + Send + 'a>>,
        progress: &dyn Fn(u64),
        tee: Option<&Tee>,
    ) -> Result<Staged> {
        let result = self.stage_inner(desc, what, open, progress, tee);
        if let (Err(e), Some(tee)) = (&result, tee) {
            tee.fail(e.to_string());
        }
        result
    }

    fn stage_inner<'a>(
        &self,
        desc: &Descriptor,
        what: &str,
        open: impl FnOnce() -> Result<Box<dyn Read + Send + 'a>>,
        progress: &dyn Fn(u64),
        tee: Option<&Tee>,
    ) -> Result<Staged> {
        let digest = desc.digest();
        digest::require_sha256(what, digest)?;
        let _lock = self.store.blob_lock(digest)?;
        let staged = self.store.staged_path(digest);
        for path in [self.store.blob_path(digest), staged.clone()] {
            if !path.is_file() {
                continue;
            }
            if let Some(tee) = tee {
                // Opened under the blob lock: a concurrent pull's staged copy cannot vanish
                // in between, and once open it stays readable.
                let file = File::open(&path).map_err(|e| Error::io("open blob", &path, e))?;
                tee.complete(file, desc.size());
            }
            return Ok(Staged::Present);
        }
        let reader = VerifyingReader::new(open()?, what, digest, desc.size())?;
        let partial = staged.with_extension("partial");
        match write_through(reader, &partial, what, progress, tee) {
            Ok(bytes) => {
                fs::rename(&partial, &staged).map_err(|e| {
                    let _ = fs::remove_file(&partial);
                    Error::io("rename", &partial, e)
                })?;
                self.created().push(digest.clone());
                Ok(Staged::Fetched(bytes))
            }
            Err(e) => {
                let _ = fs::remove_file(&partial);
                Err(e)
            }
        }
    }

    /// A blob already verified in memory (manifest, config).
    pub fn stage_bytes(&self, desc: &Descriptor, what: &str, bytes: &[u8]) -> Result<Staged> {
        self.stage(desc, what, || Ok(Box::new(bytes)), &|_| {})
    }

    /// Moves a staged blob into `blobs/`. False when it is neither there nor staged any more
    /// (a concurrent pull that staged it failed and removed it): stage it again.
    pub fn commit_one(&self, digest: &Digest) -> Result<bool> {
        let _lock = self.store.blob_lock(digest)?;
        let blob = self.store.blob_path(digest);
        let staged = self.store.staged_path(digest);
        self.created().retain(|d| d != digest);
        if blob.is_file() {
            let _ = fs::remove_file(&staged);
            return Ok(true);
        }
        if !staged.is_file() {
            return Ok(false);
        }
        fs::rename(&staged, &blob).map_err(|e| Error::io("rename", &staged, e))?;
        if let Some(dir) = blob.parent() {
            self.store.sync_dir(dir)?;
        }
        Ok(true)
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        let created = std::mem::take(&mut *self.created());
        for digest in created {
            if let Ok(_lock) = self.store.blob_lock(&digest) {
                let _ = fs::remove_file(self.store.staged_path(&digest));
            }
        }
    }
}

/// Streams `reader` into a new file at `path`, fsyncs it; the byte count.
fn write_through(
    mut reader: impl Read,
    path: &Path,
    what: &str,
    progress: &dyn Fn(u64),
    tee: Option<&Tee>,
) -> Result<u64> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    if let Some(tee) = tee {
        tee.started(file.try_clone().map_err(|e| Error::io("open", path, e))?);
    }
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::from_read(what, e)),
        };
        file.write_all(&buf[..n])
            .map_err(|e| Error::io("write", path, e))?;
        total += n as u64;
        progress(n as u64);
        if let Some(tee) = tee {
            tee.advance(total);
        }
    }
    // The reader returned its end: digest and size verified. Readers may finish before the
    // sync (whoever uses what they read waits for the pull's result).
    if let Some(tee) = tee {
        tee.verified(total);
    }
    file.sync_all().map_err(|e| Error::io("sync", path, e))?;
    Ok(total)
}

/// Every blob of the store hashes to its name, and every image's blobs are there: what the
/// tests check after a killed pull. The problems found, empty when consistent.
pub fn check(store: &Store) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let dir = store.root.join("blobs/sha256");
    let mut present = HashMap::new();
    for entry in fs::read_dir(&dir).map_err(|e| Error::io("read", &dir, e))? {
        let entry = entry.map_err(|e| Error::io("read", &dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(expected) = Digest::from_str(&format!("sha256:{name}")) else {
            problems.push(format!("blob {name}: not a digest"));
            continue;
        };
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        let file = File::open(entry.path()).map_err(|e| Error::io("open", entry.path(), e))?;
        if let Err(e) = digest::read_verified(file, &name, &expected, size, u64::MAX) {
            problems.push(e.to_string());
        }
        present.insert(name, size);
    }
    for desc in store.index()?.manifests() {
        let mut todo = vec![desc.clone()];
        while let Some(d) = todo.pop() {
            match present.get(d.digest().digest()) {
                Some(size) if *size == d.size() => {}
                _ => {
                    problems.push(format!(
                        "image {}: blob {} missing or of the wrong size",
                        ref_name(desc).unwrap_or("?"),
                        d.digest()
                    ));
                    continue;
                }
            }
            if let Ok(bytes) = store.read_blob(&d, crate::image::source::MANIFEST_LIMIT) {
                match verify::parse("manifest", &bytes, Some(d.media_type().as_ref())) {
                    Ok((Parsed::Manifest(m), _)) => {
                        todo.push(m.config().clone());
                        todo.extend(m.layers().iter().cloned());
                    }
                    Ok((Parsed::Index(i), _)) => todo.extend(i.manifests().iter().cloned()),
                    Err(_) => {}
                }
            }
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::MediaType;

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("brig-store-{name}-{}", std::process::id()))
    }

    fn tmp_is_empty(root: &Path) -> bool {
        fs::read_dir(root.join(".tmp")).unwrap().next().is_none()
    }

    #[test]
    fn staged_blobs_are_committed_or_removed() {
        let root = tmp("staging");
        let _ = fs::remove_dir_all(&root);
        let store = Store::open(&root).unwrap();
        let desc = Descriptor::new(MediaType::ImageLayer, 3, digest::sha256(b"abc"));
        {
            let staging = Staging::new(&store);
            assert_eq!(
                staging.stage_bytes(&desc, "blob", b"abc").unwrap(),
                Staged::Fetched(3)
            );
            assert!(!store.has_blob(desc.digest()));
        }
        assert!(
            tmp_is_empty(&root),
            "a dropped staging removes what it staged"
        );
        let staging = Staging::new(&store);
        staging.stage_bytes(&desc, "blob", b"abc").unwrap();
        assert!(staging.commit_one(desc.digest()).unwrap());
        drop(staging);
        assert!(store.has_blob(desc.digest()));
        let staging = Staging::new(&store);
        assert_eq!(
            staging.stage_bytes(&desc, "blob", b"abc").unwrap(),
            Staged::Present
        );
        // A blob that does not match its descriptor leaves nothing.
        let bad = Descriptor::new(MediaType::ImageLayer, 3, digest::sha256(b"abd"));
        let err = staging
            .stage(&bad, "blob", || Ok(Box::new(&b"abc"[..])), &|_| {})
            .unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(!store.has_blob(bad.digest()));
        assert!(tmp_is_empty(&root));
        assert!(check(&store).unwrap().is_empty());
        fs::remove_dir_all(&root).unwrap();
    }
}
