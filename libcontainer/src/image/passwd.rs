//! An image's `Config.User` resolved through the rootfs' own `/etc/passwd` and `/etc/group`,
//! as runc's libcontainer/user does for Docker and podman: `uid`, `uid:gid`, `name`,
//! `name:group`, `uid:group`, `name:gid`.
//!
//! Both files are opened beneath the rootfs by the kernel (`openat2` with `RESOLVE_IN_ROOT`):
//! a symlink `/etc/passwd -> /etc/shadow` reads the rootfs' shadow, `-> ../../x` stays in the
//! rootfs, and no host file is ever read. Only regular files are read, up to a size cap, so a
//! fifo or `/dev/zero` planted there cannot block or exhaust the converter.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// Larger than any real passwd or group file; a bigger one is hostile.
const MAX_FILE_SIZE: u64 = 16 << 20;
/// runc's range: ids the kernel accepts for setuid/setgid and that are not -1.
const MAX_ID: u32 = i32::MAX as u32;

#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    #[error("open rootfs {path}: {source}")]
    OpenRootfs { path: PathBuf, source: Errno },
    #[error("open {file} beneath rootfs {rootfs}: {source}")]
    Open {
        file: &'static str,
        rootfs: PathBuf,
        source: Errno,
    },
    #[error("read {file} beneath rootfs {rootfs}: {source}")]
    Read {
        file: &'static str,
        rootfs: PathBuf,
        source: std::io::Error,
    },
    #[error("{file} beneath rootfs {rootfs} is not a regular file")]
    NotRegular { file: &'static str, rootfs: PathBuf },
    #[error("{file} beneath rootfs {rootfs} is larger than {MAX_FILE_SIZE} bytes")]
    TooLarge { file: &'static str, rootfs: PathBuf },
    #[error("unknown user {name:?}: no such entry in the rootfs' /etc/passwd")]
    UnknownUser { name: String },
    #[error("unknown group {name:?}: no such entry in the rootfs' /etc/group")]
    UnknownGroup { name: String },
    #[error("{what} {value:?} is out of range (0 to {MAX_ID})")]
    OutOfRange { what: &'static str, value: String },
}

/// Who the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the user's memberships in `/etc/group`, only when `Config.User`
    /// names no group.
    pub additional_gids: Vec<u32>,
    /// The home directory from `/etc/passwd`, `/` when the user has no entry.
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolve `user_spec` (an image's `Config.User`; empty means root) in the rootfs at `rootfs`.
pub fn resolve_user(rootfs: &Path, user_spec: &str) -> Result<ExecUser, PasswdError> {
    let root = open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|source| PasswdError::OpenRootfs {
        path: rootfs.to_path_buf(),
        source,
    })?;
    let passwd = read_in_root(&root, rootfs, "/etc/passwd")?;
    let group = read_in_root(&root, rootfs, "/etc/group")?;
    resolve(passwd.as_deref(), group.as_deref(), user_spec)
}

/// The file at `file` (absolute, inside the rootfs) or `None` when there is none.
fn read_in_root(
    root: &OwnedFd,
    rootfs: &Path,
    file: &'static str,
) -> Result<Option<String>, PasswdError> {
    let fd = match openat2(
        root,
        file.trim_start_matches('/'),
        OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS),
    ) {
        Ok(fd) => fd,
        // No file, or `/etc` is not a directory: as an image without the file.
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(None),
        Err(source) => {
            return Err(PasswdError::Open {
                file,
                rootfs: rootfs.to_path_buf(),
                source,
            })
        }
    };
    let read_err = |source| PasswdError::Read {
        file,
        rootfs: rootfs.to_path_buf(),
        source,
    };
    let file_handle = File::from(fd);
    let meta = file_handle.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(PasswdError::NotRegular {
            file,
            rootfs: rootfs.to_path_buf(),
        });
    }
    let mut bytes = Vec::new();
    file_handle
        .take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(PasswdError::TooLarge {
            file,
            rootfs: rootfs.to_path_buf(),
        });
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

fn entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split(':').collect())
}

/// `name:password:uid:gid:gecos:home:shell`; lines without numeric ids are skipped.
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    entries(text)
        .filter_map(|f| {
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map(|h| h.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// `name:password:gid:member,member`.
fn parse_group(text: &str) -> Vec<GroupEntry> {
    entries(text)
        .filter_map(|f| {
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|m| !m.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// A decimal id, as runc: all digits, within 0..=MAX_ID. `None` when it is a name.
fn numeric(what: &'static str, value: &str) -> Result<Option<u32>, PasswdError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match value.parse::<u32>() {
        Ok(id) if id <= MAX_ID => Ok(Some(id)),
        _ => Err(PasswdError::OutOfRange {
            what,
            value: value.to_string(),
        }),
    }
}

/// The resolution itself, on the files' contents (`None`: the rootfs has no such file).
///
/// As runc's `GetExecUser` (and so Docker and podman): a user found in passwd gives uid, gid
/// and home; a numeric uid without an entry is allowed and runs with gid 0; a name without an
/// entry is an error. An explicit group replaces the gid (a numeric one need not exist, a name
/// must) and then no supplementary groups are applied; without one, the user's memberships in
/// `/etc/group` become the additional gids (config.md: "If group/gid is not specified, the
/// default group and supplementary groups of the given user/uid ... are applied").
pub fn resolve(
    passwd: Option<&str>,
    group: Option<&str>,
    user_spec: &str,
) -> Result<ExecUser, PasswdError> {
    let (user_arg, group_arg) = match user_spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user_spec, None),
    };
    let users = passwd.map(parse_passwd).unwrap_or_default();
    let uid_arg = numeric("uid", user_arg)?;

    let found = if user_arg.is_empty() {
        users.iter().find(|u| u.uid == 0)
    } else if let Some(uid) = uid_arg {
        users.iter().find(|u| u.uid == uid)
    } else {
        users.iter().find(|u| u.name == user_arg)
    };
    let mut exec = match (found, uid_arg) {
        (Some(entry), _) => ExecUser {
            uid: entry.uid,
            gid: entry.gid,
            additional_gids: Vec::new(),
            home: if entry.home.is_empty() {
                "/".to_string()
            } else {
                entry.home.clone()
            },
        },
        (None, uid) if user_arg.is_empty() || uid.is_some() => ExecUser {
            uid: uid.unwrap_or(0),
            gid: 0,
            additional_gids: Vec::new(),
            home: "/".to_string(),
        },
        (None, _) => {
            return Err(PasswdError::UnknownUser {
                name: user_arg.to_string(),
            })
        }
    };

    let groups = group.map(parse_group).unwrap_or_default();
    match group_arg {
        // `uid:` as runc: an empty group is no group.
        Some(g) if !g.is_empty() => {
            exec.gid = match numeric("gid", g)? {
                Some(gid) => gid,
                None => {
                    groups
                        .iter()
                        .find(|e| e.name == g)
                        .ok_or_else(|| PasswdError::UnknownGroup {
                            name: g.to_string(),
                        })?
                        .gid
                }
            };
        }
        _ => {
            if let Some(name) = found.map(|e| e.name.as_str()) {
                for entry in groups
                    .iter()
                    .filter(|e| e.members.iter().any(|m| m == name))
                {
                    if !exec.additional_gids.contains(&entry.gid) {
                        exec.additional_gids.push(entry.gid);
                    }
                }
            }
        }
    }
    Ok(exec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/bin/false
alice:x:1000:1000:Alice:/home/alice:/bin/sh
broken:x:notanumber:1::/:/bin/sh
nohome:x:1002:1002::
";
    const GROUP: &str = "\
root:x:0:
wheel:x:10:alice,root
alice:x:1000:
staff:x:50:bob, alice
audio:x:29:
";

    fn r(spec: &str) -> Result<ExecUser, PasswdError> {
        resolve(Some(PASSWD), Some(GROUP), spec)
    }

    fn user(uid: u32, gid: u32, gids: &[u32], home: &str) -> ExecUser {
        ExecUser {
            uid,
            gid,
            additional_gids: gids.to_vec(),
            home: home.to_string(),
        }
    }

    #[test]
    fn empty_is_root_with_its_groups() {
        assert_eq!(r("").unwrap(), user(0, 0, &[10], "/root"));
    }

    #[test]
    fn uid_in_passwd() {
        assert_eq!(
            r("1000").unwrap(),
            user(1000, 1000, &[10, 50], "/home/alice")
        );
    }

    #[test]
    fn uid_not_in_passwd_runs_with_gid_0() {
        assert_eq!(r("4242").unwrap(), user(4242, 0, &[], "/"));
    }

    #[test]
    fn uid_gid() {
        assert_eq!(r("1000:29").unwrap(), user(1000, 29, &[], "/home/alice"));
        // Neither needs an entry.
        assert_eq!(r("4242:4343").unwrap(), user(4242, 4343, &[], "/"));
    }

    #[test]
    fn name() {
        assert_eq!(
            r("alice").unwrap(),
            user(1000, 1000, &[10, 50], "/home/alice")
        );
        assert_eq!(r("daemon").unwrap(), user(1, 1, &[], "/usr/sbin"));
    }

    #[test]
    fn name_group() {
        assert_eq!(
            r("alice:audio").unwrap(),
            user(1000, 29, &[], "/home/alice")
        );
    }

    #[test]
    fn uid_group() {
        assert_eq!(r("4242:wheel").unwrap(), user(4242, 10, &[], "/"));
    }

    #[test]
    fn name_gid() {
        assert_eq!(
            r("alice:7777").unwrap(),
            user(1000, 7777, &[], "/home/alice")
        );
    }

    #[test]
    fn empty_group_is_no_group() {
        assert_eq!(r("alice:").unwrap(), r("alice").unwrap());
    }

    #[test]
    fn unknown_name_is_an_error_naming_it() {
        let err = r("mallory").unwrap_err().to_string();
        assert!(err.contains("\"mallory\""), "{err}");
        assert!(matches!(
            r("mallory:0"),
            Err(PasswdError::UnknownUser { .. })
        ));
    }

    #[test]
    fn unknown_group_is_an_error_naming_it() {
        let err = r("alice:nogroup").unwrap_err().to_string();
        assert!(err.contains("unknown group \"nogroup\""), "{err}");
        assert!(matches!(
            r("1000:nope"),
            Err(PasswdError::UnknownGroup { .. })
        ));
    }

    #[test]
    fn ids_out_of_range() {
        assert!(matches!(
            r("4294967295"),
            Err(PasswdError::OutOfRange { .. })
        ));
        assert!(matches!(
            r("1:2147483648"),
            Err(PasswdError::OutOfRange { .. })
        ));
        assert!(matches!(
            r("99999999999999999999"),
            Err(PasswdError::OutOfRange { .. })
        ));
        assert_eq!(r("2147483647").unwrap().uid, 2147483647);
    }

    #[test]
    fn no_files() {
        assert_eq!(resolve(None, None, "").unwrap(), user(0, 0, &[], "/"));
        assert_eq!(resolve(None, None, "5:6").unwrap(), user(5, 6, &[], "/"));
        assert!(matches!(
            resolve(None, None, "alice"),
            Err(PasswdError::UnknownUser { .. })
        ));
        assert!(matches!(
            resolve(None, None, "0:wheel"),
            Err(PasswdError::UnknownGroup { .. })
        ));
    }

    #[test]
    fn malformed_lines_are_skipped_and_empty_home_is_root() {
        assert!(matches!(r("broken"), Err(PasswdError::UnknownUser { .. })));
        assert_eq!(r("nohome").unwrap(), user(1002, 1002, &[], "/"));
    }

    #[test]
    fn first_entry_wins() {
        let passwd = "a:x:5:5::/one:\na:x:6:6::/two:\n";
        assert_eq!(resolve(Some(passwd), None, "a").unwrap().uid, 5);
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("brig-passwd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rootfs/etc")).unwrap();
        dir
    }

    #[test]
    fn reads_the_rootfs_files() {
        let dir = tempdir("files");
        let rootfs = dir.join("rootfs");
        std::fs::write(rootfs.join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(rootfs.join("etc/group"), GROUP).unwrap();
        assert_eq!(
            resolve_user(&rootfs, "alice").unwrap(),
            user(1000, 1000, &[10, 50], "/home/alice")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn symlinks_stay_in_the_rootfs() {
        let dir = tempdir("symlinks");
        let rootfs = dir.join("rootfs");
        // Outside the rootfs: what a contained lookup must never see.
        std::fs::write(dir.join("evil"), "evil:x:4242:4242::/evil:/bin/sh\n").unwrap();
        for target in ["../../evil", "/../evil"] {
            let _ = std::fs::remove_file(rootfs.join("etc/passwd"));
            std::os::unix::fs::symlink(target, rootfs.join("etc/passwd")).unwrap();
            assert!(
                matches!(
                    resolve_user(&rootfs, "evil"),
                    Err(PasswdError::UnknownUser { .. })
                ),
                "{target}"
            );
        }
        let abs = dir.join("evil");
        let _ = std::fs::remove_file(rootfs.join("etc/passwd"));
        std::os::unix::fs::symlink(&abs, rootfs.join("etc/passwd")).unwrap();
        assert!(matches!(
            resolve_user(&rootfs, "evil"),
            Err(PasswdError::UnknownUser { .. })
        ));
        // An in-rootfs target is followed (clamped to the rootfs).
        std::fs::write(rootfs.join("other"), "evil:x:7:7::/in:/bin/sh\n").unwrap();
        let _ = std::fs::remove_file(rootfs.join("etc/passwd"));
        std::os::unix::fs::symlink("/other", rootfs.join("etc/passwd")).unwrap();
        assert_eq!(resolve_user(&rootfs, "evil").unwrap().uid, 7);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn etc_symlink_to_host_etc_is_contained() {
        let dir = tempdir("etclink");
        let rootfs = dir.join("rootfs");
        std::fs::remove_dir(rootfs.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", rootfs.join("etc")).unwrap();
        // Resolved in the rootfs, `/etc` is the link itself: a loop, never the host's /etc.
        assert!(matches!(
            resolve_user(&rootfs, "root"),
            Err(PasswdError::Open {
                source: Errno::ELOOP,
                ..
            })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn not_a_regular_file() {
        let dir = tempdir("fifo");
        let rootfs = dir.join("rootfs");
        nix::unistd::mkfifo(&rootfs.join("etc/passwd"), Mode::from_bits_truncate(0o644)).unwrap();
        assert!(matches!(
            resolve_user(&rootfs, "root"),
            Err(PasswdError::NotRegular { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
        let dir = tempdir("dir");
        let rootfs = dir.join("rootfs");
        std::fs::create_dir(rootfs.join("etc/passwd")).unwrap();
        assert!(matches!(
            resolve_user(&rootfs, "root"),
            Err(PasswdError::NotRegular { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_rootfs() {
        assert!(matches!(
            resolve_user(Path::new("/nonexistent/brig/rootfs"), ""),
            Err(PasswdError::OpenRootfs { .. })
        ));
    }
}
