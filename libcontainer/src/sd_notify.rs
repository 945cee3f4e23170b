//! `NOTIFY_SOCKET` (systemd's sd_notify) through the container, as runc does it.
//!
//! When `create` runs with `NOTIFY_SOCKET` set, the container gets a directory of the state dir
//! bind-mounted at `/run/notify` and `NOTIFY_SOCKET=/run/notify/notify.sock` in its env, and
//! the host socket is kept in the state. `start` binds that socket before it releases init and,
//! once the program runs, waits until the container says `READY=1`: it passes what the
//! container sent on to the host socket, with `MAINPID=` set to init's host pid (the container
//! cannot name itself in the host's pid namespace), then returns. A foreground `run` keeps
//! relaying (`WATCHDOG=1`, `STATUS=`, `STOPPING=1`…) until the container exits.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Mount, Spec};

use crate::error::{Context, Error, Result};

/// The directory in the container's state directory that the container sees.
const DIR: &str = "notify";
const SOCKET: &str = "notify.sock";
/// Where the container finds it (runc's path, which images and tools expect).
pub const CONTAINER_DIR: &str = "/run/notify";
pub const CONTAINER_SOCKET: &str = "/run/notify/notify.sock";
/// A notification datagram is a few short lines; systemd reads no more than this either.
const MAX_MESSAGE: usize = 4096;

/// Check the host's `NOTIFY_SOCKET`: a path or an abstract name (`@…`) that fits a sockaddr.
pub fn validate_host(host: &str) -> Result<()> {
    let valid = if let Some(name) = host.strip_prefix('@') {
        !name.is_empty() && name.len() < 108
    } else {
        host.starts_with('/') && host.len() < 108
    };
    if valid {
        Ok(())
    } else {
        Err(Error::config(
            "NOTIFY_SOCKET",
            format!("{host:?} is neither an absolute socket path nor an abstract name (@name) of at most 107 bytes"),
        ))
    }
}

/// Give the container the notify directory at `/run/notify` (read-only: the socket takes
/// datagrams all the same) and point its `NOTIFY_SOCKET` there.
pub fn setup_spec(spec: &mut Spec, state_dir: &Path) -> Result<()> {
    let source = std::path::absolute(state_dir.join(DIR))
        .ctx(|| format!("resolve {}", state_dir.display()))?;
    let mut mount = Mount::default();
    mount.set_destination(PathBuf::from(CONTAINER_DIR));
    mount.set_typ(Some("bind".into()));
    mount.set_source(Some(source));
    mount.set_options(Some(
        ["bind", "nosuid", "noexec", "nodev", "ro"]
            .map(String::from)
            .to_vec(),
    ));
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(mount);
    spec.set_mounts(Some(mounts));
    if let Some(process) = spec.process_mut() {
        let mut env = process.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
        env.push(format!("NOTIFY_SOCKET={CONTAINER_SOCKET}"));
        process.set_env(Some(env));
    }
    Ok(())
}

/// Make the directory the container's `/run/notify` shows (empty until `start` binds).
pub fn make_dir(state_dir: &Path) -> Result<()> {
    let dir = state_dir.join(DIR);
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&dir)
        .ctx(|| format!("create {}", dir.display()))
}

/// The container's side of the relay, bound by `start` before init is released.
#[derive(Debug)]
pub struct Relay {
    socket: UnixDatagram,
    host: String,
}

impl Relay {
    pub fn bind(state_dir: &Path, host: &str) -> Result<Relay> {
        let dir = state_dir.join(DIR);
        let path = dir.join(SOCKET);
        // A start that failed earlier may have left the file.
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).ctx(|| format!("remove {}", path.display()))
            }
            _ => {}
        }
        // Bound through /proc/self/fd: a state root can make the full path longer than a
        // sockaddr_un holds.
        let dir_fd: OwnedFd = nix::fcntl::open(
            &dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("open {}", dir.display()))?;
        let short = format!("/proc/self/fd/{}/{SOCKET}", dir_fd.as_raw_fd());
        let socket = UnixDatagram::bind(&short).ctx(|| format!("bind {}", path.display()))?;
        // Any user of the container may notify, as with systemd's own socket.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
            .ctx(|| format!("chmod {}", path.display()))?;
        Ok(Relay {
            socket,
            host: host.to_string(),
        })
    }

    /// Pass the container's notifications on until one says READY (with `keep_going`: until
    /// init exits). Returns whether READY was passed on; `init` is a pidfd of the container's
    /// init, `pid` its host pid.
    pub fn relay(&self, init: &OwnedFd, pid: i32, keep_going: bool) -> Result<bool> {
        let mut ready = false;
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            let mut fds = [
                PollFd::new(self.socket.as_fd(), PollFlags::POLLIN),
                PollFd::new(init.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).ctx(|| "wait for the container's notifications"),
            }
            let message = fds[0].any().unwrap_or(false);
            let exited = fds[1].any().unwrap_or(false);
            if message {
                let n = match self.socket.recv(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e).ctx(|| "read the container's notify socket"),
                };
                let (out, says_ready) = for_host(&buf[..n], pid, ready);
                if !out.is_empty() {
                    self.send_host(&out)?;
                }
                ready |= says_ready;
                if ready && !keep_going {
                    return Ok(true);
                }
                // A message waiting is read before init's exit is looked at: nothing is lost.
                continue;
            }
            if exited {
                return Ok(ready);
            }
        }
    }

    fn send_host(&self, data: &[u8]) -> Result<()> {
        let client = UnixDatagram::unbound().ctx(|| "create a socket for NOTIFY_SOCKET")?;
        let sent = match self.host.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|addr| client.send_to_addr(data, &addr)),
            None => client.send_to(data, &self.host),
        };
        sent.map(drop)
            .ctx(|| format!("send to NOTIFY_SOCKET {}", self.host))
    }
}

/// What goes to the host for a datagram from the container, and whether it says READY=1. The
/// container's own `MAINPID=` means nothing on the host: the first READY carries init's.
fn for_host(message: &[u8], pid: i32, already_ready: bool) -> (Vec<u8>, bool) {
    let text = String::from_utf8_lossy(message);
    let lines: Vec<&str> = text
        .split('\n')
        .filter(|l| !l.is_empty() && !l.starts_with("MAINPID="))
        .collect();
    let ready = lines.contains(&"READY=1");
    let mut out = String::new();
    if ready && !already_ready {
        out.push_str(&format!("MAINPID={pid}\n"));
    }
    for line in &lines {
        out.push_str(line);
        out.push('\n');
    }
    (out.into_bytes(), ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_gets_init_pid_and_loses_the_containers() {
        let (out, ready) = for_host(b"STATUS=up\nMAINPID=1\nREADY=1", 4242, false);
        assert!(ready);
        assert_eq!(out, b"MAINPID=4242\nSTATUS=up\nREADY=1\n");
        let (out, ready) = for_host(b"STATUS=loading", 4242, false);
        assert!(!ready);
        assert_eq!(out, b"STATUS=loading\n");
        // After READY, later messages pass as they are.
        let (out, _) = for_host(b"WATCHDOG=1\n", 4242, true);
        assert_eq!(out, b"WATCHDOG=1\n");
        let (out, _) = for_host(b"READY=1", 4242, true);
        assert_eq!(out, b"READY=1\n");
        // READY=0 or a prefix is not READY.
        assert!(!for_host(b"READY=0", 1, false).1);
        assert!(!for_host(b"NOTREADY=1", 1, false).1);
        assert!(for_host(b"MAINPID=7", 1, false).0.is_empty());
    }

    #[test]
    fn host_sockets() {
        validate_host("/run/systemd/notify").unwrap();
        validate_host("@/org/freedesktop/systemd1/notify/1").unwrap();
        for bad in ["", "@", "run/notify", &format!("/{}", "a".repeat(120))] {
            let err = validate_host(bad).unwrap_err().to_string();
            assert!(err.contains("NOTIFY_SOCKET"), "{bad}: {err}");
        }
    }

    #[test]
    fn spec_gets_the_mount_and_env() {
        let mut spec = Spec::default();
        let mut process = spec.process().clone().unwrap_or_default();
        process.set_env(Some(vec![
            "PATH=/bin".into(),
            "NOTIFY_SOCKET=/elsewhere".into(),
        ]));
        spec.set_process(Some(process));
        setup_spec(&mut spec, Path::new("/run/brig/c1")).unwrap();
        let env = spec.process().as_ref().unwrap().env().clone().unwrap();
        assert_eq!(env, ["PATH=/bin", "NOTIFY_SOCKET=/run/notify/notify.sock"]);
        let mount = spec.mounts().as_ref().unwrap().last().unwrap().clone();
        assert_eq!(mount.destination(), Path::new("/run/notify"));
        assert_eq!(
            mount.source().as_deref(),
            Some(Path::new("/run/brig/c1/notify"))
        );
        assert!(mount.options().as_ref().unwrap().contains(&"ro".into()));
    }

    /// The relay against real sockets: a "container" sends, the host socket receives.
    #[test]
    fn relay_passes_ready_and_stops_at_init_exit() {
        let dir = std::env::temp_dir().join(format!(
            "brig-notify-{}-{}",
            std::process::id(),
            "a".repeat(70)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        make_dir(&dir).unwrap();
        // The state dir is too long for a sockaddr_un path: the relay must not care.
        let host_path = std::env::temp_dir().join(format!("brig-nh-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&host_path);
        let host = UnixDatagram::bind(&host_path).unwrap();
        let relay = Relay::bind(&dir, host_path.to_str().unwrap()).unwrap();
        let mode = std::fs::metadata(dir.join(DIR).join(SOCKET))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o777);

        let mut child = std::process::Command::new("sleep")
            .arg("0.3")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let pidfd = crate::sys::pidfd::pidfd_open(pid).unwrap();
        let container = UnixDatagram::unbound().unwrap();
        let notify_dir = std::fs::File::open(dir.join(DIR)).unwrap();
        let sock = format!("/proc/self/fd/{}/{SOCKET}", notify_dir.as_raw_fd());
        container.send_to(b"STATUS=starting", &sock).unwrap();
        container.send_to(b"READY=1\nSTATUS=up", &sock).unwrap();
        assert!(relay.relay(&pidfd, pid, false).unwrap());
        let mut buf = [0u8; 256];
        let n = host.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STATUS=starting\n");
        let n = host.recv(&mut buf).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&buf[..n]),
            format!("MAINPID={pid}\nREADY=1\nSTATUS=up\n")
        );
        // Never ready: the relay ends when init does.
        assert!(!relay.relay(&pidfd, pid, true).unwrap());
        child.wait().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_file(&host_path).unwrap();
    }
}
