//! Writing `linux.resources` into cgroup v1 files, each failure naming the field and the file.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use super::devices::Rule;
use super::Cgroup;
use crate::error::{Context, Error, Result};

fn write(cg: &Cgroup, controller: &str, file: &str, value: &str, field: &str) -> Result<()> {
    let h = cg.hierarchy(controller).ok_or_else(|| {
        Error::config(
            format!("linux.resources.{field}"),
            format!("the {controller} cgroup controller is not available on this host"),
        )
    })?;
    super::write_file(&h.path, file, value, field)
}

fn exists(cg: &Cgroup, controller: &str, file: &str) -> bool {
    cg.hierarchy(controller)
        .is_some_and(|h| h.path.join(file).exists())
}

/// A new cpuset cgroup starts with no cpus and mems: copy the parent's so tasks can join.
pub fn inherit_cpuset(path: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = path.join(file);
        if fs::read_to_string(&own).is_ok_and(|v| !v.trim().is_empty()) {
            continue;
        }
        // Walk up to the nearest ancestor that has a value (parents may be new and empty too).
        let mut chain = vec![path.to_path_buf()];
        let mut value = String::new();
        let mut dir = path.parent();
        while let Some(d) = dir {
            match fs::read_to_string(d.join(file)) {
                Ok(v) if !v.trim().is_empty() => {
                    value = v.trim().to_string();
                    break;
                }
                Ok(_) => chain.push(d.to_path_buf()),
                Err(_) => break,
            }
            dir = d.parent();
        }
        for d in chain.iter().rev() {
            let target = d.join(file);
            fs::write(&target, &value)
                .ctx(|| format!("write {value:?} to {}", target.display()))?;
        }
    }
    Ok(())
}

/// Everything but the device rules (`update` changes nothing here: v1 itself refuses a
/// memory limit below the usage, which is what `checkBeforeUpdate` asks for).
pub fn apply_limits(cg: &Cgroup, r: &LinuxResources, _update: bool) -> Result<()> {
    if let Some(m) = r.memory() {
        apply_memory(cg, m)?;
    }
    if let Some(c) = r.cpu() {
        if let Some(v) = c.shares() {
            write(cg, "cpu", "cpu.shares", &v.to_string(), "cpu.shares")?;
        }
        // The period first: a quota is checked against the period in force.
        if let Some(v) = c.period() {
            write(cg, "cpu", "cpu.cfs_period_us", &v.to_string(), "cpu.period")?;
        }
        if let Some(v) = c.quota() {
            write(cg, "cpu", "cpu.cfs_quota_us", &v.to_string(), "cpu.quota")?;
        }
        if let Some(v) = c.burst() {
            write(cg, "cpu", "cpu.cfs_burst_us", &v.to_string(), "cpu.burst")?;
        }
        if let Some(v) = c.realtime_period() {
            write(
                cg,
                "cpu",
                "cpu.rt_period_us",
                &v.to_string(),
                "cpu.realtimePeriod",
            )?;
        }
        if let Some(v) = c.realtime_runtime() {
            write(
                cg,
                "cpu",
                "cpu.rt_runtime_us",
                &v.to_string(),
                "cpu.realtimeRuntime",
            )?;
        }
        if let Some(v) = c.idle() {
            write(cg, "cpu", "cpu.idle", &v.to_string(), "cpu.idle")?;
        }
        if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
            write(cg, "cpuset", "cpuset.cpus", v, "cpu.cpus")?;
        }
        if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
            write(cg, "cpuset", "cpuset.mems", v, "cpu.mems")?;
        }
    }
    if let Some(p) = r.pids() {
        // runc's rule: 0 leaves the limit alone, a negative limit means none.
        match p.limit() {
            0 => {}
            n if n < 0 => write(cg, "pids", "pids.max", "max", "pids.limit")?,
            n => write(cg, "pids", "pids.max", &n.to_string(), "pids.limit")?,
        }
    }
    if let Some(b) = r.block_io() {
        // Kernels without CFQ have only the BFQ files.
        let weight_file = if exists(cg, "blkio", "blkio.weight") {
            "blkio.weight"
        } else {
            "blkio.bfq.weight"
        };
        if let Some(v) = b.weight() {
            write(cg, "blkio", weight_file, &v.to_string(), "blockIO.weight")?;
        }
        if let Some(v) = b.leaf_weight() {
            write(
                cg,
                "blkio",
                "blkio.leaf_weight",
                &v.to_string(),
                "blockIO.leafWeight",
            )?;
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(w) = d.weight() {
                let file = format!("{weight_file}_device");
                write(
                    cg,
                    "blkio",
                    &file,
                    &format!("{}:{} {w}", d.major(), d.minor()),
                    "blockIO.weightDevice",
                )?;
            }
            if let Some(w) = d.leaf_weight() {
                let line = format!("{}:{} {w}", d.major(), d.minor());
                write(
                    cg,
                    "blkio",
                    "blkio.leaf_weight_device",
                    &line,
                    "blockIO.weightDevice",
                )?;
            }
        }
        let throttles = [
            (
                b.throttle_read_bps_device(),
                "blkio.throttle.read_bps_device",
                "blockIO.throttleReadBpsDevice",
            ),
            (
                b.throttle_write_bps_device(),
                "blkio.throttle.write_bps_device",
                "blockIO.throttleWriteBpsDevice",
            ),
            (
                b.throttle_read_iops_device(),
                "blkio.throttle.read_iops_device",
                "blockIO.throttleReadIOPSDevice",
            ),
            (
                b.throttle_write_iops_device(),
                "blkio.throttle.write_iops_device",
                "blockIO.throttleWriteIOPSDevice",
            ),
        ];
        for (list, file, field) in throttles {
            for d in list.iter().flatten() {
                write(
                    cg,
                    "blkio",
                    file,
                    &format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                    field,
                )?;
            }
        }
    }
    // A hybrid host may bind hugetlb to the unified hierarchy (this one does).
    match cg.hierarchy("hugetlb") {
        Some(h) if h.unified => super::v2::hugetlb(h, r.hugepage_limits().as_deref())?,
        _ => {
            for limit in r.hugepage_limits().iter().flatten() {
                let file = format!("hugetlb.{}.limit_in_bytes", limit.page_size());
                write(
                    cg,
                    "hugetlb",
                    &file,
                    &limit.limit().to_string(),
                    "hugepageLimits",
                )?;
            }
        }
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            write(
                cg,
                "net_cls",
                "net_cls.classid",
                &id.to_string(),
                "network.classID",
            )?;
        }
        for p in n.priorities().iter().flatten() {
            let line = format!("{} {}", p.name(), p.priority());
            write(
                cg,
                "net_prio",
                "net_prio.ifpriomap",
                &line,
                "network.priorities",
            )?;
        }
    }
    for (device, limit) in r.rdma().iter().flatten() {
        let mut line = device.clone();
        if let Some(h) = limit.hca_handles() {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = limit.hca_objects() {
            line.push_str(&format!(" hca_object={o}"));
        }
        write(cg, "rdma", "rdma.max", &line, "rdma")?;
    }
    if let Some(unified) = r.unified().as_ref().filter(|u| !u.is_empty()) {
        match cg.unified() {
            Some(h) => super::v2::write_unified(h, unified)?,
            None => return Err(Error::config(
                "linux.resources.unified",
                "needs the unified (cgroup v2) hierarchy; this host's controllers are cgroup v1",
            )),
        }
    }
    Ok(())
}

fn apply_memory(cg: &Cgroup, m: &oci_spec::runtime::LinuxMemory) -> Result<()> {
    let limit = m.limit().map(|v| v.to_string());
    let swap = m.swap().map(|v| v.to_string());
    // memory+swap may never be below memory: when raising the limit fails, the swap limit
    // has to grow first.
    let memory = |v: &String| write(cg, "memory", "memory.limit_in_bytes", v, "memory.limit");
    let memsw = |v: &String| {
        write(
            cg,
            "memory",
            "memory.memsw.limit_in_bytes",
            v,
            "memory.swap",
        )
    };
    match (&limit, &swap) {
        (Some(l), Some(s)) if memory(l).is_err() => {
            memsw(s)?;
            memory(l)?;
        }
        (Some(_), Some(s)) => memsw(s)?,
        (Some(l), None) => memory(l)?,
        (None, Some(s)) => memsw(s)?,
        (None, None) => {}
    }
    if let Some(v) = m.reservation() {
        write(
            cg,
            "memory",
            "memory.soft_limit_in_bytes",
            &v.to_string(),
            "memory.reservation",
        )?;
    }
    if let Some(v) = m.kernel() {
        write(
            cg,
            "memory",
            "memory.kmem.limit_in_bytes",
            &v.to_string(),
            "memory.kernel",
        )?;
    }
    if let Some(v) = m.kernel_tcp() {
        write(
            cg,
            "memory",
            "memory.kmem.tcp.limit_in_bytes",
            &v.to_string(),
            "memory.kernelTCP",
        )?;
    }
    if let Some(v) = m.swappiness() {
        if v > 100 {
            return Err(Error::config(
                "linux.resources.memory.swappiness",
                format!("{v} is above 100"),
            ));
        }
        write(
            cg,
            "memory",
            "memory.swappiness",
            &v.to_string(),
            "memory.swappiness",
        )?;
    }
    if m.disable_oom_killer() == Some(true) {
        write(
            cg,
            "memory",
            "memory.oom_control",
            "1",
            "memory.disableOOMKiller",
        )?;
    }
    if let Some(v) = m.use_hierarchy() {
        write(
            cg,
            "memory",
            "memory.use_hierarchy",
            if v { "1" } else { "0" },
            "memory.useHierarchy",
        )?;
    }
    Ok(())
}

/// Device rules in order (the first denies everything) into devices.allow / devices.deny.
pub fn apply_devices(cg: &Cgroup, rules: &[Rule]) -> Result<()> {
    if cg.hierarchy("devices").is_none() {
        return Ok(());
    }
    for rule in rules {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        write(cg, "devices", file, &rule.line(), "devices")?;
    }
    Ok(())
}

pub fn set_frozen(path: &Path, frozen: bool) -> Result<()> {
    let file = path.join("freezer.state");
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        fs::write(&file, want).ctx(|| format!("write {want} to {}", file.display()))?;
        let now = fs::read_to_string(&file).ctx(|| format!("read {}", file.display()))?;
        if now.trim() == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Other(format!(
                "{} stayed {} instead of {want}",
                file.display(),
                now.trim()
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
