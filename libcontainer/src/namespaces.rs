//! Which namespaces a container gets new, which it joins by path, and joining them.

use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxNamespaceType;

use crate::config::Config;
use crate::error::{Context, Result};

/// A namespace to join, opened before the clone so a bad path fails early and cleanly.
#[derive(Debug)]
pub struct JoinNamespace {
    pub kind: LinuxNamespaceType,
    pub fd: OwnedFd,
    pub path: String,
}

pub fn clone_flag(kind: LinuxNamespaceType) -> CloneFlags {
    CloneFlags::from_bits_retain(kind as i32)
}

/// The `CLONE_NEW*` flags for every namespace the config lists without a path.
pub fn new_namespace_flags(config: &Config) -> u64 {
    namespaces(config)
        .filter(|ns| ns.path().is_none())
        .fold(0u64, |acc, ns| acc | ns.typ() as u64)
}

fn namespaces(config: &Config) -> impl Iterator<Item = &oci_spec::runtime::LinuxNamespace> {
    config
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or(&[])
        .iter()
}

/// Open every `linux.namespaces[].path`, user namespace first so it is joined first.
pub fn open_paths(config: &Config) -> Result<Vec<JoinNamespace>> {
    let mut joins = Vec::new();
    for (index, ns) in namespaces(config).enumerate() {
        let Some(path) = ns.path() else { continue };
        let fd = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .ctx(|| format!("linux.namespaces[{index}].path {}", path.display()))?;
        joins.push(JoinNamespace {
            kind: ns.typ(),
            fd,
            path: path.display().to_string(),
        });
    }
    joins.sort_by_key(|j| j.kind != LinuxNamespaceType::User);
    Ok(joins)
}

/// Namespaces that apply to children only (pid, time): the parent joins them before the clone.
pub fn applies_to_children(kind: LinuxNamespaceType) -> bool {
    matches!(kind, LinuxNamespaceType::Pid | LinuxNamespaceType::Time)
}

pub fn join(ns: &JoinNamespace) -> Result<()> {
    setns(&ns.fd, clone_flag(ns.kind)).ctx(|| format!("join {} namespace {}", ns.kind, ns.path))
}
