//! Where `exec` puts its process: the rules live in [`crate::cgroups::exec`], behind the
//! cgroup [`cgroups::Manager`]; this module keeps the names `exec` and the CLI use.

pub use crate::cgroups::exec::{targets, SubCgroups};
use crate::cgroups::{self, Cgroup};
use crate::error::Result;

/// Put the exec'd `pid` in the container's cgroup, or in the sub-cgroup `sub` of it; `init` is
/// the container's init (whose cgroup v2 directory is the fallback, as runc).
pub fn enter(cgroup: &Cgroup, sub: &SubCgroups, pid: i32, init: i32) -> Result<()> {
    cgroups::for_state(cgroup).enter_exec(sub, pid, init)
}
