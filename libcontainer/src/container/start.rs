//! `start`: release init from the exec FIFO so it execs the user program.

use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use crate::error::{Context, Error, Result};
use crate::hooks::{self, HookKind};
use crate::notify::Relay;
use crate::state::{ContainerDir, State, Status};
use crate::utils::process_alive;

pub fn start(root: &Path, id: &str) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let mut state = dir.load()?.ok_or_else(|| Error::NotFound(id.into()))?;
    let relay = start_locked(&dir, &mut state)?;
    // Unlocked while we wait for READY: kill, state and delete must work meanwhile.
    drop(dir);
    relay_notifications(relay, &state, false)
}

/// With `NOTIFY_SOCKET`: pass the container's notifications on until READY=1 (with
/// `keep_going`, until init exits).
pub(crate) fn relay_notifications(
    relay: Option<Relay>,
    state: &State,
    keep_going: bool,
) -> Result<()> {
    let Some(relay) = relay else { return Ok(()) };
    let Some(init) = super::pidfd_of_init(state)? else {
        return Ok(());
    };
    if !relay.relay(&init, state.pid, keep_going)? {
        tracing::warn!(
            "container {} exited before it sent READY=1 to NOTIFY_SOCKET",
            state.id
        );
    }
    Ok(())
}

/// Release init; the notify relay (bound before init runs) when the container has one.
pub(crate) fn start_locked(dir: &ContainerDir, state: &mut State) -> Result<Option<Relay>> {
    if state.status != Status::Created {
        return Err(Error::WrongState {
            op: "start",
            id: state.id.clone(),
            status: state.status.to_string(),
        });
    }
    let relay = match &state.notify_socket {
        Some(host) => Some(Relay::bind(&dir.path, host)?),
        None => None,
    };
    let fifo_path = dir.fifo_path();
    // Non-blocking: a dead init must give an error, not a hang.
    let fifo = nix::fcntl::open(
        &fifo_path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", fifo_path.display()))?;
    // Init writes one byte when released, then anything that went wrong before its exec (a
    // startContainer hook, exec itself); the FIFO closes when exec succeeds or init dies.
    let mut received = Vec::new();
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e).ctx(|| "wait for init on the exec fifo"),
        }
        let mut buf = [0u8; 4096];
        match nix::unistd::read(&fifo, &mut buf) {
            Ok(0) if !received.is_empty() => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e).ctx(|| "read the exec fifo"),
        }
        if received.is_empty() && !process_alive(state.pid, state.init_start_time) {
            return Err(Error::Init(format!(
                "container init {} exited before start",
                state.pid
            )));
        }
    }
    let _ = std::fs::remove_file(&fifo_path);
    if received.len() > 1 {
        // The program never ran; init has exited (or is about to).
        let _ = super::kill_all_and_wait(state, std::time::Duration::from_secs(10));
        return Err(Error::Init(
            String::from_utf8_lossy(&received[1..]).into_owned(),
        ));
    }
    state.status = Status::Running;
    dir.save(state)?;
    let input = state.hook_input(Status::Running, state.pid);
    if let Err(err) = hooks::run_all(&state.config, HookKind::Poststart, &input) {
        // 1.3: a failing poststart hook is an error of start, and the container is stopped.
        let _ = super::kill_all_and_wait(state, std::time::Duration::from_secs(10));
        return Err(err);
    }
    Ok(relay)
}
