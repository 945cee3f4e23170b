//! Lifecycle hooks: order, namespace, the state on stdin, failures and timeouts.

use integration::*;
use serde_json::{json, Value};

/// A bundle whose hooks append "<name> <state json>" to `<bundle>/hooklog/log`, which the
/// container sees at /hooklog (for the hooks that run inside it).
fn hooked(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    let log_dir = b.dir.join("hooklog");
    std::fs::create_dir_all(&log_dir).unwrap();
    let host_hook = b.dir.join("hook.sh");
    std::fs::write(
        &host_hook,
        format!(
            "#!/bin/sh\necho \"$1 $(cat)\" >> {}/log\n",
            log_dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &host_hook,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    b.add_script(
        "/bin/hook.sh",
        "#!/bin/sh\necho \"$1 $(cat)\" >> /hooklog/log\n",
    );
    let host = |n: &str| json!({"path": host_hook, "args": ["hook.sh", n]});
    let inside = |n: &str| json!({"path": "/bin/hook.sh", "args": ["hook.sh", n]});
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!(
            {"destination": "/hooklog", "type": "bind", "source": "hooklog", "options": ["rbind", "rw"]}
        ));
        c["hooks"] = json!({
            "prestart": [host("prestart")],
            "createRuntime": [host("createRuntime")],
            // createContainer runs in the container's namespaces before pivot_root: host paths.
            "createContainer": [host("createContainer")],
            "startContainer": [inside("startContainer")],
            "poststart": [host("poststart")],
            "poststop": [host("poststop")]
        });
    });
    b
}

fn log(b: &Bundle) -> Vec<(String, Value)> {
    std::fs::read_to_string(b.dir.join("hooklog/log"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (name, json) = l.split_once(' ').unwrap();
            (name.to_string(), serde_json::from_str(json).unwrap())
        })
        .collect()
}

#[test]
fn every_hook_runs_in_order_with_the_state_it_should_see() {
    let mut b = hooked("hooks");
    b.set_args(&["sleep", "1000"]);
    let id = unique_id("hooks");
    ok(&b.brig(&["create", &id]));
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();
    ok(&b.brig(&["start", &id]));
    ok(&b.brig(&["delete", "--force", &id]));
    let entries = log(&b);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    let expect = [
        ("creating", pid),
        ("creating", pid),
        ("creating", 1), // in the container's pid namespace
        ("created", 1),
        ("running", pid),
        ("stopped", 0),
    ];
    for ((name, state), (status, pid)) in entries.iter().zip(expect) {
        assert_eq!(state["status"], status, "{name}");
        assert_eq!(state["pid"], pid, "{name}");
        assert_eq!(state["id"], id.as_str(), "{name}");
        assert_eq!(state["bundle"], b.dir.to_str().unwrap(), "{name}");
    }
}

#[test]
fn run_runs_hooks_too() {
    let b = hooked("hooksrun");
    b.add_script("/bin/main.sh", "#!/bin/sh\necho main >> /hooklog/main\n");
    let mut b = b;
    b.set_args(&["/bin/main.sh"]);
    ok(&b.run(&unique_id("hooksrun")));
    assert_eq!(log(&b).len(), 6);
    assert_eq!(
        std::fs::read_to_string(b.dir.join("hooklog/main")).unwrap(),
        "main\n"
    );
}

fn with_hook(name: &str, kind: &str, hook: Value) -> Bundle {
    let mut b = hooked(name);
    b.edit(|c| c["hooks"][kind] = json!([hook]));
    b
}

#[test]
fn a_failing_create_hook_fails_create_cleans_up_and_runs_poststop() {
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let b = with_hook(
            "hookfail",
            kind,
            json!({"path": "/bin/sh", "args": ["sh", "-c", "echo no way >&2; exit 2"]}),
        );
        let id = unique_id("hookfail");
        let err = fails(&b.brig(&["create", &id]));
        assert!(
            err.contains(&format!(
                "error running hook #0 ({kind} /bin/sh): exit status 2: no way"
            )),
            "{kind}: {err}"
        );
        assert!(b.containers().is_empty(), "{kind}");
        assert!(b.leaked_mounts().is_empty(), "{kind}");
        let names: Vec<String> = log(&b).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names.last().map(String::as_str),
            Some("poststop"),
            "{kind}: {names:?}"
        );
        assert!(!names.contains(&"startContainer".to_string()));
    }
}

#[test]
fn a_hook_that_times_out_is_killed_and_fails() {
    let b = with_hook(
        "hooktimeout",
        "createRuntime",
        json!({"path": "/bin/sleep", "args": ["sleep", "60"], "timeout": 1}),
    );
    let id = unique_id("hooktimeout");
    let started = std::time::Instant::now();
    let err = fails(&b.brig(&["create", &id]));
    assert!(
        err.contains("error running hook #0 (createRuntime /bin/sleep): timed out after 1 seconds"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(b.containers().is_empty());
}

#[test]
fn a_failing_start_hook_fails_start_and_stops_the_container() {
    for kind in ["startContainer", "poststart"] {
        let mut b = with_hook(
            "starthook",
            kind,
            json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 5"]}),
        );
        b.set_args(&["sleep", "1000"]);
        let id = unique_id("starthook");
        ok(&b.brig(&["create", &id]));
        let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();
        let err = fails(&b.brig(&["start", &id]));
        assert!(
            err.contains(&format!(
                "error running hook #0 ({kind} /bin/sh): exit status 5"
            )),
            "{kind}: {err}"
        );
        b.wait_status(&id, "stopped");
        assert!(!pid_alive(pid));
        ok(&b.brig(&["delete", &id]));
    }
}

#[test]
fn a_failing_poststop_hook_is_a_warning_and_later_ones_still_run() {
    let mut b = hooked("poststop");
    let log_dir = b.dir.join("hooklog");
    b.edit(|c| {
        c["hooks"]["poststop"] = json!([
            {"path": "/bin/sh", "args": ["sh", "-c", "exit 1"]},
            {"path": "/bin/sh", "args": ["sh", "-c", format!("echo second >> {}/poststop", log_dir.display())]}
        ])
    });
    let id = unique_id("poststop");
    ok(&b.brig(&["create", &id]));
    let out = b.brig(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("error running hook #0 (poststop"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(log_dir.join("poststop")).unwrap(),
        "second\n"
    );
    assert!(b.containers().is_empty());
}

#[test]
fn bad_hooks_are_refused() {
    let b = with_hook("badhook", "poststart", json!({"path": "relative/hook"}));
    let err = fails(&b.brig(&["create", &unique_id("badhook")]));
    assert!(
        err.contains("hooks.poststart[0].path: must be absolute"),
        "{err}"
    );
    let b = with_hook(
        "badtimeout",
        "prestart",
        json!({"path": "/bin/true", "timeout": 0}),
    );
    let err = fails(&b.brig(&["create", &unique_id("badtimeout")]));
    assert!(
        err.contains("hooks.prestart[0].timeout: must be greater than zero"),
        "{err}"
    );
}

#[test]
fn exec_failure_after_start_is_an_error_of_start() {
    let mut b = Bundle::new("execfail");
    b.add_script("/bin/gone", "#!/bin/sh\nexit 0\n");
    b.set_args(&["/bin/gone"]);
    let id = unique_id("execfail");
    ok(&b.brig(&["create", &id]));
    // The program disappears between create and start.
    std::fs::remove_file(b.rootfs().join("bin/gone")).unwrap();
    let err = fails(&b.brig(&["start", &id]));
    assert!(
        err.contains("exec /bin/gone: no such file or directory"),
        "{err}"
    );
    b.wait_status(&id, "stopped");
}

#[test]
fn a_timeout_near_the_clock_limit_is_no_timeout() {
    let b = with_hook(
        "hookhugetimeout",
        "createRuntime",
        json!({"path": "/bin/true", "timeout": i64::MAX}),
    );
    let id = unique_id("hookhugetimeout");
    let out = b.brig(&["create", &id]);
    let _ = b.brig(&["delete", "--force", &id]);
    ok(&out);
}

#[test]
fn a_hook_that_never_reads_a_large_state_still_times_out() {
    let mut b = with_hook(
        "hookstdin",
        "createRuntime",
        json!({"path": "/bin/sleep", "args": ["sleep", "40"], "timeout": 1}),
    );
    // The state carries the annotations: past the 64 KiB a pipe holds.
    b.edit(|c| c["annotations"] = json!({"big": "x".repeat(200_000)}));
    let id = unique_id("hookstdin");
    let started = std::time::Instant::now();
    let out = b.brig(&["create", &id]);
    let _ = b.brig(&["delete", "--force", &id]);
    let err = fails(&out);
    assert!(err.contains("timed out after 1 seconds"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// Kills and reaps the process holding a pid namespace when the test ends, passed or not.
struct Holder(std::process::Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn hooks_run_in_the_runtimes_pid_namespace_when_init_joins_another() {
    // A pid namespace to join: `unshare --fork` makes it for its child (pid 1 there).
    let holder = Holder(
        std::process::Command::new("unshare")
            // --kill-child: the sleep (pid 1 there) dies with unshare, which Drop kills.
            .args(["--pid", "--fork", "--kill-child", "sleep", "1000"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ns_path = format!("/proc/{}/ns/pid_for_children", holder.0.id());
    let ours = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let mut target = None;
    for _ in 0..100 {
        match std::fs::read_link(&ns_path) {
            Ok(ns) if ns != ours => {
                target = Some(ns);
                break;
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
    let target = target.expect("unshare made no pid namespace");
    let mut b = Bundle::new("hookpidns");
    let seen = b.dir.join("hook-pidns");
    b.set_args(&["sleep", "1000"]);
    b.edit(|c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "pid" {
                ns["path"] = json!(ns_path);
            }
        }
        let hook = |kind: &str| {
            json!({"path": "/bin/sh", "args": ["sh", "-c",
                format!("echo {kind} $(readlink /proc/self/ns/pid) >> {}", seen.display())]})
        };
        c["hooks"] =
            json!({"prestart": [hook("prestart")], "createRuntime": [hook("createRuntime")]});
    });
    let id = unique_id("hookpidns");
    // Before: brig panicked ("failed to spawn thread": the hooks' stdin writer, while its
    // children's pid namespace was init's) and left the container half made.
    ok(&b.brig(&["create", &id]));
    let ours = ours.display().to_string();
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        format!("prestart {ours}\ncreateRuntime {ours}\n"),
        "the hooks run in brig's pid namespace, as runc's"
    );
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap(),
        target,
        "init is in the joined pid namespace"
    );
    ok(&b.brig(&["start", &id]));
    ok(&b.brig(&["delete", "--force", &id]));
}
