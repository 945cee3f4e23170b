//! `kill`: a signal to init, or with `all` to every process of the container.

use std::path::Path;

use super::{container_pids, pidfd_of_init, send_signal};
use crate::error::{Error, Result};
use crate::state::{self, Status};

pub fn kill(root: &Path, id: &str, signal: i32, all: bool) -> Result<()> {
    let state = state::load(root, id)?;
    let wrong = || Error::WrongState {
        op: "kill",
        id: id.into(),
        status: Status::Stopped.to_string(),
    };
    if !matches!(state.status, Status::Created | Status::Running) {
        return Err(Error::WrongState {
            op: "kill",
            id: id.into(),
            status: state.status.to_string(),
        });
    }
    let pidfd = pidfd_of_init(&state)?.ok_or_else(wrong)?;
    if all {
        for pid in container_pids(&state)
            .into_iter()
            .filter(|p| *p != state.pid)
        {
            // SAFETY: kill with integer arguments only; a vanished pid is fine.
            unsafe { libc::kill(pid, signal) };
        }
    }
    send_signal(&pidfd, state.pid, signal)
}
