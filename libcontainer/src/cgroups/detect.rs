//! What the host has: v1, hybrid or v2 hierarchies, where each is mounted, and our own cgroup
//! in each (from /proc/self/mountinfo, /proc/self/cgroup and /proc/cgroups).

use std::fs;
use std::path::{Path, PathBuf};

use crate::mountinfo::parse as mountinfo;

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

pub(crate) fn detect_in(mounts: &str) -> Mode {
    match unified_mount(mounts) {
        Some((point, _)) if point == Path::new("/sys/fs/cgroup") => Mode::V2,
        Some(_) => Mode::Hybrid,
        None => Mode::V1,
    }
}

/// The cgroup2 mount under /sys/fs/cgroup (the whole of it on v2, `unified` on hybrid hosts):
/// its mount point and the root of the hierarchy it shows. A later mount on the same point or
/// above it hides it (mountinfo lists mounts in the order they were made).
pub(crate) fn unified_mount(mounts: &str) -> Option<(PathBuf, String)> {
    let mut visible = None;
    for m in mounts.lines().filter_map(mountinfo) {
        if m.fs_type == "cgroup2"
            && matches!(m.mount_point, "/sys/fs/cgroup" | "/sys/fs/cgroup/unified")
        {
            visible = Some(m);
        } else if visible
            .as_ref()
            .is_some_and(|v: &crate::mountinfo::MountInfo| {
                Path::new(v.mount_point).starts_with(m.mount_point)
            })
        {
            visible = None;
        }
    }
    visible.map(|m| (PathBuf::from(m.mount_point), m.root.to_string()))
}

/// A mounted v1 hierarchy: its controllers, mount point and our own cgroup in it.
pub(crate) struct Mounted {
    pub controllers: Vec<String>,
    pub mount_point: PathBuf,
    pub mount_root: String,
    pub own: String,
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
pub(crate) fn known_controllers() -> Vec<String> {
    fs::read_to_string("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

pub(crate) fn mounted_v1(mounts: &str, own_cgroups: &str, known: &[String]) -> Vec<Mounted> {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const HYBRID: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,cpu,cpuacct
";
    pub(crate) const V2: &str =
        "30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn an_overmounted_cgroup2_is_not_the_unified_hierarchy() {
        let hidden =
            format!("{HYBRID}40 31 0:50 / /sys/fs/cgroup/unified rw,relatime - tmpfs tmpfs rw\n");
        assert_eq!(unified_mount(&hidden), None);
        let hidden_above = format!("{HYBRID}41 25 0:51 / /sys/fs rw - tmpfs tmpfs rw\n");
        assert_eq!(unified_mount(&hidden_above), None);
        let remounted = format!(
            "{HYBRID}40 31 0:50 / /sys/fs/cgroup/unified rw - tmpfs tmpfs rw\n\
             42 40 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
        );
        assert_eq!(
            unified_mount(&remounted),
            Some((PathBuf::from("/sys/fs/cgroup/unified"), "/".to_string()))
        );
        assert!(unified_mount(HYBRID).is_some());
    }

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
    fn own_cgroups_and_hierarchies() {
        let own = "4:name=systemd:/s\n3:cpu,cpuacct:/a\n2:memory:/m\n0::/user.slice/s\n";
        let known: Vec<String> = ["cpu", "cpuacct", "memory"].map(String::from).to_vec();
        let mounts = format!(
            "{HYBRID}37 30 0:33 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd\n"
        );
        let mounted = mounted_v1(&mounts, own, &known);
        assert_eq!(mounted.len(), 3);
        assert_eq!(mounted[1].own, "/a");
        // Flags like xattr are not controllers; systemd's named hierarchy is joined.
        assert_eq!(mounted[2].controllers, ["name=systemd"]);
        assert_eq!(mounted[2].own, "/s");
        assert_eq!(own_cgroup(own, &[]).as_deref(), Some("/user.slice/s"));
    }

    #[test]
    fn the_canonical_mount_of_a_hierarchy_wins() {
        let own = "8:pids:/\n0::/\n";
        let known = vec!["pids".to_string()];
        let mounts = "\
58 46 0:36 /decoy /tmp/elsewhere rw - cgroup cgroup rw,pids
67 50 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
";
        let mounted = mounted_v1(mounts, own, &known);
        assert_eq!(mounted.len(), 1);
        assert_eq!(mounted[0].mount_point, Path::new("/sys/fs/cgroup/pids"));
        assert_eq!(mounted[0].mount_root, "/");
    }
}
