use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::Cli;

/// Write a default config.json into a bundle
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Bundle directory to write config.json in
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
}

pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    if cli.rootless.as_deref().is_some_and(|r| r == "true") {
        bail!("spec --rootless: rootless containers are not supported yet");
    }
    let path = args.bundle.join("config.json");
    if path.exists() {
        bail!("write {}: the file exists, remove it first", path.display());
    }
    let text = libcontainer::spec_template::default_spec_text();
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}
