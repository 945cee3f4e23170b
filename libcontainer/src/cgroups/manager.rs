//! The `Manager` trait: a container's cgroup lifecycle, whatever driver keeps it.
//!
//! Two drivers: cgroupfs ([`super::fs`]), whose record ([`Cgroup`]) is the `cgroup` field of
//! state.json, and systemd ([`super::systemd`]), which creates a transient unit and then
//! writes the unit's cgroup files with the same resource code, around the same record (plus
//! its unit, a state field with a serde default so old state files still read as cgroupfs).
//! [`for_state`] is where the driver is picked from the state, [`new`] from the config and the
//! CLI's choice.

use std::ops::Deref;
use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxResources};

use super::exec::SubCgroups;
use super::fs::Cgroup;
use super::systemd::Systemd;
use crate::error::Result;

/// A container's cgroup: made at `create`, joined by init (and by `exec`'d processes),
/// limited, frozen, listed, measured and removed.
pub trait Manager {
    /// What state.json keeps of it: each hierarchy's path and what brig made.
    fn record(&self) -> &Cgroup;

    /// Refuse a cgroup that is frozen already (init would hang in it) and warn about one with
    /// processes in it; called before anything is created or joined.
    fn check_existing(&self) -> Result<()>;

    /// The record as it will be once [`Manager::create`] has run, with the directories it is
    /// about to make marked as brig's: saved before the first mkdir, so a `create` killed at
    /// any point leaves `delete --force` what it needs to remove them.
    fn intent(&self) -> Cgroup;

    /// Rootless: keep only the hierarchies this caller may write (a delegated cgroup) and
    /// return the paths of the others, which the container goes without.
    fn keep_writable(&mut self) -> Vec<std::path::PathBuf>;

    /// Make the cgroup (`unified_controllers`: enable controllers in the unified hierarchy of
    /// a hybrid host, see [`super::needs_unified`]).
    fn create(&mut self, unified_controllers: bool) -> Result<()>;

    /// Put `pid` in the cgroup on every hierarchy; `placed_by_clone`: the unified one is done
    /// (CLONE_INTO_CGROUP).
    fn apply(&self, pid: i32, placed_by_clone: bool) -> Result<()>;

    /// Put an `exec`'d process in the cgroup, or in the sub-cgroup `sub` of it (`exec
    /// --cgroup`); `init` is the container's init.
    fn enter_exec(&self, sub: &SubCgroups, pid: i32, init: i32) -> Result<()>;

    /// Write `linux.resources` (create, or `update` when `update`), device rules included;
    /// `spec_devices` are the config's `linux.devices`.
    fn set(
        &self,
        resources: Option<&LinuxResources>,
        spec_devices: &[LinuxDevice],
        update: bool,
    ) -> Result<()>;

    /// brig made this cgroup (rather than joining one): only then are all its processes the
    /// container's, to be signalled, frozen or killed.
    fn owned(&self) -> bool;

    /// Every process in the cgroup and in the cgroups below it.
    fn pids(&self) -> Result<Vec<i32>>;

    fn can_freeze(&self) -> bool;
    /// Freeze or thaw, waiting until the kernel says it is done.
    fn freeze(&self, frozen: bool) -> Result<()>;
    fn frozen(&self) -> bool;

    /// Statistics in the shape `runc events` prints.
    fn stats(&self) -> serde_json::Value;
    /// How many times the OOM killer acted in the cgroup.
    fn oom_kills(&self) -> u64;

    /// Kill what is left in a cgroup of the container's own, then remove what brig made.
    fn destroy(&self) -> Result<()>;
}

/// A container's manager from its state: the record itself for cgroupfs (no copy, no
/// allocation on that path), a systemd manager around it for a unit.
pub enum ForState<'a> {
    Fs(&'a Cgroup),
    Systemd(Box<Systemd>),
}

impl<'a> Deref for ForState<'a> {
    type Target = dyn Manager + 'a;

    fn deref(&self) -> &Self::Target {
        match self {
            ForState::Fs(cg) => *cg,
            ForState::Systemd(s) => s.as_ref(),
        }
    }
}

/// The manager of a container from its state.
pub fn for_state(record: &Cgroup) -> ForState<'_> {
    match record.systemd {
        None => ForState::Fs(record),
        Some(_) => ForState::Systemd(Box::new(Systemd::from_record(record))),
    }
}

/// The manager for a new container: `cgroups_path` is `linux.cgroupsPath`; `systemd` is the
/// CLI's `--systemd-cgroup`.
pub fn new(cgroups_path: Option<&Path>, id: &str, systemd: bool) -> Result<Box<dyn Manager>> {
    if systemd {
        return Ok(Box::new(Systemd::new(cgroups_path, id)?));
    }
    Ok(Box::new(super::paths::resolve(cgroups_path, id)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_driver_comes_from_the_record() {
        let fs: Cgroup = serde_json::from_str(r#"{"hierarchies":[]}"#).unwrap();
        assert!(matches!(for_state(&fs), ForState::Fs(_)));
        let unit = r#"{"hierarchies":[],"systemd":{"name":"brig-a.scope","slice":"system.slice"}}"#;
        let sd: Cgroup = serde_json::from_str(unit).unwrap();
        assert!(matches!(for_state(&sd), ForState::Systemd(_)));
        assert_eq!(serde_json::to_string(&sd).unwrap(), unit);
        assert_eq!(serde_json::to_string(&fs).unwrap(), r#"{"hierarchies":[]}"#);
    }
}
