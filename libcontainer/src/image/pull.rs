//! `brig pull`: from any [`Source`] into the [`Store`], every byte verified.
//!
//! 1. the top manifest or index: against the reference's digest, the digest and size the
//!    source claims; from then on its computed digest is the image's identity;
//! 2. indexes (nested ones too) resolved to the platform's manifest, each against the
//!    descriptor that points to it;
//! 3. the manifest checked (image, not artifact; known layer types), the config fetched
//!    through its digest and parsed as an image config;
//! 4. layers staged in parallel (bounded threads), each streamed through its digest and size
//!    into the store; those the store has are not transferred;
//! 5. all committed to `blobs/`, then `index.json` names the image.
//!
//! A pull alone does not decompress, so it does not check the layers' `diff_ids`: they are
//! checked wherever a layer is unpacked (a bundle, the rootfs cache), as containerd checks
//! them at unpack and `skopeo copy` into an `oci:` layout not at all. [`pull_then`] runs such
//! an unpack while the layers download (`bundle::pull_bundle`).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use oci_spec::image::{
    Descriptor, DescriptorBuilder, Digest, ImageConfiguration, ImageManifest, MediaType,
};

use super::digest::{self, read_verified};
use super::error::{Error, Result};
use super::platform::{self, PlatformSpec};
use super::reference::Reference;
use super::source::{Source, MANIFEST_LIMIT};
use super::store::{Staged, Staging, Store, CONFIG_LIMIT};
use super::tee::{Tee, TeeReader};
use super::verify::{self, Parsed};

/// How deep indexes may nest (an index pointing to an index...).
const MAX_DEPTH: usize = 8;
/// Blobs of one image transferred at once.
pub const DEFAULT_JOBS: usize = 4;

#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The platform to take from an index; the host's when None.
    pub platform: Option<PlatformSpec>,
    pub jobs: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: None,
            jobs: DEFAULT_JOBS,
        }
    }
}

/// What a pull reports as it goes (the CLI draws bars or prints a summary).
pub trait Progress: Sync {
    /// A layer is about to be transferred; `present` when the store has it already.
    fn layer_start(&self, _desc: &Descriptor, _present: bool) {}
    fn layer_bytes(&self, _desc: &Descriptor, _bytes: u64) {}
    fn layer_done(&self, _desc: &Descriptor) {}
}

pub struct NoProgress;
impl Progress for NoProgress {}

#[derive(Debug, Clone)]
pub struct Pulled {
    /// The name index.json gives the image.
    pub name: String,
    /// The image manifest (for a multi-platform image, the chosen platform's).
    pub manifest: Descriptor,
    pub config: Digest,
    pub layers: Vec<Descriptor>,
    /// Blobs transferred into the store, and their bytes.
    pub fetched_blobs: usize,
    pub fetched_bytes: u64,
    /// Blobs the store had already.
    pub present_blobs: usize,
}

pub fn pull(
    source: &dyn Source,
    reference: &Reference,
    store: &Store,
    options: &PullOptions,
    progress: &dyn Progress,
) -> Result<Pulled> {
    pull_inner::<(), fn(Fetching<'_>)>(source, reference, store, options, progress, None).0
}

/// The image as it is being pulled: its manifest and config (verified), and its layers'
/// bytes as they arrive.
pub struct Fetching<'a> {
    pub manifest: &'a ImageManifest,
    /// The image manifest's descriptor (its digest is the image's identity).
    pub manifest_desc: &'a Descriptor,
    pub config: &'a ImageConfiguration,
    tees: &'a HashMap<Digest, Arc<Tee>>,
}

impl Fetching<'_> {
    /// The layer `desc`'s compressed bytes, read while they are written into the store: the
    /// reader waits for them, returns its end only once the whole blob verified (digest and
    /// size) and an error if it did not (or if the pull failed before it was fetched). What
    /// it hands out before its end is unverified: throw away what is made of it unless the
    /// end is reached.
    pub fn layer(&self, desc: &Descriptor) -> Result<TeeReader> {
        self.tees
            .get(desc.digest())
            .map(Tee::reader)
            .ok_or_else(|| {
                Error::invalid(format!("layer {}", desc.digest()), "not in the manifest")
            })
    }
}

/// [`pull`], with `then` run on its own thread as soon as the manifest and the config are
/// verified, while the layers download (`Fetching::layer`). The pull's result does not
/// depend on `then`'s, nor waits less: both are returned (`None` when `then` never ran: the
/// pull failed before the layers).
pub fn pull_then<T: Send>(
    source: &dyn Source,
    reference: &Reference,
    store: &Store,
    options: &PullOptions,
    progress: &dyn Progress,
    then: impl FnOnce(Fetching<'_>) -> T + Send,
) -> (Result<Pulled>, Option<T>) {
    pull_inner(source, reference, store, options, progress, Some(then))
}

fn pull_inner<T: Send, F: FnOnce(Fetching<'_>) -> T + Send>(
    source: &dyn Source,
    reference: &Reference,
    store: &Store,
    options: &PullOptions,
    progress: &dyn Progress,
    then: Option<F>,
) -> (Result<Pulled>, Option<T>) {
    let lock = match store.lock_shared() {
        Ok(lock) => lock,
        Err(e) => return (Err(e), None),
    };
    let image = match resolve(source, reference, store, options) {
        Ok(image) => image,
        Err(e) => return (Err(e), None),
    };
    let result = fetch(source, reference, store, options, progress, &image, then);
    drop(lock);
    result
}

/// The image manifest and its config, verified.
struct Resolved {
    manifest: ImageManifest,
    manifest_desc: Descriptor,
    bytes: Vec<u8>,
    config: ImageConfiguration,
    config_bytes: Vec<u8>,
}

/// Steps 1 to 3.
fn resolve(
    source: &dyn Source,
    reference: &Reference,
    store: &Store,
    options: &PullOptions,
) -> Result<Resolved> {
    let wanted = options.platform.clone().unwrap_or_else(PlatformSpec::host);
    let what = source.describe();

    // 1. The top manifest or index.
    let top = source.top()?;
    if top.bytes.len() as u64 > MANIFEST_LIMIT {
        return Err(Error::TooBig {
            what: format!("{what}: manifest"),
            size: top.bytes.len() as u64,
            limit: MANIFEST_LIMIT,
        });
    }
    if let Some(pinned) = reference.digest() {
        digest::verify_bytes(&format!("{what}: manifest"), &top.bytes, pinned, None)?;
    }
    if let Some(claimed) = &top.claimed_digest {
        digest::verify_bytes(
            &format!("{what}: manifest"),
            &top.bytes,
            claimed,
            top.claimed_size,
        )?;
    }
    let mut bytes = top.bytes;
    let mut media_type = top.media_type;
    let mut chosen_platform = None;

    // 2. Down the indexes to the manifest.
    let mut depth = 0;
    let (manifest, manifest_type) = loop {
        let digest = digest::sha256(&bytes);
        let label = format!("{what}: {digest}");
        match verify::parse(&label, &bytes, media_type.as_deref())? {
            (Parsed::Manifest(m), t) => break (m, t),
            (Parsed::Index(index), _) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Error::invalid(
                        label,
                        format!("indexes nest more than {MAX_DEPTH} deep"),
                    ));
                }
                let entry = platform::choose(&label, index.manifests(), &wanted)?;
                let entry_type = entry.media_type().to_string();
                if !verify::ACCEPT.contains(&entry_type.as_str()) {
                    return Err(Error::unsupported(
                        format!("{label}: entry {}", entry.digest()),
                        format!("media type {entry_type:?} is not an image manifest or index"),
                    ));
                }
                if entry.platform().is_some() {
                    chosen_platform = entry.platform().clone();
                }
                let child = format!("{what}: manifest {}", entry.digest());
                bytes = read_verified(
                    source.manifest(entry)?,
                    &child,
                    entry.digest(),
                    entry.size(),
                    MANIFEST_LIMIT,
                )?;
                media_type = Some(entry_type);
            }
        }
    };
    let manifest_digest = digest::sha256(&bytes);
    let manifest_desc = descriptor(
        MediaType::from(manifest_type.as_str()),
        bytes.len() as u64,
        manifest_digest.clone(),
        chosen_platform,
    )?;

    // 3. The config.
    let config_desc = manifest.config();
    let config_what = format!("{what}: config {}", config_desc.digest());
    let config_bytes = if store.has_blob(config_desc.digest()) {
        store.read_blob(config_desc, CONFIG_LIMIT)?
    } else {
        read_verified(
            source.blob(config_desc)?,
            &config_what,
            config_desc.digest(),
            config_desc.size(),
            CONFIG_LIMIT,
        )?
    };
    let config: ImageConfiguration =
        serde_json::from_slice(&config_bytes).map_err(|source| Error::Json {
            what: config_what.clone(),
            source,
        })?;
    let diff_ids = config.rootfs().diff_ids().len();
    if diff_ids != manifest.layers().len() {
        return Err(Error::invalid(
            config_what,
            format!(
                "{diff_ids} diff_ids for the manifest's {} layers",
                manifest.layers().len()
            ),
        ));
    }
    Ok(Resolved {
        manifest: *manifest,
        manifest_desc,
        bytes,
        config,
        config_bytes,
    })
}

/// Steps 4 and 5, with `then` (if any) running meanwhile; `then`'s value once it returned.
fn fetch<T: Send, F: FnOnce(Fetching<'_>) -> T + Send>(
    source: &dyn Source,
    reference: &Reference,
    store: &Store,
    options: &PullOptions,
    progress: &dyn Progress,
    image: &Resolved,
    then: Option<F>,
) -> (Result<Pulled>, Option<T>) {
    // 4. The layers, in parallel; each distinct digest once.
    let mut seen = HashSet::new();
    let layers: Vec<&Descriptor> = image
        .manifest
        .layers()
        .iter()
        .filter(|l| seen.insert(l.digest().clone()))
        .collect();
    let tees: HashMap<Digest, Arc<Tee>> = match then {
        Some(_) => layers
            .iter()
            .map(|l| (l.digest().clone(), Arc::new(Tee::default())))
            .collect(),
        None => HashMap::new(),
    };
    std::thread::scope(|scope| {
        let consumer = then.map(|then| {
            let fetching = Fetching {
                manifest: &image.manifest,
                manifest_desc: &image.manifest_desc,
                config: &image.config,
                tees: &tees,
            };
            scope.spawn(move || then(fetching))
        });
        let pulled = fetch_layers(
            source, reference, store, options, progress, image, &layers, &tees,
        );
        // Whatever did not arrive never will: readers waiting for it get the pull's error.
        let reason = match &pulled {
            Ok(_) => "the pull ended without this blob".to_string(),
            Err(e) => format!("pull failed: {e}"),
        };
        for tee in tees.values() {
            tee.fail(reason.clone());
        }
        let value = consumer.and_then(|c| c.join().ok());
        (pulled, value)
    })
}

#[allow(clippy::too_many_arguments)]
fn fetch_layers(
    source: &dyn Source,
    reference: &Reference,
    store: &Store,
    options: &PullOptions,
    progress: &dyn Progress,
    image: &Resolved,
    layers: &[&Descriptor],
    tees: &HashMap<Digest, Arc<Tee>>,
) -> Result<Pulled> {
    let what = source.describe();
    let Resolved {
        manifest,
        manifest_desc,
        bytes,
        config_bytes,
        ..
    } = image;
    let config_desc = manifest.config();
    let config_what = format!("{what}: config {}", config_desc.digest());
    let staging = Staging::new(store);
    let fetched = Mutex::new((0usize, 0u64, 0usize));
    let count = |staged: Staged| {
        let mut f = fetched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match staged {
            Staged::Fetched(bytes) => {
                f.0 += 1;
                f.1 += bytes;
            }
            Staged::Present => f.2 += 1,
        }
    };
    let stage_layer = |layer: &Descriptor| -> Result<()> {
        let present = store.has_blob(layer.digest());
        progress.layer_start(layer, present);
        let staged = staging.stage_teed(
            layer,
            &format!("{what}: layer {}", layer.digest()),
            || source.blob(layer),
            &|n| progress.layer_bytes(layer, n),
            tees.get(layer.digest()).map(|t| &**t),
        )?;
        progress.layer_done(layer);
        count(staged);
        Ok(())
    };
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let errors: Mutex<Vec<(usize, Error)>> = Mutex::new(Vec::new());
    let jobs = options.jobs.clamp(1, 16).min(layers.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= layers.len() || failed.load(Ordering::SeqCst) {
                    break;
                }
                if let Err(e) = stage_layer(layers[i]) {
                    failed.store(true, Ordering::SeqCst);
                    errors
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((i, e));
                }
            });
        }
    });
    let mut errors = errors
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    errors.sort_by_key(|(i, _)| *i);
    if let Some((_, err)) = errors.into_iter().next() {
        return Err(err);
    }
    count(staging.stage_bytes(config_desc, &config_what, config_bytes)?);
    count(staging.stage_bytes(manifest_desc, &format!("{what}: manifest"), bytes)?);

    // 5. Commit: content first, the manifest last, then the name.
    let mut order: Vec<&Descriptor> = layers.to_vec();
    order.push(config_desc);
    order.push(manifest_desc);
    for desc in order {
        let mut tries = 0;
        while !staging.commit_one(desc.digest())? {
            tries += 1;
            if tries > 3 {
                return Err(Error::Transport(format!(
                    "{what}: blob {} vanished from the store while committing",
                    desc.digest()
                )));
            }
            let reopen = || -> Result<Box<dyn Read + Send + '_>> {
                if desc == manifest_desc {
                    Ok(Box::new(bytes.as_slice()))
                } else if desc == config_desc {
                    Ok(Box::new(config_bytes.as_slice()))
                } else {
                    source.blob(desc)
                }
            };
            let staged = staging.stage(
                desc,
                &format!("{what}: blob {}", desc.digest()),
                reopen,
                &|_| {},
            )?;
            count(staged);
        }
    }
    drop(staging);
    let name = reference.store_name();
    store.add_image(&name, manifest_desc)?;
    let (fetched_blobs, fetched_bytes, present_blobs) = fetched
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok(Pulled {
        name,
        manifest: manifest_desc.clone(),
        config: config_desc.digest().clone(),
        layers: manifest.layers().clone(),
        fetched_blobs,
        fetched_bytes,
        present_blobs,
    })
}

fn descriptor(
    media_type: MediaType,
    size: u64,
    digest: Digest,
    platform: Option<oci_spec::image::Platform>,
) -> Result<Descriptor> {
    let mut desc = DescriptorBuilder::default()
        .media_type(media_type)
        .size(size)
        .digest(digest)
        .build()
        .map_err(|e| Error::invalid("descriptor", e.to_string()))?;
    desc.set_platform(platform);
    Ok(desc)
}
