use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use libcontainer::image::bundle::BundleOptions;

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
    let options = BundleOptions {
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

/// Removes the bundle `run --image` made for `id`, if any. The container is gone by then (or
/// never ran), so nothing is mounted beneath it. A rootless unpack may have left directories
/// the caller may not write (an image's 0555 ones): remove_tree opens them up first.
pub fn remove_image_bundle(cli: &Cli, id: &str) {
    let bundle = image_bundle(cli, id);
    if let Err(e) = libcontainer::image::unpack::remove_tree(&bundle) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("remove bundle {}: {e}", bundle.display());
        }
    }
}
