//! The container's filesystem view: propagation, `mounts`, `/dev`, pivot_root, masked and
//! read-only paths. Runs inside the container's new mount namespace, in init, before it execs.

pub mod console;
pub mod devices;
pub mod idmap;
pub mod masks;
pub mod options;
pub mod resolve;
pub mod switch;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{fstatvfs, statvfs, FsFlags, Statvfs};
use oci_spec::runtime::{LinuxNamespaceType, Mount};

use crate::cgroups::Cgroup;
use crate::config::Config;
use crate::error::{Context, Error, Result};
use crate::sys;
use resolve::{create_file, fd_path, mkdir_all, open_in_root};

const NONE: Option<&str> = None;

/// How the rootfs is prepared; the parts of `create`'s flags that reach the filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct RootfsOptions {
    /// `--no-pivot`: move the rootfs onto `/` and chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The container is in a user namespace (new or joined): device nodes are bind-mounted
    /// from the host (mknod is refused), and sysfs may have to be bound too.
    pub user_ns: bool,
}

/// True when the container has a mount namespace (new or joined). Without one, init works in
/// its caller's mount namespace: nothing there may be remounted, pivoted or moved.
pub fn has_mount_namespace(config: &Config) -> bool {
    config.namespace(LinuxNamespaceType::Mount).is_some()
}

/// Everything before the switch to the new root: propagation, mounts, devices, cwd.
pub fn prepare(
    config: &Config,
    options: RootfsOptions,
    cgroup: &Cgroup,
    idmapped: &idmap::IdmappedMounts,
) -> Result<()> {
    let linux = config.spec.linux().as_ref();
    let rootfs = &config.rootfs;
    if has_mount_namespace(config) {
        prepare_root(config)?;
    } else {
        // Without a mount namespace (runc's rule) the container's mounts go below the rootfs
        // in the caller's mount namespace and init chroots. Nothing of the caller's changes:
        // no propagation, no pivot; the rootfs gets a bind of its own, which a read-only root
        // remounts (the caller's mount of that directory stays as it is).
        bind_onto_itself(rootfs)?;
    }
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open rootfs {}", rootfs.display()))?;

    let mounts = config.spec.mounts().as_deref().unwrap_or(&[]);
    for (index, m) in mounts.iter().enumerate() {
        if m.typ().as_deref() == Some("cgroup") {
            mount_cgroups(root.as_fd(), m, cgroup)?;
        } else {
            mount_entry(
                root.as_fd(),
                m,
                index,
                config,
                idmapped.get(index),
                options.user_ns,
            )?;
        }
    }

    // runc's rule: a /dev that is not the host's gets the default nodes.
    let dev_is_bind = mounts.iter().any(|m| {
        resolve::relative(m.destination()) == Path::new("dev")
            && (m.typ().as_deref() == Some("bind")
                || options::parse(m.options().as_deref().unwrap_or(&[])).bind)
    });
    if !dev_is_bind {
        for node in devices::default_devices() {
            devices::create(root.as_fd(), &node, options.user_ns)?;
        }
        devices::create_symlinks(root.as_fd())?;
    }
    for (index, device) in linux
        .and_then(|l| l.devices().as_deref())
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        devices::create(
            root.as_fd(),
            &devices::from_spec(device, index)?,
            options.user_ns,
        )?;
    }

    // The working directory is made while we are still root, like runc.
    let cwd = config
        .spec
        .process()
        .as_ref()
        .map(|p| p.cwd().as_path())
        .unwrap_or(Path::new("/"));
    mkdir_all(root.as_fd(), cwd, 0o755)?;
    Ok(())
}

/// In the container's own mount namespace: propagation of `/` as runc sets it, the rootfs's
/// parent mount made private (pivot_root refuses a shared parent, and the bind below must not
/// propagate out), then the rootfs bound onto itself (pivot_root needs a mount point).
fn prepare_root(config: &Config) -> Result<()> {
    let linux = config.spec.linux().as_ref();
    let name = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|n| !n.is_empty());
    // runc's default is rslave: the host's unmounts reach the container, so it does not pin
    // the host's mounts. `[r]shared` keeps the host's peer groups, so a bind mount marked
    // `rshared` stays in the host's group (Kubernetes' Bidirectional); the rootfs itself gets
    // its shared propagation after pivot_root, in a peer group of its own (the spec's rule).
    let initial = match name {
        None | Some("slave" | "rslave") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some("shared") => MsFlags::MS_SHARED,
        Some("rshared") => MsFlags::MS_SHARED | MsFlags::MS_REC,
        Some("private" | "rprivate" | "unbindable" | "runbindable") => {
            MsFlags::MS_PRIVATE | MsFlags::MS_REC
        }
        Some(name) => {
            return Err(Error::config(
                "linux.rootfsPropagation",
                format!("unknown propagation {name:?}"),
            ))
        }
    };
    mount(NONE, "/", NONE, initial, NONE).ctx(|| "set propagation of / in the container")?;
    let parent = if initial.contains(MsFlags::MS_SLAVE) {
        MsFlags::MS_SLAVE
    } else {
        MsFlags::MS_PRIVATE
    };
    make_parent_mount(&config.rootfs, parent)?;
    bind_onto_itself(&config.rootfs)
}

/// The rootfs becomes a mount of its own (pivot_root and a read-only root need one).
fn bind_onto_itself(rootfs: &Path) -> Result<()> {
    mount(
        Some(rootfs),
        rootfs,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .ctx(|| format!("bind-mount rootfs {} onto itself", rootfs.display()))
}

/// Set `flags` on the mount that holds `path`: mount(2) says EINVAL on a path that is not a
/// mount point, so walk up until one takes it.
fn make_parent_mount(path: &Path, flags: MsFlags) -> Result<()> {
    let mut at = path;
    loop {
        match mount(NONE, at, NONE, flags, NONE) {
            Ok(()) => return Ok(()),
            Err(Errno::EINVAL) => match at.parent() {
                Some(parent) => at = parent,
                None => return Err(Errno::EINVAL).ctx(|| "set propagation of /"),
            },
            Err(e) => {
                return Err(e).ctx(|| format!("set propagation of the mount at {}", at.display()))
            }
        }
    }
}

/// Make the rootfs `/`: pivot_root, or with `--no-pivot` move it there and chroot.
/// Without a mount namespace only chroot: the caller's namespace keeps its root (runc).
pub fn switch_root(config: &Config, options: RootfsOptions) -> Result<()> {
    if !has_mount_namespace(config) {
        switch::chroot(&config.rootfs)
    } else if options.no_pivot {
        switch::move_root(&config.rootfs)
    } else {
        switch::pivot_root(&config.rootfs)
    }
}

/// Init's stdio that is the host's /dev/null becomes the container's /dev/null, as runc's
/// reOpenDevNull does: a descriptor of a mount the container cannot see is one CRIU cannot dump
/// (podman and `run -d </dev/null` give init the host's).
fn reopen_dev_null() -> Result<()> {
    let null = match nix::fcntl::open(
        "/dev/null",
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => fd,
        // A /dev without the node: nothing to reopen onto.
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e).ctx(|| "open /dev/null in the container"),
    };
    let ours = nix::sys::stat::fstat(&null).ctx(|| "stat /dev/null in the container")?;
    let is_null = |fd: BorrowedFd<'_>| {
        nix::sys::stat::fstat(fd).is_ok_and(|st| {
            st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == ours.st_rdev
        })
    };
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let stdio = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()];
    for (n, fd) in stdio.into_iter().enumerate() {
        if !is_null(fd) {
            continue;
        }
        let done = match n {
            0 => nix::unistd::dup2_stdin(&null),
            1 => nix::unistd::dup2_stdout(&null),
            _ => nix::unistd::dup2_stderr(&null),
        };
        done.ctx(|| format!("reopen fd {n} on the container's /dev/null"))?;
    }
    Ok(())
}

/// Inside the new root: masked and read-only paths, final propagation, read-only `/`.
pub fn finish(config: &Config) -> Result<()> {
    remount_readonly_late(config)?;
    if has_mount_namespace(config) {
        reopen_dev_null()?;
    }
    // Without a mount namespace validation refused the rest (it would reach the caller's); `/`
    // is the rootfs's own bind.
    if !has_mount_namespace(config) {
        return readonly_root(config);
    }
    let Some(linux) = config.spec.linux() else {
        return readonly_root(config);
    };
    masks::mask_paths(
        linux.masked_paths().as_deref().unwrap_or(&[]),
        linux.mount_label().as_deref(),
    )?;
    for path in linux.readonly_paths().as_deref().unwrap_or(&[]) {
        masks::readonly_path(Path::new(path))?;
    }
    if let Some(name) = linux
        .rootfs_propagation()
        .as_deref()
        .filter(|n| !n.is_empty())
    {
        let flags = options::propagation(name).ok_or_else(|| {
            Error::config(
                "linux.rootfsPropagation",
                format!("unknown propagation {name:?}"),
            )
        })?;
        mount(NONE, "/", NONE, flags | MsFlags::MS_REC, NONE)
            .ctx(|| format!("set rootfs propagation to {name}"))?;
    }
    readonly_root(config)
}

/// A read-only tmpfs or `/dev` is mounted writable, so that what goes in it (device nodes,
/// `/dev/pts`, `/dev/console`) can be made, and read-only only now (runc does the same).
fn mounted_writable_first(m: &Mount) -> bool {
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("");
    !opts.bind
        && typ != "bind"
        && (typ == "tmpfs" || resolve::relative(m.destination()) == Path::new("dev"))
        && opts.flags.contains(MsFlags::MS_RDONLY)
}

fn remount_readonly_late(config: &Config) -> Result<()> {
    for m in config.spec.mounts().as_deref().unwrap_or(&[]) {
        if !mounted_writable_first(m) {
            continue;
        }
        let dest = m.destination();
        let opts = options::parse(m.options().as_deref().unwrap_or(&[]));
        let locked = locked_flags(&statvfs(dest).ctx(|| format!("statfs {}", dest.display()))?);
        let flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | (opts.flags - MsFlags::MS_REMOUNT)
            | (locked - opts.cleared);
        mount(NONE, dest, NONE, flags, NONE)
            .ctx(|| format!("make {} read-only", dest.display()))?;
    }
    Ok(())
}

fn readonly_root(config: &Config) -> Result<()> {
    let readonly = config.spec.root().as_ref().and_then(|r| r.readonly());
    if readonly != Some(true) {
        return Ok(());
    }
    let locked = locked_flags(&statvfs("/").ctx(|| "statfs /")?);
    mount(
        NONE,
        "/",
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked,
        NONE,
    )
    .ctx(|| "remount the root filesystem read-only")
}

fn mount_entry(
    root: BorrowedFd<'_>,
    m: &Mount,
    index: usize,
    config: &Config,
    idmapped: Option<BorrowedFd<'_>>,
    user_ns: bool,
) -> Result<()> {
    let dest = m.destination();
    let typ = m.typ().as_deref().unwrap_or("");
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]));
    let bind = opts.bind || typ == "bind";
    let source = m.source().as_deref();
    let what = || {
        format!(
            "mount {:?} on {:?}",
            source
                .map(|s| s.display().to_string())
                .unwrap_or_else(|| typ.to_string()),
            dest
        )
    };

    let target = if bind {
        let source = source.ok_or_else(|| {
            Error::config(
                format!("mounts[{index}].source"),
                "a bind mount needs a source",
            )
        })?;
        // runc resolves a relative bind source against the bundle.
        let source = config.bundle.join(source);
        // A tree prepared on the host is looked at through its descriptor: the path may be
        // out of this user namespace's reach.
        let is_dir = match idmapped {
            Some(tree) => {
                let stat = nix::sys::stat::fstat(tree)
                    .ctx(|| format!("mounts[{index}].source {}", source.display()))?;
                stat.st_mode & libc::S_IFMT == libc::S_IFDIR
            }
            None => std::fs::metadata(&source)
                .ctx(|| format!("mounts[{index}].source {}", source.display()))?
                .is_dir(),
        };
        let target = if is_dir {
            mkdir_all(root, dest, 0o755)?
        } else {
            create_file(root, dest, 0o644)?
        };
        if let Some(tree) = idmapped {
            idmap::attach(tree, &target).ctx(what)?;
        } else {
            let mut flags = MsFlags::MS_BIND;
            if opts.recursive {
                flags |= MsFlags::MS_REC;
            }
            mount(Some(&source), fd_path(&target).as_str(), NONE, flags, NONE).ctx(what)?;
        }
        // The flags of a bind mount only take by remounting it; the old handle points under the
        // new mount, so resolve the path again.
        let target = reopen(root, dest)?;
        let extra = opts.flags - MsFlags::MS_REMOUNT;
        if !extra.is_empty() {
            let locked =
                locked_flags(&fstatvfs(&target).ctx(|| format!("statfs {}", dest.display()))?);
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra | (locked - opts.cleared);
            mount(NONE, fd_path(&target).as_str(), NONE, flags, NONE)
                .ctx(|| format!("remount {:?} with its options", dest))?;
        }
        target
    } else {
        if typ.is_empty() {
            return Err(Error::config(
                format!("mounts[{index}].type"),
                "is required for a mount that is not a bind mount",
            ));
        }
        if matches!(typ, "proc" | "sysfs") {
            ordinary_directory(root, dest, typ, index)?;
        }
        let target = mkdir_all(root, dest, 0o755)?;
        // The directory the new mount will cover, still reachable through this handle after.
        let covered = if opts.copy_up {
            if typ != "tmpfs" {
                return Err(Error::config(
                    format!("mounts[{index}].options"),
                    "tmpcopyup is only for tmpfs mounts",
                ));
            }
            Some(reopen(root, dest)?)
        } else {
            None
        };
        // linux.mountLabel as SELinux's context= option, on the mounts runc labels (not procfs
        // or sysfs, which SELinux does not label that way, nor mqueue).
        let data = if matches!(typ, "proc" | "sysfs" | "mqueue") {
            opts.data.clone()
        } else {
            let label = config
                .spec
                .linux()
                .as_ref()
                .and_then(|l| l.mount_label().clone());
            crate::lsm::mount_data(&opts.data, label.as_deref())
        };
        let data = (!data.is_empty()).then_some(data.as_str());
        let source = source.map(|s| s.as_os_str()).unwrap_or(typ.as_ref());
        let flags = if mounted_writable_first(m) {
            opts.flags - MsFlags::MS_RDONLY
        } else {
            opts.flags
        };
        match mount(
            Some(source),
            fd_path(&target).as_str(),
            Some(typ),
            flags,
            data,
        ) {
            // sysfs belongs to the network namespace: in a user namespace without a network
            // namespace of its own, the host's /sys is bound instead (runc does the same).
            Err(Errno::EPERM) if typ == "sysfs" && user_ns => {
                mount(
                    Some("/sys"),
                    fd_path(&target).as_str(),
                    NONE,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    NONE,
                )
                .ctx(what)?;
                let target = reopen(root, dest)?;
                let locked =
                    locked_flags(&fstatvfs(&target).ctx(|| format!("statfs {}", dest.display()))?);
                let flags = MsFlags::MS_BIND
                    | MsFlags::MS_REMOUNT
                    | (opts.flags - MsFlags::MS_REMOUNT)
                    | (locked - opts.cleared);
                mount(NONE, fd_path(&target).as_str(), NONE, flags, NONE)
                    .ctx(|| format!("remount {:?} with its options", dest))?;
            }
            // Options brig does not know go to the filesystem as data: name them.
            Err(Errno::EINVAL) if data.is_some() => Err(Errno::EINVAL)
                .ctx(|| format!("{} (mounts[{index}].options {:?})", what(), opts.data))?,
            other => other.ctx(what)?,
        }
        if let Some(covered) = covered {
            let mounted = reopen(root, dest)?;
            copy_up(Path::new(&fd_path(&covered)), Path::new(&fd_path(&mounted)))
                .ctx(|| format!("tmpcopyup into {:?}", dest))?;
        }
        if opts.propagation.is_empty() && opts.recursive_set == 0 && opts.recursive_clear == 0 {
            return Ok(());
        }
        reopen(root, dest)?
    };
    for flags in &opts.propagation {
        mount(NONE, fd_path(&target).as_str(), NONE, *flags, NONE)
            .ctx(|| format!("set propagation of {:?}", dest))?;
    }
    if opts.recursive_set != 0 || opts.recursive_clear != 0 {
        set_recursive_attributes(&target, opts.recursive_set, opts.recursive_clear)
            .ctx(|| format!("set recursive mount options on {:?}", dest))?;
    }
    Ok(())
}

/// procfs and sysfs go on a real directory of the rootfs, never through a symlink (runc's rule:
/// a symlinked /proc has been the way to mount proc somewhere it protects nothing).
fn ordinary_directory(root: BorrowedFd<'_>, dest: &Path, typ: &str, index: usize) -> Result<()> {
    let Some(name) = dest.file_name() else {
        return Ok(());
    };
    let parent = match open_in_root(
        root,
        dest.parent().unwrap_or(Path::new("/")),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
    ) {
        Ok(parent) => parent,
        // Made below by mkdir_all, as a directory.
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e).ctx(|| format!("open the parent of {}", dest.display())),
    };
    match nix::sys::stat::fstatat(&parent, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) if stat.st_mode & libc::S_IFMT != libc::S_IFDIR => Err(Error::config(
            format!("mounts[{index}].destination"),
            format!(
                "{}: filesystem {typ:?} must be mounted on ordinary directory",
                dest.display()
            ),
        )),
        Ok(_) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e).ctx(|| format!("stat {}", dest.display())),
    }
}

/// Copy the tree under `from` into `to` with modes, owners, symlinks and device nodes. Only
/// entries that lstat as directories are descended into, so no symlink leads the copy out.
fn copy_up(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(from)?;
    lchown(to, Some(meta.uid()), Some(meta.gid()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&src)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_up(&src, &dst)?;
            continue;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
            lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
            continue;
        } else if kind.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            let node = nix::sys::stat::SFlag::from_bits_truncate(meta.mode() & libc::S_IFMT);
            nix::sys::stat::mknod(
                &dst,
                node,
                nix::sys::stat::Mode::from_bits_truncate(meta.mode()),
                meta.rdev(),
            )?;
        }
        lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    Ok(())
}

/// mount_setattr(2) on the whole tree below `target` (Linux 5.12).
fn set_recursive_attributes(target: &OwnedFd, set: u64, clear: u64) -> std::io::Result<()> {
    sys::mount::mount_setattr(target.as_fd(), true, set, clear, None)
}

/// A `cgroup` mount. On a v2 host the cgroup2 file system; on a v1 host, as runc makes it: a
/// tmpfs with one directory per hierarchy,
/// each a bind mount of the container's own cgroup there (read-only with `ro`), and a symlink
/// per controller of a co-mounted hierarchy (cpu → cpu,cpuacct).
fn mount_cgroups(root: BorrowedFd<'_>, m: &Mount, cgroup: &Cgroup) -> Result<()> {
    let dest = m.destination();
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]));
    let readonly = opts.flags.contains(MsFlags::MS_RDONLY);
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let target = mkdir_all(root, dest, 0o755)?;
    let ro = if readonly {
        MsFlags::MS_RDONLY
    } else {
        MsFlags::empty()
    };
    if let Some(h) = cgroup.unified().filter(|_| cgroup.is_v2()) {
        // v2: the hierarchy itself, whose root is the container's cgroup in its own cgroup
        // namespace; where the kernel refuses (no cgroup namespace in a user namespace) the
        // container's cgroup directory bound instead, as runc does.
        let path = fd_path(&target);
        return match mount(
            Some("cgroup2"),
            path.as_str(),
            Some("cgroup2"),
            base | ro,
            NONE,
        ) {
            Err(Errno::EPERM | Errno::EBUSY) => {
                mount(Some(&h.path), path.as_str(), NONE, MsFlags::MS_BIND, NONE)
                    .ctx(|| format!("bind cgroup {} to {:?}", h.path.display(), dest))?;
                let target = reopen(root, dest)?;
                let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | base | ro;
                mount(NONE, fd_path(&target).as_str(), NONE, flags, NONE)
                    .ctx(|| format!("remount cgroup {:?}", dest))
            }
            other => other.ctx(|| format!("mount cgroup2 on {:?}", dest)),
        };
    }
    mount(
        Some("tmpfs"),
        fd_path(&target).as_str(),
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )
    .ctx(|| format!("mount tmpfs for cgroups on {:?}", dest))?;
    for h in &cgroup.hierarchies {
        let name = h.mount_name();
        let dir = mkdir_all(root, &dest.join(&name), 0o755)?;
        mount(
            Some(&h.path),
            fd_path(&dir).as_str(),
            NONE,
            MsFlags::MS_BIND,
            NONE,
        )
        .ctx(|| format!("bind cgroup {} to {:?}", h.path.display(), dest.join(&name)))?;
        let dir = reopen(root, &dest.join(&name))?;
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | base | ro;
        mount(NONE, fd_path(&dir).as_str(), NONE, flags, NONE)
            .ctx(|| format!("remount cgroup {:?}", dest.join(&name)))?;
        if h.controllers.len() > 1 && !h.unified {
            let parent = reopen(root, dest)?;
            for controller in &h.controllers {
                match nix::unistd::symlinkat(name.as_str(), parent.as_fd(), controller.as_str()) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e).ctx(|| format!("link cgroup {controller} to {name}")),
                }
            }
        }
    }
    if readonly {
        let target = reopen(root, dest)?;
        mount(
            NONE,
            fd_path(&target).as_str(),
            NONE,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base,
            NONE,
        )
        .ctx(|| format!("make {:?} read-only", dest))?;
    }
    Ok(())
}

fn reopen(root: BorrowedFd<'_>, dest: &Path) -> Result<OwnedFd> {
    open_in_root(root, dest, OFlag::O_PATH).ctx(|| format!("open mount point {}", dest.display()))
}

/// Flags a remount must keep: the kernel refuses to drop them in a user namespace, and keeping
/// them is what the user asked for unless an option cleared them.
pub(super) fn locked_flags(stat: &Statvfs) -> MsFlags {
    let have = stat.flags();
    [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ]
    .into_iter()
    .filter(|(st, _)| have.contains(*st))
    .fold(MsFlags::empty(), |acc, (_, ms)| acc | ms)
}
