//! Container statistics from cgroup v1 files, in the shape `runc events` prints.

use std::fs;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::Cgroup;

fn read(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_string())
}

fn number(dir: &Path, file: &str) -> u64 {
    read(dir, file).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// "key value" lines (memory.stat, cpu.stat, cpuacct.stat) as a map.
fn key_values(dir: &Path, file: &str) -> Map<String, Value> {
    read(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), json!(v.trim().parse::<u64>().ok()?)))
        })
        .collect()
}

fn get(map: &Map<String, Value>, key: &str) -> u64 {
    map.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// `blkio.throttle.*_recursive` lines ("8:0 Read 4096") as runc's entries.
fn blkio_entries(dir: &Path, file: &str) -> Vec<Value> {
    read(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (dev, op, value) = (parts.next()?, parts.next()?, parts.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(json!({
                "major": major.parse::<u64>().ok()?,
                "minor": minor.parse::<u64>().ok()?,
                "op": op,
                "value": value.parse::<u64>().ok()?
            }))
        })
        .collect()
}

fn memory_entry(dir: &Path, prefix: &str) -> Value {
    json!({
        "usage": number(dir, &format!("{prefix}.usage_in_bytes")),
        "max": number(dir, &format!("{prefix}.max_usage_in_bytes")),
        "failcnt": number(dir, &format!("{prefix}.failcnt")),
        "limit": number(dir, &format!("{prefix}.limit_in_bytes")),
    })
}

/// The container's statistics; sections for controllers the host lacks are left out.
pub fn stats(cg: &Cgroup) -> Value {
    if cg.is_v2() {
        return cg.unified().map(|h| stats_v2(&h.path)).unwrap_or_default();
    }
    let mut data = Map::new();
    if let Some(h) = cg.hierarchy("cpuacct") {
        let dir = &h.path;
        let percpu: Vec<u64> = read(dir, "cpuacct.usage_percpu")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        // cpuacct.stat is in clock ticks; runc reports nanoseconds.
        let ticks_per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(100);
        let tick = 1_000_000_000 / ticks_per_second.max(1);
        let ticks = key_values(dir, "cpuacct.stat");
        let mut cpu = json!({
            "usage": {
                "total": number(dir, "cpuacct.usage"),
                "percpu": percpu,
                "kernel": get(&ticks, "system") * tick,
                "user": get(&ticks, "user") * tick,
            }
        });
        if let Some(h) = cg.hierarchy("cpu") {
            let stat = key_values(&h.path, "cpu.stat");
            cpu["throttling"] = json!({
                "periods": get(&stat, "nr_periods"),
                "throttled_periods": get(&stat, "nr_throttled"),
                "throttled_time": get(&stat, "throttled_time"),
            });
        }
        data.insert("cpu".into(), cpu);
    }
    if let Some(h) = cg.hierarchy("memory") {
        let dir = &h.path;
        let raw = key_values(dir, "memory.stat");
        data.insert(
            "memory".into(),
            json!({
                "cache": get(&raw, "cache"),
                "usage": memory_entry(dir, "memory"),
                "swap": memory_entry(dir, "memory.memsw"),
                "kernel": memory_entry(dir, "memory.kmem"),
                "kernelTCP": memory_entry(dir, "memory.kmem.tcp"),
                "raw": raw,
            }),
        );
    }
    if let Some(h) = cg.hierarchy("pids") {
        let limit = read(&h.path, "pids.max")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        data.insert(
            "pids".into(),
            json!({"current": number(&h.path, "pids.current"), "limit": limit}),
        );
    }
    if let Some(h) = cg.hierarchy("blkio") {
        let dir = &h.path;
        data.insert(
            "blkio".into(),
            json!({
                "ioServiceBytesRecursive": blkio_entries(dir, "blkio.throttle.io_service_bytes_recursive"),
                "ioServicedRecursive": blkio_entries(dir, "blkio.throttle.io_serviced_recursive"),
            }),
        );
    }
    if let Some(h) = cg.hierarchy("hugetlb").filter(|h| h.unified) {
        data.insert("hugetlb".into(), Value::Object(hugetlb_v2(&h.path)));
    } else if let Some(h) = cg.hierarchy("hugetlb") {
        let mut sizes = Map::new();
        for entry in fs::read_dir(&h.path).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(size) = name
                .strip_prefix("hugetlb.")
                .and_then(|n| n.strip_suffix(".usage_in_bytes"))
            {
                sizes.insert(
                    size.to_string(),
                    json!({
                        "usage": number(&h.path, &name),
                        "max": number(&h.path, &format!("hugetlb.{size}.max_usage_in_bytes")),
                        "failcnt": number(&h.path, &format!("hugetlb.{size}.failcnt")),
                    }),
                );
            }
        }
        data.insert("hugetlb".into(), Value::Object(sizes));
    }
    Value::Object(data)
}

/// How many times the kernel's OOM killer acted in the container's memory cgroup.
pub fn oom_kills(cg: &Cgroup) -> u64 {
    match cg.hierarchy("memory") {
        Some(h) if h.unified => get(&key_values(&h.path, "memory.events"), "oom_kill"),
        Some(h) => get(&key_values(&h.path, "memory.oom_control"), "oom_kill"),
        None => 0,
    }
}

/// A v2 limit file: "max" is no limit (runc reports u64::MAX).
fn limit(dir: &Path, file: &str) -> u64 {
    match read(dir, file).as_deref() {
        Some("max") => u64::MAX,
        Some(v) => v.parse().unwrap_or(0),
        None => 0,
    }
}

/// io.stat lines ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 …") as runc's blkio entries.
fn io_entries(dir: &Path, keys: [(&str, &str); 2]) -> Vec<Value> {
    let mut entries = Vec::new();
    for line in read(dir, "io.stat").unwrap_or_default().lines() {
        let mut parts = line.split_whitespace();
        let Some((major, minor)) = parts.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        let fields: Map<String, Value> = parts
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_string(), json!(v.parse::<u64>().ok()?)))
            })
            .collect();
        for (key, op) in keys {
            entries.push(
                json!({"major": major, "minor": minor, "op": op, "value": get(&fields, key)}),
            );
        }
    }
    entries
}

fn hugetlb_v2(dir: &Path) -> Map<String, Value> {
    let mut sizes = Map::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|n| n.strip_suffix(".current"))
            .filter(|s| !s.contains('.'))
        {
            let events = key_values(dir, &format!("hugetlb.{size}.events"));
            sizes.insert(
                size.to_string(),
                json!({"usage": number(dir, &name), "max": 0, "failcnt": get(&events, "max")}),
            );
        }
    }
    sizes
}

/// The same shape from cgroup v2 files (runc's conversion: µs → ns, `max` → u64::MAX).
fn stats_v2(dir: &Path) -> Value {
    let mut data = Map::new();
    let cpu = key_values(dir, "cpu.stat");
    if !cpu.is_empty() {
        data.insert(
            "cpu".into(),
            json!({
                "usage": {
                    "total": get(&cpu, "usage_usec") * 1000,
                    "percpu": [],
                    "kernel": get(&cpu, "system_usec") * 1000,
                    "user": get(&cpu, "user_usec") * 1000,
                },
                "throttling": {
                    "periods": get(&cpu, "nr_periods"),
                    "throttled_periods": get(&cpu, "nr_throttled"),
                    "throttled_time": get(&cpu, "throttled_usec") * 1000,
                }
            }),
        );
    }
    if dir.join("memory.current").exists() {
        let raw = key_values(dir, "memory.stat");
        let events = key_values(dir, "memory.events");
        data.insert(
            "memory".into(),
            json!({
                "cache": get(&raw, "file"),
                "usage": {
                    "usage": number(dir, "memory.current"),
                    "max": number(dir, "memory.peak"),
                    "failcnt": get(&events, "max"),
                    "limit": limit(dir, "memory.max"),
                },
                "swap": {
                    "usage": number(dir, "memory.swap.current"),
                    "max": number(dir, "memory.swap.peak"),
                    "failcnt": 0,
                    "limit": limit(dir, "memory.swap.max"),
                },
                "raw": raw,
            }),
        );
    }
    if dir.join("pids.current").exists() {
        data.insert(
            "pids".into(),
            json!({"current": number(dir, "pids.current"), "limit": limit(dir, "pids.max")}),
        );
    }
    if dir.join("io.stat").exists() {
        data.insert(
            "blkio".into(),
            json!({
                "ioServiceBytesRecursive": io_entries(dir, [("rbytes", "Read"), ("wbytes", "Write")]),
                "ioServicedRecursive": io_entries(dir, [("rios", "Read"), ("wios", "Write")]),
            }),
        );
    }
    let sizes = hugetlb_v2(dir);
    if !sizes.is_empty() {
        data.insert("hugetlb".into(), Value::Object(sizes));
    }
    Value::Object(data)
}
