//! `linux.resources` as systemd unit properties: the ones systemd knows (for its own view of
//! the unit and so it does not undo them), each only where the running systemd has it. The
//! values themselves are written to the cgroup files afterwards by the cgroupfs code, the one
//! path for values.

use oci_spec::runtime::LinuxResources;
use zbus::zvariant::{OwnedValue, Value};

use super::dbus::Property;
use super::devices;
use crate::cgroups::devices::Rule;

/// "No limit" to systemd.
const INFINITY: u64 = u64::MAX;

fn val<'a>(x: impl Into<Value<'a>>) -> Option<OwnedValue> {
    x.into().try_to_owned().ok()
}

fn push<'a>(props: &mut Vec<Property>, name: &'static str, x: impl Into<Value<'a>>) {
    if let Some(v) = val(x) {
        props.push((name, v));
    }
}

/// What every container unit gets: a description, no default dependencies, accounting on for
/// each controller (so systemd enables them for the unit) and, for a scope, its slice,
/// delegation and init's pid.
pub fn unit(
    description: &str,
    slice: &str,
    scope: bool,
    pid: Option<u32>,
    v2: bool,
    version: u32,
) -> Vec<Property> {
    let mut props = Vec::new();
    push(&mut props, "Description", description);
    push(&mut props, "DefaultDependencies", false);
    if scope {
        push(&mut props, "Slice", slice);
        push(&mut props, "Delegate", true);
        if let Some(pid) = pid {
            push(&mut props, "PIDs", vec![pid]);
        }
    } else if slice != "-.slice" {
        // A transient slice's parent comes from its name; it still must be started.
        push(&mut props, "Wants", vec![slice]);
    }
    push(&mut props, "CPUAccounting", true);
    push(&mut props, "MemoryAccounting", true);
    if version == 0 || version >= 227 {
        push(&mut props, "TasksAccounting", true);
    }
    if v2 {
        if version == 0 || version >= 230 {
            push(&mut props, "IOAccounting", true);
        }
    } else {
        push(&mut props, "BlockIOAccounting", true);
    }
    props
}

/// The resources systemd has properties for (cgroup v2 or v1 names).
pub fn resources(r: &LinuxResources, v2: bool, version: u32) -> Vec<Property> {
    let since = |v: u32| version == 0 || version >= v;
    let mut props = Vec::new();
    if let Some(m) = r.memory() {
        let limit = m.limit().filter(|l| *l != 0).map(to_limit);
        if v2 {
            if let Some(l) = limit {
                push(&mut props, "MemoryMax", l);
            }
            if let Some(low) = m.reservation().filter(|l| *l != 0).map(to_limit) {
                push(&mut props, "MemoryLow", low);
            }
            if let Some(swap) = swap_max(m.limit(), m.swap()).filter(|_| since(232)) {
                push(&mut props, "MemorySwapMax", swap);
            }
        } else if let Some(l) = limit {
            push(&mut props, "MemoryLimit", l);
        }
    }
    if let Some(high) = r
        .unified()
        .as_ref()
        .and_then(|u| u.get("memory.high"))
        .filter(|_| v2)
    {
        let high = if high == "max" {
            Some(INFINITY)
        } else {
            high.parse().ok()
        };
        if let Some(h) = high {
            push(&mut props, "MemoryHigh", h);
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(shares) = c.shares().filter(|s| *s != 0) {
            if v2 {
                push(&mut props, "CPUWeight", cpu_weight(shares));
            } else {
                push(&mut props, "CPUShares", shares);
            }
        }
        if let Some(q) = cpu_quota_per_sec(c.quota(), c.period()) {
            push(&mut props, "CPUQuotaPerSecUSec", q);
            if let Some(p) = c.period().filter(|p| *p != 0 && v2 && since(242)) {
                push(&mut props, "CPUQuotaPeriodUSec", p);
            }
        }
        if v2 && since(244) {
            if let Some(bits) = c.cpus().as_deref().and_then(cpu_bits) {
                push(&mut props, "AllowedCPUs", bits);
            }
            if let Some(bits) = c.mems().as_deref().and_then(cpu_bits) {
                push(&mut props, "AllowedMemoryNodes", bits);
            }
        }
    }
    if let Some(p) = r.pids().as_ref().filter(|p| p.limit() != 0) {
        let max = if p.limit() < 0 {
            INFINITY
        } else {
            p.limit() as u64
        };
        push(&mut props, "TasksMax", max);
    }
    if let Some(w) = r.block_io().as_ref().and_then(|b| b.weight()) {
        if v2 {
            push(&mut props, "IOWeight", io_weight(w));
        } else {
            push(&mut props, "BlockIOWeight", u64::from(w));
        }
    }
    props
}

/// The device rules as systemd can hold them: `DevicePolicy=strict` and an allow list (first
/// emptied, so an existing unit's list is replaced), or `auto` with no list when every device
/// is allowed (runc's mapping).
pub fn devices(rules: &[Rule], version: u32) -> Vec<Property> {
    let list = devices::allow_list(rules);
    let none: Vec<(String, String)> = Vec::new();
    let mut props = Vec::new();
    push(&mut props, "DeviceAllow", none);
    if devices::allows_all(&list) {
        push(&mut props, "DevicePolicy", "auto");
        return props;
    }
    push(&mut props, "DevicePolicy", "strict");
    push(
        &mut props,
        "DeviceAllow",
        devices::device_allow(&list, version),
    );
    props
}

fn to_limit(l: i64) -> u64 {
    u64::try_from(l).unwrap_or(INFINITY)
}

/// OCI's swap is memory+swap; v2's swap.max is the swap alone.
fn swap_max(limit: Option<i64>, swap: Option<i64>) -> Option<u64> {
    match (limit, swap) {
        (_, Some(-1)) => Some(INFINITY),
        (Some(l), Some(s)) if l > 0 && s >= l => Some((s - l) as u64),
        _ => None,
    }
}

/// cpu.shares (2..262144) to cpu.weight (1..10000), the kernel's own mapping.
fn cpu_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// blkio.weight (10..1000) to io.weight (1..10000).
fn io_weight(weight: u16) -> u64 {
    let w = u64::from(weight.clamp(10, 1000));
    1 + ((w - 10) * 9999) / 990
}

/// systemd's CPU quota is per second, in µs, and it keeps 10 ms steps: rounded up to one.
fn cpu_quota_per_sec(quota: Option<i64>, period: Option<u64>) -> Option<u64> {
    let (q, p) = (quota.unwrap_or(0), period.unwrap_or(0));
    if q == 0 && p == 0 {
        return None;
    }
    if q <= 0 {
        return Some(INFINITY);
    }
    let p = if p == 0 { 100_000 } else { p };
    let per_sec = (q as u64).saturating_mul(1_000_000) / p;
    Some(per_sec.div_ceil(10_000) * 10_000)
}

/// A cpuset list ("0-3,6") as systemd's bitmask: byte i holds CPUs 8i..8i+7.
fn cpu_bits(list: &str) -> Option<Vec<u8>> {
    let mut bits = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<usize>().ok()?,
                b.trim().parse::<usize>().ok()?,
            ),
            None => {
                let n = part.parse::<usize>().ok()?;
                (n, n)
            }
        };
        if a > b || b >= 8192 {
            return None;
        }
        for cpu in a..=b {
            if bits.len() <= cpu / 8 {
                bits.resize(cpu / 8 + 1, 0);
            }
            bits[cpu / 8] |= 1 << (cpu % 8);
        }
    }
    (!bits.is_empty()).then_some(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_match_the_kernels_and_systemds() {
        assert_eq!(cpu_weight(1024), 39);
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(262_144), 10_000);
        assert_eq!(io_weight(500), 4950);
        assert_eq!(
            cpu_quota_per_sec(Some(50_000), Some(100_000)),
            Some(500_000)
        );
        assert_eq!(cpu_quota_per_sec(Some(1_234), Some(100_000)), Some(20_000));
        assert_eq!(cpu_quota_per_sec(Some(-1), None), Some(INFINITY));
        assert_eq!(cpu_quota_per_sec(None, None), None);
        assert_eq!(swap_max(Some(100), Some(300)), Some(200));
        assert_eq!(swap_max(Some(100), Some(-1)), Some(INFINITY));
        assert_eq!(cpu_bits("0-1,9"), Some(vec![0b11, 0b10]));
        assert_eq!(cpu_bits("3-1"), None);
    }

    #[test]
    fn older_systemds_get_only_what_they_know() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"cpu":{"quota":50000,"period":50000,"cpus":"0"},"memory":{"limit":1048576,"swap":2097152},"pids":{"limit":10}}"#,
        )
        .unwrap();
        let names = |v| {
            resources(&r, true, v)
                .into_iter()
                .map(|p| p.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(252),
            [
                "MemoryMax",
                "MemorySwapMax",
                "CPUQuotaPerSecUSec",
                "CPUQuotaPeriodUSec",
                "AllowedCPUs",
                "TasksMax"
            ]
        );
        assert_eq!(names(230), ["MemoryMax", "CPUQuotaPerSecUSec", "TasksMax"]);
        let v1: Vec<_> = resources(&r, false, 252).into_iter().map(|p| p.0).collect();
        assert_eq!(v1, ["MemoryLimit", "CPUQuotaPerSecUSec", "TasksMax"]);
    }

    #[test]
    fn device_rules_become_a_strict_policy_or_auto() {
        let rules = crate::cgroups::devices::rule_list(None, &[]).unwrap();
        let props = devices(&rules, 252);
        let names: Vec<_> = props.iter().map(|p| p.0).collect();
        assert_eq!(names, ["DeviceAllow", "DevicePolicy", "DeviceAllow"]);
        assert_eq!(props[0].1.value_signature().to_string(), "a(ss)");
        assert_eq!(*props[1].1, Value::from("strict"));
        let Value::Array(list) = &*props[2].1 else {
            panic!("{:?}", props[2].1)
        };
        assert_eq!(list.len(), 11);
        assert_eq!(
            <(String, String)>::try_from(&list[2]).unwrap(),
            ("/dev/char/1:3".to_string(), "rwm".to_string())
        );
        let all = [Rule {
            allow: true,
            kind: 'a',
            major: None,
            minor: None,
            access: "rwm".into(),
        }];
        let props = devices(&all, 252);
        assert_eq!(props.len(), 2);
        assert_eq!(*props[1].1, Value::from("auto"));
    }
}
