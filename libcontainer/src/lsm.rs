//! AppArmor and SELinux: brig applies a profile or label only where the LSM is enabled, and
//! refuses (as runc does) to start a container whose profile or label cannot be applied.

use std::path::Path;

use crate::error::{Error, Result};
use crate::procfs;

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

pub fn validate(profile: Option<&str>, label: Option<&str>) -> Result<()> {
    if profile.is_some_and(|p| !p.is_empty()) && !apparmor_enabled() {
        return Err(Error::config(
            "process.apparmorProfile",
            "AppArmor is not enabled on this host, the profile cannot be applied",
        ));
    }
    if label.is_some_and(|l| !l.is_empty()) && !selinux_enabled() {
        return Err(Error::config(
            "process.selinuxLabel",
            "SELinux is not enabled on this host, the label cannot be applied",
        ));
    }
    Ok(())
}

/// Arrange for `exec` to enter the AppArmor profile / SELinux label (init calls this last).
/// The attributes are written through a `/proc` checked to be procfs and to a file that is
/// procfs's own (see `procfs`): written anywhere else, the profile would silently not apply.
pub fn apply_on_exec(profile: Option<&str>, label: Option<&str>) -> Result<()> {
    let profile = profile.filter(|p| !p.is_empty());
    let label = label.filter(|l| !l.is_empty());
    if profile.is_none() && label.is_none() {
        return Ok(());
    }
    let proc = procfs::open_root()?;
    if let Some(profile) = profile {
        let attr = if procfs::exists(&proc, "thread-self/attr/apparmor/exec") {
            "thread-self/attr/apparmor/exec"
        } else {
            "thread-self/attr/exec"
        };
        procfs::write(&proc, attr, format!("exec {profile}").as_bytes())
            .map_err(|e| Error::Other(format!("set AppArmor profile {profile:?}: {e}")))?;
    }
    if let Some(label) = label {
        procfs::write(&proc, "thread-self/attr/exec", label.as_bytes())
            .map_err(|e| Error::Other(format!("set SELinux label {label:?}: {e}")))?;
    }
    Ok(())
}

/// The mount data with `linux.mountLabel` as SELinux's `context=` option, as runc gives it to
/// the mounts it labels. Without SELinux the label is ignored (runc's rule).
pub fn mount_data(data: &str, label: Option<&str>) -> String {
    match label.filter(|l| !l.is_empty()) {
        Some(label) if selinux_enabled() => with_context(data, label),
        _ => data.to_string(),
    }
}

/// `data` plus `context="label"` (quoted: an SELinux label holds commas).
fn with_context(data: &str, label: &str) -> String {
    if data.is_empty() {
        format!("context=\"{label}\"")
    } else {
        format!("{data},context=\"{label}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_label_is_a_quoted_context_option() {
        let label = "system_u:object_r:container_file_t:s0:c1,c2";
        assert_eq!(
            with_context("", label),
            "context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        );
        assert_eq!(
            with_context("mode=755,size=65536k", label),
            "mode=755,size=65536k,context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        );
    }

    #[test]
    fn without_selinux_the_mount_label_is_ignored() {
        if !selinux_enabled() {
            assert_eq!(
                mount_data("mode=755", Some("system_u:object_r:x:s0")),
                "mode=755"
            );
        }
        assert_eq!(mount_data("mode=755", Some("")), "mode=755");
        assert_eq!(mount_data("", None), "");
    }
}
