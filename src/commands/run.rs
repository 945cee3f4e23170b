use anyhow::Result;

use super::create::CreateFlags;
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
    /// Container id
    pub id: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    let code =
        libcontainer::container::run(&args.create.options(cli, &args.id)?, args.detach, args.keep)?;
    Ok(u8::try_from(code).unwrap_or(255))
}
