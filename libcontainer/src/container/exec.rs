//! `exec`: run another process in a running container: its namespaces, its cgroup, and the
//! process's own user, capabilities, rlimits and no_new_privs.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use oci_spec::runtime::{LinuxNamespaceType, Process};

use super::exec_cgroup::{self, SubCgroups};
use super::pidfd_of_init;
use super::run::{wait_forwarding, FORWARDED};
use crate::atomic_file::write as write_atomic;
use crate::error::{Context, Error, Result};
use crate::namespaces::{self, JoinNamespace};
use crate::process::clone::{clone_with_flags, Forked};
use crate::process::sync::{self, Peer, ToChild};
use crate::process::tenant::{self, TenantArgs};
use crate::state::{self, Status};

#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub root: PathBuf,
    pub id: String,
    pub process: Process,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    pub console_socket: Option<PathBuf>,
    /// `--pidfd-socket`: receives a pidfd of the exec'd process.
    pub pidfd_socket: Option<PathBuf>,
    /// `--cgroup`: a sub-cgroup of the container's to run in.
    pub sub_cgroups: SubCgroups,
}

/// /proc/PID/ns names, user first (joining it first gives the rights to join the others).
const NAMESPACES: &[(LinuxNamespaceType, &str)] = &[
    (LinuxNamespaceType::User, "user"),
    (LinuxNamespaceType::Ipc, "ipc"),
    (LinuxNamespaceType::Uts, "uts"),
    (LinuxNamespaceType::Network, "net"),
    (LinuxNamespaceType::Pid, "pid"),
    (LinuxNamespaceType::Cgroup, "cgroup"),
    (LinuxNamespaceType::Time, "time"),
    (LinuxNamespaceType::Mount, "mnt"),
];

/// The namespaces of `pid` that differ from ours (joining one we are in already is refused
/// for user namespaces and pointless for the rest).
fn namespaces_of(pid: i32) -> Result<Vec<JoinNamespace>> {
    let mut joins = Vec::new();
    for (kind, name) in NAMESPACES {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let (Ok(their_meta), Ok(our_meta)) = (
            fs::metadata(&theirs),
            fs::metadata(format!("/proc/self/ns/{name}")),
        ) else {
            continue; // the kernel lacks this namespace type
        };
        if their_meta.ino() == our_meta.ino() && their_meta.dev() == our_meta.dev() {
            continue;
        }
        let fd: OwnedFd = nix::fcntl::open(
            Path::new(&theirs),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("open {theirs}"))?;
        joins.push(JoinNamespace {
            kind: *kind,
            fd,
            path: theirs,
        });
    }
    Ok(joins)
}

/// What a process.json leaves out comes from the container's process, as runc fills it in
/// (`newInitConfig`): capabilities, no_new_privs, the AppArmor profile, SELinux label and
/// rlimits. Above all, a file without `capabilities` never runs with every capability.
fn with_container_defaults(process: &Process, container: Option<&Process>) -> Process {
    let mut process = process.clone();
    let Some(container) = container else {
        return process;
    };
    if process.capabilities().is_none() {
        process.set_capabilities(container.capabilities().clone());
    }
    if process.no_new_privileges().is_none() {
        process.set_no_new_privileges(container.no_new_privileges());
    }
    if process.apparmor_profile().is_none() {
        process.set_apparmor_profile(container.apparmor_profile().clone());
    }
    if process.selinux_label().is_none() {
        process.set_selinux_label(container.selinux_label().clone());
    }
    if process.rlimits().as_ref().is_none_or(|r| r.is_empty()) {
        process.set_rlimits(container.rlimits().clone());
    }
    process
}

/// exec's side of the exec'd process's requests during its setup.
struct TenantParent<'a> {
    state: &'a state::State,
    seccomp: Option<&'a crate::seccomp::Filters>,
    pid: i32,
    console: Option<OwnedFd>,
}

impl sync::Parent for TenantParent<'_> {
    fn console(&mut self, master: OwnedFd) -> Result<()> {
        self.console = Some(master);
        Ok(())
    }

    fn seccomp_listener(&mut self, listener: OwnedFd) -> Result<()> {
        let input = self.state.hook_input(self.state.status, self.state.pid);
        crate::seccomp::send_to_agent(self.seccomp, &listener, self.pid, &input)
    }

    fn runtime_hooks(&mut self) -> Result<()> {
        // Never called: `serve` refuses the request from an exec'd process.
        Ok(())
    }
}

/// Run the process; returns its exit code (0 at once with `detach`).
pub fn exec(options: &ExecOptions) -> Result<i32> {
    let state = state::load(&options.root, &options.id)?;
    // runc's words: tools match them.
    let refuse = |why: &str| Error::Other(format!("exec in container {:?}: {why}", options.id));
    match state.status {
        Status::Created | Status::Running => {}
        Status::Paused if options.ignore_paused => {}
        Status::Paused => {
            return Err(refuse(
                "cannot exec in a paused container (use --ignore-paused to override)",
            ))
        }
        Status::Stopped => return Err(refuse("cannot exec in a stopped container")),
        status => {
            return Err(Error::WrongState {
                op: "exec in",
                id: options.id.clone(),
                status: status.to_string(),
            })
        }
    }
    crate::config::validate_process(&options.process)?;
    exec_cgroup::targets(&state.cgroup, &options.sub_cgroups)?;
    let process = &with_container_defaults(&options.process, state.config.process().as_ref());
    let terminal = process.terminal() == Some(true);
    match (terminal, &options.console_socket) {
        (false, Some(_)) => {
            return Err(Error::option(
                "console_socket",
                "is only for a process with a terminal",
            ))
        }
        (true, None) if options.detach => {
            return Err(Error::option(
                "console_socket",
                "missing: a detached exec with process.terminal needs one for its terminal",
            ))
        }
        _ => {}
    }
    // The pidfd pins init while we read its namespaces.
    let _init = pidfd_of_init(&state)?.ok_or_else(|| Error::WrongState {
        op: "exec in",
        id: options.id.clone(),
        status: Status::Stopped.to_string(),
    })?;
    let mut joins = namespaces_of(state.pid)?;
    // An unprivileged caller may join the container's other namespaces only from inside its
    // user namespace (whose owner it is): there the parent joins it first, before pid and time.
    if crate::rootless::unprivileged()
        && joins
            .iter()
            .any(|ns| namespaces::applies_to_children(ns.kind))
    {
        if let Some(at) = joins
            .iter()
            .position(|ns| ns.kind == LinuxNamespaceType::User)
        {
            namespaces::join(&joins.remove(at))?;
        }
    }
    for ns in joins
        .iter()
        .filter(|ns| namespaces::applies_to_children(ns.kind))
    {
        namespaces::join(ns)?;
    }
    let mut mask = SigSet::empty();
    if !options.detach {
        mask.add(Signal::SIGCHLD);
        FORWARDED.iter().for_each(|s| mask.add(*s));
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
            .ctx(|| "block signals")?;
    }
    let personality = state
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.personality().clone());
    let seccomp = state
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(crate::seccomp::compile)
        .transpose()?;
    // execCPUAffinity: the exec'd process starts on `initial` (inherited from us) and moves
    // to `final` once in the container's cgroup (which may have reset it).
    let affinity = process.exec_cpu_affinity().clone();
    if let Some(initial) = affinity.as_ref().and_then(|a| a.initial().as_deref()) {
        crate::process::attrs::set_cpu_affinity(0, initial, "process.execCPUAffinity.initial")?;
    }
    let (parent_end, child_end) = sync::pair(Peer::Tenant)?;
    // runc's wording (its nsexec), which tools and runc's own tests look for.
    tracing::debug!(
        "=> nsexec container setup: clone a process to join {} namespaces of init {}",
        joins.len(),
        state.pid
    );
    let pid = match clone_with_flags(0, None)?.0 {
        Forked::Child => tenant::run(TenantArgs {
            process,
            personality,
            seccomp: seccomp.clone(),
            join: &joins,
            channel: child_end,
            close: vec![parent_end.raw_fd()],
            preserve_fds: options.preserve_fds,
        }),
        Forked::Parent(pid) => {
            drop(child_end);
            pid
        }
    };
    let placed = exec_cgroup::enter(&state.cgroup, &options.sub_cgroups, pid.as_raw(), state.pid)
        .and_then(|()| match &state.intel_rdt {
            Some(group) => crate::intel_rdt::add(group, pid.as_raw()),
            None => Ok(()),
        })
        .and_then(|()| {
            match affinity
                .as_ref()
                .and_then(|a| a.cpu_affinity_final().as_deref())
            {
                Some(cpus) if !cpus.is_empty() => crate::process::attrs::set_cpu_affinity(
                    pid.as_raw(),
                    cpus,
                    "process.execCPUAffinity.final",
                ),
                _ => Ok(()),
            }
        });
    let mut parent = TenantParent {
        state: &state,
        seccomp: seccomp.as_ref(),
        pid: pid.as_raw(),
        console: None,
    };
    // The pty master may come first; then nothing more when exec worked: it closes on exec.
    let served = placed
        .and_then(|()| parent_end.send(ToChild::Proceed))
        .and_then(|()| parent_end.serve_until_exec(&mut parent));
    if let Err(err) = served {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        return Err(err);
    }
    let mut console = parent.console.take();
    if let (Some(socket), Some(master)) = (&options.console_socket, &console) {
        super::handoff::send_console(socket, master)?;
        console = None;
    }
    if let Some(socket) = &options.pidfd_socket {
        super::handoff::send_pidfd(socket, pid.as_raw())?;
    }
    if let Some(pid_file) = &options.pid_file {
        // As runc: a process whose pid nobody can learn is ended, not left behind.
        if let Err(err) = write_atomic(pid_file, pid.to_string().as_bytes(), 0o644) {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(err);
        }
    }
    if options.detach {
        return Ok(0);
    }
    match console {
        Some(master) => crate::tty::proxy(master, pid, &mask),
        None => wait_forwarding(pid, &mask),
    }
}
