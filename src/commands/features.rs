use std::io::Write;

use anyhow::Result;

use crate::Cli;

/// Print what this runtime implements (runtime-spec features JSON)
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_cli: &Cli, _args: &Args) -> Result<u8> {
    let mut out = super::stdout();
    writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(&libcontainer::features::features_json())?
    )?;
    out.flush()?;
    Ok(0)
}
