//! What tools written against runc rely on, beyond the runtime spec: `brig spec`'s bundle, exit
//! codes, log lines (and none of them on a container's stdio), `events` lines, `exec --cgroup`,
//! `HOME`, `-v`.

use std::path::{Path, PathBuf};
use std::process::Command;

use integration::*;
use serde_json::json;

fn running(name: &str) -> (Bundle, String, i64) {
    let mut b = Bundle::new(name);
    b.set_args(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["resources"]["pids"] = json!({"limit": 50});
        c["root"]["readonly"] = json!(false);
    });
    let id = unique_id(name);
    ok(&b.brig(&["run", "-d", &id]));
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();
    (b, id, pid)
}

fn spec_text(program: &Path, dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let out = Command::new(program)
        .args(["spec", "--bundle"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.join("config.json")).unwrap()
}

/// A scratch directory removed when the test ends, passed or not.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn spec_writes_what_runc_spec_writes() {
    let tmp = TempDir(std::env::temp_dir().join(unique_id("brig-it-spec")));
    let dir = &tmp.0;
    let text = spec_text(&brig_binary(), &dir.join("brig"));
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    assert_eq!(config["process"]["terminal"], true);
    assert_eq!(config["process"]["capabilities"]["ambient"], caps);
    assert_eq!(
        config["linux"]["resources"]["devices"],
        json!([{"allow": false, "access": "rwm"}])
    );
    assert_eq!(config["hostname"], "brig");
    // Byte for byte what runc writes, but for brig's hostname and spec version.
    let runc = Path::new("/usr/sbin/runc");
    if runc.exists() {
        let theirs = spec_text(runc, &dir.join("runc"));
        let ours = text
            .replacen("\"hostname\": \"brig\"", "\"hostname\": \"runc\"", 1)
            .replacen(
                &format!("\"ociVersion\": {}", config["ociVersion"]),
                "\"ociVersion\": \"1.0.2-dev\"",
                1,
            );
        assert_eq!(ours, theirs);
    }
}

/// The lines of a `--debug` run that come from both sides of the clone.
const DEBUG_LINES: [&str; 3] = [
    "nsexec container setup",
    "child process in init()",
    "init: closing the pipe to signal completion",
];

#[test]
fn debug_lines_reach_the_log_and_never_the_containers_stdout() {
    for format in ["text", "json"] {
        let b = Bundle::with_script("debuglog", "echo hello");
        let log = b.dir.join("log.out");
        let id = unique_id("debuglog");
        let out = b.brig(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            format,
            "--debug",
            "run",
            &id,
        ]);
        assert_eq!(stdout(&out), "hello\n");
        assert_eq!(
            stderr(&out),
            "",
            "nothing of brig's on the container's stderr"
        );
        assert!(out.status.success());
        let text = std::fs::read_to_string(&log).unwrap();
        for line in DEBUG_LINES {
            assert!(text.contains(line), "{format}: no {line:?} in {text}");
        }
        let marker = if format == "json" {
            "\"level\":\"debug\""
        } else {
            "level=debug"
        };
        assert!(text.contains(marker), "{text}");
    }
}

#[test]
fn debug_lines_go_to_brigs_stderr_without_a_log() {
    let b = Bundle::with_script("debugerr", "echo hello");
    let out = b.brig(&["--debug", "run", &unique_id("debugerr")]);
    assert_eq!(stdout(&out), "hello\n");
    let err = stderr(&out);
    assert!(err.contains("level=debug"), "{err}");
    for line in DEBUG_LINES {
        assert!(err.contains(line), "no {line:?} in {err}");
    }
}

#[test]
fn exec_debug_lines_come_from_the_joining_process_too() {
    let (b, id, _) = running("execdebug");
    let log = b.dir.join("exec.log");
    let out = b.brig(&[
        "--debug",
        "--log",
        log.to_str().unwrap(),
        "exec",
        &id,
        "true",
    ]);
    ok(&out);
    assert_eq!(stderr(&out), "");
    let text = std::fs::read_to_string(&log).unwrap();
    for line in [
        "nsexec container setup",
        "child process in init()",
        "setns_init: about to exec",
    ] {
        assert!(text.contains(line), "no {line:?} in {text}");
    }
}

#[test]
fn exec_failures_exit_255_like_runc() {
    let (b, id, _) = running("exec255");
    assert_eq!(b.brig(&["exec", &id, "false"]).status.code(), Some(1));
    assert_eq!(
        b.brig(&["exec", &id, "sh", "-c", "exit 42"]).status.code(),
        Some(42)
    );
    let marker = b.rootfs().join("ran");
    let out = b.brig(&[
        "exec",
        "--pid-file",
        "/non-existent/directory",
        &id,
        "sh",
        "-c",
        "sleep 1; touch /ran",
    ]);
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    // The process was ended with the failed exec, not left running unknown to the caller.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(!marker.exists());
    assert_eq!(
        b.brig(&["exec", &id, "no-such-binary"]).status.code(),
        Some(255)
    );
    assert_eq!(
        b.brig(&["exec", "no_such_container", "true"]).status.code(),
        Some(255)
    );
    ok(&b.brig(&["pause", &id]));
    let out = b.brig(&["exec", &id, "true"]);
    assert_eq!(out.status.code(), Some(255));
    ok(&b.brig(&["resume", &id]));
}

#[test]
fn a_process_file_without_user_runs_as_root() {
    let (b, id, _) = running("execnouser");
    let process = b.dir.join("process.json");
    std::fs::write(
        &process,
        serde_json::to_vec(&json!({"args": ["id", "-u"], "cwd": "/"})).unwrap(),
    )
    .unwrap();
    let out = ok(&b.brig(&["exec", "-p", process.to_str().unwrap(), &id]));
    assert_eq!(out, "0\n");
}

#[test]
fn exec_additional_gids_add_to_the_containers_own() {
    let mut b = Bundle::new("execgids");
    b.set_args(&["sleep", "1000"]);
    b.edit(|c| c["process"]["user"]["additionalGids"] = json!([5]));
    let id = unique_id("execgids");
    ok(&b.brig(&["run", "-d", &id]));
    let out = ok(&b.brig(&["exec", "--user", "1000:1000", "-g", "100", &id, "id", "-G"]));
    assert_eq!(out, "1000 5 100\n");
}

#[test]
fn home_comes_from_the_containers_passwd_when_env_has_none() {
    let mut b = Bundle::with_script("home", "echo $HOME");
    assert_eq!(ok(&b.run(&unique_id("home"))), "/root\n");
    b.edit(|c| c["process"]["user"] = json!({"uid": 1234, "gid": 1234}));
    assert_eq!(ok(&b.run(&unique_id("home"))), "/\n");
    // An explicit HOME wins.
    b.edit(|c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("HOME=/mine"))
    });
    assert_eq!(ok(&b.run(&unique_id("home"))), "/mine\n");

    let (b, id, _) = running("exechome");
    let home = |user: &str| ok(&b.brig(&["exec", "--user", user, &id, "sh", "-c", "echo $HOME"]));
    assert_eq!(home("0"), "/root\n");
    assert_eq!(home("1"), "/usr/sbin\n");
    assert_eq!(home("4321"), "/\n");
}

#[test]
fn an_etc_passwd_that_is_a_fifo_does_not_block_the_container() {
    let b = Bundle::with_script("homefifo", "echo $HOME");
    let passwd = b.rootfs().join("etc/passwd");
    std::fs::remove_file(&passwd).unwrap();
    assert!(Command::new("mkfifo")
        .arg(&passwd)
        .status()
        .unwrap()
        .success());
    let id = unique_id("homefifo");
    let mut child = b
        .command(&["run", &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = b.brig(&["delete", "--force", &id]);
            panic!("brig run blocked on a FIFO /etc/passwd");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "/\n");
}

#[test]
fn events_lines_start_with_type_and_id() {
    let (b, id, _) = running("events");
    let out = ok(&b.brig(&["events", "--stats", &id]));
    let prefix = format!("{{\"type\":\"stats\",\"id\":\"{id}\",\"data\":");
    assert!(out.starts_with(&prefix), "{out}");
}

/// The container's directory in the pids hierarchy (v1) or the unified one (v2), on the host.
fn host_cgroup(pid: i64) -> (PathBuf, bool) {
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        if controllers.split(',').any(|c| c == "pids") {
            let rel = path.trim_start_matches('/');
            return (Path::new("/sys/fs/cgroup/pids").join(rel), false);
        }
    }
    let path = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    (
        Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/')),
        true,
    )
}

#[test]
fn exec_cgroup_runs_the_process_in_a_sub_cgroup() {
    let (b, id, pid) = running("execcg");
    let (dir, v2) = host_cgroup(pid);
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let flag = if v2 { "sub" } else { "pids:sub" };
    let out = b.brig(&["exec", "--cgroup", flag, &id, "cat", "/proc/self/cgroup"]);
    let _ = std::fs::remove_dir(&sub);
    let text = ok(&out);
    let line = text
        .lines()
        .find(|l| {
            if v2 {
                l.starts_with("0::")
            } else {
                l.contains(":pids:")
            }
        })
        .unwrap();
    assert!(line.ends_with("/sub"), "{text}");

    let out = b.brig(&["exec", "--cgroup", "..", &id, "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains(" .. is not a sub cgroup path"),
        "{}",
        stderr(&out)
    );
    let out = b.brig(&["exec", "--cgroup", "nonexistent", &id, "true"]);
    let err = fails(&out);
    assert!(
        err.contains(" adding pid ") && err.contains("/nonexistent/cgroup.procs: no such file "),
        "{err}"
    );
    let err = fails(&b.brig(&["exec", "--cgroup", "whaaat:/", &id, "true"]));
    assert!(err.contains("unknown controller "), "{err}");
}

#[test]
fn create_warns_about_a_cgroup_that_has_processes() {
    let cgroups_path = unique_id("brig-it-shared");
    let mut first = Bundle::new("cgshared");
    first.set_args(&["sleep", "1000"]);
    first.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(cgroups_path);
        c["linux"]["resources"]["pids"] = json!({"limit": 50});
    });
    ok(&first.brig(&["run", "-d", &unique_id("cgshared")]));
    let mut second = Bundle::new("cgshared2");
    second.set_args(&["true"]);
    second.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(cgroups_path);
        c["linux"]["resources"]["pids"] = json!({"limit": 50});
    });
    let id = unique_id("cgshared2");
    let out = second.brig(&["create", &id]);
    ok(&out);
    assert!(
        stderr(&out).contains("container's cgroup is not empty: 1 process(es) found"),
        "{}",
        stderr(&out)
    );
    ok(&second.brig(&["delete", "--force", &id]));
}

#[test]
fn run_accepts_runcs_no_subreaper() {
    let b = Bundle::with_script("nosubreaper", "echo ran");
    assert_eq!(
        ok(&b.brig(&["run", "--no-subreaper", &unique_id("nosubreaper")])),
        "ran\n"
    );
}

#[test]
fn version_and_unknown_commands_read_like_runc() {
    let out = Command::new(brig_binary()).arg("-v").output().unwrap();
    let text = ok(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("brig version "), "{text}");
    assert!(lines[1].starts_with("commit: "), "{text}");
    assert!(lines[2].starts_with("spec: "), "{text}");
    let out = Command::new(brig_binary())
        .args(["foo", "-h"])
        .output()
        .unwrap();
    let err = fails(&out);
    assert!(err.contains("No help topic for 'foo'"), "{err}");
}
