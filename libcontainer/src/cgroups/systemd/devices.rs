//! The container's device rules as systemd's `DevicePolicy=` and `DeviceAllow=`: what systemd
//! can express of them, never more than they allow. systemd's view only keeps the unit
//! consistent (`systemctl show`, a later re-realisation of the unit's cgroup); the authority
//! stays the rules brig itself installs right after the unit starts (the eBPF program on v2,
//! which replaces systemd's, or the devices controller's files on v1), as runc does.

use std::path::Path;

use super::super::devices::Rule;

/// One allowed (type, major, minor) with its access; `None` is a wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    pub kind: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// Bits of "rwm".
    access: u8,
}

const ACCESS: [(char, u8); 3] = [('r', 1), ('w', 2), ('m', 4)];
const ALL: u8 = 7;

fn bits(access: &str) -> u8 {
    ACCESS
        .iter()
        .filter(|(c, _)| access.contains(*c))
        .fold(0, |b, (_, bit)| b | bit)
}

impl Allowed {
    pub fn access(&self) -> String {
        ACCESS
            .iter()
            .filter(|(_, bit)| self.access & bit != 0)
            .map(|(c, _)| *c)
            .collect()
    }

    /// The two patterns can match the same device.
    fn overlaps(&self, kind: char, major: Option<i64>, minor: Option<i64>) -> bool {
        let meets = |a: Option<i64>, b: Option<i64>| a.is_none() || b.is_none() || a == b;
        self.kind == kind && meets(self.major, major) && meets(self.minor, minor)
    }
}

/// The devices the ordered rules (the last match decides, everything else is denied) allow, as
/// a list of allowed patterns. A deny that cuts into a wider allowed pattern (`c 1:*` allowed,
/// then `c 1:3` denied) takes that access from the whole pattern: an allow list cannot punch
/// holes, and systemd's list must never allow what the rules deny.
pub fn allow_list(rules: &[Rule]) -> Vec<Allowed> {
    let mut list: Vec<Allowed> = Vec::new();
    for rule in rules {
        let access = bits(&rule.access);
        // 'a' is both types, any number.
        let (kinds, major, minor): (&[char], _, _) = match rule.kind {
            'a' => (&['c', 'b'], None, None),
            'b' => (&['b'], rule.major, rule.minor),
            _ => (&['c'], rule.major, rule.minor),
        };
        for &kind in kinds {
            if rule.allow {
                match list
                    .iter_mut()
                    .find(|e| e.kind == kind && e.major == major && e.minor == minor)
                {
                    Some(e) => e.access |= access,
                    None => list.push(Allowed {
                        kind,
                        major,
                        minor,
                        access,
                    }),
                }
            } else {
                for e in list.iter_mut().filter(|e| e.overlaps(kind, major, minor)) {
                    e.access &= !access;
                }
            }
        }
        list.retain(|e| e.access != 0);
    }
    list
}

/// Every device, any access: systemd's `DevicePolicy=auto` with no list.
pub fn allows_all(list: &[Allowed]) -> bool {
    ['c', 'b'].iter().all(|k| {
        list.iter()
            .any(|e| e.kind == *k && e.major.is_none() && e.minor.is_none() && e.access == ALL)
    })
}

/// The `DeviceAllow=` entries (path or group, access) for `list`, for systemd `version` (0:
/// unknown, taken as recent). systemd cannot say `*:N`; before 240 it takes neither a major
/// alone (`char-5`) nor a node path that does not exist: those are left out (narrower).
pub fn device_allow(list: &[Allowed], version: u32) -> Vec<(String, String)> {
    let recent = version == 0 || version >= 240;
    let mut entries = Vec::new();
    for e in list {
        let (group, dir) = if e.kind == 'b' {
            ("block", "/dev/block")
        } else {
            ("char", "/dev/char")
        };
        let path = match (e.major, e.minor) {
            (None, None) => format!("{group}-*"),
            (None, Some(_)) => continue,
            (Some(major), None) if recent => format!("{group}-{major}"),
            (Some(_), None) => continue,
            (Some(major), Some(minor)) => {
                let path = format!("{dir}/{major}:{minor}");
                if !recent && !Path::new(&path).exists() {
                    continue;
                }
                path
            }
        };
        entries.push((path, e.access()));
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(allow: bool, kind: char, major: Option<i64>, minor: Option<i64>, access: &str) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
        }
    }

    fn lines(rules: &[Rule], version: u32) -> Vec<String> {
        device_allow(&allow_list(rules), version)
            .into_iter()
            .map(|(p, a)| format!("{p} {a}"))
            .collect()
    }

    #[test]
    fn the_default_list_as_systemd_spells_it() {
        let rules = crate::cgroups::devices::rule_list(None, &[]).unwrap();
        assert_eq!(
            lines(&rules, 252),
            [
                "char-* m",
                "block-* m",
                "/dev/char/1:3 rwm",
                "/dev/char/1:8 rwm",
                "/dev/char/1:7 rwm",
                "/dev/char/5:0 rwm",
                "/dev/char/1:5 rwm",
                "/dev/char/1:9 rwm",
                "char-136 rwm",
                "/dev/char/5:2 rwm",
                "/dev/char/10:200 rwm",
            ]
        );
        assert!(!allows_all(&allow_list(&rules)));
        // Before 240 a major alone is not understood.
        assert!(!lines(&rules, 239).contains(&"char-136 rwm".to_string()));
    }

    #[test]
    fn the_last_match_decides_and_denies_never_widen() {
        let deny_all = rule(false, 'a', None, None, "rwm");
        // A denied default node, allowed again with less access.
        let rules = [
            deny_all.clone(),
            rule(true, 'c', Some(1), Some(3), "rwm"),
            rule(false, 'c', Some(1), Some(3), "w"),
            rule(true, 'b', Some(8), Some(0), "r"),
            rule(true, 'b', Some(8), Some(0), "m"),
        ];
        assert_eq!(
            lines(&rules, 252),
            ["/dev/char/1:3 rm", "/dev/block/8:0 rm"]
        );
        // A hole in a wildcard: the wildcard loses that access.
        let rules = [
            deny_all.clone(),
            rule(true, 'c', Some(1), None, "rwm"),
            rule(false, 'c', Some(1), Some(3), "rw"),
        ];
        assert_eq!(lines(&rules, 252), ["char-1 m"]);
        // "*:N" cannot be said to systemd.
        let rules = [deny_all, rule(true, 'c', None, Some(3), "rwm")];
        assert!(lines(&rules, 252).is_empty());
    }

    #[test]
    fn allow_all_is_systemds_auto_policy() {
        let mut rules = vec![rule(true, 'a', None, None, "rwm")];
        rules.extend(crate::cgroups::devices::defaults(&[]));
        assert!(allows_all(&allow_list(&rules)));
        // Allow all but one device: systemd can only be told less.
        rules.push(rule(false, 'c', Some(1), Some(3), "rwm"));
        let list = allow_list(&rules);
        assert!(!allows_all(&list));
        assert_eq!(
            device_allow(&list, 252)[0],
            ("block-*".into(), "rwm".into())
        );
        assert!(!device_allow(&list, 252).iter().any(|(p, _)| p == "char-*"));
    }
}
