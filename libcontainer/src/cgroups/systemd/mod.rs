//! The systemd driver (`--systemd-cgroup`): the container's cgroup is a transient unit that
//! systemd makes over D-Bus, then written, joined, frozen and read through the cgroupfs code
//! (one code path for values, as runc does), so the two drivers never disagree.
//!
//! - [`unit`]: `linux.cgroupsPath` in runc's `slice:prefix:name` form → the unit and its cgroup;
//! - [`properties`]: the unit's properties (accounting, resources systemd knows);
//! - [`devices`]: the device rules as `DevicePolicy=`/`DeviceAllow=`;
//! - [`dbus`]: the calls to systemd's manager (zbus), with the job waits.
//!
//! D-Bus is only touched on this driver's path: the fs driver's start path is unchanged.
//! systemd places init (`PIDs=`) when the unit starts, which is after init is cloned and before
//! it runs anything of the container's: init is not born in its cgroup (no CLONE_INTO_CGROUP)
//! and waits for the parent, as on cgroup v1.
//!
//! Rootless (an unprivileged caller, or root of a user namespace such as rootless podman's),
//! the unit is asked of the user's own manager (runc's rules): the empty slice is
//! `user.slice`, the scope is below the manager's cgroup and delegated to the user, which is
//! what makes its limits writable. Only on cgroup v2: systemd delegates nothing to a user on
//! v1, where runc refuses the combination, and so does brig.

pub mod dbus;
pub mod devices;
pub mod properties;
pub mod unit;

use std::cell::{Cell, RefCell};
use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxResources};

use super::exec::SubCgroups;
use super::fs::Cgroup;
use super::manager::Manager;
use crate::error::{Error, Result};
pub use unit::Unit;

/// What `set` was given before the unit existed, written once it does: resources, devices,
/// and whether as an update (rootless: without device rules).
type Pending = (Option<LinuxResources>, Vec<LinuxDevice>, bool);

/// A container's cgroup as a systemd unit.
pub struct Systemd {
    /// The unit's cgroup on each hierarchy, with the unit (`systemd`) recorded.
    cg: Cgroup,
    unified_controllers: bool,
    pending: RefCell<Option<Pending>>,
    /// The unit may exist because of us: only then does `destroy` stop it (a create that
    /// found another's unit must leave it alone).
    ours: Cell<bool>,
}

impl Systemd {
    /// The unit for a new container (`linux.cgroupsPath`, container id).
    pub fn new(cgroups_path: Option<&Path>, id: &str) -> Result<Systemd> {
        let path = cgroups_path
            .map(|p| {
                p.to_str().ok_or_else(|| {
                    Error::config("linux.cgroupsPath", format!("{p:?} is not UTF-8"))
                })
            })
            .transpose()?;
        let user = crate::rootless::rootless() && crate::rootless::outside_uid() != 0;
        let mut unit = Unit::parse(path, id, user)?;
        if !dbus::booted() {
            return Err(Error::option(
                "systemd_cgroup",
                "systemd is not running on this host (no /run/systemd/system); run without it for the cgroupfs driver",
            ));
        }
        if user {
            if super::detect::detect() != super::detect::Mode::V2 {
                return Err(Error::option(
                    "systemd_cgroup",
                    "rootless: cannot use the systemd cgroup driver on cgroup v1 (systemd delegates \
                     no v1 controller to a user); run without --systemd-cgroup",
                ));
            }
            let bus = dbus::Systemd::connect_user()?;
            let root = bus
                .control_group()
                .map_err(|e| e.into_error("read the user manager's ControlGroup"))?;
            unit = unit.in_manager(&root)?;
        }
        let mut cg = super::paths::resolve_absolute(Path::new(&unit.cgroup()?))?;
        cg.systemd = Some(unit);
        Ok(Systemd {
            cg,
            unified_controllers: false,
            pending: RefCell::new(None),
            ours: Cell::new(false),
        })
    }

    /// The manager of a container whose state says it is a unit.
    pub fn from_record(record: &Cgroup) -> Systemd {
        let mut cg = record.clone();
        // The controllers systemd enabled for the unit (the record was saved before it ran).
        for h in cg.hierarchies.iter_mut().filter(|h| h.unified) {
            if h.controllers.is_empty() {
                h.controllers = super::v2::controllers(&h.path);
            }
        }
        Systemd {
            cg,
            unified_controllers: false,
            pending: RefCell::new(None),
            ours: Cell::new(true),
        }
    }

    fn unit(&self) -> Result<&Unit> {
        self.cg
            .systemd
            .as_ref()
            .ok_or_else(|| Error::Other("the cgroup record names no systemd unit".into()))
    }

    fn start(&self, pid: i32) -> Result<()> {
        let unit = self.unit()?;
        let bus = dbus::Systemd::connect_for(unit)?;
        let version = bus.version();
        let v2 = self.cg.is_v2();
        let init = u32::try_from(pid).ok().filter(|_| !unit.is_slice());
        let mut props = properties::unit(
            &format!("brig container {}", unit.name),
            &unit.slice,
            !unit.is_slice(),
            init,
            v2,
            version,
        );
        if let Some((resources, spec_devices, _)) = &*self.pending.borrow() {
            if let Some(r) = resources {
                props.extend(properties::resources(r, v2, version));
            }
            // A user manager cannot load a device filter (the cgroupfs code writes none
            // rootless either).
            if unit.user_manager.is_none() {
                let rules = super::devices::rule_list(resources.as_ref(), spec_devices)?;
                props.extend(properties::devices(&rules, version));
            }
        }
        match bus.start_transient_unit(&unit.name, props) {
            Ok(()) => Ok(()),
            Err(e) if e.is("org.freedesktop.systemd1.UnitExists") => Err(Error::Other(format!(
                "systemd unit {} already exists (a container of that name, or an earlier create that did not finish: `delete --force` it)",
                unit.name
            ))),
            Err(e) => {
                // The job may have been queued: the unit is ours to stop.
                self.ours.set(true);
                Err(e.into_error(&format!("start unit {}", unit.name)))
            }
        }?;
        self.ours.set(true);
        Ok(())
    }

    fn freeze_unit(&self, frozen: bool) -> Result<()> {
        let unit = self.unit()?;
        let bus = dbus::Systemd::connect_for(unit)?;
        let version = bus.version();
        if version != 0 && version < 246 {
            return Err(Error::Other(format!(
                "systemd {version} cannot freeze units (246 or later can)"
            )));
        }
        let (method, what) = if frozen {
            ("FreezeUnit", "freeze")
        } else {
            ("ThawUnit", "thaw")
        };
        bus.freezer(method, &unit.name)
            .map_err(|e| e.into_error(&format!("{what} unit {}", unit.name)))
    }
}

impl Manager for Systemd {
    fn record(&self) -> &Cgroup {
        &self.cg
    }

    fn check_existing(&self) -> Result<()> {
        self.cg.check_existing()
    }

    /// A user manager's unit is delegated to the user when it starts: all of it is kept.
    /// The system manager's (root in a user namespace with the host's uid 0) are filtered as
    /// the cgroupfs driver filters them.
    fn keep_writable(&mut self) -> Vec<std::path::PathBuf> {
        if self.unit().is_ok_and(|u| u.user_manager.is_some()) {
            return Vec::new();
        }
        Manager::keep_writable(&mut self.cg)
    }

    /// Every directory is the unit's (systemd removes its own; brig those of v1 hierarchies
    /// systemd leaves alone); the slices are systemd's.
    fn intent(&self) -> Cgroup {
        let mut planned = self.cg.clone();
        for h in &mut planned.hierarchies {
            h.created = true;
            h.created_parents = 0;
        }
        planned
    }

    /// Nothing yet: the unit is started with init in it, by [`Manager::apply`].
    fn create(&mut self, unified_controllers: bool) -> Result<()> {
        self.cg = self.intent();
        self.unified_controllers = unified_controllers;
        Ok(())
    }

    /// Start the unit with init in it and wait for systemd, then make and join what systemd
    /// does not manage and write every setting through the cgroupfs code.
    fn apply(&self, pid: i32, _placed_by_clone: bool) -> Result<()> {
        self.start(pid)?;
        let mut fs = self.cg.clone();
        fs.create(self.unified_controllers)?;
        fs.apply(pid, false)?;
        if let Some((resources, devices, as_update)) = self.pending.borrow_mut().take() {
            fs.set(resources.as_ref(), &devices, as_update)?;
        }
        Ok(())
    }

    /// Rootless, a caller outside the user manager's tree (a login session's scope is the
    /// system's) may not move a process into the unit: the exec'd process stays where it is,
    /// as rootless runc leaves it, unless a sub-cgroup was asked for.
    fn enter_exec(&self, sub: &SubCgroups, pid: i32, init: i32) -> Result<()> {
        let entered = self.cg.enter_exec(sub, pid, init);
        let user = self.unit().is_ok_and(|u| u.user_manager.is_some());
        match entered {
            Err(e)
                if user
                    && *sub == SubCgroups::None
                    && matches!(
                        e.errno(),
                        Some(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM)
                    ) =>
            {
                tracing::debug!(
                    "rootless: the exec'd process stays in its own cgroup (outside the user manager's tree): {e}"
                );
                Ok(())
            }
            other => other,
        }
    }

    /// At create (rootless too, which writes as an update), kept for [`Manager::apply`]: the
    /// unit does not exist yet; at update, the unit's properties and then the files.
    fn set(
        &self,
        resources: Option<&LinuxResources>,
        spec_devices: &[LinuxDevice],
        update: bool,
    ) -> Result<()> {
        if !update || !self.ours.get() {
            *self.pending.borrow_mut() = Some((resources.cloned(), spec_devices.to_vec(), update));
            return Ok(());
        }
        if let Some(r) = resources {
            let unit = self.unit()?;
            let bus = dbus::Systemd::connect_for(unit)?;
            let version = bus.version();
            let mut props = properties::resources(r, self.cg.is_v2(), version);
            // New device rules (as the cgroupfs code writes them only then).
            let devices = r.devices().is_some() && unit.user_manager.is_none();
            if devices {
                let rules = super::devices::rule_list(resources, spec_devices)?;
                props.extend(properties::devices(&rules, version));
            }
            if !props.is_empty() {
                // On v1 systemd rewrites the devices cgroup from "deny all": frozen meanwhile,
                // the container sees no device vanish for a moment (runc does the same).
                let freeze = devices && !self.cg.is_v2() && !self.cg.frozen();
                if freeze {
                    self.cg.freeze(true)?;
                }
                let set = bus
                    .set_unit_properties(&unit.name, props)
                    .map_err(|e| e.into_error(&format!("set properties of {}", unit.name)));
                if freeze {
                    self.cg.freeze(false)?;
                }
                set?;
            }
        }
        self.cg.set(resources, spec_devices, true)
    }

    fn owned(&self) -> bool {
        true
    }

    fn pids(&self) -> Result<Vec<i32>> {
        self.cg.pids()
    }

    fn can_freeze(&self) -> bool {
        self.cg.can_freeze()
    }

    /// Through systemd where it can (cgroup v2, systemd 246 or later: `FreezeUnit`, so
    /// `systemctl` shows the unit frozen), then the cgroup files, which the kernel's state is
    /// read from and which are all there is otherwise: both agree either way.
    fn freeze(&self, frozen: bool) -> Result<()> {
        if self.cg.is_v2() {
            if let Err(e) = self.freeze_unit(frozen) {
                tracing::debug!("{e}; freezing through the cgroup files only");
            }
        }
        let done = self.cg.freeze(frozen);
        // A thaw after a kill: the unit's processes are gone, and systemd may have removed
        // its cgroup with it already; nothing is frozen there.
        let gone = || self.cg.freezer().is_some_and(|h| !h.path.exists());
        if !frozen && done.is_err() && gone() {
            return Ok(());
        }
        done
    }

    fn frozen(&self) -> bool {
        self.cg.frozen()
    }

    fn stats(&self) -> serde_json::Value {
        self.cg.stats()
    }

    fn oom_kills(&self) -> u64 {
        self.cg.oom_kills()
    }

    /// Kill what is left, stop the unit (waiting for systemd), remove what brig made.
    fn destroy(&self) -> Result<()> {
        if !self.ours.get() {
            return Ok(());
        }
        self.cg.kill_all()?;
        let unit = self.unit()?;
        let bus = dbus::Systemd::connect_for(unit)?;
        bus.stop_unit(&unit.name)
            .map_err(|e| e.into_error(&format!("stop unit {}", unit.name)))?;
        self.cg.destroy()
    }
}
