use anyhow::Result;

use crate::Cli;

/// Delete a stopped container and everything create made for it
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Kill the container first if it is not stopped; a missing container is not an error
    #[arg(short, long)]
    pub force: bool,
    /// Container id
    pub id: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    libcontainer::container::delete(&cli.root, &args.id, args.force)?;
    // The bundle `run --image` unpacked for this container, if it made one.
    super::run::remove_image_bundle(cli, &args.id);
    Ok(0)
}
