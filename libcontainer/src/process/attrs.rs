//! Per-process kernel attributes from the config: scheduler, I/O priority, personality and
//! NUMA memory policy. Applied by init while it still holds its capabilities.

use nix::sched::{sched_setaffinity, CpuSet};
use nix::sys::personality::Persona;
use nix::unistd::Pid;
use oci_spec::runtime::{
    IOPriorityClass, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, Scheduler,
};

use crate::error::{Context, Error, Result};

pub use crate::sys::sched::SchedAttr;

pub fn sched_attr(scheduler: &Scheduler) -> SchedAttr {
    use LinuxSchedulerFlag::*;
    use LinuxSchedulerPolicy::*;
    let policy = match scheduler.policy() {
        SchedOther => 0,
        SchedFifo => 1,
        SchedRr => 2,
        SchedBatch => 3,
        SchedIso => 4,
        SchedIdle => 5,
        SchedDeadline => 6,
    };
    let flags = scheduler.flags().iter().flatten().fold(0u64, |acc, flag| {
        acc | match flag {
            SchedResetOnFork => 0x01,
            SchedFlagReclaim => 0x02,
            SchedFlagDLOverrun => 0x04,
            SchedFlagKeepPolicy => 0x08,
            SchedFlagKeepParams => 0x10,
            SchedFlagUtilClampMin => 0x20,
            SchedFlagUtilClampMax => 0x40,
        }
    });
    SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: scheduler.nice().unwrap_or(0),
        priority: scheduler.priority().unwrap_or(0).max(0) as u32,
        runtime: scheduler.runtime().unwrap_or(0),
        deadline: scheduler.deadline().unwrap_or(0),
        period: scheduler.period().unwrap_or(0),
    }
}

pub fn apply_scheduler(scheduler: &Scheduler) -> Result<()> {
    let attr = sched_attr(scheduler);
    crate::sys::sched::sched_setattr(&attr)
        .ctx(|| format!("process.scheduler: set policy {:?}", scheduler.policy()))
}

pub fn ioprio_value(class: IOPriorityClass, priority: i64) -> Result<i32> {
    let class = match class {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&priority) {
        return Err(Error::config(
            "process.ioPriority.priority",
            format!("{priority} is not in 0..7"),
        ));
    }
    Ok((class << 13) | priority as i32)
}

pub fn apply_io_priority(class: IOPriorityClass, priority: i64) -> Result<()> {
    let value = ioprio_value(class, priority)?;
    crate::sys::ioprio::ioprio_set_self(value)
        .ctx(|| format!("process.ioPriority: set {class:?} {priority}"))
}

pub fn apply_personality(personality: &LinuxPersonality) -> Result<()> {
    if let Some(flag) = personality.flags().iter().flatten().next() {
        return Err(Error::config(
            "linux.personality.flags",
            format!("unknown flag {flag:?}"),
        ));
    }
    let domain = match personality.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    nix::sys::personality::set(Persona::from_bits_retain(domain))
        .map(drop)
        .ctx(|| "linux.personality: set the execution domain")
}

/// set_mempolicy(2) modes by their runtime-spec names (also what `features` lists).
pub const MEMORY_POLICY_MODES: &[(&str, i32)] = &[
    ("MPOL_DEFAULT", 0),
    ("MPOL_PREFERRED", 1),
    ("MPOL_BIND", 2),
    ("MPOL_INTERLEAVE", 3),
    ("MPOL_LOCAL", 4),
    ("MPOL_PREFERRED_MANY", 5),
    ("MPOL_WEIGHTED_INTERLEAVE", 6),
];

pub const MEMORY_POLICY_FLAGS: &[(&str, i32)] = &[
    ("MPOL_F_NUMA_BALANCING", 1 << 13),
    ("MPOL_F_RELATIVE_NODES", 1 << 14),
    ("MPOL_F_STATIC_NODES", 1 << 15),
];

/// The name a value has in config.json.
fn spec_name(value: impl serde::Serialize) -> Option<String> {
    serde_json::to_value(value).ok()?.as_str().map(String::from)
}

/// `nodes` ("0-3,7") as a bit mask of `u64` words.
pub fn node_mask(nodes: &str) -> Result<Vec<u64>> {
    bit_list(nodes, "linux.memoryPolicy.nodes", "node")
}

/// A list like "0-3,7" (of nodes or CPUs) as a mask of 1024 bits in `u64` words.
fn bit_list(list: &str, field: &str, what: &str) -> Result<Vec<u64>> {
    let bad = || Error::config(field, format!("{list:?} is not a {what} list like 0-3,7"));
    let mut mask = vec![0u64; 16];
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (low, high) = match part.split_once('-') {
            Some((a, b)) => (
                a.parse::<usize>().map_err(|_| bad())?,
                b.parse::<usize>().map_err(|_| bad())?,
            ),
            None => {
                let n = part.parse::<usize>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if low > high || high >= mask.len() * 64 {
            return Err(bad());
        }
        for bit in low..=high {
            mask[bit / 64] |= 1 << (bit % 64);
        }
    }
    Ok(mask)
}

/// Pin `pid` (0: this process) to the CPUs in `cpus` (`process.execCPUAffinity.*`).
pub fn set_cpu_affinity(pid: i32, cpus: &str, field: &str) -> Result<()> {
    let mask = bit_list(cpus, field, "CPU")?;
    let mut set = CpuSet::new();
    for cpu in 0..mask.len() * 64 {
        if mask[cpu / 64] & (1 << (cpu % 64)) != 0 {
            set.set(cpu).ctx(|| format!("{field}: CPU {cpu}"))?;
        }
    }
    sched_setaffinity(Pid::from_raw(pid), &set)
        .ctx(|| format!("{field}: set the CPU affinity to {cpus:?}"))
}

pub fn apply_memory_policy(policy: &LinuxMemoryPolicy) -> Result<()> {
    let value = |name: Option<String>, table: &[(&str, i32)]| {
        name.and_then(|n| table.iter().find(|(t, _)| *t == n).map(|(_, v)| *v))
    };
    let mode = value(spec_name(policy.mode()), MEMORY_POLICY_MODES).ok_or_else(|| {
        Error::config(
            "linux.memoryPolicy.mode",
            format!("{:?} is not known", policy.mode()),
        )
    })?;
    let mut flags = 0;
    for flag in policy.flags().iter().flatten() {
        flags |= value(spec_name(flag), MEMORY_POLICY_FLAGS).ok_or_else(|| {
            Error::config("linux.memoryPolicy.flags", format!("{flag:?} is not known"))
        })?;
    }
    let mask = match policy.nodes().as_deref() {
        Some(nodes) if !nodes.is_empty() => Some(node_mask(nodes)?),
        _ => None,
    };
    crate::sys::mempolicy::set_mempolicy(mode | flags, mask.as_deref())
        .ctx(|| format!("linux.memoryPolicy: set mode {:?}", policy.mode()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_attr() {
        let s: Scheduler = serde_json::from_value(serde_json::json!(
            {"policy": "SCHED_BATCH", "nice": 5, "flags": ["SCHED_RESET_ON_FORK"]}
        ))
        .unwrap();
        let attr = sched_attr(&s);
        assert_eq!(
            (attr.size, attr.policy, attr.flags, attr.nice),
            (48, 3, 1, 5)
        );
    }

    #[test]
    fn io_priority_and_nodes() {
        assert_eq!(
            ioprio_value(IOPriorityClass::IoprioClassIdle, 7).unwrap(),
            (3 << 13) | 7
        );
        assert!(ioprio_value(IOPriorityClass::IoprioClassBe, 8).is_err());
        let mask = node_mask("0-2,5").unwrap();
        assert_eq!(mask[0], 0b100111);
        assert!(node_mask("3-1").is_err());
        assert!(node_mask("x").is_err());
    }
}
