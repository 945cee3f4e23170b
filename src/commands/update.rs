use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use crate::Cli;

/// Change the resource limits of a running container
#[derive(clap::Args, Debug)]
pub struct Args {
    /// linux.resources JSON from a file, or - for stdin; the flags below override it
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Block IO weight (10-1000)
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period in microseconds
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(long)]
    pub cpu_share: Option<u64>,
    /// CPU realtime period in microseconds
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs to run on (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use (0-3, 0,1)
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Memory limit in bytes (suffixes k, m, g, t)
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit in bytes
    #[arg(long, allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit in bytes, -1 for unlimited swap
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Kernel memory limit in bytes (deprecated)
    #[arg(long, allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer memory limit in bytes (deprecated)
    #[arg(long, allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Maximum number of pids, -1 for unlimited
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Container id
    pub id: String,
}

/// "512m" → 536870912; "-1" stays -1.
fn bytes(flag: &str, text: &str) -> Result<i64> {
    let text = text.trim().to_ascii_lowercase();
    let text = text.strip_suffix('b').unwrap_or(&text);
    let (digits, unit) = match text.chars().last() {
        Some(c @ ('k' | 'm' | 'g' | 't')) => (&text[..text.len() - 1], c),
        _ => (text, ' '),
    };
    let n: i64 = digits
        .parse()
        .with_context(|| format!("--{flag}: {text:?} is not a size"))?;
    let shift = match unit {
        'k' => 10,
        'm' => 20,
        'g' => 30,
        't' => 40,
        _ => 0,
    };
    n.checked_mul(1 << shift)
        .with_context(|| format!("--{flag}: {text:?} is too large"))
}

fn set(obj: &mut Map<String, Value>, section: &str, key: &str, value: Value) {
    let entry = obj.entry(section).or_insert_with(|| json!({}));
    if let Some(map) = entry.as_object_mut() {
        map.insert(key.to_string(), value);
    }
}

pub fn run(cli: &Cli, args: &Args) -> Result<u8> {
    let mut resources: Value = match &args.resources {
        Some(path) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("read resources from stdin")?;
            serde_json::from_str(&text).context("parse resources JSON from stdin")?
        }
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("parse resources JSON in {}", path.display()))?
        }
        None => json!({}),
    };
    let Some(obj) = resources.as_object_mut() else {
        bail!("--resources: the JSON must be an object (linux.resources)");
    };
    if let Some(v) = args.blkio_weight {
        set(obj, "blockIO", "weight", json!(v));
    }
    for (key, value) in [
        ("period", args.cpu_period.map(|v| json!(v))),
        ("quota", args.cpu_quota.map(|v| json!(v))),
        ("shares", args.cpu_share.map(|v| json!(v))),
        ("realtimePeriod", args.cpu_rt_period.map(|v| json!(v))),
        ("realtimeRuntime", args.cpu_rt_runtime.map(|v| json!(v))),
        ("cpus", args.cpuset_cpus.as_ref().map(|v| json!(v))),
        ("mems", args.cpuset_mems.as_ref().map(|v| json!(v))),
    ] {
        if let Some(value) = value {
            set(obj, "cpu", key, value);
        }
    }
    for (flag, key, value) in [
        ("memory", "limit", &args.memory),
        (
            "memory-reservation",
            "reservation",
            &args.memory_reservation,
        ),
        ("memory-swap", "swap", &args.memory_swap),
        ("kernel-memory", "kernel", &args.kernel_memory),
        ("kernel-memory-tcp", "kernelTCP", &args.kernel_memory_tcp),
    ] {
        if let Some(text) = value {
            set(obj, "memory", key, json!(bytes(flag, text)?));
        }
    }
    if let Some(v) = args.pids_limit {
        set(obj, "pids", "limit", json!(v));
    }
    let resources: oci_spec::runtime::LinuxResources =
        serde_json::from_value(resources).context("linux.resources")?;
    libcontainer::container::update(&cli.root, &args.id, &resources)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::bytes;

    #[test]
    fn sizes() {
        assert_eq!(bytes("m", "512m").unwrap(), 512 << 20);
        assert_eq!(bytes("m", "1G").unwrap(), 1 << 30);
        assert_eq!(bytes("m", "-1").unwrap(), -1);
        assert_eq!(bytes("m", "100").unwrap(), 100);
        assert!(bytes("m", "x").is_err());
    }
}
