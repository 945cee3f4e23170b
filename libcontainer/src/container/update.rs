//! `update`: change the resources of a running container.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups;
use crate::error::{Error, Result};
use crate::state::{ContainerDir, Status};

pub fn update(root: &Path, id: &str, resources: &LinuxResources) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let mut state = dir.load()?.ok_or_else(|| Error::NotFound(id.into()))?;
    if !matches!(
        state.status,
        Status::Created | Status::Running | Status::Paused
    ) {
        return Err(Error::WrongState {
            op: "update",
            id: id.into(),
            status: state.status.to_string(),
        });
    }
    if state.cgroup.hierarchies.is_empty() {
        return Err(Error::Other(format!(
            "cannot update container {id:?}: it has no cgroup"
        )));
    }
    // Device rules are rewritten only when given: a v1 rewrite denies everything for a moment.
    let spec_devices = state
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    cgroups::for_state(&state.cgroup).set(Some(resources), &spec_devices, true)?;
    let mut linux = state.config.linux().clone().unwrap_or_default();
    linux.set_resources(Some(merge(
        linux.resources().clone().unwrap_or_default(),
        resources,
    )));
    state.config.set_linux(Some(linux));
    dir.save(&state)
}

/// The stored resources with every field `update` set replaced.
fn merge(mut old: LinuxResources, new: &LinuxResources) -> LinuxResources {
    if new.memory().is_some() {
        old.set_memory(*new.memory());
    }
    if new.cpu().is_some() {
        old.set_cpu(new.cpu().clone());
    }
    if new.pids().is_some() {
        old.set_pids(*new.pids());
    }
    if new.block_io().is_some() {
        old.set_block_io(new.block_io().clone());
    }
    if new.devices().is_some() {
        old.set_devices(new.devices().clone());
    }
    if new.hugepage_limits().is_some() {
        old.set_hugepage_limits(new.hugepage_limits().clone());
    }
    if new.network().is_some() {
        old.set_network(new.network().clone());
    }
    if new.rdma().is_some() {
        old.set_rdma(new.rdma().clone());
    }
    if let Some(keys) = new.unified() {
        let mut merged = old.unified().clone().unwrap_or_default();
        merged.extend(keys.clone());
        old.set_unified(Some(merged));
    }
    old
}
