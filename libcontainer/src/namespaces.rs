//! Which namespaces a container gets new, which it joins by path, and joining them.

use std::os::fd::OwnedFd;

use std::collections::{HashMap, HashSet};

use nix::fcntl::OFlag;
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, LinuxTimeOffset};

use crate::error::{Context, Error, Result};

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

/// The `CLONE_NEW*` flags for every namespace in `namespaces` listed without a path.
pub fn new_namespace_flags(namespaces: &[LinuxNamespace]) -> u64 {
    namespaces
        .iter()
        .filter(|ns| ns.path().is_none())
        .fold(0u64, |acc, ns| acc | ns.typ() as u64)
}

/// True when `namespaces` gives the container a `kind` namespace of its own (no path).
pub fn is_new(namespaces: &[LinuxNamespace], kind: LinuxNamespaceType) -> bool {
    namespaces
        .iter()
        .any(|ns| ns.typ() == kind && ns.path().is_none())
}

/// `linux.namespaces`: each type once, joined paths absolute.
pub fn validate(namespaces: &[LinuxNamespace]) -> Result<()> {
    let mut seen = HashSet::new();
    for (i, ns) in namespaces.iter().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(Error::config(
                format!("linux.namespaces[{i}]"),
                format!("namespace {:?} is listed twice", spec_name(ns.typ())),
            ));
        }
        if let Some(path) = ns.path() {
            if !path.is_absolute() {
                return Err(Error::config(
                    format!("linux.namespaces[{i}].path"),
                    format!("must be an absolute path, got {path:?}"),
                ));
            }
        }
    }
    Ok(())
}

/// `linux.timeOffsets`: only in a new time namespace, only the clocks the kernel offsets.
pub fn validate_time_offsets(
    offsets: &HashMap<String, LinuxTimeOffset>,
    namespaces: &[LinuxNamespace],
) -> Result<()> {
    if !offsets.is_empty() && !is_new(namespaces, LinuxNamespaceType::Time) {
        return Err(Error::config(
            "linux.timeOffsets",
            "needs a new time namespace in linux.namespaces",
        ));
    }
    if let Some(clock) = offsets
        .keys()
        .find(|k| !matches!(k.as_str(), "monotonic" | "boottime"))
    {
        return Err(Error::config(
            format!("linux.timeOffsets.{clock}"),
            "only monotonic and boottime clocks can be offset",
        ));
    }
    Ok(())
}

/// Open every `linux.namespaces[].path`, user namespace first so it is joined first.
pub fn open_paths(namespaces: &[LinuxNamespace]) -> Result<Vec<JoinNamespace>> {
    let mut joins = Vec::new();
    for (index, ns) in namespaces.iter().enumerate() {
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

/// Back to our own pid and time namespaces for the processes we start after init (hooks,
/// helpers), as runc's parent never leaves them: joining or unsharing them before the clone
/// changed where our children go. It also lets us start threads again: clone(2) refuses
/// CLONE_THREAD (EINVAL) while our children's pid or time namespace is not our own, and the
/// hooks' stdin writer and the systemd driver's D-Bus client run on threads. Call it before
/// any thread exists (setns into a time namespace needs a single-threaded caller).
pub fn restore_for_children() -> Result<()> {
    for kind in [LinuxNamespaceType::Pid, LinuxNamespaceType::Time] {
        let own = format!("/proc/self/ns/{}", spec_name(kind));
        // A kernel without time namespaces has no such link: nothing to restore.
        let Ok(active) = std::fs::read_link(&own) else {
            continue;
        };
        let children = std::fs::read_link(format!("{own}_for_children"))
            .ctx(|| format!("read {own}_for_children"))?;
        if children == active {
            continue;
        }
        let fd = nix::fcntl::open(
            own.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("open {own}"))?;
        match setns(&fd, clone_flag(kind)) {
            Ok(()) => {}
            // Unprivileged in a user namespace that does not own our own pid namespace (rootless
            // podman): we may not go back, and our children stay where init went, as before.
            Err(nix::errno::Errno::EPERM) => tracing::debug!(
                "staying in init's {} namespace for our children: not allowed back into ours",
                spec_name(kind)
            ),
            Err(err) => {
                return Err(err).ctx(|| {
                    format!(
                        "go back to our own {} namespace after starting init",
                        spec_name(kind)
                    )
                })
            }
        }
    }
    Ok(())
}

/// A new time namespace with `linux.timeOffsets`: offsets can only be written before any
/// process is in the namespace, so the parent unshares it (it applies to its children only),
/// writes the offsets, and clones init into it without CLONE_NEWTIME.
pub fn unshare_time_with_offsets(offsets: &HashMap<String, LinuxTimeOffset>) -> Result<()> {
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
