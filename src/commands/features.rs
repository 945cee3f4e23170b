use anyhow::Result;

use crate::Cli;

/// Print what this runtime implements (runtime-spec features JSON)
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_cli: &Cli, _args: &Args) -> Result<u8> {
    println!(
        "{}",
        serde_json::to_string_pretty(&libcontainer::features::features())?
    );
    Ok(0)
}
