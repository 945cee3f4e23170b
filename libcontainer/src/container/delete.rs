//! `delete`: remove a stopped container; with `force`, kill it first whatever its state.

use std::path::Path;
use std::time::Duration;

use super::kill_all_and_wait;
use crate::cgroups;
use crate::error::{Error, Result};
use crate::hooks::{self, HookKind};
use crate::state::{ContainerDir, Status};

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let dir = match ContainerDir::open(root, id) {
        // Engines delete --force twice; the second must succeed.
        Err(Error::NotFound(_)) if force => return Ok(()),
        other => other?,
    };
    let loaded = dir.load()?;
    match &loaded {
        // A create that died before writing state: only debris is left.
        None if force => {}
        None => {
            return Err(Error::WrongState {
                op: "delete",
                id: id.into(),
                status: Status::Creating.to_string(),
            })
        }
        Some(state) => match state.status {
            Status::Stopped => {}
            _ if force => {
                if state.pid > 0 {
                    kill_all_and_wait(state, Duration::from_secs(10))?;
                }
            }
            status => {
                return Err(Error::WrongState {
                    op: "delete",
                    id: id.into(),
                    status: status.to_string(),
                })
            }
        },
    }
    match &loaded {
        Some(state) => {
            cgroups::for_state(&state.cgroup).destroy()?;
            if let Some(group) = &state.intel_rdt {
                crate::intel_rdt::remove(group);
            }
        }
        // A create killed before its first state write: the cgroup it recorded before making
        // it (init, if it was cloned, is in it and dies with it).
        None => {
            if let Some(cgroup) = dir.load_cgroup_intent()? {
                cgroups::for_state(&cgroup).destroy()?;
            }
        }
    }
    dir.remove()?;
    if let Some(state) = loaded {
        let input = state.hook_input(Status::Stopped, 0);
        hooks::run_all_warn(&state.config, HookKind::Poststop, &input);
    }
    Ok(())
}
