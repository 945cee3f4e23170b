//! `linux.sysctl`: only keys the container's own namespaces scope; a host-wide key is refused,
//! since writing it from the container would change the host.

use std::collections::HashMap;
use std::os::fd::BorrowedFd;

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::error::{Context, Error, Result};
use crate::namespaces;

const IPC_KEYS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The namespace that scopes `key`, or `None` when the key is host-wide.
pub fn scope(key: &str) -> Option<LinuxNamespaceType> {
    if IPC_KEYS.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

/// `linux.sysctl`: every key a sysctl name scoped by a namespace of the container's own.
pub fn validate(sysctl: &HashMap<String, String>, namespaces: &[LinuxNamespace]) -> Result<()> {
    for key in sysctl.keys() {
        let field = || format!("linux.sysctl.{key}");
        if key.is_empty()
            || key
                .split(['.', '/'])
                .any(|part| part.is_empty() || part == "..")
        {
            return Err(Error::config(field(), "is not a sysctl name"));
        }
        let Some(ns) = scope(key) else {
            return Err(Error::config(
                field(),
                "is not namespaced: setting it would change the host",
            ));
        };
        if !namespaces::is_new(namespaces, ns) {
            return Err(Error::config(
                field(),
                format!(
                    "needs a new {} namespace in linux.namespaces",
                    namespaces::spec_name(ns)
                ),
            ));
        }
    }
    Ok(())
}

/// Write every key through `proc` (the host's procfs: /proc/sys shows the writer's namespaces).
pub fn apply(sysctl: &HashMap<String, String>, proc: BorrowedFd<'_>) -> Result<()> {
    for (key, value) in sysctl {
        let path = format!("sys/{}", key.replace('.', "/"));
        let what = || format!("linux.sysctl.{key}: write {value:?} to /proc/{path}");
        let fd = openat(
            proc,
            path.as_str(),
            OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )
        .ctx(what)?;
        nix::unistd::write(&fd, value.as_bytes()).ctx(what)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert_eq!(
            scope("net.ipv4.ip_forward"),
            Some(LinuxNamespaceType::Network)
        );
        assert_eq!(scope("kernel.shmmax"), Some(LinuxNamespaceType::Ipc));
        assert_eq!(scope("fs.mqueue.queues_max"), Some(LinuxNamespaceType::Ipc));
        assert_eq!(scope("kernel.domainname"), Some(LinuxNamespaceType::Uts));
        assert_eq!(scope("kernel.hostname"), None);
        assert_eq!(scope("vm.swappiness"), None);
        assert_eq!(scope("kernel.pid_max"), None);
    }
}
