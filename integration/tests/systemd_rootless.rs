//! Rootless `--systemd-cgroup` (issues 16 and 17): brig run by a user made by the test asks
//! that user's own systemd manager for a delegated scope, as rootless runc does. The tests need
//! systemd as PID 1 and are `#[ignore]`d elsewhere; they run in the systemd VM:
//! `VM_TEST_ARGS="--include-ignored --test-threads=1" hack/vm-test.sh --systemd --test systemd_rootless`.
//! Each test starts the user's manager (`systemctl start user@UID.service`) and stops it,
//! with the user, in its guard.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use integration::rootless_user::*;
use integration::*;
use serde_json::json;

const NEEDS_SYSTEMD: &str = "needs systemd as PID 1 (hack/vm-test.sh --systemd)";

fn systemd() -> bool {
    let running = fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "systemd");
    if !running {
        eprintln!("skipped: {NEEDS_SYSTEMD}");
    }
    running
}

fn v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

fn cgroup_of(pid: &str) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        .unwrap_or_else(|| panic!("no 0:: line in {text}"))
}

/// A test user with its systemd manager running; the guard deletes its containers, stops the
/// manager and (through [`RootlessUser`]) removes the user.
struct ManagedUser {
    u: RootlessUser,
    /// The manager's runtime directory, `/run/user/UID` (its bus and private socket).
    run: PathBuf,
}

impl ManagedUser {
    fn new(test: &str) -> ManagedUser {
        let u = RootlessUser::new(test);
        let run = PathBuf::from(format!("/run/user/{}", u.uid));
        let m = ManagedUser { u, run };
        let out = Command::new("systemctl")
            .args(["start", &format!("user@{}.service", m.u.uid)])
            .output()
            .unwrap();
        assert!(out.status.success(), "start user manager: {}", stderr(&out));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !m.run.join("systemd/private").exists() {
            assert!(Instant::now() < deadline, "no {}", m.run.display());
            std::thread::sleep(Duration::from_millis(100));
        }
        m
    }

    /// `prog args` as the user, with the environment of its session (XDG_RUNTIME_DIR; the
    /// bus is found there). `in_tree`: in a scope of the user's manager (a process of the
    /// user's own tree, as under rootless podman), rather than where the test runs.
    fn command(&self, in_tree: bool, prog: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid",
            &self.u.uid.to_string(),
            "--regid",
            &self.u.gid.to_string(),
            "--init-groups",
        ]);
        if in_tree {
            cmd.args(["systemd-run", "--user", "--scope", "--quiet", "--"]);
        }
        cmd.arg(prog)
            .args(args)
            .current_dir(self.u.dir())
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", self.u.dir())
            .env("USER", &self.u.name)
            .env("XDG_RUNTIME_DIR", &self.run);
        cmd
    }

    /// brig as the user with `--systemd-cgroup`, its state under the user's own root.
    fn brig(&self, in_tree: bool, args: &[&str]) -> Output {
        let root = self.u.state_root();
        let mut all = vec!["--root", root.to_str().unwrap(), "--systemd-cgroup"];
        all.extend_from_slice(args);
        let mut cmd = self.command(in_tree, &self.u.brig, &all);
        output_via_files(cmd.stdin(Stdio::null()), self.u.dir())
    }

    /// `systemctl --user ...` as the user (its manager's view).
    fn systemctl(&self, args: &[&str]) -> String {
        let mut all = vec!["--user"];
        all.extend_from_slice(args);
        let out = self
            .command(false, Path::new("systemctl"), &all)
            .output()
            .unwrap();
        stdout(&out).trim().to_string()
    }

    fn show(&self, unit: &str, property: &str) -> String {
        self.systemctl(&["show", "-p", property, "--value", unit])
    }

    fn unit_gone(&self, unit: &str) -> bool {
        !self
            .systemctl(&["list-units", "--all", "--no-legend", "--plain", unit])
            .contains(unit)
    }

    fn manager_cgroup(&self) -> String {
        format!("/user.slice/user-{0}.slice/user@{0}.service", self.u.uid)
    }

    fn state_pid(&self, id: &str) -> String {
        let out = ok(&self.brig(false, &["state", id]));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["pid"].to_string()
    }

    fn status(&self, id: &str) -> String {
        let out = ok(&self.brig(false, &["state", id]));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["status"].as_str().unwrap().to_string()
    }
}

impl Drop for ManagedUser {
    fn drop(&mut self) {
        if let Ok(entries) = fs::read_dir(self.u.state_root()) {
            for id in entries.flatten() {
                let id = id.file_name().to_string_lossy().into_owned();
                let _ = self.brig(true, &["delete", "--force", &id]);
            }
        }
        let uid = self.u.uid;
        let _ = Command::new("systemctl")
            .args([
                "stop",
                &format!("user@{uid}.service"),
                &format!("user-runtime-dir@{uid}.service"),
                &format!("user-{uid}.slice"),
            ])
            .output();
        // RootlessUser's own Drop removes the user, its ranges and its files.
    }
}

/// Inside the container: its cgroup, and the memory and pids limits read there.
const SHOW_LIMITS: &str = "p=$(sed -n 's/^0:://p' /proc/self/cgroup); echo cgroup=$p; \
     for d in /sys/fs/cgroup$p /sys/fs/cgroup; do \
     if [ -r $d/memory.max ]; then echo memory=$(cat $d/memory.max) pids=$(cat $d/pids.max); break; fi; \
     done";

#[test]
#[ignore = "needs systemd as PID 1 (hack/vm-test.sh --systemd)"]
fn a_rootless_container_is_a_delegated_scope_of_the_users_manager_with_limits() {
    if !systemd() {
        return;
    }
    let mut m = ManagedUser::new("sdrl-run");
    m.u.set_args(&["sleep", "1000"]);
    m.u.edit(|c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 40}})
    });
    if !v2() {
        // systemd delegates nothing to a user on v1: refused, as runc refuses it.
        let err = fails(&m.brig(true, &["run", "-d", &unique_id("sdrl")]));
        assert!(err.contains("cgroup v1"), "{err}");
        return;
    }
    let n = std::process::id();
    // runc's forms: a named slice of the user's manager, and the empty path (`user.slice`
    // rootless), once with run -d and once with create + start.
    for (cgroups_path, prefix, create_start) in [
        (Some("user.slice:brigt:"), "brigt", false),
        (None, "brig", true),
    ] {
        let id = format!("sdrl{n}{prefix}");
        m.u.edit(|c| match cgroups_path {
            Some(p) => c["linux"]["cgroupsPath"] = json!(format!("{p}{id}")),
            None => {
                c["linux"].as_object_mut().unwrap().remove("cgroupsPath");
            }
        });
        let unit = format!("{prefix}-{id}.scope");
        if create_start {
            ok(&m.brig(true, &["create", &id]));
            assert_eq!(m.status(&id), "created");
            ok(&m.brig(true, &["start", &id]));
        } else {
            ok(&m.brig(true, &["run", "-d", &id]));
        }
        assert_eq!(m.status(&id), "running");
        let pid = m.state_pid(&id);
        let cg = format!("{}/user.slice/{unit}", m.manager_cgroup());
        // Init is in the scope, which the user's manager made and delegated.
        assert_eq!(cgroup_of(&pid), cg, "{unit}");
        assert_eq!(m.show(&unit, "ControlGroup"), cg);
        assert_eq!(m.show(&unit, "ActiveState"), "active");
        assert_eq!(m.show(&unit, "Delegate"), "yes");
        let dir = PathBuf::from(format!("/sys/fs/cgroup{cg}"));
        assert_eq!(fs::metadata(&dir).unwrap().uid(), m.u.uid, "delegated");
        // The limits, on the host and inside.
        let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap().trim().to_string();
        assert_eq!(read("memory.max"), "67108864");
        assert_eq!(read("pids.max"), "40");
        assert_eq!(m.show(&unit, "MemoryMax"), "67108864");
        assert_eq!(m.show(&unit, "TasksMax"), "40");
        // An exec'd process from the user's own tree is in the unit (the root of the
        // container's cgroup namespace, which is the unit's cgroup).
        let in_unit =
            |seen: &str| seen.contains("cgroup=/\n") || seen.contains(&format!("cgroup={cg}\n"));
        let seen = ok(&m.brig(true, &["exec", &id, "sh", "-c", SHOW_LIMITS]));
        assert!(in_unit(&seen), "{seen}");
        assert!(seen.contains("memory=67108864 pids=40"), "{seen}");
        // From outside it (a login session's scope is the system's), the process cannot be
        // moved there and stays where it is, as with rootless runc: exec still works.
        let outside = ok(&m.brig(false, &["exec", &id, "sh", "-c", SHOW_LIMITS]));
        assert!(!in_unit(&outside), "{outside}");
        // update goes to the same manager: property and file.
        ok(&m.brig(
            true,
            &["update", "--memory", "134217728", "--pids-limit", "30", &id],
        ));
        assert_eq!(read("memory.max"), "134217728");
        assert_eq!(read("pids.max"), "30");
        assert_eq!(m.show(&unit, "MemoryMax"), "134217728");
        assert_eq!(m.show(&unit, "TasksMax"), "30");
        // ps, pause and resume find the unit's processes.
        let ps = ok(&m.brig(false, &["ps", &id]));
        assert!(ps.contains(&pid), "{ps}");
        ok(&m.brig(true, &["pause", &id]));
        assert_eq!(m.status(&id), "paused");
        assert_eq!(read("cgroup.freeze"), "1");
        ok(&m.brig(true, &["resume", &id]));
        assert_eq!(m.status(&id), "running");
        // kill, delete: no unit, no cgroup left.
        ok(&m.brig(true, &["kill", &id, "KILL"]));
        let deadline = Instant::now() + Duration::from_secs(20);
        while m.status(&id) != "stopped" {
            assert!(Instant::now() < deadline, "{id} never stopped");
            std::thread::sleep(Duration::from_millis(50));
        }
        ok(&m.brig(true, &["delete", &id]));
        assert!(m.unit_gone(&unit), "{unit} left behind");
        assert!(!dir.exists(), "{} left behind", dir.display());
        assert!(!m.u.state_root().join(&id).exists());
    }
}

#[test]
#[ignore = "needs systemd as PID 1 (hack/vm-test.sh --systemd)"]
fn a_rootless_run_without_a_user_bus_says_what_was_tried() {
    if !systemd() {
        return;
    }
    // A user with no manager running: neither a bus nor the private socket exists.
    let mut u = RootlessUser::new("sdrl-nobus");
    u.set_args(&["true"]);
    let id = unique_id("sdrl-nobus");
    let err = fails(&u.brig(&["--systemd-cgroup", "run", &id]));
    if !v2() {
        // Refused before any bus is tried (runc's order too).
        assert!(err.contains("cgroup v1"), "{err}");
        u.assert_nothing_left(&id);
        return;
    }
    let xdg = u.xdg.display().to_string();
    for says in [
        "--systemd-cgroup",
        "systemd user manager",
        "$DBUS_SESSION_BUS_ADDRESS is unset",
        &format!("no {xdg}/bus"),
        &format!("no {xdg}/systemd/private"),
    ] {
        assert!(err.contains(says), "{says:?} not in: {err}");
    }
    u.assert_nothing_left(&id);
}
