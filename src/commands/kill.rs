use anyhow::Result;

use crate::Cli;

/// Send a signal to a container's init (default TERM)
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Send the signal to every process of the container
    #[arg(short, long)]
    pub all: bool,
    /// Container id
    pub id: String,
    /// Signal as a number (9) or a name (KILL, SIGKILL)
    #[arg(default_value = "TERM")]
    pub signal: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    let signal = libcontainer::signal::parse(&args.signal)?;
    libcontainer::container::kill(&cli.root, &args.id, signal, args.all)?;
    Ok(0)
}
