//! Terminals: a foreground run proxies the container's pty; create hands the pty master to
//! the engine's console socket (SCM_RIGHTS), as containerd and conmon expect.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use integration::*;
use serde_json::json;

fn with_terminal(name: &str, script: &str) -> Bundle {
    let mut b = Bundle::with_script(name, script);
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 30, "width": 100});
    });
    b
}

#[test]
fn foreground_run_proxies_the_terminal() {
    let b = with_terminal("ttyrun", "tty; stty size; readlink /proc/self/fd/0; exit 3");
    let out = b.run(&unique_id("ttyrun"));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let text = stdout(&out).replace("\r\n", "\n");
    assert_eq!(text, "/dev/pts/0\n30 100\n/dev/pts/0\n");
}

/// Receive one descriptor (SCM_RIGHTS) from `stream`.
fn recv_fd(stream: &UnixStream) -> OwnedFd {
    let mut buf = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u8; 64];
    // SAFETY: a zeroed msghdr is a valid empty one; we point it at live buffers below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len();
    // SAFETY: recvmsg writes into the buffers msg points at, which outlive the call.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, 0) };
    assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
    // SAFETY: msg was filled by recvmsg; the first header, if any, lies within `control`.
    let header = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    assert!(!header.is_null(), "no descriptor came with the message");
    // SAFETY: an SCM_RIGHTS header carries at least one int.
    unsafe { OwnedFd::from_raw_fd(*(libc::CMSG_DATA(header) as *const i32)) }
}

/// Listen on `socket` and hand back the first descriptor sent to it.
fn console_receiver(socket: &std::path::Path) -> std::thread::JoinHandle<OwnedFd> {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        recv_fd(&stream)
    })
}

/// Everything the pty gives until it reads EIO (every slave closed: the process exited).
fn read_until_closed(master: OwnedFd) -> String {
    let mut file = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = file.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn create_sends_the_pty_master_to_the_console_socket() {
    let mut b = with_terminal("ttysock", "tty; echo hello from the pty; stty size");
    b.set_args(&["sh", "-c", "tty; echo hello from the pty; stty size"]);
    let socket = b.dir.join("console.sock");
    let receiver = console_receiver(&socket);
    let id = unique_id("ttysock");
    ok(&b.brig(&["create", "--console-socket", socket.to_str().unwrap(), &id]));
    let master = receiver.join().unwrap();
    ok(&b.brig(&["start", &id]));
    let text = read_until_closed(master).replace("\r\n", "\n");
    assert_eq!(text, "/dev/pts/0\nhello from the pty\n30 100\n");
    b.wait_status(&id, "stopped");
    ok(&b.brig(&["delete", &id]));
}

#[test]
fn terminal_flags_must_match_the_config() {
    let b = with_terminal("ttyneeds", "true");
    let err = fails(&b.brig(&["create", &unique_id("ttyneeds")]));
    assert!(
        err.contains("--console-socket: missing: process.terminal needs one"),
        "{err}"
    );
    let b = Bundle::with_script("ttynot", "true");
    let err = fails(&b.brig(&[
        "create",
        "--console-socket",
        "/nonexistent.sock",
        &unique_id("ttynot"),
    ]));
    assert!(
        err.contains("--console-socket: is only for a container with process.terminal true"),
        "{err}"
    );
    let b = with_terminal("ttybadsock", "true");
    let id = unique_id("ttybadsock");
    let err = fails(&b.brig(&[
        "create",
        "--console-socket",
        b.dir.join("missing.sock").to_str().unwrap(),
        &id,
    ]));
    assert!(err.contains("connect to console socket"), "{err}");
    assert!(b.containers().is_empty());
}

#[test]
fn exec_with_a_terminal() {
    let mut b = Bundle::new("exectty");
    b.set_args(&["sleep", "1000"]);
    let id = unique_id("exectty");
    ok(&b.brig(&["run", "-d", &id]));
    // Foreground: brig proxies the pty.
    let out = b.brig(&["exec", "--tty", &id, "sh", "-c", "tty; exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("/dev/pts/"), "{}", stdout(&out));
    // Detached: the engine gets the master on its console socket.
    let socket = b.dir.join("exec.sock");
    let receiver = console_receiver(&socket);
    ok(&b.brig(&[
        "exec",
        "--tty",
        "--detach",
        "--console-socket",
        socket.to_str().unwrap(),
        &id,
        "sh",
        "-c",
        "echo via socket",
    ]));
    assert_eq!(
        read_until_closed(receiver.join().unwrap()),
        "via socket\r\n"
    );
    let err = fails(&b.brig(&["exec", "--tty", "--detach", &id, "true"]));
    assert!(
        err.contains("--console-socket: missing: a detached exec"),
        "{err}"
    );
}

/// The pid a pidfd refers to, from /proc/self/fdinfo.
fn pidfd_pid(fd: &OwnedFd) -> i64 {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn pidfd_socket_receives_pidfds_of_init_and_of_an_exec() {
    let mut b = Bundle::new("pidfd");
    b.set_args(&["sleep", "1000"]);
    let id = unique_id("pidfd");
    let socket = b.dir.join("pidfd.sock");
    let receiver = console_receiver(&socket);
    ok(&b.brig(&["create", "--pidfd-socket", socket.to_str().unwrap(), &id]));
    let init = receiver.join().unwrap();
    assert_eq!(
        pidfd_pid(&init),
        b.state(&id).unwrap()["pid"].as_i64().unwrap()
    );
    ok(&b.brig(&["start", &id]));

    std::fs::remove_file(&socket).unwrap();
    let receiver = console_receiver(&socket);
    let pid_file = b.dir.join("exec.pid");
    ok(&b.brig(&[
        "exec",
        "--detach",
        "--pidfd-socket",
        socket.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sleep",
        "900",
    ]));
    let exec = receiver.join().unwrap();
    let exec_pid: i64 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert_eq!(pidfd_pid(&exec), exec_pid);
    // A pidfd can signal the process it names.
    // SAFETY: pidfd_send_signal with a descriptor we own and no siginfo.
    let sent =
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, exec.as_raw_fd(), 9, 0usize, 0) };
    assert_eq!(sent, 0);

    // Nobody listening: create fails and leaves nothing.
    std::fs::remove_file(&socket).unwrap();
    let err = fails(&b.brig(&[
        "create",
        "--pidfd-socket",
        socket.to_str().unwrap(),
        &unique_id("pidfd2"),
    ]));
    assert!(
        err.contains("connect to pidfd socket") && err.contains("pidfd.sock"),
        "{err}"
    );
    ok(&b.brig(&["delete", "--force", &id]));
    assert_eq!(b.containers(), Vec::<String>::new());
}
