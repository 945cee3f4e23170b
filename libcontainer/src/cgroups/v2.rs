//! Writing `linux.resources` into the unified (cgroup v2) hierarchy, enabling controllers down
//! to the container's cgroup, and freezing with cgroup.freeze. Each failure names the field
//! and the file; what v2 cannot express is an error, never silently dropped.

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::time::{Duration, Instant};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxPids, LinuxRdma, LinuxResources,
};

use super::{set, Hierarchy, Plan};
use crate::error::{Context, Error, Result};

fn read(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Turn on in each ancestor's `cgroup.subtree_control` (from the hierarchy's root down) every
/// controller it has, so the container's cgroup gets all of them; returns the controllers the
/// container's cgroup ends up with. A controller an ancestor refuses (it has processes of its
/// own, say) is left off: a resource that needs it then fails naming it.
pub fn enable_controllers(path: &Path) -> Result<Vec<String>> {
    let mut ancestors: Vec<&Path> = path
        .ancestors()
        .skip(1)
        .take_while(|p| p.join("cgroup.subtree_control").exists())
        .collect();
    ancestors.reverse();
    for dir in ancestors {
        let available = read(dir, "cgroup.controllers").unwrap_or_default();
        let enabled = read(dir, "cgroup.subtree_control").unwrap_or_default();
        let missing: Vec<&str> = available
            .split_whitespace()
            .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let file = dir.join("cgroup.subtree_control");
        let all = missing.iter().map(|c| format!("+{c}")).collect::<Vec<_>>();
        if super::write_cgroup_file(&file, &all.join(" ")).is_err() {
            for c in all {
                if let Err(e) = super::write_cgroup_file(&file, &c) {
                    tracing::debug!("enable {c} in {}: {e}", file.display());
                }
            }
        }
    }
    Ok(controllers(path))
}

/// The controllers the cgroup at `path` has (its cgroup.controllers).
pub fn controllers(path: &Path) -> Vec<String> {
    read(path, "cgroup.controllers")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Write a resource file; its controller (the name's prefix) must be enabled for the cgroup.
fn write(plan: &mut Plan, h: &Hierarchy, file: &str, value: &str, field: &str) -> Result<()> {
    let controller = file.split('.').next().unwrap_or_default();
    if controller != "cgroup" && !h.controllers.iter().any(|c| c == controller) {
        return Err(Error::config(
            format!("linux.resources.{field}"),
            format!(
                "the {controller} controller is not enabled for {} (see cgroup.controllers)",
                h.path.display()
            ),
        ));
    }
    plan.write(&h.path, file, value, field)
}

fn unsupported(field: &str, why: &str) -> Error {
    Error::config(
        format!("linux.resources.{field}"),
        format!("cannot be applied on cgroup v2: {why}"),
    )
}

/// Everything but the device rules, with runc's reading of zero as "not set".
pub(crate) fn plan_limits(
    plan: &mut Plan,
    h: &Hierarchy,
    r: &LinuxResources,
    update: bool,
) -> Result<()> {
    if let Some(p) = r.pids() {
        pids(plan, h, p)?;
    }
    if let Some(m) = r.memory() {
        memory(plan, h, m, update)?;
    }
    if let Some(b) = r.block_io() {
        io(plan, h, b)?;
    }
    if let Some(c) = r.cpu() {
        cpu(plan, h, c)?;
    }
    hugetlb(plan, h, r.hugepage_limits().as_deref())?;
    if let Some(n) = r.network() {
        if set(n.class_id()).is_some() {
            return Err(unsupported(
                "network.classID",
                "there is no net_cls controller",
            ));
        }
        if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(unsupported(
                "network.priorities",
                "there is no net_prio controller",
            ));
        }
    }
    if let Some(rdma_limits) = r.rdma() {
        rdma(plan, h, rdma_limits)?;
    }
    if let Some(unified) = r.unified() {
        write_unified(plan, h, unified, None)?;
    }
    Ok(())
}

/// `-1` is no limit: v2 spells it `max`.
fn limit_value(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// OCI's swap is memory+swap; v2's memory.swap.max is the swap alone. `None`: leave it.
pub fn swap_max(limit: Option<i64>, swap: Option<i64>) -> Result<Option<String>> {
    match (limit, swap) {
        // No memory limit and nothing said about swap: none on swap either (runc).
        (Some(-1), None) => Ok(Some("max".into())),
        (_, None) => Ok(None),
        (_, Some(s)) if s < 0 => Ok(Some("max".into())),
        (Some(l), Some(s)) if l >= 0 && s >= l => Ok(Some((s - l).to_string())),
        (Some(l), Some(s)) if l >= 0 => Err(Error::config(
            "linux.resources.memory.swap",
            format!("{s} (memory+swap) is below memory.limit {l}"),
        )),
        _ => Err(Error::config(
            "linux.resources.memory.swap",
            "needs memory.limit on cgroup v2 (swap is memory+swap)",
        )),
    }
}

fn memory(plan: &mut Plan, h: &Hierarchy, m: &LinuxMemory, update: bool) -> Result<()> {
    let limit = set(m.limit());
    if let Some(limit) = limit {
        if update && m.check_before_update() == Some(true) && limit >= 0 {
            let current = read(&h.path, "memory.current")
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0);
            if limit < current {
                return Err(Error::config(
                    "linux.resources.memory.limit",
                    format!("{limit} is below the current usage {current} (checkBeforeUpdate)"),
                ));
            }
        }
    }
    if let Some(value) = swap_max(limit, set(m.swap()))? {
        write(plan, h, "memory.swap.max", &value, "memory.swap")?;
    }
    if let Some(limit) = limit {
        write(plan, h, "memory.max", &limit_value(limit), "memory.limit")?;
    }
    if let Some(v) = set(m.reservation()) {
        write(plan, h, "memory.low", &limit_value(v), "memory.reservation")?;
    }
    // Kernel and TCP buffer memory are part of memory.max on v2 (the spec marks both not
    // recommended): the container is confined by its memory limit already.
    if set(m.kernel()).is_some() || set(m.kernel_tcp()).is_some() {
        tracing::warn!(
            "linux.resources.memory.kernel and kernelTCP are counted in memory.max on cgroup v2"
        );
    }
    if m.swappiness().is_some_and(|v| v != u64::MAX) {
        return Err(unsupported(
            "memory.swappiness",
            "there is no per-cgroup swappiness",
        ));
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(unsupported(
            "memory.disableOOMKiller",
            "the OOM killer cannot be turned off for a cgroup",
        ));
    }
    // useHierarchy false is runc's "not set"; v2 is always hierarchical.
    Ok(())
}

/// runc's conversion of cgroup v1 cpu.shares (2..262144) to cpu.weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

fn cpu(plan: &mut Plan, h: &Hierarchy, c: &LinuxCpu) -> Result<()> {
    if let Some(shares) = set(c.shares()) {
        let weight = shares_to_weight(shares);
        write(plan, h, "cpu.weight", &weight.to_string(), "cpu.shares")?;
    }
    let (quota, period) = (set(c.quota()), set(c.period()));
    if quota.is_some() || period.is_some() {
        // cpu.max holds both: keep the half that is not given.
        let current = read(&h.path, "cpu.max").unwrap_or_else(|| "max 100000".into());
        let mut parts = current.split_whitespace();
        let old_quota = parts.next().unwrap_or("max").to_string();
        let old_period = parts.next().unwrap_or("100000").to_string();
        let quota = match quota {
            Some(q) if q > 0 => q.to_string(),
            Some(_) => "max".into(),
            None => old_quota,
        };
        let period = period.map_or(old_period, |p| p.to_string());
        write(
            plan,
            h,
            "cpu.max",
            &format!("{quota} {period}"),
            "cpu.quota",
        )?;
    }
    if let Some(burst) = c.burst() {
        write(plan, h, "cpu.max.burst", &burst.to_string(), "cpu.burst")?;
    }
    if set(c.realtime_runtime()).is_some() || set(c.realtime_period()).is_some() {
        return Err(unsupported(
            "cpu.realtimeRuntime",
            "there is no real-time CPU budget",
        ));
    }
    if let Some(idle) = c.idle() {
        write(plan, h, "cpu.idle", &idle.to_string(), "cpu.idle")?;
    }
    if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
        write(plan, h, "cpuset.cpus", v, "cpu.cpus")?;
    }
    if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
        write(plan, h, "cpuset.mems", v, "cpu.mems")?;
    }
    Ok(())
}

fn pids(plan: &mut Plan, h: &Hierarchy, p: &LinuxPids) -> Result<()> {
    // runc's rule: 0 leaves the limit alone, a negative limit means none.
    match p.limit() {
        0 => Ok(()),
        n => write(plan, h, "pids.max", &limit_value(n), "pids.limit"),
    }
}

/// blkio weight (10..1000) to io.weight (1..10000).
pub fn blkio_weight_to_io(weight: u16) -> u64 {
    let w = u64::from(weight.clamp(10, 1000));
    1 + ((w - 10) * 9999) / 990
}

fn io(plan: &mut Plan, h: &Hierarchy, b: &LinuxBlockIo) -> Result<()> {
    // BFQ takes the v1 scale as it is; io.weight needs the conversion.
    let bfq = h.path.join("io.bfq.weight").exists();
    let (file, convert): (&str, fn(u16) -> u64) = if bfq {
        ("io.bfq.weight", u64::from)
    } else {
        ("io.weight", blkio_weight_to_io)
    };
    if let Some(w) = set(b.weight()) {
        write(plan, h, file, &convert(w).to_string(), "blockIO.weight")?;
    }
    if set(b.leaf_weight()).is_some() {
        return Err(unsupported(
            "blockIO.leafWeight",
            "there are no leaf weights",
        ));
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = set(d.weight()) {
            let line = format!("{}:{} {}", d.major(), d.minor(), convert(w));
            write(plan, h, file, &line, "blockIO.weightDevice")?;
        }
        if set(d.leaf_weight()).is_some() {
            return Err(unsupported(
                "blockIO.weightDevice.leafWeight",
                "there are no leaf weights",
            ));
        }
    }
    let throttles = [
        (
            b.throttle_read_bps_device(),
            "rbps",
            "blockIO.throttleReadBpsDevice",
        ),
        (
            b.throttle_write_bps_device(),
            "wbps",
            "blockIO.throttleWriteBpsDevice",
        ),
        (
            b.throttle_read_iops_device(),
            "riops",
            "blockIO.throttleReadIOPSDevice",
        ),
        (
            b.throttle_write_iops_device(),
            "wiops",
            "blockIO.throttleWriteIOPSDevice",
        ),
    ];
    for (list, key, field) in throttles {
        for d in list.iter().flatten() {
            let rate = if d.rate() == 0 {
                "max".to_string()
            } else {
                d.rate().to_string()
            };
            let line = format!("{}:{} {key}={rate}", d.major(), d.minor());
            write(plan, h, "io.max", &line, field)?;
        }
    }
    Ok(())
}

pub(crate) fn hugetlb(
    plan: &mut Plan,
    h: &Hierarchy,
    limits: Option<&[LinuxHugepageLimit]>,
) -> Result<()> {
    for limit in limits.unwrap_or(&[]) {
        let file = format!("hugetlb.{}.max", limit.page_size());
        write(
            plan,
            h,
            &file,
            &limit_value(limit.limit()),
            "hugepageLimits",
        )?;
    }
    Ok(())
}

fn rdma(plan: &mut Plan, h: &Hierarchy, limits: &HashMap<String, LinuxRdma>) -> Result<()> {
    for (device, limit) in limits {
        let mut line = device.clone();
        if let Some(n) = limit.hca_handles() {
            line.push_str(&format!(" hca_handle={n}"));
        }
        if let Some(n) = limit.hca_objects() {
            line.push_str(&format!(" hca_object={n}"));
        }
        write(plan, h, "rdma.max", &line, "rdma")?;
    }
    Ok(())
}

/// `unified` keys are file names in the container's cgroup, written as given. On a hybrid
/// host (`v1` given) a key of a controller bound to a v1 hierarchy is an invalid
/// configuration, as runc says.
pub(crate) fn write_unified(
    plan: &mut Plan,
    h: &Hierarchy,
    keys: &HashMap<String, String>,
    v1: Option<&super::Cgroup>,
) -> Result<()> {
    let mut keys: Vec<(&String, &String)> = keys.iter().collect();
    keys.sort();
    for (key, value) in keys {
        let field = format!("unified[{key:?}]");
        if key.is_empty() || key.contains('/') || key.starts_with('.') {
            return Err(Error::config(
                format!("linux.resources.{field}"),
                "is not a file name of the cgroup",
            ));
        }
        let controller = key.split('.').next().unwrap_or_default();
        if v1.is_some_and(|cg| cg.hierarchy(controller).is_some_and(|x| !x.unified)) {
            return Err(Error::config(
                format!("linux.resources.{field}"),
                format!(
                    "invalid configuration: the {controller} controller is bound to a cgroup v1 \
                     hierarchy on this host, and unified keys are for the cgroup v2 one"
                ),
            ));
        }
        if !h.path.join(key).exists() {
            let why = if h.controllers.iter().any(|c| c == controller) || controller == "cgroup" {
                format!("{} has no such file", h.path.display())
            } else {
                format!(
                    "the {controller} controller is not enabled for {}",
                    h.path.display()
                )
            };
            return Err(Error::config(format!("linux.resources.{field}"), why));
        }
        write(plan, h, key, value, &field)?;
    }
    Ok(())
}

/// Hand the container's cgroup to the container's user (the runtime spec's "cgroup
/// ownership"): the directory and the files the kernel lists as delegatable.
pub fn delegate(path: &Path, uid: u32, gid: u32) -> Result<()> {
    let listed = fs::read_to_string("/sys/kernel/cgroup/delegate")
        .unwrap_or_else(|_| "cgroup.procs\ncgroup.subtree_control\ncgroup.threads\n".to_string());
    let chown = |p: &Path| {
        std::os::unix::fs::chown(p, Some(uid), Some(gid))
            .ctx(|| format!("give {} to uid {uid}", p.display()))
    };
    chown(path)?;
    for name in listed.lines().map(str::trim).filter(|n| !n.is_empty()) {
        let file = path.join(name);
        // Not every listed file exists in every cgroup (the spec: do not fail then).
        if file.exists() {
            chown(&file)?;
        }
    }
    Ok(())
}

/// Frozen: asked to be (cgroup.freeze) and every task got there (cgroup.events).
pub fn frozen(path: &Path) -> bool {
    read(path, "cgroup.freeze").is_some_and(|v| v.trim() == "1")
        && read(path, "cgroup.events")
            .unwrap_or_default()
            .lines()
            .any(|l| l.trim() == "frozen 1")
}

/// Write cgroup.freeze; when freezing, wait until cgroup.events says every task got there.
/// A thaw is done once written (as runc): the kernel may leave `frozen 1` in cgroup.events of
/// a cgroup whose sub-cgroup still has dying tasks, until they are gone.
pub fn set_frozen(path: &Path, frozen_wanted: bool) -> Result<()> {
    let file = path.join("cgroup.freeze");
    let value = if frozen_wanted { "1" } else { "0" };
    match super::write_cgroup_file(&file, value) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(Error::Other(format!(
                "{} is missing: the kernel cannot freeze cgroups",
                file.display()
            )))
        }
        other => other.ctx(|| format!("write {value} to {}", file.display()))?,
    }
    if !frozen_wanted {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while frozen(path) != frozen_wanted {
        if Instant::now() > deadline {
            return Err(Error::Other(format!(
                "{} did not become frozen within 10 s",
                path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_weight_to_io(10), 1);
        assert_eq!(blkio_weight_to_io(1000), 10_000);
        assert_eq!(blkio_weight_to_io(500), 4950);
        assert_eq!(limit_value(-1), "max");
        assert_eq!(swap_max(Some(100), Some(300)).unwrap().unwrap(), "200");
        assert_eq!(swap_max(None, Some(-1)).unwrap().unwrap(), "max");
        assert_eq!(swap_max(Some(-1), None).unwrap().unwrap(), "max");
        assert_eq!(swap_max(Some(100), None).unwrap(), None);
        assert!(swap_max(Some(300), Some(100))
            .unwrap_err()
            .to_string()
            .contains("memory.swap"));
        assert!(swap_max(None, Some(100)).is_err());
    }
}
