use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use libcontainer::spec_template::{self, Rootless};

use crate::Cli;

/// Write a default config.json into a bundle
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Bundle directory to write config.json in
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the config.json for an image (pulled, or found in the image store) instead of
    /// the default
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// With --image: the image store (default: /var/lib/brig/images, $XDG_DATA_HOME/brig/images
    /// when not root)
    #[arg(long, requires = "image")]
    pub store: Option<std::path::PathBuf>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    let rootless = match cli.rootless.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => bail!("--rootless: {other:?} is not true or false"),
    };
    let path = args.bundle.join("config.json");
    if path.exists() {
        bail!("write {}: the file exists, remove it first", path.display());
    }
    if let Some(image) = &args.image {
        return spec_for_image(image, args, rootless);
    }
    let text = if rootless {
        spec_template::rootless_spec_text(Rootless {
            uid: libcontainer::rootless::euid(),
            gid: libcontainer::rootless::egid(),
        })
    } else {
        spec_template::default_spec_text()
    };
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}

/// `spec --image`: the image's config.json, converted in a scratch bundle beside the target
/// (the conversion reads the image's /etc/passwd) and moved into place. With `--rootless`, on
/// `spec --rootless`'s config instead of the default.
fn spec_for_image(image: &str, args: &Args, rootless: bool) -> Result<u8> {
    use libcontainer::image::bundle::BundleOptions;
    let (store, manifest) = super::pull::find_or_pull(&super::pull::Args::for_reference(
        image,
        args.store.clone(),
        true,
    ))?;
    let scratch = args
        .bundle
        .join(format!(".brig-spec-{}", std::process::id()));
    let options = BundleOptions {
        config_only: true,
        ..BundleOptions::default()
    };
    let written = super::pull::write_bundle(&store, &manifest, &scratch, &options, true, rootless)
        .and_then(|()| {
            let path = args.bundle.join("config.json");
            std::fs::rename(scratch.join("config.json"), &path)
                .with_context(|| format!("write {}", path.display()))
        });
    let _ = libcontainer::image::unpack::remove_tree(&scratch);
    written?;
    Ok(0)
}
