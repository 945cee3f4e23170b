//! Device access rules: the defaults every container gets (runc's list), the config's own
//! rules, and the nodes of `linux.devices`.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources, Spec};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// 'a', 'c' or 'b'.
    pub kind: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: String,
}

impl Rule {
    /// The devices.allow / devices.deny line: `c 1:3 rwm`.
    pub fn line(&self) -> String {
        let num = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_else(|| "*".into());
        if self.kind == 'a' {
            return "a".to_string();
        }
        format!(
            "{} {}:{} {}",
            self.kind,
            num(self.major),
            num(self.minor),
            self.access
        )
    }
}

fn allow(kind: char, major: Option<i64>, minor: Option<i64>) -> Rule {
    Rule {
        allow: true,
        kind,
        major,
        minor,
        access: "rwm".into(),
    }
}

/// null, zero, full, random, urandom, tty, console, ptmx, the pts range, and mknod of any node.
pub fn defaults() -> Vec<Rule> {
    vec![
        Rule {
            access: "m".into(),
            ..allow('c', None, None)
        },
        Rule {
            access: "m".into(),
            ..allow('b', None, None)
        },
        allow('c', Some(1), Some(3)),
        allow('c', Some(1), Some(5)),
        allow('c', Some(1), Some(7)),
        allow('c', Some(1), Some(8)),
        allow('c', Some(1), Some(9)),
        allow('c', Some(5), Some(0)),
        allow('c', Some(5), Some(1)),
        allow('c', Some(5), Some(2)),
        allow('c', Some(136), None),
    ]
}

/// The whole ordered list for a container: deny all, the config's rules, then (as runc does)
/// the default devices and `extra` (the config's own nodes), which a container always gets.
/// The last rule that matches an access decides.
pub fn rule_list(resources: Option<&LinuxResources>, extra: &[Rule]) -> Result<Vec<Rule>> {
    let mut rules = vec![Rule {
        allow: false,
        kind: 'a',
        major: None,
        minor: None,
        access: "rwm".into(),
    }];
    for (i, rule) in resources
        .and_then(|r| r.devices().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        rules.push(from_spec(rule, i)?);
    }
    rules.extend(defaults());
    rules.extend(extra.iter().cloned());
    Ok(rules)
}

/// `linux.devices` nodes are usable in the container: allow them in the device cgroup.
pub fn node_rules(spec: &Spec) -> Result<Vec<Rule>> {
    let devices = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or(&[]);
    devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let node = crate::rootfs::devices::from_spec(d, i)?;
            let kind = if node.kind == nix::sys::stat::SFlag::S_IFBLK {
                'b'
            } else {
                'c'
            };
            Ok(Rule {
                allow: true,
                kind,
                major: Some(node.major as i64),
                minor: Some(node.minor as i64),
                access: "rwm".into(),
            })
        })
        .filter(|r| !matches!(r, Ok(rule) if rule.major == Some(0) && rule.minor == Some(0)))
        .collect()
}

pub fn from_spec(rule: &LinuxDeviceCgroup, index: usize) -> Result<Rule> {
    let field = |f: &str| format!("linux.resources.devices[{index}].{f}");
    let kind = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => 'a',
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::P => {
            return Err(Error::config(
                field("type"),
                "fifos are not controlled by the device cgroup",
            ))
        }
    };
    let access = rule.access().clone().unwrap_or_else(|| "rwm".into());
    if access.is_empty() || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(Error::config(
            field("access"),
            format!("{access:?} is not a combination of r, w and m"),
        ));
    }
    for (name, value) in [("major", rule.major()), ("minor", rule.minor())] {
        if value.is_some_and(|v| v < -1) {
            return Err(Error::config(
                field(name),
                format!("{} is negative", value.unwrap_or_default()),
            ));
        }
    }
    let wildcard = |n: Option<i64>| n.filter(|n| *n >= 0);
    Ok(Rule {
        allow: rule.allow(),
        kind,
        major: wildcard(rule.major()),
        minor: wildcard(rule.minor()),
        access,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_lines() {
        assert_eq!(defaults()[2].line(), "c 1:3 rwm");
        assert_eq!(defaults()[10].line(), "c 136:* rwm");
        let spec: LinuxDeviceCgroup =
            serde_json::from_value(serde_json::json!({"allow": false, "access": "rwm"})).unwrap();
        assert_eq!(from_spec(&spec, 0).unwrap().line(), "a");
        let spec: LinuxDeviceCgroup = serde_json::from_value(
            serde_json::json!({"allow": true, "type": "b", "major": 8, "access": "r"}),
        )
        .unwrap();
        assert_eq!(from_spec(&spec, 0).unwrap().line(), "b 8:* r");
        let bad: LinuxDeviceCgroup =
            serde_json::from_value(serde_json::json!({"allow": true, "access": "rwx"})).unwrap();
        assert!(from_spec(&bad, 2)
            .unwrap_err()
            .to_string()
            .starts_with("linux.resources.devices[2].access"));
    }
}
