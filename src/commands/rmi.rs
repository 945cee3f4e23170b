//! `brig rmi`: remove an image from the store and collect the blobs no other image uses.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use libcontainer::image::cache;
use libcontainer::image::store::Store;

use crate::Cli;

/// Remove an image from the image store
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image store (default: /var/lib/brig/images, $XDG_DATA_HOME/brig/images when not root)
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// The image: its name as pulled, or its manifest digest (or a unique prefix of it)
    pub image: String,
}

pub fn run(_cli: &Cli, args: &Args) -> Result<u8> {
    let root = args.store.clone().unwrap_or_else(Store::default_root);
    let store = Store::open(&root)?;
    let removed = store.remove(&args.image)?;
    let mut out = super::stdout();
    for name in &removed.names {
        writeln!(out, "untagged {name}")?;
    }
    writeln!(
        out,
        "deleted {} ({} blobs, {:.1} MB freed)",
        removed.digest,
        removed.blobs,
        removed.bytes as f64 / 1e6
    )?;
    // The unpacked trees of images that went, unless a container's bundle still uses one.
    let collected = cache::collect(&store)?;
    if collected.trees > 0 {
        writeln!(out, "removed {} cached rootfs trees", collected.trees)?;
    }
    if collected.in_use > 0 {
        writeln!(
            out,
            "kept {} cached rootfs trees that containers use (removed when they are deleted)",
            collected.in_use
        )?;
    }
    out.flush()?;
    Ok(0)
}
