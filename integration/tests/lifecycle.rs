//! The runtime-spec lifecycle: every state transition, what is refused, exit codes and signals.

use std::process::Stdio;
use std::time::{Duration, Instant};

use integration::*;

#[test]
fn create_start_kill_delete_walk_the_states() {
    let mut b = Bundle::new("walk");
    b.set_args(&["sleep", "1000"]);
    let id = unique_id("walk");
    let pid_file = b.dir.join("init.pid");
    ok(&b.brig(&[
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]));

    let state = b.state(&id).unwrap();
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["bundle"], b.dir.to_str().unwrap());
    assert_eq!(state["ociVersion"], "1.2.1");
    let pid = state["pid"].as_i64().unwrap();
    assert!(pid > 0 && pid_alive(pid));
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    // Created: the user program has not run yet; init is parked on the FIFO.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("sleep"));

    // Plain delete of a live container is refused and changes nothing.
    assert!(fails(&b.brig(&["delete", &id])).contains("it is created"));
    assert_eq!(b.status(&id).unwrap(), "created");

    ok(&b.brig(&["start", &id]));
    assert_eq!(b.status(&id).unwrap(), "running");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).starts_with("sleep"));

    // start only from created.
    assert!(fails(&b.brig(&["start", &id])).contains("it is running"));
    assert_eq!(b.status(&id).unwrap(), "running");
    assert!(fails(&b.brig(&["delete", &id])).contains("it is running"));
    assert!(pid_alive(pid));

    ok(&b.brig(&["kill", &id, "KILL"]));
    b.wait_status(&id, "stopped");
    assert_eq!(b.state(&id).unwrap()["pid"], 0);
    // kill of a stopped container fails with runc's words, which containerd's shim matches;
    // `kill --all` succeeds (the shim sends it after every exit), as in runc.
    assert!(fails(&b.brig(&["kill", &id, "9"])).contains("container not running"));
    ok(&b.brig(&["kill", "--all", &id, "9"]));
    ok(&b.brig(&["kill", "-a", &id, "0"]));
    assert!(fails(&b.brig(&["start", &id])).contains("stopped"));

    ok(&b.brig(&["delete", &id]));
    assert!(b.state(&id).is_none());
    assert!(b.containers().is_empty());
    assert!(fails(&b.brig(&["delete", &id])).contains("does not exist"));
    // Engines call delete --force again on a gone container: that must succeed.
    ok(&b.brig(&["delete", "--force", &id]));
    assert!(b.leaked_mounts().is_empty());
}

#[test]
fn unknown_ids_are_clear_errors() {
    let b = Bundle::new("unknown");
    for args in [
        vec!["start", "nope"],
        vec!["state", "nope"],
        vec!["kill", "nope", "KILL"],
        vec!["delete", "nope"],
    ] {
        let err = fails(&b.brig(&args));
        assert!(
            err.contains("container \"nope\" does not exist"),
            "{args:?}: {err}"
        );
    }
    let err = fails(&b.brig(&["state", "../etc"]));
    assert!(err.contains("invalid container id"), "{err}");
}

#[test]
fn create_of_an_existing_id_fails_and_keeps_the_first() {
    let mut b = Bundle::new("dup");
    b.set_args(&["sleep", "1000"]);
    let id = unique_id("dup");
    ok(&b.brig(&["create", &id]));
    let first = b.state(&id).unwrap();
    assert!(fails(&b.brig(&["create", &id])).contains("already exists"));
    assert_eq!(b.state(&id).unwrap(), first);
    assert!(pid_alive(first["pid"].as_i64().unwrap()));
    ok(&b.brig(&["delete", "--force", &id]));
    assert!(!pid_alive(first["pid"].as_i64().unwrap()));
}

#[test]
fn delete_force_kills_created_and_running_containers() {
    let mut b = Bundle::new("force");
    b.set_args(&["sleep", "1000"]);
    let created = unique_id("force-created");
    let running = unique_id("force-running");
    ok(&b.brig(&["create", &created]));
    ok(&b.brig(&["run", "--detach", &running]));
    assert_eq!(b.status(&running).unwrap(), "running");
    let pids: Vec<i64> = [&created, &running]
        .iter()
        .map(|id| b.state(id).unwrap()["pid"].as_i64().unwrap())
        .collect();
    ok(&b.brig(&["delete", "--force", &created]));
    ok(&b.brig(&["delete", "--force", &running]));
    for pid in pids {
        assert!(!pid_alive(pid), "pid {pid} survived delete --force");
    }
    assert!(b.containers().is_empty());
    assert!(b.leaked_mounts().is_empty());
}

#[test]
fn run_exits_with_the_container_status() {
    for (script, code) in [("exit 0", 0), ("exit 3", 3), ("false", 1)] {
        let b = Bundle::with_script("exit", script);
        let id = unique_id("exit");
        let out = b.run(&id);
        assert_eq!(out.status.code(), Some(code), "{script}: {}", stderr(&out));
        // run removes the container afterwards.
        assert!(b.containers().is_empty(), "{script}: state left behind");
    }
}

#[test]
fn run_exits_128_plus_the_signal_that_killed_the_container() {
    let mut b = Bundle::new("sigexit");
    b.set_args(&["sleep", "1000"]);
    let id = unique_id("sigexit");
    let mut run = b
        .command(&["run", &id])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    b.wait_status(&id, "running");
    ok(&b.brig(&["kill", &id, "SIGKILL"]));
    assert_eq!(run.wait().unwrap().code(), Some(128 + 9));
    assert!(b.containers().is_empty());
}

#[test]
fn run_prints_what_the_container_prints_and_passes_stdin() {
    let b = Bundle::with_script(
        "stdio",
        "echo out; echo err >&2; read line; echo \"got $line\"",
    );
    let id = unique_id("stdio");
    let out = write_stdin(&mut b.command(&["run", &id]), "ping\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "out\ngot ping\n");
    assert_eq!(stderr(&out), "err\n");
}

/// `brig run` in the background, once the container printed "ready" (its trap is set).
fn run_until_ready(b: &Bundle, id: &str) -> std::process::Child {
    let mut run = b
        .command(&["run", id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 6];
    std::io::Read::read_exact(run.stdout.as_mut().unwrap(), &mut first).unwrap();
    assert_eq!(&first, b"ready\n");
    run
}

#[test]
fn kill_by_number_and_by_name() {
    for signal in ["15", "TERM", "SIGTERM", "sigterm"] {
        let b = Bundle::with_script(
            "killsig",
            "trap 'exit 42' TERM; echo ready; while true; do sleep 0.05; done",
        );
        let id = unique_id("killsig");
        let mut run = run_until_ready(&b, &id);
        ok(&b.brig(&["kill", &id, signal]));
        let status = run.wait().unwrap();
        assert_eq!(status.code(), Some(42), "signal {signal}");
    }
}

#[test]
fn kill_defaults_to_term_and_all_reaches_every_process() {
    let b = Bundle::with_script(
        "killall",
        "sleep 1000 & sleep 1000 & trap 'exit 7' TERM; while true; do sleep 0.05; done",
    );
    let id = unique_id("killall");
    ok(&b.brig(&["run", "-d", &id]));
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let children = loop {
        let kids: Vec<i64> = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        if kids.len() >= 2 || Instant::now() > deadline {
            break kids;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(children.len() >= 2, "{children:?}");
    ok(&b.brig(&["kill", "--all", &id, "KILL"]));
    b.wait_status(&id, "stopped");
    for child in children {
        assert!(!pid_alive(child), "child {child} survived kill --all");
    }
    ok(&b.brig(&["delete", &id]));

    // Default signal is TERM.
    let id = unique_id("killterm");
    ok(&b.brig(&["run", "-d", &id]));
    std::thread::sleep(Duration::from_millis(200));
    ok(&b.brig(&["kill", &id]));
    b.wait_status(&id, "stopped");
}

#[test]
fn run_forwards_signals_to_the_container() {
    let b = Bundle::with_script(
        "forward",
        "trap 'exit 9' USR1; echo ready; while true; do sleep 0.05; done",
    );
    let id = unique_id("forward");
    let mut run = run_until_ready(&b, &id);
    // SAFETY: signalling the brig process this test spawned.
    unsafe { libc::kill(run.id() as i32, libc::SIGUSR1) };
    assert_eq!(run.wait().unwrap().code(), Some(9));
}

#[test]
fn list_shows_containers_in_table_json_and_quiet() {
    let mut b = Bundle::new("list");
    b.set_args(&["sleep", "1000"]);
    let a = unique_id("list-a");
    let c = unique_id("list-c");
    ok(&b.brig(&["create", &a]));
    ok(&b.brig(&["create", &c]));
    ok(&b.brig(&["start", &c]));
    let table = ok(&b.brig(&["list"]));
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&a) && l.contains("created")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&c) && l.contains("running")),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&b.brig(&["list", "--format", "json"]))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(
        ok(&b.brig(&["list", "-q"])),
        format!("{}\n", [a.as_str(), c.as_str()].join("\n"))
    );
}

#[test]
fn no_pivot_runs_the_container_too() {
    let b = Bundle::with_script("nopivot", "cat /proc/self/mountinfo | head -1; echo $$");
    let id = unique_id("nopivot");
    let out = ok(&b.brig(&["run", "--no-pivot", &id]));
    assert!(out.ends_with("1\n"), "{out}");
}

#[test]
fn failures_are_logged_as_json_for_engines() {
    let b = Bundle::with_script("logjson", "true");
    let log = b.dir.join("log.json");
    let out = b.brig(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "start",
        "missing",
    ]);
    fails(&out);
    let out2 = b.brig(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format=json",
        "kill",
        "missing2",
    ]);
    fails(&out2);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["level"], "error");
    assert_eq!(lines[0]["msg"], "container \"missing\" does not exist");
    assert!(lines[1]["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn version_names_the_spec_and_commit() {
    let out = ok(&std::process::Command::new(brig_binary())
        .arg("--version")
        .output()
        .unwrap());
    assert!(
        out.contains("spec: 1.2.1") && out.contains("commit: "),
        "{out}"
    );
}

#[test]
fn a_recycled_pid_is_not_taken_for_init() {
    let mut b = Bundle::new("recycled");
    b.set_args(&["sleep", "1000"]);
    let id = unique_id("recycled");
    ok(&b.brig(&["run", "-d", &id]));
    assert_eq!(b.status(&id).unwrap(), "running");
    // Same pid, other start time: what a recycled pid looks like.
    let path = b.root.join(&id).join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let real = state["initStartTime"].as_u64().unwrap();
    state["initStartTime"] = serde_json::json!(real + 1);
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
    assert_eq!(b.status(&id).unwrap(), "stopped");
    let pid = state["pid"].as_i64().unwrap();
    // kill must not reach the process that merely has the same pid.
    assert!(fails(&b.brig(&["kill", &id, "KILL"])).contains("container not running"));
    assert!(pid_alive(pid));
    state["initStartTime"] = serde_json::json!(real);
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
    ok(&b.brig(&["delete", "--force", &id]));
    assert!(!pid_alive(pid));
}

#[test]
fn a_config_without_process_creates_but_cannot_start() {
    let mut b = Bundle::new("noprocess");
    b.edit(|c| {
        c.as_object_mut().unwrap().remove("process");
    });
    let id = unique_id("noprocess");
    ok(&b.brig(&["create", &id]));
    assert_eq!(b.status(&id).unwrap(), "created");
    let err = fails(&b.brig(&["start", &id]));
    assert!(err.contains("process: is not set"), "{err}");
    b.wait_status(&id, "stopped");
    ok(&b.brig(&["delete", &id]));
}

#[test]
fn features_reports_what_brig_implements() {
    let out = ok(&std::process::Command::new(brig_binary())
        .arg("features")
        .output()
        .unwrap());
    let f: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert_eq!(f["ociVersionMax"], "1.2.1");
    assert_eq!(f["hooks"].as_array().unwrap().len(), 6);
    assert!(f["mountOptions"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("rro")));
    assert_eq!(f["linux"]["cgroup"]["v1"], true);
    assert_eq!(f["linux"]["cgroup"]["v2"], true);
    assert_eq!(f["linux"]["cgroup"]["systemd"], true);
    assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], true);
    assert!(f["linux"]["seccomp"]["actions"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("SCMP_ACT_NOTIFY")));
    assert_eq!(f["linux"]["seccomp"]["enabled"], true);
    assert!(f["linux"]["seccomp"]["actions"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("SCMP_ACT_ERRNO")));
    assert!(f["linux"]["memoryPolicy"]["modes"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("MPOL_BIND")));
}

#[test]
fn preserved_and_socket_activation_fds_reach_the_container() {
    let b = Bundle::with_script(
        "fds",
        "ls /proc/self/fd | tr '\\n' ' '; echo; cat <&3; echo \"$LISTEN_FDS $LISTEN_PID\"",
    );
    let marker = b.dir.join("marker");
    std::fs::write(&marker, "through fd 3\n").unwrap();
    let run = |env: &str, flags: &str| {
        let script = format!(
            "exec 3<{} 4</dev/null; {env} exec {} --root {} run {flags} {}",
            marker.display(),
            brig_binary().display(),
            b.root.display(),
            unique_id("fds")
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(&b.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Without flags only 0-2 get through (ls adds its own 3 for /proc/self/fd).
    let none = run("", "");
    assert!(none.starts_with("0 1 2 3 \n"), "{none}");
    assert_eq!(
        run("", "--preserve-fds 2"),
        "0 1 2 3 4 5 \nthrough fd 3\n \n"
    );
    assert_eq!(run("LISTEN_FDS=1", ""), "0 1 2 3 4 \nthrough fd 3\n1 1\n");
}

#[test]
fn delete_force_cleans_up_after_a_create_that_died() {
    let mut b = Bundle::new("crashed");
    b.set_args(&["sleep", "1000"]);
    let log = b.dir.join("hook-started");
    b.edit(|c| {
        c["hooks"] = serde_json::json!({"createRuntime": [
            {"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}; exec sleep 31.4159", log.display())]}
        ]})
    });
    let id = unique_id("crashed");
    let mut create = b
        .command(&["create", &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log.exists() {
        assert!(Instant::now() < deadline, "the hook never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    // brig dies in the middle of create: state says creating, init and cgroup exist.
    create.kill().unwrap();
    create.wait().unwrap();
    let state = b.state(&id).unwrap();
    assert_eq!(state["status"], "creating");
    assert!(fails(&b.brig(&["delete", &id])).contains("it is creating"));
    ok(&b.brig(&["delete", "--force", &id]));
    assert!(b.containers().is_empty());
    // Without cgroupsPath the cgroup is named after the id (as runc names it).
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/pids/{id}")).exists());
    assert!(b.leaked_mounts().is_empty());
    // The hook died with the brig that ran it.
    std::thread::sleep(Duration::from_millis(200));
    let hook_alive = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("31.4159"))
    });
    assert!(!hook_alive, "the hook outlived brig");
}

#[test]
fn output_to_a_reader_that_went_away_ends_quietly() {
    // `brig state ID | grep -q running`: grep may exit before brig has written everything.
    // brig ignores SIGPIPE, so a write gets EPIPE; that must not panic (SIGABRT here).
    let mut b = Bundle::new("epipe");
    b.set_args(&["sleep", "100"]);
    let id = unique_id("epipe");
    ok(&b.brig(&["create", &id]));
    let commands: [&[&str]; 7] = [
        &["state", &id],
        &["list"],
        &["list", "-q"],
        &["list", "--format", "json"],
        &["ps", "--format", "json", &id],
        &["ps", &id],
        &["features"],
    ];
    for args in commands {
        let mut child = b
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before brig writes a byte.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {:?} {}",
            out.status,
            stderr(&out)
        );
    }
}
