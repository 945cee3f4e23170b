//! cgroups: where a container's cgroup lives on each hierarchy, creating it, putting init in
//! it, applying `linux.resources`, freezing, listing its processes and removing it.
//!
//! Written for brig rather than taken from cgroups-rs: we need runc's path rules (relative to
//! our own cgroup per v1 hierarchy), to record which directories we created (a shared cgroup is
//! never removed), and one write per setting on the start path.

pub mod devices;
pub mod stats;
pub mod v1;

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only v1 hierarchies.
    V1,
    /// v1 controllers plus a cgroup2 mount (systemd's hybrid layout).
    Hybrid,
    /// The unified hierarchy at /sys/fs/cgroup.
    V2,
}

/// What the host has, read from /proc/self/mountinfo at run time.
pub fn detect() -> Mode {
    detect_in(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

fn detect_in(mounts: &str) -> Mode {
    let fstype_at = |target: &str| {
        mounts.lines().find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (left.split(' ').nth(4)? == target)
                .then(|| right.split(' ').next().unwrap_or("").to_string())
        })
    };
    match fstype_at("/sys/fs/cgroup").as_deref() {
        Some("cgroup2") => Mode::V2,
        _ if fstype_at("/sys/fs/cgroup/unified").as_deref() == Some("cgroup2") => Mode::Hybrid,
        _ => Mode::V1,
    }
}

/// One v1 hierarchy's directory for the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    /// Controllers bound to this hierarchy (`cpu`, `memory`, …).
    pub controllers: Vec<String>,
    pub path: PathBuf,
    /// brig made this directory (and so removes it); false when it already existed.
    pub created: bool,
    /// How many of its parents brig made too (removed with it when they are empty).
    #[serde(default)]
    pub created_parents: usize,
}

/// The container's cgroup, as recorded in its state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    pub hierarchies: Vec<Hierarchy>,
}

/// A mounted v1 hierarchy: its controllers, mount point and our own cgroup in it.
struct Mounted {
    controllers: Vec<String>,
    mount_point: PathBuf,
    mount_root: String,
    own: String,
}

fn mounted_v1(mounts: &str) -> Vec<Mounted> {
    let own_cgroups = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut found = Vec::new();
    for line in mounts.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut right = right.split(' ');
        if right.next() != Some("cgroup") {
            continue;
        }
        let left: Vec<&str> = left.split(' ').collect();
        let options = right.nth(1).unwrap_or("");
        let controllers: Vec<String> = options
            .split(',')
            .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("name=") && !o.contains('='))
            .map(String::from)
            .collect();
        if controllers.is_empty() {
            continue; // named hierarchies (name=systemd) carry no controller
        }
        let own = own_cgroups.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
            let mut listed: Vec<&str> = list.split(',').collect();
            listed.sort_unstable();
            let mut wanted: Vec<&str> = controllers.iter().map(String::as_str).collect();
            wanted.sort_unstable();
            (listed == wanted).then(|| path.to_string())
        });
        if let (Some(own), Some(root), Some(point)) = (own, left.get(3), left.get(4)) {
            found.push(Mounted {
                controllers,
                mount_point: PathBuf::from(point),
                mount_root: root.to_string(),
                own,
            });
        }
    }
    found
}

impl Cgroup {
    /// Where the container's cgroup goes: `cgroupsPath` absolute → below each hierarchy's root;
    /// relative → below our own cgroup; empty → `brig-<id>` below our own cgroup.
    pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        if detect_in(&mounts) == Mode::V2 {
            return Err(Error::config(
                "linux.cgroupsPath",
                "this host has only cgroup v2, which this version of brig does not support yet",
            ));
        }
        let wanted = cgroups_path
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(format!("brig-{id}")));
        if wanted
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(Error::config(
                "linux.cgroupsPath",
                format!("{wanted:?} must not contain .."),
            ));
        }
        // "/" or "." would put the container (and its limits and device rules) on a hierarchy's
        // root or on brig's caller's own cgroup.
        if !wanted
            .components()
            .any(|c| matches!(c, std::path::Component::Normal(_)))
        {
            return Err(Error::config(
                "linux.cgroupsPath",
                format!("{wanted:?} names no cgroup of the container's own"),
            ));
        }
        if wanted.as_os_str().to_str().is_some_and(|p| p.contains(':')) {
            return Err(Error::config(
                "linux.cgroupsPath",
                "slice:prefix:name paths need --systemd-cgroup, which is not supported yet",
            ));
        }
        let hierarchies = mounted_v1(&mounts)
            .into_iter()
            .map(|m| {
                let within = if wanted.is_absolute() {
                    wanted.clone()
                } else {
                    Path::new(&m.own).join(&wanted)
                };
                // The mount may show a subtree (in a cgroup namespace): strip its root.
                let rel = within.strip_prefix(&m.mount_root).unwrap_or(&within);
                let rel = rel.strip_prefix("/").unwrap_or(rel);
                Hierarchy {
                    controllers: m.controllers,
                    path: m.mount_point.join(rel),
                    created: false,
                    created_parents: 0,
                }
            })
            .collect();
        Ok(Cgroup { hierarchies })
    }

    /// Make the directories (parents too); remember which ones are ours.
    pub fn create(&mut self) -> Result<()> {
        for h in &mut self.hierarchies {
            match fs::create_dir(&h.path) {
                Ok(()) => h.created = true,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    h.created_parents = h
                        .path
                        .ancestors()
                        .skip(1)
                        .take_while(|p| !p.exists())
                        .count();
                    fs::create_dir_all(&h.path)
                        .ctx(|| format!("create cgroup {}", h.path.display()))?;
                    h.created = true;
                }
                Err(e) => return Err(e).ctx(|| format!("create cgroup {}", h.path.display())),
            }
            if h.controllers.iter().any(|c| c == "cpuset") {
                v1::inherit_cpuset(&h.path)?;
            }
        }
        Ok(())
    }

    /// brig made this cgroup for the container (rather than joining one that existed): only
    /// then are all of its processes the container's.
    pub fn owned(&self) -> bool {
        self.hierarchies.iter().any(|h| h.created)
    }

    pub fn hierarchy(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
    }

    /// Put `pid` into the container's cgroup on every hierarchy.
    pub fn add(&self, pid: i32) -> Result<()> {
        for h in &self.hierarchies {
            let file = h.path.join("cgroup.procs");
            fs::write(&file, pid.to_string())
                .ctx(|| format!("add pid {pid} to {}", file.display()))?;
        }
        Ok(())
    }

    /// Every process in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let Some(h) = self
            .hierarchy("freezer")
            .or_else(|| self.hierarchies.first())
        else {
            return Ok(Vec::new());
        };
        let file = h.path.join("cgroup.procs");
        let text = match fs::read_to_string(&file) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            other => other.ctx(|| format!("read {}", file.display()))?,
        };
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Freeze or thaw, waiting until the kernel says it is done.
    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        let h = self
            .hierarchy("freezer")
            .ok_or_else(|| Error::Other("no freezer cgroup hierarchy on this host".into()))?;
        v1::set_frozen(&h.path, frozen)
    }

    pub fn frozen(&self) -> bool {
        self.hierarchy("freezer")
            .and_then(|h| fs::read_to_string(h.path.join("freezer.state")).ok())
            .is_some_and(|s| s.trim() == "FROZEN")
    }

    /// Kill whatever is left (frozen first so nothing forks away), then remove the directories
    /// brig created, retrying while the kernel drains them.
    pub fn destroy(&self) -> Result<()> {
        // In a cgroup we only joined, the other processes belong to someone else.
        let left = if self.owned() {
            self.pids()?
        } else {
            Vec::new()
        };
        if !left.is_empty() {
            let _ = self.set_frozen(true);
            for pid in &left {
                // SAFETY: kill with integer arguments only.
                unsafe { libc::kill(*pid, libc::SIGKILL) };
            }
            let _ = self.set_frozen(false);
        }
        for h in self.hierarchies.iter().filter(|h| h.created) {
            remove_dir_retrying(&h.path)?;
            // Parents we made go too, unless another container lives in them now.
            for parent in h.path.ancestors().skip(1).take(h.created_parents) {
                if fs::remove_dir(parent).is_err() {
                    break;
                }
            }
        }
        Ok(())
    }
}

fn remove_dir_retrying(path: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pause = Duration::from_millis(1);
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(e).ctx(|| format!("remove cgroup {}", path.display())),
        }
    }
}
