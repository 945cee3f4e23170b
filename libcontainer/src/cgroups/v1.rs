//! Writing `linux.resources` into cgroup v1 files, each failure naming the field and the file.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::devices::Rule;
use super::{set, Cgroup, Plan, Write};
use crate::error::{Context, Error, Result};

/// The container's directory in the hierarchy of `controller`.
fn dir<'a>(cg: &'a Cgroup, controller: &str, field: &str) -> Result<&'a Path> {
    cg.hierarchy(controller)
        .map(|h| h.path.as_path())
        .ok_or_else(|| {
            Error::config(
                format!("linux.resources.{field}"),
                format!("the {controller} cgroup controller is not available on this host"),
            )
        })
}

fn write(
    plan: &mut Plan,
    cg: &Cgroup,
    controller: &str,
    file: &str,
    value: &str,
    field: &str,
) -> Result<()> {
    plan.write(dir(cg, controller, field)?, file, value, field)
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
            super::write_cgroup_file(&target, &value)
                .ctx(|| format!("write {value:?} to {}", target.display()))?;
        }
    }
    Ok(())
}

/// Everything but the device rules, with runc's reading of zero as "not set". `update` needs
/// nothing special here: v1 itself refuses a memory limit below the usage, which is what
/// `checkBeforeUpdate` asks for.
pub(crate) fn plan_limits(plan: &mut Plan, cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        plan_memory(plan, cg, m)?;
    }
    if let Some(c) = r.cpu() {
        plan_cpu(plan, cg, c)?;
    }
    if let Some(p) = r.pids() {
        // runc's rule: 0 leaves the limit alone, a negative limit means none.
        match p.limit() {
            0 => {}
            n if n < 0 => write(plan, cg, "pids", "pids.max", "max", "pids.limit")?,
            n => write(plan, cg, "pids", "pids.max", &n.to_string(), "pids.limit")?,
        }
    }
    if let Some(b) = r.block_io() {
        plan_blkio(plan, cg, b)?;
    }
    // A hybrid host may bind hugetlb to the unified hierarchy (this one does).
    match cg.hierarchy("hugetlb") {
        Some(h) if h.unified => super::v2::hugetlb(plan, h, r.hugepage_limits().as_deref())?,
        _ => {
            for limit in r.hugepage_limits().iter().flatten() {
                let file = format!("hugetlb.{}.limit_in_bytes", limit.page_size());
                let value = limit.limit().to_string();
                write(plan, cg, "hugetlb", &file, &value, "hugepageLimits")?;
            }
        }
    }
    if let Some(n) = r.network() {
        if let Some(id) = set(n.class_id()) {
            let value = id.to_string();
            write(
                plan,
                cg,
                "net_cls",
                "net_cls.classid",
                &value,
                "network.classID",
            )?;
        }
        for p in n.priorities().iter().flatten() {
            let line = format!("{} {}", p.name(), p.priority());
            let field = "network.priorities";
            write(plan, cg, "net_prio", "net_prio.ifpriomap", &line, field)?;
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
        write(plan, cg, "rdma", "rdma.max", &line, "rdma")?;
    }
    if let Some(unified) = r.unified().as_ref().filter(|u| !u.is_empty()) {
        match cg.unified() {
            Some(h) => super::v2::write_unified(plan, h, unified, Some(cg))?,
            None => {
                return Err(Error::config(
                    "linux.resources.unified",
                    "invalid configuration: needs the unified (cgroup v2) hierarchy; this \
                     host's controllers are cgroup v1",
                ))
            }
        }
    }
    Ok(())
}

fn plan_cpu(plan: &mut Plan, cg: &Cgroup, c: &LinuxCpu) -> Result<()> {
    // Real-time budgets first (runc sets them before the process joins: a SCHED_RR task
    // cannot join a cgroup without one), the period before the runtime.
    if let Some(v) = set(c.realtime_period()) {
        let value = v.to_string();
        write(
            plan,
            cg,
            "cpu",
            "cpu.rt_period_us",
            &value,
            "cpu.realtimePeriod",
        )?;
    }
    if let Some(v) = set(c.realtime_runtime()) {
        let value = v.to_string();
        write(
            plan,
            cg,
            "cpu",
            "cpu.rt_runtime_us",
            &value,
            "cpu.realtimeRuntime",
        )?;
    }
    if let Some(v) = set(c.shares()) {
        write(plan, cg, "cpu", "cpu.shares", &v.to_string(), "cpu.shares")?;
    }
    let period = set(c.period());
    let quota = set(c.quota());
    if period.is_some() || quota.is_some() {
        let cpu = dir(
            cg,
            "cpu",
            if period.is_some() {
                "cpu.period"
            } else {
                "cpu.quota"
            },
        )?;
        let period = period
            .map(|v| Write::new(cpu, "cpu.cfs_period_us", &v.to_string(), "cpu.period"))
            .transpose()?;
        let quota = quota
            .map(|v| Write::new(cpu, "cpu.cfs_quota_us", &v.to_string(), "cpu.quota"))
            .transpose()?;
        let field = if quota.is_some() {
            "cpu.quota"
        } else {
            "cpu.period"
        };
        plan.step(field, move || period_then_quota(period, quota));
    }
    if let Some(v) = c.burst() {
        write(
            plan,
            cg,
            "cpu",
            "cpu.cfs_burst_us",
            &v.to_string(),
            "cpu.burst",
        )?;
    }
    if let Some(v) = c.idle() {
        write(plan, cg, "cpu", "cpu.idle", &v.to_string(), "cpu.idle")?;
    }
    if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
        write(plan, cg, "cpuset", "cpuset.cpus", v, "cpu.cpus")?;
    }
    if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
        write(plan, cg, "cpuset", "cpuset.mems", v, "cpu.mems")?;
    }
    Ok(())
}

/// The period first: a quota is checked against the period in force. A shorter period can be
/// refused (EINVAL) because the old quota over the new period exceeds a parent's limit: then,
/// when a quota comes too, write it first and the period after it (runc's order).
fn period_then_quota(period: Option<Write>, quota: Option<Write>) -> Result<()> {
    let mut retry = None;
    if let Some(p) = period {
        match p.try_run() {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && quota.is_some() => {
                retry = Some(p);
            }
            Err(_) => p.run()?,
        }
    }
    if let Some(q) = quota {
        q.run()?;
    }
    if let Some(p) = retry {
        p.run()?;
    }
    Ok(())
}

fn plan_blkio(plan: &mut Plan, cg: &Cgroup, b: &LinuxBlockIo) -> Result<()> {
    // Kernels without CFQ have only the BFQ files, and without BFQ neither.
    let weight_file = if exists(cg, "blkio", "blkio.weight") {
        "blkio.weight"
    } else {
        "blkio.bfq.weight"
    };
    let no_weights = |field: &str| -> Result<()> {
        let blkio = dir(cg, "blkio", field)?;
        if blkio.join(weight_file).exists() {
            return Ok(());
        }
        Err(Error::config(
            format!("linux.resources.{field}"),
            format!(
                "neither blkio.weight nor blkio.bfq.weight exists in {}: the kernel's I/O \
                 scheduler has no weights (CFQ or BFQ)",
                blkio.display()
            ),
        ))
    };
    if let Some(v) = set(b.weight()) {
        no_weights("blockIO.weight")?;
        write(
            plan,
            cg,
            "blkio",
            weight_file,
            &v.to_string(),
            "blockIO.weight",
        )?;
    }
    if let Some(v) = set(b.leaf_weight()) {
        let field = "blockIO.leafWeight";
        write(
            plan,
            cg,
            "blkio",
            "blkio.leaf_weight",
            &v.to_string(),
            field,
        )?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = set(d.weight()) {
            let field = "blockIO.weightDevice";
            no_weights(field)?;
            let file = format!("{weight_file}_device");
            let line = format!("{}:{} {w}", d.major(), d.minor());
            write(plan, cg, "blkio", &file, &line, field)?;
        }
        if let Some(w) = set(d.leaf_weight()) {
            let line = format!("{}:{} {w}", d.major(), d.minor());
            let field = "blockIO.weightDevice.leafWeight";
            write(plan, cg, "blkio", "blkio.leaf_weight_device", &line, field)?;
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
            // A rate of 0 removes the device's limit (v1's own rule).
            let line = format!("{}:{} {}", d.major(), d.minor(), d.rate());
            write(plan, cg, "blkio", file, &line, field)?;
        }
    }
    Ok(())
}

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";

fn plan_memory(plan: &mut Plan, cg: &Cgroup, m: &LinuxMemory) -> Result<()> {
    let limit = set(m.limit());
    let mut swap = set(m.swap());
    if limit.is_some() || swap.is_some() {
        let field = if limit.is_some() {
            "memory.limit"
        } else {
            "memory.swap"
        };
        let memory = dir(cg, "memory", field)?;
        // No limit on memory and nothing said about swap: no limit on memory+swap either
        // (where the kernel accounts swap), or the old memsw limit would refuse it.
        if limit == Some(-1) && swap.is_none() && memory.join(MEMSW).exists() {
            swap = Some(-1);
        }
        let limit_w = limit
            .map(|v| Write::new(memory, LIMIT, &v.to_string(), "memory.limit"))
            .transpose()?;
        let swap_w = swap
            .map(|v| Write::new(memory, MEMSW, &v.to_string(), "memory.swap"))
            .transpose()?;
        // memory+swap may never be below memory: when both change, the one that makes room
        // goes first (runc's order, from the limit in force now).
        let swap_first = match (limit, swap) {
            (Some(_), Some(-1)) => true,
            (Some(_), Some(s)) => fs::read_to_string(memory.join(LIMIT))
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .is_some_and(|current| current < s as u64),
            _ => false,
        };
        let memory = memory.to_path_buf();
        plan.step(field, move || {
            let (first, second) = if swap_first {
                (swap_w, limit_w)
            } else {
                (limit_w, swap_w)
            };
            for w in [first, second].into_iter().flatten() {
                write_memory(&memory, &w)?;
            }
            Ok(())
        });
    }
    if let Some(v) = set(m.reservation()) {
        let field = "memory.reservation";
        let value = v.to_string();
        write(
            plan,
            cg,
            "memory",
            "memory.soft_limit_in_bytes",
            &value,
            field,
        )?;
    }
    // Kernel memory limits are deprecated (runc ignores them): applied where the kernel still
    // has the file, else left out with a warning.
    for (value, file, field) in [
        (m.kernel(), "memory.kmem.limit_in_bytes", "memory.kernel"),
        (
            m.kernel_tcp(),
            "memory.kmem.tcp.limit_in_bytes",
            "memory.kernelTCP",
        ),
    ] {
        let Some(v) = set(value) else { continue };
        if exists(cg, "memory", file) {
            write(plan, cg, "memory", file, &v.to_string(), field)?;
        } else {
            tracing::warn!("linux.resources.{field} ignored: the kernel has no {file}");
        }
    }
    if let Some(v) = m.swappiness().filter(|v| *v != u64::MAX) {
        let value = v.to_string();
        write(
            plan,
            cg,
            "memory",
            "memory.swappiness",
            &value,
            "memory.swappiness",
        )?;
    }
    if m.disable_oom_killer() == Some(true) {
        let field = "memory.disableOOMKiller";
        write(plan, cg, "memory", "memory.oom_control", "1", field)?;
    }
    // Current kernels are always hierarchical (they refuse 0); false is runc's "not set".
    if m.use_hierarchy() == Some(true) {
        let field = "memory.useHierarchy";
        write(plan, cg, "memory", "memory.use_hierarchy", "1", field)?;
    }
    Ok(())
}

/// A memory limit below the usage fails with EBUSY: say what the usage is.
fn write_memory(memory: &Path, w: &Write) -> Result<()> {
    match w.try_run() {
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) && w.path.ends_with(LIMIT) => {
            let read = |f: &str| {
                fs::read_to_string(memory.join(f))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_else(|_| "?".into())
            };
            Err(Error::config(
                format!("linux.resources.{}", w.field),
                format!(
                    "cannot set the memory limit to {} (current usage {}, peak usage {})",
                    w.value,
                    read("memory.usage_in_bytes"),
                    read("memory.max_usage_in_bytes")
                ),
            ))
        }
        _ => w.run(),
    }
}

/// Device rules in order (the first denies everything) into devices.allow / devices.deny.
pub(crate) fn plan_devices(plan: &mut Plan, cg: &Cgroup, rules: Vec<Rule>) -> Result<()> {
    let Some(h) = cg.hierarchy("devices") else {
        return Ok(());
    };
    let mut writes = Vec::with_capacity(rules.len());
    for rule in rules {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        writes.push(Write::new(&h.path, file, &rule.line(), "devices")?);
    }
    plan.step("devices", move || writes.iter().try_for_each(Write::run));
    Ok(())
}

/// The cgroup is frozen by itself, not only through an ancestor (runc's test).
pub fn self_frozen(path: &Path) -> Result<bool> {
    let file = path.join("freezer.state");
    loop {
        let state = match fs::read_to_string(&file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            other => other.ctx(|| format!("read {}", file.display()))?,
        };
        match state.trim() {
            "FROZEN" => {
                return Ok(fs::read_to_string(path.join("freezer.self_freezing"))
                    .map(|s| s.trim() == "1")
                    .unwrap_or(true))
            }
            "FREEZING" => std::thread::sleep(Duration::from_millis(1)),
            _ => return Ok(false),
        }
    }
}

pub fn set_frozen(path: &Path, frozen: bool) -> Result<()> {
    let file = path.join("freezer.state");
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        super::write_cgroup_file(&file, want)
            .ctx(|| format!("write {want} to {}", file.display()))?;
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
