//! The cgroupfs driver: the container's cgroup as directories brig makes (or joins) on each
//! mounted hierarchy, v1 or unified, written through the cgroup file systems.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxDevice, LinuxResources};
use serde::{Deserialize, Serialize};

use super::manager::Manager;
use super::resources::write_cgroup_file;
use super::{stats, v1, v2};
use crate::error::{Context, Error, Result};

/// One hierarchy's directory for the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    /// Controllers bound to this hierarchy (`cpu`, `memory`, …); for the unified hierarchy
    /// the ones enabled for the container's cgroup.
    pub controllers: Vec<String>,
    pub path: PathBuf,
    /// brig made this directory (and so removes it); false when it already existed.
    pub created: bool,
    /// How many of its parents brig made too (removed with it when they are empty).
    #[serde(default)]
    pub created_parents: usize,
    /// The cgroup2 hierarchy: v2 file names, cgroup.freeze, cgroup.kill, eBPF device filter.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unified: bool,
}

impl Hierarchy {
    /// The directory name the hierarchy is mounted under in `/sys/fs/cgroup` (`unified`, or
    /// its controllers joined by commas; `name=systemd` as `systemd`, where systemd looks).
    pub fn mount_name(&self) -> String {
        if self.unified {
            return "unified".to_string();
        }
        self.controllers
            .iter()
            .map(|c| c.strip_prefix("name=").unwrap_or(c))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The container's cgroup, as recorded in its state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    pub hierarchies: Vec<Hierarchy>,
    /// The systemd unit it is (`--systemd-cgroup`); none for the cgroupfs driver (and in
    /// state files of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<super::systemd::Unit>,
}

impl Cgroup {
    /// See [`super::paths::resolve`].
    pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        super::paths::resolve(cgroups_path, id)
    }

    /// A v1 hierarchy with `controller`, or the unified one when the controller is enabled there.
    pub fn hierarchy(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
    }

    /// The container's cgroup in the unified hierarchy, if it has one.
    pub fn unified(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.unified)
    }

    /// A pure cgroup v2 host: the unified hierarchy is all there is.
    pub fn is_v2(&self) -> bool {
        !self.hierarchies.is_empty() && self.hierarchies.iter().all(|h| h.unified)
    }

    /// The hierarchy that freezes the container: the v1 freezer, else cgroup.freeze of v2.
    pub(crate) fn freezer(&self) -> Option<&Hierarchy> {
        self.hierarchy("freezer").or_else(|| self.unified())
    }

    /// Kill every process in the cgroup (cgroup.kill, or frozen then SIGKILL).
    pub(crate) fn kill_all(&self) -> Result<()> {
        if let Some(h) = self
            .unified()
            .filter(|h| h.path.join("cgroup.kill").exists())
        {
            if self.pids()?.is_empty() {
                return Ok(());
            }
            let file = h.path.join("cgroup.kill");
            return match write_cgroup_file(&file, "1") {
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                other => other.ctx(|| format!("write 1 to {}", file.display())),
            };
        }
        let left = self.pids()?;
        if !left.is_empty() {
            let _ = self.freeze(true);
            for pid in &left {
                // Gone already is fine.
                let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
            }
            let _ = self.freeze(false);
        }
        Ok(())
    }
}

/// The caller may make or use the cgroup `path`: it can write the directory (or, when it
/// does not exist yet, its nearest existing parent) and, when it exists, its cgroup.procs.
fn writable(path: &Path) -> bool {
    use nix::unistd::{access, AccessFlags};
    if path.is_dir() {
        return access(path, AccessFlags::W_OK).is_ok()
            && access(&path.join("cgroup.procs"), AccessFlags::W_OK).is_ok();
    }
    path.ancestors()
        .skip(1)
        .find(|p| p.is_dir())
        .is_some_and(|p| access(p, AccessFlags::W_OK | AccessFlags::X_OK).is_ok())
}

impl Manager for Cgroup {
    fn record(&self) -> &Cgroup {
        self
    }

    fn check_existing(&self) -> Result<()> {
        if let Some(h) = self.freezer().filter(|h| h.path.is_dir()) {
            let frozen = if h.unified {
                fs::read_to_string(h.path.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
            } else {
                v1::self_frozen(&h.path)?
            };
            if frozen {
                return Err(Error::Other(format!(
                    "container's cgroup unexpectedly frozen: {}",
                    h.path.display()
                )));
            }
        }
        let found = self.pids().map(|p| p.len()).unwrap_or(0);
        if found > 0 {
            tracing::warn!("container's cgroup is not empty: {found} process(es) found");
        }
        Ok(())
    }

    fn intent(&self) -> Cgroup {
        let mut planned = self.clone();
        for h in &mut planned.hierarchies {
            if !h.path.exists() {
                h.created = true;
                h.created_parents = missing_parents(&h.path);
            }
        }
        planned
    }

    fn keep_writable(&mut self) -> Vec<PathBuf> {
        let (keep, dropped): (Vec<Hierarchy>, Vec<Hierarchy>) =
            std::mem::take(&mut self.hierarchies)
                .into_iter()
                .partition(|h| writable(&h.path));
        self.hierarchies = keep;
        dropped.into_iter().map(|h| h.path).collect()
    }

    /// Make the directories (parents too); remember which ones are ours. In the unified
    /// hierarchy of a v2 host, or of a hybrid one when `unified_controllers`, every
    /// controller the parents offer is enabled down to the container's cgroup.
    fn create(&mut self, unified_controllers: bool) -> Result<()> {
        let v2 = self.is_v2();
        for h in &mut self.hierarchies {
            match fs::create_dir(&h.path) {
                Ok(()) => h.created = true,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    h.created_parents = missing_parents(&h.path);
                    fs::create_dir_all(&h.path)
                        .ctx(|| format!("create cgroup {}", h.path.display()))?;
                    h.created = true;
                }
                Err(e) => return Err(e).ctx(|| format!("create cgroup {}", h.path.display())),
            }
            if h.unified && (v2 || unified_controllers) {
                h.controllers = v2::enable_controllers(&h.path)?;
            } else if h.unified {
                h.controllers = v2::controllers(&h.path);
            } else if h.controllers.iter().any(|c| c == "cpuset") {
                v1::inherit_cpuset(&h.path)?;
            }
        }
        Ok(())
    }

    fn apply(&self, pid: i32, placed_by_clone: bool) -> Result<()> {
        for h in self
            .hierarchies
            .iter()
            .filter(|h| !(placed_by_clone && h.unified))
        {
            let file = h.path.join("cgroup.procs");
            write_cgroup_file(&file, &pid.to_string())
                .ctx(|| format!("add pid {pid} to {}", file.display()))?;
        }
        Ok(())
    }

    fn enter_exec(&self, sub: &super::exec::SubCgroups, pid: i32, init: i32) -> Result<()> {
        super::exec::enter(self, sub, pid, init)
    }

    fn set(
        &self,
        resources: Option<&LinuxResources>,
        spec_devices: &[LinuxDevice],
        update: bool,
    ) -> Result<()> {
        super::resources::apply(self, resources, spec_devices, update)
    }

    fn owned(&self) -> bool {
        self.hierarchies.iter().any(|h| h.created)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let Some(h) = self
            .hierarchy("freezer")
            .or_else(|| self.unified())
            .or_else(|| self.hierarchies.first())
        else {
            return Ok(Vec::new());
        };
        let mut pids = Vec::new();
        collect_pids(&h.path, &mut pids)?;
        Ok(pids)
    }

    fn can_freeze(&self) -> bool {
        self.freezer().is_some()
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        match self.freezer() {
            Some(h) if h.unified => v2::set_frozen(&h.path, frozen),
            Some(h) => v1::set_frozen(&h.path, frozen),
            None => Err(Error::Other(
                "no freezer cgroup hierarchy on this host".into(),
            )),
        }
    }

    fn frozen(&self) -> bool {
        match self.freezer() {
            Some(h) if h.unified => v2::frozen(&h.path),
            Some(h) => {
                fs::read_to_string(h.path.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
            }
            None => false,
        }
    }

    fn stats(&self) -> serde_json::Value {
        stats::stats(self)
    }

    fn oom_kills(&self) -> u64 {
        stats::oom_kills(self)
    }

    /// Kill whatever is left (with cgroup.kill, or frozen first so nothing forks away), then
    /// remove the directories brig created, retrying while the kernel drains them.
    fn destroy(&self) -> Result<()> {
        // In a cgroup we only joined, the other processes belong to someone else.
        if self.owned() {
            self.kill_all()?;
        }
        for h in self.hierarchies.iter().filter(|h| h.created) {
            remove_tree_retrying(&h.path)?;
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

/// The pids in `dir`'s cgroup.procs and in every cgroup below it.
fn collect_pids(dir: &Path, pids: &mut Vec<i32>) -> Result<()> {
    let file = dir.join("cgroup.procs");
    let text = match fs::read_to_string(&file) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENODEV)) => return Ok(()),
        other => other.ctx(|| format!("read {}", file.display()))?,
    };
    pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_pids(&entry.path(), pids)?;
        }
    }
    Ok(())
}

/// Remove a cgroup and the cgroups the container made below it, retrying while the kernel
/// drains them.
fn remove_tree_retrying(path: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    remove_tree(path, deadline)
}

fn remove_tree(path: &Path, deadline: Instant) -> Result<()> {
    match fs::remove_dir(path) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path(), deadline)?;
            }
        }
    }
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

/// How many of `path`'s parents do not exist yet (the ones creating `path` would make).
fn missing_parents(path: &Path) -> usize {
    path.ancestors().skip(1).take_while(|p| !p.exists()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_intent_marks_what_does_not_exist_yet_as_brigs() {
        let scratch = std::env::temp_dir().join(format!("brig-intent-{}", std::process::id()));
        fs::create_dir_all(&scratch).unwrap();
        let cg = Cgroup {
            hierarchies: vec![
                Hierarchy {
                    controllers: vec!["memory".into()],
                    path: scratch.join("a/b/c"),
                    created: false,
                    created_parents: 0,
                    unified: false,
                },
                Hierarchy {
                    controllers: Vec::new(),
                    path: scratch.clone(),
                    created: false,
                    created_parents: 0,
                    unified: true,
                },
            ],
            systemd: None,
        };
        let planned = cg.intent();
        let _ = fs::remove_dir(&scratch);
        assert!(planned.hierarchies[0].created);
        assert_eq!(planned.hierarchies[0].created_parents, 2);
        assert!(!planned.hierarchies[1].created);
        assert!(planned.owned() && !cg.owned());
    }

    #[test]
    fn the_state_record_reads_as_before() {
        // state.json written by earlier brig versions (no created_parents, no unified).
        let old = r#"{"hierarchies":[{"controllers":["memory"],"path":"/sys/fs/cgroup/memory/x","created":true}]}"#;
        let cg: Cgroup = serde_json::from_str(old).unwrap();
        assert_eq!(cg.hierarchies[0].created_parents, 0);
        assert!(!cg.hierarchies[0].unified);
        let text = serde_json::to_string(&cg).unwrap();
        assert_eq!(
            text,
            r#"{"hierarchies":[{"controllers":["memory"],"path":"/sys/fs/cgroup/memory/x","created":true,"created_parents":0}]}"#
        );
    }
}
