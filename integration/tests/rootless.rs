//! brig run by an unprivileged user (issue 17). Each test makes its own user (`useradd`, with
//! the subordinate ranges useradd gives it), hands it a busybox bundle and a copy of brig, and
//! runs brig as that user through setpriv; a guard deletes the user's containers, the user,
//! its ranges and its files, even when the test fails.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use integration::rootless_user::*;
use integration::*;
use serde_json::{json, Value};

#[test]
fn run_sees_root_and_files_belong_to_the_user() {
    let mut u = RootlessUser::new("rl-run");
    u.set_args(&[
        "sh",
        "-c",
        "grep -E '^(Uid|Gid):' /proc/self/status; touch /made-in-container; id -u",
    ]);
    let id = unique_id("rl-run");
    let out = u.brig(&["run", &id]);
    let text = ok(&out);
    assert!(text.contains("Uid:\t0\t0\t0\t0"), "{text}");
    assert!(text.contains("Gid:\t0\t0\t0\t0"), "{text}");
    let made = fs::metadata(u.dir().join("rootfs/made-in-container")).unwrap();
    assert_eq!((made.uid(), made.gid()), (u.uid, u.gid));
    // The default root of an unprivileged user is $XDG_RUNTIME_DIR/brig.
    assert!(u.state_root().is_dir());
    u.assert_nothing_left(&id);
}

#[test]
fn create_start_exec_kill_delete() {
    let mut u = RootlessUser::new("rl-life");
    u.set_args(&["sleep", "1000"]);
    let id = unique_id("rl-life");
    ok(&u.brig(&["create", &id]));
    assert_eq!(u.status(&id).as_deref(), Some("created"));
    assert!(u.state_root().join(&id).join("state.json").exists());
    ok(&u.brig(&["start", &id]));
    assert_eq!(u.status(&id).as_deref(), Some("running"));
    let out = ok(&u.brig(&[
        "exec",
        &id,
        "sh",
        "-c",
        "id -u; grep ^Uid /proc/self/status",
    ]));
    assert!(out.starts_with("0\n"), "{out}");
    let list = ok(&u.brig(&["list"]));
    assert!(list.contains(&id), "{list}");
    ok(&u.brig(&["kill", &id, "KILL"]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while u.status(&id).as_deref() != Some("stopped") {
        assert!(std::time::Instant::now() < deadline, "never stopped");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    ok(&u.brig(&["delete", &id]));
    u.assert_nothing_left(&id);
}

#[test]
fn subordinate_ranges_through_newuidmap() {
    let mut u = RootlessUser::new("rl-sub");
    let (uid, gid, subuid, subgid) = (u.uid, u.gid, u.subuid, u.subgid);
    u.edit(|c| {
        c["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": uid, "size": 1},
            {"containerID": 1, "hostID": subuid, "size": 65536}
        ]);
        c["linux"]["gidMappings"] = json!([
            {"containerID": 0, "hostID": gid, "size": 1},
            {"containerID": 1, "hostID": subgid, "size": 65536}
        ]);
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [1001]});
    });
    u.set_args(&["sh", "-c", "touch /tmp/by-1000; id"]);
    let id = unique_id("rl-sub");
    let out = ok(&u.brig(&["run", &id]));
    assert!(out.contains("uid=1000") && out.contains("1001"), "{out}");
    let made = fs::metadata(u.dir().join("rootfs/tmp/by-1000")).unwrap();
    // Container id 1000 is the 1000th id of the range that starts at container id 1.
    assert_eq!(made.uid(), subuid + 999);
    assert_eq!(made.gid(), subgid + 999);
    u.assert_nothing_left(&id);

    // Root of the container a subordinate id, the caller not mapped at all.
    u.edit(|c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": subuid, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": subgid, "size": 65536}]);
        c["process"]["user"] = json!({"uid": 0, "gid": 0});
    });
    u.set_args(&["sh", "-c", "id -u; touch /tmp/by-root"]);
    let id = unique_id("rl-sub");
    let out = ok(&u.brig(&["run", &id]));
    assert_eq!(out, "0\n");
    let made = fs::metadata(u.dir().join("rootfs/tmp/by-root")).unwrap();
    assert_eq!((made.uid(), made.gid()), (subuid, subgid));
    u.assert_nothing_left(&id);
}

type Edit = Box<dyn Fn(&mut Value)>;

/// Each config a rootless container cannot have is refused naming its field, and leaves
/// nothing behind.
#[test]
fn refused_configs_name_the_field() {
    let mut u = RootlessUser::new("rl-bad");
    u.set_args(&["true"]);
    let base = u.bundle.config.clone();
    let uid = u.uid;
    // A character device of root's that others may neither read nor write.
    let (device, major, minor) = [
        "/dev/net/tun",
        "/dev/fuse",
        "/dev/console",
        "/dev/vhost-net",
    ]
    .into_iter()
    .find_map(|path| {
        let meta = fs::metadata(path).ok()?;
        (meta.uid() == 0 && meta.mode() & 0o006 == 0 && meta.mode() & 0o170000 == 0o020000)
            .then(|| (path, libc::major(meta.rdev()), libc::minor(meta.rdev())))
    })
    .expect("no root-only character device on this host");
    let cases: Vec<(&str, Edit, Vec<&str>)> = vec![
        (
            "another user's uid",
            Box::new(move |c: &mut Value| {
                c["linux"]["uidMappings"] =
                    json!([{"containerID": 0, "hostID": uid + 1, "size": 1}]);
            }),
            vec!["linux.uidMappings", "not the caller's", "/etc/subuid"],
        ),
        (
            "root's gid",
            Box::new(|c: &mut Value| {
                c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
            }),
            vec!["linux.gidMappings", "not the caller's"],
        ),
        (
            "a host-wide sysctl",
            Box::new(|c: &mut Value| {
                c["linux"]["sysctl"] = json!({"kernel.printk": "4 4 1 7"});
            }),
            vec!["linux.sysctl.kernel.printk", "not namespaced"],
        ),
        (
            "a device the user cannot open",
            Box::new(move |c: &mut Value| {
                c["linux"]["devices"] = json!([
                    {"path": device, "type": "c", "major": major, "minor": minor}
                ]);
            }),
            vec!["linux.devices[0]", device, "cannot open"],
        ),
        (
            "limits without a delegated cgroup",
            Box::new(|c: &mut Value| {
                c["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
            }),
            vec!["linux.resources.memory", "no delegated cgroup"],
        ),
        (
            "a cgroup the user cannot create",
            Box::new(|c: &mut Value| {
                c["linux"]["cgroupsPath"] = json!("/brig-rootless-not-mine");
            }),
            vec!["linux.cgroupsPath", "/brig-rootless-not-mine", "delegated"],
        ),
        (
            "no user namespace",
            Box::new(|c: &mut Value| {
                let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
                ns.retain(|n| n["type"] != "user");
            }),
            vec!["linux.namespaces", "user namespace"],
        ),
        (
            "additional groups with setgroups denied",
            Box::new(|c: &mut Value| {
                c["process"]["user"]["additionalGids"] = json!([0]);
            }),
            vec!["process.user.additionalGids", "setgroups"],
        ),
    ];
    for (what, edit, words) in cases {
        u.bundle.config = base.clone();
        u.edit(|c| edit(c));
        let id = unique_id("rl-bad");
        let err = fails(&u.brig(&["run", &id]));
        for word in words {
            assert!(err.contains(word), "{what}: {word:?} not in {err}");
        }
        u.assert_nothing_left(&id);
    }
}

#[test]
fn no_xdg_runtime_dir_and_no_root_is_an_error() {
    let u = RootlessUser::new("rl-xdg");
    let id = unique_id("rl-xdg");
    let out = output_via_files(
        u.command(&["run", &id])
            .env_remove("XDG_RUNTIME_DIR")
            .stdin(Stdio::null()),
        u.dir(),
    );
    let err = fails(&out);
    assert!(
        err.contains("XDG_RUNTIME_DIR") && err.contains("--root"),
        "{err}"
    );
    // With --root it runs.
    let root = u.dir().join("own-root");
    let out = output_via_files(
        u.command(&["--root", root.to_str().unwrap(), "state", "none"])
            .env_remove("XDG_RUNTIME_DIR")
            .stdin(Stdio::null()),
        u.dir(),
    );
    assert!(fails(&out).contains("none"));
}

/// A cgroup v2 directory delegated to the user as systemd's `Delegate=yes` does it (the
/// directory and its cgroup.procs, cgroup.threads and cgroup.subtree_control chowned), with
/// a leaf for the user's brig, below the test's own cgroup; removed by the guard.
struct Delegated {
    dir: PathBuf,
}

impl Delegated {
    /// `None` where there is nothing to delegate: not a pure v2 host, or no memory controller
    /// can be enabled below our cgroup nor beside it. Below it first; when our cgroup has
    /// processes of its own (CI's VM runs the tests in one, as a systemd service is), no
    /// controller can be enabled in it, so the delegated cgroup is made beside it, as systemd
    /// makes a delegated unit beside the service that asked.
    fn new(u: &RootlessUser) -> Option<Delegated> {
        let root = Path::new("/sys/fs/cgroup");
        if !root.join("cgroup.controllers").exists() {
            return None;
        }
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        let own = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))?
            .trim()
            .to_string();
        let own = root.join(own.trim_start_matches('/'));
        let beside = own
            .parent()
            .filter(|p| p.starts_with(root))
            .map(Path::to_path_buf);
        let delegated = [Some(own), beside]
            .into_iter()
            .flatten()
            .find_map(|parent| {
                let _ = fs::write(parent.join("cgroup.subtree_control"), "+memory +pids");
                let delegated = Delegated {
                    dir: parent.join(format!("brig-rl-{}", unique_id("deleg"))),
                };
                fs::create_dir(&delegated.dir).ok()?;
                let controllers =
                    fs::read_to_string(delegated.dir.join("cgroup.controllers")).ok()?;
                // A directory without the controllers is removed by `delegated`'s Drop.
                controllers
                    .split_whitespace()
                    .any(|c| c == "memory")
                    .then_some(delegated)
            })?;
        fs::create_dir(delegated.dir.join("leaf")).ok()?;
        for path in [
            delegated.dir.clone(),
            delegated.dir.join("cgroup.procs"),
            delegated.dir.join("cgroup.threads"),
            delegated.dir.join("cgroup.subtree_control"),
            delegated.dir.join("leaf"),
            delegated.dir.join("leaf/cgroup.procs"),
        ] {
            std::os::unix::fs::chown(&path, Some(u.uid), Some(u.gid)).ok()?;
        }
        Some(delegated)
    }

    /// The cgroup path (as `linux.cgroupsPath`, absolute) of `name` in the delegated cgroup.
    fn cgroups_path(&self, name: &str) -> String {
        let rel = self.dir.strip_prefix("/sys/fs/cgroup").unwrap();
        format!("/{}/{name}", rel.display())
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        // Children first (the container's, if delete left it; the leaf), then ours.
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for e in entries.flatten().filter(|e| e.path().is_dir()) {
                let _ = fs::write(e.path().join("cgroup.kill"), "1");
                for _ in 0..50 {
                    if fs::remove_dir(e.path()).is_ok() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

/// On a cgroup v2 host with a cgroup delegated to the user, limits apply (issue 17). brig runs
/// in the delegated cgroup's leaf, as a user's processes run under user@UID.service.
#[test]
fn limits_apply_in_a_delegated_cgroup() {
    let mut u = RootlessUser::new("rl-deleg");
    let Some(delegated) = Delegated::new(&u) else {
        eprintln!("skipped: no cgroup v2 hierarchy with a memory controller to delegate here");
        return;
    };
    let id = unique_id("rl-deleg");
    let path = delegated.cgroups_path(&id);
    u.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 42}});
    });
    u.set_args(&["sh", "-c", "cat /proc/self/cgroup; sleep 1000"]);
    // brig itself in the delegated leaf: moving init into the container's cgroup needs the
    // common parent's cgroup.procs, which is the user's.
    let leaf = delegated.dir.join("leaf/cgroup.procs");
    let cmd = u.command(&["create", &id]);
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut inner = Command::new("sh");
    inner
        .arg("-c")
        .arg(format!(
            "echo $$ > {} && exec \"$0\" \"$@\"",
            leaf.display()
        ))
        .arg(program)
        .args(args)
        .current_dir(u.dir())
        .env_clear()
        .envs(
            cmd.get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        );
    ok(&output_via_files(inner.stdin(Stdio::null()), u.dir()));
    let ctr = delegated.dir.join(&id);
    let read = |f: &str| fs::read_to_string(ctr.join(f)).unwrap().trim().to_string();
    assert_eq!(read("memory.max"), "67108864");
    assert_eq!(read("pids.max"), "42");
    let state = ok(&u.brig(&["state", &id]));
    let pid = serde_json::from_str::<Value>(&state).unwrap()["pid"]
        .as_i64()
        .unwrap();
    let procs = read("cgroup.procs");
    assert!(procs.lines().any(|p| p == pid.to_string()), "{procs}");
    ok(&u.brig(&["delete", "--force", &id]));
    assert!(!ctr.exists(), "the container's cgroup is left");
    u.assert_nothing_left(&id);
}

/// A directory on the host made by a test (a mount point or not): unmounted and removed.
struct HostDir(PathBuf);

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = fs::remove_dir(self.0.join("inner"));
        let _ = fs::remove_dir(&self.0);
    }
}

/// What needs host privileges is done as rootless runc does: sysfs asked for as `sysfs`
/// without a network namespace is bound from the host, and a read-only bind of a host mount
/// with locked flags (nosuid, nodev, noexec, noatime) keeps them on its remount.
#[test]
fn sysfs_without_netns_and_locked_flags() {
    let mut u = RootlessUser::new("rl-mnt");
    let locked = HostDir(std::env::temp_dir().join(unique_id("brig-rl-locked")));
    fs::create_dir(&locked.0).unwrap();
    let status = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "nosuid,nodev,noexec,noatime,mode=755,size=1m",
            "tmpfs",
        ])
        .arg(&locked.0)
        .status()
        .unwrap();
    assert!(status.success());
    let source = locked.0.to_str().unwrap().to_string();
    u.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" {
                *m = json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                            "options": ["nosuid", "noexec", "nodev", "ro"]});
            }
        }
        mounts.push(
            json!({"destination": "/shm-ro", "type": "bind", "source": source,
                           "options": ["rbind", "ro"]}),
        );
    });
    u.set_args(&[
        "sh",
        "-c",
        "ls /sys/kernel >/dev/null && echo sys-ok; grep -E ' /(sys|shm-ro) ' /proc/self/mounts; \
         touch /shm-ro/x 2>/dev/null || echo shm-ro-refused",
    ]);
    let id = unique_id("rl-mnt");
    let out = ok(&u.brig(&["run", &id]));
    assert!(out.contains("sys-ok"), "{out}");
    assert!(out.contains("shm-ro-refused"), "{out}");
    let shm = out.lines().find(|l| l.contains(" /shm-ro ")).unwrap();
    for flag in ["ro", "nosuid", "nodev", "noexec", "noatime"] {
        assert!(
            shm.split(' ').nth(3).unwrap().split(',').any(|f| f == flag),
            "{shm}"
        );
    }
    u.assert_nothing_left(&id);
}

/// Failures after the container's setup began (a mount the user may not make, a program
/// that does not exist) leave no state directory and no mount behind.
#[test]
fn failures_during_setup_leave_nothing() {
    let mut u = RootlessUser::new("rl-fail");
    let base = u.bundle.config.clone();
    // A directory only root may enter (made here: /root is not that everywhere).
    let secret = HostDir(std::env::temp_dir().join(unique_id("brig-rl-secret")));
    fs::create_dir(&secret.0).unwrap();
    fs::set_permissions(&secret.0, fs::Permissions::from_mode(0o700)).unwrap();
    fs::create_dir(secret.0.join("inner")).unwrap();
    let secret_path = secret.0.join("inner").to_str().unwrap().to_string();
    let secret_word = secret_path.clone();
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "a bind source the user cannot read",
            Box::new(move |c: &mut Value| {
                c["mounts"].as_array_mut().unwrap().push(
                    json!({"destination": "/secret", "type": "bind", "source": secret_path,
                           "options": ["rbind"]}),
                );
            }),
            &secret_word,
        ),
        (
            "a program that does not exist",
            Box::new(|c: &mut Value| c["process"]["args"] = json!(["/no/such/program"])),
            "/no/such/program",
        ),
        (
            "a mount type the user may not mount",
            Box::new(|c: &mut Value| {
                c["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"destination": "/ext", "type": "ext4", "source": "/dev/null"}));
            }),
            "/ext",
        ),
    ];
    for (what, edit, word) in cases {
        u.bundle.config = base.clone();
        u.edit(|c| edit(c));
        let id = unique_id("rl-fail");
        let err = fails(&u.brig(&["run", &id]));
        assert!(err.contains(word), "{what}: {word:?} not in {err}");
        u.assert_nothing_left(&id);
        // create too: a refused create leaves nothing either.
        let id = unique_id("rl-fail");
        let out = u.brig(&["create", &id]);
        if out.status.success() {
            // (a missing program is found at start)
            let _ = u.brig(&["start", &id]);
            ok(&u.brig(&["delete", "--force", &id]));
        }
        u.assert_nothing_left(&id);
    }
}
