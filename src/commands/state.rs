use std::io::Write;

use anyhow::Result;

use crate::Cli;

/// Print the state of a container as JSON
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container id
    pub id: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    let state = libcontainer::state::load(&cli.root, &args.id)?;
    let mut out = super::stdout();
    writeln!(out, "{}", serde_json::to_string_pretty(&state.public())?)?;
    out.flush()?;
    Ok(0)
}
