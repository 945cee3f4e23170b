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
    setns(&ns.fd, clone_flag(ns.kind))
        .ctx(|| format!("join {} namespace {}", spec_name(ns.kind), ns.path))
}

/// A new time namespace with `linux.timeOffsets`: offsets can only be written before any
/// process is in the namespace, so the parent unshares it (it applies to its children only),
/// writes the offsets, and clones init into it without CLONE_NEWTIME.
pub fn unshare_time_with_offsets(
    offsets: &std::collections::HashMap<String, oci_spec::runtime::LinuxTimeOffset>,
) -> Result<()> {
    nix::sched::unshare(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
        .ctx(|| "unshare a time namespace")?;
    let text: String = offsets
        .iter()
        .map(|(clock, offset)| {
            format!(
                "{clock} {} {}\n",
                offset.secs().unwrap_or(0),
                offset.nanosecs().unwrap_or(0)
            )
        })
        .collect();
    std::fs::write("/proc/self/timens_offsets", &text)
        .ctx(|| format!("linux.timeOffsets: write {text:?}"))
}

/// The name the runtime spec gives `kind` in `linux.namespaces[].type`.
pub fn spec_name(kind: LinuxNamespaceType) -> &'static str {
    match kind {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}
