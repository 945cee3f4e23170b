//! Every exchange between brig's processes during create, start, run and exec: the messages,
//! their encoding, who waits for what. Callers say what they do; this module says how the
//! processes talk.
//!
//! Three mechanisms, each with one owner here:
//! - the **sync socket** (a `SOCK_SEQPACKET` socketpair, JSON messages, descriptors by
//!   SCM_RIGHTS) between `create`/`exec` and the child it cloned ([`ParentEnd`], [`ChildEnd`]);
//!   [`ToChild`] is all the parent says, [`FromChild`] all the child says; the child's log
//!   lines ride on it too ([`forward_logs_to_parent`]);
//! - the **launcher socket**, the same kind of pair, from the short-lived process that clones
//!   init inside a joined user namespace ([`launcher_pair`], [`FromLauncher`]);
//! - the **exec FIFO** `<root>/<id>/exec.fifo`: `start` is another brig process that has only
//!   the path, so it stays a FIFO; its format (one release byte, then an error text if the user
//!   program could not be exec'd) is written and read only here ([`wait_for_start`],
//!   [`release_init`]).
//!
//! ```text
//! create (and run)                                               P = brig create / run
//!
//!   P                              [L: launcher]                 I: container init
//!   | mkfifo exec.fifo, open O_PATH
//!   | socketpair (P end, I end)
//!   |-- clone3(CLONE_NEW*, INTO_CGROUP) ------------------------> I   (joining a user ns:
//!   |   or clone -> L; L setns(user) and clone3(CLONE_PARENT) -> I    L sends FromLauncher::
//!   |   <- Launched{pid, placed} on the launcher socket; L exits)    Launched, P reaps L)
//!   | write state (pid), uid/gid maps, cgroup.procs, resctrl,
//!   | netDevices moved into I's network namespace
//!   |-- Proceed ---------------------------------------------->  | (only when I waits for
//!   |                                                             |  maps or cgroup placement)
//!   |                                                             | namespaces, rootfs mounts
//!   |<-- RunRuntimeHooks -----------------------------------------| (if prestart/createRuntime)
//!   | run prestart + createRuntime hooks                          |
//!   |-- RuntimeHooksDone --------------------------------------->|
//!   |                                                             | createContainer hooks, pivot
//!   |<-- Console + [pty master fd] -------------------------------| (process.terminal)
//!   |<-- SeccompListener + [listener fd] ------------------------| (SCMP_ACT_NOTIFY)
//!   | hand the listener to the agent's socket                     |
//!   |-- SeccompListenerSent ------------------------------------>|
//!   |<-- Ready --------------------------------------------------| I closes its end
//!   | pty master -> --console-socket, pidfd -> --pidfd-socket      |
//!   | state "created", pid file; exit (run: go on to start)       | open(exec.fifo, O_WRONLY)
//!                                                                 |   ... blocks until start
//!   (any step failing in I: <-- Error(text) / HookFailed(text), I exits 1;
//!    I's log lines: <-- Log{level,msg} at any time, logged by P as its own)
//!
//! start                                                          S = brig start
//!
//!   S open(exec.fifo, O_RDONLY|O_NONBLOCK) --------------------> I's open returns
//!   S reads until EOF  <------------------ "0" -----------------  I writes the release byte
//!                                                                 I: startContainer hooks,
//!                                                                 seccomp, execve (the FIFO
//!   S: EOF after "0" alone: running;   <------------------------  is close-on-exec: EOF)
//!      "0" + text: the exec failed (text is the error), I exits 127
//!   S unlinks exec.fifo, state "running", poststart hooks
//!
//! exec                                                           E = brig exec, T: tenant
//!
//!   E joins the pid (and time) namespace of init, socketpair
//!   |-- clone ------------------------------------------------->  T
//!   | cgroup (or --cgroup sub-cgroup), resctrl, CPU affinity      |
//!   |-- Proceed ---------------------------------------------->  | setns into the rest
//!   |<-- Console + [pty master fd] -------------------------------| (process.terminal)
//!   |<-- SeccompListener + [listener fd] / SeccompListenerSent -->|
//!   | waits for EOF: the socket is close-on-exec                  | execve -> EOF
//!   (T failing: <-- Error(text), T exits 127)
//!   E: console/pidfd sockets, pid file; waits for T unless --detach
//! ```

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use crate::sys::socket::{recv_fd, send_fd};

/// What the parent (`create`, `exec`) tells the child it cloned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToChild {
    /// The child is in its cgroup and its uid/gid maps are written: go on.
    Proceed,
    /// The prestart and createRuntime hooks succeeded.
    RuntimeHooksDone,
    /// The seccomp agent has the listener: filtered calls may be made now.
    SeccompListenerSent,
}

/// What init or an exec'd process tells its parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromChild {
    /// Mounts are made, pivot_root is next: run the prestart and createRuntime hooks.
    RunRuntimeHooks,
    /// The pty master of the process's terminal is attached.
    Console,
    /// Init is set up and goes to wait for `start`.
    Ready,
    /// The seccomp listener of the `SCMP_ACT_NOTIFY` rules is attached, for the agent.
    SeccompListener,
    /// Setup failed; the text is the whole user-facing message.
    Error(String),
    /// A createContainer hook failed (the parent must run the poststop hooks).
    HookFailed(String),
}

/// What travels up the sync socket: a message, or a log line of the child's.
#[derive(Debug, Serialize, Deserialize)]
enum Upward {
    Message(FromChild),
    Log { level: String, msg: String },
}

/// What the user-namespace launcher reports before it exits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromLauncher {
    /// Init is cloned; `placed`: born in its cgroup (CLONE_INTO_CGROUP worked).
    Launched { pid: i32, placed: bool },
    /// Joining the namespace or cloning failed.
    Failed(String),
}

impl fmt::Display for ToChild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ToChild::Proceed => "proceed",
            ToChild::RuntimeHooksDone => "runtime hooks done",
            ToChild::SeccompListenerSent => "seccomp listener sent",
        })
    }
}

impl fmt::Display for FromChild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FromChild::RunRuntimeHooks => f.write_str("run runtime hooks"),
            FromChild::Console => f.write_str("console"),
            FromChild::Ready => f.write_str("ready"),
            FromChild::SeccompListener => f.write_str("seccomp listener"),
            FromChild::Error(text) => write!(f, "error {text:?}"),
            FromChild::HookFailed(text) => write!(f, "hook failed {text:?}"),
        }
    }
}

/// Which child the parent talks to, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Init,
    Tenant,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Peer::Init => "container init",
            Peer::Tenant => "the exec'd process",
        })
    }
}

/// The error when a message other than the expected one came (`None`: the other side closed).
pub fn unexpected(
    waiting: &str,
    from: &dyn fmt::Display,
    expected: &str,
    got: Option<&dyn fmt::Display>,
) -> Error {
    let got = match got {
        Some(message) => message.to_string(),
        None => "the end of the sync socket (it exited)".to_string(),
    };
    Error::Other(format!(
        "{waiting}: expected {expected} from {from}, got {got}"
    ))
}

/// Largest message: an error text is short; anything longer is cut by the kernel and refused.
const MAX_MESSAGE: usize = 64 * 1024;

#[derive(Debug)]
struct Socket(OwnedFd);

impl Socket {
    fn pair(what: &str) -> Result<(Socket, Socket)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .ctx(|| format!("create the {what} socket"))?;
        Ok((Socket(a), Socket(b)))
    }

    fn send<T: Serialize>(&self, message: &T, fd: Option<BorrowedFd<'_>>) -> Result<()> {
        let data = encode(message)?;
        match fd {
            Some(fd) => send_fd(self.0.as_fd(), &data, fd)
                .map(drop)
                .ctx(|| "send a descriptor on the sync socket"),
            None => send(self.0.as_raw_fd(), &data, MsgFlags::MSG_NOSIGNAL)
                .map(drop)
                .ctx(|| "send on the sync socket"),
        }
    }

    /// The next message and its descriptor; `None` when the other side closed.
    fn recv<T: DeserializeOwned>(&self) -> Result<Option<(T, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let (n, fd) = recv_fd(self.0.as_fd(), &mut buf).ctx(|| "read the sync socket")?;
        if n == 0 {
            return Ok(None);
        }
        decode(&buf[..n]).map(|message| Some((message, fd)))
    }
}

fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(message).map_err(|e| Error::Other(format!("encode sync message: {e}")))
}

fn decode<T: DeserializeOwned>(data: &[u8]) -> Result<T> {
    serde_json::from_slice(data)
        .map_err(|e| Error::Other(format!("bad message on the sync socket: {e}")))
}

/// The sync socket between a parent and the child it is about to clone.
pub fn pair(peer: Peer) -> Result<(ParentEnd, ChildEnd)> {
    let (parent, child) = Socket::pair("sync")?;
    Ok((
        ParentEnd {
            socket: parent,
            peer,
        },
        ChildEnd { socket: child },
    ))
}

/// The parent's end: `create` talking to init, `exec` to the process it makes.
#[derive(Debug)]
pub struct ParentEnd {
    socket: Socket,
    peer: Peer,
}

/// What the parent does when the child asks (see the diagram above).
pub trait Parent {
    /// Keep the pty master the child sent.
    fn console(&mut self, master: OwnedFd) -> Result<()>;
    /// Hand the seccomp listener to the agent.
    fn seccomp_listener(&mut self, listener: OwnedFd) -> Result<()>;
    /// Run the prestart and createRuntime hooks (init only).
    fn runtime_hooks(&mut self) -> Result<()>;
}

/// How a child's setup ended, as seen by its parent.
#[derive(Debug)]
pub enum Outcome {
    /// Init is set up and waits for `start`.
    Ready,
    /// The child closed the socket without an error: an exec'd process has exec'd; for init
    /// this is a death.
    Closed,
    /// A hook failed (in the parent or a createContainer hook in init): poststop hooks run.
    HookFailed(Error),
}

impl ParentEnd {
    pub fn send(&self, message: ToChild) -> Result<()> {
        self.socket.send(&message, None)
    }

    /// Serve the child's requests until it is ready, closes the socket or reports an error
    /// (returned as [`Error::Init`]).
    pub fn serve(&self, parent: &mut dyn Parent) -> Result<Outcome> {
        loop {
            let Some((message, fd)) = self.recv()? else {
                return Ok(Outcome::Closed);
            };
            let expected = match self.peer {
                Peer::Init => "console, seccomp listener, run runtime hooks or ready",
                Peer::Tenant => "console, seccomp listener or the end of the socket",
            };
            match (message, self.peer) {
                (FromChild::Console, _) => {
                    let master = fd.ok_or_else(|| {
                        Error::Init("the console message came without the pty".into())
                    })?;
                    parent.console(master)?;
                }
                (FromChild::SeccompListener, _) => {
                    let listener = fd.ok_or_else(|| {
                        Error::Init("the seccomp listener message came without the listener".into())
                    })?;
                    parent.seccomp_listener(listener)?;
                    self.send(ToChild::SeccompListenerSent)?;
                }
                (FromChild::RunRuntimeHooks, Peer::Init) => match parent.runtime_hooks() {
                    Ok(()) => self.send(ToChild::RuntimeHooksDone)?,
                    Err(err) => return Ok(Outcome::HookFailed(err)),
                },
                (FromChild::Ready, Peer::Init) => return Ok(Outcome::Ready),
                (FromChild::HookFailed(text), Peer::Init) => {
                    return Ok(Outcome::HookFailed(Error::Hook(text)))
                }
                (FromChild::Error(text), _) => return Err(Error::Init(text)),
                (
                    message @ (FromChild::RunRuntimeHooks
                    | FromChild::Ready
                    | FromChild::HookFailed(_)),
                    Peer::Tenant,
                ) => {
                    return Err(unexpected(
                        "set up the exec'd process",
                        &self.peer,
                        expected,
                        Some(&message),
                    ))
                }
            }
        }
    }

    /// For an exec'd process: serve its requests until it execs (the socket closes).
    pub fn serve_until_exec(&self, parent: &mut dyn Parent) -> Result<()> {
        match self.serve(parent)? {
            Outcome::Closed => Ok(()),
            Outcome::HookFailed(err) => Err(err),
            Outcome::Ready => Err(unexpected(
                "set up the exec'd process",
                &self.peer,
                "the end of the socket",
                Some(&FromChild::Ready),
            )),
        }
    }

    /// The next message; the child's log lines are logged on the way.
    fn recv(&self) -> Result<Option<(FromChild, Option<OwnedFd>)>> {
        loop {
            match self.socket.recv::<Upward>()? {
                None => return Ok(None),
                Some((Upward::Log { level, msg }, _)) => relay(&level, &msg),
                Some((Upward::Message(message), fd)) => return Ok(Some((message, fd))),
            }
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.socket.0.as_raw_fd()
    }
}

/// The child's end: init or an exec'd process talking to its parent.
#[derive(Debug)]
pub struct ChildEnd {
    socket: Socket,
}

impl ChildEnd {
    pub fn send(&self, message: FromChild) -> Result<()> {
        self.socket.send(&Upward::Message(message), None)
    }

    /// Wait for `expected` from the parent; anything else is an error naming both.
    pub fn expect(&self, expected: ToChild) -> Result<()> {
        match self.socket.recv::<ToChild>()? {
            Some((message, _)) if message == expected => Ok(()),
            other => Err(unexpected(
                "wait for the parent",
                &"the parent",
                &expected.to_string(),
                other.as_ref().map(|(m, _)| m as &dyn fmt::Display),
            )),
        }
    }

    /// Ask the parent to run the prestart and createRuntime hooks and wait until they ran.
    pub fn run_runtime_hooks(&self) -> Result<()> {
        self.send(FromChild::RunRuntimeHooks)?;
        self.expect(ToChild::RuntimeHooksDone)
    }

    /// Send the pty master of the process's terminal to the parent.
    pub fn send_console(&self, master: BorrowedFd<'_>) -> Result<()> {
        self.socket
            .send(&Upward::Message(FromChild::Console), Some(master))
    }

    /// Send the seccomp listener to the parent (on the host, where the agent's socket is) and
    /// wait until the agent has it: only then may filtered calls be made. Our copy is closed.
    pub fn hand_over_seccomp_listener(&self, listener: OwnedFd) -> Result<()> {
        self.socket.send(
            &Upward::Message(FromChild::SeccompListener),
            Some(listener.as_fd()),
        )?;
        drop(listener);
        self.expect(ToChild::SeccompListenerSent)
    }

    /// Tell the parent why setup failed (a failed hook is told apart: poststop hooks run).
    pub fn report(&self, err: Error) {
        let message = match err {
            Error::Hook(text) => FromChild::HookFailed(text),
            other => FromChild::Error(other.to_string()),
        };
        let _ = self.send(message);
    }

    pub fn raw_fd(&self) -> RawFd {
        self.socket.0.as_raw_fd()
    }
}

/// The user-namespace launcher's socket: the parent listens, the launcher reports once.
pub fn launcher_pair() -> Result<(LauncherListener, LauncherReporter)> {
    let (parent, launcher) = Socket::pair("user namespace launcher")?;
    Ok((LauncherListener(parent), LauncherReporter(launcher)))
}

#[derive(Debug)]
pub struct LauncherListener(Socket);

#[derive(Debug)]
pub struct LauncherReporter(Socket);

impl LauncherReporter {
    pub fn report(&self, report: &FromLauncher) {
        let _ = self.0.send(report, None);
    }
}

impl LauncherListener {
    /// Init's pid and whether it was born in its cgroup, or the launcher's error.
    pub fn expect_launched(&self) -> Result<(Pid, bool)> {
        match self.0.recv::<FromLauncher>()? {
            Some((FromLauncher::Launched { pid, placed }, _)) => Ok((Pid::from_raw(pid), placed)),
            Some((FromLauncher::Failed(text), _)) => Err(Error::Init(text)),
            None => Err(unexpected(
                "clone init in the user namespace",
                &"the user namespace launcher",
                "init's pid",
                None,
            )),
        }
    }
}

/// Where a process sends log lines meant for stderr: brig's own stderr, the sync socket to
/// the parent (a cloned child, whose stderr is the container's), or nowhere (a child whose
/// parent is gone).
static STDERR_ROUTE: AtomicI32 = AtomicI32::new(TO_STDERR);
const TO_STDERR: RawFd = -1;
const TO_NOWHERE: RawFd = -2;

/// In a cloned child: lines meant for stderr go to the parent over `end`, which logs them.
pub fn forward_logs_to_parent(end: &ChildEnd) {
    STDERR_ROUTE.store(end.raw_fd(), Ordering::SeqCst);
}

/// In a cloned child about to lose its sync socket: lines meant for stderr are dropped.
pub fn drop_logs() {
    STDERR_ROUTE.store(TO_NOWHERE, Ordering::SeqCst);
}

/// For the log sink of a line meant for stderr: in a cloned child, send it to the parent (or
/// drop it) and return true; in brig itself return false (the sink writes it).
pub fn divert_stderr_line(level: &str, msg: &str) -> bool {
    match STDERR_ROUTE.load(Ordering::SeqCst) {
        TO_STDERR => false,
        TO_NOWHERE => true,
        socket => {
            let line = Upward::Log {
                level: level.to_string(),
                msg: msg.chars().take(MAX_MESSAGE / 2).collect(),
            };
            if let Ok(data) = encode(&line) {
                // A line that cannot go is dropped: never to the container's stderr.
                let _ = send(socket, &data, MsgFlags::MSG_NOSIGNAL);
            }
            true
        }
    }
}

/// Log a line a child forwarded, at its level.
fn relay(level: &str, message: &str) {
    match level {
        "error" => tracing::error!("{message}"),
        "warn" => tracing::warn!("{message}"),
        "info" => tracing::info!("{message}"),
        "debug" => tracing::debug!("{message}"),
        _ => tracing::trace!("{message}"),
    }
}

/// `create`: make the exec FIFO at `path`, writable by init whatever user it becomes (owned by
/// `owner`, the host ids of the container's root), and an `O_PATH` handle on it for init.
pub fn make_exec_fifo(path: &Path, owner: (u32, u32)) -> Result<OwnedFd> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600))
        .ctx(|| format!("make {}", path.display()))?;
    // Init opens it after switching to the container's user: let any uid write to it.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o622))
        .ctx(|| format!("chmod {}", path.display()))?;
    if owner != (0, 0) {
        match std::os::unix::fs::chown(path, Some(owner.0), Some(owner.1)) {
            // An unprivileged caller whose container root is a subordinate id cannot give it
            // the FIFO; its mode lets that id write it all the same.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && crate::rootless::unprivileged() => {}
            other => other.ctx(|| format!("chown {}", path.display()))?,
        }
    }
    nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .ctx(|| format!("open {}", path.display()))
}

/// The byte init writes into the exec FIFO when `start` opened it.
const RELEASED: u8 = b'0';

/// Init: block until `start` opens the FIFO (`fifo` is an `O_PATH` handle, reopened through
/// the host's /proc `proc`), then write the release byte. The FIFO stays open close-on-exec:
/// `start` reads until it closes, so it learns whether the exec worked.
pub fn wait_for_start(fifo: BorrowedFd<'_>, proc: BorrowedFd<'_>) -> Result<OwnedFd> {
    // Issue 12: the reopened file is checked to be the FIFO we made.
    let fd = super::guard::reopen_fifo(proc, fifo)?;
    nix::unistd::write(&fd, &[RELEASED]).ctx(|| "write the exec fifo")?;
    Ok(fd)
}

/// Init, after the release: the user program could not be started; `start` reports `message`.
pub fn report_after_start(fifo: &OwnedFd, message: &str) {
    let _ = nix::unistd::write(fifo, message.as_bytes());
}

/// What `start` learnt from the exec FIFO.
#[derive(Debug, PartialEq, Eq)]
pub enum Started {
    /// Init exec'd the user program.
    Running,
    /// The program never ran; the text is init's error.
    Failed(String),
}

/// `start`: open the FIFO (which releases init) and read until init execs or dies.
/// `init_alive` tells a dead init (an error, not a hang) while nothing came yet.
pub fn release_init(fifo_path: &Path, init: i32, init_alive: &dyn Fn() -> bool) -> Result<Started> {
    // Non-blocking: a dead init must give an error, not a hang.
    let fifo = nix::fcntl::open(
        fifo_path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", fifo_path.display()))?;
    let mut received = Vec::new();
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e).ctx(|| "wait for init on the exec fifo"),
        }
        let mut buf = [0u8; 4096];
        match nix::unistd::read(&fifo, &mut buf) {
            Ok(0) if !received.is_empty() => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e).ctx(|| "read the exec fifo"),
        }
        if received.is_empty() && !init_alive() {
            return Err(Error::Init(format!(
                "container init {init} exited before start"
            )));
        }
    }
    Ok(decode_fifo(&received))
}

/// The FIFO's content: the release byte alone, or followed by init's error.
fn decode_fifo(received: &[u8]) -> Started {
    match received {
        [_] | [] => Started::Running,
        [_, error @ ..] => Started::Failed(String::from_utf8_lossy(error).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cross_and_eof_is_closed() {
        let (parent, child) = pair(Peer::Init).unwrap();
        child
            .send(FromChild::Error(
                "mount \"proc\" on \"/proc\": permission denied".into(),
            ))
            .unwrap();
        assert_eq!(
            parent.recv().unwrap().map(|(m, _)| m),
            Some(FromChild::Error(
                "mount \"proc\" on \"/proc\": permission denied".into()
            ))
        );
        child.send(FromChild::Ready).unwrap();
        assert_eq!(
            parent.recv().unwrap().map(|(m, _)| m),
            Some(FromChild::Ready)
        );
        drop(child);
        assert!(parent.recv().unwrap().is_none());
    }

    #[test]
    fn encoding_is_one_json_value_per_message() {
        assert_eq!(encode(&ToChild::Proceed).unwrap(), br#""Proceed""#);
        let up = Upward::Message(FromChild::Error("x".into()));
        assert_eq!(encode(&up).unwrap(), br#"{"Message":{"Error":"x"}}"#);
        let back: Upward = decode(br#"{"Log":{"level":"warn","msg":"m"}}"#).unwrap();
        assert!(matches!(back, Upward::Log { level, msg } if level == "warn" && msg == "m"));
        let launched: FromLauncher = decode(br#"{"Launched":{"pid":42,"placed":true}}"#).unwrap();
        assert_eq!(
            launched,
            FromLauncher::Launched {
                pid: 42,
                placed: true
            }
        );
        let err = decode::<ToChild>(b"{}").unwrap_err().to_string();
        assert!(err.contains("bad message on the sync socket"), "{err}");
    }

    #[test]
    fn expect_names_what_was_expected_and_what_came() {
        let (parent, child) = pair(Peer::Init).unwrap();
        parent.send(ToChild::RuntimeHooksDone).unwrap();
        let err = child.expect(ToChild::Proceed).unwrap_err().to_string();
        assert_eq!(
            err,
            "wait for the parent: expected proceed from the parent, got runtime hooks done"
        );
        parent.send(ToChild::Proceed).unwrap();
        child.expect(ToChild::Proceed).unwrap();
        drop(parent);
        let err = child
            .expect(ToChild::SeccompListenerSent)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "wait for the parent: expected seccomp listener sent from the parent, got the end \
             of the sync socket (it exited)"
        );
    }

    struct Recorder(Vec<&'static str>);

    impl Parent for Recorder {
        fn console(&mut self, _: OwnedFd) -> Result<()> {
            self.0.push("console");
            Ok(())
        }
        fn seccomp_listener(&mut self, _: OwnedFd) -> Result<()> {
            self.0.push("listener");
            Ok(())
        }
        fn runtime_hooks(&mut self) -> Result<()> {
            self.0.push("hooks");
            Ok(())
        }
    }

    #[test]
    fn serve_answers_init_until_ready_and_relays_logs() {
        let (parent, child) = pair(Peer::Init).unwrap();
        let (r, _w) = nix::unistd::pipe().unwrap();
        forward_logs_to_parent(&child);
        assert!(divert_stderr_line("debug", "child process in init()"));
        STDERR_ROUTE.store(TO_STDERR, Ordering::SeqCst);
        child.send(FromChild::RunRuntimeHooks).unwrap();
        child.send_console(r.as_fd()).unwrap();
        child.send(FromChild::Ready).unwrap();
        let mut recorder = Recorder(Vec::new());
        assert!(matches!(
            parent.serve(&mut recorder).unwrap(),
            Outcome::Ready
        ));
        assert_eq!(recorder.0, ["hooks", "console"]);
        child.expect(ToChild::RuntimeHooksDone).unwrap();
    }

    #[test]
    fn serve_refuses_init_messages_from_an_exec_d_process() {
        let (parent, child) = pair(Peer::Tenant).unwrap();
        child.send(FromChild::Ready).unwrap();
        let err = parent
            .serve(&mut Recorder(Vec::new()))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "set up the exec'd process: expected console, seccomp listener or the end of the \
             socket from the exec'd process, got ready"
        );
        drop(child);
        let (parent, child) = pair(Peer::Tenant).unwrap();
        child.report(Error::Other("exec \"nope\": no such file".into()));
        drop(child);
        let err = parent
            .serve(&mut Recorder(Vec::new()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("exec \"nope\": no such file"), "{err}");
    }

    #[test]
    fn launcher_reports_pid_or_error() {
        let (listener, reporter) = launcher_pair().unwrap();
        reporter.report(&FromLauncher::Launched {
            pid: 7,
            placed: false,
        });
        assert_eq!(
            listener.expect_launched().unwrap(),
            (Pid::from_raw(7), false)
        );
        drop(reporter);
        let err = listener.expect_launched().unwrap_err().to_string();
        assert!(
            err.contains("expected init's pid from the user namespace launcher"),
            "{err}"
        );
    }

    #[test]
    fn fifo_format() {
        assert_eq!(decode_fifo(b"0"), Started::Running);
        assert_eq!(
            decode_fifo(b"0exec \"x\": no such file"),
            Started::Failed("exec \"x\": no such file".into())
        );
    }
}
