use std::collections::HashSet;
use std::io::Write;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::Cli;

/// List the processes of a container
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format: table (ps output) or json (an array of host pids)
    #[arg(short, long, value_parser = ["table", "json"], default_value = "table")]
    pub format: String,
    /// Container id
    pub id: String,
    /// Arguments for ps(1) in table format (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    let mut stdout = super::stdout();
    let state = libcontainer::state::load(&cli.root, &args.id)?;
    let pids = if state.status == libcontainer::state::Status::Stopped {
        Vec::new()
    } else {
        libcontainer::container::container_pids(&state)
    };
    if args.format == "json" {
        writeln!(stdout, "{}", serde_json::to_string(&pids)?)?;
        stdout.flush()?;
        return Ok(0);
    }
    let ps_args = if args.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        args.ps_args.clone()
    };
    let out = Command::new("ps")
        .args(&ps_args)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            ps_args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    let wanted: HashSet<String> = pids.iter().map(|p| p.to_string()).collect();
    writeln!(stdout, "{header}")?;
    for line in lines {
        if line
            .split_whitespace()
            .nth(column)
            .is_some_and(|p| wanted.contains(p))
        {
            writeln!(stdout, "{line}")?;
        }
    }
    stdout.flush()?;
    Ok(0)
}
