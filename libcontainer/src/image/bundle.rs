//! An image of the store as an OCI runtime bundle (issue 15): its layers unpacked, bottom
//! first, into `BUNDLE/rootfs` and its config converted into `BUNDLE/config.json`
//! (conversion.md). The layers are read from the store, where `pull` verified every byte;
//! `unpack` checks each uncompressed stream against the config's `rootfs.diff_ids` again.
//!
//! [`pull_bundle`] is `brig pull REF BUNDLE` as one pipeline: each layer is unpacked while
//! it downloads into the store (read back from the store's file as it is written, see
//! `tee`), the next ones downloading meanwhile; the rootfs is renamed into place only once
//! every layer's blob verified and every diff_id matched.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};
use oci_spec::runtime::Spec;

use super::cache::{self, Attach};
use super::convert;
use super::error::{Error, Result};
use super::pull::{self, NoProgress, Progress, PullOptions, Pulled};
use super::reference::Reference;
use super::source::Source;
use super::store::{ref_name, Store};
use super::unpack::{self, LayerStats};

/// What to write into the bundle.
#[derive(Debug, Default, Clone)]
pub struct BundleOptions {
    /// Replaces the image's `Cmd` (`-- ARGS`).
    pub args: Option<Vec<String>>,
    /// Only `rootfs/`, no `config.json`.
    pub rootfs_only: bool,
    /// Only `config.json`; the layers are still unpacked (into a directory that is removed)
    /// because `User` names resolve through the image's `/etc/passwd` and `/etc/group`.
    pub config_only: bool,
    /// Sets `process.terminal` (`run --image` gives a terminal only when it has one).
    pub terminal: Option<bool>,
    /// Sets `root.readonly` (`run --image` unpacks a private copy, so it may be written, as
    /// engines run images).
    pub readonly: Option<bool>,
    /// Sets `linux.cgroupsPath` (`run --image`: relative, so the container's cgroup lands
    /// below the caller's own, never at a hierarchy's root).
    pub cgroups_path: Option<String>,
    /// The rootfs from the store's cache of unpacked trees (made once per image), attached
    /// this way, instead of the layers unpacked into the bundle (`run --image`). A bundle so
    /// made is removed with [`cache::release`], which unmounts it.
    pub cache: Option<Attach>,
    /// With `cache`: the container's writes are thrown away with it (`run --rm`), so an
    /// overlay rootfs skips syncing them ([`cache::attach`]).
    pub volatile: bool,
}

/// The image manifest the store names `reference` (as `pull` named it), if it has one.
pub fn find(store: &Store, reference: &Reference) -> Result<Option<Descriptor>> {
    let name = reference.store_name();
    Ok(store
        .index()?
        .manifests()
        .iter()
        .find(|d| ref_name(d) == Some(name.as_str()))
        .cloned())
}

/// The manifest `manifest` describes and the image config it points to, both read from the
/// store and checked against their descriptors.
pub fn image(store: &Store, manifest: &Descriptor) -> Result<(ImageManifest, ImageConfiguration)> {
    store.image(manifest)
}

/// Writes the bundle for the image `manifest` of `store` at `bundle`, which must not exist or
/// be an empty directory. `base` is the config `brig spec` writes. On any error nothing is
/// left: a bundle directory this call created is removed, an empty one is emptied again.
pub fn write_bundle(
    store: &Store,
    manifest: &Descriptor,
    bundle: &Path,
    base: Spec,
    options: &BundleOptions,
) -> Result<Vec<LayerStats>> {
    write_bundle_with_progress(store, manifest, bundle, base, options, &NoProgress)
}

/// [`write_bundle`], telling `progress` how far each layer's unpack is (`layer_bytes`: bytes
/// of the blob, compressed, read so far; `layer_start` is not called).
pub fn write_bundle_with_progress(
    store: &Store,
    manifest: &Descriptor,
    bundle: &Path,
    base: Spec,
    options: &BundleOptions,
    progress: &dyn Progress,
) -> Result<Vec<LayerStats>> {
    // Held until the bundle is complete: no collection between finding a cached tree and
    // registering (or copying) it.
    let _lock = match options.cache {
        Some(_) => Some(store.lock_shared()?),
        None => None,
    };
    let created = prepare_dir(bundle)?;
    let result = fill(store, manifest, bundle, base, options, progress);
    if result.is_err() {
        if let Err(e) = cache::release(bundle, !created) {
            tracing::warn!("remove bundle {}: {e}", bundle.display());
        }
    }
    result
}

/// Creates `bundle` (true) or checks that it is an empty directory (false).
fn prepare_dir(bundle: &Path) -> Result<bool> {
    // What a crashed unpack into this bundle left does not make it "not empty".
    unpack::sweep_stale(bundle);
    match fs::read_dir(bundle) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::invalid(
                    format!("bundle {}", bundle.display()),
                    "the directory is not empty",
                ));
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir(bundle).map_err(|e| Error::io("create bundle", bundle, e))?;
            Ok(true)
        }
        Err(e) => Err(Error::io("read bundle", bundle, e)),
    }
}

/// Pulls the image `reference` names from `source` into `store` and writes its bundle at
/// `bundle` (absent or an empty directory) in the same pass: the layers are unpacked as
/// they arrive. `progress` hears of the downloads, `unpack_progress` of the unpacking.
/// Every check of [`pull::pull`] and [`write_bundle`] holds, and on any error of either
/// nothing of the bundle is left (the pull's error is the one returned when both failed).
/// `options.cache` is not supported here (a cached tree is made from the store).
#[allow(clippy::too_many_arguments)]
pub fn pull_bundle(
    source: &dyn Source,
    reference: &Reference,
    store: &Store,
    pull_options: &PullOptions,
    bundle: &Path,
    base: Spec,
    options: &BundleOptions,
    progress: &dyn Progress,
    unpack_progress: &dyn Progress,
) -> Result<(Pulled, Vec<LayerStats>)> {
    if options.cache.is_some() {
        return Err(Error::invalid(
            format!("bundle {}", bundle.display()),
            "a bundle on the rootfs cache is made from the store, not while pulling",
        ));
    }
    let created = prepare_dir(bundle)?;
    let (pulled, made) =
        pull::pull_then(source, reference, store, pull_options, progress, |image| {
            let what = format!("image {}", image.manifest_desc.digest());
            let open = |desc: &Descriptor| -> Result<Box<dyn Read + Send + '_>> {
                Ok(Box::new(image.layer(desc)?))
            };
            let rootfs = rootfs_dir(bundle, options);
            let stats = cache::unpack_layers(
                &open,
                image.manifest,
                image.config,
                &rootfs,
                &what,
                unpack_progress,
            )?;
            finish(image.config, rootfs, stats, bundle, base, options, what)
        });
    let result = match (pulled, made) {
        (Ok(pulled), Some(Ok(stats))) => Ok((pulled, stats)),
        (Err(e), _) | (Ok(_), Some(Err(e))) => Err(e),
        (Ok(_), None) => Err(Error::Transport(format!(
            "write bundle {}: the unpacking thread panicked",
            bundle.display()
        ))),
    };
    if result.is_err() {
        if let Err(e) = cache::release(bundle, !created) {
            tracing::warn!("remove bundle {}: {e}", bundle.display());
        }
    }
    result
}

fn rootfs_dir(bundle: &Path, options: &BundleOptions) -> PathBuf {
    if options.config_only {
        bundle.join(".rootfs-for-config")
    } else {
        bundle.join("rootfs")
    }
}

fn fill(
    store: &Store,
    manifest_desc: &Descriptor,
    bundle: &Path,
    base: Spec,
    options: &BundleOptions,
    progress: &dyn Progress,
) -> Result<Vec<LayerStats>> {
    let (manifest, config) = image(store, manifest_desc)?;
    let what = format!("image {}", manifest_desc.digest());
    let (rootfs, stats) = if let Some(attach) = options.cache {
        let tree = cache::tree(store, &manifest, &config, &what, progress)?;
        if !options.config_only {
            cache::attach(store, &tree, bundle, attach, options.volatile)?;
        }
        // The conversion reads the image's /etc/passwd from the tree, never written to.
        (tree.path, tree.unpacked.unwrap_or_default())
    } else {
        let rootfs = rootfs_dir(bundle, options);
        let stats = cache::unpack_image(store, &manifest, &config, &rootfs, &what, progress)?;
        (rootfs, stats)
    };
    finish(&config, rootfs, stats, bundle, base, options, what)
}

/// The bundle's config.json, once its rootfs is in place (`rootfs`: where the conversion
/// reads the image's /etc/passwd).
fn finish(
    config: &ImageConfiguration,
    rootfs: PathBuf,
    stats: Vec<LayerStats>,
    bundle: &Path,
    base: Spec,
    options: &BundleOptions,
    what: String,
) -> Result<Vec<LayerStats>> {
    if options.rootfs_only {
        return Ok(stats);
    }
    let spec = convert::runtime_config(config, &rootfs, options.args.clone(), base);
    if options.config_only && options.cache.is_none() {
        unpack::remove_tree(&rootfs).map_err(|e| Error::io("remove", &rootfs, e))?;
    }
    let mut spec = spec.map_err(|e| Error::invalid(what, e.to_string()))?;
    if let (Some(terminal), Some(mut process)) = (options.terminal, spec.process().clone()) {
        process.set_terminal(Some(terminal));
        spec.set_process(Some(process));
    }
    if let (Some(readonly), Some(mut root)) = (options.readonly, spec.root().clone()) {
        root.set_readonly(Some(readonly));
        spec.set_root(Some(root));
    }
    if let (Some(path), Some(mut linux)) = (&options.cgroups_path, spec.linux().clone()) {
        linux.set_cgroups_path(Some(PathBuf::from(path)));
        spec.set_linux(Some(linux));
    }
    // A bundle on a cached tree lives as long as its container: no fsync for it.
    write_config(bundle, &spec, options.cache.is_none())?;
    Ok(stats)
}

fn write_config(bundle: &Path, spec: &Spec, sync: bool) -> Result<()> {
    let path = bundle.join("config.json");
    let tmp: PathBuf = bundle.join(".config.json.tmp");
    let text = serde_json::to_vec_pretty(spec).map_err(|source| Error::Json {
        what: path.display().to_string(),
        source,
    })?;
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(&text)?;
        if sync {
            file.sync_all()?;
        }
        fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("write", &path, e)
    })
}
