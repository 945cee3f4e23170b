//! uid/gid maps of a new user namespace, written by the parent once init exists.

use oci_spec::runtime::LinuxIdMapping;

use crate::config::Config;
use crate::error::{Context, Result};

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

pub fn write_maps(pid: i32, config: &Config) -> Result<()> {
    let Some(linux) = config.spec.linux() else {
        return Ok(());
    };
    let uid = map_text(linux.uid_mappings().as_deref().unwrap_or(&[]));
    let gid = map_text(linux.gid_mappings().as_deref().unwrap_or(&[]));
    std::fs::write(format!("/proc/{pid}/uid_map"), uid)
        .ctx(|| format!("write uid_map of init {pid}"))?;
    std::fs::write(format!("/proc/{pid}/gid_map"), gid)
        .ctx(|| format!("write gid_map of init {pid}"))
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

/// The host uid that is root in the container (the container's files and FIFO belong to it).
pub fn host_root(config: &Config) -> (u32, u32) {
    let find = |maps: Option<&Vec<LinuxIdMapping>>| {
        maps.into_iter()
            .flatten()
            .find(|m| m.container_id() == 0)
            .map(|m| m.host_id())
            .unwrap_or(0)
    };
    let linux = config.spec.linux().as_ref();
    (
        find(linux.and_then(|l| l.uid_mappings().as_ref())),
        find(linux.and_then(|l| l.gid_mappings().as_ref())),
    )
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
    }
}
