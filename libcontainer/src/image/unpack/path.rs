//! Tar entry names -> what to do with them: a path beneath the rootfs, a whiteout, an opaque
//! whiteout. Pure logic, no syscalls; the kernel (`openat2` with `RESOLVE_IN_ROOT`) is what
//! keeps symlinks inside the rootfs, this only keeps the names themselves sane.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
/// aufs' own metadata (`.wh..wh.plnk`, `.wh..wh.aufs`): Docker skips it, so do we.
const AUFS_META: &[u8] = b".wh..wh.";

#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Create or replace this path (relative, normalized; empty means the rootfs itself).
    Put(PathBuf),
    /// Remove what lower layers put at this path.
    Whiteout(PathBuf),
    /// Remove what lower layers put inside this directory.
    Opaque(PathBuf),
    /// Nothing to apply (aufs metadata).
    Skip,
}

/// Normalize a tar name (or hardlink target): a leading `/` and `.` components are dropped;
/// a `..` component is refused (no image tool writes one; it can only be an attack).
pub fn normalize(name: &[u8]) -> Result<PathBuf, String> {
    let mut path = PathBuf::new();
    for component in name.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err("name contains a \"..\" component".to_string()),
            c => path.push(OsStr::from_bytes(c)),
        }
    }
    Ok(path)
}

/// What an entry named `name` asks for.
pub fn classify(name: &[u8]) -> Result<Action, String> {
    let path = normalize(name)?;
    let Some(base) = path.file_name().map(|b| b.as_bytes().to_vec()) else {
        return Ok(Action::Put(path));
    };
    let parent = path.parent().map(PathBuf::from).unwrap_or_default();
    for dir in parent.iter() {
        if dir.as_bytes().starts_with(WHITEOUT) {
            return Err("a whiteout cannot be a directory".to_string());
        }
    }
    if base == OPAQUE {
        return Ok(Action::Opaque(parent));
    }
    if base.starts_with(AUFS_META) {
        return Ok(Action::Skip);
    }
    if let Some(target) = base.strip_prefix(WHITEOUT) {
        if target.is_empty() || target == b"." || target == b".." {
            return Err("whiteout without a name to remove".to_string());
        }
        return Ok(Action::Whiteout(parent.join(OsStr::from_bytes(target))));
    }
    Ok(Action::Put(path))
}

/// `path` and each of its ancestors (not the empty root): what this layer "owns" for
/// whiteout purposes.
pub fn with_ancestors(path: &Path) -> impl Iterator<Item = &Path> {
    path.ancestors().filter(|p| !p.as_os_str().is_empty())
}

/// `base/target` with `..` resolved lexically and clamped at the root, an absolute `target`
/// starting from the root: where a symlink found beneath the rootfs points, beneath it.
pub fn clamp_join(base: &Path, target: &Path) -> PathBuf {
    let mut out: Vec<&OsStr> = Vec::new();
    if !target.has_root() {
        out.extend(base.iter().filter(|c| *c != OsStr::new("/")));
    }
    for c in target.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn names() {
        assert_eq!(normalize(b"./etc/passwd"), Ok(p("etc/passwd")));
        assert_eq!(normalize(b"/etc//passwd/"), Ok(p("etc/passwd")));
        assert_eq!(normalize(b"./"), Ok(p("")));
        assert_eq!(normalize(b"a/./b"), Ok(p("a/b")));
        assert!(normalize(b"../etc/passwd").is_err());
        assert!(normalize(b"a/../../b").is_err());
        assert!(normalize(b"/..").is_err());
    }

    #[test]
    fn whiteouts() {
        assert_eq!(classify(b"./a/.wh.b"), Ok(Action::Whiteout(p("a/b"))));
        assert_eq!(classify(b".wh.file1"), Ok(Action::Whiteout(p("file1"))));
        assert_eq!(classify(b"a/.wh..wh..opq"), Ok(Action::Opaque(p("a"))));
        assert_eq!(classify(b".wh..wh..opq"), Ok(Action::Opaque(p(""))));
        assert_eq!(classify(b"a/.wh..wh.plnk"), Ok(Action::Skip));
        assert_eq!(classify(b"a/b"), Ok(Action::Put(p("a/b"))));
        assert_eq!(classify(b"./"), Ok(Action::Put(p(""))));
        assert_eq!(classify(b"a/.whx"), Ok(Action::Put(p("a/.whx"))));
        assert!(classify(b"a/.wh.").is_err());
        assert!(classify(b"a/.wh..").is_err());
        assert!(classify(b".wh.a/b").is_err());
        assert!(classify(b"../.wh.x").is_err());
    }

    #[test]
    fn clamped() {
        assert_eq!(clamp_join(Path::new("var"), Path::new("/run")), p("run"));
        assert_eq!(clamp_join(Path::new("a/b"), Path::new("../c")), p("a/c"));
        assert_eq!(
            clamp_join(Path::new("a"), Path::new("../../../../etc")),
            p("etc")
        );
        assert_eq!(clamp_join(Path::new("a"), Path::new("./x/./y")), p("a/x/y"));
    }

    #[test]
    fn ancestors() {
        let all: Vec<_> = with_ancestors(Path::new("a/b/c")).collect();
        assert_eq!(all, vec![p("a/b/c"), p("a/b"), p("a")]);
    }
}
