//! `restore`: make a container from a checkpoint's images with CRIU (runc's `Restore`). The
//! result is an ordinary running container: its state, cgroup and hooks are a create's.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxNamespaceType;

use super::run::{wait_forwarding, FORWARDED};
use crate::cgroups;
use crate::config::Config;
use crate::criu::{self, Common, Notify, Req, ReqType, Swrk};
use crate::error::{Context, Error, Result};
use crate::hooks::{self, HookKind};
use crate::procfs::stat::proc_stat;
use crate::rootfs::resolve::{create_file, fd_path, mkdir_all, open_in_root};
use crate::state::{ContainerDir, State, Status};

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub common: Common,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
    /// `--systemd-cgroup`: the container's cgroup is a transient unit, as at create.
    pub systemd_cgroup: bool,
}

/// Restore, and without `detach` wait for the container as `run` does; the exit code.
pub fn restore(options: &RestoreOptions) -> Result<i32> {
    crate::state::validate_id(&options.id)?;
    let common = &options.common;
    // The image directory is checked before anything is made.
    match std::fs::metadata(&common.image_path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::option(
                "image_path",
                format!("{} is not a directory", common.image_path.display()),
            ))
        }
        Err(e) => {
            return Err(Error::option(
                "image_path",
                format!(
                    "{}: {}",
                    common.image_path.display(),
                    crate::error::errno_text(nix::errno::Errno::from_raw(
                        e.raw_os_error().unwrap_or(0)
                    ))
                ),
            ))
        }
    }
    let descriptors = criu::read_descriptors(&common.image_path)?;
    if let Some(mode) = &common.manage_cgroups_mode {
        criu::cgroups_mode(mode)?;
    }
    criu::empty_ns_mask(&common.empty_ns)?;
    let config = Config::load(&options.bundle)?;
    let terminal = config.spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    match (terminal, &options.console_socket) {
        (false, Some(_)) => {
            return Err(Error::option(
                "console_socket",
                "is only for a container with process.terminal true",
            ))
        }
        (true, None) => {
            return Err(Error::option(
                "console_socket",
                "missing: process.terminal needs one to hand the terminal to",
            ))
        }
        _ => {}
    }
    let linux = config.spec.linux().as_ref();
    let resources = linux.and_then(|l| l.resources().clone());
    let spec_devices = linux.and_then(|l| l.devices().clone()).unwrap_or_default();
    // The cgroup is made as create makes it, with either driver; CRIU is put in it when it
    // starts (with systemd: the unit is started with CRIU as its process, as runc does), and
    // the tree it restores is born there.
    let mut cgroup = cgroups::new(
        linux.and_then(|l| l.cgroups_path().as_deref()),
        &options.id,
        options.systemd_cgroup,
    )?;
    cgroup.check_existing()?;
    let dir = ContainerDir::create(&options.root, &options.id)?;
    let mut restored = None;
    let made = dir
        .save_cgroup_intent(&cgroup.intent())
        .and_then(|()| cgroup.create(cgroups::needs_unified(resources.as_ref())))
        .and_then(|()| cgroup.set(resources.as_ref(), &spec_devices, false))
        .and_then(|()| {
            restore_in(
                &dir,
                &config,
                options,
                &*cgroup,
                &descriptors,
                &mut restored,
            )
        });
    let state = match made {
        Ok(state) => state,
        Err(err) => {
            if let Some(pid) = restored {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                let _ = waitpid(Pid::from_raw(pid), None);
            }
            if let Err(cleanup) = cgroup.destroy() {
                tracing::warn!("{cleanup}");
            }
            if let Err(cleanup) = dir.remove() {
                tracing::warn!("{cleanup}");
            }
            return Err(err);
        }
    };
    drop(dir); // unlock: state, exec, kill and delete work on it from now on
    if options.detach {
        return Ok(0);
    }
    // Like a foreground run: pass signals on, wait, exit with its status, remove it.
    let pid = Pid::from_raw(state.pid);
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    FORWARDED.iter().for_each(|s| mask.add(*s));
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .ctx(|| "block signals")?;
    let code = match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => code,
        Ok(WaitStatus::Signaled(_, sig, _)) => 128 + sig as i32,
        _ => wait_forwarding(pid, &mask)?,
    };
    super::delete(&options.root, &options.id, true)?;
    Ok(code)
}

fn restore_in(
    dir: &ContainerDir,
    config: &Config,
    options: &RestoreOptions,
    cgroup: &dyn cgroups::Manager,
    descriptors: &[String],
    restored: &mut Option<i32>,
) -> Result<State> {
    let common = &options.common;
    let mut state =
        super::create::new_state(&options.id, config, cgroup.record().clone(), None, None);
    let images = open_dir(&common.image_path)?;
    let work = match &common.work_path {
        Some(path) => {
            std::fs::create_dir_all(path).ctx(|| format!("create {}", path.display()))?;
            Some(open_dir(path)?)
        }
        None => None,
    };
    let mut opts = common.opts(
        &config.spec,
        images.as_fd(),
        work.as_ref().map(|w| w.as_fd()),
        "restore.log",
    )?;
    opts.set_evasive_devices(true);
    opts.set_rst_sibling(true);
    if let Some(profile) = &options.lsm_profile {
        opts.set_lsm_profile(profile.clone());
    }
    if let Some(context) = &options.lsm_mount_context {
        opts.set_lsm_mount_context(context.clone());
    }
    // Namespaces the container joined: net and pid handed to CRIU as the externals of the
    // dump, the others joined by CRIU itself.
    let mut ns_fds: Vec<OwnedFd> = Vec::new();
    for ns in config.namespaces() {
        let Some(path) = ns.path() else { continue };
        if let Some(key) = criu::external_ns_key(ns.typ()) {
            let fd = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                .ctx(|| format!("open namespace {}", path.display()))?;
            opts.inherit_fd.push(criu::inherit_fd(key, fd.as_raw_fd()));
            ns_fds.push(fd);
        } else if ns.typ() == LinuxNamespaceType::Cgroup {
            return Err(Error::config(
                "linux.namespaces",
                "criu cannot restore into a joined cgroup namespace",
            ));
        } else {
            let mut join = criu::JoinNs::new();
            join.set_ns(criu::ns_name(ns.typ()).to_string());
            join.set_ns_file(path.to_string_lossy().into_owned());
            opts.join_ns.push(join);
        }
    }
    prepare_mountpoints(config)?;
    for e in criu::external_mounts(&config.spec, &config.bundle, &config.rootfs, &state.cgroup) {
        opts.ext_mnt.push(criu::ext_mount(&e.dest, &e.source));
    }
    let masked = config
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.masked_paths().as_ref())
        .is_some_and(|m| !m.is_empty());
    if masked {
        let null = Path::new("/dev/null");
        opts.ext_mnt.push(criu::ext_mount(null, null));
    }
    // Init's pipes at dump are our own stdio now (CRIU's 0, 1 and 2 are ours).
    for (n, what) in descriptors.iter().enumerate().take(3) {
        if what.contains("pipe:") {
            opts.inherit_fd.push(criu::inherit_fd(what, n as i32));
        }
    }
    // CRIU needs its root to be a mount point whose parent is not overmounted.
    let criu_root = CriuRoot::bind(&dir.path.join("criu-root"), &config.rootfs)?;
    opts.set_root(criu_root.path.to_string_lossy().into_owned());

    let swrk = Swrk {
        criu: &common.criu,
        log: common.log_path("restore.log"),
        inherit: ns_fds.iter().map(|f| f.as_fd()).collect(),
        stdio: true,
    };
    let mut notify = RestoreNotify {
        dir,
        state: &mut state,
        cgroup,
        console_socket: options.console_socket.as_deref(),
        restored,
    };
    let resp = swrk.run(criu::request(ReqType::RESTORE, opts), &mut notify)?;
    drop(criu_root);
    let pid = match resp.restore.pid() {
        0 => notify.restored.unwrap_or(0),
        pid => pid,
    };
    *notify.restored = Some(pid);
    let stat = proc_stat(pid)
        .ok_or_else(|| Error::Init(format!("restored init {pid} is gone already")))?;
    state.pid = pid;
    state.init_start_time = stat.start_time;
    state.status = Status::Running;
    dir.save(&state)?;
    if let Some(pid_file) = &options.pid_file {
        crate::atomic_file::write(pid_file, pid.to_string().as_bytes(), 0o644)?;
    }
    Ok(state)
}

struct RestoreNotify<'a> {
    dir: &'a ContainerDir,
    state: &'a mut State,
    cgroup: &'a dyn cgroups::Manager,
    console_socket: Option<&'a Path>,
    restored: &'a mut Option<i32>,
}

impl Notify for RestoreNotify<'_> {
    /// CRIU runs in the container's cgroup, so the restored tree does; and it is told the
    /// container's own cgroup paths (a new id has new ones).
    fn started(&mut self, criu_pid: i32, req: &mut Req) -> Result<()> {
        self.cgroup.apply(criu_pid, false)?;
        // On v2 too (runc 1.1 skips it there): without the root CRIU puts the tree back in the
        // cgroup it was dumped from, the original's, not this container's.
        let text = std::fs::read_to_string(format!("/proc/{criu_pid}/cgroup"))
            .ctx(|| format!("read the cgroups of criu {criu_pid}"))?;
        let opts = req.opts.mut_or_insert_default();
        for (ctrl, path) in cgroup_lines(&text) {
            let mut root = criu::CgroupRoot::new();
            root.set_ctrl(ctrl);
            root.set_path(path);
            opts.cg_root.push(root);
        }
        Ok(())
    }

    fn notify(&mut self, script: &str, pid: i32, fd: Option<OwnedFd>) -> Result<()> {
        match script {
            "setup-namespaces" => {
                let input = self.state.hook_input(Status::Creating, pid);
                hooks::run_all(&self.state.config, HookKind::Prestart, &input)?;
                hooks::run_all(&self.state.config, HookKind::CreateRuntime, &input)?;
            }
            "post-restore" => {
                *self.restored = Some(pid);
                // Saved at once: a restore killed from here on leaves `delete --force` init.
                if let Some(stat) = proc_stat(pid) {
                    self.state.pid = pid;
                    self.state.init_start_time = stat.start_time;
                    self.state.status = Status::Running;
                    self.dir.save(self.state)?;
                }
            }
            "orphan-pts-master" => {
                if let (Some(socket), Some(master)) = (self.console_socket, fd.as_ref()) {
                    super::handoff::send_console(socket, master)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// `(controllers, path)` of each v1 line of `/proc/PID/cgroup`.
fn cgroup_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
            // The unified hierarchy of a hybrid host is "" to CRIU, as in /proc/PID/cgroup.
            Some((ctrl.to_string(), path.to_string()))
        })
        .collect()
}

fn open_dir(path: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", path.display()))
}

/// The rootfs bound on a directory of the state dir while CRIU restores; unmounted and
/// removed on drop.
struct CriuRoot {
    path: PathBuf,
}

impl CriuRoot {
    fn bind(path: &Path, rootfs: &Path) -> Result<CriuRoot> {
        std::fs::create_dir(path).ctx(|| format!("create {}", path.display()))?;
        let root = CriuRoot {
            path: path.to_path_buf(),
        };
        mount(
            Some(rootfs),
            path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx(|| format!("bind {} to {}", rootfs.display(), path.display()))?;
        Ok(root)
    }
}

impl Drop for CriuRoot {
    fn drop(&mut self) {
        let _ = umount2(&self.path, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// The mount points of the config, made in the rootfs as a create makes them (a copied
/// bundle, or one whose bind sources were emptied, lacks them). Bind mounts are mounted for
/// the time of it, so that the mount points of mounts nested in them are made too (runc
/// issue 2748). Nothing below a tmpfs: CRIU restores those with their content.
fn prepare_mountpoints(config: &Config) -> Result<()> {
    let rootfs = &config.rootfs;
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open rootfs {}", rootfs.display()))?;
    let mounts = config.spec.mounts().clone().unwrap_or_default();
    let tmpfs: Vec<&Path> = mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .map(|m| m.destination().as_path())
        .collect();
    let mut temporary = TempMounts(Vec::new());
    for m in &mounts {
        let dest = m.destination();
        if tmpfs.iter().any(|t| dest != *t && dest.starts_with(t)) {
            continue;
        }
        let bind = m.typ().as_deref() == Some("bind")
            || m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind");
        if m.typ().as_deref() == Some("cgroup") {
            continue;
        }
        if !bind {
            mkdir_all(root.as_fd(), dest, 0o755)?;
            continue;
        }
        let Some(source) = m.source() else { continue };
        let source = if source.is_relative() {
            config.bundle.join(source)
        } else {
            source.clone()
        };
        let target = match std::fs::metadata(&source) {
            Ok(meta) if !meta.is_dir() => create_file(root.as_fd(), dest, 0o644)?,
            Ok(_) => mkdir_all(root.as_fd(), dest, 0o755)?,
            Err(_) => continue,
        };
        let target_path = fd_path(&target);
        mount(
            Some(&source),
            target_path.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx(|| {
            format!(
                "bind {} to {} for restore",
                source.display(),
                dest.display()
            )
        })?;
        // The mount itself (the handle above is the directory under it).
        let mounted = open_in_root(root.as_fd(), dest, OFlag::O_PATH)
            .ctx(|| format!("open {} in the container", dest.display()))?;
        temporary.0.push(mounted);
    }
    Ok(())
}

/// Mounts `prepare_mountpoints` made, lazily unmounted in reverse order.
struct TempMounts(Vec<OwnedFd>);

impl Drop for TempMounts {
    fn drop(&mut self) {
        for fd in self.0.drain(..).rev() {
            let _ = umount2(fd_path(&fd).as_str(), MntFlags::MNT_DETACH);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_lines_with_the_unified_one() {
        let text = "9:name=systemd:/a\n8:pids:/a/b\n0::/c\n";
        assert_eq!(
            cgroup_lines(text),
            vec![
                ("name=systemd".to_string(), "/a".to_string()),
                ("pids".to_string(), "/a/b".to_string()),
                (String::new(), "/c".to_string()),
            ]
        );
    }
}
