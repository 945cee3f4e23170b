//! cgroups: where a container's cgroup lives on each hierarchy, creating it, putting init in
//! it, applying `linux.resources`, freezing, listing its processes and removing it.
//!
//! One manager for v1, hybrid and v2 hosts: a container's cgroup is a list of hierarchies,
//! each a v1 hierarchy (one or more controllers) or the unified (cgroup2) one, and every
//! resource goes to the hierarchy that has its controller, in that hierarchy's file format.
//! Written for brig rather than taken from cgroups-rs: we need runc's path rules (relative to
//! our own cgroup per v1 hierarchy), to record which directories we created (a shared cgroup is
//! never removed), the v2 device filter as our own eBPF program, and one write per setting on
//! the start path.

pub mod bpf;
pub mod devices;
pub mod stats;
pub mod v1;
pub mod v2;

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxDevice, LinuxResources};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use crate::utils::mountinfo;

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
    match unified_mount(mounts) {
        Some((point, _)) if point == Path::new("/sys/fs/cgroup") => Mode::V2,
        Some(_) => Mode::Hybrid,
        None => Mode::V1,
    }
}

/// The cgroup2 mount under /sys/fs/cgroup (the whole of it on v2, `unified` on hybrid hosts):
/// its mount point and the root of the hierarchy it shows.
pub(crate) fn unified_mount(mounts: &str) -> Option<(PathBuf, String)> {
    mounts.lines().filter_map(mountinfo).find_map(|m| {
        (m.fs_type == "cgroup2"
            && matches!(m.mount_point, "/sys/fs/cgroup" | "/sys/fs/cgroup/unified"))
        .then(|| (PathBuf::from(m.mount_point), m.root.to_string()))
    })
}

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

/// Our own cgroup in the hierarchy whose /proc/self/cgroup line lists `controllers` (the
/// unified one: no controllers, id 0).
pub(crate) fn own_cgroup(own_cgroups: &str, controllers: &[String]) -> Option<String> {
    own_cgroups.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
        let mut listed: Vec<&str> = list.split(',').filter(|c| !c.is_empty()).collect();
        listed.sort_unstable();
        let mut wanted: Vec<&str> = controllers.iter().map(String::as_str).collect();
        wanted.sort_unstable();
        (listed == wanted).then(|| path.to_string())
    })
}

/// The controller names the kernel has (first column of /proc/cgroups).
fn known_controllers() -> Vec<String> {
    fs::read_to_string("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

fn mounted_v1(mounts: &str, own_cgroups: &str) -> Vec<Mounted> {
    mounted_v1_with(mounts, own_cgroups, &known_controllers())
}

fn mounted_v1_with(mounts: &str, own_cgroups: &str, known: &[String]) -> Vec<Mounted> {
    let mut found = Vec::new();
    for m in mounts.lines().filter_map(mountinfo) {
        if m.fs_type != "cgroup" {
            continue;
        }
        let options = m.super_options;
        // The super options also hold flags (rw, xattr, noprefix, clone_children, …): only
        // the names the kernel lists in /proc/cgroups are controllers.
        let mut controllers: Vec<String> = options
            .split(',')
            .filter(|o| known.iter().any(|k| k == o))
            .map(String::from)
            .collect();
        // Of the named hierarchies only systemd's is joined (as runc does): systemd tracks
        // units there, and a systemd inside the container needs its own directory in it.
        if options.split(',').any(|o| o == "name=systemd") {
            controllers.push("name=systemd".into());
        }
        if controllers.is_empty() {
            continue;
        }
        let Some(own) = own_cgroup(own_cgroups, &controllers) else {
            continue;
        };
        let mounted = Mounted {
            controllers,
            mount_point: PathBuf::from(m.mount_point),
            mount_root: m.root.to_string(),
            own,
        };
        // A hierarchy may be mounted more than once (a bind mount of it elsewhere, a
        // container's view): like runc, use its canonical mount right under /sys/fs/cgroup,
        // else the first one listed.
        match found
            .iter_mut()
            .find(|f: &&mut Mounted| f.controllers == mounted.controllers)
        {
            Some(seen) if !canonical(seen) && canonical(&mounted) => *seen = mounted,
            Some(_) => {}
            None => found.push(mounted),
        }
    }
    found
}

fn canonical(m: &Mounted) -> bool {
    m.mount_point.parent() == Some(Path::new("/sys/fs/cgroup"))
}

/// The directory for `wanted` in a hierarchy mounted at `point` showing `root`, where our own
/// cgroup is `own`.
pub(crate) fn place(wanted: &Path, own: &str, root: &str, point: &Path) -> PathBuf {
    let within = if wanted.is_absolute() {
        wanted.to_path_buf()
    } else {
        Path::new(own).join(wanted)
    };
    // The mount may show a subtree (in a cgroup namespace): strip its root.
    let rel = within.strip_prefix(root).unwrap_or(&within);
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    point.join(rel)
}

/// A hybrid host's unified hierarchy gets controllers enabled for the container only when the
/// config needs them (hugepage limits where hugetlb is bound there, `unified` keys): every other
/// controller is v1, and writing the hierarchy's subtree_control would cost every start.
pub fn needs_unified(resources: Option<&LinuxResources>) -> bool {
    resources.is_some_and(|r| {
        r.hugepage_limits().as_ref().is_some_and(|l| !l.is_empty())
            || r.unified().as_ref().is_some_and(|u| !u.is_empty())
    })
}

impl Cgroup {
    /// Where the container's cgroup goes: `cgroupsPath` absolute → below each hierarchy's root;
    /// relative → below our own cgroup (v1 and a hybrid host's unified hierarchy, as runc) or
    /// its parent (v2); empty → named after the container id, in the same place. On a hybrid
    /// host the container joins the unified hierarchy too (its `0::` line), as runc does.
    pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        let wanted = cgroups_path
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(id));
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
        let mounts =
            fs::read_to_string("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo")?;
        let own_cgroups =
            fs::read_to_string("/proc/self/cgroup").ctx(|| "read /proc/self/cgroup")?;
        let mode = detect_in(&mounts);
        let mut hierarchies: Vec<Hierarchy> = mounted_v1(&mounts, &own_cgroups)
            .into_iter()
            .filter(|_| mode != Mode::V2)
            .map(|m| Hierarchy {
                path: place(&wanted, &m.own, &m.mount_root, &m.mount_point),
                controllers: m.controllers,
                created: false,
                created_parents: 0,
                unified: false,
            })
            .collect();
        if mode != Mode::V1 {
            let (point, root) = unified_mount(&mounts)
                .ok_or_else(|| Error::Other("the cgroup2 mount went away".into()))?;
            let mut own = own_cgroup(&own_cgroups, &[])
                .ok_or_else(|| Error::Other("/proc/self/cgroup has no cgroup2 line".into()))?;
            // cgroup v2 enables controllers only for the children of a cgroup without
            // processes, and ours has at least brig in it: relative paths go beside our own
            // cgroup, below its parent (runc's rule), unless we are at the root. A hybrid
            // host's unified hierarchy is joined like a v1 one, below our own cgroup.
            if mode == Mode::V2 {
                own = Path::new(&own)
                    .parent()
                    .unwrap_or(Path::new("/"))
                    .to_string_lossy()
                    .into_owned();
            }
            hierarchies.push(Hierarchy {
                path: place(&wanted, &own, &root, &point),
                controllers: Vec::new(),
                created: false,
                created_parents: 0,
                unified: true,
            });
        }
        Ok(Cgroup { hierarchies })
    }

    /// Refuse a cgroup that is frozen already (init would hang in it), as runc does, and warn
    /// about one that has processes in it. Called before anything is created or joined.
    pub fn check_existing(&self) -> Result<()> {
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

    /// Make the directories (parents too); remember which ones are ours. In the unified
    /// hierarchy of a v2 host, or of a hybrid one when `unified_controllers` (see
    /// [`needs_unified`]), every controller the parents offer is enabled down to the
    /// container's cgroup.
    pub fn create(&mut self, unified_controllers: bool) -> Result<()> {
        let v2 = self.is_v2();
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

    /// brig made this cgroup for the container (rather than joining one that existed): only
    /// then are all of its processes the container's.
    pub fn owned(&self) -> bool {
        self.hierarchies.iter().any(|h| h.created)
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

    /// Put `pid` into the container's cgroup on every hierarchy (but the unified one when the
    /// clone already placed it there).
    pub fn add(&self, pid: i32, skip_unified: bool) -> Result<()> {
        for h in self
            .hierarchies
            .iter()
            .filter(|h| !(skip_unified && h.unified))
        {
            let file = h.path.join("cgroup.procs");
            write_cgroup_file(&file, &pid.to_string())
                .ctx(|| format!("add pid {pid} to {}", file.display()))?;
        }
        Ok(())
    }

    /// Every process in the container's cgroup and in the cgroups below it (which the
    /// container may make when its cgroup is delegated or mounted writable).
    pub fn pids(&self) -> Result<Vec<i32>> {
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

    /// The hierarchy that freezes the container: the v1 freezer, else cgroup.freeze of v2.
    fn freezer(&self) -> Option<&Hierarchy> {
        self.hierarchy("freezer").or_else(|| self.unified())
    }

    pub fn can_freeze(&self) -> bool {
        self.freezer().is_some()
    }

    /// Freeze or thaw, waiting until the kernel says it is done.
    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        match self.freezer() {
            Some(h) if h.unified => v2::set_frozen(&h.path, frozen),
            Some(h) => v1::set_frozen(&h.path, frozen),
            None => Err(Error::Other(
                "no freezer cgroup hierarchy on this host".into(),
            )),
        }
    }

    pub fn frozen(&self) -> bool {
        match self.freezer() {
            Some(h) if h.unified => v2::frozen(&h.path),
            Some(h) => {
                fs::read_to_string(h.path.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
            }
            None => false,
        }
    }

    /// Kill whatever is left (with cgroup.kill, or frozen first so nothing forks away), then
    /// remove the directories brig created, retrying while the kernel drains them.
    pub fn destroy(&self) -> Result<()> {
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

    fn kill_all(&self) -> Result<()> {
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
            let _ = self.set_frozen(true);
            for pid in &left {
                // SAFETY: kill with integer arguments only.
                unsafe { libc::kill(*pid, libc::SIGKILL) };
            }
            let _ = self.set_frozen(false);
        }
        Ok(())
    }
}

/// Write `linux.resources` into the container's cgroup: device rules (`spec_devices`, the
/// config's `linux.devices`, only decide which default rules they replace) and limits.
/// `update` says whether this is `brig update` (then `memory.checkBeforeUpdate` applies and
/// device rules are rewritten only when given). Everything is checked before the first write;
/// when a write still fails, the error says which settings were applied before it.
pub fn apply(
    cg: &Cgroup,
    resources: Option<&LinuxResources>,
    spec_devices: &[LinuxDevice],
    update: bool,
) -> Result<()> {
    let mut plan = Plan::default();
    if let Some(r) = resources {
        validate(r)?;
    }
    let devices_given = resources.is_some_and(|r| r.devices().is_some());
    if !update || devices_given {
        let rules = devices::rule_list(resources, spec_devices)?;
        if cg.is_v2() {
            if let Some(h) = cg.unified() {
                let dir = h.path.clone();
                plan.step("devices", move || bpf::install_device_filter(&dir, &rules));
            }
        } else {
            v1::plan_devices(&mut plan, cg, rules)?;
        }
    }
    if let Some(r) = resources {
        if cg.is_v2() {
            if let Some(h) = cg.unified() {
                v2::plan_limits(&mut plan, h, r, update)?;
            }
        } else {
            v1::plan_limits(&mut plan, cg, r)?;
        }
    }
    plan.run(update)
}

/// Checks that hold on every cgroup version, before anything is written.
fn validate(r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        for (field, value) in [
            ("limit", m.limit()),
            ("reservation", m.reservation()),
            ("swap", m.swap()),
            ("kernel", m.kernel()),
            ("kernelTCP", m.kernel_tcp()),
        ] {
            if value.is_some_and(|v| v < -1) {
                return Err(Error::config(
                    format!("linux.resources.memory.{field}"),
                    format!(
                        "{} is neither -1 (no limit) nor a number of bytes",
                        value.unwrap_or_default()
                    ),
                ));
            }
        }
        if let Some(v) = m.swappiness().filter(|v| *v != u64::MAX && *v > 100) {
            return Err(Error::config(
                "linux.resources.memory.swappiness",
                format!("{v} is above 100"),
            ));
        }
    }
    Ok(())
}

/// A set value, with runc's reading of zero: for most resource fields 0 (or "") means "not
/// set" (Docker and containerd send every field, unset ones as zero).
pub(crate) fn set<T: Default + PartialEq + Copy>(v: Option<T>) -> Option<T> {
    v.filter(|v| *v != T::default())
}

type StepFn = Box<dyn FnOnce() -> Result<()>>;

/// The writes for a whole `linux.resources`, checked (controllers there, files present,
/// values valid) before the first one is made.
#[derive(Default)]
pub(crate) struct Plan {
    steps: Vec<(String, StepFn)>,
}

impl Plan {
    /// One step that may do more than a plain write (ordering, retries); `field` names it.
    pub(crate) fn step(&mut self, field: &str, f: impl FnOnce() -> Result<()> + 'static) {
        self.steps.push((field.to_string(), Box::new(f)));
    }

    /// Write `value` to `dir/file`; the file must exist now.
    pub(crate) fn write(&mut self, dir: &Path, file: &str, value: &str, field: &str) -> Result<()> {
        let w = Write::new(dir, file, value, field)?;
        self.step(field, move || w.run());
        Ok(())
    }

    fn run(self, update: bool) -> Result<()> {
        let mut applied: Vec<String> = Vec::new();
        for (field, step) in self.steps {
            if let Err(e) = step() {
                if !update || applied.is_empty() {
                    return Err(e);
                }
                applied.dedup();
                return Err(Error::Other(format!(
                    "{e} (applied before it: {}; nothing after it)",
                    applied.join(", ")
                )));
            }
            applied.push(field);
        }
        Ok(())
    }
}

/// One cgroup file write, its file known to exist.
pub(crate) struct Write {
    pub path: PathBuf,
    pub value: String,
    pub field: String,
}

impl Write {
    pub(crate) fn new(dir: &Path, file: &str, value: &str, field: &str) -> Result<Write> {
        let path = dir.join(file);
        if !path.exists() {
            return Err(missing(&path, field));
        }
        Ok(Write {
            path,
            value: value.to_string(),
            field: field.to_string(),
        })
    }

    pub(crate) fn try_run(&self) -> std::io::Result<()> {
        write_cgroup_file(&self.path, &self.value)
    }

    pub(crate) fn run(&self) -> Result<()> {
        self.try_run().ctx(|| {
            format!(
                "linux.resources.{}: write {:?} to {}",
                self.field,
                self.value,
                self.path.display()
            )
        })
    }
}

/// A resource whose cgroup file the kernel does not have.
pub(crate) fn missing(path: &Path, field: &str) -> Error {
    Error::config(
        format!("linux.resources.{field}"),
        format!(
            "{} does not exist: this kernel has no such cgroup file",
            path.display()
        ),
    )
}

/// Write a cgroup file that must exist: never O_CREAT (a missing file is reported as
/// missing, not as "permission denied" from creating it in cgroupfs).
pub(crate) fn write_cgroup_file(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(value.as_bytes())
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

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,cpu,cpuacct
";
    const V2: &str =
        "30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn modes() {
        assert_eq!(detect_in(HYBRID), Mode::Hybrid);
        assert_eq!(detect_in(V2), Mode::V2);
        assert_eq!(
            detect_in(&HYBRID.replace("cgroup2 cgroup2", "x x")),
            Mode::V1
        );
    }

    #[test]
    fn own_cgroups_and_places() {
        let own = "4:name=systemd:/s\n3:cpu,cpuacct:/a\n2:memory:/m\n0::/user.slice/s\n";
        let known: Vec<String> = ["cpu", "cpuacct", "memory"].map(String::from).to_vec();
        let mounts = format!(
            "{HYBRID}37 30 0:33 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd\n"
        );
        let mounted = mounted_v1_with(&mounts, own, &known);
        assert_eq!(mounted.len(), 3);
        assert_eq!(mounted[1].own, "/a");
        // Flags like xattr are not controllers; systemd's named hierarchy is joined.
        assert_eq!(mounted[2].controllers, ["name=systemd"]);
        assert_eq!(mounted[2].own, "/s");
        assert_eq!(own_cgroup(own, &[]).as_deref(), Some("/user.slice/s"));
        let point = Path::new("/sys/fs/cgroup");
        assert_eq!(
            place(Path::new("c/x"), "/user.slice/s", "/", point),
            Path::new("/sys/fs/cgroup/user.slice/s/c/x")
        );
        assert_eq!(
            place(Path::new("/c/x"), "/user.slice/s", "/", point),
            Path::new("/sys/fs/cgroup/c/x")
        );
        // In a cgroup namespace the mount shows only a subtree.
        assert_eq!(
            place(Path::new("x"), "/ns/own", "/ns", point),
            Path::new("/sys/fs/cgroup/own/x")
        );
    }

    #[test]
    fn the_canonical_mount_of_a_hierarchy_wins() {
        let own = "8:pids:/\n0::/\n";
        let known = vec!["pids".to_string()];
        let mounts = "\
58 46 0:36 /decoy /tmp/elsewhere rw - cgroup cgroup rw,pids
67 50 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
";
        let mounted = mounted_v1_with(mounts, own, &known);
        assert_eq!(mounted.len(), 1);
        assert_eq!(mounted[0].mount_point, Path::new("/sys/fs/cgroup/pids"));
        assert_eq!(mounted[0].mount_root, "/");
    }
}
