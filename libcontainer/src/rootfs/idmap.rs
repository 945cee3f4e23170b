//! Id-mapped bind mounts (`idmap`, `ridmap`, `uidMappings`/`gidMappings` of a mount).
//!
//! Setting MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN over the source's filesystem, which init no
//! longer has once it is in a new user namespace; so `create` makes each such mount on the host
//! before the clone, as a detached tree (open_tree + mount_setattr), and init only attaches it
//! at its destination (move_mount). The mapping's user namespace comes from a short-lived child
//! that exists only to own it.
//!
//! A container in a user namespace gets every other bind mount the same way (a plain detached
//! clone): its root is a mapped uid that may not reach the source (a 0700 state root, a
//! private home), while brig on the host can.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use oci_spec::runtime::{LinuxIdMapping, Mount};

use super::options;
use crate::config::Config;
use crate::error::{Context, Error, Result};
use crate::sys;

/// The detached trees by mount index (id-mapped ones; in a user namespace every bind mount),
/// made on the host before the clone.
#[derive(Default)]
pub struct IdmappedMounts {
    trees: Vec<(usize, OwnedFd)>,
}

impl IdmappedMounts {
    pub fn get(&self, index: usize) -> Option<BorrowedFd<'_>> {
        self.trees
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, fd)| fd.as_fd())
    }
}

/// Whether a mount asks for an idmapping, and whether recursively (`ridmap`).
fn wanted(m: &Mount) -> Option<bool> {
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]));
    match opts.idmap {
        Some(recursive) => Some(recursive),
        None if m.uid_mappings().is_some() || m.gid_mappings().is_some() => Some(false),
        None => None,
    }
}

/// The mapping for mount `index`: its own, or the container's user namespace's.
fn mappings<'a>(
    m: &'a Mount,
    index: usize,
    config: &'a Config,
) -> Result<(&'a [LinuxIdMapping], &'a [LinuxIdMapping])> {
    let field = |f: &str| format!("mounts[{index}].{f}");
    match (m.uid_mappings().as_deref(), m.gid_mappings().as_deref()) {
        (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => Ok((u, g)),
        (Some(_), Some(_)) => Err(Error::config(
            field("uidMappings"),
            "an idmapping needs at least one uid and one gid range",
        )),
        (Some(_), None) => Err(Error::config(
            field("gidMappings"),
            "must be given with uidMappings",
        )),
        (None, Some(_)) => Err(Error::config(
            field("uidMappings"),
            "must be given with gidMappings",
        )),
        (None, None) => {
            let linux = config.spec.linux().as_ref();
            let user_ns = config.new_namespace(oci_spec::runtime::LinuxNamespaceType::User);
            match (
                user_ns,
                linux.and_then(|l| l.uid_mappings().as_deref()),
                linux.and_then(|l| l.gid_mappings().as_deref()),
            ) {
                (true, Some(u), Some(g)) => Ok((u, g)),
                _ => Err(Error::config(
                    field("options"),
                    "idmap needs the mount's uidMappings and gidMappings, or a new user namespace with mappings",
                )),
            }
        }
    }
}

/// Make every id-mapped mount of the config as a detached tree. Nothing to undo on failure:
/// the trees vanish with their descriptors.
pub fn prepare(config: &Config) -> Result<IdmappedMounts> {
    let mut made = IdmappedMounts::default();
    let mut namespaces: Vec<(String, OwnedFd)> = Vec::new();
    let in_user_ns = config
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        });
    for (index, m) in config.spec.mounts().iter().flatten().enumerate() {
        let opts = options::parse(m.options().as_deref().unwrap_or(&[]));
        let Some(recursive_idmap) = wanted(m) else {
            if in_user_ns && (opts.bind || m.typ().as_deref() == Some("bind")) {
                if let Some(tree) = plain_clone(m, index, config, opts.recursive)? {
                    made.trees.push((index, tree));
                }
            }
            continue;
        };
        if !(opts.bind || m.typ().as_deref() == Some("bind")) {
            return Err(Error::config(
                format!("mounts[{index}].options"),
                "idmap and ridmap are supported on bind mounts only",
            ));
        }
        let (uids, gids) = mappings(m, index, config)?;
        let key = format!("{}|{}", map_text(uids), map_text(gids));
        let userns = match namespaces.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let fd = user_namespace(uids, gids)
                    .ctx(|| format!("mounts[{index}]: make the idmapping's user namespace"))?;
                namespaces.push((key, fd));
                namespaces.len() - 1
            }
        };
        let source = m.source().as_deref().ok_or_else(|| {
            Error::config(
                format!("mounts[{index}].source"),
                "a bind mount needs a source",
            )
        })?;
        let source = config.bundle.join(source);
        let tree = open_tree(&source, opts.recursive).ctx(|| {
            format!(
                "mounts[{index}]: clone the mount tree of {}",
                source.display()
            )
        })?;
        set_idmap(&tree, namespaces[userns].1.as_fd(), recursive_idmap)
            .ctx(|| format!("mounts[{index}]: idmap {}", source.display()))?;
        made.trees.push((index, tree));
    }
    Ok(made)
}

/// A bind source cloned as it is, for init to attach; `None` where the kernel has no
/// open_tree (init then mounts the path itself, as before).
fn plain_clone(
    m: &Mount,
    index: usize,
    config: &Config,
    recursive: bool,
) -> Result<Option<OwnedFd>> {
    // A missing source is init's to report (with the index and the path), as without a user
    // namespace.
    let Some(source) = m.source().as_deref().map(|s| config.bundle.join(s)) else {
        return Ok(None);
    };
    match open_tree(&source, recursive) {
        Ok(tree) => Ok(Some(tree)),
        // An unprivileged caller may not clone a tree of the host's mount namespace (its
        // owner is the host's user namespace): init binds the path, which the caller can reach.
        Err(Errno::ENOSYS) => Ok(None),
        Err(Errno::EPERM) if crate::rootless::unprivileged() => Ok(None),
        Err(e) => Err(e).ctx(|| format!("mounts[{index}].source {}", source.display())),
    }
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// A user namespace with these maps, kept alive by the returned descriptor only.
fn user_namespace(
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
) -> std::result::Result<OwnedFd, Errno> {
    // brig is single-threaded here (as fork needs); the child only waits to be killed.
    let child = sys::clone::clone(libc::CLONE_NEWUSER as u64)?;
    if child == 0 {
        loop {
            nix::unistd::pause();
        }
    }
    let child = nix::unistd::Pid::from_raw(child);
    let made = (|| {
        std::fs::write(format!("/proc/{child}/uid_map"), map_text(uids)).map_err(errno)?;
        std::fs::write(format!("/proc/{child}/gid_map"), map_text(gids)).map_err(errno)?;
        nix::fcntl::open(
            format!("/proc/{child}/ns/user").as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
    })();
    // Our own child: killed and reaped so nothing is left.
    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(child, None);
    made
}

fn open_tree(source: &Path, recursive: bool) -> std::result::Result<OwnedFd, Errno> {
    sys::mount::open_tree_path(source, recursive).map_err(errno)
}

fn set_idmap(
    tree: &OwnedFd,
    userns: BorrowedFd<'_>,
    recursive: bool,
) -> std::result::Result<(), Errno> {
    sys::mount::mount_setattr(
        tree.as_fd(),
        recursive,
        sys::mount::MOUNT_ATTR_IDMAP,
        0,
        Some(userns),
    )
    .map_err(errno)
}

/// Attach a prepared tree at `target` (an O_PATH handle inside the rootfs).
pub fn attach(tree: BorrowedFd<'_>, target: &OwnedFd) -> std::result::Result<(), Errno> {
    sys::mount::move_mount(tree, target.as_fd()).map_err(errno)
}

fn errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}
