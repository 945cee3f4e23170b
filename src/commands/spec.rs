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
