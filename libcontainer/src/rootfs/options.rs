//! Mount option strings as runc reads them: flags, propagation, and data for the filesystem.

use nix::mount::MsFlags;

/// One mount's options, split the way mount(2) wants them.
#[derive(Debug, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags to set.
    pub flags: MsFlags,
    /// Flags the options explicitly clear (`rw`, `suid`, `dev`, …): never re-added on remount.
    pub cleared: MsFlags,
    /// Propagation changes, applied one by one after the mount.
    pub propagation: Vec<MsFlags>,
    /// Everything mount(2) does not know as a flag, comma-joined, for the filesystem.
    pub data: String,
    pub bind: bool,
    pub recursive: bool,
    /// `tmpcopyup`: fill a new tmpfs with what the directory it covers held.
    pub copy_up: bool,
    /// `MOUNT_ATTR_*` to set and clear on the whole tree (`rro`, `rnosuid`, …: mount_setattr).
    pub recursive_set: u64,
    pub recursive_clear: u64,
    /// `idmap` (Some(false)) or `ridmap` (Some(true)): never passed to mount(2).
    pub idmap: Option<bool>,
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
const MOUNT_ATTR_RELATIME: u64 = 0x0;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x20_0000;

/// Recursive options: (name, attributes to set, attributes to clear).
const RECURSIVE: &[(&str, u64, u64)] = &[
    ("rro", MOUNT_ATTR_RDONLY, 0),
    ("rrw", 0, MOUNT_ATTR_RDONLY),
    ("rnosuid", MOUNT_ATTR_NOSUID, 0),
    ("rsuid", 0, MOUNT_ATTR_NOSUID),
    ("rnodev", MOUNT_ATTR_NODEV, 0),
    ("rdev", 0, MOUNT_ATTR_NODEV),
    ("rnoexec", MOUNT_ATTR_NOEXEC, 0),
    ("rexec", 0, MOUNT_ATTR_NOEXEC),
    ("rnodiratime", MOUNT_ATTR_NODIRATIME, 0),
    ("rdiratime", 0, MOUNT_ATTR_NODIRATIME),
    ("rrelatime", MOUNT_ATTR_RELATIME, MOUNT_ATTR_ATIME_MASK),
    ("rnorelatime", 0, MOUNT_ATTR_ATIME_MASK),
    ("rnoatime", MOUNT_ATTR_NOATIME, MOUNT_ATTR_ATIME_MASK),
    ("ratime", 0, MOUNT_ATTR_NOATIME),
    (
        "rstrictatime",
        MOUNT_ATTR_STRICTATIME,
        MOUNT_ATTR_ATIME_MASK,
    ),
    ("rnostrictatime", 0, MOUNT_ATTR_STRICTATIME),
    ("rnosymfollow", MOUNT_ATTR_NOSYMFOLLOW, 0),
    ("rsymfollow", 0, MOUNT_ATTR_NOSYMFOLLOW),
];

/// (name, clears the flag?, flag)
const FLAGS: &[(&str, bool, MsFlags)] = &[
    ("async", true, MsFlags::MS_SYNCHRONOUS),
    ("atime", true, MsFlags::MS_NOATIME),
    ("defaults", false, MsFlags::empty()),
    ("dev", true, MsFlags::MS_NODEV),
    ("diratime", true, MsFlags::MS_NODIRATIME),
    ("dirsync", false, MsFlags::MS_DIRSYNC),
    ("exec", true, MsFlags::MS_NOEXEC),
    ("mand", false, MsFlags::MS_MANDLOCK),
    ("noatime", false, MsFlags::MS_NOATIME),
    ("nodev", false, MsFlags::MS_NODEV),
    ("nodiratime", false, MsFlags::MS_NODIRATIME),
    ("noexec", false, MsFlags::MS_NOEXEC),
    ("nomand", true, MsFlags::MS_MANDLOCK),
    ("norelatime", true, MsFlags::MS_RELATIME),
    ("nostrictatime", true, MsFlags::MS_STRICTATIME),
    ("nosuid", false, MsFlags::MS_NOSUID),
    ("relatime", false, MsFlags::MS_RELATIME),
    ("remount", false, MsFlags::MS_REMOUNT),
    ("ro", false, MsFlags::MS_RDONLY),
    ("rw", true, MsFlags::MS_RDONLY),
    ("silent", false, MsFlags::MS_SILENT),
    ("loud", true, MsFlags::MS_SILENT),
    ("strictatime", false, MsFlags::MS_STRICTATIME),
    (
        "nosymfollow",
        false,
        MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW),
    ),
    (
        "symfollow",
        true,
        MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW),
    ),
    ("suid", true, MsFlags::MS_NOSUID),
    ("sync", false, MsFlags::MS_SYNCHRONOUS),
];

const PROPAGATION: &[(&str, MsFlags)] = &[
    ("private", MsFlags::MS_PRIVATE),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("shared", MsFlags::MS_SHARED),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", MsFlags::MS_SLAVE),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

/// The propagation flags a `linux.rootfsPropagation` or mount option name stands for.
pub fn propagation(name: &str) -> Option<MsFlags> {
    PROPAGATION
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}

pub fn parse<S: AsRef<str>>(options: &[S]) -> MountOptions {
    let mut parsed = MountOptions {
        flags: MsFlags::empty(),
        cleared: MsFlags::empty(),
        propagation: Vec::new(),
        data: String::new(),
        bind: false,
        recursive: false,
        copy_up: false,
        recursive_set: 0,
        recursive_clear: 0,
        idmap: None,
    };
    let mut data = Vec::new();
    for option in options {
        let option = option.as_ref();
        if let Some((_, clear, flag)) = FLAGS.iter().find(|(n, _, _)| *n == option) {
            if *clear {
                parsed.flags.remove(*flag);
                parsed.cleared.insert(*flag);
            } else {
                parsed.flags.insert(*flag);
                parsed.cleared.remove(*flag);
            }
        } else if let Some(flag) = propagation(option) {
            parsed.propagation.push(flag);
        } else if let Some((_, set, clear)) = RECURSIVE.iter().find(|(n, _, _)| *n == option) {
            parsed.recursive_set = (parsed.recursive_set & !clear) | set;
            parsed.recursive_clear = (parsed.recursive_clear & !set) | clear;
        } else if option == "tmpcopyup" {
            parsed.copy_up = true;
        } else if option == "idmap" {
            parsed.idmap = Some(parsed.idmap.unwrap_or(false));
        } else if option == "ridmap" {
            parsed.idmap = Some(true);
        } else if option == "bind" {
            parsed.bind = true;
        } else if option == "rbind" {
            parsed.bind = true;
            parsed.recursive = true;
        } else if !option.is_empty() {
            data.push(option);
        }
    }
    parsed.data = data.join(",");
    parsed
}

/// Every option name `parse` understands (what `features` reports as mountOptions).
pub fn known_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = FLAGS.iter().map(|(n, _, _)| *n).collect();
    names.extend(PROPAGATION.iter().map(|(n, _)| *n));
    names.extend(RECURSIVE.iter().map(|(n, _, _)| *n));
    names.extend(["bind", "rbind", "tmpcopyup", "idmap", "ridmap"]);
    names.sort_unstable();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idmap_options_never_reach_mount() {
        let o = parse(&["rbind", "idmap"]);
        assert_eq!((o.idmap, o.data.as_str()), (Some(false), ""));
        assert_eq!(parse(&["idmap", "ridmap"]).idmap, Some(true));
        assert_eq!(parse(&["ridmap", "idmap"]).idmap, Some(true));
        assert_eq!(parse(&["bind"]).idmap, None);
        assert!(known_names().contains(&"ridmap"));
    }

    #[test]
    fn splits_flags_propagation_and_data() {
        let o = parse(&[
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "rslave",
            "ro",
            "rw",
        ]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
        assert_eq!(o.data, "mode=755,size=65536k");
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert!(!o.bind);
    }

    #[test]
    fn recursive_attributes() {
        let o = parse(&["rbind", "rro", "rnosuid", "rnoatime"]);
        assert_eq!(
            o.recursive_set,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME
        );
        assert_eq!(o.recursive_clear, MOUNT_ATTR_ATIME_MASK);
        assert!(o.data.is_empty());
        let o = parse(&["rro", "rrw"]);
        assert_eq!((o.recursive_set, o.recursive_clear), (0, MOUNT_ATTR_RDONLY));
    }

    #[test]
    fn bind_forms() {
        let o = parse(&["rbind", "ro"]);
        assert!(o.bind && o.recursive);
        assert_eq!(o.flags, MsFlags::MS_RDONLY);
        let o = parse(&["bind"]);
        assert!(o.bind && !o.recursive);
    }
}
