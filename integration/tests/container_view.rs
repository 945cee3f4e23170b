//! What the process inside sees: pid 1, hostname, network, read-only root, user, env, cwd,
//! capabilities, devices, masked paths and namespaces joined by path.

use integration::*;
use serde_json::json;

fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {status}"))
        .trim()
        .to_string()
}

#[test]
fn sees_pid_1_own_hostname_and_only_loopback() {
    let b = Bundle::with_script(
        "view",
        "echo pid=$$; hostname; ls /sys/class/net; cat /proc/1/cmdline | tr '\\0' ' '",
    );
    let out = ok(&b.run(&unique_id("view")));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pid=1");
    assert_eq!(lines[1], "brig");
    assert_eq!(lines[2], "lo");
    assert_eq!(lines.len(), 4, "{out}");
}

#[test]
fn read_only_root_refuses_writes_and_tmpfs_accepts_them() {
    let b = Bundle::with_script(
        "readonly",
        "touch /newfile 2>&1; echo rc=$?; touch /dev/shm/x && echo shm-ok; grep ' / ' /proc/self/mountinfo",
    );
    let out = ok(&b.run(&unique_id("readonly")));
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("rc=1"), "{out}");
    assert!(out.contains("shm-ok"), "{out}");
    let root_line = out
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap();
    assert!(
        root_line
            .split(' ')
            .nth(5)
            .unwrap()
            .split(',')
            .any(|o| o == "ro"),
        "{root_line}"
    );
    assert!(!b.rootfs().join("newfile").exists());
}

#[test]
fn writable_root_when_not_readonly() {
    let mut b = Bundle::with_script("rwroot", "echo hi > /written && cat /written");
    b.edit(|c| c["root"]["readonly"] = json!(false));
    assert_eq!(ok(&b.run(&unique_id("rwroot"))), "hi\n");
    assert!(b.rootfs().join("written").exists());
}

#[test]
fn user_groups_env_and_cwd_are_applied() {
    let mut b = Bundle::with_script(
        "user",
        "cat /proc/self/status; echo cwd=$(pwd); echo FOO=$FOO; umask",
    );
    b.edit(|c| {
        c["process"]["user"] =
            json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 100], "umask": 63});
        c["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
        c["process"]["cwd"] = json!("/work/dir");
    });
    let out = ok(&b.run(&unique_id("user")));
    assert_eq!(status_field(&out, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&out, "Gid"), "1001\t1001\t1001\t1001");
    assert_eq!(status_field(&out, "Groups"), "5 100");
    assert!(out.contains("cwd=/work/dir\n"), "{out}");
    assert!(out.contains("FOO=bar baz\n"), "{out}");
    assert!(out.trim_end().ends_with("0077"), "{out}");
}

#[test]
fn capabilities_and_no_new_privs() {
    let b = Bundle::with_script("caps", "cat /proc/self/status");
    let out = ok(&b.run(&unique_id("caps")));
    // CAP_AUDIT_WRITE (29), CAP_KILL (5), CAP_NET_BIND_SERVICE (10): brig spec's defaults.
    let want = format!("{:016x}", (1u64 << 29) | (1 << 5) | (1 << 10));
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(status_field(&out, set), want, "{set}");
    }
    assert_eq!(status_field(&out, "CapInh"), "0000000000000000");
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000000");
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");

    let mut b = Bundle::with_script("caps2", "cat /proc/self/status");
    b.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        let sys_time = json!(["CAP_SYS_TIME", "CAP_CHOWN"]);
        c["process"]["capabilities"] = json!({
            "bounding": sys_time, "effective": sys_time, "permitted": sys_time,
            "inheritable": sys_time, "ambient": ["CAP_SYS_TIME"]
        });
    });
    let out = ok(&b.run(&unique_id("caps2")));
    let both = format!("{:016x}", (1u64 << 25) | 1);
    let ambient = format!("{:016x}", 1u64 << 25);
    // A non-root exec of a binary without file capabilities keeps only the ambient set.
    assert_eq!(status_field(&out, "CapBnd"), both);
    assert_eq!(status_field(&out, "CapInh"), both);
    assert_eq!(status_field(&out, "CapAmb"), ambient);
    assert_eq!(status_field(&out, "CapEff"), ambient);
    assert_eq!(status_field(&out, "CapPrm"), ambient);
    assert_eq!(status_field(&out, "NoNewPrivs"), "0");
}

#[test]
fn rlimits_are_applied() {
    let mut b = Bundle::with_script("rlimit", "cat /proc/self/limits");
    b.edit(|c| {
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
        ])
    });
    let out = ok(&b.run(&unique_id("rlimit")));
    let line = out
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&fields[3..5], &["512", "768"], "{line}");
}

#[test]
fn default_devices_masked_and_readonly_paths() {
    let b = Bundle::with_script(
        "dev",
        "ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; \
         readlink /dev/fd; readlink /dev/ptmx; echo x > /dev/null && echo null-ok; \
         cat /proc/kcore 2>/dev/null | wc -c; \
         echo 1 > /proc/sys/kernel/domainname 2>&1 || echo sys-ro; \
         grep -c . /proc/timer_list; true",
    );
    let out = ok(&b.run(&unique_id("dev")));
    for (name, dev) in [
        ("null", "1,   3"),
        ("zero", "1,   5"),
        ("full", "1,   7"),
        ("urandom", "1,   9"),
        ("tty", "5,   0"),
    ] {
        let line = out
            .lines()
            .find(|l| l.ends_with(&format!("/dev/{name}")))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(line.starts_with("crw-rw-rw-"), "{line}");
        assert!(line.contains(dev), "{line}");
    }
    assert!(out.contains("/proc/self/fd\npts/ptmx\n"), "{out}");
    assert!(out.contains("null-ok"), "{out}");
    assert!(out.contains("\n0\n"), "kcore should be empty: {out}");
    assert!(out.contains("sys-ro"), "{out}");
    assert!(
        out.trim_end().ends_with('0'),
        "timer_list should be masked: {out}"
    );
}

#[test]
fn config_devices_are_created() {
    let mut b = Bundle::with_script("cfgdev", "ls -ln /dev/mydev /dev/sub/fifo");
    b.edit(|c| {
        c["linux"]["devices"] = json!([
            {"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 7, "gid": 8},
            {"path": "/dev/sub/fifo", "type": "p", "major": 0, "minor": 0}
        ])
    });
    let out = ok(&b.run(&unique_id("cfgdev")));
    let dev = out.lines().find(|l| l.ends_with("/dev/mydev")).unwrap();
    assert!(dev.starts_with("crw-r-----"), "{dev}");
    let fields: Vec<&str> = dev.split_whitespace().collect();
    assert_eq!(&fields[2..6], &["7", "8", "1,", "3"], "{dev}");
    assert!(
        out.lines()
            .any(|l| l.starts_with('p') && l.ends_with("/dev/sub/fifo")),
        "{out}"
    );
}

#[test]
fn bind_mounts_honour_read_only() {
    let host_dir = std::env::temp_dir().join(unique_id("hostdir"));
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("file"), "from host\n").unwrap();
    let mut b = Bundle::with_script(
        "bind",
        "cat /data/file; touch /data/new 2>&1; echo hi > /rw/new && echo rw-ok",
    );
    let rw_dir = b.dir.join("rwdir");
    std::fs::create_dir_all(&rw_dir).unwrap();
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/data", "type": "bind", "source": host_dir, "options": ["rbind", "ro"]}));
        mounts.push(json!({"destination": "/rw", "type": "none", "source": "rwdir", "options": ["bind"]}));
    });
    let out = ok(&b.run(&unique_id("bind")));
    std::fs::remove_dir_all(&host_dir).unwrap();
    assert!(out.contains("from host"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("rw-ok"), "{out}");
    assert_eq!(std::fs::read_to_string(rw_dir.join("new")).unwrap(), "hi\n");
    assert!(b.leaked_mounts().is_empty(), "{:?}", b.leaked_mounts());
}

#[test]
fn a_symlink_in_the_rootfs_cannot_send_a_mount_to_the_host() {
    let marker = std::env::temp_dir().join(unique_id("escape-target"));
    std::fs::create_dir_all(&marker).unwrap();
    let mut b = Bundle::with_script("escape", "ls /escape/ | wc -l");
    // /escape in the rootfs points at a host directory: the mount must land inside the rootfs.
    std::os::unix::fs::symlink(&marker, b.rootfs().join("escape")).unwrap();
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/escape", "type": "tmpfs", "source": "tmpfs"}));
    });
    ok(&b.run(&unique_id("escape")));
    assert!(mounts_under(&marker).is_empty());
    assert!(b.rootfs().join(marker.strip_prefix("/").unwrap()).is_dir());
    std::fs::remove_dir_all(&marker).unwrap();
}

#[test]
fn joins_namespaces_by_path() {
    let mut host = Bundle::new("nshost");
    host.set_args(&["sleep", "1000"]);
    host.edit(|c| c["hostname"] = json!("alpha"));
    let host_id = unique_id("nshost");
    ok(&host.brig(&["run", "-d", &host_id]));
    let pid = host.state(&host_id).unwrap()["pid"].as_i64().unwrap();

    let mut guest = Bundle::with_script("nsguest", "hostname; readlink /proc/self/ns/net");
    guest.edit(|c| {
        c["hostname"] = serde_json::Value::Null;
        c["linux"]["namespaces"] = json!([
            {"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
            {"type": "uts", "path": format!("/proc/{pid}/ns/uts")},
            {"type": "network", "path": format!("/proc/{pid}/ns/net")}
        ]);
    });
    let out = ok(&guest.run(&unique_id("nsguest")));
    let host_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(out, format!("alpha\n{}\n", host_net.display()));
}

#[test]
fn sets_the_hostname_in_a_uts_namespace_joined_by_path() {
    // runc's rule: a uts entry, new or joined, may be renamed; only none at all is refused.
    let mut host = Bundle::new("utshost");
    host.set_args(&["sleep", "1000"]);
    host.edit(|c| c["hostname"] = json!("alpha"));
    let host_id = unique_id("utshost");
    ok(&host.brig(&["run", "-d", &host_id]));
    let pid = host.state(&host_id).unwrap()["pid"].as_i64().unwrap();

    let mut guest = Bundle::with_script("utsguest", "hostname; cat /proc/sys/kernel/domainname");
    guest.edit(|c| {
        c["hostname"] = json!("beta");
        c["domainname"] = json!("example.org");
        c["linux"]["namespaces"] = json!([
            {"type": "pid"}, {"type": "mount"},
            {"type": "uts", "path": format!("/proc/{pid}/ns/uts")}
        ]);
    });
    assert_eq!(
        ok(&guest.run(&unique_id("utsguest"))),
        "beta\nexample.org\n"
    );
    // It is the joined namespace that was renamed, not a new one.
    assert_eq!(ok(&host.brig(&["exec", &host_id, "hostname"])), "beta\n");
}

#[test]
fn user_namespace_with_id_maps() {
    let mut b = Bundle::with_script(
        "userns",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /bin/busybox; echo x > /dev/null && echo null-ok",
    );
    b.add_user_namespace(100000, 200000);
    let out = ok(&b.run(&unique_id("userns")));
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "100000", "65536"], "{out}");
    assert_eq!(lines[1], ["0", "200000", "65536"], "{out}");
    assert_eq!(lines[2], ["0"], "{out}");
    // Host root's files are unmapped inside: the overflow uid.
    assert_eq!(lines[3], ["65534"], "{out}");
    assert_eq!(lines[4], ["null-ok"], "{out}");
}

#[test]
fn idmapped_bind_mounts_show_files_under_the_mapped_ids() {
    let mut b = Bundle::with_script(
        "idmap",
        "stat -c '%u:%g' /idm/root-file /idm/sub/five-file /ridm/sub/five-file",
    );
    let shared = b.dir.join("shared");
    std::fs::create_dir_all(shared.join("sub")).unwrap();
    std::fs::write(shared.join("root-file"), "").unwrap();
    std::fs::write(shared.join("sub/five-file"), "").unwrap();
    std::os::unix::fs::chown(shared.join("sub/five-file"), Some(5), Some(5)).unwrap();
    let map = json!([{"containerID": 0, "hostID": 1000, "size": 10}]);
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(
            json!({"destination": "/idm", "type": "bind", "source": "shared",
            "options": ["rbind", "idmap"], "uidMappings": map, "gidMappings": map}),
        );
        mounts.push(
            json!({"destination": "/ridm", "type": "bind", "source": "shared",
            "options": ["rbind", "ridmap", "ro"], "uidMappings": map, "gidMappings": map}),
        );
    });
    // On-disk ids 0 and 5 are ids 1000 and 1005 through the mount (0 → 1000, size 10).
    assert_eq!(
        ok(&b.run(&unique_id("idmap"))),
        "1000:1000\n1005:1005\n1005:1005\n"
    );
    // The host's directory is untouched.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(shared.join("sub/five-file"))
            .unwrap()
            .uid(),
        5
    );
}

#[test]
fn an_idmap_mount_without_mappings_borrows_the_user_namespaces() {
    // Files owned by host root appear as the container's root, not as the overflow id.
    let mut b = Bundle::with_script("idmapns", "stat -c %u /bin/busybox /idm/file; id -u");
    let shared = b.dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("file"), "").unwrap();
    // Root in the container cannot make directories in a rootfs that host root owns.
    std::fs::create_dir(b.rootfs().join("idm")).unwrap();
    b.add_user_namespace(100000, 100000);
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/idm",
            "type": "bind", "source": "shared", "options": ["bind", "idmap"]}));
    });
    assert_eq!(ok(&b.run(&unique_id("idmapns"))), "65534\n0\n0\n");
}

#[test]
fn joins_a_user_namespace_by_path_and_makes_its_namespaces_inside_it() {
    let maps = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let mut owner = Bundle::new("usernsowner");
    owner.set_args(&["sleep", "1000"]);
    owner.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = maps.clone();
        c["linux"]["gidMappings"] = maps.clone();
    });
    let owner_id = unique_id("usernsowner");
    ok(&owner.brig(&["run", "-d", &owner_id]));
    let pid = owner.state(&owner_id).unwrap()["pid"].as_i64().unwrap();
    let userns = format!("/proc/{pid}/ns/user");

    // A new mount, pid and uts namespace inside the joined user namespace: mounting works
    // (proc, tmpfs) and the hostname can be set, as root of that namespace.
    let mut guest = Bundle::with_script(
        "usernsguest",
        "cat /proc/self/uid_map; id -u; readlink /proc/self/ns/user; hostname; \
         mount -t tmpfs t /tmp && echo mounted",
    );
    guest.edit(|c| {
        c["hostname"] = json!("inside");
        c["linux"]["namespaces"] = json!([
            {"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"},
            {"type": "user", "path": userns}
        ]);
        c["linux"]["uidMappings"] = maps.clone();
        c["linux"]["gidMappings"] = maps.clone();
        let caps = json!(["CAP_SYS_ADMIN"]);
        c["process"]["capabilities"] =
            json!({"bounding": caps, "effective": caps, "permitted": caps});
    });
    let out = ok(&guest.run(&unique_id("usernsguest")));
    let lines: Vec<&str> = out.lines().collect();
    let owner_ns = std::fs::read_link(&userns).unwrap();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"],
        "{out}"
    );
    assert_eq!(lines[1], "0", "{out}");
    assert_eq!(lines[2], owner_ns.display().to_string(), "{out}");
    assert_eq!(&lines[3..], ["inside", "mounted"], "{out}");

    // Mappings that are not the namespace's are refused.
    guest.edit(|c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}])
    });
    let err = fails(&guest.run(&unique_id("usernsbad")));
    assert!(
        err.contains("linux.uidMappings: do not match the joined user namespace"),
        "{err}"
    );
    assert!(guest.containers().is_empty());
}

#[test]
fn ambient_capabilities_that_are_not_inheritable_are_skipped_like_runc() {
    // `runc spec` lists ambient capabilities without inheritable ones: the kernel cannot raise
    // them, runc silently runs the container, and so does brig: nothing of brig's may appear
    // on the container's stderr (which, in a foreground run, is brig's).
    let mut b = Bundle::new("ambient");
    b.set_args(&["grep", "-E", "CapAmb|CapEff", "/proc/self/status"]);
    b.edit(|c| {
        let caps = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        c["process"]["capabilities"] = json!({"bounding": caps, "effective": caps,
            "permitted": caps, "ambient": caps});
    });
    let out = b.run(&unique_id("ambient"));
    assert_eq!(stderr(&out), "");
    let out = ok(&out);
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000000", "{out}");
    assert_eq!(status_field(&out, "CapEff"), "0000000000000420", "{out}");
    // The same for a process exec'd into it.
    b.set_args(&["sleep", "1000"]);
    let id = unique_id("ambient");
    ok(&b.brig(&["run", "-d", &id]));
    let out = b.brig(&["exec", &id, "true"]);
    assert_eq!(stderr(&out), "");
    ok(&out);
}

#[test]
fn domainname_needs_and_gets_a_uts_namespace() {
    let mut b = Bundle::with_script("domain", "cat /proc/sys/kernel/domainname");
    b.edit(|c| c["domainname"] = json!("example.org"));
    assert_eq!(ok(&b.run(&unique_id("domain"))), "example.org\n");
}

#[test]
fn the_program_starts_with_no_blocked_or_ignored_signals_and_only_stdio_open() {
    let b = Bundle::with_script("sigs", "cat /proc/self/status; ls /proc/self/fd");
    let out = ok(&b.run(&unique_id("sigs")));
    assert_eq!(status_field(&out, "SigBlk"), "0000000000000000");
    assert_eq!(status_field(&out, "SigIgn"), "0000000000000000");
    // `ls` itself opens one directory fd (3).
    let fds: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("voluntary_ctxt_switches"))
        .skip(2)
        .collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{out}");
}

#[test]
fn recursive_read_only_reaches_submounts() {
    let host_dir = std::env::temp_dir().join(unique_id("rro"));
    std::fs::create_dir_all(host_dir.join("sub")).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(host_dir.join("sub"))
        .status()
        .unwrap();
    assert!(status.success());
    let mut b = Bundle::with_script(
        "rro",
        "touch /data/sub/x 2>&1; grep ' /data' /proc/self/mountinfo | cut -d' ' -f5,6",
    );
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/data", "type": "bind", "source": host_dir, "options": ["rbind", "rro"]}),
        )
    });
    let out = b.run(&unique_id("rro"));
    let _ = std::process::Command::new("umount")
        .arg("-l")
        .arg(host_dir.join("sub"))
        .status();
    std::fs::remove_dir_all(&host_dir).unwrap();
    let out = ok(&out);
    assert!(out.contains("Read-only file system"), "{out}");
    for line in out.lines().filter(|l| l.starts_with("/data")) {
        assert!(line.split(' ').nth(1).unwrap().starts_with("ro"), "{line}");
    }
    assert_eq!(
        out.lines().filter(|l| l.starts_with("/data")).count(),
        2,
        "{out}"
    );
}

#[test]
fn slave_propagation_shows_host_mounts_made_after_start() {
    let mut b = Bundle::new("slave");
    b.set_args(&["sleep", "1000"]);
    // A shared mount of our own for the bundle, so the test does not depend on the host's /.
    let bundle = b.dir.clone();
    for args in [
        vec!["--bind", bundle.to_str().unwrap(), bundle.to_str().unwrap()],
        vec!["--make-shared", bundle.to_str().unwrap()],
    ] {
        assert!(std::process::Command::new("mount")
            .args(&args)
            .status()
            .unwrap()
            .success());
    }
    std::fs::create_dir_all(b.rootfs().join("mnt/late")).unwrap();
    for (propagation, expect_seen) in [("slave", true), ("private", false)] {
        b.edit(|c| c["linux"]["rootfsPropagation"] = json!(propagation));
        let id = unique_id("slave");
        ok(&b.brig(&["run", "-d", &id]));
        let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();
        let late = b.rootfs().join("mnt/late");
        assert!(std::process::Command::new("mount")
            .args(["-t", "tmpfs", "late"])
            .arg(&late)
            .status()
            .unwrap()
            .success());
        let inside = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&late)
            .status();
        assert_eq!(
            inside
                .lines()
                .any(|l| l.split(' ').nth(4) == Some("/mnt/late")),
            expect_seen,
            "{propagation}: {inside}"
        );
        ok(&b.brig(&["delete", "--force", &id]));
    }
}

#[test]
fn tmpcopyup_fills_the_tmpfs_with_what_it_covers() {
    let mut b = Bundle::with_script(
        "copyup",
        "grep -c root /etc/passwd; echo new > /etc/added && cat /etc/added; \
         grep ' /etc ' /proc/self/mountinfo | cut -d' ' -f9; stat -c '%a %u' /etc/passwd",
    );
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "mode=755"]}),
        )
    });
    std::fs::set_permissions(
        b.rootfs().join("etc/passwd"),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    let out = ok(&b.run(&unique_id("copyup")));
    assert_eq!(out, "1\nnew\ntmpfs\n640 0\n");
    assert!(!b.rootfs().join("etc/added").exists());
}
