//! The systemd cgroup driver (`--systemd-cgroup`). The tests that need systemd as PID 1 are
//! `#[ignore]`d (reported as ignored, with the reason, on a host without it) and run in the
//! systemd VM: `VM_TEST_ARGS=--include-ignored hack/vm-test.sh --systemd --test systemd`.
//! The cgroupsPath checks run everywhere.

use std::process::Command;

use integration::*;
use serde_json::json;

const NEEDS_SYSTEMD: &str = "systemd is not PID 1 here";

/// systemd runs this host (else the test says why it does nothing).
fn systemd() -> bool {
    let running = std::fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "systemd");
    if !running {
        eprintln!("skipped: {NEEDS_SYSTEMD}");
    }
    running
}

fn systemctl(args: &[&str]) -> String {
    let out = Command::new("systemctl").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn show(unit: &str, property: &str) -> String {
    systemctl(&["show", "-p", property, "--value", unit])
}

/// The unit is not loaded at all (not even failed or inactive).
fn unit_gone(unit: &str) -> bool {
    !systemctl(&["list-units", "--all", "--no-legend", "--plain", unit]).contains(unit)
}

fn v2() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The process's cgroup as systemd names it (v2: the unified line; v1: name=systemd).
fn cgroup_of(pid: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let wanted = if v2() { "0::" } else { ":name=systemd:" };
    text.lines()
        .find_map(|l| l.split_once(wanted).map(|(_, p)| p.to_string()))
        .unwrap_or_else(|| panic!("no {wanted} line in {text}"))
}

fn init_pid(b: &Bundle, id: &str) -> String {
    b.state(id).unwrap()["pid"].to_string()
}

/// A container running `sleep` with --systemd-cgroup and `cgroups_path`.
fn sleeper(name: &str, cgroups_path: Option<&str>) -> (Bundle, String) {
    let mut b = Bundle::with_script(name, "sleep 1000");
    if let Some(p) = cgroups_path {
        b.edit(|c| c["linux"]["cgroupsPath"] = json!(p));
    }
    let id = unique_id(name);
    ok(&b.brig(&["--systemd-cgroup", "run", "-d", &id]));
    (b, id)
}

#[test]
fn bad_cgroups_paths_say_which_form_is_expected() {
    for (path, says) in [
        ("/a/b", "slice:prefix:name"),
        ("a:b", "slice:prefix:name"),
        ("a:b:c:d", "slice:prefix:name"),
        ("nope:p:n", "invalid slice name \"nope\""),
        ("a/b.slice:p:n", "invalid slice name"),
        ("a--b.slice:p:n", "invalid slice name"),
    ] {
        let mut b = Bundle::with_script("sdbad", "true");
        b.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
        let err = fails(&b.brig(&["--systemd-cgroup", "run", &unique_id("sdbad")]));
        assert!(
            err.contains(says) && err.contains("cgroupsPath"),
            "{path}: {err}"
        );
        assert!(b.containers().is_empty(), "{path}");
    }
    // The systemd form without the flag.
    let mut b = Bundle::with_script("sdbad", "true");
    b.edit(|c| c["linux"]["cgroupsPath"] = json!("system.slice:brig:x"));
    let err = fails(&b.brig(&["run", &unique_id("sdbad")]));
    assert!(err.contains("systemd driver (--systemd-cgroup)"), "{err}");
    assert!(b.containers().is_empty());
}

#[test]
fn without_systemd_the_flag_is_a_clear_error() {
    if std::path::Path::new("/run/systemd/system").exists() {
        eprintln!("skipped: systemd runs here");
        return;
    }
    let b = Bundle::with_script("sdnone", "true");
    let err = fails(&b.brig(&["--systemd-cgroup", "run", &unique_id("sdnone")]));
    assert!(
        err.contains("--systemd-cgroup: systemd is not running on this host"),
        "{err}"
    );
    assert!(b.containers().is_empty());
}

/// The unit a container gets, from its id.
type UnitOf = Box<dyn Fn(&str) -> String>;

#[test]
#[ignore = "needs systemd as PID 1 (hack/vm-test.sh --systemd)"]
fn each_cgroups_path_form_lands_where_systemd_says() {
    if !systemd() {
        return;
    }
    let n = std::process::id();
    let forms: Vec<(Option<String>, UnitOf)> = vec![
        (None, Box::new(|id: &str| format!("brig-{id}.scope"))),
        (
            Some(format!(":brigt:x{n}")),
            Box::new(move |_: &str| format!("brigt-x{n}.scope")),
        ),
        (
            Some(format!("-:brigt:r{n}")),
            Box::new(move |_: &str| format!("brigt-r{n}.scope")),
        ),
        (
            Some(format!("brigt{n}-sub.slice:brigt:s{n}")),
            Box::new(move |_: &str| format!("brigt-s{n}.scope")),
        ),
        (
            Some(format!(":brigt:brigt{n}x.slice")),
            Box::new(move |_: &str| format!("brigt{n}x.slice")),
        ),
    ];
    for (path, unit_of) in forms {
        let (b, id) = sleeper("sdform", path.as_deref());
        let unit = unit_of(&id);
        let pid = init_pid(&b, &id);
        let expected = show(&unit, "ControlGroup");
        assert!(!expected.is_empty(), "{path:?}: {unit} has no ControlGroup");
        assert_eq!(cgroup_of(&pid), expected, "{path:?} {unit}");
        assert_eq!(show(&unit, "ActiveState"), "active", "{unit}");
        if !unit.ends_with(".slice") {
            assert_eq!(show(&unit, "Delegate"), "yes", "{unit}");
        }
        // ps and kill --all find the processes through the unit's cgroup.
        assert!(ok(&b.brig(&["ps", &id])).contains(&pid), "{unit}");
        ok(&b.brig(&["kill", "--all", &id, "KILL"]));
        b.wait_status(&id, "stopped");
        ok(&b.brig(&["delete", &id]));
        assert!(unit_gone(&unit), "{unit} left after delete");
    }
}

#[test]
#[ignore = "needs systemd as PID 1 (hack/vm-test.sh --systemd)"]
fn limits_read_back_from_files_and_systemd_and_update_changes_both() {
    if !systemd() {
        return;
    }
    let mut b = Bundle::with_script("sdlim", "sleep 1000");
    b.edit(|c| {
        c["linux"]["resources"] = json!({
            "memory": {"limit": 67108864},
            "pids": {"limit": 50},
            "cpu": {"quota": 50000, "period": 100000, "shares": 1024}
        })
    });
    let id = unique_id("sdlim");
    ok(&b.brig(&["--systemd-cgroup", "run", "-d", &id]));
    let unit = format!("brig-{id}.scope");
    let dir = |controller: &str| {
        let cg = show(&unit, "ControlGroup");
        if v2() {
            format!("/sys/fs/cgroup{cg}")
        } else {
            format!("/sys/fs/cgroup/{controller}{cg}")
        }
    };
    let read = |controller: &str, file: &str| {
        std::fs::read_to_string(format!("{}/{file}", dir(controller)))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .trim()
            .to_string()
    };
    let (mem_file, cpu_file) = if v2() {
        ("memory.max", "cpu.max")
    } else {
        ("memory.limit_in_bytes", "cpu.cfs_quota_us")
    };
    assert_eq!(read("memory", mem_file), "67108864");
    assert_eq!(read("pids", "pids.max"), "50");
    let cpu = read("cpu", cpu_file);
    assert!(cpu == "50000 100000" || cpu == "50000", "{cpu}");
    let mem_prop = if v2() { "MemoryMax" } else { "MemoryLimit" };
    assert_eq!(show(&unit, mem_prop), "67108864");
    assert_eq!(show(&unit, "TasksMax"), "50");
    assert_eq!(show(&unit, "CPUQuotaPerSecUSec"), "500ms");

    ok(&b.brig(&["update", "--memory", "134217728", "--pids-limit", "60", &id]));
    assert_eq!(read("memory", mem_file), "134217728");
    assert_eq!(read("pids", "pids.max"), "60");
    assert_eq!(show(&unit, mem_prop), "134217728");
    assert_eq!(show(&unit, "TasksMax"), "60");

    // pause and resume through systemd (FreezeUnit, v2) and the unit's cgroup: both agree
    let (freeze_file, frozen) = if v2() {
        ("cgroup.freeze", "1")
    } else {
        ("freezer.state", "FROZEN")
    };
    ok(&b.brig(&["pause", &id]));
    assert_eq!(b.status(&id).as_deref(), Some("paused"));
    assert_eq!(read("freezer", freeze_file), frozen);
    // systemd freezes units on cgroup v2 only.
    let systemd_says = if v2() { "frozen" } else { "running" };
    assert_eq!(show(&unit, "FreezerState"), systemd_says);
    ok(&b.brig(&["resume", &id]));
    assert_eq!(b.status(&id).as_deref(), Some("running"));
    assert_ne!(read("freezer", freeze_file), frozen);
    assert_eq!(show(&unit, "FreezerState"), "running");

    // A paused container goes with its unit.
    ok(&b.brig(&["pause", &id]));
    ok(&b.brig(&["delete", "--force", &id]));
    assert!(unit_gone(&unit), "{unit} left after delete --force");
}

#[test]
#[ignore = "needs systemd as PID 1 (hack/vm-test.sh --systemd)"]
fn device_rules_hold_and_systemd_shows_them() {
    if !systemd() {
        return;
    }
    let mut b = Bundle::with_script("sddev", "sleep 1000");
    b.edit(|c| {
        // /dev/full listed again: its default rule goes, the config's says read only.
        c["linux"]["devices"] = json!([
            {"path": "/dev/full", "type": "c", "major": 1, "minor": 7},
            {"path": "/dev/xloop", "type": "c", "major": 10, "minor": 237}
        ]);
        c["linux"]["resources"] = json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "r"}
        ]});
    });
    let id = unique_id("sddev");
    ok(&b.brig(&["--systemd-cgroup", "run", "-d", &id]));
    let unit = format!("brig-{id}.scope");
    let tries = ok(&b.brig(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for t in '< /dev/full' '> /dev/full' '< /dev/xloop' '> /dev/null'; do \
           (eval \": $t\") 2>/dev/null && echo \"$t: yes\" || echo \"$t: no\"; done",
    ]));
    assert_eq!(
        tries.lines().collect::<Vec<_>>(),
        [
            "< /dev/full: yes",
            "> /dev/full: no",
            "< /dev/xloop: no",
            "> /dev/null: yes"
        ]
    );
    assert_eq!(show(&unit, "DevicePolicy"), "strict");
    let allowed = systemctl(&["show", "-p", "DeviceAllow", &unit]);
    for entry in ["/dev/char/1:7 r", "/dev/char/1:3 rwm", "char-136 rwm"] {
        assert!(
            allowed.lines().any(|l| l == format!("DeviceAllow={entry}")),
            "{entry} not in {allowed}"
        );
    }
    assert!(!allowed.contains("10:237"), "{allowed}");
    assert!(!allowed.contains("1:7 rw"), "{allowed}");
    ok(&b.brig(&["delete", "--force", &id]));
    assert!(unit_gone(&unit));
}

/// CRIU 4 (hack/criu.sh), as the checkpoint tests find it.
fn criu() -> Option<String> {
    let path = std::env::var("BRIG_CRIU").unwrap_or_else(|_| "/var/cache/criu/bin/criu".into());
    let out = Command::new(&path).arg("--version").output().ok()?;
    if String::from_utf8_lossy(&out.stdout).contains("Version: 4.") {
        Some(path)
    } else {
        eprintln!("skipped: no CRIU 4.x at {path} (run hack/criu.sh or set BRIG_CRIU)");
        None
    }
}

#[test]
#[ignore = "needs systemd as PID 1 (hack/vm-test.sh --systemd)"]
fn a_restored_container_gets_its_unit_again() {
    if !systemd() {
        return;
    }
    let Some(criu) = criu() else { return };
    // Its stdio is the container's own /dev/null: nothing outside for CRIU to hand back.
    let mut b = Bundle::with_script("sdcr", "exec </dev/null >/dev/null 2>&1; sleep 1000");
    b.edit(|c| {
        c["linux"]["resources"] = json!({"pids": {"limit": 40}});
    });
    let id = unique_id("sdcr");
    ok(&b.brig(&["--systemd-cgroup", "run", "-d", &id]));
    let unit = format!("brig-{id}.scope");
    let images = b.dir.join("images");
    let images = images.to_str().unwrap();
    ok(&b.brig(&["--criu", &criu, "checkpoint", "--image-path", images, &id]));
    assert!(unit_gone(&unit), "{unit} left after checkpoint");
    assert!(b.containers().is_empty());

    ok(&b.brig(&[
        "--systemd-cgroup",
        "--criu",
        &criu,
        "restore",
        "-d",
        "--image-path",
        images,
        &id,
    ]));
    assert_eq!(b.status(&id).as_deref(), Some("running"));
    assert_eq!(show(&unit, "ActiveState"), "active");
    assert_eq!(show(&unit, "TasksMax"), "40");
    let cg = show(&unit, "ControlGroup");
    let pid = init_pid(&b, &id);
    assert_eq!(cgroup_of(&pid), cg, "restored init is not in {unit}");
    assert!(ok(&b.brig(&["ps", &id])).contains(&pid));
    ok(&b.brig(&["delete", "--force", &id]));
    assert!(unit_gone(&unit), "{unit} left after delete");
}

#[test]
#[ignore = "needs systemd as PID 1 (hack/vm-test.sh --systemd)"]
fn an_execd_process_is_in_the_unit() {
    if !systemd() {
        return;
    }
    let (b, id) = sleeper("sdexec", None);
    let unit = format!("brig-{id}.scope");
    ok(&b.brig(&["exec", "-d", &id, "sleep", "999"]));
    let expected = show(&unit, "ControlGroup");
    let pids = ok(&b.brig(&["ps", "--format", "json", &id]));
    let pids: Vec<i64> = serde_json::from_str(&pids).unwrap();
    assert!(pids.len() >= 2, "init and the exec'd sleep: {pids:?}");
    for pid in pids {
        assert_eq!(cgroup_of(&pid.to_string()), expected);
    }
    ok(&b.brig(&["delete", "--force", &id]));
    assert!(unit_gone(&unit));
}

#[test]
#[ignore = "needs systemd as PID 1 (hack/vm-test.sh --systemd)"]
fn a_failed_create_leaves_no_unit_and_a_taken_unit_is_named() {
    if !systemd() {
        return;
    }
    // A createRuntime hook fails after the unit is up.
    let mut b = Bundle::with_script("sdfail", "sleep 1000");
    b.edit(|c| c["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]}));
    let id = unique_id("sdfail");
    fails(&b.brig(&["--systemd-cgroup", "run", "-d", &id]));
    assert!(unit_gone(&format!("brig-{id}.scope")));
    assert!(b.containers().is_empty());

    // Two containers asking for the same unit: the second is refused, the first untouched.
    let n = std::process::id();
    let path = format!(":brigt:same{n}");
    let (first, first_id) = sleeper("sdsame", Some(&path));
    let mut second = Bundle::with_script("sdsame", "sleep 1000");
    second.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
    let err = fails(&second.brig(&["--systemd-cgroup", "run", "-d", &unique_id("sdsame")]));
    let unit = format!("brigt-same{n}.scope");
    assert!(
        err.contains(&unit) && err.contains("already exists"),
        "{err}"
    );
    assert!(second.containers().is_empty());
    assert_eq!(first.status(&first_id).as_deref(), Some("running"));
    assert_eq!(show(&unit, "ActiveState"), "active");
    ok(&first.brig(&["delete", "--force", &first_id]));
    assert!(unit_gone(&unit));
}
