//! `brig images`: what the image store holds.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use libcontainer::image::store::Store;

use crate::Cli;

/// List the images in the image store
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format
    #[arg(long, value_parser = ["table", "json"], default_value = "table")]
    pub format: String,
    /// The image store (default: /var/lib/brig/images, $XDG_DATA_HOME/brig/images when not root)
    #[arg(long)]
    pub store: Option<PathBuf>,
}

pub fn run(_cli: &Cli, args: &Args) -> Result<u8> {
    let root = args.store.clone().unwrap_or_else(Store::default_root);
    let images = if root.join("index.json").exists() {
        Store::open(&root)?.images()?
    } else {
        Vec::new()
    };
    let mut out = super::stdout();
    if args.format == "json" {
        writeln!(out, "{}", serde_json::to_string(&images)?)?;
        out.flush()?;
        return Ok(0);
    }
    let rows: Vec<[String; 5]> = images
        .iter()
        .map(|i| {
            [
                i.name.clone().unwrap_or_else(|| "<none>".into()),
                i.digest.digest().chars().take(12).collect::<String>(),
                i.platform.clone().unwrap_or_default(),
                format!("{:.1} MB", i.size as f64 / 1e6),
                i.created.clone().unwrap_or_default(),
            ]
        })
        .collect();
    super::write_table(
        &mut out,
        ["NAME", "DIGEST", "PLATFORM", "SIZE", "CREATED"],
        &rows,
    )?;
    out.flush()?;
    Ok(0)
}
