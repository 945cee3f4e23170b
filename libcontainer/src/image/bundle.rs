//! An image of the store as an OCI runtime bundle (issue 15): its layers unpacked, bottom
//! first, into `BUNDLE/rootfs` and its config converted into `BUNDLE/config.json`
//! (conversion.md). The layers are read from the store, where `pull` verified every byte;
//! `unpack` checks each uncompressed stream against the config's `rootfs.diff_ids` again.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};
use oci_spec::runtime::Spec;

use super::convert;
use super::error::{Error, Result};
use super::reference::Reference;
use super::source::MANIFEST_LIMIT;
use super::store::{ref_name, Store, CONFIG_LIMIT};
use super::unpack::{self, Layer, LayerStats};
use super::verify::{self, Parsed};

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
    let what = format!("image {}", manifest.digest());
    let bytes = store.read_blob(manifest, MANIFEST_LIMIT)?;
    let manifest = match verify::parse(&what, &bytes, Some(manifest.media_type().as_ref()))?.0 {
        Parsed::Manifest(m) => *m,
        Parsed::Index(_) => {
            return Err(Error::invalid(
                what,
                "the store names an index, not an image manifest",
            ))
        }
    };
    let config_bytes = store.read_blob(manifest.config(), CONFIG_LIMIT)?;
    let config: ImageConfiguration =
        serde_json::from_slice(&config_bytes).map_err(|source| Error::Json {
            what: format!("{what}: config {}", manifest.config().digest()),
            source,
        })?;
    Ok((manifest, config))
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
    let created = prepare_dir(bundle)?;
    let result = fill(store, manifest, bundle, base, options);
    if result.is_err() {
        // remove_tree: a rootless unpack can leave directories their owner may not write.
        if created {
            let _ = unpack::remove_tree(bundle);
        } else {
            let _ = unpack::remove_tree(&bundle.join("rootfs"));
            let _ = fs::remove_file(bundle.join("config.json"));
        }
    }
    result
}

/// Creates `bundle` (true) or checks that it is an empty directory (false).
fn prepare_dir(bundle: &Path) -> Result<bool> {
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

fn fill(
    store: &Store,
    manifest_desc: &Descriptor,
    bundle: &Path,
    base: Spec,
    options: &BundleOptions,
) -> Result<Vec<LayerStats>> {
    let (manifest, config) = image(store, manifest_desc)?;
    let what = format!("image {}", manifest_desc.digest());
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
    let rootfs = if options.config_only {
        bundle.join(".rootfs-for-config")
    } else {
        bundle.join("rootfs")
    };
    // Each layer's blob is opened only when the unpacker reaches it.
    let mut open_error = None;
    let layers = manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map_while(|(desc, diff_id)| {
            let path = store.blob_path(desc.digest());
            match File::open(&path) {
                Ok(file) => Some(Layer {
                    reader: file,
                    media_type: desc.media_type().to_string(),
                    diff_id: diff_id.clone(),
                }),
                Err(e) => {
                    open_error = Some(Error::io("open layer blob", path, e));
                    None
                }
            }
        });
    let stats = unpack::unpack(&rootfs, layers).map_err(|e| Error::Unpack {
        what: what.clone(),
        source: Box::new(e),
    });
    if let Some(e) = open_error {
        let _ = unpack::remove_tree(&rootfs);
        return Err(e);
    }
    let stats = stats?;
    if options.rootfs_only {
        return Ok(stats);
    }
    let spec = convert::runtime_config(&config, &rootfs, options.args.clone(), base);
    if options.config_only {
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
    write_config(bundle, &spec)?;
    Ok(stats)
}

fn write_config(bundle: &Path, spec: &Spec) -> Result<()> {
    let path = bundle.join("config.json");
    let tmp: PathBuf = bundle.join(".config.json.tmp");
    let text = serde_json::to_vec_pretty(spec).map_err(|source| Error::Json {
        what: path.display().to_string(),
        source,
    })?;
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(&text)?;
        file.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("write", &path, e)
    })
}
