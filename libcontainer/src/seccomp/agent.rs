//! The listener hand-off: the NOTIFY filter's listener goes to the seccomp agent at
//! `listenerPath` with the container process state (runtime-spec `seccomp.md`, "The container
//! process state"), oci-spec's `ContainerProcessState`.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::{ContainerProcessState, State, SECCOMP_FD_NAME};

use super::compile::Filters;
use crate::error::{Context, Error, Result};

/// The message for the agent: as runc sends it (Go's `omitempty`: no `metadata` when there is
/// none, no `annotations` when empty), the state without brig's own fields.
fn message(state: &[u8], pid: i32, metadata: Option<&String>) -> Result<Vec<u8>> {
    let mut state: State = serde_json::from_slice(state)
        .map_err(|e| Error::Other(format!("decode the container state: {e}")))?;
    if state.annotations().as_ref().is_some_and(|a| a.is_empty()) {
        state.set_annotations(None);
    }
    if state.pid().is_some_and(|p| p == 0) {
        state.set_pid(None);
    }
    let mut message = ContainerProcessState::default();
    message
        .set_version(state.version().clone())
        .set_fds(vec![SECCOMP_FD_NAME.to_string()])
        .set_pid(pid)
        .set_metadata(metadata.filter(|m| !m.is_empty()).cloned())
        .set_state(state);
    serde_json::to_vec(&message)
        .map_err(|e| Error::Other(format!("encode the container process state: {e}")))
}

/// Hand the NOTIFY listener `fd` of `filters` to the seccomp agent at `listenerPath`: one
/// connection, the container process state as JSON with the descriptor attached
/// (SCM_RIGHTS), then close. `state` is the container's state JSON, `pid` the process filtered.
pub fn send_to_agent(
    filters: Option<&Filters>,
    fd: &OwnedFd,
    pid: i32,
    state: &[u8],
) -> Result<()> {
    let listener = filters.and_then(|f| f.listener.as_ref()).ok_or_else(|| {
        Error::Other("a seccomp listener came from a process whose profile has none".into())
    })?;
    let data = message(state, pid, listener.metadata.as_ref())?;
    let path = &listener.path;
    let what = || {
        format!(
            "send the seccomp listener to the agent at {}",
            path.display()
        )
    };
    // runc's wording for an agent that is not there.
    let mut stream = UnixStream::connect(path)
        .ctx(|| format!("failed to connect with seccomp agent at {}", path.display()))?;
    let iov = [std::io::IoSlice::new(&data)];
    let fds = [fd.as_raw_fd()];
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .ctx(what)?;
    // A stream may take part of a long message: the rest follows without descriptors.
    stream.write_all(&data[sent..]).ctx(what)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes runc sends (Go's field order and omitempty): brig's extra state fields
    /// (rootfs, created, owner) stay out, empty metadata and annotations are omitted.
    #[test]
    fn the_agent_gets_the_container_process_state_as_runc_sends_it() {
        let state = br#"{"ociVersion":"1.2.1","id":"c1","status":"creating","pid":42,
            "bundle":"/b","rootfs":"/b/rootfs","created":"2026-01-01T00:00:00Z","owner":"",
            "annotations":{}}"#;
        let m = message(state, 42, None).unwrap();
        assert_eq!(
            String::from_utf8(m).unwrap(),
            r#"{"ociVersion":"1.2.1","fds":["seccompFd"],"pid":42,"state":{"ociVersion":"1.2.1","id":"c1","status":"creating","pid":42,"bundle":"/b"}}"#
        );
        let state = br#"{"ociVersion":"1.2.1","id":"c1","status":"running","pid":7,
            "bundle":"/b","annotations":{"a":"b"}}"#;
        let m = message(state, 9, Some(&"meta".to_string())).unwrap();
        assert_eq!(
            String::from_utf8(m).unwrap(),
            r#"{"ociVersion":"1.2.1","fds":["seccompFd"],"pid":9,"metadata":"meta","state":{"ociVersion":"1.2.1","id":"c1","status":"running","pid":7,"bundle":"/b","annotations":{"a":"b"}}}"#
        );
    }
}
