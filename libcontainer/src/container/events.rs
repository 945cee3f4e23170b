//! `events`: runc's JSON event stream: statistics every interval (or once with `--stats`) and
//! `oom` when the kernel's OOM killer acts in the container.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::cgroups;
use crate::error::{Context, Error, Result};
use crate::state::{self, Status};

/// One line of the stream, its members in runc's order (`type`, `id`, `data`): tools match
/// the line's beginning.
#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
}

fn write_event(out: &mut dyn Write, event: &Event<'_>) -> Result<()> {
    let line =
        serde_json::to_string(event).map_err(|e| Error::Other(format!("encode an event: {e}")))?;
    writeln!(out, "{line}").ctx(|| "write an event")?;
    out.flush().ctx(|| "write an event")
}

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
    let cgroup = cgroups::for_state(&state.cgroup);
    let mut ooms = cgroup.oom_kills();
    loop {
        write_event(
            out,
            &Event {
                kind: "stats",
                id,
                data: Some(cgroup.stats()),
            },
        )?;
        if once {
            return Ok(());
        }
        // Check for OOM kills several times per interval, so they are reported promptly.
        let steps = (interval.as_millis() / 100).clamp(1, u32::MAX.into());
        for _ in 0..steps {
            std::thread::sleep(interval / steps as u32);
            let now = cgroup.oom_kills();
            if now > ooms {
                write_event(
                    out,
                    &Event {
                        kind: "oom",
                        id,
                        data: None,
                    },
                )?;
                ooms = now;
            }
            if state::load(root, id).map_or(true, |s| s.status == Status::Stopped) {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_come_in_runcs_order() {
        let mut out = Vec::new();
        let data = Some(serde_json::json!({"pids": {"current": 1}}));
        write_event(
            &mut out,
            &Event {
                kind: "stats",
                id: "c1",
                data,
            },
        )
        .unwrap();
        write_event(
            &mut out,
            &Event {
                kind: "oom",
                id: "c1",
                data: None,
            },
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"type\":\"stats\",\"id\":\"c1\",\"data\":{\"pids\":{\"current\":1}}}\n\
             {\"type\":\"oom\",\"id\":\"c1\"}\n"
        );
    }
}
