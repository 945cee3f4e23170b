//! NOTIFY_SOCKET: a real container sends sd_notify datagrams through the socket brig gives it;
//! they reach the caller's socket, READY=1 with init's host pid, and `start` waits for READY.
//!
//! busybox has no unix-datagram client: the container borrows the host's /usr (perl-base is
//! essential on Debian, its Socket module speaks AF_UNIX) through read-only bind mounts.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use integration::*;
use serde_json::json;

/// The caller's notify socket (systemd's, in real life), removed on drop.
struct HostSocket {
    path: PathBuf,
    socket: UnixDatagram,
}

impl HostSocket {
    fn new(name: &str) -> HostSocket {
        let path = std::env::temp_dir().join(format!("brig-{}.sock", unique_id(name)));
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        HostSocket { path, socket }
    }

    fn recv(&self) -> String {
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).expect("no notification arrived");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Nothing is waiting.
    fn empty(&self) -> bool {
        self.socket.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 4096];
        let empty = self.socket.recv(&mut buf).is_err();
        self.socket.set_nonblocking(false).unwrap();
        empty
    }
}

impl Drop for HostSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A bundle whose `/bin/sd-notify MESSAGE` sends one datagram to $NOTIFY_SOCKET.
fn notify_bundle(name: &str, script: &str) -> Bundle {
    let mut b = Bundle::new(name);
    b.set_args(&["/bin/sh", "-c", script]);
    b.add_script(
        "/bin/sd-notify",
        "#!/bin/sh\nexec /usr/bin/perl -MSocket -e 'socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die \"socket: $!\"; \
         send($s, $ARGV[0], 0, pack_sockaddr_un($ENV{NOTIFY_SOCKET})) or die \"send to $ENV{NOTIFY_SOCKET}: $!\"' \"$1\"\n",
    );
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        for dir in ["/usr", "/lib", "/lib64"] {
            if Path::new(dir).exists() {
                mounts.push(json!({"destination": dir, "type": "bind", "source": dir,
                                   "options": ["rbind", "ro"]}));
            }
        }
    });
    b
}

#[test]
fn start_waits_for_ready_and_passes_it_on_with_init_pid() {
    let host = HostSocket::new("notify");
    let b = notify_bundle(
        "notify",
        "[ -S \"$NOTIFY_SOCKET\" ] && sd-notify \"STATUS=starting, socket $NOTIFY_SOCKET\"; \
         while [ ! -e /go ]; do sleep 0.05; done; \
         sd-notify \"$(printf 'MAINPID=1\\nSTATUS=up\\nREADY=1')\"; sleep 1000",
    );
    let id = unique_id("notify");
    ok(&output_via_files(
        b.command(&["create", &id]).env("NOTIFY_SOCKET", &host.path),
        &b.dir,
    ));
    let pid = b.state(&id).unwrap()["pid"].as_i64().unwrap();

    let mut start = b
        .command(&["start", &id])
        .env("NOTIFY_SOCKET", &host.path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Messages before READY are passed on while start waits.
    assert_eq!(
        host.recv(),
        "STATUS=starting, socket /run/notify/notify.sock\n"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        start.try_wait().unwrap().is_none(),
        "start returned before READY=1"
    );
    assert_eq!(b.status(&id).unwrap(), "running");

    std::fs::write(b.rootfs().join("go"), "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = start.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "start never returned after READY=1"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    // The container's own MAINPID means nothing here: init's host pid replaces it.
    assert_eq!(host.recv(), format!("MAINPID={pid}\nSTATUS=up\nREADY=1\n"));
    assert_eq!(b.status(&id).unwrap(), "running");

    ok(&b.brig(&["delete", "--force", &id]));
    assert!(b.containers().is_empty());
}

#[test]
fn start_returns_when_the_container_exits_without_ready() {
    let host = HostSocket::new("notready");
    let b = notify_bundle("notready", "sleep 0.3");
    let id = unique_id("notready");
    ok(&output_via_files(
        b.command(&["create", &id]).env("NOTIFY_SOCKET", &host.path),
        &b.dir,
    ));
    let begun = Instant::now();
    ok(&b.brig(&["start", &id]));
    assert!(begun.elapsed() >= Duration::from_millis(250));
    assert!(host.empty());
    b.wait_status(&id, "stopped");
    ok(&b.brig(&["delete", &id]));
    assert!(b.containers().is_empty());
}

#[test]
fn foreground_run_keeps_relaying_until_the_container_exits() {
    let host = HostSocket::new("notifyrun");
    let b = notify_bundle(
        "notifyrun",
        "sd-notify READY=1; sleep 0.2; sd-notify WATCHDOG=1; sd-notify STOPPING=1; exit 3",
    );
    let id = unique_id("notifyrun");
    let out = output_via_files(
        b.command(&["run", &id])
            .env("NOTIFY_SOCKET", &host.path)
            .stdin(Stdio::null()),
        &b.dir,
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let ready = host.recv();
    assert!(
        ready.starts_with("MAINPID=") && ready.ends_with("\nREADY=1\n"),
        "{ready}"
    );
    assert_eq!(host.recv(), "WATCHDOG=1\n");
    assert_eq!(host.recv(), "STOPPING=1\n");
    assert!(b.containers().is_empty());
}

#[test]
fn a_notify_socket_that_is_not_a_socket_address_is_refused() {
    let b = Bundle::new("badnotify");
    for bad in ["run/notify", "@"] {
        let id = unique_id("badnotify");
        let err = fails(&output_via_files(
            b.command(&["create", &id]).env("NOTIFY_SOCKET", bad),
            &b.dir,
        ));
        assert!(err.contains("NOTIFY_SOCKET"), "{bad}: {err}");
        assert!(b.containers().is_empty());
    }
}

#[test]
fn without_notify_socket_the_container_gets_none() {
    let b = Bundle::with_script(
        "nonotify",
        "echo \"[${NOTIFY_SOCKET:-}]\"; [ -e /run/notify ] || echo no-dir",
    );
    let out = ok(&output_via_files(
        b.command(&["run", &unique_id("nonotify")])
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null()),
        &b.dir,
    ));
    assert_eq!(out, "[]\nno-dir\n");
}

#[test]
fn a_container_in_a_user_namespace_can_notify_too() {
    let host = HostSocket::new("notifyuserns");
    let mut b = notify_bundle("notifyuserns", "sd-notify READY=1; id -u");
    b.add_user_namespace(100000, 100000);
    b.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    // As engines do for a user namespace: the rootfs belongs to the container's root.
    let chown = std::process::Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(chown.success());
    let out = ok(&output_via_files(
        b.command(&["run", &unique_id("notifyuserns")])
            .env("NOTIFY_SOCKET", &host.path)
            .stdin(Stdio::null()),
        &b.dir,
    ));
    assert_eq!(out, "1000\n");
    assert!(host.recv().ends_with("\nREADY=1\n"));
}
