//! uid/gid maps of a new user namespace, written by the parent once init exists.

use oci_spec::runtime::LinuxIdMapping;

use crate::config::Config;
use crate::error::{Context, Result};
pub use crate::rootless::MapWriter;

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Write init's maps, by brig itself or (an unprivileged caller mapping subordinate ids) by
/// newuidmap/newgidmap; see [`crate::rootless::check_maps`].
pub fn write_maps(pid: i32, config: &Config, writer: MapWriter) -> Result<()> {
    let Some(linux) = config.spec.linux() else {
        return Ok(());
    };
    let uids = linux.uid_mappings().as_deref().unwrap_or(&[]);
    let gids = linux.gid_mappings().as_deref().unwrap_or(&[]);
    if writer == MapWriter::Helper {
        run_helper("newuidmap", pid, uids)?;
        return run_helper("newgidmap", pid, gids);
    }
    std::fs::write(format!("/proc/{pid}/uid_map"), map_text(uids))
        .ctx(|| format!("write uid_map of init {pid}"))?;
    if crate::rootless::unprivileged() {
        // The kernel lets an unprivileged process write a gid map only once setgroups is
        // denied (or it could drop groups that deny it access).
        std::fs::write(format!("/proc/{pid}/setgroups"), "deny")
            .ctx(|| format!("write deny to setgroups of init {pid}"))?;
    }
    std::fs::write(format!("/proc/{pid}/gid_map"), map_text(gids))
        .ctx(|| format!("write gid_map of init {pid}"))
}

/// `newuidmap PID container host size...` (the same for gids).
fn run_helper(helper: &str, pid: i32, maps: &[LinuxIdMapping]) -> Result<()> {
    let mut command = std::process::Command::new(helper);
    command.arg(pid.to_string());
    for m in maps {
        command.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .ctx(|| format!("run {helper} for init {pid}"))?;
    if !output.status.success() {
        return Err(crate::error::Error::Other(format!(
            "{helper} for init {pid} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

/// In a joined user namespace: the config's mappings, if it gives any, must be the ones the
/// namespace has (engines send both; a mismatch would run the container under other ids).
pub fn check_joined_maps(config: &Config) -> Result<()> {
    let Some(linux) = config.spec.linux() else {
        return Ok(());
    };
    let normal = |text: &str| -> Vec<Vec<String>> {
        let mut lines: Vec<Vec<String>> = text
            .lines()
            .map(|l| l.split_whitespace().map(String::from).collect())
            .filter(|l: &Vec<String>| !l.is_empty())
            .collect();
        lines.sort();
        lines
    };
    for (field, maps, file) in [
        (
            "linux.uidMappings",
            linux.uid_mappings(),
            "/proc/self/uid_map",
        ),
        (
            "linux.gidMappings",
            linux.gid_mappings(),
            "/proc/self/gid_map",
        ),
    ] {
        let Some(maps) = maps.as_deref().filter(|m| !m.is_empty()) else {
            continue;
        };
        let actual = std::fs::read_to_string(file).ctx(|| format!("read {file}"))?;
        if normal(&map_text(maps)) != normal(&actual) {
            return Err(crate::error::Error::config(
                field,
                format!(
                    "do not match the joined user namespace's ({})",
                    actual.split_whitespace().collect::<Vec<_>>().join(" ")
                ),
            ));
        }
    }
    Ok(())
}

/// The host ids of container ids `uid`/`gid`: through the user namespace's maps when the
/// container has them (an unmapped id is the overflow id 65534), else the same numbers.
pub fn host_ids(config: &Config, uid: u32, gid: u32) -> (u32, u32) {
    let map = |maps: Option<&Vec<LinuxIdMapping>>, id: u32| match maps {
        Some(maps) if !maps.is_empty() => maps
            .iter()
            .find(|m| id >= m.container_id() && id - m.container_id() < m.size())
            .map(|m| m.host_id() + (id - m.container_id()))
            .unwrap_or(65534),
        _ => id,
    };
    let linux = config.spec.linux().as_ref();
    (
        map(linux.and_then(|l| l.uid_mappings().as_ref()), uid),
        map(linux.and_then(|l| l.gid_mappings().as_ref()), gid),
    )
}

/// The host uid and gid that are root in the container (its files and FIFO belong to them).
pub fn host_root(config: &Config) -> (u32, u32) {
    host_ids(config, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_lines() {
        let maps: Vec<LinuxIdMapping> = serde_json::from_value(serde_json::json!([
            {"containerID": 0, "hostID": 100000, "size": 65536},
            {"containerID": 65536, "hostID": 0, "size": 1}
        ]))
        .unwrap();
        assert_eq!(map_text(&maps), "0 100000 65536\n65536 0 1\n");
        let mut spec = oci_spec::runtime::Spec::default();
        let mut linux = spec.linux().clone().unwrap_or_default();
        linux.set_uid_mappings(Some(maps.clone()));
        spec.set_linux(Some(linux));
        let config = Config {
            spec,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            seccomp: None,
        };
        assert_eq!(host_ids(&config, 0, 7), (100000, 7));
        assert_eq!(host_ids(&config, 65536, 0).0, 0);
        assert_eq!(host_ids(&config, 70000, 0).0, 65534, "unmapped");
    }
}
