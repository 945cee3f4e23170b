//! `pause` and `resume`: freeze and thaw the container's cgroup.

use std::path::Path;

use crate::cgroups;
use crate::error::{Error, Result};
use crate::state::{ContainerDir, Status};

pub fn pause(root: &Path, id: &str) -> Result<()> {
    set_paused(root, id, true)
}

pub fn resume(root: &Path, id: &str) -> Result<()> {
    set_paused(root, id, false)
}

fn set_paused(root: &Path, id: &str, paused: bool) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let mut state = dir.load()?.ok_or_else(|| Error::NotFound(id.into()))?;
    let (op, from, to) = if paused {
        ("pause", Status::Running, Status::Paused)
    } else {
        ("resume", Status::Paused, Status::Running)
    };
    // runc also pauses a created container; its init is parked, freezing it is harmless.
    let allowed = state.status == from || (paused && state.status == Status::Created);
    if !allowed {
        return Err(Error::WrongState {
            op,
            id: id.into(),
            status: state.status.to_string(),
        });
    }
    if !cgroups::for_state(&state.cgroup).can_freeze() {
        return Err(Error::Other(format!(
            "cannot {op} container {id:?}: it has no freezer cgroup"
        )));
    }
    cgroups::for_state(&state.cgroup).freeze(paused)?;
    state.status = if state.status == Status::Created && paused {
        Status::Paused
    } else {
        to
    };
    dir.save(&state)
}
