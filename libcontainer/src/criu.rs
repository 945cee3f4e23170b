//! Talking to CRIU as runc does: `criu swrk FD` on a `SOCK_SEQPACKET` socketpair, one request
//! in CRIU's RPC (protobuf, the messages of `rust-criu`), notifications answered until the
//! final response. Also what dump and restore both declare to CRIU: external mounts and
//! namespaces, and the stdio record (`descriptors.json`).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use protobuf::{Message, MessageField};
pub use rust_criu::rust_criu_protobuf::rpc::{
    Cgroup_root as CgroupRoot, Criu_cg_mode as CgMode, Criu_opts as Opts,
    Criu_page_server_info as PageServer, Criu_req as Req, Criu_req_type as ReqType,
    Criu_resp as Resp, Ext_mount_map as ExtMount, Inherit_fd as InheritFd,
    Join_namespace as JoinNs,
};

use crate::cgroups::Cgroup;
use crate::error::{Context, Error, Result};
use crate::rootfs::resolve::open_in_root;
use crate::sys::socket::recv_fd;

/// The stdio of the container's init at dump, which restore hands back (runc's file name).
pub const DESCRIPTORS: &str = "descriptors.json";

/// How long brig waits for any message from CRIU before it gives up on a hung CRIU:
/// `BRIG_CRIU_TIMEOUT` seconds, else ten minutes (a dump of a large memory is slow, but
/// CRIU reports between its stages).
pub fn timeout() -> Duration {
    std::env::var("BRIG_CRIU_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(Duration::from_secs(600), Duration::from_secs)
}

/// What the operation does at CRIU's notifications (`setup-namespaces`, `post-restore`,
/// `orphan-pts-master`, ...) and when CRIU has started.
pub trait Notify {
    /// CRIU runs as `criu_pid`; the request can still change (restore: its cgroups).
    fn started(&mut self, _criu_pid: i32, _req: &mut Req) -> Result<()> {
        Ok(())
    }
    fn notify(&mut self, script: &str, pid: i32, fd: Option<OwnedFd>) -> Result<()>;
}

/// One CRIU session.
pub struct Swrk<'a> {
    pub criu: &'a Path,
    /// The log CRIU writes, named in errors.
    pub log: PathBuf,
    /// Descriptors CRIU must inherit (the number in the request is the same as ours).
    pub inherit: Vec<BorrowedFd<'a>>,
    /// CRIU's stdio: ours (restore hands it to the restored process) or /dev/null.
    pub stdio: bool,
}

impl Swrk<'_> {
    /// Send `req`, answer notifications through `notify`, return CRIU's final response.
    pub fn run(&self, mut req: Req, notify: &mut dyn Notify) -> Result<Resp> {
        let what = req.type_();
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .ctx(|| "create the socket pair for criu")?;
        for fd in self.inherit.iter().copied().chain([theirs.as_fd()]) {
            inheritable(fd)?;
        }
        let stdio = || {
            if self.stdio {
                Stdio::inherit()
            } else {
                Stdio::null()
            }
        };
        let child = Command::new(self.criu)
            .arg("swrk")
            .arg(theirs.as_raw_fd().to_string())
            .stdin(stdio())
            .stdout(stdio())
            .stderr(stdio())
            .spawn();
        drop(theirs);
        let mut child = ChildGuard(Some(child.ctx(|| format!("run {}", self.criu.display()))?));
        // The restored tree is our child too: descriptors we hand CRIU are not kept open in
        // anything else brig starts (hooks).
        for fd in &self.inherit {
            let _ = fcntl(*fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
        }
        notify.started(child.pid(), &mut req)?;
        let bytes = req
            .write_to_bytes()
            .map_err(|e| Error::Other(format!("encode the criu request: {e}")))?;
        nix::unistd::write(&ours, &bytes).ctx(|| "send the request to criu")?;
        let timeout = timeout();
        let mut buf = vec![0u8; 10 * 4096];
        loop {
            wait_readable(&ours, timeout).map_err(|e| match e {
                Error::Other(m) => Error::Other(format!("{m}; log file: {}", self.log.display())),
                e => e,
            })?;
            let (n, fd) = recv_fd(ours.as_fd(), &mut buf).ctx(|| "read criu's answer")?;
            if n == 0 {
                let status = child.wait();
                return Err(self.failed(&format!("criu exited without answering ({status})")));
            }
            let resp = Resp::parse_from_bytes(&buf[..n])
                .map_err(|e| Error::Other(format!("decode criu's answer: {e}")))?;
            if !resp.success() {
                return Err(self.failed(&format!(
                    "criu failed: type {what:?} errno {}",
                    resp.cr_errno()
                )));
            }
            match resp.type_() {
                ReqType::NOTIFY => {
                    let script = resp.notify.script().to_string();
                    tracing::debug!("criu notify: {script}");
                    notify.notify(&script, resp.notify.pid(), fd)?;
                    let mut ack = Req::new();
                    ack.set_type(ReqType::NOTIFY);
                    ack.set_notify_success(true);
                    let bytes = ack
                        .write_to_bytes()
                        .map_err(|e| Error::Other(format!("encode the criu request: {e}")))?;
                    nix::unistd::write(&ours, &bytes).ctx(|| "answer criu")?;
                }
                t if t == what => {
                    drop(ours);
                    let status = child.wait();
                    // A pre-dump CRIU waits for the next request: it is ended, not failed.
                    if what != ReqType::PRE_DUMP && !status.starts_with("exit status: 0") {
                        return Err(self.failed(&format!("criu failed: {status}")));
                    }
                    return Ok(resp);
                }
                t => return Err(Error::Other(format!("unexpected criu answer {t:?}"))),
            }
        }
    }

    /// `message`, the log file, and the last errors CRIU logged.
    fn failed(&self, message: &str) -> Error {
        let errors: Vec<String> = std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("Error") || l.contains("error"))
            .map(str::trim)
            .map(String::from)
            .collect();
        let tail = errors[errors.len().saturating_sub(3)..].join("; ");
        if tail.is_empty() {
            Error::Other(format!("{message}; log file: {}", self.log.display()))
        } else {
            Error::Other(format!(
                "{message}; log file: {}: {tail}",
                self.log.display()
            ))
        }
    }
}

fn inheritable(fd: BorrowedFd<'_>) -> Result<()> {
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))
        .map(drop)
        .ctx(|| "pass a descriptor to criu")
}

fn wait_readable(fd: &OwnedFd, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Other(format!(
                "criu did not answer within {} s (BRIG_CRIU_TIMEOUT); it was killed",
                timeout.as_secs()
            )));
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) if n > 0 => return Ok(()),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e).ctx(|| "wait for criu"),
        }
    }
}

/// Kills and reaps CRIU unless it ended by itself.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn pid(&self) -> i32 {
        self.0
            .as_ref()
            .and_then(|c| i32::try_from(c.id()).ok())
            .unwrap_or(0)
    }

    fn wait(&mut self) -> String {
        match self.0.take().map(|mut c| c.wait()) {
            Some(Ok(status)) => status.to_string(),
            Some(Err(e)) => e.to_string(),
            None => "gone".to_string(),
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The options every dump and restore share, from the CLI's flags.
#[derive(Debug, Clone, Default)]
pub struct Common {
    pub criu: PathBuf,
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub lazy_pages: bool,
    pub auto_dedup: bool,
    /// `--manage-cgroups-mode`: soft, full or strict.
    pub manage_cgroups_mode: Option<String>,
    /// `--empty-ns`: namespace types CRIU makes but does not restore (network only).
    pub empty_ns: Vec<String>,
}

impl Common {
    /// Options in CRIU's terms; `images` and `work` are the open directories.
    pub fn opts(
        &self,
        spec: &Spec,
        images: BorrowedFd<'_>,
        work: Option<BorrowedFd<'_>>,
        log: &str,
    ) -> Result<Opts> {
        let mut opts = Opts::new();
        opts.set_images_dir_fd(images.as_raw_fd());
        if let Some(work) = work {
            opts.set_work_dir_fd(work.as_raw_fd());
        }
        opts.set_log_level(4);
        opts.set_log_file(log.to_string());
        opts.set_manage_cgroups(true);
        opts.set_notify_scripts(true);
        opts.set_shell_job(self.shell_job);
        opts.set_tcp_established(self.tcp_established);
        opts.set_ext_unix_sk(self.ext_unix_sk);
        opts.set_file_locks(self.file_locks);
        opts.set_orphan_pts_master(true);
        opts.set_auto_dedup(self.auto_dedup);
        opts.set_lazy_pages(self.lazy_pages);
        opts.set_empty_ns(empty_ns_mask(&self.empty_ns)?);
        if let Some(mode) = &self.manage_cgroups_mode {
            opts.set_manage_cgroups_mode(cgroups_mode(mode)?);
        }
        // runc's rule: the annotation names a container's own CRIU config file ("" for none).
        match spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get("org.criu.config"))
        {
            Some(file) if file.is_empty() => {}
            Some(file) => opts.set_config_file(file.clone()),
            None => opts.set_config_file("/etc/criu/runc.conf".to_string()),
        }
        Ok(opts)
    }

    /// Where CRIU writes its log `name`: the work directory, else the image directory.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.work_path
            .as_deref()
            .unwrap_or(&self.image_path)
            .join(name)
    }
}

/// `--manage-cgroups-mode` as CRIU's enum.
pub fn cgroups_mode(mode: &str) -> Result<CgMode> {
    match mode {
        "soft" => Ok(CgMode::SOFT),
        "full" => Ok(CgMode::FULL),
        "strict" => Ok(CgMode::STRICT),
        other => Err(Error::option(
            "manage_cgroups_mode",
            format!("{other:?} is not soft, full or strict"),
        )),
    }
}

/// `--empty-ns` as clone flags. The network namespace is always one: like runc, brig does not
/// manage network devices, so CRIU must not restore them.
pub fn empty_ns_mask(names: &[String]) -> Result<u32> {
    let mut mask = libc::CLONE_NEWNET as u32;
    for name in names {
        match name.as_str() {
            "network" => mask |= libc::CLONE_NEWNET as u32,
            other => {
                return Err(Error::option(
                    "empty_ns",
                    format!("namespace {other:?} is not supported (only network)"),
                ))
            }
        }
    }
    Ok(mask)
}

/// CRIU's key for a joined namespace it must treat as external (runc's names).
pub fn external_ns_key(kind: LinuxNamespaceType) -> Option<&'static str> {
    match kind {
        LinuxNamespaceType::Network => Some("extRootNetNS"),
        LinuxNamespaceType::Pid => Some("extRootPidNS"),
        _ => None,
    }
}

pub fn ns_name(kind: LinuxNamespaceType) -> &'static str {
    match kind {
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Time => "time",
    }
}

/// A mount of the config that CRIU sees as external: where it is inside the container (`dest`,
/// symlinks resolved in the root) and its source on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    pub dest: PathBuf,
    pub source: PathBuf,
}

/// What runc declares: bind mounts, the v1 cgroup hierarchies bound in, and device nodes
/// (bound in a user namespace). Masked files are added by the caller (dump looks at them).
pub fn external_mounts(
    spec: &Spec,
    bundle: &Path,
    rootfs: &Path,
    cgroup: &Cgroup,
) -> Vec<External> {
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok();
    let inside = |dest: &Path| -> PathBuf {
        root.as_ref()
            .and_then(|r| resolved_in_root(r.as_fd(), rootfs, dest))
            .unwrap_or_else(|| dest.to_path_buf())
    };
    let mut out = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let bind = m.typ().as_deref() == Some("bind")
            || m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind");
        if bind {
            let source = m.source().clone().unwrap_or_default();
            // A relative source is the bundle's, as for create.
            let source = if source.is_relative() {
                bundle.join(source)
            } else {
                source
            };
            out.push(External {
                dest: inside(m.destination()),
                source,
            });
        } else if m.typ().as_deref() == Some("cgroup") && !cgroup.is_v2() {
            for h in &cgroup.hierarchies {
                let name = h.mount_name();
                out.push(External {
                    dest: inside(&m.destination().join(name)),
                    source: h.path.clone(),
                });
            }
        }
    }
    let devices = crate::rootfs::devices::default_devices()
        .into_iter()
        .map(|d| d.path)
        .chain(
            spec.linux()
                .as_ref()
                .and_then(|l| l.devices().as_ref())
                .into_iter()
                .flatten()
                .map(|d| d.path().clone()),
        );
    for path in devices {
        if !out.iter().any(|e| e.dest == path) {
            out.push(External {
                dest: path.clone(),
                source: path,
            });
        }
    }
    out
}

/// `dest` as the container sees it after its symlinks (clamped to the root).
fn resolved_in_root(root: BorrowedFd<'_>, rootfs: &Path, dest: &Path) -> Option<PathBuf> {
    let fd = open_in_root(root, dest, OFlag::O_PATH).ok()?;
    let host = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    let rootfs = std::fs::canonicalize(rootfs).ok()?;
    let rel = host.strip_prefix(&rootfs).ok()?;
    Some(Path::new("/").join(rel))
}

pub fn ext_mount(key: &Path, val: &Path) -> ExtMount {
    let mut m = ExtMount::new();
    m.set_key(key.to_string_lossy().into_owned());
    m.set_val(val.to_string_lossy().into_owned());
    m
}

pub fn inherit_fd(key: &str, fd: i32) -> InheritFd {
    let mut i = InheritFd::new();
    i.set_key(key.to_string());
    i.set_fd(fd);
    i
}

pub fn request(kind: ReqType, opts: Opts) -> Req {
    let mut req = Req::new();
    req.set_type(kind);
    req.opts = MessageField::some(opts);
    req
}

/// Read `descriptors.json` of an image directory: what init's fd 0, 1 and 2 were.
pub fn read_descriptors(images: &Path) -> Result<Vec<String>> {
    let path = images.join(DESCRIPTORS);
    let data = std::fs::read(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::option(
                "image_path",
                format!(
                    "{} holds no checkpoint ({DESCRIPTORS} is missing)",
                    images.display()
                ),
            )
        } else {
            Error::Io {
                what: format!("read {}", path.display()),
                err: e,
            }
        }
    })?;
    serde_json::from_slice(&data).map_err(|e| {
        Error::option(
            "image_path",
            format!(
                "{} is not a checkpoint's {DESCRIPTORS}: {e}",
                path.display()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_ns_always_has_the_network() {
        assert_eq!(empty_ns_mask(&[]).unwrap(), libc::CLONE_NEWNET as u32);
        assert_eq!(
            empty_ns_mask(&["network".into()]).unwrap(),
            libc::CLONE_NEWNET as u32
        );
        let err = empty_ns_mask(&["ipc".into()]).unwrap_err().to_string();
        assert!(err.contains("\"ipc\" is not supported"), "{err}");
    }

    #[test]
    fn cgroups_modes() {
        assert_eq!(cgroups_mode("soft").unwrap(), CgMode::SOFT);
        assert_eq!(cgroups_mode("strict").unwrap(), CgMode::STRICT);
        assert!(cgroups_mode("ignore").is_err());
    }

    #[test]
    fn descriptors_missing_and_corrupt() {
        let dir = std::env::temp_dir().join(format!("brig-criu-desc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = read_descriptors(&dir).unwrap_err().to_string();
        assert!(err.contains("holds no checkpoint"), "{err}");
        std::fs::write(dir.join(DESCRIPTORS), "{nope").unwrap();
        let err = read_descriptors(&dir).unwrap_err().to_string();
        assert!(err.contains("is not a checkpoint"), "{err}");
        std::fs::write(
            dir.join(DESCRIPTORS),
            r#"["pipe:[1]","/dev/null","/dev/null"]"#,
        )
        .unwrap();
        assert_eq!(read_descriptors(&dir).unwrap()[0], "pipe:[1]");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn request_round_trips() {
        let mut opts = Opts::new();
        opts.set_images_dir_fd(5);
        opts.ext_mnt
            .push(ext_mount(Path::new("/a"), Path::new("/b")));
        let req = request(ReqType::DUMP, opts);
        let bytes = req.write_to_bytes().unwrap();
        let back = Req::parse_from_bytes(&bytes).unwrap();
        assert_eq!(back.type_(), ReqType::DUMP);
        assert_eq!(back.opts.ext_mnt[0].key(), "/a");
    }
}
