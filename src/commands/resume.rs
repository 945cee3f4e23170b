use anyhow::Result;

use crate::Cli;

/// Resume every process of a paused container
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container id
    pub id: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    libcontainer::container::resume(&cli.root, &args.id)?;
    Ok(0)
}
