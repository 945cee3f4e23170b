//! The container side of `create`: runs in the cloned child, sets the container up, reports
//! over the sync channel, waits on the exec FIFO for `start`, then execs the user program.

use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::LinuxNamespaceType;

use super::channel::{Channel, Message};
use super::exec::{cstring, Exec};
use crate::config::Config;
use crate::error::{Context, Error, Result};
use crate::hooks::{self, HookKind};
use crate::namespaces::{self, JoinNamespace};
use crate::process_attrs;
use crate::rootfs::{self, RootfsOptions};
use crate::state::{State, Status};

/// Everything init needs, prepared by the parent before the clone.
pub struct InitArgs<'a> {
    pub config: &'a Config,
    pub id: &'a str,
    pub channel: Channel,
    /// `O_PATH` handle on the exec FIFO, reopened for writing through `proc`.
    pub fifo: RawFd,
    /// The host's /proc, still reachable after pivot_root.
    pub proc: RawFd,
    /// Namespaces init joins itself (pid and time were joined by the parent).
    pub join: &'a [JoinNamespace],
    /// Parent-only descriptors the child must not keep (the state lock, the parent's socket end).
    pub close: Vec<RawFd>,
    pub new_user_ns: bool,
    /// Init was cloned inside an existing user namespace (see create's launcher).
    pub joined_user_ns: bool,
    /// The parent still has to place init in its cgroup or write its id maps.
    pub wait_for_parent: bool,
    /// Make the new cgroup namespace only once the parent has placed us in our cgroup, so
    /// that cgroup is the namespace's root.
    pub unshare_cgroupns: bool,
    /// The state as `create` wrote it, for the hooks init runs.
    pub state: &'a State,
    pub rootfs: RootfsOptions,
    /// Id-mapped bind mounts made on the host, attached by init.
    pub idmapped: &'a rootfs::idmap::IdmappedMounts,
    pub no_new_keyring: bool,
    /// Descriptors 3..3+N that stay open for the program.
    pub preserve_fds: u32,
}

/// Entry point of the cloned child. Never returns.
pub fn run(args: InitArgs<'_>) -> ! {
    // Our stderr is the container's: our log lines go to the parent.
    crate::logging::forward_to_parent(args.channel.raw_fd());
    tracing::debug!("child process in init(): setting up container {}", args.id);
    let exec = match setup(&args) {
        Ok(exec) => exec,
        Err(err) => {
            let message = match err {
                Error::Hook(text) => Message::HookFailed(text),
                other => Message::Error(other.to_string()),
            };
            let _ = args.channel.send(&message);
            // SAFETY: leave without running the parent's atexit handlers or destructors.
            unsafe { libc::_exit(1) }
        }
    };
    // From here init outlives `create`: the parent may exit as soon as it reads Ready.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
    tracing::debug!("init: closing the pipe to signal completion; waiting for start");
    let ready = args.channel.send(&Message::Ready);
    crate::logging::quiet();
    if ready.is_err() {
        // SAFETY: as above; the parent is gone, nobody will start us.
        unsafe { libc::_exit(1) }
    }
    drop(args.channel);
    let fifo = match wait_for_start(args.fifo, args.proc) {
        Ok(fifo) => fifo,
        Err(err) => fail_after_start(None, &err),
    };
    let state = args
        .state
        .hook_input(Status::Created, std::process::id() as i32);
    // startContainer hooks run after the last steps (seccomp among them), just before execve.
    let prepared = exec.as_ref().map(Exec::last_steps).transpose();
    let err = match prepared
        .and_then(|_| hooks::run_all(&args.config.spec, HookKind::StartContainer, &state))
    {
        Ok(()) => match exec.as_ref().map(Exec::execve) {
            Some(Err(err)) => err,
            Some(Ok(never)) => match never {},
            None => Error::config("process", "is not set: the container has nothing to start"),
        },
        Err(err) => err,
    };
    fail_after_start(Some(fifo), &err)
}

/// After `start` released us the sync channel is gone: the error goes back through the FIFO
/// (which `start` reads until we exec) and to the `--log` file; never to our stderr, which
/// is the container's.
fn fail_after_start(fifo: Option<OwnedFd>, err: &Error) -> ! {
    let message = err.to_string();
    if let Some(fifo) = fifo {
        let _ = nix::unistd::write(&fifo, message.as_bytes());
    }
    tracing::error!("{message}");
    // SAFETY: leave without running the parent's atexit handlers or destructors.
    unsafe { libc::_exit(127) }
}

/// Set the container up; `None` when the config has no process (start will refuse).
fn setup(args: &InitArgs<'_>) -> Result<Option<Exec>> {
    for fd in &args.close {
        // SAFETY: these descriptors belong to the parent's objects; this copy of them is ours to close.
        unsafe { libc::close(*fd) };
    }
    // Modes of what we create are exactly the configured ones; the user's umask comes at exec.
    nix::sys::stat::umask(Mode::empty());
    // If `create` dies during setup, so do we: no half-made container is left behind.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };

    let config = args.config;
    let process = config.spec.process().as_ref();

    if args.wait_for_parent {
        match args.channel.recv()? {
            Some(Message::Proceed) => {}
            other => {
                return Err(Error::Other(format!(
                    "waiting for the parent, got {other:?}"
                )))
            }
        }
    }
    if args.unshare_cgroupns {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .ctx(|| "unshare the cgroup namespace")?;
    }
    if args.new_user_ns || args.joined_user_ns {
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .ctx(|| "become root (gid 0) in the user namespace")?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .ctx(|| "become root (uid 0) in the user namespace")?;
    }
    // The parent joined pid and time; a user namespace was joined before init existed.
    for ns in args.join.iter().filter(|ns| {
        !namespaces::applies_to_children(ns.kind) && ns.kind != LinuxNamespaceType::User
    }) {
        namespaces::join(ns)?;
    }
    if !args.no_new_keyring {
        join_session_keyring(args.id)?;
    }
    // New or joined by path: validation refused a hostname without a uts entry.
    if config.namespace(LinuxNamespaceType::Uts).is_some() {
        if let Some(hostname) = config.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            nix::unistd::sethostname(hostname).ctx(|| format!("set hostname {hostname:?}"))?;
        }
        if let Some(domain) = config
            .spec
            .domainname()
            .as_deref()
            .filter(|d| !d.is_empty())
        {
            set_domainname(domain)?;
        }
    }
    if let Some(score) = process.and_then(|p| p.oom_score_adj()) {
        write_proc(args.proc, "self/oom_score_adj", &score.to_string())?;
    }

    rootfs::prepare(config, args.rootfs, &args.state.cgroup, args.idmapped)?;
    if !hooks::hooks(&config.spec, HookKind::Prestart).is_empty()
        || !hooks::hooks(&config.spec, HookKind::CreateRuntime).is_empty()
    {
        args.channel.send(&Message::RunRuntimeHooks)?;
        match args.channel.recv()? {
            Some(Message::RuntimeHooksDone) => {}
            // The parent reports the hook's failure itself.
            _ => return Err(Error::Other("runtime hooks failed".into())),
        }
    }
    let state = args
        .state
        .hook_input(Status::Creating, std::process::id() as i32);
    // createContainer hooks run in the rootfs, as runc runs them (they may use relative paths).
    nix::unistd::chdir(&config.rootfs)
        .ctx(|| format!("chdir to rootfs {}", config.rootfs.display()))?;
    hooks::run_all(&config.spec, HookKind::CreateContainer, &state)?;
    rootfs::switch_root(config, args.rootfs)?;
    if let Some(process) = process.filter(|p| p.terminal() == Some(true)) {
        let size = process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        crate::tty::setup_console(size, &args.channel, true)?;
    }
    crate::sysctl::apply(config.sysctl(), args.proc)?;
    rootfs::finish(config)?;
    let linux = config.spec.linux().as_ref();
    if let Some(policy) = linux.and_then(|l| l.memory_policy().as_ref()) {
        process_attrs::apply_memory_policy(policy)?;
    }
    process
        .map(|p| {
            Exec::prepare(
                p,
                linux.and_then(|l| l.personality().clone()),
                config.seccomp.clone(),
                &args.channel,
            )
            .map(|mut exec| {
                exec.preserve_fds = args.preserve_fds;
                exec
            })
        })
        .transpose()
}

fn join_session_keyring(id: &str) -> Result<()> {
    let name = cstring(id.as_bytes(), "container id")?;
    // SAFETY: keyctl reads the NUL-terminated name during the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING,
            name.as_ptr(),
        )
    };
    match Errno::result(ret) {
        // No keyrings in this kernel (or they are filtered): nothing to isolate.
        Ok(_) | Err(Errno::ENOSYS) => Ok(()),
        Err(e) => Err(e).ctx(|| "join a new session keyring"),
    }
}

fn set_domainname(domain: &str) -> Result<()> {
    // SAFETY: setdomainname reads `len` bytes of the buffer during the call.
    let ret = unsafe { libc::setdomainname(domain.as_ptr().cast(), domain.len()) };
    Errno::result(ret)
        .map(drop)
        .ctx(|| format!("set domainname {domain:?}"))
}

fn write_proc(proc: RawFd, path: &str, value: &str) -> Result<()> {
    // SAFETY: `proc` stays open for the life of init; we only borrow it.
    let proc = unsafe { BorrowedFd::borrow_raw(proc) };
    let fd = openat(
        proc,
        path,
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open /proc/{path}"))?;
    nix::unistd::write(&fd, value.as_bytes()).ctx(|| format!("write {value} to /proc/{path}"))?;
    Ok(())
}

/// Block until `start` opens the FIFO for reading, then tell it we are going. The FIFO stays
/// open (close-on-exec): `start` reads until it closes, so it learns whether exec worked.
fn wait_for_start(fifo: RawFd, proc: RawFd) -> Result<OwnedFd> {
    // SAFETY: `proc` stays open for the life of init; we only borrow it.
    let proc = unsafe { BorrowedFd::borrow_raw(proc) };
    let fd = openat(
        proc,
        format!("self/fd/{fifo}").as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open the exec fifo")?;
    nix::unistd::write(&fd, b"0").ctx(|| "write the exec fifo")?;
    Ok(fd)
}
