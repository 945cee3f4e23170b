use anyhow::Result;

use crate::Cli;

/// Start a created container: run its process
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container id
    pub id: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    libcontainer::container::start(&cli.root, &args.id)?;
    Ok(0)
}
