//! cgroups on this host, v1/hybrid (the development machines) or v2 (the VM run of
//! hack/vm-test.sh): resources written and enforced, update, pause and resume, ps, kill --all,
//! and nothing left after delete. Each test checks the files of the host's own cgroup version.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use integration::*;
use serde_json::json;

/// The host has only the unified hierarchy.
fn v2() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some("/sys/fs/cgroup") && l.contains(" - cgroup2 "))
}

/// The container's cgroup directory for `controller` (v1: that hierarchy; v2: the unified
/// one), from init's /proc/PID/cgroup.
fn cgroup_dir(pid: i64, controller: &str) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let v2 = v2();
    let path = text
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
            let wanted = if v2 {
                list.is_empty()
            } else {
                list.split(',').any(|c| c == controller)
            };
            wanted.then(|| path.to_string())
        })
        .unwrap();
    let base = PathBuf::from("/sys/fs/cgroup");
    let base = if v2 { base } else { base.join(controller) };
    base.join(path.trim_start_matches('/'))
}

/// A new cgroup namespace for the container (`brig spec` already gives one on v2 hosts).
fn add_cgroup_namespace(config: &mut serde_json::Value) {
    let list = config["linux"]["namespaces"].as_array_mut().unwrap();
    if !list.iter().any(|ns| ns["type"] == "cgroup") {
        list.push(json!({"type": "cgroup"}));
    }
}

/// A whole block device of this machine ("major:minor"), for I/O throttles.
fn a_block_device() -> (u64, u64) {
    let dev = std::fs::read_dir("/sys/dev/block")
        .unwrap()
        .flatten()
        .find(|e| !e.path().join("partition").exists())
        .expect("this test needs a block device");
    let name = dev.file_name().to_string_lossy().into_owned();
    let (major, minor) = name.split_once(':').unwrap();
    (major.parse().unwrap(), minor.parse().unwrap())
}

fn read(dir: &std::path::Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .trim()
        .to_string()
}

fn no_cgroup_named(name: &str) -> bool {
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .all(|hierarchy| walk_has(&hierarchy.path(), name, 0).is_none())
}

fn walk_has(dir: &std::path::Path, name: &str, depth: usize) -> Option<PathBuf> {
    if depth > 4 {
        return None;
    }
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        if entry.file_type().ok()?.is_dir() {
            if entry.file_name().to_string_lossy().contains(name) {
                return Some(entry.path());
            }
            if let Some(found) = walk_has(&entry.path(), name, depth + 1) {
                return Some(found);
            }
        }
    }
    None
}

#[test]
fn resources_are_written_and_delete_removes_the_cgroup() {
    let mut b = Bundle::new("cgres");
    b.set_args(&["sleep", "1000"]);
    let id = unique_id("cgres");
    let (major, minor) = a_block_device();
    let v2 = v2();
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("brig-test-{id}/{id}"));
        c["linux"]["resources"] = json!({
            "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728},
            "cpu": {"shares": 512, "period": 100000, "quota": 50000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 42},
            "blockIO": {"throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}]}
        });
        if !v2 {
            c["linux"]["resources"]["memory"]["swappiness"] = json!(10);
        }
    });
    ok(&b.brig(&["create", &id]));
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();
    let memory = cgroup_dir(pid, "memory");
    assert!(
        memory.ends_with(format!("brig-test-{id}/{id}")),
        "{}",
        memory.display()
    );
    let cpu = cgroup_dir(pid, "cpu");
    if v2 {
        assert_eq!(read(&memory, "memory.max"), "67108864");
        assert_eq!(read(&memory, "memory.low"), "33554432");
        // OCI's swap is memory+swap; v2's file holds the swap alone.
        assert_eq!(read(&memory, "memory.swap.max"), "67108864");
        assert_eq!(read(&cpu, "cpu.weight"), "20");
        assert_eq!(read(&cpu, "cpu.max"), "50000 100000");
        assert!(
            read(&cpu, "io.max").starts_with(&format!("{major}:{minor} rbps=1048576 ")),
            "{}",
            read(&cpu, "io.max")
        );
    } else {
        assert_eq!(read(&memory, "memory.limit_in_bytes"), "67108864");
        assert_eq!(read(&memory, "memory.soft_limit_in_bytes"), "33554432");
        assert_eq!(read(&memory, "memory.memsw.limit_in_bytes"), "134217728");
        assert_eq!(read(&memory, "memory.swappiness"), "10");
        assert_eq!(read(&cpu, "cpu.shares"), "512");
        assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
        assert_eq!(
            read(&cgroup_dir(pid, "blkio"), "blkio.throttle.read_bps_device"),
            format!("{major}:{minor} 1048576")
        );
    }
    assert_eq!(read(&cgroup_dir(pid, "cpuset"), "cpuset.cpus"), "0");
    assert_eq!(read(&cgroup_dir(pid, "pids"), "pids.max"), "42");
    // systemd's named hierarchy is joined too (as runc does), where the host has one.
    let systemd = PathBuf::from("/sys/fs/cgroup/systemd");
    let in_systemd = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .find_map(|l| l.split_once(":name=systemd:").map(|(_, p)| p.to_string()));
    if !v2 && systemd.join("cgroup.procs").exists() {
        let path = in_systemd.expect("a name=systemd line");
        assert!(path.ends_with(&format!("/brig-test-{id}/{id}")), "{path}");
        assert!(systemd.join(path.trim_start_matches('/')).is_dir());
    }
    // The host sees the container's init in that cgroup.
    let inside = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    // (below brig's own cgroup on v1, beside it on v2: wherever the caller runs brig)
    let line = if v2 { "0::/" } else { "pids:/" };
    assert!(
        inside
            .lines()
            .any(|l| l.contains(line) && l.ends_with(&format!("/brig-test-{id}/{id}"))),
        "{inside}"
    );
    ok(&b.brig(&["delete", "--force", &id]));
    assert!(!memory.exists());
    assert!(no_cgroup_named(&id));
    // The parent brig made on the way is gone too (it was empty).
    assert!(no_cgroup_named(&format!("brig-test-{id}")));
}

#[test]
fn a_new_cgroup_namespace_is_rooted_at_the_containers_cgroup() {
    let mut b = Bundle::with_script("cgns", "cat /proc/self/cgroup");
    b.edit(|c| {
        add_cgroup_namespace(c);
        c["linux"]["resources"] = json!({"pids": {"limit": 50}});
    });
    let out = ok(&b.run(&unique_id("cgns")));
    // Every hierarchy's line ends in "/": the container sees its own cgroup as the root.
    assert!(!out.is_empty());
    for line in out.lines().filter(|l| !l.contains("name=systemd")) {
        assert!(line.ends_with(":/"), "{out}");
    }
}

#[test]
fn a_memory_hog_is_oom_killed() {
    let mut b = Bundle::with_script("oomkill", "tail /dev/zero");
    b.edit(|c| c["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 33554432}}));
    let out = b.run(&unique_id("oomkill"));
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit() {
    let mut b = Bundle::with_script(
        "forkbomb",
        "(for i in $(seq 1 30); do sleep 1000 & done) 2>/dev/null; exec sleep 1000",
    );
    b.edit(|c| c["linux"]["resources"] = json!({"pids": {"limit": 10}}));
    let id = unique_id("forkbomb");
    ok(&b.brig(&["run", "-d", &id]));
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();
    let pids = cgroup_dir(pid, "pids");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    // The shell tries 30 forks; the cgroup holds it at 10 processes and counts the refusals.
    while !read(&pids, "pids.events").ends_with(|c: char| c != '0')
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(read(&pids, "pids.max"), "10");
    let current: u32 = read(&pids, "pids.current").parse().unwrap();
    assert!(current <= 10, "{current} processes under pids.max 10");
    assert_ne!(read(&pids, "pids.events"), "max 0", "no fork was refused");
    ok(&b.brig(&["delete", "--force", &id]));
}

#[test]
fn devices_outside_the_rules_cannot_be_opened() {
    // /dev/kmsg (c 1:11) is not among the devices a container gets.
    let mut b = Bundle::with_script(
        "devdeny",
        "head -c1 /dev/kmsg >/dev/null 2>&1 && echo kmsg-open || echo kmsg-denied; \
         echo x > /dev/null && echo null-ok",
    );
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/dev/kmsg", "type": "bind", "source": "/dev/kmsg", "options": ["bind"]}));
        c["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
        // Reading the kernel log needs CAP_SYSLOG: with it, only the device cgroup can refuse.
        let caps = json!(["CAP_SYSLOG"]);
        c["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
    });
    assert_eq!(ok(&b.run(&unique_id("devdeny"))), "kmsg-denied\nnull-ok\n");
    // Allowed by a rule, the same node opens.
    b.edit(|c| c["linux"]["resources"] = json!({"devices": [{"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}]}));
    assert_eq!(ok(&b.run(&unique_id("devallow"))), "kmsg-open\nnull-ok\n");
}

#[test]
fn update_pause_resume_and_ps() {
    let mut b = Bundle::with_script(
        "cgupdate",
        "sleep 1000 & i=0; while true; do i=$((i+1)); echo $i > /out/count; sleep 0.02; done",
    );
    let out_dir = b.dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/out", "type": "bind", "source": "out", "options": ["rbind", "rw"]}));
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
    });
    let id = unique_id("cgupdate");
    ok(&b.brig(&["run", "-d", &id]));
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();

    ok(&b.brig(&[
        "update",
        "--memory",
        "128m",
        "--pids-limit",
        "30",
        "--cpu-share",
        "256",
        &id,
    ]));
    if v2() {
        assert_eq!(read(&cgroup_dir(pid, "memory"), "memory.max"), "134217728");
        assert_eq!(read(&cgroup_dir(pid, "cpu"), "cpu.weight"), "10");
    } else {
        assert_eq!(
            read(&cgroup_dir(pid, "memory"), "memory.limit_in_bytes"),
            "134217728"
        );
        assert_eq!(read(&cgroup_dir(pid, "cpu"), "cpu.shares"), "256");
    }
    assert_eq!(read(&cgroup_dir(pid, "pids"), "pids.max"), "30");
    let resources = b.dir.join("res.json");
    std::fs::write(&resources, r#"{"pids": {"limit": 25}}"#).unwrap();
    ok(&b.brig(&["update", "--resources", resources.to_str().unwrap(), &id]));
    assert_eq!(read(&cgroup_dir(pid, "pids"), "pids.max"), "25");

    // Under load the background sleep may not have exec'd yet: wait for it (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    let table = loop {
        let table = ok(&b.brig(&["ps", &id]));
        if table.contains("sleep 1000") || Instant::now() > deadline {
            break table;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        table.starts_with("UID") && table.contains("sleep 1000"),
        "{table}"
    );
    let pids: Vec<i64> =
        serde_json::from_str(&ok(&b.brig(&["ps", "--format", "json", &id]))).unwrap();
    assert!(pids.contains(&pid) && pids.len() >= 2, "{pids:?}");
    // The long-lived ones (init and the background sleep), not the loop's short sleeps whose
    // pids the kernel may hand out again.
    let pids: Vec<i64> = pids
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| *p == pid || c.contains("1000"))
        })
        .collect();

    let count = || {
        std::fs::read_to_string(out_dir.join("count"))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    std::thread::sleep(Duration::from_millis(100));
    ok(&b.brig(&["pause", &id]));
    assert_eq!(b.status(&id).unwrap(), "paused");
    assert!(fails(&b.brig(&["pause", &id])).contains("it is paused"));
    assert!(fails(&b.brig(&["delete", &id])).contains("it is paused"));
    let frozen = count();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(), frozen, "the counter moved while paused");
    ok(&b.brig(&["resume", &id]));
    assert_eq!(b.status(&id).unwrap(), "running");
    let deadline = Instant::now() + Duration::from_secs(10);
    while count() == frozen && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_ne!(count(), frozen, "the counter did not move after resume");
    assert!(fails(&b.brig(&["resume", &id])).contains("it is running"));

    // kill --all reaches the background sleep too, through the cgroup.
    ok(&b.brig(&["pause", &id]));
    ok(&b.brig(&["kill", "--all", &id, "KILL"]));
    b.wait_status(&id, "stopped");
    for p in pids {
        assert!(!pid_alive(p), "{p} survived kill --all");
    }
    ok(&b.brig(&["delete", &id]));
    assert!(no_cgroup_named(&id));
}

#[test]
fn an_existing_cgroup_is_joined_and_not_removed() {
    let id = unique_id("cgshared");
    let hierarchy = if v2() {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/pids"
    };
    let shared = PathBuf::from(hierarchy).join(format!("brig-shared-{id}"));
    std::fs::create_dir_all(&shared).unwrap();
    // Someone else's process already lives in that cgroup.
    let mut neighbour = std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .unwrap();
    std::fs::write(shared.join("cgroup.procs"), neighbour.id().to_string()).unwrap();
    let mut b = Bundle::with_script("cgshared", "cat /proc/self/cgroup");
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("/brig-shared-{id}"));
        // The host's view of the path, not a cgroup namespace's "/".
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|ns| ns["type"] != "cgroup");
    });
    let out = ok(&b.run(&id));
    let exists = shared.exists();
    let neighbour_alive = neighbour.try_wait().unwrap().is_none();
    let _ = neighbour.kill();
    let _ = neighbour.wait();
    let _ = std::fs::remove_dir(&shared);
    let line = if v2() { "0::" } else { "pids:" };
    assert!(out.contains(&format!("{line}/brig-shared-{id}")), "{out}");
    assert!(exists, "delete removed a cgroup it did not create");
    assert!(
        neighbour_alive,
        "delete killed a process that was not the container's"
    );
}

#[test]
fn bad_resources_fail_clearly_and_leave_nothing() {
    let cases = [
        (
            json!({"unified": {"nosuch.file": "1"}}),
            "linux.resources.unified[\"nosuch.file\"]",
        ),
        (
            json!({"unified": {"../escape": "1"}}),
            "is not a file name of the cgroup",
        ),
        (
            // v1 takes 0..=100; v2 has no per-cgroup swappiness at all.
            json!({"memory": {"swappiness": if v2() { 20 } else { 200 }}}),
            if v2() {
                "linux.resources.memory.swappiness: cannot be applied on cgroup v2"
            } else {
                "linux.resources.memory.swappiness: 200 is above 100"
            },
        ),
        (
            json!({"memory": {"limit": -2}}),
            "linux.resources.memory.limit",
        ),
        (
            json!({"devices": [{"allow": true, "access": ""}]}),
            "linux.resources.devices[0].access: must not be empty",
        ),
        (
            json!({"cpu": {"cpus": "99"}}),
            "linux.resources.cpu.cpus: write \"99\"",
        ),
    ];
    for (resources, message) in cases {
        let mut b = Bundle::new("cgbad");
        let id = unique_id("cgbad");
        b.edit(|c| c["linux"]["resources"] = resources.clone());
        let err = fails(&b.brig(&["create", &id]));
        assert!(err.contains(message), "{resources}: {err}");
        assert!(b.containers().is_empty());
        assert!(no_cgroup_named(&id), "{resources}: cgroup left behind");
    }
    let mut b = Bundle::new("cgbadtype");
    b.edit(|c| c["linux"]["resources"] = json!({"devices": [{"allow": true, "type": "x"}]}));
    fails(&b.brig(&["create", &unique_id("cgbadtype")]));
    assert!(b.containers().is_empty());
}

#[test]
fn events_report_stats_and_oom_kills() {
    let mut b = Bundle::with_script("events", "sleep 1000 & while true; do sleep 0.1; done");
    b.edit(|c| {
        c["linux"]["resources"] =
            json!({"memory": {"limit": 33554432, "swap": 33554432}, "pids": {"limit": 20}})
    });
    let id = unique_id("events");
    ok(&b.brig(&["run", "-d", &id]));
    let line = ok(&b.brig(&["events", "--stats", &id]));
    let event: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(event["type"], "stats");
    assert_eq!(event["id"], id.as_str());
    let data = &event["data"];
    assert!(
        data["cpu"]["usage"]["total"].as_u64().unwrap() > 0,
        "{data}"
    );
    assert!(
        data["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{data}"
    );
    assert_eq!(data["memory"]["usage"]["limit"], 33554432);
    assert!(data["pids"]["current"].as_u64().unwrap() >= 2, "{data}");
    assert_eq!(data["pids"]["limit"], 20);

    // A memory hog in the container: the stream reports the OOM kill.
    let stream = b
        .command(&["events", "--interval", "200ms", &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let out = b.brig(&["exec", &id, "tail", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    std::thread::sleep(Duration::from_millis(500));
    ok(&b.brig(&["kill", &id, "KILL"]));
    let output = stream.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.lines().any(|l| l.contains("\"type\":\"oom\"")),
        "{text}"
    );
    ok(&b.brig(&["delete", "--force", &id]));
}

#[test]
fn a_cgroup_mount_shows_the_container_its_own_cgroups_read_only() {
    let systemd_listed =
        !v2() && std::path::Path::new("/sys/fs/cgroup/systemd/cgroup.procs").exists();
    let (memory, pids) = if v2() {
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max")
    } else {
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/pids/pids.max",
        )
    };
    let mount_point = if v2() {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/memory"
    };
    let mut b = Bundle::with_script(
        "cgmount",
        &format!(
            "cat {memory}; cat {pids}; echo 1 > {pids} 2>/dev/null || echo write-denied; \
             grep ' {mount_point} ' /proc/self/mountinfo | cut -d' ' -f6; \
             test -f /sys/fs/cgroup/systemd/cgroup.procs && echo systemd-dir || echo no-systemd-dir"
        ),
    );
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
        mounts.push(json!(
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ));
        add_cgroup_namespace(c);
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 33}});
    });
    let out = ok(&b.run(&unique_id("cgmount")));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], &["67108864", "33", "write-denied"], "{out}");
    assert!(lines[3].starts_with("ro"), "{out}");
    // A systemd in the container finds its named hierarchy where it looks for it.
    let expected = if systemd_listed {
        "systemd-dir"
    } else {
        "no-systemd-dir"
    };
    assert_eq!(lines[4], expected, "{out}");
}

#[test]
fn a_cgroups_path_naming_no_cgroup_of_its_own_is_refused() {
    // "/" would be a hierarchy's root, "." brig's caller's own cgroup.
    for path in ["/", ".", "./"] {
        let mut b = Bundle::new("cgroot");
        b.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
        let err = fails(&b.brig(&["create", &unique_id("cgroot")]));
        assert!(
            err.contains("linux.cgroupsPath") && err.contains("names no cgroup"),
            "{path}: {err}"
        );
        assert!(b.containers().is_empty());
    }
}

/// The container's cgroup in the unified hierarchy (all of it on v2, `unified` on hybrid).
fn unified_dir(pid: i64) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = text.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    let base = if v2() {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/unified"
    };
    PathBuf::from(base).join(path.trim_start_matches('/'))
}

#[test]
fn hugepage_limits_and_unified_keys_go_to_the_unified_hierarchy() {
    // This host binds hugetlb to its cgroup2 mount: the limits are v2 files even on hybrid.
    let mut b = Bundle::new("hugetlb");
    b.set_args(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["resources"] = json!({
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "unified": {"hugetlb.1GB.max": "0"}
        })
    });
    let id = unique_id("hugetlb");
    ok(&b.brig(&["create", &id]));
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();
    let dir = unified_dir(pid);
    assert!(dir.ends_with(&id), "{}", dir.display());
    assert_eq!(read(&dir, "hugetlb.2MB.max"), "4194304");
    assert_eq!(read(&dir, "hugetlb.1GB.max"), "0");
    let stats = ok(&b.brig(&["events", "--stats", &id]));
    assert!(stats.contains("\"hugetlb\":{\"1GB\""), "{stats}");
    ok(&b.brig(&["delete", "--force", &id]));
    assert!(!dir.exists(), "the unified cgroup was left behind");
}

#[test]
fn a_cgroup2_mount_is_the_unified_hierarchy() {
    let mut b = Bundle::with_script(
        "cg2mount",
        "grep ' /sys/fs/cgroup ' /proc/self/mountinfo | tail -1 | sed 's/.* - //' | cut -d' ' -f1; \
         test -f /sys/fs/cgroup/cgroup.procs && echo has-procs",
    );
    b.edit(|c| {
        // In place of the default `cgroup` mount (on v2 that is cgroup2 already, and the
        // kernel refuses a second cgroup2 mount on the same place).
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
        mounts.push(json!(
            {"destination": "/sys/fs/cgroup", "type": "cgroup2", "source": "cgroup2", "options": ["nosuid", "noexec", "nodev"]}
        ));
        add_cgroup_namespace(c);
    });
    assert_eq!(ok(&b.run(&unique_id("cg2mount"))), "cgroup2\nhas-procs\n");
}

#[test]
fn a_writable_cgroup_mount_in_a_cgroup_namespace_delegates_the_cgroup_on_v2_only() {
    let mut b = Bundle::new("cgdelegate");
    b.set_args(&["sleep", "1000"]);
    b.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
        mounts.push(json!(
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev"]}
        ));
        add_cgroup_namespace(c);
    });
    let id = unique_id("cgdelegate");
    ok(&b.brig(&["run", "-d", &id]));
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();
    use std::os::unix::fs::MetadataExt;
    let dir = cgroup_dir(pid, "pids");
    let owner = |name: &str| std::fs::metadata(dir.join(name)).unwrap().uid();
    if v2() {
        assert_eq!((owner(""), owner("cgroup.procs")), (1000, 1000));
        assert_eq!(owner("memory.max"), 0, "only the delegatable files");
    } else {
        // cgroup v1 delegation is not safe: the spec says leave the owner alone.
        assert_eq!(owner(""), 0);
    }
    ok(&b.brig(&["delete", "--force", &id]));
}

/// `/proc/self/cgroup`'s path for the hierarchy with `controller` (v1) or the `0::` line.
fn own_cgroup(controller: Option<&str>) -> String {
    std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
            let hit = match controller {
                Some(c) => list.split(',').any(|x| x == c),
                None => list.is_empty(),
            };
            hit.then(|| path.to_string())
        })
        .unwrap()
}

/// Where a relative cgroupsPath `rel` lands for the freezer: v1 below our own freezer cgroup,
/// v2 beside our own cgroup (below its parent).
fn freezer_dir_for(rel: &str) -> (PathBuf, &'static str, &'static str) {
    if v2() {
        let own = own_cgroup(None);
        let parent = std::path::Path::new(&own)
            .parent()
            .unwrap_or(std::path::Path::new("/"))
            .to_path_buf();
        let dir = PathBuf::from("/sys/fs/cgroup")
            .join(parent.strip_prefix("/").unwrap())
            .join(rel);
        (dir, "cgroup.freeze", "1")
    } else {
        let own = own_cgroup(Some("freezer"));
        let dir = PathBuf::from("/sys/fs/cgroup/freezer")
            .join(own.trim_start_matches('/'))
            .join(rel);
        (dir, "freezer.state", "FROZEN")
    }
}

#[test]
fn a_cgroup_frozen_already_is_refused_at_once() {
    let id = unique_id("cgfrozen");
    let rel = format!("brig-frozen-{id}");
    let (dir, file, frozen) = freezer_dir_for(&rel);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(file), frozen).unwrap();
    struct Thaw(PathBuf, &'static str);
    impl Drop for Thaw {
        fn drop(&mut self) {
            let thawed = if self.1 == "cgroup.freeze" {
                "0"
            } else {
                "THAWED"
            };
            let _ = std::fs::write(self.0.join(self.1), thawed);
        }
    }
    struct Rmdir(PathBuf);
    impl Drop for Rmdir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    // Dropped last, after the bundle's cleanup removed what brig made below it.
    let _rmdir = Rmdir(dir.clone());
    let mut b = Bundle::new("cgfrozen");
    b.set_args(&["true"]);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(rel));
    // Dropped before the bundle: a frozen process cannot die, so thaw before any cleanup.
    let thaw = Thaw(dir.clone(), file);
    // brig used to hang here forever, its init parked in the frozen cgroup.
    let mut child = b
        .command(&["create", &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            // Thaw so the stuck create can finish, then fail the test.
            drop(thaw);
            let _ = child.kill();
            let _ = child.wait();
            panic!("create on a frozen cgroup did not return");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("container's cgroup unexpectedly frozen"),
        "{err}"
    );
    assert!(b.containers().is_empty());
    assert!(dir.exists(), "the cgroup brig did not make was removed");
    drop(thaw);
}

#[test]
fn without_a_cgroups_path_the_cgroup_is_named_after_the_id_on_every_hierarchy() {
    let mut b = Bundle::new("cgnoname");
    b.set_args(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"].as_object_mut().unwrap().remove("cgroupsPath");
        c["linux"]["resources"] = json!({"pids": {"limit": 30}});
    });
    let id = unique_id("cgnoname");
    ok(&b.brig(&["run", "-d", &id]));
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    // Every line: pids, memory, … and (on a hybrid host too, as runc) the unified `0::` one.
    for line in text.lines() {
        assert!(line.ends_with(&format!("/{id}")), "{text}");
    }
    assert!(text.lines().any(|l| l.starts_with("0::")), "{text}");
    let unified = unified_dir(pid);
    assert!(unified.is_dir());
    ok(&b.brig(&["delete", "--force", &id]));
    assert!(!unified.exists(), "the unified cgroup was left behind");
    assert!(no_cgroup_named(&id));
}

#[test]
fn linux_devices_make_nodes_and_the_device_cgroup_decides_access() {
    // runc's dev.bats "device cgroup deny": /dev/kmsg is listed in linux.devices, and the
    // resources deny everything, so the node exists and every access is refused.
    let mut b = Bundle::with_script(
        "devnode",
        "test -c /dev/kmsg && echo node; \
         echo x 2>&1 > /dev/kmsg | grep -o 'Operation not permitted'; \
         head -c1 /dev/kmsg 2>&1 >/dev/null | grep -o 'Operation not permitted'; \
         echo y > /dev/null && echo null-ok",
    );
    b.edit(|c| {
        c["linux"]["devices"] =
            json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}]);
        c["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
        let caps = json!(["CAP_SYSLOG"]);
        c["process"]["capabilities"] =
            json!({"bounding": caps, "effective": caps, "permitted": caps});
    });
    assert_eq!(
        ok(&b.run(&unique_id("devnode"))),
        "node\nOperation not permitted\nOperation not permitted\nnull-ok\n"
    );
    // An access letter runc does not know is ignored ("rwa" is "rw"), not refused; that rule
    // allows reading the node again.
    b.edit(|c| {
        c["linux"]["resources"] = json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rwa"}
        ]});
        c["process"]["args"] = json!(["sh", "-c", "head -c1 /dev/kmsg >/dev/null && echo read-ok"]);
    });
    assert_eq!(ok(&b.run(&unique_id("devletters"))), "read-ok\n");
}

#[test]
fn delete_force_removes_the_cgroups_the_container_made_below_its_own() {
    let mut b = Bundle::new("cgsub");
    b.set_args(&["sleep", "1000"]);
    let id = unique_id("cgsub");
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("brig-sub-{id}")));
    ok(&b.brig(&["run", "-d", &id]));
    let detached = b.brig(&["exec", "--detach", &id, "sleep", "999"]);
    ok(&detached);
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();
    // The second sleep moves into a sub-cgroup "foo" of every hierarchy that can hold it
    // (what a container with a writable cgroup mount does).
    let controllers: Vec<&str> = if v2() {
        vec!["pids"]
    } else {
        vec!["memory", "freezer", "pids"]
    };
    let mut subs = Vec::new();
    let sleeper = {
        let dir = cgroup_dir(pid, controllers[0]);
        let procs = read(&dir, "cgroup.procs");
        procs
            .lines()
            .map(|p| p.trim().to_string())
            .find(|p| {
                std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.contains("999"))
            })
            .expect("the exec'd sleep")
    };
    for c in &controllers {
        let sub = cgroup_dir(pid, c).join("foo");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("cgroup.procs"), &sleeper).unwrap();
        subs.push(sub);
    }
    let out = b.brig(&["delete", "--force", &id]);
    for sub in &subs {
        if sub.exists() {
            let _ = std::fs::write(sub.parent().unwrap().join("cgroup.procs"), &sleeper);
            let _ = std::fs::remove_dir(sub);
        }
    }
    ok(&out);
    assert!(subs.iter().all(|s| !s.exists()), "sub-cgroups left behind");
    assert!(
        !pid_alive(sleeper.parse().unwrap()),
        "the process in the sub-cgroup survived"
    );
    assert!(no_cgroup_named(&format!("brig-sub-{id}")));
}

#[test]
fn zero_resource_values_mean_not_set() {
    // What Docker sends for a container without limits: every field, unset ones as zero.
    let mut b = Bundle::new("cgzero");
    b.set_args(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["resources"] = json!({
            "memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0, "kernelTCP": 0,
                       "disableOOMKiller": false, "useHierarchy": false},
            "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0,
                    "realtimePeriod": 0, "cpus": "", "mems": ""},
            "blockIO": {"weight": 0, "leafWeight": 0,
                        "weightDevice": [{"major": 8, "minor": 0, "weight": 0, "leafWeight": 0}]},
            "pids": {"limit": 0},
            "network": {"classID": 0}
        });
    });
    let id = unique_id("cgzero");
    ok(&b.brig(&["run", "-d", &id]));
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();
    let cpu = cgroup_dir(pid, "cpu");
    let memory = cgroup_dir(pid, "memory");
    if v2() {
        assert_eq!(read(&cpu, "cpu.weight"), "100");
        assert_eq!(read(&cpu, "cpu.max"), "max 100000");
        assert_eq!(read(&memory, "memory.max"), "max");
    } else {
        assert_eq!(read(&cpu, "cpu.shares"), "1024");
        assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "-1");
        assert_eq!(
            read(&memory, "memory.limit_in_bytes"),
            "9223372036854771712"
        );
    }
    assert_eq!(read(&cgroup_dir(pid, "pids"), "pids.max"), "max");
    ok(&b.brig(&["delete", "--force", &id]));
}

#[test]
fn a_missing_cgroup_file_is_reported_as_missing_and_named() {
    // No kernel here has blkio.leaf_weight (CFQ is gone); v2 has no leaf weights at all.
    let mut b = Bundle::new("cgmissing");
    b.edit(|c| c["linux"]["resources"] = json!({"blockIO": {"leafWeight": 300}}));
    let id = unique_id("cgmissing");
    let err = fails(&b.brig(&["create", &id]));
    assert!(err.contains("linux.resources.blockIO.leafWeight"), "{err}");
    if v2() {
        assert!(err.contains("cannot be applied on cgroup v2"), "{err}");
    } else {
        assert!(err.contains("blkio.leaf_weight does not exist"), "{err}");
    }
    assert!(!err.contains("permission denied"), "{err}");
    assert!(b.containers().is_empty());
    assert!(no_cgroup_named(&id));
}

#[test]
fn update_checks_everything_before_writing_and_says_what_was_applied() {
    let mut b = Bundle::new("cgupd");
    b.set_args(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 40}})
    });
    let id = unique_id("cgupd");
    ok(&b.brig(&["run", "-d", &id]));
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();
    let (memory, pids) = (cgroup_dir(pid, "memory"), cgroup_dir(pid, "pids"));
    let limit_file = if v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let update = |json: &str| {
        write_stdin(
            b.command(&["update", "--resources", "-", &id])
                .current_dir(&b.dir),
            json,
        )
    };
    // docker update's shape: every field, most of them zero. Only memory and pids change.
    let docker = r#"{"blockIO": {"weight": 0}, "cpu": {"shares": 0, "quota": 0, "period": 0,
        "realtimeRuntime": 0, "realtimePeriod": 0, "cpus": "", "mems": ""},
        "memory": {"limit": 100663296, "reservation": 0, "swap": 0, "kernel": 0},
        "pids": {"limit": 50}}"#;
    ok(&update(docker));
    assert_eq!(read(&memory, limit_file), "100663296");
    assert_eq!(read(&pids, "pids.max"), "50");
    // A setting this host cannot apply is found before anything is written.
    let refused = update(
        r#"{"memory": {"limit": 134217728}, "pids": {"limit": 60},
        "blockIO": {"leafWeight": 300}}"#,
    );
    let err = fails(&refused);
    assert!(err.contains("linux.resources.blockIO.leafWeight"), "{err}");
    assert_eq!(read(&memory, limit_file), "100663296", "memory changed");
    assert_eq!(read(&pids, "pids.max"), "50", "pids changed");
    // A write the kernel refuses half-way: the error says what was applied before it.
    let half = update(r#"{"memory": {"limit": 134217728}, "cpu": {"cpus": "999"}}"#);
    let err = fails(&half);
    assert!(err.contains("linux.resources.cpu.cpus"), "{err}");
    assert!(err.contains("applied before it: memory.limit"), "{err}");
    assert_eq!(read(&memory, limit_file), "134217728");
    ok(&b.brig(&["delete", "--force", &id]));
}

#[test]
fn v1_update_writes_limits_in_an_order_the_kernel_accepts() {
    if v2() {
        return; // cgroup v1 files only
    }
    let own_cpu = own_cgroup(Some("cpu"));
    let id = unique_id("cgorder");
    // A pod cgroup with a CPU limit of half a CPU, the container below it.
    let pod = PathBuf::from("/sys/fs/cgroup/cpu")
        .join(own_cpu.trim_start_matches('/'))
        .join(format!("brig-pod-{id}"));
    std::fs::create_dir_all(&pod).unwrap();
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _pod = Rm(pod.clone());
    std::fs::write(pod.join("cpu.cfs_quota_us"), "50000").unwrap();
    let mut b = Bundle::new("cgorder");
    b.set_args(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("brig-pod-{id}/{id}"));
        c["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 67108864}});
    });
    ok(&b.brig(&["run", "-d", &id]));
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();
    let (memory, cpu) = (cgroup_dir(pid, "memory"), cgroup_dir(pid, "cpu"));
    // No memory limit: memory+swap has to go first, or the kernel refuses memory.
    if memory.join("memory.memsw.limit_in_bytes").exists() {
        ok(&b.brig(&["update", "--memory", "-1", &id]));
        assert_eq!(
            read(&memory, "memory.limit_in_bytes"),
            "9223372036854771712"
        );
        assert_eq!(
            read(&memory, "memory.memsw.limit_in_bytes"),
            "9223372036854771712"
        );
        // Raising both where the new memory is above the old memory+swap.
        ok(&b.brig(&["update", "--memory", "30M", "--memory-swap", "50M", &id]));
        ok(&b.brig(&["update", "--memory", "60M", "--memory-swap", "80M", &id]));
        assert_eq!(
            read(&memory, "memory.limit_in_bytes"),
            (60 << 20).to_string()
        );
        assert_eq!(
            read(&memory, "memory.memsw.limit_in_bytes"),
            (80 << 20).to_string()
        );
    }
    // A shorter period under the pod's quota is refused until the new, lower quota is in.
    ok(&b.brig(&[
        "update",
        "--cpu-period",
        "10000",
        "--cpu-quota",
        "3000",
        &id,
    ]));
    assert_eq!(read(&cpu, "cpu.cfs_period_us"), "10000");
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "3000");
    ok(&b.brig(&["delete", "--force", &id]));
}

#[test]
fn the_canonical_v1_mount_is_used_when_a_hierarchy_is_mounted_twice() {
    if v2() {
        return; // v1 hierarchies only
    }
    // In a mount namespace of its own: a bind mount of a subdirectory of the pids hierarchy
    // comes first in mountinfo, the canonical /sys/fs/cgroup/pids after it.
    let mut b = Bundle::new("cgcanon");
    b.set_args(&["sleep", "1000"]);
    let id = unique_id("cgcanon");
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("brig-canon-{id}"));
        c["linux"]["resources"] = json!({"pids": {"limit": 7}});
    });
    let own = own_cgroup(Some("pids"));
    let decoy = PathBuf::from("/sys/fs/cgroup/pids")
        .join(own.trim_start_matches('/'))
        .join(format!("brig-decoy-{id}"));
    std::fs::create_dir_all(&decoy).unwrap();
    let elsewhere = b.dir.join("pids-elsewhere");
    let keep = b.dir.join("pids-canonical");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::create_dir_all(&keep).unwrap();
    let script = format!(
        "set -e; mount --make-rprivate /; mount --bind /sys/fs/cgroup/pids {keep}; \
         umount /sys/fs/cgroup/pids; mount --bind {keep}/{decoy_rel} {elsewhere}; \
         mount --bind {keep} /sys/fs/cgroup/pids; umount {keep}; \
         exec {brig} --root {root} run -d {id}",
        keep = keep.display(),
        decoy_rel = decoy.strip_prefix("/sys/fs/cgroup/pids").unwrap().display(),
        elsewhere = elsewhere.display(),
        brig = brig_binary().display(),
        root = b.root.display(),
    );
    let out = output_via_files(
        std::process::Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .current_dir(&b.dir),
        &b.dir,
    );
    let started = out.status.success();
    // The limit is in the cgroup the container's processes are in, not in one below the
    // decoy mount's subtree.
    let limit = b.state(&id).map(|s| {
        let pid = s["pid"].as_i64().unwrap();
        std::fs::read_to_string(cgroup_dir(pid, "pids").join("pids.max")).unwrap_or_default()
    });
    let _ = b.brig(&["delete", "--force", &id]);
    let _ = std::fs::remove_dir(decoy.join(format!("brig-canon-{id}")));
    let _ = std::fs::remove_dir(&decoy);
    assert!(started, "{}", stderr(&out));
    assert_eq!(limit.as_deref().map(str::trim), Some("7"));
}

/// Every hierarchy's directory where a relative cgroupsPath whose first component is `top`
/// would begin: below our own cgroup on each v1 hierarchy (and a hybrid host's unified one),
/// beside it on a v2 host (below its parent). Found from /proc/self/cgroup and mountinfo.
fn where_relative_cgroups_go(top: &str) -> Vec<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let v2 = v2();
    let mut found = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, list, path) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let wanted: Vec<&str> = list.split(',').filter(|c| !c.is_empty()).collect();
        let Some((point, root)) = mounts.lines().find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fields: Vec<&str> = pre.split(' ').collect();
            let mut post = post.split(' ');
            let fs_type = post.next()?;
            let options: Vec<&str> = post.nth(1)?.split(',').collect();
            let matches = if wanted.is_empty() {
                fs_type == "cgroup2"
            } else {
                fs_type == "cgroup" && wanted.iter().all(|c| options.contains(c))
            };
            (matches && fields[4].starts_with("/sys/fs/cgroup"))
                .then(|| (PathBuf::from(fields[4]), fields[3].to_string()))
        }) else {
            continue;
        };
        let mut own = PathBuf::from(path);
        if v2 {
            own = own.parent().unwrap_or(&own).to_path_buf();
        }
        let rel = own.strip_prefix(&root).unwrap_or(&own).to_path_buf();
        let rel = rel.strip_prefix("/").unwrap_or(&rel).to_path_buf();
        found.push(point.join(rel).join(top));
    }
    assert!(!found.is_empty(), "no cgroup hierarchy found");
    found
}

/// issue 12: brig killed (SIGKILL) at any moment of `create`, then `delete --force`: the
/// environment is as if the create was never attempted — no cgroup directory is left on any
/// hierarchy (before the fix, a kill between the cgroup's mkdir and the first state write left
/// empty directories that `delete --force` did not know about).
#[test]
fn an_early_killed_create_leaves_no_cgroup_after_delete_force() {
    let mut b = Bundle::new("cgearly");
    b.set_args(&["sleep", "1000"]);
    let top = format!("brig-early-{}", unique_id("t"));
    let places = where_relative_cgroups_go(&top);
    let mut leaked = Vec::new();
    for attempt in 0..40u64 {
        let id = format!("{top}-{attempt}");
        b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("{top}/{id}")));
        let mut child = b
            .command(&["create", &id])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // From right after exec to well into the create (cgroups made, init cloned).
        std::thread::sleep(Duration::from_micros(attempt * 75));
        let _ = child.kill();
        let _ = child.wait();
        let out = b.brig(&["delete", "--force", &id]);
        assert!(
            out.status.success(),
            "attempt {attempt}: delete --force: {}",
            stderr(&out)
        );
        for place in &places {
            if place.exists() {
                leaked.push(format!("attempt {attempt}: {}", place.display()));
                // Clean up for the next attempt (and the host): children first.
                if let Ok(entries) = std::fs::read_dir(place) {
                    for e in entries.flatten().filter(|e| e.path().is_dir()) {
                        let _ = std::fs::remove_dir(e.path());
                    }
                }
                let _ = std::fs::remove_dir(place);
            }
        }
    }
    assert!(
        leaked.is_empty(),
        "cgroups left behind:\n{}",
        leaked.join("\n")
    );
}
