//! The parent↔init sync channel: a `SOCK_SEQPACKET` socketpair carrying small typed messages.
//! Errors in init travel here so the user reads what failed, not a bare exit status.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Parent → init: init is in its cgroup and its uid/gid maps are written: go on.
    Proceed,
    /// Init → parent: mounts are made, pivot_root is next: run prestart and createRuntime hooks.
    RunRuntimeHooks,
    /// Parent → init: those hooks succeeded.
    RuntimeHooksDone,
    /// Init → parent: the pty master of the container's terminal travels with this message.
    Console,
    /// Init → parent: set up and waiting for `start`.
    Ready,
    /// Init (or an exec'd process) → parent: the seccomp listener of the `SCMP_ACT_NOTIFY`
    /// rules travels with this message, for the parent to hand to the agent on the host.
    SeccompListener,
    /// Parent → init: the agent has the listener.
    SeccompListenerSent,
    /// Init → parent: setup failed; the text is the whole user-facing message.
    Error(String),
    /// Init → parent: a createContainer hook failed (poststop hooks must run).
    HookFailed(String),
    /// Child → parent: a log line for the parent's log (see `logging::forward_to_parent`);
    /// the receiving side logs it and reads on.
    Log { level: String, msg: String },
}

#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Largest message: an error text is short; anything longer is cut by the kernel and refused.
const MAX_MESSAGE: usize = 64 * 1024;

/// sendmsg with one descriptor attached.
pub fn send_fd(socket: RawFd, data: &[u8], fd: RawFd) -> nix::Result<()> {
    let iov = [std::io::IoSlice::new(data)];
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(socket, &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None).map(drop)
}

/// recvmsg that keeps a descriptor sent with the data (received close-on-exec).
pub fn recv_fd(socket: RawFd, buf: &mut [u8]) -> nix::Result<(usize, Option<OwnedFd>)> {
    let mut space = nix::cmsg_space!([RawFd; 1]);
    loop {
        let mut iov = [std::io::IoSliceMut::new(buf)];
        match recvmsg::<()>(
            socket,
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(msg) => {
                let mut fd = None;
                for cmsg in msg.cmsgs()? {
                    if let ControlMessageOwned::ScmRights(fds) = cmsg {
                        for raw in fds {
                            // SAFETY: the kernel installed this descriptor for us.
                            let owned =
                                unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
                            fd.get_or_insert(owned);
                        }
                    }
                }
                return Ok((msg.bytes, fd));
            }
        }
    }
}

/// Send a log line to the parent over the raw sync socket; a line that cannot go is dropped.
pub fn send_log(socket: RawFd, level: &str, msg: &str) {
    let message = Message::Log {
        level: level.to_string(),
        msg: msg.chars().take(MAX_MESSAGE / 2).collect(),
    };
    if let Ok(data) = serde_json::to_vec(&message) {
        let _ = send(socket, &data, MsgFlags::MSG_NOSIGNAL);
    }
}

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx(|| "create the init sync socket")?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, message: &Message) -> Result<()> {
        let data = serde_json::to_vec(message)
            .map_err(|e| Error::Other(format!("encode sync message: {e}")))?;
        send(self.fd.as_raw_fd(), &data, MsgFlags::MSG_NOSIGNAL)
            .ctx(|| "send on the init sync socket")?;
        Ok(())
    }

    /// The next message, or `None` when the other side closed (exited) without a word.
    pub fn recv(&self) -> Result<Option<Message>> {
        Ok(self.recv_with_fd()?.map(|(message, _)| message))
    }

    /// Send `message` with `fd` attached (SCM_RIGHTS).
    pub fn send_with_fd(&self, message: &Message, fd: RawFd) -> Result<()> {
        let data = serde_json::to_vec(message)
            .map_err(|e| Error::Other(format!("encode sync message: {e}")))?;
        send_fd(self.fd.as_raw_fd(), &data, fd).ctx(|| "send a descriptor on the init sync socket")
    }

    /// The next message and the descriptor that came with it, if any. Log lines from the
    /// child are logged here on the way.
    pub fn recv_with_fd(&self) -> Result<Option<(Message, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            let (n, fd) =
                recv_fd(self.fd.as_raw_fd(), &mut buf).ctx(|| "read the init sync socket")?;
            if n == 0 {
                return Ok(None);
            }
            match serde_json::from_slice(&buf[..n]) {
                Ok(Message::Log { level, msg }) => crate::logging::relay(&level, &msg),
                Ok(message) => return Ok(Some((message, fd))),
                Err(e) => {
                    return Err(Error::Other(format!(
                        "bad message on the init sync socket: {e}"
                    )))
                }
            }
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cross_and_eof_is_none() {
        let (a, b) = pair().unwrap();
        a.send(&Message::Error(
            "mount \"proc\" on \"/proc\": permission denied".into(),
        ))
        .unwrap();
        a.send(&Message::Ready).unwrap();
        assert_eq!(
            b.recv().unwrap(),
            Some(Message::Error(
                "mount \"proc\" on \"/proc\": permission denied".into()
            ))
        );
        assert_eq!(b.recv().unwrap(), Some(Message::Ready));
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }

    #[test]
    fn log_lines_are_consumed_on_the_way_to_the_next_message() {
        let (a, b) = pair().unwrap();
        send_log(a.raw_fd(), "debug", "child process in init()");
        a.send(&Message::Ready).unwrap();
        assert_eq!(b.recv().unwrap(), Some(Message::Ready));
        send_log(a.raw_fd(), "warn", "last words");
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }
}
