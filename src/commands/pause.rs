use anyhow::Result;

use crate::Cli;

/// Suspend every process of a container (cgroup freezer)
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container id
    pub id: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    libcontainer::container::pause(&cli.root, &args.id)?;
    Ok(0)
}
