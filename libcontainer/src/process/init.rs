//! The container side of `create`: runs in the cloned child, sets the container up, reports
//! over the sync channel, waits on the exec FIFO for `start`, then execs the user program.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::LinuxNamespaceType;

use super::attrs;
use super::execve::{cstring, Exec};
use super::sync::{self, ChildEnd, FromChild, ToChild};
use crate::config::Config;
use crate::error::{Context, Error, Result};
use crate::hooks::{self, HookKind};
use crate::namespaces::{self, JoinNamespace};
use crate::rootfs::{self, RootfsOptions};
use crate::state::{State, Status};
use crate::sys::process::exit_now;

/// Everything init needs, prepared by the parent before the clone.
pub struct InitArgs<'a> {
    pub config: &'a Config,
    pub id: &'a str,
    pub channel: ChildEnd,
    /// `O_PATH` handle on the exec FIFO, reopened for writing through `proc`.
    pub fifo: BorrowedFd<'a>,
    /// The host's /proc, still reachable after pivot_root.
    pub proc: BorrowedFd<'a>,
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
    sync::forward_logs_to_parent(&args.channel);
    tracing::debug!("child process in init(): setting up container {}", args.id);
    let exec = match setup(&args) {
        Ok(exec) => exec,
        Err(err) => {
            args.channel.report(err);
            exit_now(1)
        }
    };
    // From here init outlives `create`: the parent may exit as soon as it reads Ready.
    let _ = prctl::set_pdeathsig(None);
    if args.new_user_ns {
        if let Err(err) = super::guard::undumpable() {
            args.channel.report(err);
            exit_now(1)
        }
    }
    // Issue 12, escape 1: no handle on the host's /proc while the container can see init;
    // the exec FIFO is reopened through the container's own /proc (checked) instead. The host
    // /proc descriptor is our copy in the cloned child (its owner never runs here again).
    let container_proc = super::guard::container_proc();
    if container_proc.is_some() {
        let _ = nix::unistd::close(args.proc.as_raw_fd());
    }
    let proc = container_proc.as_ref().map_or(args.proc, |p| p.as_fd());
    tracing::debug!("init: closing the pipe to signal completion; waiting for start");
    let ready = args.channel.send(FromChild::Ready);
    sync::drop_logs();
    if ready.is_err() {
        // The parent is gone: nobody will start us.
        exit_now(1)
    }
    drop(args.channel);
    let fifo = match sync::wait_for_start(args.fifo, proc) {
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
        sync::report_after_start(&fifo, &message);
    }
    tracing::error!("{message}");
    exit_now(127)
}

/// Set the container up; `None` when the config has no process (start will refuse).
fn setup(args: &InitArgs<'_>) -> Result<Option<Exec>> {
    for fd in &args.close {
        // These descriptors belong to the parent's objects; this copy of them is ours to close.
        let _ = nix::unistd::close(*fd);
    }
    // Modes of what we create are exactly the configured ones; the user's umask comes at exec.
    nix::sys::stat::umask(Mode::empty());
    // Issue 12: not dumpable, so the container cannot follow /proc/1/{exe,fd}. In a new user
    // namespace our /proc files would then belong to an unmapped root (the parent writes our
    // id maps, we write oom_score_adj): there, just before Ready, when exec can first join us.
    if !args.new_user_ns {
        super::guard::undumpable()?;
    }
    // If `create` dies during setup, so do we: no half-made container is left behind.
    prctl::set_pdeathsig(Signal::SIGKILL).ctx(|| "set the parent-death signal")?;

    let config = args.config;
    let process = config.spec.process().as_ref();

    if args.wait_for_parent {
        args.channel.expect(ToChild::Proceed)?;
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
        // On a failure the parent kills us and reports the hook's error itself.
        args.channel.run_runtime_hooks()?;
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
        let pty = crate::tty::open_pty(size, true)?;
        args.channel.send_console(pty.master.as_fd())?;
        pty.into_stdio()?;
    } else {
        // A session of its own, as runc's init has (its nsexec calls setsid for every
        // container process): CRIU refuses to dump a session leader outside the container.
        nix::unistd::setsid().ctx(|| "start a session for init")?;
    }
    crate::sysctl::apply(config.sysctl(), args.proc)?;
    rootfs::finish(config)?;
    let linux = config.spec.linux().as_ref();
    if let Some(policy) = linux.and_then(|l| l.memory_policy().as_ref()) {
        attrs::apply_memory_policy(policy)?;
    }
    super::guard::close_on_exec_from(3u32.saturating_add(args.preserve_fds)); // issue 12
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
    match crate::sys::keyring::join_session_keyring(&name) {
        // No keyrings in this kernel (or they are filtered): nothing to isolate.
        Ok(_) | Err(Errno::ENOSYS) => Ok(()),
        Err(e) => Err(e).ctx(|| "join a new session keyring"),
    }
}

fn set_domainname(domain: &str) -> Result<()> {
    crate::sys::uts::setdomainname(domain).ctx(|| format!("set domainname {domain:?}"))
}

fn write_proc(proc: BorrowedFd<'_>, path: &str, value: &str) -> Result<()> {
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
