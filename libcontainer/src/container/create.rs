//! `create`: load the bundle, make the state directory, clone init into its namespaces and
//! wait until it is set up and parked on the exec FIFO.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxNamespaceType;

use crate::atomic_file::write as write_atomic;
use crate::cgroups::{self, Cgroup};
use crate::config::{Config, OCI_VERSION};
use crate::error::{Context, Error, Result};
use crate::hooks::{self, HookKind};
use crate::intel_rdt;
use crate::namespaces;
use crate::process::clone::{clone_in_user_ns, clone_with_flags, Forked};
use crate::process::init::{self, InitArgs};
use crate::process::sync::{self, Outcome, Peer, ToChild};
use crate::procfs::stat::proc_stat;
use crate::rootfs::RootfsOptions;
use crate::state::{ContainerDir, State, Status};
use crate::timestamp::rfc3339_nanos;
use crate::user_ns;

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// `--pidfd-socket`: receives a pidfd of init.
    pub pidfd_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Descriptors 3..3+N passed on to the container process (`--preserve-fds`).
    pub preserve_fds: u32,
    /// Socket-activation descriptors (`LISTEN_FDS`): passed on before the preserved ones, and
    /// announced to the process as LISTEN_FDS=N, LISTEN_PID=1.
    pub listen_fds: u32,
    /// A foreground `run` proxies the terminal itself: no console socket needed.
    pub keep_console: bool,
    /// The caller's `NOTIFY_SOCKET`: the container gets a socket of its own, relayed to it.
    pub notify_socket: Option<String>,
    /// `--systemd-cgroup`: the cgroup is a transient systemd unit.
    pub systemd_cgroup: bool,
}

/// A container in state `created`, still locked by this process.
#[derive(Debug)]
pub struct Created {
    pub dir: ContainerDir,
    pub state: State,
    /// The pty master, when the container has a terminal and no console socket took it.
    pub console: Option<OwnedFd>,
}

pub fn create(options: &CreateOptions) -> Result<Created> {
    // Everything that can be checked is checked before anything is made.
    crate::state::validate_id(&options.id)?;
    let mut config = Config::load(&options.bundle)?;
    if options.listen_fds > 0 {
        if let Some(process) = config.spec.process_mut() {
            let mut env = process.env().clone().unwrap_or_default();
            env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
            env.push(format!("LISTEN_FDS={}", options.listen_fds));
            env.push("LISTEN_PID=1".to_string());
            process.set_env(Some(env));
        }
    }
    if let Some(host) = &options.notify_socket {
        crate::sd_notify::validate_host(host)?;
        crate::sd_notify::setup_spec(&mut config.spec, &options.root.join(&options.id))?;
    }
    let terminal = config.spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    match (terminal, &options.console_socket) {
        (false, Some(_)) => {
            return Err(Error::option(
                "console_socket",
                "is only for a container with process.terminal true",
            ))
        }
        (true, None) if !options.keep_console => {
            return Err(Error::option(
                "console_socket",
                "missing: process.terminal needs one to hand the terminal to (or a foreground run)",
            ))
        }
        _ => {}
    }
    crate::rootless::validate(&config)?;
    let map_writer = crate::rootless::check_maps(&config)?;
    let linux = config.spec.linux().as_ref();
    let mut resources = linux.and_then(|l| l.resources().clone());
    let spec_devices = linux.and_then(|l| l.devices().clone()).unwrap_or_default();
    let mut cgroup = cgroups::new(
        linux.and_then(|l| l.cgroups_path().as_deref()),
        &options.id,
        options.systemd_cgroup,
    )?;
    let rootless = crate::rootless::rootless();
    if rootless {
        let path = linux.and_then(|l| l.cgroups_path().as_deref());
        rootless_cgroup(cgroup.as_mut(), path, &mut resources)?;
    }
    cgroup.check_existing()?;
    let net_devices = crate::netdev::prepare(
        linux.and_then(|l| l.net_devices().as_ref()),
        config.namespaces(),
        rootless,
    )?;
    let dir = ContainerDir::create(&options.root, &options.id)?;
    let mut rdt = None;
    // Recorded before the first mkdir: a create killed from here on leaves `delete --force`
    // what it needs to remove the cgroups.
    let made = dir
        .save_cgroup_intent(&cgroup.intent())
        .and_then(|()| cgroup.create(cgroups::needs_unified(resources.as_ref())))
        .and_then(|()| match options.notify_socket {
            Some(_) => crate::sd_notify::make_dir(&dir.path),
            None => Ok(()),
        })
        .and_then(|()| delegate_cgroup(cgroup.record(), &config))
        // Rootless: written as an update without device rules, so none are (see below).
        .and_then(|()| cgroup.set(resources.as_ref(), &spec_devices, rootless))
        .and_then(|()| {
            rdt = rdt_group(&config, &options.id)?;
            create_in(
                &dir,
                config,
                options,
                cgroup.as_ref(),
                rdt.clone(),
                map_writer,
                net_devices.as_ref(),
            )
        });
    match made {
        Ok((state, console)) => Ok(Created {
            dir,
            state,
            console,
        }),
        Err(err) => {
            if let Some(group) = &rdt {
                intel_rdt::remove(group);
            }
            if let Err(cleanup) = cgroup.destroy() {
                tracing::warn!("{cleanup}");
            }
            if let Err(cleanup) = dir.remove() {
                tracing::warn!("{cleanup}");
            }
            Err(err)
        }
    }
}

/// Rootless (runc's rules): the container goes without the cgroups the caller cannot write,
/// with a debug line, unless it asks for limits, which could then not be enforced. Device
/// rules are dropped: an unprivileged user can neither write devices.allow nor load the v2
/// device filter, and the container has only host nodes the user could open anyway.
fn rootless_cgroup(
    cgroup: &mut dyn cgroups::Manager,
    cgroups_path: Option<&Path>,
    resources: &mut Option<oci_spec::runtime::LinuxResources>,
) -> Result<()> {
    if let Some(r) = resources.as_mut() {
        r.set_devices(None);
    }
    let dropped = cgroup.keep_writable();
    if dropped.is_empty() {
        return Ok(());
    }
    let cannot = || {
        dropped
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    // A cgroup asked for by name is not silently done without (runc's rule too).
    if let Some(path) = cgroups_path {
        return Err(Error::config(
            "linux.cgroupsPath",
            format!(
                "{}: uid {} cannot create or join it (cannot write {}); a rootless container \
                 may name only a cgroup delegated to its user",
                path.display(),
                crate::rootless::euid(),
                cannot()
            ),
        ));
    }
    let limits = crate::rootless::limits_requested(resources.as_ref());
    if !limits.is_empty() {
        return Err(Error::config(
            limits.join(", "),
            format!(
                "cannot be applied: uid {} has no delegated cgroup here (cannot write {}); \
                 a rootless container may ask for limits only in a cgroup delegated to its user",
                crate::rootless::euid(),
                cannot()
            ),
        ));
    }
    for path in &dropped {
        tracing::debug!(
            "rootless: no cgroup at {} (not writable by uid {}): the container goes without",
            path.display(),
            crate::rootless::euid()
        );
    }
    Ok(())
}

/// `linux.intelRdt`: the container's resctrl group, made or joined before init exists.
fn rdt_group(config: &Config, id: &str) -> Result<Option<intel_rdt::RdtGroup>> {
    let Some(rdt) = config
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.intel_rdt().as_ref())
    else {
        return Ok(None);
    };
    let root = intel_rdt::resctrl_mount().ok_or_else(|| {
        Error::config(
            "linux.intelRdt",
            "resctrl is not mounted on this host (no Intel RDT)",
        )
    })?;
    intel_rdt::prepare(rdt, id, &root).map(Some)
}

fn create_in(
    dir: &ContainerDir,
    config: Config,
    options: &CreateOptions,
    manager: &dyn cgroups::Manager,
    intel_rdt: Option<intel_rdt::RdtGroup>,
    map_writer: user_ns::MapWriter,
    net_devices: Option<&crate::netdev::Plan>,
) -> Result<(State, Option<OwnedFd>)> {
    let mut state = new_state(
        &options.id,
        &config,
        manager.record().clone(),
        intel_rdt,
        options.notify_socket.clone(),
    );

    let fifo = sync::make_exec_fifo(&dir.fifo_path(), user_ns::host_root(&config))?;
    let proc = open_path(Path::new("/proc"), OFlag::O_PATH | OFlag::O_DIRECTORY)?;

    let idmapped = crate::rootfs::idmap::prepare(&config)?;
    let joins = namespaces::open_paths(config.namespaces())?;
    for ns in joins
        .iter()
        .filter(|ns| namespaces::applies_to_children(ns.kind))
    {
        namespaces::join(ns)?;
    }
    let new_user_ns = config.new_namespace(LinuxNamespaceType::User);
    let (parent_end, child_end) = sync::pair(Peer::Init)?;

    let mut flags = namespaces::new_namespace_flags(config.namespaces());
    let linux = config.spec.linux().as_ref();
    if let Some(offsets) = linux
        .and_then(|l| l.time_offsets().as_ref())
        .filter(|o| !o.is_empty())
    {
        namespaces::unshare_time_with_offsets(offsets)?;
        flags &= !(libc::CLONE_NEWTIME as u64);
    }
    // On a v2 host init is born in its cgroup (CLONE_INTO_CGROUP): no write to cgroup.procs
    // and no wait for the parent. Otherwise the parent moves it, and a new cgroup namespace
    // must wait for that (init unshares it then), or its root would be our own cgroup.
    // A systemd unit does not exist before init does: systemd moves init into it.
    let into_cgroup = match state
        .cgroup
        .unified()
        .filter(|_| state.cgroup.is_v2() && state.cgroup.systemd.is_none())
    {
        Some(h) => Some(open_path(&h.path, OFlag::O_PATH | OFlag::O_DIRECTORY)?),
        None => None,
    };
    let moved_by_parent = !state.cgroup.hierarchies.is_empty() && into_cgroup.is_none();
    let late_cgroupns = moved_by_parent && flags & libc::CLONE_NEWCGROUP as u64 != 0;
    if late_cgroupns {
        flags &= !(libc::CLONE_NEWCGROUP as u64);
    }
    let into_cgroup_fd = into_cgroup.as_ref().map(|fd| fd.as_raw_fd());
    let joined_user_ns = joins.iter().find(|j| j.kind == LinuxNamespaceType::User);
    // runc's wording (its nsexec), which tools and runc's own tests look for.
    tracing::debug!("=> nsexec container setup: clone init (namespace flags {flags:#x})");
    let (forked, placed) = match joined_user_ns {
        Some(userns) => clone_in_user_ns(userns, &config, flags, into_cgroup_fd)?,
        None => clone_with_flags(flags, into_cgroup_fd)?,
    };
    drop(into_cgroup);
    let pid = match forked {
        Forked::Child => init::run(InitArgs {
            config: &config,
            id: &options.id,
            channel: child_end,
            fifo: fifo.as_fd(),
            proc: proc.as_fd(),
            join: &joins,
            close: vec![dir.lock_fd(), parent_end.raw_fd()],
            new_user_ns,
            joined_user_ns: joined_user_ns.is_some(),
            wait_for_parent: new_user_ns || moved_by_parent,
            unshare_cgroupns: late_cgroupns,
            state: &state,
            idmapped: &idmapped,
            rootfs: RootfsOptions {
                no_pivot: options.no_pivot,
                user_ns: new_user_ns
                    || joined_user_ns.is_some()
                    || crate::rootless::in_user_namespace(),
            },
            no_new_keyring: options.no_new_keyring,
            preserve_fds: options.listen_fds.saturating_add(options.preserve_fds),
        }),
        Forked::Parent(pid) => {
            drop(child_end);
            pid
        }
    };
    let guard = KillOnDrop(Some(pid));
    // Hooks run in our own pid and time namespaces, not those init was cloned into.
    namespaces::restore_for_children()?;
    // Saved with init's identity at once: if this process dies now, `delete --force` finds init.
    let stat = proc_stat(pid.as_raw())
        .ok_or_else(|| Error::Init("container init exited during create".into()))?;
    state.pid = pid.as_raw();
    state.init_start_time = stat.start_time;
    dir.save(&state)?;

    if new_user_ns {
        user_ns::write_maps(pid.as_raw(), &config, map_writer)?;
    }
    if !state.cgroup.hierarchies.is_empty() {
        manager.apply(pid.as_raw(), placed)?;
    }
    if let Some(group) = &state.intel_rdt {
        intel_rdt::add(group, pid.as_raw())?;
    }
    // linux.netDevices: init's network namespace exists (cloned new, or the path it joins),
    // and init runs nothing of the user's before `start`; hooks see the devices.
    if let Some(plan) = net_devices {
        match joins.iter().find(|j| j.kind == LinuxNamespaceType::Network) {
            Some(joined) => plan.apply(joined.fd.as_fd())?,
            None => {
                let netns = open_path(Path::new(&format!("/proc/{pid}/ns/net")), OFlag::O_RDONLY)?;
                plan.apply(netns.as_fd())?;
            }
        }
    }
    if new_user_ns || moved_by_parent {
        parent_end.send(ToChild::Proceed)?;
    }
    let mut parent = InitParent {
        config: &config,
        state: &state,
        pid: pid.as_raw(),
        console: None,
    };
    let failed_hook = match parent_end.serve(&mut parent)? {
        Outcome::Ready => None,
        Outcome::Closed => return Err(Error::Init(describe_early_exit(guard.reap()))),
        Outcome::HookFailed(err) => Some(err),
    };
    let mut console = parent.console.take();
    if let Some(err) = failed_hook {
        // A failed hook: the spec goes on to destroy the container, then run poststop hooks.
        drop(guard);
        let stopped = state.hook_input(Status::Stopped, 0);
        hooks::run_all_warn(&config.spec, HookKind::Poststop, &stopped);
        return Err(err);
    }

    if let (Some(socket), Some(master)) = (&options.console_socket, &console) {
        super::handoff::send_console(socket, master)?;
        console = None;
    }
    if let Some(socket) = &options.pidfd_socket {
        super::handoff::send_pidfd(socket, pid.as_raw())?;
    }
    state.status = Status::Created;
    dir.save(&state)?;
    if let Some(pid_file) = &options.pid_file {
        write_atomic(pid_file, pid.to_string().as_bytes(), 0o644)?;
    }
    guard.disarm();
    Ok((state, console))
}

/// create's side of init's requests during setup.
struct InitParent<'a> {
    config: &'a Config,
    state: &'a State,
    pid: i32,
    console: Option<OwnedFd>,
}

impl sync::Parent for InitParent<'_> {
    fn console(&mut self, master: OwnedFd) -> Result<()> {
        self.console = Some(master);
        Ok(())
    }

    fn seccomp_listener(&mut self, listener: OwnedFd) -> Result<()> {
        let input = self.state.hook_input(Status::Creating, self.pid);
        crate::seccomp::send_to_agent(self.config.seccomp.as_ref(), &listener, self.pid, &input)
    }

    fn runtime_hooks(&mut self) -> Result<()> {
        let input = self.state.hook_input(Status::Creating, self.pid);
        hooks::run_all(&self.config.spec, HookKind::Prestart, &input)
            .and_then(|()| hooks::run_all(&self.config.spec, HookKind::CreateRuntime, &input))
    }
}

fn open_path(path: &Path, flags: OFlag) -> Result<OwnedFd> {
    nix::fcntl::open(path, flags | OFlag::O_CLOEXEC, Mode::empty())
        .ctx(|| format!("open {}", path.display()))
}

fn describe_early_exit(status: Option<WaitStatus>) -> String {
    match status {
        Some(WaitStatus::Exited(_, code)) => {
            format!("container init exited with status {code} during setup")
        }
        Some(WaitStatus::Signaled(_, sig, _)) => {
            format!("container init was killed by {sig} during setup")
        }
        _ => "container init exited during setup".to_string(),
    }
}

/// Kills and reaps a half-made init unless `create` got to the end.
struct KillOnDrop(Option<Pid>);

impl KillOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }

    /// Reap init after it closed its end of the channel; returns how it ended.
    fn reap(&self) -> Option<WaitStatus> {
        self.0.and_then(|pid| waitpid(pid, None).ok())
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}

/// The name of `uid` in the host's passwd, as runc shows in `list`.
fn owner_name(uid: u32) -> String {
    if uid == 0 {
        return "root".to_string();
    }
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                (fields.nth(1)? == uid.to_string()).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// On v2, a container with its own cgroup namespace and a writable /sys/fs/cgroup mount gets
/// its cgroup (the runtime spec's "cgroup ownership"), owned by the host id of its user.
fn delegate_cgroup(cgroup: &Cgroup, config: &Config) -> Result<()> {
    // A systemd unit's cgroup is made later, by systemd.
    let Some(h) = cgroup
        .unified()
        .filter(|h| cgroup.is_v2() && h.created && cgroup.systemd.is_none())
    else {
        return Ok(());
    };
    let writable_mount = config.spec.mounts().iter().flatten().any(|m| {
        m.destination() == Path::new("/sys/fs/cgroup")
            && matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2"))
            && !m.options().iter().flatten().any(|o| o == "ro")
    });
    if !writable_mount || !config.new_namespace(LinuxNamespaceType::Cgroup) {
        return Ok(());
    }
    let Some(user) = config.spec.process().as_ref().map(|p| p.user()) else {
        return Ok(());
    };
    let (uid, gid) = user_ns::host_ids(config, user.uid(), user.gid());
    if uid == 0 {
        return Ok(());
    }
    cgroups::v2::delegate(&h.path, uid, gid)
}

/// The record of a container being made (`create`, `restore`): status creating, no pid yet.
pub(crate) fn new_state(
    id: &str,
    config: &Config,
    cgroup: Cgroup,
    intel_rdt: Option<intel_rdt::RdtGroup>,
    notify_socket: Option<String>,
) -> State {
    State {
        oci_version: OCI_VERSION.to_string(),
        id: id.to_string(),
        status: Status::Creating,
        pid: 0,
        bundle: config.bundle.clone(),
        rootfs: config.rootfs.clone(),
        created: rfc3339_nanos(SystemTime::now()),
        owner: owner_name(nix::unistd::geteuid().as_raw()),
        annotations: config
            .spec
            .annotations()
            .clone()
            .map(|a| a.into_iter().collect::<BTreeMap<_, _>>())
            .unwrap_or_default(),
        init_start_time: 0,
        config: config.spec.clone(),
        cgroup,
        intel_rdt,
        notify_socket,
    }
}
