//! Bad input: one clear error naming the field or path, a non-zero exit, and nothing left
//! behind (no state directory, mount or process).

use integration::*;
use serde_json::json;

/// Run `create` and check the failure left nothing: returns stderr.
#[track_caller]
fn create_fails(b: &Bundle) -> String {
    let id = unique_id("bad");
    let before = processes_of(&b.dir);
    let err = fails(&b.brig(&["create", &id]));
    assert!(b.state(&id).is_none(), "state left behind");
    assert!(
        b.containers().is_empty(),
        "state directory left behind: {:?}",
        b.containers()
    );
    assert!(
        b.leaked_mounts().is_empty(),
        "mounts left behind: {:?}",
        b.leaked_mounts()
    );
    assert_eq!(processes_of(&b.dir), before, "process left behind");
    assert_eq!(err.lines().count(), 1, "one error line: {err}");
    err
}

/// Pids whose root is inside `dir` (a container init that survived would show here).
fn processes_of(dir: &std::path::Path) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| c.starts_with(dir))
        })
        .collect()
}

#[test]
fn missing_config() {
    let b = Bundle::new("noconfig");
    std::fs::remove_file(b.dir.join("config.json")).unwrap();
    let err = create_fails(&b);
    assert!(
        err.contains(&format!(
            "open config.json in {}: no such file or directory",
            b.dir.display()
        )),
        "{err}"
    );
}

#[test]
fn malformed_config() {
    let b = Bundle::new("malformed");
    std::fs::write(b.dir.join("config.json"), "{\"ociVersion\": \"1.2.0\", ").unwrap();
    let err = create_fails(&b);
    assert!(
        err.contains("config.json") && err.contains("line 1"),
        "{err}"
    );

    let mut b = Bundle::new("wrongtype");
    b.edit(|c| c["process"]["args"] = json!("sh"));
    let err = create_fails(&b);
    assert!(err.contains("invalid type"), "{err}");
}

#[test]
fn unknown_major_version() {
    let mut b = Bundle::new("version");
    b.edit(|c| c["ociVersion"] = json!("2.0.0"));
    assert!(create_fails(&b).contains("ociVersion: unsupported version \"2.0.0\""));
}

#[test]
fn relative_paths_where_absolute_is_required() {
    let mut b = Bundle::new("relcwd");
    b.edit(|c| c["process"]["cwd"] = json!("tmp"));
    assert!(create_fails(&b).contains("process.cwd: must be an absolute path"));

    let mut b = Bundle::new("relns");
    b.edit(|c| c["linux"]["namespaces"][1] = json!({"type": "network", "path": "proc/1/ns/net"}));
    assert!(create_fails(&b).contains("linux.namespaces[1].path: must be an absolute path"));

    // The spec: maskedPaths and readonlyPaths entries MUST be absolute.
    let mut b = Bundle::new("relmasked");
    b.edit(|c| c["linux"]["maskedPaths"] = json!(["/proc/kcore", "proc/keys"]));
    assert!(create_fails(&b)
        .contains("linux.maskedPaths[1]: must be an absolute path, got \"proc/keys\""));
    let mut b = Bundle::new("relreadonly");
    b.edit(|c| c["linux"]["readonlyPaths"] = json!(["sys"]));
    assert!(create_fails(&b).contains("linux.readonlyPaths[0]: must be an absolute path"));
}

#[test]
fn missing_rootfs() {
    let mut b = Bundle::new("norootfs");
    b.edit(|c| c["root"]["path"] = json!("nowhere"));
    let err = create_fails(&b);
    assert!(
        err.contains(&format!(
            "root.path {}/nowhere: no such file or directory",
            b.dir.display()
        )),
        "{err}"
    );
}

#[test]
fn missing_namespace_path() {
    let mut b = Bundle::new("nsmissing");
    b.edit(|c| {
        c["linux"]["namespaces"][1] = json!({"type": "network", "path": "/proc/999999999/ns/net"})
    });
    assert!(
        create_fails(&b).contains("linux.namespaces[1].path /proc/999999999/ns/net: no such file")
    );
}

#[test]
fn program_not_found_fails_at_create() {
    let mut b = Bundle::new("notfound");
    b.set_args(&["no-such-program"]);
    let err = create_fails(&b);
    assert!(
        err.contains("process.args[0]: \"no-such-program\": executable file not found in $PATH"),
        "{err}"
    );

    let mut b = Bundle::new("notfound-abs");
    b.set_args(&["/bin/nope"]);
    assert!(create_fails(&b).contains("process.args[0] /bin/nope: no such file or directory"));
}

#[test]
fn program_not_executable_fails_at_create() {
    let mut b = Bundle::new("noexec");
    std::fs::write(b.rootfs().join("bin/plain"), "#!/bin/sh\necho hi\n").unwrap();
    b.set_args(&["/bin/plain"]);
    b.edit(|c| c["process"]["user"] = json!({"uid": 1000, "gid": 1000}));
    assert!(create_fails(&b).contains("process.args[0] /bin/plain: permission denied"));

    let mut b = Bundle::new("isdir");
    b.set_args(&["/bin/../tmp"]);
    assert!(create_fails(&b).contains("is not a regular file"));
}

#[test]
fn a_mount_that_fails_reports_from_init_and_cleans_up() {
    let mut b = Bundle::new("badmount");
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/x", "type": "nosuchfs", "source": "none"}))
    });
    let err = create_fails(&b);
    assert!(
        err.contains("mount \"none\" on \"/x\": no such device"),
        "{err}"
    );
}

#[test]
fn unsupported_fields_are_refused_not_ignored() {
    let idmap_cases = [
        (
            json!({"destination": "/m", "type": "tmpfs", "source": "tmpfs",
                "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}),
            "idmap and ridmap are supported on bind mounts only",
        ),
        (
            json!({"destination": "/m", "type": "bind", "source": "/tmp", "options": ["bind"],
                "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}),
            "gidMappings: must be given with uidMappings",
        ),
        (
            // No mappings of its own and no user namespace to borrow them from.
            json!({"destination": "/m", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"]}),
            "idmap needs the mount's uidMappings and gidMappings",
        ),
    ];
    for (mount, message) in idmap_cases {
        let mut b = Bundle::new("idmap");
        b.edit(|c| c["mounts"].as_array_mut().unwrap().push(mount.clone()));
        let err = create_fails(&b);
        assert!(
            err.contains("mounts[") && err.contains(message),
            "{mount}: {err}"
        );
    }

    let mut b = Bundle::new("rdt");
    b.edit(|c| c["linux"]["intelRdt"] = json!({"closID": "x"}));
    // No machine here has RDT: the error says so (the group rules are unit tests).
    assert!(create_fails(&b).contains("linux.intelRdt: resctrl is not mounted"));

    let mut b = Bundle::new("unknowncap");
    b.edit(|c| c["process"]["capabilities"]["bounding"] = json!(["CAP_NOT_A_CAP"]));
    create_fails(&b);
}

#[test]
fn bad_flags_and_ids() {
    let b = Bundle::new("flags");
    fails(&b.brig(&["create", "a/b"]));
    assert!(b.containers().is_empty());
    fails(&b.brig(&["kill", "x", "NOTASIGNAL"]));
    fails(&b.brig(&["--log-format", "xml", "list"]));
}

#[test]
fn rlimit_above_the_hard_limit_fails_clearly() {
    let mut b = Bundle::new("rlimit-high");
    let hard = std::fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| {
            l.split_whitespace()
                .nth(4)
                .map(|v| v.parse::<u64>().unwrap())
        })
        .unwrap();
    let wanted = hard.saturating_mul(4).max(1 << 20);
    b.edit(|c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": wanted, "hard": wanted}])
    });
    let id = unique_id("rlimit-high");
    let out = b.brig(&["create", &id]);
    if out.status.success() {
        // A host with CAP_SYS_RESOURCE (not this kind of machine) may raise the limit.
        ok(&b.brig(&["delete", "--force", &id]));
        return;
    }
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "set rlimit RLIMIT_NOFILE to soft {wanted} hard {wanted}: operation not permitted"
        )),
        "{err}"
    );
    assert!(b.containers().is_empty());

    let mut b = Bundle::new("rlimit-unknown");
    b.edit(|c| c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}]));
    create_fails(&b);
}

#[test]
fn hostname_without_a_uts_namespace_is_refused() {
    let mut b = Bundle::new("nouts");
    b.edit(|c| c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}]));
    assert!(create_fails(&b).contains("hostname: setting the hostname needs a uts namespace"));
}

#[test]
fn a_capability_brig_does_not_have_is_named() {
    // Only where brig itself lacks one (this machine has no CAP_SYS_RESOURCE).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let names = [
        (24, "CAP_SYS_RESOURCE"),
        (16, "CAP_SYS_MODULE"),
        (17, "CAP_SYS_RAWIO"),
    ];
    let Some((_, name)) = names
        .iter()
        .find(|(bit, _)| *bit <= last && bounding & (1u64 << bit) == 0)
    else {
        return;
    };
    let mut b = Bundle::new("capmissing");
    b.edit(|c| {
        let caps = json!(["CAP_KILL", name]);
        c["process"]["capabilities"] = json!({"bounding": caps, "effective": caps,
            "permitted": caps, "inheritable": caps});
    });
    let err = create_fails(&b);
    assert!(
        err.contains(&format!(
            "process.capabilities: {name} not in brig's own permitted set"
        )),
        "{err}"
    );
}

#[test]
fn a_json_array_is_not_a_config() {
    let b = Bundle::new("jsonarray");
    std::fs::write(b.dir.join("config.json"), "[]").unwrap();
    let err = create_fails(&b);
    assert!(err.contains("not a JSON object"), "{err}");
    assert!(!err.contains("semantic version"), "{err}");
}

#[test]
fn an_empty_root_path_is_named() {
    let mut b = Bundle::new("emptyroot");
    b.edit(|c| c["root"]["path"] = json!(""));
    let err = create_fails(&b);
    assert!(err.contains("root.path: must not be empty"), "{err}");
}

#[test]
fn a_hostname_longer_than_the_kernel_takes_is_named() {
    let mut b = Bundle::new("longhost");
    b.edit(|c| c["hostname"] = json!("h".repeat(100_000)));
    let err = create_fails(&b);
    assert!(
        err.contains("hostname: is 100000 bytes long: the kernel allows at most 64"),
        "{err}"
    );
    let mut b = Bundle::new("longdomain");
    b.edit(|c| c["domainname"] = json!("d".repeat(65)));
    let err = create_fails(&b);
    assert!(err.contains("domainname: is 65 bytes long"), "{err}");
}

#[test]
fn a_console_size_past_u16_is_refused() {
    let mut b = Bundle::new("consolesize");
    b.edit(|c| c["process"]["consoleSize"] = json!({"height": 65536 + 24, "width": 80}));
    let err = create_fails(&b);
    assert!(err.contains("process.consoleSize.height: 65560"), "{err}");
}

#[test]
fn a_nul_byte_is_escaped_in_the_error() {
    let mut b = Bundle::new("nulbyte");
    b.edit(|c| c["process"]["args"] = json!(["/bin/a\u{0}b"]));
    let id = unique_id("nulbyte");
    let out = b.brig(&["run", &id]);
    let _ = b.brig(&["delete", "--force", &id]);
    assert!(!out.status.success());
    assert!(!out.stderr.contains(&0u8), "raw NUL in {:?}", stderr(&out));
    assert!(stderr(&out).contains("a\\u{0}b"), "{}", stderr(&out));
}

#[test]
fn events_with_a_huge_interval() {
    let b = Bundle::with_script("eventsinterval", "sleep 30");
    let id = unique_id("eventsinterval");
    ok(&b.brig(&["run", "-d", &id]));
    // 10^17 s in milliseconds overflows u64: once a wrapped, arbitrary interval.
    let mut overflow = b.command(&["events", "--interval", "99999999999999999s", &id]);
    overflow
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = overflow.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let exited = child.try_wait().unwrap();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    if exited.is_none() {
        let _ = b.brig(&["delete", "--force", &id]);
    }
    assert!(
        exited.is_some_and(|s| !s.success()) && stderr(&out).contains("--interval"),
        "{exited:?} {}",
        stderr(&out)
    );
    // 2^32 steps of 100 ms: the step count once truncated to 0 (a division by zero).
    let mut events = b.command(&["events", "--interval", "429496729600ms", &id]);
    events
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = events.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let alive = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    let _ = b.brig(&["delete", "--force", &id]);
    assert!(alive, "events died: {:?}", child.try_wait());
}

#[test]
fn an_unknown_mount_option_is_named() {
    let mut b = Bundle::new("badmountopt");
    let index = b.config["mounts"].as_array().unwrap().len();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "bogusopt"]}),
        )
    });
    let err = create_fails(&b);
    assert!(
        err.contains(&format!(
            "mount \"tmpfs\" on \"/x\" (mounts[{index}].options \"bogusopt\"): invalid argument"
        )),
        "{err}"
    );
}
