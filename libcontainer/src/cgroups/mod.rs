//! cgroups: the container's cgroup behind one [`Manager`] trait.
//!
//! - [`manager`]: the trait and the factory that picks the driver;
//! - [`fs`]: the cgroupfs driver and its state record, [`Cgroup`];
//! - [`systemd`](mod@systemd): the systemd driver (`--systemd-cgroup`): a transient unit over
//!   D-Bus, its values written by the cgroupfs code;
//! - [`detect`](mod@detect): what the host has (v1, hybrid, v2; mounts; our own cgroups);
//! - [`paths`]: where `linux.cgroupsPath` puts the container's cgroup on each hierarchy;
//! - [`resources`]: `linux.resources` checked then written, per version in [`v1`] and [`v2`],
//!   device rules in [`devices`] (v1 files) and [`bpf`] (the v2 eBPF filter);
//! - [`exec`]: where an `exec`'d process goes (`exec --cgroup` sub-cgroups);
//! - [`stats`]: `events` statistics.
//!
//! One driver for v1, hybrid and v2 hosts: a container's cgroup is a list of hierarchies,
//! each a v1 hierarchy (one or more controllers) or the unified (cgroup2) one, and every
//! resource goes to the hierarchy that has its controller, in that hierarchy's file format.
//! Written for brig rather than taken from cgroups-rs: we need runc's path rules (relative to
//! our own cgroup per v1 hierarchy), to record which directories we created (a shared cgroup is
//! never removed), the v2 device filter as our own eBPF program, and one write per setting on
//! the start path.

pub mod bpf;
pub mod detect;
pub mod devices;
pub mod exec;
pub mod fs;
pub mod manager;
pub mod paths;
pub mod resources;
pub mod stats;
pub mod systemd;
pub mod v1;
pub mod v2;

use oci_spec::runtime::LinuxResources;

pub use detect::{detect, Mode};
pub use fs::{Cgroup, Hierarchy};
pub use manager::{for_state, new, Manager};
pub(crate) use resources::{set, write_cgroup_file, Plan, Write};

/// A hybrid host's unified hierarchy gets controllers enabled for the container only when the
/// config needs them (hugepage limits where hugetlb is bound there, `unified` keys): every other
/// controller is v1, and writing the hierarchy's subtree_control would cost every start.
pub fn needs_unified(resources: Option<&LinuxResources>) -> bool {
    resources.is_some_and(|r| {
        r.hugepage_limits().as_ref().is_some_and(|l| !l.is_empty())
            || r.unified().as_ref().is_some_and(|u| !u.is_empty())
    })
}
