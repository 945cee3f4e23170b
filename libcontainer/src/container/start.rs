//! `start`: release init from the exec FIFO so it execs the user program.

use std::path::Path;

use crate::error::{Error, Result};
use crate::hooks::{self, HookKind};
use crate::process::sync::{self, Started};
use crate::procfs::stat::process_alive;
use crate::sd_notify::Relay;
use crate::state::{ContainerDir, State, Status};

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
    let alive = || process_alive(state.pid, state.init_start_time);
    let started = sync::release_init(&fifo_path, state.pid, &alive)?;
    let _ = std::fs::remove_file(&fifo_path);
    if let Started::Failed(message) = started {
        // The program never ran; init has exited (or is about to).
        let _ = super::kill_all_and_wait(state, std::time::Duration::from_secs(10));
        return Err(Error::Init(message));
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
