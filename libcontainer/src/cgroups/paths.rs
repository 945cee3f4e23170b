//! Path rules: where `linux.cgroupsPath` puts the container's cgroup on each hierarchy.
//!
//! Absolute → below each hierarchy's root; relative → below our own cgroup (v1, and a hybrid
//! host's unified hierarchy, as runc) or beside it, below its parent (v2); empty → named after
//! the container id, in the same place. runc's `slice:prefix:name` form belongs to the systemd
//! driver ([`super::systemd::unit`]) and is refused here.

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::detect::{self, Mode};
use super::fs::{Cgroup, Hierarchy};
use crate::error::{Context, Error, Result};

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

/// The container's cgroup path as given, checked: never `..`, never a hierarchy's root or our
/// own cgroup, never the systemd form.
pub(crate) fn wanted(cgroups_path: Option<&Path>, id: &str) -> Result<PathBuf> {
    let wanted = cgroups_path
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(id));
    if wanted
        .components()
        .any(|c| matches!(c, Component::ParentDir))
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
        .any(|c| matches!(c, Component::Normal(_)))
    {
        return Err(Error::config(
            "linux.cgroupsPath",
            format!("{wanted:?} names no cgroup of the container's own"),
        ));
    }
    if wanted.as_os_str().to_str().is_some_and(|p| p.contains(':')) {
        return Err(Error::config(
            "linux.cgroupsPath",
            format!("{wanted:?} looks like runc's slice:prefix:name form, which is for the systemd driver (--systemd-cgroup); the cgroupfs driver takes a path"),
        ));
    }
    Ok(wanted)
}

/// The container's cgroup on every hierarchy of this host.
pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
    resolve_absolute(&wanted(cgroups_path, id)?)
}

/// The cgroup at `wanted` (checked already) on every hierarchy of this host; an absolute path
/// is below each hierarchy's root (where the systemd driver's units are).
pub(crate) fn resolve_absolute(wanted: &Path) -> Result<Cgroup> {
    let mounts = fs::read_to_string("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo")?;
    let own_cgroups = fs::read_to_string("/proc/self/cgroup").ctx(|| "read /proc/self/cgroup")?;
    resolve_in(wanted, &mounts, &own_cgroups, &detect::known_controllers())
}

/// [`resolve`] on given mountinfo, /proc/self/cgroup and /proc/cgroups contents. On a hybrid
/// host the container joins the unified hierarchy too (its `0::` line), as runc does.
pub(crate) fn resolve_in(
    wanted: &Path,
    mounts: &str,
    own_cgroups: &str,
    known: &[String],
) -> Result<Cgroup> {
    let mode = detect::detect_in(mounts);
    let mut hierarchies: Vec<Hierarchy> = detect::mounted_v1(mounts, own_cgroups, known)
        .into_iter()
        .filter(|_| mode != Mode::V2)
        .map(|m| Hierarchy {
            path: place(wanted, &m.own, &m.mount_root, &m.mount_point),
            controllers: m.controllers,
            created: false,
            created_parents: 0,
            unified: false,
        })
        .collect();
    if mode != Mode::V1 {
        let (point, root) = detect::unified_mount(mounts)
            .ok_or_else(|| Error::Other("the cgroup2 mount went away".into()))?;
        let mut own = detect::own_cgroup(own_cgroups, &[])
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
            path: place(wanted, &own, &root, &point),
            controllers: Vec::new(),
            created: false,
            created_parents: 0,
            unified: true,
        });
    }
    Ok(Cgroup {
        hierarchies,
        systemd: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::detect::tests::{HYBRID, V2};

    fn known() -> Vec<String> {
        ["cpu", "cpuacct", "memory"].map(String::from).to_vec()
    }

    fn paths(cg: &Cgroup) -> Vec<(String, PathBuf)> {
        cg.hierarchies
            .iter()
            .map(|h| {
                let name = if h.unified {
                    "unified".to_string()
                } else {
                    h.controllers.join(",")
                };
                (name, h.path.clone())
            })
            .collect()
    }

    #[test]
    fn places() {
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
    fn a_relative_path_nests_below_our_own_cgroup_on_each_hybrid_hierarchy() {
        let own = "3:cpu,cpuacct:/a\n2:memory:/m\n0::/u/s\n";
        let cg = resolve_in(Path::new("pod/c1"), HYBRID, own, &known()).unwrap();
        assert_eq!(
            paths(&cg),
            [
                (
                    "memory".into(),
                    PathBuf::from("/sys/fs/cgroup/memory/m/pod/c1")
                ),
                (
                    "cpu,cpuacct".into(),
                    PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a/pod/c1")
                ),
                (
                    "unified".into(),
                    PathBuf::from("/sys/fs/cgroup/unified/u/s/pod/c1")
                ),
            ]
        );
        assert!(!cg.is_v2());
    }

    #[test]
    fn an_absolute_path_starts_at_each_hierarchys_root() {
        let own = "3:cpu,cpuacct:/a\n2:memory:/m\n0::/u/s\n";
        let cg = resolve_in(Path::new("/pod/c1"), HYBRID, own, &known()).unwrap();
        assert!(cg
            .hierarchies
            .iter()
            .all(|h| h.path.ends_with("pod/c1") && !h.path.to_string_lossy().contains("/m/")));
        assert_eq!(
            cg.hierarchies[0].path,
            Path::new("/sys/fs/cgroup/memory/pod/c1")
        );
    }

    #[test]
    fn on_v2_a_relative_path_goes_beside_our_own_cgroup() {
        let cg = resolve_in(
            Path::new("c1"),
            V2,
            "0::/system.slice/x.service\n",
            &known(),
        )
        .unwrap();
        assert_eq!(
            paths(&cg),
            [(
                "unified".into(),
                PathBuf::from("/sys/fs/cgroup/system.slice/c1")
            )]
        );
        assert!(cg.is_v2());
        // At the root there is no parent: below the root.
        let cg = resolve_in(Path::new("c1"), V2, "0::/\n", &known()).unwrap();
        assert_eq!(cg.hierarchies[0].path, Path::new("/sys/fs/cgroup/c1"));
    }

    #[test]
    fn without_a_path_the_cgroup_is_named_after_the_id() {
        assert_eq!(wanted(None, "abc").unwrap(), Path::new("abc"));
        assert_eq!(
            wanted(Some(Path::new("")), "abc").unwrap(),
            Path::new("abc")
        );
        assert_eq!(
            wanted(Some(Path::new("a/b")), "abc").unwrap(),
            Path::new("a/b")
        );
    }

    #[test]
    fn bad_paths_are_refused_naming_the_field() {
        for (path, says) in [
            ("a/../b", "must not contain .."),
            ("/", "names no cgroup"),
            (".", "names no cgroup"),
            (
                "system.slice:brig:abc",
                "for the systemd driver (--systemd-cgroup)",
            ),
        ] {
            let err = wanted(Some(Path::new(path)), "id").unwrap_err().to_string();
            assert!(
                err.contains("linux.cgroupsPath") && err.contains(says),
                "{path}: {err}"
            );
        }
    }
}
