//! Who owns what a layer writes. Root gives every entry the uid and gid of its tar header.
//! An unprivileged caller cannot: as rootless umoci does, its entries stay the caller's (root
//! of the rootless container `spec --rootless` makes, which maps container root to the
//! caller) and a header owner other than 0:0 is recorded in the `user.rootlesscontainers`
//! extended attribute (the rootlesscontainers.io protobuf, read by PRoot and umoci repack).
//! Root of a user namespace (`podman unshare`) chowns, and records only the ids its namespace
//! cannot represent.

use std::path::{Path, PathBuf};

/// The attribute that records an entry's owner in a rootless unpack.
pub const ROOTLESS_XATTR: &[u8] = b"user.rootlesscontainers";

/// "Not recorded" in the protobuf: that id is 0.
const NOOP_ID: u32 = u32::MAX;

/// How entries get their owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// chown to the header's uid and gid; an id the kernel refuses as unrepresentable
    /// (`EINVAL`: root of a user namespace whose maps lack it) is recorded instead.
    Chown,
    /// Never chown: entries belong to the caller, a header owner other than 0:0 is recorded,
    /// and directory modes that would lock the caller out are applied once every layer is in.
    Rootless,
}

impl Ownership {
    /// `Chown` for root (of the host or of a user namespace), `Rootless` for anyone else.
    pub fn for_caller() -> Self {
        if nix::unistd::geteuid().is_root() {
            Ownership::Chown
        } else {
            Ownership::Rootless
        }
    }
}

/// The `user.rootlesscontainers` value for owner `uid:gid` (message Resource { uint32 uid = 1;
/// uint32 gid = 2; }, a 0 written as NOOP_ID), or None for 0:0, which is not recorded.
pub fn rootless_xattr(uid: u32, gid: u32) -> Option<Vec<u8>> {
    if uid == 0 && gid == 0 {
        return None;
    }
    let field = |id: u32| if id == 0 { NOOP_ID } else { id };
    let mut out = Vec::with_capacity(12);
    for (tag, id) in [(0x08u8, field(uid)), (0x10u8, field(gid))] {
        out.push(tag);
        let mut v = id;
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    Some(out)
}

/// Directory modes held back in a rootless unpack: a directory the caller could not write or
/// search (0555, 0500, ...) is made u+rwx while layers go in, and gets its mode at the end.
#[derive(Debug, Default)]
pub struct DeferredModes {
    modes: Vec<(PathBuf, u32)>,
}

impl DeferredModes {
    pub fn push(&mut self, path: &Path, mode: u32) {
        self.modes.retain(|(p, _)| p != path);
        self.modes.push((path.to_path_buf(), mode));
    }

    /// `path` was removed: what was recorded for it (when `itself`) and beneath it no longer
    /// applies to whatever is created there later.
    pub fn forget(&mut self, path: &Path, itself: bool) {
        if self.modes.is_empty() {
            return;
        }
        self.modes
            .retain(|(p, _)| !(p.starts_with(path) && (itself || p != path)));
    }

    /// Deepest first, so that a directory is still searchable while its children get theirs.
    pub fn take_deepest_first(&mut self) -> Vec<(PathBuf, u32)> {
        let mut modes = std::mem::take(&mut self.modes);
        modes.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        modes
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.modes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes Go's proto.Marshal gives (umoci's encoding), checked by hand.
    #[test]
    fn rootless_xattr_encodes_like_protobuf() {
        assert_eq!(rootless_xattr(0, 0), None);
        assert_eq!(
            rootless_xattr(1000, 0),
            Some(vec![0x08, 0xe8, 0x07, 0x10, 0xff, 0xff, 0xff, 0xff, 0x0f])
        );
        assert_eq!(
            rootless_xattr(0, 5),
            Some(vec![0x08, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x10, 0x05])
        );
        assert_eq!(
            rootless_xattr(1, 300),
            Some(vec![0x08, 0x01, 0x10, 0xac, 0x02])
        );
    }

    #[test]
    fn deferred_modes_forget_removed_paths_and_go_deepest_first() {
        let mut d = DeferredModes::default();
        d.push(Path::new("a"), 0o555);
        d.push(Path::new("a/b/c"), 0o500);
        d.push(Path::new("a/b"), 0o555);
        d.push(Path::new("ab"), 0o500);
        d.push(Path::new("x"), 0o555);
        d.push(Path::new("x"), 0o511);
        d.forget(Path::new("a/b"), false);
        let got = d.take_deepest_first();
        let paths: Vec<_> = got.iter().map(|(p, m)| (p.to_str().unwrap(), *m)).collect();
        assert_eq!(
            paths,
            [("a/b", 0o555), ("a", 0o555), ("ab", 0o500), ("x", 0o511)]
        );
        assert!(d.is_empty());
        d.push(Path::new("a/b"), 0o555);
        d.push(Path::new("a"), 0o555);
        d.forget(Path::new("a"), true);
        assert!(d.is_empty());
    }
}
