//! Process and kernel attributes beyond identity: sysctl, scheduler, I/O priority, personality,
//! memory policy, time offsets, LSM labels.

use integration::*;
use serde_json::json;

#[test]
fn namespaced_sysctls_are_written_and_host_wide_ones_refused() {
    let mut b = Bundle::with_script(
        "sysctl",
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni",
    );
    b.edit(|c| c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}));
    assert_eq!(ok(&b.run(&unique_id("sysctl"))), "1\n1234\n");
    // The host's value is untouched.
    let host = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    assert_ne!(host, "1234\n");

    let mut b = Bundle::new("sysctl-host");
    b.edit(|c| c["linux"]["sysctl"] = json!({"vm.swappiness": "10"}));
    let err = fails(&b.brig(&["create", &unique_id("sysctl-host")]));
    assert!(
        err.contains("linux.sysctl.vm.swappiness: is not namespaced"),
        "{err}"
    );

    let mut b = Bundle::new("sysctl-nonet");
    b.edit(|c| {
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]);
    });
    let err = fails(&b.brig(&["create", &unique_id("sysctl-nonet")]));
    assert!(
        err.contains("linux.sysctl.net.ipv4.ip_forward: needs a new network namespace"),
        "{err}"
    );
    assert!(b.containers().is_empty());
}

#[test]
fn scheduler_and_io_priority() {
    let mut b = Bundle::with_script(
        "sched",
        "grep -E '^policy' /proc/self/sched; ionice; cut -d' ' -f19 /proc/self/stat",
    );
    b.edit(|c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    });
    let out = ok(&b.run(&unique_id("sched")));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].ends_with(" 3"), "SCHED_BATCH is policy 3: {out}");
    assert_eq!(lines[1], "idle", "{out}");
    assert_eq!(lines[2], "7", "nice: {out}");
}

#[test]
fn personality_linux32() {
    let mut b = Bundle::with_script("persona", "uname -m");
    b.edit(|c| c["linux"]["personality"] = json!({"domain": "LINUX32"}));
    let out = ok(&b.run(&unique_id("persona")));
    assert!(
        out == "i686\n" || out == "armv8l\n" || out == "armv7l\n",
        "{out}"
    );
}

#[test]
fn memory_policy_bind() {
    let mut b = Bundle::with_script("mempolicy", "grep -c bind:0 /proc/self/numa_maps");
    b.edit(|c| c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"}));
    let out = ok(&b.run(&unique_id("mempolicy")));
    assert!(out.trim().parse::<u32>().unwrap() > 0, "{out}");

    let mut b = Bundle::new("mempolicy-bad");
    b.edit(|c| c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0-x"}));
    let err = fails(&b.brig(&["create", &unique_id("mempolicy-bad")]));
    assert!(err.contains("linux.memoryPolicy.nodes"), "{err}");
}

#[test]
fn time_namespace_with_offsets() {
    let mut b = Bundle::with_script(
        "timens",
        "cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime",
    );
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] =
            json!({"boottime": {"secs": 86400000, "nanosecs": 0}, "monotonic": {"secs": 5}});
    });
    let out = ok(&b.run(&unique_id("timens")));
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["boottime", "86400000", "0"]),
        "{out}"
    );
    let uptime: u64 = out.lines().last().unwrap().parse().unwrap();
    assert!(uptime >= 86_400_000, "{out}");
    // brig's own clocks are not shifted: a second container without offsets sees the host's.
    let b = Bundle::with_script("timens-host", "cut -d. -f1 /proc/uptime");
    let host_uptime: u64 = ok(&b.run(&unique_id("timens-host")))
        .trim()
        .parse()
        .unwrap();
    assert!(host_uptime < 86_400_000);
}

#[test]
fn lsm_labels_fail_clearly_where_the_lsm_is_off() {
    if std::path::Path::new("/sys/module/apparmor/parameters/enabled").exists()
        || std::path::Path::new("/sys/fs/selinux/enforce").exists()
    {
        // On an LSM host the profile would be applied; this machine has neither.
        return;
    }
    let mut b = Bundle::new("apparmor");
    b.edit(|c| c["process"]["apparmorProfile"] = json!("docker-default"));
    let err = fails(&b.brig(&["create", &unique_id("apparmor")]));
    assert!(
        err.contains("process.apparmorProfile: AppArmor is not enabled"),
        "{err}"
    );
    let mut b = Bundle::new("selinux");
    b.edit(|c| c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0"));
    let err = fails(&b.brig(&["create", &unique_id("selinux")]));
    assert!(
        err.contains("process.selinuxLabel: SELinux is not enabled"),
        "{err}"
    );
}

#[test]
fn oom_score_adj_is_applied() {
    let mut b = Bundle::with_script("oom", "cat /proc/self/oom_score_adj");
    b.edit(|c| c["process"]["oomScoreAdj"] = json!(500));
    assert_eq!(ok(&b.run(&unique_id("oom"))), "500\n");
}
