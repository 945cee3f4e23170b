//! The state directory `<root>/<id>/`: `state.json`, the init FIFO and the per-container lock.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::atomic_file::write as write_atomic;
use crate::error::{Context, Error, Result};
use crate::procfs::stat::process_alive;

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";
/// The cgroup a `create` is about to make, written before its first mkdir: what `delete
/// --force` removes when the create died before saving state.json.
pub const CGROUP_INTENT: &str = "cgroup.json";
/// Where brig keeps container state when `--root` is not given.
pub const DEFAULT_ROOT: &str = "/run/brig";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What `state.json` holds: the runtime-spec state, runc's extra fields, and what brig needs
/// to act on the container later (the init's identity and the config as it was at create).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Start time of init (clock ticks after boot), so a recycled pid is never taken for it.
    #[serde(default)]
    pub init_start_time: u64,
    /// The config as it was at create: later changes to config.json must not affect us.
    pub config: Spec,
    /// The container's cgroup on each hierarchy.
    #[serde(default)]
    pub cgroup: crate::cgroups::Cgroup,
    /// The resctrl group of `linux.intelRdt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<crate::intel_rdt::RdtGroup>,
    /// The `NOTIFY_SOCKET` of `create`, where `start` relays the container's READY=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_socket: Option<String>,
}

/// The view of a state that `state` and `list --format json` print.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
}

impl State {
    /// Bring `status` up to date with the kernel: a vanished init means `stopped`.
    pub fn refresh(&mut self) {
        if matches!(
            self.status,
            Status::Created | Status::Running | Status::Paused
        ) && !process_alive(self.pid, self.init_start_time)
        {
            self.status = Status::Stopped;
        }
    }

    /// The state JSON a hook reads on stdin: `status` and `pid` as the hook's namespace sees them.
    pub fn hook_input(&self, status: Status, pid: i32) -> Vec<u8> {
        let mut view = self.public();
        view.status = status;
        view.pid = pid;
        serde_json::to_vec(&view).unwrap_or_default()
    }

    pub fn public(&self) -> PublicState<'_> {
        PublicState {
            oci_version: &self.oci_version,
            id: &self.id,
            pid: if self.status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status: self.status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: &self.owner,
            annotations: &self.annotations,
        }
    }
}

/// Refuse ids that could escape the state root or confuse tools: runc's charset, bounded length.
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("it is empty");
    }
    if id.len() > 1024 {
        return bad("it is longer than 1024 bytes");
    }
    if id == "." || id == ".." {
        return bad("it is a relative path");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'))
    {
        return bad("only letters, digits, '_', '-', '.' and '+' are allowed");
    }
    Ok(())
}

/// A container's state directory, held under an exclusive lock for as long as this lives.
#[derive(Debug)]
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
    lock: Flock<OwnedFd>,
}

impl ContainerDir {
    /// Make the directory of a new container. Exactly one of many racing creators wins.
    pub fn create(root: &Path, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .ctx(|| format!("create state root {}", root.display()))?;
        let path = root.join(id);
        match fs::DirBuilder::new().mode(0o711).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Err(Error::Exists(id.into())),
            Err(e) => return Err(e).ctx(|| format!("create state directory {}", path.display())),
        }
        match lock_dir(&path) {
            Ok(lock) => Ok(ContainerDir {
                id: id.into(),
                path,
                lock,
            }),
            Err(e) => {
                let _ = fs::remove_dir(&path);
                Err(e)
            }
        }
    }

    /// Open and lock an existing container's directory; waits while another brig holds it.
    pub fn open(root: &Path, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        let path = root.join(id);
        let lock = match lock_dir(&path) {
            Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => {
                return Err(Error::NotFound(id.into()))
            }
            other => other?,
        };
        // A delete may have removed the directory while we waited for the lock.
        if !path.exists() {
            return Err(Error::NotFound(id.into()));
        }
        Ok(ContainerDir {
            id: id.into(),
            path,
            lock,
        })
    }

    pub fn lock_fd(&self) -> i32 {
        self.lock.as_raw_fd()
    }

    pub fn state_path(&self) -> PathBuf {
        self.path.join(STATE_FILE)
    }

    pub fn fifo_path(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    /// The saved state, refreshed against the kernel; `None` when a create died before saving.
    pub fn load(&self) -> Result<Option<State>> {
        read_state(&self.state_path(), &self.id)
    }

    pub fn save(&self, state: &State) -> Result<()> {
        let data = serde_json::to_vec(state)
            .map_err(|e| Error::Other(format!("encode state of {}: {e}", self.id)))?;
        write_atomic(&self.state_path(), &data, 0o600)
    }

    /// Record the cgroup about to be made (see [`CGROUP_INTENT`]).
    pub fn save_cgroup_intent(&self, cgroup: &crate::cgroups::Cgroup) -> Result<()> {
        let data = serde_json::to_vec(cgroup)
            .map_err(|e| Error::Other(format!("encode cgroup of {}: {e}", self.id)))?;
        write_atomic(&self.path.join(CGROUP_INTENT), &data, 0o600)
    }

    /// The cgroup a create recorded before making it; `None` when it recorded none.
    pub fn load_cgroup_intent(&self) -> Result<Option<crate::cgroups::Cgroup>> {
        let path = self.path.join(CGROUP_INTENT);
        let data = match fs::read(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).ctx(|| format!("read {}", path.display())),
        };
        serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| Error::Other(format!("parse {}: {e}", path.display())))
    }

    /// Remove the directory and everything in it; the lock goes with it.
    pub fn remove(self) -> Result<()> {
        fs::remove_dir_all(&self.path)
            .ctx(|| format!("remove state directory {}", self.path.display()))
    }
}

fn lock_dir(path: &Path) -> Result<Flock<OwnedFd>> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("open state directory {}", path.display()))?;
    Flock::lock(fd, FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .ctx(|| format!("lock state directory {}", path.display()))
}

fn read_state(path: &Path, id: &str) -> Result<Option<State>> {
    let data = match fs::read(path) {
        Ok(data) => data,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).ctx(|| format!("read {}", path.display())),
    };
    let mut state: State = serde_json::from_slice(&data).map_err(|e| {
        Error::Other(format!(
            "parse state of container {id:?} in {}: {e}",
            path.display()
        ))
    })?;
    state.refresh();
    Ok(Some(state))
}

/// The state of one container without taking its lock (readers see whole files: writes are atomic).
pub fn load(root: &Path, id: &str) -> Result<State> {
    validate_id(id)?;
    read_state(&root.join(id).join(STATE_FILE), id)?.ok_or_else(|| Error::NotFound(id.into()))
}

/// Every container under `root`, sorted by id; a missing root means none.
pub fn list(root: &Path) -> Result<Vec<State>> {
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx(|| format!("read state root {}", root.display())),
    };
    let mut states = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str() else { continue };
        if validate_id(id).is_err() {
            continue;
        }
        if let Ok(Some(state)) = read_state(&entry.path().join(STATE_FILE), id) {
            states.push(state);
        }
    }
    states.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(states)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for good in ["a", "web-1", "x_y.z+1", &"a".repeat(1024)] {
            validate_id(good).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é", &"a".repeat(1025)] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn create_is_exclusive_and_remove_cleans() {
        let root = std::env::temp_dir().join(format!("brig-state-{}", std::process::id()));
        let dir = ContainerDir::create(&root, "c1").unwrap();
        assert!(matches!(
            ContainerDir::create(&root, "c1"),
            Err(Error::Exists(_))
        ));
        assert!(dir.load().unwrap().is_none());
        dir.remove().unwrap();
        assert!(matches!(
            ContainerDir::open(&root, "c1"),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(load(&root, "c1"), Err(Error::NotFound(_))));
        assert!(list(&root).unwrap().is_empty());
        fs::remove_dir_all(&root).unwrap();
    }
}
