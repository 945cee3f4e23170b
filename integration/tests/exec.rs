//! `exec`: a second process in a running container, in every mode.

use integration::*;
use serde_json::json;

fn running(name: &str) -> (Bundle, String, i64) {
    let mut b = Bundle::new(name);
    b.set_args(&["sleep", "1000"]);
    b.edit(|c| c["linux"]["resources"] = json!({"pids": {"limit": 50}}));
    let id = unique_id(name);
    ok(&b.brig(&["run", "-d", &id]));
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();
    (b, id, pid)
}

#[test]
fn exec_joins_the_container_and_returns_the_exit_status() {
    let (b, id, pid) = running("exec");
    let out = b.brig(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo $$; hostname; readlink /proc/self/ns/net; c() { grep pids /proc/$1/cgroup || grep '^0::' /proc/$1/cgroup; }; c self; c 1; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_ne!(lines[0], "1", "exec'd process is not init");
    assert_eq!(lines[1], "brig");
    assert_eq!(
        lines[2],
        std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .unwrap()
            .to_str()
            .unwrap()
    );
    // The same cgroup as init (the pids line on v1, the unified line on v2), as the
    // container sees it (a cgroup namespace shows its root as "/").
    assert!(lines.len() > 4 && lines[3] == lines[4], "{text}");
}

#[test]
fn exec_with_user_cwd_env_groups_and_caps() {
    let (b, id, _) = running("execuser");
    let out = ok(&b.brig(&[
        "exec",
        "--user",
        "1000:1001",
        "-g",
        "5",
        "--cwd",
        "/tmp",
        "--env",
        "FOO=bar",
        "--cap",
        "CAP_SYS_TIME",
        "--no-new-privs",
        &id,
        "sh",
        "-c",
        "id -u; id -g; id -G; pwd; echo $FOO; grep -E 'CapBnd|NoNewPrivs' /proc/self/status",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..5],
        &["1000", "1001", "1001 5", "/tmp", "bar"],
        "{out}"
    );
    let bounding = u64::from_str_radix(lines[5].split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert!(
        bounding & (1 << 25) != 0,
        "CAP_SYS_TIME in the bounding set: {out}"
    );
    assert!(lines[6].ends_with('1'), "{out}");
}

#[test]
fn exec_from_a_process_file_detached_with_pid_file() {
    let (b, id, _) = running("execfile");
    let process = b.dir.join("process.json");
    std::fs::write(
        &process,
        serde_json::to_vec(&json!({
            "args": ["sleep", "900"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}
        }))
        .unwrap(),
    )
    .unwrap();
    let pid_file = b.dir.join("exec.pid");
    ok(&b.brig(&[
        "exec",
        "--process",
        process.to_str().unwrap(),
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]));
    let pid: i64 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert!(pid_alive(pid));
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with("sleep\0900"), "{cmdline:?}");
    let listed: Vec<i64> =
        serde_json::from_str(&ok(&b.brig(&["ps", "--format", "json", &id]))).unwrap();
    assert!(listed.contains(&pid), "{listed:?}");
    ok(&b.brig(&["delete", "--force", &id]));
    assert!(!pid_alive(pid), "exec'd process survived delete --force");
}

#[test]
fn exec_failures_are_clear() {
    let (b, id, _) = running("execfail");
    let err = fails(&b.brig(&["exec", &id, "no-such-binary"]));
    assert!(
        err.contains("\"no-such-binary\": executable file not found in $PATH"),
        "{err}"
    );
    let err = fails(&b.brig(&["exec", "--user", "x", &id, "true"]));
    assert!(err.contains("--user"), "{err}");
    let err = fails(&b.brig(&["exec", "nope-id", "true"]));
    assert!(err.contains("does not exist"), "{err}");

    ok(&b.brig(&["pause", &id]));
    let err = fails(&b.brig(&["exec", &id, "true"]));
    assert!(
        err.contains("cannot exec in a paused container (use --ignore-paused to override)"),
        "{err}"
    );
    // With --ignore-paused the process joins the frozen cgroup and runs once resumed.
    let mut waiting = b
        .command(&["exec", "--ignore-paused", &id, "true"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "exec ran in a frozen container"
    );
    ok(&b.brig(&["resume", &id]));
    assert!(waiting.wait().unwrap().success());

    ok(&b.brig(&["kill", &id, "KILL"]));
    b.wait_status(&id, "stopped");
    let err = fails(&b.brig(&["exec", &id, "true"]));
    assert!(err.contains("cannot exec in a stopped container"), "{err}");
}

#[test]
fn exec_passes_stdio_and_preserved_fds() {
    let (b, id, _) = running("execio");
    let out = write_stdin(
        &mut b.command(&[
            "exec",
            &id,
            "sh",
            "-c",
            "read l; echo got $l; ls /proc/self/fd | tr '\\n' ' '",
        ]),
        "hi\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "got hi\n0 1 2 3 ");
    // fd 3 open in the caller is passed on with --preserve-fds 1.
    let script = format!(
        "exec 3</dev/null; {} --root {} exec --preserve-fds 1 {} ls /proc/self/fd | tr '\\n' ' '",
        brig_binary().display(),
        b.root.display(),
        id
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0 1 2 3 4 ",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn exec_cpu_affinity_final_is_what_the_process_runs_on() {
    let (b, id, _) = running("execaffinity");
    let process = b.dir.join("process.json");
    let last_cpu = std::thread::available_parallelism().unwrap().get() - 1;
    std::fs::write(
        &process,
        serde_json::to_vec(&json!({
            "args": ["grep", "Cpus_allowed_list", "/proc/self/status"], "cwd": "/",
            "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0},
            "execCPUAffinity": {"initial": "0", "final": last_cpu.to_string()}
        }))
        .unwrap(),
    )
    .unwrap();
    let out = ok(&b.brig(&["exec", "--process", process.to_str().unwrap(), &id]));
    assert_eq!(
        out.split_whitespace().last(),
        Some(last_cpu.to_string().as_str()),
        "{out}"
    );
    // A CPU list that is not one fails before anything runs.
    std::fs::write(
        &process,
        serde_json::to_vec(&json!({
            "args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "execCPUAffinity": {"final": "5000"}
        }))
        .unwrap(),
    )
    .unwrap();
    let err = fails(&b.brig(&["exec", "--process", process.to_str().unwrap(), &id]));
    assert!(err.contains("process.execCPUAffinity.final"), "{err}");
    ok(&b.brig(&["delete", "--force", &id]));
}
