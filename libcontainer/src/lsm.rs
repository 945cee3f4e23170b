//! AppArmor and SELinux: brig applies a profile or label only where the LSM is enabled, and
//! refuses (as runc does) to start a container whose profile or label cannot be applied.

use std::path::Path;

use crate::error::{Context, Error, Result};

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
pub fn apply_on_exec(profile: Option<&str>, label: Option<&str>) -> Result<()> {
    if let Some(profile) = profile.filter(|p| !p.is_empty()) {
        let attr = if Path::new("/proc/thread-self/attr/apparmor/exec").exists() {
            "/proc/thread-self/attr/apparmor/exec"
        } else {
            "/proc/thread-self/attr/exec"
        };
        std::fs::write(attr, format!("exec {profile}"))
            .ctx(|| format!("set AppArmor profile {profile:?}"))?;
    }
    if let Some(label) = label.filter(|l| !l.is_empty()) {
        std::fs::write("/proc/thread-self/attr/exec", label)
            .ctx(|| format!("set SELinux label {label:?}"))?;
    }
    Ok(())
}
