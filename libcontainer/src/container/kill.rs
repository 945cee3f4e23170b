//! `kill`: a signal to init, or with `all` to every process of the container.

use std::path::Path;

use super::{pidfd_of_init, send_signal, signal_all};
use crate::error::{Error, Result};
use crate::state::{self, Status};

pub fn kill(root: &Path, id: &str, signal: i32, all: bool) -> Result<()> {
    let state = state::load(root, id)?;
    let wrong = |status: Status| Error::WrongState {
        op: "kill",
        id: id.into(),
        status: status.to_string(),
    };
    if !matches!(
        state.status,
        Status::Created | Status::Running | Status::Paused
    ) {
        return Err(wrong(state.status));
    }
    let pidfd = pidfd_of_init(&state)?.ok_or_else(|| wrong(Status::Stopped))?;
    if all {
        return signal_all(&state, &pidfd, signal);
    }
    send_signal(&pidfd, state.pid, signal)
}
