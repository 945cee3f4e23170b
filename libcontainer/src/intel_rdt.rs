//! `linux.intelRdt`: the container's resctrl group (Class of Service), its schemata and an
//! optional monitoring group, as the runtime spec lays them out. The resctrl mount is found in
//! /proc/self/mountinfo; everything below takes its root as a parameter so the rules can be
//! tested on a plain directory (no machine here has RDT hardware).

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxIntelRdt;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// What `create` made or joined, recorded in the state so `exec` joins it and `delete`
/// removes what was ours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdtGroup {
    /// The CTRL_MON group (closID, the container id, or the resctrl root for "/").
    pub path: PathBuf,
    /// brig made `path` (no closID given): removed at delete.
    pub created: bool,
    /// `mon_groups/<id>` when monitoring was asked for: always removed at delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<PathBuf>,
}

/// Where resctrl is mounted in our mount namespace.
pub fn resctrl_mount() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts
        .lines()
        .filter_map(crate::mountinfo::parse)
        .find(|m| m.fs_type == "resctrl")
        .map(|m| PathBuf::from(m.mount_point))
}

/// `linux.intelRdt` before anything is made: resctrl present, schemata lines well formed.
pub fn validate(rdt: &LinuxIntelRdt) -> Result<()> {
    if resctrl_mount().is_none() {
        return Err(Error::config(
            "linux.intelRdt",
            "resctrl is not mounted on this host (no Intel RDT)",
        ));
    }
    schemata_lines(rdt).map(drop)
}

fn field(name: &str) -> String {
    format!("linux.intelRdt.{name}")
}

/// The schemata lines to write, in the spec's order: l3CacheSchema, memBwSchema, schemata.
fn schemata_lines(rdt: &LinuxIntelRdt) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    if let Some(l3) = rdt.l3_cache_schema() {
        lines.push(("l3CacheSchema", l3.clone()));
    }
    if let Some(mb) = rdt.mem_bw_schema() {
        if !mb.starts_with("MB:") {
            return Err(Error::config(field("memBwSchema"), "must start with MB:"));
        }
        lines.push(("memBwSchema", mb.clone()));
    }
    for line in rdt.schemata().iter().flatten() {
        lines.push(("schemata", line.clone()));
    }
    for (name, line) in &lines {
        if line.contains('\n') {
            return Err(Error::config(field(name), "must not contain a newline"));
        }
    }
    Ok(lines.into_iter().map(|(_, l)| l).collect())
}

/// `L3:0=7f0;1=1f` → ("L3", ["0=7f0", "1=1f"]) with ids and masks as the kernel prints them
/// (hex masks without leading zeros, lowercase).
fn normalise(line: &str) -> Option<(String, Vec<String>)> {
    let (resource, domains) = line.trim().split_once(':')?;
    let mut parts: Vec<String> = domains
        .split(';')
        .filter(|d| !d.trim().is_empty())
        .map(|d| {
            let (id, value) = d.split_once('=').unwrap_or((d, ""));
            let value = value.trim().to_ascii_lowercase();
            let value = value.trim_start_matches('0');
            format!(
                "{}={}",
                id.trim(),
                if value.is_empty() { "0" } else { value }
            )
        })
        .collect();
    parts.sort();
    Some((resource.trim().to_string(), parts))
}

/// An existing group's schemata must already say what the config asks for.
fn check_schemata(dir: &Path, wanted: &[String]) -> Result<()> {
    let file = dir.join("schemata");
    let current = fs::read_to_string(&file).ctx(|| format!("read {}", file.display()))?;
    let current: Vec<(String, Vec<String>)> = current.lines().filter_map(normalise).collect();
    for line in wanted {
        let Some((resource, domains)) = normalise(line) else {
            return Err(Error::config(
                field("schemata"),
                format!("{line:?} is not RESOURCE:ID=VALUE;…"),
            ));
        };
        let found = current.iter().find(|(r, _)| *r == resource);
        if !found.is_some_and(|(_, d)| domains.iter().all(|x| d.contains(x))) {
            return Err(Error::config(
                field("closID"),
                format!(
                    "the existing group {} does not have {line:?} in its schemata",
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Make or join the container's group below `root` (the resctrl mount) and write its schemata.
pub fn prepare(rdt: &LinuxIntelRdt, id: &str, root: &Path) -> Result<RdtGroup> {
    let wanted = schemata_lines(rdt)?;
    let (path, created) = match rdt.clos_id().as_deref() {
        Some("/") => (root.to_path_buf(), false),
        Some(clos)
            if clos.is_empty()
                || clos.contains('/')
                || clos == "."
                || clos == ".."
                || matches!(clos, "info" | "mon_groups" | "mon_data") =>
        {
            return Err(Error::config(
                field("closID"),
                format!("{clos:?} is not a resctrl group name"),
            ))
        }
        Some(clos) => {
            let dir = root.join(clos);
            if wanted.is_empty() {
                // A pre-configured group: it must exist.
                if !dir.is_dir() {
                    return Err(Error::config(
                        field("closID"),
                        format!("{} does not exist", dir.display()),
                    ));
                }
                (dir, false)
            } else {
                match fs::create_dir(&dir) {
                    Ok(()) => (dir, false),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        check_schemata(&dir, &wanted)?;
                        return finish(rdt, id, dir, false, &[]);
                    }
                    Err(e) => {
                        return Err(e).ctx(|| format!("create resctrl group {}", dir.display()))
                    }
                }
            }
        }
        None => {
            let dir = root.join(id);
            fs::create_dir(&dir).ctx(|| format!("create resctrl group {}", dir.display()))?;
            (dir, true)
        }
    };
    finish(rdt, id, path, created, &wanted)
}

fn finish(
    rdt: &LinuxIntelRdt,
    id: &str,
    path: PathBuf,
    created: bool,
    schemata: &[String],
) -> Result<RdtGroup> {
    let mut group = RdtGroup {
        path,
        created,
        monitor: None,
    };
    let made = (|| {
        let file = group.path.join("schemata");
        for line in schemata {
            // One line per write: the kernel takes a line at a time and names the bad one.
            fs::write(&file, format!("{line}\n"))
                .ctx(|| format!("linux.intelRdt: write {line:?} to {}", file.display()))?;
        }
        if rdt.enable_monitoring() == &Some(true) {
            let dir = group.path.join("mon_groups").join(id);
            fs::create_dir(&dir)
                .ctx(|| format!("linux.intelRdt.enableMonitoring: create {}", dir.display()))?;
            group.monitor = Some(dir);
        }
        Ok(())
    })();
    match made {
        Ok(()) => Ok(group),
        Err(err) => {
            remove(&group);
            Err(err)
        }
    }
}

/// Put `pid` in the group (and its monitoring group).
pub fn add(group: &RdtGroup, pid: i32) -> Result<()> {
    for dir in std::iter::once(&group.path).chain(group.monitor.as_ref()) {
        let file = dir.join("tasks");
        fs::write(&file, pid.to_string()).ctx(|| format!("add pid {pid} to {}", file.display()))?;
    }
    Ok(())
}

/// Remove the monitoring group and the group brig made; a closID group is not ours.
pub fn remove(group: &RdtGroup) {
    for dir in group
        .monitor
        .iter()
        .chain(std::iter::once(&group.path).filter(|_| group.created))
    {
        if let Err(e) = fs::remove_dir(dir) {
            if e.kind() != ErrorKind::NotFound {
                tracing::warn!("remove resctrl group {}: {e}", dir.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdt(json: serde_json::Value) -> LinuxIntelRdt {
        serde_json::from_value(json).unwrap()
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("brig-rdt-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_group_of_the_containers_own_is_made_written_and_removed() {
        let root = scratch("own");
        let r = rdt(
            serde_json::json!({"l3CacheSchema": "L3:0=7f0", "memBwSchema": "MB:0=20",
            "schemata": ["L2:0=f"]}),
        );
        let group = prepare(&r, "c1", &root).unwrap();
        assert_eq!((group.path.clone(), group.created), (root.join("c1"), true));
        // A plain file keeps the last line; the kernel keeps one line per resource.
        assert_eq!(
            fs::read_to_string(root.join("c1/schemata")).unwrap(),
            "L2:0=f\n"
        );
        add(&group, 42).unwrap();
        assert_eq!(fs::read_to_string(root.join("c1/tasks")).unwrap(), "42");
        // resctrl lets a group go with its files; a plain directory needs them gone first.
        fs::remove_file(root.join("c1/schemata")).unwrap();
        fs::remove_file(root.join("c1/tasks")).unwrap();
        remove(&group);
        assert!(!root.join("c1").exists());

        // Monitoring that cannot be set up fails and leaves no group behind.
        let mon = rdt(serde_json::json!({"enableMonitoring": true}));
        assert!(prepare(&mon, "c2", &root)
            .unwrap_err()
            .to_string()
            .contains("enableMonitoring"));
        assert!(!root.join("c2").exists());
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn a_monitoring_group_is_joined_and_removed_with_the_container() {
        let root = scratch("mon");
        fs::create_dir_all(root.join("gold/mon_groups")).unwrap();
        let r = rdt(serde_json::json!({"closID": "gold", "enableMonitoring": true}));
        let group = prepare(&r, "c3", &root).unwrap();
        assert_eq!(group.monitor, Some(root.join("gold/mon_groups/c3")));
        add(&group, 7).unwrap();
        assert_eq!(fs::read_to_string(root.join("gold/tasks")).unwrap(), "7");
        assert_eq!(
            fs::read_to_string(root.join("gold/mon_groups/c3/tasks")).unwrap(),
            "7"
        );
        fs::remove_file(root.join("gold/mon_groups/c3/tasks")).unwrap();
        remove(&group);
        assert!(!root.join("gold/mon_groups/c3").exists());
        assert!(root.join("gold").exists(), "a closID group is not ours");
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn clos_rules() {
        let root = scratch("clos");
        // A pre-configured group must exist; it is joined and never removed.
        let pre = rdt(serde_json::json!({"closID": "gold"}));
        assert!(prepare(&pre, "c", &root)
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        fs::create_dir(root.join("gold")).unwrap();
        let group = prepare(&pre, "c", &root).unwrap();
        assert!(!group.created);
        remove(&group);
        assert!(root.join("gold").exists());
        // An existing group must already have the schemata asked for.
        fs::write(
            root.join("gold/schemata"),
            "    L3:0=07f0;1=1f\n    MB:0=100\n",
        )
        .unwrap();
        let same = rdt(serde_json::json!({"closID": "gold", "l3CacheSchema": "L3:1=1f;0=7F0"}));
        prepare(&same, "c", &root).unwrap();
        let other = rdt(serde_json::json!({"closID": "gold", "memBwSchema": "MB:0=20"}));
        assert!(prepare(&other, "c", &root)
            .unwrap_err()
            .to_string()
            .contains("linux.intelRdt.closID"));
        // "/" is the default group: the root itself.
        let default = prepare(&rdt(serde_json::json!({"closID": "/"})), "c", &root).unwrap();
        assert_eq!(default.path, root);
        for bad in ["..", "a/b", "info"] {
            let r = rdt(serde_json::json!({"closID": bad}));
            assert!(prepare(&r, "c", &root).is_err(), "{bad}");
        }
        let bad_mb = rdt(serde_json::json!({"memBwSchema": "L3:0=1"}));
        assert!(prepare(&bad_mb, "c", &root)
            .unwrap_err()
            .to_string()
            .contains("memBwSchema"));
        let _ = fs::remove_dir_all(&root);
    }
}
