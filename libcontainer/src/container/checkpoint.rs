//! `checkpoint`: dump a running container with CRIU into an image directory (runc's
//! `Checkpoint`), then remove it unless it is left running.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::criu::{self, Common, Notify, ReqType, Swrk};
use crate::error::{Context, Error, Result};
use crate::state::{ContainerDir, Status};

#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    pub root: PathBuf,
    pub id: String,
    pub common: Common,
    /// `--parent-path`: the previous (pre-)dump, relative to the image directory.
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub pre_dump: bool,
    /// `--status-fd`: gets a `\0` once the lazy-pages server is ready.
    pub status_fd: Option<i32>,
    /// `--page-server ADDRESS:PORT`.
    pub page_server: Option<String>,
}

pub fn checkpoint(options: &CheckpointOptions) -> Result<()> {
    let common = &options.common;
    let page_server = options
        .page_server
        .as_deref()
        .map(parse_page_server)
        .transpose()?;
    check_parent(&common.image_path, options.parent_path.as_deref())?;
    if common.lazy_pages && !options.pre_dump {
        check_lazy_pipe_size()?;
    }
    if let Some(mode) = &common.manage_cgroups_mode {
        criu::cgroups_mode(mode)?;
    }
    criu::empty_ns_mask(&common.empty_ns)?;
    let dir = ContainerDir::open(&options.root, &options.id)?;
    let Some(mut state) = dir.load()? else {
        return Err(Error::WrongState {
            op: "checkpoint",
            id: options.id.clone(),
            status: Status::Creating.to_string(),
        });
    };
    state.refresh();
    if !matches!(state.status, Status::Running | Status::Paused) {
        return Err(Error::WrongState {
            op: "checkpoint",
            id: options.id.clone(),
            status: state.status.to_string(),
        });
    }
    let images = make_dir(&common.image_path)?;
    let work = common.work_path.as_deref().map(make_dir).transpose()?;
    let mut opts = common.opts(
        &state.config,
        images.as_fd(),
        work.as_ref().map(|w| w.as_fd()),
        "dump.log",
    )?;
    opts.set_pid(state.pid);
    opts.set_root(state.rootfs.to_string_lossy().into_owned());
    opts.set_leave_running(options.leave_running);
    // Joined network and pid namespaces stay outside the image; restore joins them again.
    for ns in state
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        let (Some(key), Some(path)) = (criu::external_ns_key(ns.typ()), ns.path()) else {
            continue;
        };
        let meta = std::fs::metadata(path).ctx(|| format!("stat namespace {}", path.display()))?;
        opts.external.push(format!(
            "{}[{}]:{key}",
            criu::ns_name(ns.typ()),
            std::os::unix::fs::MetadataExt::ino(&meta)
        ));
    }
    // CRIU freezes through the cgroup freezer rather than ptrace when there is one.
    if let Some(h) = state
        .cgroup
        .hierarchy("freezer")
        .or_else(|| state.cgroup.unified())
    {
        if crate::cgroups::for_state(&state.cgroup).owned() {
            opts.set_freeze_cgroup(h.path.to_string_lossy().into_owned());
        }
    }
    if let Some((address, port)) = page_server {
        let mut ps = criu::PageServer::new();
        ps.set_address(address);
        ps.set_port(port);
        opts.ps = protobuf::MessageField::some(ps);
    }
    if let Some(parent) = &options.parent_path {
        opts.set_parent_img(parent.to_string_lossy().into_owned());
        opts.set_track_mem(true);
    }
    let mut status_fd = None;
    if common.lazy_pages {
        if let Some(fd) = options.status_fd {
            status_fd = Some(writable_fd(fd)?);
        }
    }
    if !options.pre_dump {
        for e in criu::external_mounts(&state.config, &state.bundle, &state.rootfs, &state.cgroup) {
            opts.ext_mnt.push(criu::ext_mount(&e.dest, &e.dest));
        }
        // A masked file is /dev/null bound over it.
        for path in state
            .config
            .linux()
            .as_ref()
            .and_then(|l| l.masked_paths().as_ref())
            .into_iter()
            .flatten()
        {
            let inside = format!("/proc/{}/root/{}", state.pid, path.trim_start_matches('/'));
            if std::fs::metadata(&inside).is_ok_and(|m| !m.is_dir()) {
                opts.ext_mnt
                    .push(criu::ext_mount(Path::new(path), Path::new("/dev/null")));
            }
        }
        write_descriptors(&common.image_path, state.pid)?;
    }
    let kind = if options.pre_dump {
        ReqType::PRE_DUMP
    } else {
        ReqType::DUMP
    };
    let swrk = Swrk {
        criu: &common.criu,
        log: common.log_path("dump.log"),
        inherit: Vec::new(),
        stdio: false,
    };
    let mut notify = DumpNotify { status_fd };
    let dumped = swrk.run(criu::request(kind, opts), &mut notify);
    drop(dir);
    if options.leave_running || options.pre_dump {
        return dumped.map(drop);
    }
    match dumped {
        // The processes are gone (CRIU killed them after the dump): remove the rest.
        Ok(_) => super::delete(&options.root, &options.id, true),
        // runc destroys the container after a failed dump too, if its processes are gone
        // (CRIU died, or killed them, part way); one still running is left as it was.
        Err(err) => {
            state.refresh();
            if state.status == Status::Stopped {
                if let Err(cleanup) = super::delete(&options.root, &options.id, true) {
                    tracing::warn!("{cleanup}");
                }
            } else {
                tracing::debug!("checkpoint failed: container {} still runs", options.id);
            }
            Err(err)
        }
    }
}

/// The pipe size CRIU's lazy page server asks for: `PIPE_MAX_SIZE` pages (as many 40-byte
/// `pipe_buffer`s as fit in 8 pages: 819), which the kernel rounds up to 1024 pages.
const LAZY_PIPE_BYTES: u64 = 4 << 20;

/// `--lazy-pages`: CRIU 4.2's page server sizes its pipe with F_SETPIPE_SZ to 4 MiB and,
/// refused (above `fs.pipe-max-size` without CAP_SYS_RESOURCE), goes on without its sink and
/// fails the first page transfer ("splice: Bad file descriptor"), after the restore side has
/// started. Refused here instead, before anything is dumped.
fn check_lazy_pipe_size() -> Result<()> {
    let max = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let privileged = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false);
    match max {
        Some(max) if max < LAZY_PIPE_BYTES && !privileged => Err(Error::option(
            "lazy_pages",
            format!(
                "CRIU's lazy page server needs pipes of {LAZY_PIPE_BYTES} bytes: \
                 fs.pipe-max-size is {max} and brig lacks CAP_SYS_RESOURCE \
                 (raise /proc/sys/fs/pipe-max-size to {LAZY_PIPE_BYTES})"
            ),
        )),
        _ => Ok(()),
    }
}

struct DumpNotify {
    status_fd: Option<OwnedFd>,
}

impl Notify for DumpNotify {
    fn notify(&mut self, script: &str, _pid: i32, _fd: Option<OwnedFd>) -> Result<()> {
        if script == "status-ready" {
            if let Some(fd) = self.status_fd.take() {
                if let Err(e) = nix::unistd::write(&fd, &[0u8]) {
                    tracing::warn!("write to --status-fd: {e}");
                }
            }
        }
        Ok(())
    }
}

/// runc's rules: relative to the image directory, and a directory.
fn check_parent(images: &Path, parent: Option<&Path>) -> Result<()> {
    let Some(parent) = parent else {
        return Ok(());
    };
    if parent.is_absolute() {
        return Err(Error::option("parent_path", "must be relative"));
    }
    let real = images.join(parent);
    match std::fs::metadata(&real) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::option(
            "parent_path",
            format!("{} is not a directory", real.display()),
        )),
        Err(e) => Err(Error::option(
            "parent_path",
            format!("{}: {}", real.display(), e.to_string().to_lowercase()),
        )),
    }
}

fn parse_page_server(value: &str) -> Result<(String, i32)> {
    let bad = || Error::option("page_server", format!("{value:?} is not ADDRESS:PORT"));
    let (address, port) = value.rsplit_once(':').ok_or_else(bad)?;
    let address = address.trim_start_matches('[').trim_end_matches(']');
    if address.is_empty() {
        return Err(bad());
    }
    let port = port.parse::<u16>().map_err(|_| bad())?;
    Ok((address.to_string(), i32::from(port)))
}

/// The `--status-fd` the caller passed, checked to be open for writing.
fn writable_fd(fd: i32) -> Result<OwnedFd> {
    let path = format!("/proc/self/fd/{fd}");
    nix::fcntl::open(
        path.as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::option("status_fd", format!("{fd}: {}", e.desc().to_lowercase())))
}

/// `mkdir` (0700, parents too) and open an image or work directory.
fn make_dir(path: &Path) -> Result<OwnedFd> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .ctx(|| format!("create {}", path.display()))?;
    nix::fcntl::open(
        path,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", path.display()))
}

/// What init's stdio is (`pipe:[N]`, `/dev/null`, ...), for restore to hand the same back.
fn write_descriptors(images: &Path, pid: i32) -> Result<()> {
    let fds: Vec<String> = (0..3)
        .map(|n| {
            std::fs::read_link(format!("/proc/{pid}/fd/{n}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let data = serde_json::to_vec(&fds).unwrap_or_default();
    crate::atomic_file::write(&images.join(criu::DESCRIPTORS), &data, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_server_address() {
        assert_eq!(
            parse_page_server("0.0.0.0:27277").unwrap(),
            ("0.0.0.0".to_string(), 27277)
        );
        assert_eq!(
            parse_page_server("[::1]:1").unwrap(),
            ("::1".to_string(), 1)
        );
        assert!(parse_page_server("nope").is_err());
        assert!(parse_page_server(":1").is_err());
        assert!(parse_page_server("a:x").is_err());
    }

    #[test]
    fn parent_path_rules() {
        let dir = std::env::temp_dir().join(format!("brig-cpt-parent-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("p")).unwrap();
        assert!(check_parent(&dir, None).is_ok());
        assert!(check_parent(&dir, Some(Path::new("p"))).is_ok());
        let err = check_parent(&dir, Some(Path::new("/abs"))).unwrap_err();
        assert!(err.to_string().contains("must be relative"));
        assert!(check_parent(&dir, Some(Path::new("missing"))).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
