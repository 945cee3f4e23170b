//! `events`: runc's JSON event stream: statistics every interval (or once with `--stats`) and
//! `oom` when the kernel's OOM killer acts in the container.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::cgroups::stats;
use crate::error::{Context, Error, Result};
use crate::state::{self, Status};

/// Write events to `out` until the container stops (or once, with `once`).
pub fn events(
    root: &Path,
    id: &str,
    interval: Duration,
    once: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let state = state::load(root, id)?;
    if state.status == Status::Stopped {
        return Err(Error::WrongState {
            op: "get events of",
            id: id.into(),
            status: state.status.to_string(),
        });
    }
    if state.cgroup.hierarchies.is_empty() {
        return Err(Error::Other(format!(
            "container {id:?} has no cgroup to read statistics from"
        )));
    }
    let mut ooms = stats::oom_kills(&state.cgroup);
    loop {
        let line = json!({"type": "stats", "id": id, "data": stats::stats(&state.cgroup)});
        writeln!(out, "{line}").ctx(|| "write an event")?;
        out.flush().ctx(|| "write an event")?;
        if once {
            return Ok(());
        }
        // Check for OOM kills several times per interval, so they are reported promptly.
        let steps = (interval.as_millis() / 100).max(1);
        for _ in 0..steps {
            std::thread::sleep(interval / steps as u32);
            let now = stats::oom_kills(&state.cgroup);
            if now > ooms {
                writeln!(out, "{}", json!({"type": "oom", "id": id})).ctx(|| "write an event")?;
                out.flush().ctx(|| "write an event")?;
                ooms = now;
            }
            if state::load(root, id).map_or(true, |s| s.status == Status::Stopped) {
                return Ok(());
            }
        }
    }
}
