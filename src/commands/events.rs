use std::time::Duration;

use anyhow::{bail, Result};

use crate::Cli;

/// Print container events as JSON lines: statistics, and oom when the OOM killer acts
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print statistics once and exit
    #[arg(long)]
    pub stats: bool,
    /// Time between statistics (e.g. 5s, 500ms)
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Container id
    pub id: String,
}

fn duration(text: &str) -> Result<Duration> {
    let (digits, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1000)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60_000)
    } else {
        (text, 1000)
    };
    match digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
    {
        Some(n) if n > 0 => Ok(Duration::from_millis(n)),
        _ => bail!("--interval: {text:?} is not a positive duration like 5s or 500ms"),
    }
}

pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    let interval = duration(&args.interval)?;
    let mut out = std::io::stdout().lock();
    libcontainer::container::events(&cli.root, &args.id, interval, args.stats, &mut out)?;
    Ok(0)
}
