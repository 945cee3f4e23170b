//! Device access rules: the defaults every container gets (runc's list), the config's own
//! rules, and the nodes of `linux.devices`.

use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

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

/// The nodes every container gets, with their paths: null, zero, full, random, urandom, tty.
const DEFAULT_NODES: [(&str, i64, i64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/random", 1, 8),
    ("/dev/full", 1, 7),
    ("/dev/tty", 5, 0),
    ("/dev/zero", 1, 5),
    ("/dev/urandom", 1, 9),
];

/// runc's default allow list: mknod of any node, the default nodes but those `linux.devices`
/// lists again (the config's entry replaces the default one, so only the config's rules decide
/// its access), the pts range, ptmx and tun/tap.
pub fn defaults(spec_devices: &[LinuxDevice]) -> Vec<Rule> {
    let mut rules = vec![
        Rule {
            access: "m".into(),
            ..allow('c', None, None)
        },
        Rule {
            access: "m".into(),
            ..allow('b', None, None)
        },
    ];
    for (path, major, minor) in DEFAULT_NODES {
        if !spec_devices.iter().any(|d| d.path() == Path::new(path)) {
            rules.push(allow('c', Some(major), Some(minor)));
        }
    }
    rules.push(allow('c', Some(136), None));
    rules.push(allow('c', Some(5), Some(2)));
    rules.push(allow('c', Some(10), Some(200)));
    rules
}

/// The whole ordered list for a container: deny all, the config's rules, then (as runc does)
/// the defaults. The last rule that matches an access decides. A node of `linux.devices` gets
/// no rule of its own: `linux.resources.devices` is the allow list.
pub fn rule_list(
    resources: Option<&LinuxResources>,
    spec_devices: &[LinuxDevice],
) -> Result<Vec<Rule>> {
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
        // A rule that names no access runc knows (only unknown letters) changes nothing.
        let rule = from_spec(rule, i)?;
        if !rule.access.is_empty() {
            rules.push(rule);
        }
    }
    rules.extend(defaults(spec_devices));
    Ok(rules)
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
    let given = rule.access().clone().unwrap_or_else(|| "rwm".into());
    if given.is_empty() {
        return Err(Error::config(field("access"), "must not be empty"));
    }
    // Letters other than r, w and m are ignored, as runc does ("rwa" is "rw").
    let access: String = ['r', 'w', 'm']
        .into_iter()
        .filter(|c| given.contains(*c))
        .collect();
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
        let defaults = defaults(&[]);
        assert_eq!(defaults[2].line(), "c 1:3 rwm");
        assert_eq!(defaults[8].line(), "c 136:* rwm");
        assert_eq!(defaults[10].line(), "c 10:200 rwm");
        let spec: LinuxDeviceCgroup =
            serde_json::from_value(serde_json::json!({"allow": false, "access": "rwm"})).unwrap();
        assert_eq!(from_spec(&spec, 0).unwrap().line(), "a");
        let spec: LinuxDeviceCgroup = serde_json::from_value(
            serde_json::json!({"allow": true, "type": "b", "major": 8, "access": "r"}),
        )
        .unwrap();
        assert_eq!(from_spec(&spec, 0).unwrap().line(), "b 8:* r");
        // Unknown letters are ignored (runc); an empty access is refused.
        let odd: LinuxDeviceCgroup = serde_json::from_value(
            serde_json::json!({"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwa"}),
        )
        .unwrap();
        assert_eq!(from_spec(&odd, 0).unwrap().line(), "c 1:11 rw");
        let bad: LinuxDeviceCgroup =
            serde_json::from_value(serde_json::json!({"allow": true, "access": ""})).unwrap();
        assert!(from_spec(&bad, 2)
            .unwrap_err()
            .to_string()
            .starts_with("linux.resources.devices[2].access"));
    }

    #[test]
    fn linux_devices_get_no_rule_and_replace_a_default() {
        let kmsg: LinuxDevice = serde_json::from_value(
            serde_json::json!({"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}),
        )
        .unwrap();
        let rules = rule_list(None, &[kmsg]).unwrap();
        assert!(!rules.iter().any(|r| r.line() == "c 1:11 rwm"));
        let tty: LinuxDevice = serde_json::from_value(
            serde_json::json!({"path": "/dev/tty", "type": "c", "major": 5, "minor": 0}),
        )
        .unwrap();
        let rules = rule_list(None, &[tty]).unwrap();
        assert!(!rules.iter().any(|r| r.line() == "c 5:0 rwm"));
        assert!(rules.iter().any(|r| r.line() == "c 1:3 rwm"));
    }
}
