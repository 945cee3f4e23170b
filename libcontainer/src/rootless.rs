//! brig run by an unprivileged user ("rootless"), with rootless runc as the reference.
//!
//! Two cases, as runc tells them apart:
//! - the caller's effective uid is not 0 ([`unprivileged`]): the container needs a user
//!   namespace, whose maps the caller may write only for its own ids (anything else goes
//!   through `newuidmap`/`newgidmap` and the caller's ranges in /etc/subuid and /etc/subgid);
//! - the caller is root in a user namespace that is not the host's (rootless podman runs its
//!   runtime so, [`in_user_namespace`]): ids are fine, but the host's cgroups and device
//!   numbers are not the caller's.
//!
//! In both, cgroups are used only where the caller may write them (a delegated cgroup), and
//! device nodes are bound from the host instead of made.

use std::path::Path;

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, LinuxResources};

use crate::config::Config;
use crate::error::{Error, Result};

/// The caller is not root: it owns nothing but its own ids and what was delegated to it.
pub fn unprivileged() -> bool {
    !nix::unistd::geteuid().is_root()
}

/// This process runs in a user namespace other than the host's (its uid map is not the
/// identity over every id).
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|text| !is_identity_map(&text))
        .unwrap_or(false)
}

fn is_identity_map(text: &str) -> bool {
    let fields: Vec<&str> = text.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

/// The host's cgroups and devices are not ours: unprivileged, or root of a user namespace.
pub fn rootless() -> bool {
    unprivileged() || in_user_namespace()
}

/// runc's rule for the default `--root`: `$XDG_RUNTIME_DIR` is the caller's when it is not
/// root, or when it is root only in a user namespace and `$USER` does not say root (conmon
/// passes no `$USER` to the runtime under rootless podman).
pub fn honor_xdg_runtime_dir() -> bool {
    unprivileged() || (in_user_namespace() && std::env::var("USER").map_or(true, |u| u != "root"))
}

/// The uid of this process, for messages.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// This process's uid as the parent user namespace sees it (rootless podman runs its
/// runtime as uid 0 of a namespace mapped to the user): whom the user's systemd manager
/// knows the caller as. One level up, which is the host's under podman.
pub fn outside_uid() -> u32 {
    let uid = euid();
    std::fs::read_to_string("/proc/self/uid_map")
        .ok()
        .and_then(|map| map_outward(&map, uid))
        .unwrap_or(uid)
}

/// `id` through a uid_map's text (inside, outside, count lines) to the outside id.
fn map_outward(map: &str, id: u32) -> Option<u32> {
    map.lines().find_map(|line| {
        let f: Vec<u64> = line
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        let [inside, outside, count] = f[..] else {
            return None;
        };
        let id = u64::from(id);
        (id >= inside && id - inside < count)
            .then(|| u32::try_from(outside + (id - inside)).ok())
            .flatten()
    })
}

/// The gid of this process, for `spec --rootless`.
pub fn egid() -> u32 {
    nix::unistd::getegid().as_raw()
}

/// A range of host ids: `count` ids from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub start: u64,
    pub count: u64,
}

impl IdRange {
    fn covers(&self, start: u64, count: u64) -> bool {
        start >= self.start && start + count <= self.start + self.count
    }
}

/// The ranges `/etc/subuid` or `/etc/subgid` (`text`) give the user `name` or `uid` (both
/// forms are allowed there, as shadow's newuidmap reads them).
pub fn subordinate_ranges(text: &str, name: Option<&str>, uid: u32) -> Vec<IdRange> {
    let uid = uid.to_string();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let owner = fields.next()?;
            if owner != uid && Some(owner) != name {
                return None;
            }
            let start = fields.next()?.trim().parse().ok()?;
            let count = fields.next()?.trim().parse().ok()?;
            Some(IdRange { start, count })
        })
        .collect()
}

/// The caller's ranges in `file` (/etc/subuid or /etc/subgid), by its name or its uid.
pub fn caller_ranges(file: &str) -> Vec<IdRange> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    subordinate_ranges(&text, user_name(euid()).as_deref(), euid())
}

/// How the maps of a new user namespace get written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapWriter {
    /// By brig itself into /proc/PID/{uid,gid}_map (root, or one's own id alone; for gids
    /// setgroups is denied first, as the kernel requires of an unprivileged writer).
    Direct,
    /// By the setuid helpers newuidmap and newgidmap, checked against /etc/sub{u,g}id.
    Helper,
}

/// One kind of id (uid or gid) as the checks need it.
struct IdKind<'a> {
    field: &'static str,
    own: u32,
    subordinate_file: &'a str,
    helper: &'static str,
}

/// For an unprivileged caller, check that a new user namespace's maps give only ids the
/// caller has (its own, or its subordinate ranges) and say how they are written.
pub fn check_maps(config: &Config) -> Result<MapWriter> {
    if !unprivileged() || !config.new_namespace(LinuxNamespaceType::User) {
        return Ok(MapWriter::Direct);
    }
    let linux = config.spec.linux().as_ref();
    let name = user_name(euid());
    let uid = IdKind {
        field: "linux.uidMappings",
        own: euid(),
        subordinate_file: "/etc/subuid",
        helper: "newuidmap",
    };
    let gid = IdKind {
        field: "linux.gidMappings",
        own: egid(),
        subordinate_file: "/etc/subgid",
        helper: "newgidmap",
    };
    let uid_writer = check_kind(
        &uid,
        linux.and_then(|l| l.uid_mappings().as_deref()),
        name.as_deref(),
    )?;
    let gid_writer = check_kind(
        &gid,
        linux.and_then(|l| l.gid_mappings().as_deref()),
        name.as_deref(),
    )?;
    // One helper writes both maps or neither: newgidmap leaves setgroups allowed, and a
    // direct gid map needs it denied, which would make additional groups impossible.
    Ok(
        if uid_writer == MapWriter::Helper || gid_writer == MapWriter::Helper {
            MapWriter::Helper
        } else {
            MapWriter::Direct
        },
    )
}

fn check_kind(
    kind: &IdKind<'_>,
    maps: Option<&[LinuxIdMapping]>,
    name: Option<&str>,
) -> Result<MapWriter> {
    let maps = maps.unwrap_or_default();
    if maps.is_empty() {
        return Err(Error::config(
            kind.field,
            format!(
                "is empty: a user namespace made by an unprivileged user (uid {}) needs a \
                 mapping (`brig spec --rootless` maps root to the caller)",
                euid()
            ),
        ));
    }
    if let [only] = maps {
        if only.size() == 1 && only.host_id() == kind.own {
            return Ok(MapWriter::Direct);
        }
    }
    let text = std::fs::read_to_string(kind.subordinate_file).unwrap_or_default();
    let ranges = subordinate_ranges(&text, name, euid());
    for m in maps {
        let (start, count) = (u64::from(m.host_id()), u64::from(m.size()));
        let own = start == u64::from(kind.own) && count == 1;
        if !own && !ranges.iter().any(|r| r.covers(start, count)) {
            return Err(Error::config(
                kind.field,
                format!(
                    "host ids {start}-{} are not the caller's: uid {} may map only its own id \
                     ({}) and its subordinate ranges in {} ({})",
                    start + count.saturating_sub(1),
                    euid(),
                    kind.own,
                    kind.subordinate_file,
                    if ranges.is_empty() {
                        "none".to_string()
                    } else {
                        ranges
                            .iter()
                            .map(|r| format!("{}-{}", r.start, r.start + r.count - 1))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            ));
        }
    }
    if find_helper(kind.helper).is_none() {
        return Err(Error::config(
            kind.field,
            format!(
                "maps more than the caller's own id, which needs {} (Debian package uidmap), \
                 not found in PATH",
                kind.helper
            ),
        ));
    }
    Ok(MapWriter::Helper)
}

/// `name` in PATH (or the usual directories when PATH is unset).
pub fn find_helper(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The name of `uid` in /etc/passwd.
fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 2 && fields[2] == uid.to_string()).then(|| fields[0].to_string())
    })
}

/// What an unprivileged caller cannot have, refused before anything is made, each naming
/// its field: no user namespace, and devices it could not open itself (they are bound from
/// the host, so the container could not use them either).
pub fn validate(config: &Config) -> Result<()> {
    if !unprivileged() {
        return Ok(());
    }
    if config.namespace(LinuxNamespaceType::User).is_none() {
        return Err(Error::config(
            "linux.namespaces",
            format!(
                "has no user namespace: brig run by an unprivileged user (uid {}) needs one \
                 (`brig spec --rootless` writes one)",
                euid()
            ),
        ));
    }
    let devices = config
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    for (i, device) in devices.iter().enumerate() {
        check_device(device.path(), &format!("linux.devices[{i}]"))?;
    }
    Ok(())
}

/// A device an unprivileged container gets is the host's node bound in: the caller must be
/// able to open it.
fn check_device(path: &Path, field: &str) -> Result<()> {
    use nix::unistd::{access, AccessFlags};
    if !path.exists() {
        return Err(Error::config(
            field,
            format!(
                "{}: the host has no such device, and an unprivileged user cannot make one \
                 (devices are bound from the host)",
                path.display()
            ),
        ));
    }
    if access(path, AccessFlags::R_OK).is_err() && access(path, AccessFlags::W_OK).is_err() {
        return Err(Error::config(
            field,
            format!(
                "{}: uid {} cannot open this device on the host, so a rootless container \
                 cannot have it",
                path.display(),
                euid()
            ),
        ));
    }
    Ok(())
}

/// runc's rule for a cgroup the caller could not make: that is fine only when no limit is
/// asked for (device rules aside, which an unprivileged user could not enforce anyway).
pub fn limits_requested(resources: Option<&LinuxResources>) -> Vec<String> {
    let Some(resources) = resources else {
        return Vec::new();
    };
    let Ok(serde_json::Value::Object(members)) = serde_json::to_value(resources) else {
        return Vec::new();
    };
    members
        .into_iter()
        .filter(|(key, value)| key != "devices" && !is_empty(value))
        .map(|(key, _)| format!("linux.resources.{key}"))
        .collect()
}

fn is_empty(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => true,
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::Object(o) => o.values().all(is_empty),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_map_outward_one_level() {
        let podman = "         0       1000          1\n         1     100000      65536\n";
        assert_eq!(super::map_outward(podman, 0), Some(1000));
        assert_eq!(super::map_outward(podman, 1), Some(100000));
        assert_eq!(super::map_outward(podman, 65536), Some(165535));
        assert_eq!(super::map_outward(podman, 65537), None);
        let host = "         0          0 4294967295\n";
        assert_eq!(super::map_outward(host, 1000), Some(1000));
        assert_eq!(super::map_outward("", 5), None);
    }

    use super::*;

    #[test]
    fn identity_map() {
        assert!(is_identity_map("         0          0 4294967295\n"));
        assert!(!is_identity_map("         0       1000          1\n"));
        assert!(!is_identity_map("0 1000 1\n1 100000 65536\n"));
    }

    #[test]
    fn subordinate_lines() {
        let text = "alice:100000:65536\n1001:200000:1000\nbob:300000:10\n# x\n";
        assert_eq!(
            subordinate_ranges(text, Some("alice"), 1000),
            vec![IdRange {
                start: 100000,
                count: 65536
            }]
        );
        assert_eq!(subordinate_ranges(text, Some("carol"), 1001).len(), 1);
        assert!(subordinate_ranges(text, None, 5).is_empty());
        let r = IdRange {
            start: 100000,
            count: 65536,
        };
        assert!(r.covers(100000, 65536));
        assert!(!r.covers(100000, 65537));
        assert!(!r.covers(99999, 1));
    }

    #[test]
    fn limits() {
        assert!(limits_requested(None).is_empty());
        let only_devices: LinuxResources = serde_json::from_value(serde_json::json!({
            "devices": [{"allow": false, "access": "rwm"}]
        }))
        .unwrap();
        assert!(limits_requested(Some(&only_devices)).is_empty());
        let memory: LinuxResources = serde_json::from_value(serde_json::json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"limit": 1048576},
            "cpu": {}
        }))
        .unwrap();
        assert_eq!(
            limits_requested(Some(&memory)),
            vec!["linux.resources.memory"]
        );
    }
}
