//! Seccomp profiles on real containers: what the process inside gets from each action.

use integration::*;
use serde_json::{json, Value};

fn with_profile(name: &str, script: &str, profile: Value) -> Bundle {
    let mut b = Bundle::with_script(name, script);
    b.edit(|c| c["linux"]["seccomp"] = profile);
    b
}

#[test]
fn errno_rules_deny_one_syscall_and_leave_the_rest() {
    let b = with_profile(
        "scmpmkdir",
        "mkdir /tmp/x 2>&1; echo rc=$?; echo still fine; touch /dev/shm/y && echo touch-ok",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]}),
    );
    let out = ok(&b.run(&unique_id("scmpmkdir")));
    assert!(out.contains("Function not implemented"), "{out}");
    assert!(out.contains("rc=1\nstill fine\ntouch-ok\n"), "{out}");
}

#[test]
fn argument_filters_allow_only_the_listed_values() {
    // personality(0) (PER_LINUX) allowed; PER_LINUX32 (8) falls to the default ERRNO.
    let b = with_profile(
        "scmparg",
        "linux32 true 2>&1; echo rc32=$?; uname -m >/dev/null && echo linux64-ok",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
        ]}),
    );
    let out = ok(&b.run(&unique_id("scmparg")));
    assert!(out.contains("rc32=1"), "{out}");
    assert!(out.contains("linux64-ok"), "{out}");
}

#[test]
fn kill_trap_and_log_actions() {
    for (action, expect) in [
        ("SCMP_ACT_KILL_PROCESS", "rc=159"),
        ("SCMP_ACT_TRAP", "rc=159"),
        ("SCMP_ACT_LOG", "rc=0"),
    ] {
        let b = with_profile(
            "scmpkill",
            "(sync); echo rc=$?",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["sync"], "action": action}]}),
        );
        let out = ok(&b.run(&unique_id("scmpkill")));
        assert!(out.contains(expect), "{action}: {out}");
    }
}

#[test]
fn a_default_deny_profile_without_no_new_privs_and_exec_gets_it_too() {
    // An allow-list profile (ERRNO by default), installed while init still has CAP_SYS_ADMIN.
    let allowed = [
        "read",
        "write",
        "openat",
        "open",
        "close",
        "fstat",
        "newfstatat",
        "stat",
        "lstat",
        "statx",
        "mmap",
        "munmap",
        "mprotect",
        "brk",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "ioctl",
        "access",
        "faccessat",
        "faccessat2",
        "execve",
        "exit",
        "exit_group",
        "getpid",
        "getppid",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "setgroups",
        "setresuid",
        "setresgid",
        "capget",
        "capset",
        "prctl",
        "chdir",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "getrandom",
        "wait4",
        "clone",
        "fork",
        "vfork",
        "dup2",
        "dup3",
        "fcntl",
        "getcwd",
        "lseek",
        "pipe2",
        "pipe",
        "umask",
        "close_range",
        "sendto",
        "sendmsg",
        "getdents64",
        "uname",
        "sysinfo",
        "nanosleep",
        "clock_nanosleep",
        "futex",
        "readlink",
        "readlinkat",
        "getpgrp",
        "setpgid",
        "getrlimit",
        "sched_getaffinity",
        "poll",
        "ppoll",
        "pselect6",
        "select",
        "kill",
        "tgkill",
        "gettid",
        "madvise",
        "writev",
        "readv",
    ];
    let mut b = with_profile(
        "scmpdeny",
        "echo started; mkdir /tmp/z 2>/dev/null || echo mkdir-denied; sleep 1000",
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "syscalls": [
            {"names": allowed.to_vec(), "action": "SCMP_ACT_ALLOW"}
        ]}),
    );
    b.edit(|c| c["process"]["noNewPrivileges"] = json!(false));
    let id = unique_id("scmpdeny");
    ok(&b.brig(&["run", "-d", &id]));
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Seccomp:") && l.ends_with('2')),
        "{status}"
    );
    let filters = status
        .lines()
        .find(|l| l.starts_with("Seccomp_filters:"))
        .unwrap();
    assert!(
        filters.ends_with('1'),
        "one filter for the default, allow rules need none: {filters}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("NoNewPrivs:") && l.ends_with('0')),
        "{status}"
    );
    // exec'd processes get the same profile.
    let out = b.brig(&[
        "exec",
        &id,
        "sh",
        "-c",
        "mkdir /tmp/q 2>/dev/null || echo exec-mkdir-denied",
    ]);
    assert_eq!(stdout(&out), "exec-mkdir-denied\n", "{}", stderr(&out));
}

#[test]
fn a_profile_blocking_getcwd_still_starts_the_container() {
    let b = with_profile(
        "scmpgetcwd",
        "echo started",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}),
    );
    assert_eq!(ok(&b.run(&unique_id("scmpgetcwd"))), "started\n");
}

#[test]
fn bad_profiles_fail_create_naming_the_rule() {
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "linux.seccomp.syscalls[0].args[0].index: 7 is above 5",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOPE"}]}),
            "unknown variant",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BAD"}]}]}),
            "unknown variant",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_LOG", "errnoRet": 5}]}),
            "linux.seccomp.syscalls[0].errnoRet: 5 is set, but only SCMP_ACT_ERRNO and SCMP_ACT_TRACE return one",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.listenerPath: is required",
        ),
    ];
    for (profile, message) in cases {
        let b = with_profile("scmpbad", "true", profile.clone());
        let err = fails(&b.brig(&["create", &unique_id("scmpbad")]));
        assert!(err.contains(message), "{profile}: {err}");
        assert!(b.containers().is_empty());
    }
}

/// A test seccomp agent: a thread bound to a unix socket that takes each listener the runtime
/// sends (with its container process state), and answers notifications from a script of
/// answers (then lets the calls go on).
mod agent {
    use std::collections::VecDeque;
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::os::unix::net::UnixListener;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;
    use std::time::Duration;

    use serde_json::Value;

    #[derive(Debug, Clone, Copy)]
    pub enum Answer {
        /// The call fails with this errno.
        Error(i32),
        /// The call returns this value without running.
        Value(i64),
    }

    pub struct Agent {
        pub path: PathBuf,
        stop: Arc<AtomicBool>,
        states: Arc<Mutex<Vec<Value>>>,
        /// (syscall nr, pid) of every notification answered.
        pub seen: Arc<Mutex<Vec<(i32, u32)>>>,
        thread: Option<JoinHandle<()>>,
    }

    impl Agent {
        pub fn start(dir: &Path, answers: &[Answer]) -> Agent {
            let path = dir.join("agent.sock");
            let listener = UnixListener::bind(&path).unwrap();
            listener.set_nonblocking(true).unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let states = Arc::new(Mutex::new(Vec::new()));
            let seen = Arc::new(Mutex::new(Vec::new()));
            let answers = Arc::new(Mutex::new(answers.iter().copied().collect::<VecDeque<_>>()));
            let (s, st, sn) = (stop.clone(), states.clone(), seen.clone());
            let thread = std::thread::spawn(move || {
                let mut servers = Vec::new();
                while !s.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((mut conn, _)) => {
                            conn.set_nonblocking(false).unwrap();
                            let (mut data, fd) = recv_with_fd(conn.as_raw_fd());
                            // The runtime closes after one state: read to the end.
                            conn.read_to_end(&mut data).unwrap();
                            st.lock()
                                .unwrap()
                                .push(serde_json::from_slice(&data).unwrap());
                            let (s, sn, a) = (s.clone(), sn.clone(), answers.clone());
                            servers.push(std::thread::spawn(move || serve(fd, &s, &sn, &a)));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
                for server in servers {
                    server.join().unwrap();
                }
            });
            Agent {
                path,
                stop,
                states,
                seen,
                thread: Some(thread),
            }
        }

        /// The container process states received so far.
        pub fn states(&self) -> Vec<Value> {
            self.states.lock().unwrap().clone()
        }
    }

    impl Drop for Agent {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    fn recv_with_fd(sock: RawFd) -> (Vec<u8>, OwnedFd) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut control = [0u64; 8];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: a zeroed msghdr is valid; the fields set point at live buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: recvmsg writes into the buffers described by msg.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        assert!(n > 0, "recvmsg: {}", std::io::Error::last_os_error());
        // SAFETY: msg was filled by recvmsg; the header and data lie in `control`.
        let fd = unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            assert!(!cmsg.is_null(), "the state came without a descriptor");
            assert_eq!(
                ((*cmsg).cmsg_level, (*cmsg).cmsg_type),
                (libc::SOL_SOCKET, libc::SCM_RIGHTS)
            );
            OwnedFd::from_raw_fd(std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const i32))
        };
        buf.truncate(n as usize);
        (buf, fd)
    }

    /// Answer notifications until the filtered processes are gone (POLLHUP) or we are stopped.
    fn serve(
        fd: OwnedFd,
        stop: &AtomicBool,
        seen: &Mutex<Vec<(i32, u32)>>,
        answers: &Mutex<VecDeque<Answer>>,
    ) {
        loop {
            let mut pfd = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll on one pollfd we own.
            let n = unsafe { libc::poll(&mut pfd, 1, 50) };
            if stop.load(Ordering::SeqCst) || pfd.revents & libc::POLLHUP != 0 {
                return;
            }
            if n <= 0 || pfd.revents & libc::POLLIN == 0 {
                continue;
            }
            // SAFETY: zeroed plain-data structs the ioctls fill in and read.
            let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
            // SAFETY: NOTIF_RECV writes one seccomp_notif.
            if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } != 0
            {
                continue; // the caller died meanwhile
            }
            seen.lock().unwrap().push((req.data.nr, req.pid));
            // SAFETY: as above.
            let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
            resp.id = req.id;
            match answers.lock().unwrap().pop_front() {
                Some(Answer::Error(e)) => resp.error = -e,
                Some(Answer::Value(v)) => resp.val = v,
                None => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
            }
            // SAFETY: NOTIF_SEND reads one seccomp_notif_resp.
            unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
        }
    }
}

use agent::{Agent, Answer};

fn notify_mkdir(agent_path: &std::path::Path, flags: Value) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": agent_path,
        "listenerMetadata": "brig-test-metadata",
        "flags": flags,
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    })
}

#[test]
fn notify_hands_a_working_listener_and_the_state_to_the_agent() {
    // With no_new_privs (the NOTIFY filter goes in during create, the rest at exec) and
    // without (everything during create); TSYNC needs TSYNC_ESRCH with a listener.
    for (nnp, flags) in [
        (
            true,
            json!([
                "SECCOMP_FILTER_FLAG_TSYNC",
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
            ]),
        ),
        (false, json!([])),
    ] {
        let mut b = Bundle::with_script(
            "scmpnotify",
            "mkdir /tmp/a 2>&1; echo rc=$?; mkdir /tmp/b; echo rc=$?; \
             [ -d /tmp/b ] && echo b-exists || echo b-absent; \
             mkdir /tmp/c; echo rc=$?; [ -d /tmp/c ] && echo c-exists",
        );
        // The first mkdir fails with EXDEV, the second "succeeds" without running, the third
        // is let through (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
        let agent = Agent::start(&b.dir, &[Answer::Error(libc::EXDEV), Answer::Value(0)]);
        let profile = notify_mkdir(&agent.path, flags);
        b.edit(|c| {
            c["linux"]["seccomp"] = profile;
            c["process"]["noNewPrivileges"] = json!(nnp);
            c["root"]["readonly"] = json!(false);
        });
        let id = unique_id("scmpnotify");
        let out = ok(&b.run(&id));
        assert_eq!(
            out,
            "mkdir: can't create directory '/tmp/a': Invalid cross-device link\nrc=1\nrc=0\n\
             b-absent\nrc=0\nc-exists\n",
            "nnp {nnp}"
        );
        assert_eq!(agent.seen.lock().unwrap().len(), 3, "nnp {nnp}");
        let states = agent.states();
        assert_eq!(states.len(), 1, "one connection per listener: {states:?}");
        let s = &states[0];
        assert_eq!(s["ociVersion"], "1.2.1", "{s}");
        assert_eq!(s["fds"], json!(["seccompFd"]), "{s}");
        assert_eq!(s["metadata"], "brig-test-metadata", "{s}");
        assert!(s["pid"].as_i64().unwrap() > 1, "{s}");
        assert_eq!(s["state"]["pid"], s["pid"], "{s}");
        assert_eq!(s["state"]["id"], id, "{s}");
        assert_eq!(s["state"]["status"], "creating", "{s}");
        assert_eq!(
            s["state"]["bundle"],
            b.dir.canonicalize().unwrap().to_str().unwrap(),
            "{s}"
        );
    }
}

#[test]
fn exec_sends_its_own_listener_to_the_agent() {
    let mut b = Bundle::with_script("scmpnotifyexec", "sleep 1000");
    let agent = Agent::start(&b.dir, &[Answer::Error(libc::EXDEV)]);
    let profile = notify_mkdir(&agent.path, json!([]));
    b.edit(|c| {
        c["linux"]["seccomp"] = profile;
        c["root"]["readonly"] = json!(false);
    });
    let id = unique_id("scmpnotifyexec");
    ok(&b.brig(&["run", "-d", &id]));
    let init = b.state(&id).unwrap()["pid"].as_i64().unwrap();
    let out = b.brig(&["exec", &id, "sh", "-c", "mkdir /tmp/e 2>&1; echo rc=$?"]);
    assert_eq!(
        stdout(&out),
        "mkdir: can't create directory '/tmp/e': Invalid cross-device link\nrc=1\n",
        "{}",
        stderr(&out)
    );
    let states = agent.states();
    assert_eq!(states.len(), 2, "{states:?}");
    assert_eq!(states[0]["pid"], init);
    // The exec'd process's own listener, with the container's state.
    assert_ne!(states[1]["pid"], init, "{}", states[1]);
    assert_eq!(states[1]["state"]["pid"], init, "{}", states[1]);
    assert_eq!(states[1]["state"]["status"], "running", "{}", states[1]);
    ok(&b.brig(&["kill", &id, "KILL"]));
}

#[test]
fn a_missing_or_dead_agent_fails_create_and_leaves_nothing() {
    // Missing: no socket at listenerPath.
    let mut b = Bundle::with_script("scmpnoagent", "true");
    let missing = b.dir.join("no-agent.sock");
    let profile = notify_mkdir(&missing, json!([]));
    b.edit(|c| c["linux"]["seccomp"] = profile);
    let err = fails(&b.brig(&["create", &unique_id("scmpnoagent")]));
    assert!(
        err.contains(&format!(
            "failed to connect with seccomp agent at {}: no such file or directory",
            missing.display()
        )),
        "{err}"
    );
    assert!(b.containers().is_empty());
    assert!(b.leaked_mounts().is_empty());

    // Dead: the socket file is there, nobody listens on it.
    let dead = b.dir.join("dead-agent.sock");
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    let profile = notify_mkdir(&dead, json!([]));
    b.edit(|c| c["linux"]["seccomp"] = profile);
    let err = fails(&b.brig(&["create", &unique_id("scmpnoagent")]));
    assert!(err.contains("connection refused"), "{err}");
    assert!(b.containers().is_empty());
}

/// A busybox shell doing ordinary work: forks, execs, pipes, file io, signals.
const ORDINARY_WORK: &str = "set -e; echo hello > /tmp/f; cat /tmp/f | grep -q hello; \
    cp /tmp/f /tmp/g; mv /tmp/g /tmp/h; ln -s /tmp/h /tmp/l; [ \"$(cat /tmp/l)\" = hello ]; \
    mkdir -p /tmp/d/e; rmdir /tmp/d/e; chmod 600 /tmp/h; stat -c %a /tmp/h; \
    (sleep 0.1 & wait); sh -c 'exit 3' || echo sub=$?; ls /proc/self/fd >/dev/null; \
    find /etc -name passwd | head -1; seq 1 1000 | sort -rn | head -1; \
    date +%Y >/dev/null; id -u; trap 'echo trapped' USR1; kill -USR1 $$; \
    grep -E '^(Seccomp|Seccomp_filters|NoNewPrivs):' /proc/self/status";

#[test]
fn the_engines_default_profiles_run_a_shell_normally() {
    for (engine, filters) in [("podman", 4), ("containerd", 3)] {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/fixtures/seccomp/{engine}.json")),
        )
        .unwrap();
        let profile: Value = serde_json::from_str(&text).unwrap();
        for nnp in [false, true] {
            let mut b = Bundle::with_script("scmpengine", ORDINARY_WORK);
            b.edit(|c| {
                c["linux"]["seccomp"] = profile.clone();
                c["process"]["noNewPrivileges"] = json!(nnp);
                c["root"]["readonly"] = json!(false);
            });
            let out = ok(&b.run(&unique_id("scmpengine")));
            assert_eq!(
                out,
                format!(
                    "600\nsub=3\n/etc/passwd\n1000\n0\ntrapped\nNoNewPrivs:\t{}\n\
                     Seccomp:\t2\nSeccomp_filters:\t{filters}\n",
                    u8::from(nnp)
                ),
                "{engine} nnp {nnp}"
            );
        }
        // What the profile denies is denied: with CAP_SYS_ADMIN and its own UTS namespace the
        // container may set its hostname, but neither profile allows sethostname (podman
        // answers EPERM explicitly, containerd by its default).
        for with_profile in [false, true] {
            let mut b = Bundle::with_script("scmpengine", "hostname brig-x 2>&1; echo rc=$?");
            b.edit(|c| {
                if with_profile {
                    c["linux"]["seccomp"] = profile.clone();
                }
                for set in ["bounding", "effective", "permitted"] {
                    c["process"]["capabilities"][set] = json!(["CAP_SYS_ADMIN"]);
                }
            });
            let out = ok(&b.run(&unique_id("scmpengine")));
            let expect = if with_profile {
                "hostname: sethostname: Operation not permitted\nrc=1\n"
            } else {
                "rc=0\n"
            };
            assert_eq!(out, expect, "{engine}, profile {with_profile}");
        }
    }
}

/// Syscalls a runtime makes between installing the filter and execve: closing descriptors
/// (close_range, /proc/self/fd + fcntl), signal and identity resets, capability changes, the
/// exec FIFO and startContainer hooks, PATH lookup, memory (brk, munmap).
const RUNTIME_SYSCALLS: &[&str] = &[
    "close_range",
    "fcntl",
    "getdents64",
    "openat",
    "open",
    "close",
    "read",
    "write",
    "capget",
    "capset",
    "prctl",
    "rt_sigaction",
    "rt_sigprocmask",
    "umask",
    "personality",
    "chdir",
    "getcwd",
    "access",
    "faccessat",
    "faccessat2",
    "newfstatat",
    "statx",
    "stat",
    "lstat",
    "setresuid",
    "setresgid",
    "setgroups",
    "sendmsg",
    "recvmsg",
    "sendto",
    "recvfrom",
    "wait4",
    "clone",
    "clone3",
    "fork",
    "vfork",
    "kill",
    "dup2",
    "dup3",
    "pipe2",
    "setsid",
    "keyctl",
    "seccomp",
    "munmap",
    "madvise",
];

#[test]
fn a_profile_denying_every_runtime_syscall_but_execve_still_starts_the_program() {
    // The program (busybox `true`) needs none of these; brig may not need any after the
    // filter is in, with or without no_new_privs, as root or as a user whose capabilities
    // lack CAP_SYS_ADMIN (the filter then needs one brig keeps for it).
    for (nnp, uid) in [(false, 0), (true, 0), (false, 1000), (true, 1000)] {
        let mut b = with_profile(
            "scmplate",
            "",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": RUNTIME_SYSCALLS, "action": "SCMP_ACT_ERRNO"}
            ]}),
        );
        b.edit(|c| {
            c["process"]["args"] = json!(["true"]);
            c["process"]["noNewPrivileges"] = json!(nnp);
            c["process"]["user"] = json!({"uid": uid, "gid": uid});
        });
        let id = unique_id("scmplate");
        let out = b.run(&id);
        assert!(
            out.status.success(),
            "noNewPrivileges {nnp}, uid {uid}: {:?} {}",
            out.status,
            stderr(&out)
        );
        // `create` + `start` (the engines' path): the filter goes in after start's FIFO.
        let id = unique_id("scmplate");
        ok(&b.brig(&["create", &id]));
        ok(&b.brig(&["start", &id]));
        b.wait_status(&id, "stopped");
        ok(&b.brig(&["delete", &id]));
        // A process exec'd into a running container gets the profile the same way.
        b.edit(|c| c["process"]["args"] = json!(["sleep", "100"]));
        let id = unique_id("scmplate");
        ok(&b.brig(&["run", "-d", &id]));
        let user = format!("{uid}:{uid}");
        let out = b.brig(&["exec", "--user", &user, &id, "true"]);
        assert!(
            out.status.success(),
            "exec, noNewPrivileges {nnp}, uid {uid}: {:?} {}",
            out.status,
            stderr(&out)
        );
        ok(&b.brig(&["delete", "--force", &id]));
    }
}

#[test]
fn capabilities_are_exact_when_the_profile_needs_cap_sys_admin_to_go_in() {
    // Without no_new_privs brig keeps CAP_SYS_ADMIN permitted for seccomp(2) and drops it after;
    // the program must see the configured sets, whether or not the profile lets capset through.
    let caps = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let status_of = |profile: Option<Value>, uid: u32| {
        let mut b = Bundle::with_script("scmpcaps", "grep ^Cap /proc/self/status");
        b.edit(|c| {
            c["process"]["noNewPrivileges"] = json!(false);
            c["process"]["user"] = json!({"uid": uid, "gid": uid});
            c["process"]["capabilities"] = json!({"bounding": caps, "effective": caps,
                "permitted": caps, "inheritable": caps, "ambient": caps});
            if let Some(p) = profile {
                c["linux"]["seccomp"] = p;
            }
        });
        ok(&b.run(&unique_id("scmpcaps")))
    };
    let expected = "CapInh:\t0000000000000420\nCapPrm:\t0000000000000420\n\
                    CapEff:\t0000000000000420\nCapBnd:\t0000000000000420\n\
                    CapAmb:\t0000000000000420\n";
    for uid in [0, 1000] {
        assert_eq!(status_of(None, uid), expected, "uid {uid}, no profile");
        for denied in [json!(["capset", "close_range"]), json!(["close_range"])] {
            let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": denied, "action": "SCMP_ACT_ERRNO"}
            ]});
            assert_eq!(
                status_of(Some(profile), uid),
                expected,
                "uid {uid}, denied {denied}"
            );
        }
    }
}

/// A static i386 ELF, assembled here (no 32-bit toolchain needed): `mkdir("/tmp/i386dir",
/// 0755)` through `int 0x80`, then `exit(-result)`: 0 when made, the errno when refused.
fn i386_mkdir_binary() -> Vec<u8> {
    const BASE: u32 = 0x0804_8000;
    const CODE_AT: u32 = 52 + 32;
    let path_at = BASE + CODE_AT + 28;
    let mut code = vec![0xb8, 39, 0, 0, 0]; // mov eax, 39 (mkdir)
    code.push(0xbb); // mov ebx, path
    code.extend(path_at.to_le_bytes());
    code.extend([0xb9, 0xed, 0x01, 0, 0]); // mov ecx, 0755
    code.extend([0xcd, 0x80]); // int 0x80
    code.extend([0x89, 0xc3, 0xf7, 0xdb]); // mov ebx, eax; neg ebx
    code.extend([0xb8, 1, 0, 0, 0, 0xcd, 0x80]); // exit(ebx)
    assert_eq!(code.len(), 28);
    code.extend(b"/tmp/i386dir\0");
    let size = CODE_AT + code.len() as u32;
    let mut elf = vec![0x7f, b'E', b'L', b'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let u16s = |v: &mut Vec<u8>, xs: &[u16]| xs.iter().for_each(|x| v.extend(x.to_le_bytes()));
    let u32s = |v: &mut Vec<u8>, xs: &[u32]| xs.iter().for_each(|x| v.extend(x.to_le_bytes()));
    u16s(&mut elf, &[2, 3]); // ET_EXEC, EM_386
    u32s(&mut elf, &[1, BASE + CODE_AT, 52, 0, 0]); // version, entry, phoff, shoff, flags
    u16s(&mut elf, &[52, 32, 1, 0, 0, 0]); // ehsize, phentsize, phnum, sh*
    u32s(&mut elf, &[1, 0, BASE, BASE, size, size, 5, 0x1000]); // PT_LOAD, R+X
    elf.extend(code);
    elf
}

/// Escape 6 of issue 12: a deny-list profile must hold against 32-bit `int 0x80` calls: by the
/// i386 numbers when the profile lists SCMP_ARCH_X86, by killing the process when it does not
/// (libseccomp's bad-arch action, as runc); the engines' profiles still run 32-bit programs.
#[test]
fn i386_syscalls_cannot_bypass_the_profile() {
    use std::os::unix::fs::PermissionsExt;
    let deny = |archs: Value| {
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": archs, "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}
        ]})
    };
    let podman: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/seccomp/podman.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for (what, profile, expect) in [
        (
            "x86 listed",
            deny(json!([
                "SCMP_ARCH_X86_64",
                "SCMP_ARCH_X86",
                "SCMP_ARCH_X32"
            ])),
            "rc=1 absent",
        ),
        (
            "x86 not listed",
            deny(json!(["SCMP_ARCH_X86_64"])),
            "rc=159 absent",
        ),
        ("no architectures", deny(Value::Null), "rc=159 absent"),
        ("podman's default", podman, "rc=0 made"),
    ] {
        let mut b = with_profile(
            "scmpi386",
            "/mkdir32; echo rc=$? $([ -d /tmp/i386dir ] && echo made || echo absent)",
            profile,
        );
        b.edit(|c| c["root"]["readonly"] = json!(false));
        let bin = b.rootfs().join("mkdir32");
        std::fs::write(&bin, i386_mkdir_binary()).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = ok(&b.run(&unique_id("scmpi386")));
        assert!(out.contains(expect), "{what}: {out}");
    }
}
