//! The process side shared by a container's init and a process exec'd into it: scheduling,
//! rlimits, identity and capabilities, the working directory, finding the program, and the
//! final exec with a clean signal and descriptor state.

use std::convert::Infallible;
use std::ffi::{CString, OsStr};

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{AccessFlags, Gid, Uid};
use oci_spec::runtime::Process;

use super::attrs;
use super::sync::ChildEnd;
use crate::capabilities::{self, CapSets, ProcessCaps};
use crate::error::{Context, Error, Result};

/// Search path when the process env has no PATH (execvp's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The prepared exec: everything checked before `Ready`, so `start` cannot fail on a missing binary.
pub struct Exec {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    umask: u32,
    no_new_privs: bool,
    personality: Option<oci_spec::runtime::LinuxPersonality>,
    apparmor_profile: Option<String>,
    selinux_label: Option<String>,
    /// Descriptors 3..3+N the caller passed on (`--preserve-fds`) stay open across exec.
    pub preserve_fds: u32,
    /// The seccomp filters still to install: the very last step before execve, so that the
    /// profile never sees brig's own work (the NOTIFY filter went in during `prepare`).
    seccomp: Option<crate::seccomp::Filters>,
    /// Without no_new_privs the filters need CAP_SYS_ADMIN, kept permitted (not effective) for
    /// that: the sets to raise it from, and to drop back to once the filters are in.
    seccomp_caps: Option<ProcessCaps>,
}

impl Exec {
    /// Apply `process` up to the exec and resolve its program, as the target user. A seccomp
    /// listener goes to the parent over `channel`.
    pub fn prepare(
        process: &Process,
        personality: Option<oci_spec::runtime::LinuxPersonality>,
        seccomp: Option<crate::seccomp::Filters>,
        channel: &ChildEnd,
    ) -> Result<Exec> {
        let no_new_privs = process.no_new_privileges().unwrap_or(false);
        // Attributes that need capabilities the user switch below may drop.
        if let Some(scheduler) = process.scheduler() {
            attrs::apply_scheduler(scheduler)?;
        }
        if let Some(io) = process.io_priority() {
            attrs::apply_io_priority(io.class(), io.priority())?;
        }

        crate::rlimits::apply(process.rlimits().as_deref().unwrap_or(&[]))?;
        // The NOTIFY filter goes in now: its listener must reach the agent during create. It
        // lets through everything but the NOTIFY rules; without no_new_privs it needs the
        // CAP_SYS_ADMIN we still have.
        let mut seccomp = seccomp;
        if let Some(filters) = seccomp.as_mut() {
            if let Some(listener) = filters.install_notify()? {
                channel.hand_over_seccomp_listener(listener)?;
            }
        }
        let seccomp = seccomp.filter(|f| !f.programs.is_empty());
        // The other filters go in just before execve. Without no_new_privs that needs
        // CAP_SYS_ADMIN: it stays permitted through the user switch, and `run` raises it only
        // for seccomp(2).
        let keep = if seccomp.is_some() && !no_new_privs {
            if capabilities::get()?.permitted & capabilities::SYS_ADMIN == 0 {
                return Err(Error::config(
                    "linux.seccomp",
                    "installing the profile without process.noNewPrivileges needs \
                     CAP_SYS_ADMIN, which brig does not have here",
                ));
            }
            capabilities::SYS_ADMIN
        } else {
            0
        };
        let mut env: Vec<String> = process.env().iter().flatten().cloned().collect();
        // Read as root, before the switch: the user may not be allowed to read it.
        if !env
            .iter()
            .any(|e| e.strip_prefix("HOME=").is_some_and(|h| !h.is_empty()))
        {
            let home = container_home(process.user().uid());
            env.retain(|e| !e.starts_with("HOME="));
            env.push(format!("HOME={home}"));
        }
        // runc's order: chdir while still root, so a cwd only root may enter works; where root
        // is refused (a volume only the user may enter) try again as the user.
        let cwd = process.cwd();
        let chdir =
            || nix::unistd::chdir(cwd).ctx(|| format!("chdir to process.cwd {}", cwd.display()));
        let chdir_as_user = match nix::unistd::chdir(cwd) {
            Ok(()) => false,
            Err(Errno::EACCES | Errno::EPERM) => true,
            Err(e) => return Err(e).ctx(|| format!("chdir to process.cwd {}", cwd.display())),
        };
        switch_user(process, keep)?;
        if chdir_as_user {
            chdir()?;
        }
        super::guard::check_cwd(cwd)?; // issue 12, CVE-2024-21626
        let seccomp_caps = if keep != 0 {
            let wanted = match process.capabilities() {
                Some(caps) => CapSets::from_spec(caps).process_caps(),
                None => capabilities::get()?,
            };
            (wanted.effective & keep == 0).then_some(wanted)
        } else {
            None
        };

        let env: Vec<&str> = env.iter().map(String::as_str).collect();
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
            personality,
            preserve_fds: 0,
            apparmor_profile: process.apparmor_profile().clone(),
            selinux_label: process.selinux_label().clone(),
            no_new_privs,
            seccomp,
            seccomp_caps,
        })
    }

    /// The last steps, then execve.
    pub fn run(&self) -> Result<Infallible> {
        self.last_steps()?;
        self.execve()
    }

    /// The last steps before the program runs: umask, personality, LSM label, no_new_privs,
    /// signals reset, descriptors closed on exec, seccomp. Init runs startContainer hooks
    /// between these and execve, so the hooks run under the container's filter (as runc's do).
    pub fn last_steps(&self) -> Result<()> {
        let exec = self;
        nix::sys::stat::umask(Mode::from_bits_truncate(exec.umask));
        if let Some(personality) = &exec.personality {
            attrs::apply_personality(personality)?;
        }
        crate::lsm::apply_on_exec(
            exec.apparmor_profile.as_deref(),
            exec.selinux_label.as_deref(),
        )?;
        if exec.no_new_privs {
            nix::sys::prctl::set_no_new_privs().ctx(|| "set no_new_privs")?;
        }
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
            .ctx(|| "reset the signal mask")?;
        // Dispositions are inherited across exec when ignored: Rust's runtime ignores SIGPIPE, and
        // our caller may ignore others. The program starts with every signal at its default.
        // The raw syscall: glibc refuses to touch its reserved signals 32 and 33.
        for signal in 1..=64 {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                // A signal the kernel will not reset is left as it is.
                let _ = crate::sys::signal::reset_to_default(signal);
            }
        }
        // The program gets fds 0-2 only; anything brig or its caller left open is closed at exec.
        close_on_exec_from(3u32.saturating_add(exec.preserve_fds))?;
        if let Some(filters) = &exec.seccomp {
            if let Some(wanted) = exec.seccomp_caps {
                // Effective for seccomp(2) alone.
                capabilities::set(ProcessCaps {
                    effective: wanted.effective | capabilities::SYS_ADMIN,
                    permitted: wanted.permitted | capabilities::SYS_ADMIN,
                    ..wanted
                })?;
            }
            // Nothing from here to execve may need a syscall the profile can deny.
            filters.install_programs()?;
            if let Some(wanted) = exec.seccomp_caps {
                // The profile may refuse capset, and that is harmless: execve computes the
                // program's permitted and effective sets from the inheritable, ambient and
                // bounding sets (final already) and its uid, never from ours (capabilities(7)),
                // so the CAP_SYS_ADMIN kept for seccomp(2) cannot reach it.
                let _ = capabilities::set(wanted);
            }
        }
        Ok(())
    }

    /// execve the program; returns only on failure.
    pub fn execve(&self) -> Result<Infallible> {
        let exec = self;
        let path = exec.path.as_c_str();
        nix::unistd::execve(path, &exec.argv, &exec.envp).ctx(|| {
            format!(
                "exec {}",
                OsStr::from_bytes(path.to_bytes()).to_string_lossy()
            )
        })
    }
}

/// `HOME` for a process whose env has none, as runc sets it: the home directory of `uid` in
/// the container's /etc/passwd (we are in its mount namespace and root), else `/`.
fn container_home(uid: u32) -> String {
    read_passwd()
        .and_then(|text| home_in_passwd(&text, uid))
        .unwrap_or_else(|| "/".to_string())
}

/// The image's /etc/passwd, if it is a regular file: a FIFO or device there must not block
/// or feed us forever.
fn read_passwd() -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/etc/passwd")
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(16 << 20).read_to_string(&mut text).ok()?;
    Some(text)
}

/// The home field of the first passwd entry with `uid`.
fn home_in_passwd(text: &str, uid: u32) -> Option<String> {
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.trim().split(':').collect();
        (fields.len() >= 6 && fields[2].parse::<u32>().ok() == Some(uid))
            .then(|| fields[5].to_string())
    })
}

pub fn cstring(bytes: &[u8], field: &str) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::config(field, "contains a NUL byte"))
}

/// Capabilities and identity, in the order that keeps the capabilities we are asked for.
/// `keep` stays in the permitted set on top of the configured one (see `CapSets::apply`).
pub fn switch_user(process: &Process, keep: u64) -> Result<()> {
    let caps = process.capabilities().as_ref().map(CapSets::from_spec);
    if let Some(caps) = &caps {
        caps.apply_bounding()?;
    }
    // Keep the permitted set across the uid change; capset below sets the rest.
    nix::sys::prctl::set_keepcaps(true).ctx(|| "set keep-capabilities")?;
    let user = process.user();
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // A user namespace whose gid map an unprivileged user wrote has setgroups denied: the
    // process keeps no groups but its gid, and asking for more is an error (runc's rule).
    if setgroups_denied() {
        if !groups.is_empty() {
            return Err(Error::config(
                "process.user.additionalGids",
                "cannot be set: the user namespace denies setgroups (an unprivileged user's \
                 own-id gid mapping; map subordinate gids through newgidmap instead)",
            ));
        }
    } else {
        nix::unistd::setgroups(&groups)
            .ctx(|| format!("set additional groups {:?}", user.additional_gids()))?;
    }
    give_stdio_to(user.uid())?;
    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).ctx(|| format!("set gid {}", user.gid()))?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).ctx(|| format!("set uid {}", user.uid()))?;
    nix::sys::prctl::set_keepcaps(false).ctx(|| "clear keep-capabilities")?;
    if let Some(caps) = &caps {
        caps.apply(keep)?;
    }
    Ok(())
}

fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// The process's stdio (its terminal, pipes, sockets) becomes its user's, as runc does, so a
/// non-root user can use its terminal. Only the owner changes (devpts may give the group by
/// its gid= option); /dev/null is left alone, and where the kernel refuses (an unmapped owner,
/// a read-only /dev) the descriptor stays as it is.
fn give_stdio_to(uid: u32) -> Result<()> {
    let null = nix::sys::stat::stat("/dev/null").ok().map(|s| s.st_rdev);
    for fd in 0..=2 {
        let Some(file) = crate::sys::fd::standard(fd) else {
            continue;
        };
        let stat = match nix::sys::stat::fstat(file) {
            Ok(stat) => stat,
            // A closed standard descriptor has nothing to hand over.
            Err(Errno::EBADF) => continue,
            Err(e) => return Err(e).ctx(|| format!("fstat fd {fd}")),
        };
        let kind = stat.st_mode & libc::S_IFMT;
        // Unlike runc, a regular file or another device given as stdio stays its owner's: a
        // redirect from a host file must not hand that file to the container's user.
        let terminal = kind == libc::S_IFCHR
            && Some(stat.st_rdev) != null
            && nix::unistd::isatty(file).unwrap_or(false);
        let channel = kind == libc::S_IFIFO || kind == libc::S_IFSOCK;
        if stat.st_uid == uid || !(terminal || channel) {
            continue;
        }
        match nix::unistd::fchown(file, Some(Uid::from_raw(uid)), None) {
            Ok(()) | Err(Errno::EINVAL | Errno::EPERM | Errno::EROFS) => {}
            Err(e) => return Err(e).ctx(|| format!("give fd {fd} to uid {uid}")),
        }
    }
    Ok(())
}

/// Mark every descriptor from `first` up close-on-exec: close_range(2), or where the kernel
/// lacks it (ENOSYS, EINVAL without CLOSE_RANGE_CLOEXEC) or a NOTIFY agent refuses it, one
/// fcntl per descriptor listed in /proc/self/fd (every one below RLIMIT_NOFILE without /proc).
fn close_on_exec_from(first: u32) -> Result<()> {
    match crate::sys::fd::close_range_cloexec(first) {
        Ok(_) => Ok(()),
        Err(Errno::ENOSYS | Errno::EINVAL | Errno::EPERM) => close_on_exec_each_from(first),
        Err(e) => Err(e).ctx(|| "mark descriptors close-on-exec"),
    }
}

/// close_range's fallback: one fcntl per open descriptor from `first` up.
fn close_on_exec_each_from(first: u32) -> Result<()> {
    let mark = |fd: i32| -> Result<()> {
        match crate::sys::fd::set_cloexec(fd) {
            Ok(_) | Err(Errno::EBADF) => Ok(()),
            Err(e) => Err(e).ctx(|| format!("mark descriptor {fd} close-on-exec")),
        }
    };
    let first = i32::try_from(first).unwrap_or(i32::MAX);
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        // The directory's own descriptor is close-on-exec already.
        let fds: Vec<i32> = dir
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .filter(|fd| *fd >= first)
            .collect();
        return fds.into_iter().try_for_each(mark);
    }
    let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .ctx(|| "read RLIMIT_NOFILE")?;
    let last = i32::try_from(soft).unwrap_or(i32::MAX);
    (first..last).try_for_each(mark)
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
    match nix::unistd::faccessat(
        nix::fcntl::AT_FDCWD,
        path,
        AccessFlags::X_OK,
        nix::fcntl::AtFlags::AT_EACCESS,
    ) {
        Ok(()) => Ok(()),
        // A NOTIFY agent may refuse faccessat2, and old kernels lack it:
        // fall back to the mode bits, as Go's LookPath (and so runc) does.
        Err(Errno::EPERM | Errno::ENOSYS) if stat.st_mode & 0o111 != 0 => Ok(()),
        Err(e) => Err(e).ctx(field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, OwnedFd};

    #[test]
    fn home_comes_from_the_first_entry_of_the_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\n\
                      daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n\
                      short:x:7\n\
                      app:x:1000:1000:App:/home/app:/bin/sh\n\
                      again:x:1000:1000::/elsewhere:/bin/sh\n";
        assert_eq!(home_in_passwd(passwd, 0).as_deref(), Some("/root"));
        assert_eq!(home_in_passwd(passwd, 1000).as_deref(), Some("/home/app"));
        assert_eq!(home_in_passwd(passwd, 7), None);
        assert_eq!(home_in_passwd(passwd, 1234), None);
    }

    fn cloexec(fd: i32) -> bool {
        crate::sys::fd::is_cloexec(fd) == Some(true)
    }

    #[test]
    fn the_fallback_marks_every_descriptor_from_first() {
        let a: OwnedFd = nix::unistd::dup(std::io::stdin()).unwrap();
        let b: OwnedFd = nix::unistd::dup(std::io::stdin()).unwrap();
        let (low, high) = (
            a.as_raw_fd().min(b.as_raw_fd()),
            a.as_raw_fd().max(b.as_raw_fd()),
        );
        assert!(!cloexec(low) && !cloexec(high));
        close_on_exec_each_from(high as u32).unwrap();
        assert!(!cloexec(low), "below first: untouched");
        assert!(cloexec(high));
    }
}
