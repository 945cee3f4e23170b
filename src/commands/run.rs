use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use libcontainer::image::bundle::BundleOptions;
use libcontainer::image::cache::Attach;

use super::create::CreateFlags;
use super::pull;
use crate::Cli;

/// Create and start a container, wait for it and exit with its status
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub create: CreateFlags,
    /// Return once the container has started instead of waiting for it
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits (delete it later)
    #[arg(long)]
    pub keep: bool,
    /// Accepted for runc compatibility: brig never makes itself a child subreaper
    #[arg(long)]
    pub no_subreaper: bool,
    /// Run an image (pulled, or found in the image store) instead of a bundle: it is unpacked
    /// into a bundle under the state directory, ROOT/bundles/ID, and the container's cgroup is
    /// brig-ID below the caller's own
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// With --image: remove the bundle when the container has exited
    #[arg(long, requires = "image", conflicts_with = "detach")]
    pub rm: bool,
    /// With --image: the image store (default: /var/lib/brig/images, $XDG_DATA_HOME/brig/images
    /// when not root)
    #[arg(long, requires = "image")]
    pub store: Option<PathBuf>,
    /// Container id
    pub id: String,
    /// With --image: arguments that replace the image's Cmd (after --)
    #[arg(last = true, requires = "image")]
    pub image_args: Vec<String>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    let Some(image) = &args.image else {
        let options = args.create.options(cli, &args.id)?;
        let code = libcontainer::container::run(&options, args.detach, args.keep)?;
        return Ok(u8::try_from(code).unwrap_or(255));
    };
    let bundle = image_bundle(cli, &args.id);
    if let Some(parent) = bundle.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("run --image: create {}", parent.display()))?;
    }
    let (store, manifest) =
        pull::find_or_pull(&pull::Args::for_reference(image, args.store.clone(), false))?;
    // An unprivileged caller gets runc's rootless config (user namespace with its own ids,
    // no cgroup limits, no cgroupsPath: only a delegated cgroup could be named) and a rootfs
    // it owns (image::unpack records the image's owners).
    let rootless = libcontainer::rootless::unprivileged();
    // The rootfs comes from the store's cache of unpacked trees: an overlay over it, or a
    // copy of it (BRIG_IMAGE_ROOTFS=auto|overlay|copy; `unpack`: the layers unpacked into
    // the bundle, no cache).
    let mode = std::env::var("BRIG_IMAGE_ROOTFS").unwrap_or_default();
    // A rootless caller unpacks into the bundle: it cannot mount an overlay, and a tree a
    // rootless unpack wrote can hold files its owner may not read, so it cannot be copied.
    let cache = match mode.as_str() {
        _ if rootless => None,
        "unpack" => None,
        other => Some(
            other
                .parse::<Attach>()
                .context("run --image: BRIG_IMAGE_ROOTFS")?,
        ),
    };
    let options = BundleOptions {
        cache,
        volatile: args.rm,
        args: (!args.image_args.is_empty()).then(|| args.image_args.clone()),
        terminal: Some(std::io::stdin().is_terminal()),
        readonly: Some(false),
        cgroups_path: (!rootless).then(|| format!("brig-{}", args.id)),
        ..BundleOptions::default()
    };
    pull::write_bundle(&store, &manifest, &bundle, &options, true, rootless)?;
    let mut create = args.create.clone();
    create.bundle = bundle.clone();
    let result = create
        .options(cli, &args.id)
        .and_then(|o| Ok(libcontainer::container::run(&o, args.detach, args.keep)?));
    // A container that could not run leaves no bundle behind; --rm removes it after exit.
    if result.is_err() || args.rm {
        remove_image_bundle(cli, &args.id);
    }
    Ok(u8::try_from(result?).unwrap_or(255))
}

/// Where `run --image` unpacks the image for container `id`.
pub fn image_bundle(cli: &Cli, id: &str) -> PathBuf {
    cli.root.join("bundles").join(id)
}

/// Removes the bundle `run --image` made for `id`, if any: its overlay rootfs unmounted, its
/// hold on the cached tree dropped. The container is gone by then (or never ran).
pub fn remove_image_bundle(cli: &Cli, id: &str) {
    let bundle = image_bundle(cli, id);
    if !bundle.exists() {
        return;
    }
    if let Err(e) = libcontainer::image::cache::release(&bundle, false) {
        tracing::warn!("remove bundle {}: {e}", bundle.display());
    }
}
