//! The container side of `create`: runs in the cloned child, sets the container up, reports
//! over the sync channel, waits on the exec FIFO for `start`, then execs the user program.

use std::convert::Infallible;
use std::ffi::{CString, OsStr};
use std::io::Write;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{AccessFlags, Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, Process};

use super::channel::{Channel, Message};
use crate::capabilities::CapSets;
use crate::config::Config;
use crate::error::{Context, Error, Result};
use crate::hooks::{self, HookKind};
use crate::namespaces::{self, JoinNamespace};
use crate::process_attrs;
use crate::rootfs::{self, RootfsOptions};
use crate::state::{State, Status};

/// Search path when the process env has no PATH (execvp's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
    /// The parent still has to place init in its cgroup or write its id maps.
    pub wait_for_parent: bool,
    /// The state as `create` wrote it, for the hooks init runs.
    pub state: &'a State,
    pub rootfs: RootfsOptions,
    pub no_new_keyring: bool,
}

/// The prepared exec: everything checked before `Ready`, so `start` cannot fail on a missing binary.
struct Exec {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    umask: u32,
    no_new_privs: bool,
    personality: Option<oci_spec::runtime::LinuxPersonality>,
    apparmor_profile: Option<String>,
    selinux_label: Option<String>,
}

/// Entry point of the cloned child. Never returns.
pub fn run(args: InitArgs<'_>) -> ! {
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
    if args.channel.send(&Message::Ready).is_err() {
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
    let err = match hooks::run_all(&args.config.spec, HookKind::StartContainer, &state) {
        Ok(()) => match exec_program(&exec) {
            Err(err) => err,
            Ok(never) => match never {},
        },
        Err(err) => err,
    };
    fail_after_start(Some(fifo), &err)
}

/// After `start` released us the sync channel is gone: the error goes back through the FIFO
/// (which `start` reads until we exec) and to stderr.
fn fail_after_start(fifo: Option<OwnedFd>, err: &Error) -> ! {
    let message = err.to_string();
    if let Some(fifo) = fifo {
        let _ = nix::unistd::write(&fifo, message.as_bytes());
    }
    let _ = writeln!(std::io::stderr(), "brig: {message}");
    // SAFETY: leave without running the parent's atexit handlers or destructors.
    unsafe { libc::_exit(127) }
}

fn setup(args: &InitArgs<'_>) -> Result<Exec> {
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
    let process = config
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::config("process", "missing"))?;

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
    if args.new_user_ns {
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .ctx(|| "become root (gid 0) in the user namespace")?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .ctx(|| "become root (uid 0) in the user namespace")?;
    }
    for ns in args
        .join
        .iter()
        .filter(|ns| !namespaces::applies_to_children(ns.kind))
    {
        namespaces::join(ns)?;
    }
    if !args.no_new_keyring {
        join_session_keyring(args.id)?;
    }
    if config.new_namespace(LinuxNamespaceType::Uts) {
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
    if let Some(score) = process.oom_score_adj() {
        write_proc(args.proc, "self/oom_score_adj", &score.to_string())?;
    }

    rootfs::prepare(config, args.rootfs)?;
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
    hooks::run_all(&config.spec, HookKind::CreateContainer, &state)?;
    rootfs::switch_root(config, args.rootfs)?;
    crate::sysctl::apply(config, args.proc)?;
    rootfs::finish(config)?;

    // Attributes that need capabilities the user switch below may drop.
    if let Some(scheduler) = process.scheduler() {
        process_attrs::apply_scheduler(scheduler)?;
    }
    if let Some(io) = process.io_priority() {
        process_attrs::apply_io_priority(io.class(), io.priority())?;
    }
    let linux = config.spec.linux().as_ref();
    if let Some(policy) = linux.and_then(|l| l.memory_policy().as_ref()) {
        process_attrs::apply_memory_policy(policy)?;
    }

    crate::rlimits::apply(process.rlimits().as_deref().unwrap_or(&[]))?;
    switch_user(process)?;
    nix::unistd::chdir(process.cwd())
        .ctx(|| format!("chdir to process.cwd {}", process.cwd().display()))?;

    let env: Vec<&str> = process.env().iter().flatten().map(String::as_str).collect();
    let args0 = process.args().as_deref().unwrap_or(&[]);
    let path = find_executable(&args0[0], &env)?;
    Ok(Exec {
        path: cstring(path.as_os_str().as_bytes(), "process.args[0]")?,
        argv: args0
            .iter()
            .map(|a| cstring(a.as_bytes(), "process.args"))
            .collect::<Result<_>>()?,
        envp: env
            .iter()
            .map(|e| cstring(e.as_bytes(), "process.env"))
            .collect::<Result<_>>()?,
        umask: process.user().umask().unwrap_or(0o022),
        personality: linux.and_then(|l| l.personality().clone()),
        apparmor_profile: process.apparmor_profile().clone(),
        selinux_label: process.selinux_label().clone(),
        no_new_privs: process.no_new_privileges().unwrap_or(false),
    })
}

fn cstring(bytes: &[u8], field: &str) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::config(field, "contains a NUL byte"))
}

/// Capabilities and identity, in the order that keeps the capabilities we are asked for.
fn switch_user(process: &Process) -> Result<()> {
    let caps = process.capabilities().as_ref().map(CapSets::from_spec);
    if let Some(caps) = &caps {
        caps.apply_bounding()?;
    }
    // Keep the permitted set across the uid change; capset below sets the rest.
    // SAFETY: prctl with integer arguments only.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) })
        .ctx(|| "set keep-capabilities")?;
    let user = process.user();
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    nix::unistd::setgroups(&groups)
        .ctx(|| format!("set additional groups {:?}", user.additional_gids()))?;
    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).ctx(|| format!("set gid {}", user.gid()))?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).ctx(|| format!("set uid {}", user.uid()))?;
    // SAFETY: prctl with integer arguments only.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) })
        .ctx(|| "clear keep-capabilities")?;
    if let Some(caps) = &caps {
        caps.apply()?;
    }
    Ok(())
}

/// Resolve `args[0]` as execvp would, with the container's PATH, as the container's user.
fn find_executable(name: &str, env: &[&str]) -> Result<PathBuf> {
    if name.contains('/') {
        return check_executable(Path::new(name)).map(|()| PathBuf::from(name));
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(name);
        if check_executable(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    Err(Error::config(
        "process.args[0]",
        format!("{name:?}: executable file not found in $PATH"),
    ))
}

fn check_executable(path: &Path) -> Result<()> {
    let field = || format!("process.args[0] {}", path.display());
    let stat = nix::sys::stat::stat(path).ctx(field)?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(Error::config(field(), "is not a regular file"));
    }
    nix::unistd::faccessat(
        nix::fcntl::AT_FDCWD,
        path,
        AccessFlags::X_OK,
        nix::fcntl::AtFlags::AT_EACCESS,
    )
    .ctx(field)
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

fn exec_program(exec: &Exec) -> Result<Infallible> {
    nix::sys::stat::umask(Mode::from_bits_truncate(exec.umask));
    if let Some(personality) = &exec.personality {
        process_attrs::apply_personality(personality)?;
    }
    crate::lsm::apply_on_exec(
        exec.apparmor_profile.as_deref(),
        exec.selinux_label.as_deref(),
    )?;
    if exec.no_new_privs {
        // SAFETY: prctl with integer arguments only.
        Errno::result(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
            .ctx(|| "set no_new_privs")?;
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .ctx(|| "reset the signal mask")?;
    // Dispositions are inherited across exec when ignored: Rust's runtime ignores SIGPIPE, and
    // our caller may ignore others. The program starts with every signal at its default.
    // The raw syscall: glibc refuses to touch its reserved signals 32 and 33.
    for signal in 1..=64 {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            // The kernel's struct sigaction: handler, flags, restorer, mask (one word).
            let default: [libc::c_ulong; 4] = [libc::SIG_DFL as libc::c_ulong, 0, 0, 0];
            // SAFETY: rt_sigaction reads a kernel sigaction of 8-byte mask size; SIG_DFL runs no code.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signal,
                    default.as_ptr(),
                    std::ptr::null_mut::<u8>(),
                    8,
                )
            };
        }
    }
    // The program gets fds 0-2 only; anything brig or its caller left open is closed at exec.
    // SAFETY: close_range marks descriptors close-on-exec; it touches no memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(ret).ctx(|| "mark descriptors close-on-exec")?;
    let path = exec.path.as_c_str();
    nix::unistd::execve(path, &exec.argv, &exec.envp).ctx(|| {
        format!(
            "exec {}",
            OsStr::from_bytes(path.to_bytes()).to_string_lossy()
        )
    })
}
