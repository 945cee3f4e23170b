//! `kill`: a signal to init, or with `all` to every process of the container.

use std::path::Path;

use super::{pidfd_of_init, send_signal, signal_all};
use crate::cgroups;
use crate::error::{Error, Result};
use crate::state::{self, Status};

/// runc's words for a signal to a container whose init is gone; containerd's shim matches
/// them to know the process already finished.
pub const NOT_RUNNING: &str = "container not running";

pub fn kill(root: &Path, id: &str, signal: i32, all: bool) -> Result<()> {
    let state = state::load(root, id)?;
    let not_running = || Error::Other(format!("kill container {id:?}: {NOT_RUNNING}"));
    let init = match state.status {
        Status::Created | Status::Running | Status::Paused => pidfd_of_init(&state)?,
        Status::Creating => {
            return Err(Error::WrongState {
                op: "kill",
                id: id.into(),
                status: state.status.to_string(),
            })
        }
        Status::Stopped => None,
    };
    match (init, all) {
        (Some(pidfd), true) => signal_all(&state, &pidfd, signal),
        (Some(pidfd), false) => send_signal(&pidfd, state.pid, signal),
        // As runc: `--all` on a stopped container signals whatever is left in its cgroup
        // (processes that outlived init when the pid namespace is shared) and succeeds.
        (None, true) => {
            let cgroup = cgroups::for_state(&state.cgroup);
            if cgroup.owned() {
                for pid in cgroup.pids().unwrap_or_default() {
                    // A vanished pid is fine.
                    let _ = crate::sys::signal::kill(pid, signal);
                }
            }
            Ok(())
        }
        (None, false) => Err(not_running()),
    }
}
