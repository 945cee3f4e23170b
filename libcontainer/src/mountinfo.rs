//! `/proc/self/mountinfo` lines, as the cgroup, rootfs and resctrl code reads them.

/// The fields of one /proc/self/mountinfo line that brig reads.
#[derive(Debug, PartialEq, Eq)]
pub struct MountInfo<'a> {
    /// The root of the mount within its filesystem (field 4).
    pub root: &'a str,
    pub mount_point: &'a str,
    pub fs_type: &'a str,
    pub super_options: &'a str,
}

/// Parse a mountinfo line: `id parent maj:min root point opts [tags…] - type source superopts`.
pub fn parse(line: &str) -> Option<MountInfo<'_>> {
    let (left, right) = line.split_once(" - ")?;
    let mut left = left.split(' ');
    let mut right = right.split(' ');
    Some(MountInfo {
        root: left.nth(3)?,
        mount_point: left.next()?,
        fs_type: right.next()?,
        super_options: right.nth(1).unwrap_or(""),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_fields() {
        let line = "35 30 0:31 /sub /sys/fs/cgroup/memory rw,nosuid shared:15 master:2 - cgroup cgroup rw,xattr,memory";
        assert_eq!(
            parse(line),
            Some(MountInfo {
                root: "/sub",
                mount_point: "/sys/fs/cgroup/memory",
                fs_type: "cgroup",
                super_options: "rw,xattr,memory",
            })
        );
        assert_eq!(parse("not a mountinfo line"), None);
    }
}
