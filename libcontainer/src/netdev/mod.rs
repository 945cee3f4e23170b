//! `linux.netDevices` (runtime spec 1.2, config-linux.md "Network Devices"): host interfaces
//! moved into the container's network namespace, renamed if asked (a `%d` template lets the
//! kernel number it), with their permanent global addresses, and set up.
//!
//! Everything that can be known before the container exists is checked by `create` before it
//! makes anything ([`validate`] with the config, [`prepare`] against the host and a joined
//! namespace), so a refused container leaves the interfaces where they were. The move is done
//! by the parent once init's network namespace exists, before init can run anything of the
//! user's. Nothing is moved back on delete: the spec forbids it (the kernel returns physical
//! devices to the host when the namespace dies and destroys virtual ones).

mod rtnl;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::fd::{AsFd, BorrowedFd};

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, LinuxNetDevice};

use crate::error::{Error, Result};
use rtnl::Rtnl;

/// The kernel's limit on interface names, with the terminating NUL (IFNAMSIZ).
const IFNAMSIZ: usize = 16;

fn field(host: &str) -> String {
    format!("linux.netDevices[{host:?}]")
}

/// The kernel's rule for an interface name (`dev_valid_name`); with `template`, one `%d`
/// may stand for the number the kernel picks (`dev_alloc_name`).
fn name_problem(name: &str, template: bool) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if name.len() >= IFNAMSIZ {
        return Some("is longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return Some("cannot be \".\" or \"..\"");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c == '\0' || c.is_whitespace())
    {
        return Some("has a '/', ':' or white space");
    }
    match name.find('%') {
        None => None,
        Some(_) if !template => Some("has a '%'"),
        Some(at) if !name[at..].starts_with("%d") || name[at + 2..].contains('%') => {
            Some("has a '%' other than one \"%d\" template")
        }
        Some(_) => None,
    }
}

fn is_template(name: &str) -> bool {
    name.contains("%d")
}

/// The name each host device gets in the container, in a stable order (errors are the same
/// whichever order the JSON object had).
fn targets(devices: &HashMap<String, LinuxNetDevice>) -> BTreeMap<&str, &str> {
    devices
        .iter()
        .map(|(host, d)| {
            let name = d.name().as_deref().filter(|n| !n.is_empty());
            (host.as_str(), name.unwrap_or(host.as_str()))
        })
        .collect()
}

/// What the config alone says: the container has a network namespace of its own (a new one
/// or a path; moving devices within the runtime's own is refused), and the names are names
/// the kernel takes, each given to one device.
pub fn validate(
    devices: &HashMap<String, LinuxNetDevice>,
    namespaces: &[LinuxNamespace],
) -> Result<()> {
    let targets = targets(devices);
    let Some((first, _)) = targets.first_key_value() else {
        return Ok(());
    };
    if !namespaces
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::Network)
    {
        return Err(Error::config(
            field(first),
            "needs a network namespace of the container's own in linux.namespaces \
             (a new one or a path)",
        ));
    }
    let mut taken = HashSet::new();
    for (host, target) in targets {
        if let Some(problem) = name_problem(host, false) {
            return Err(Error::config(
                field(host),
                format!("invalid network device name {host:?}: {problem}"),
            ));
        }
        if let Some(problem) = name_problem(target, true) {
            return Err(Error::config(
                format!("{}.name", field(host)),
                format!("invalid network device name {target:?}: {problem}"),
            ));
        }
        if !is_template(target) && !taken.insert(target) {
            return Err(Error::config(
                field(host),
                format!("the name {target:?} is given to another device too"),
            ));
        }
    }
    Ok(())
}

/// One device to move: found on the host, its name in the container checked to be free.
#[derive(Debug)]
struct Move {
    host: String,
    index: u32,
    name: String,
}

/// The moves `create` will make, checked against the host and the container's namespace.
#[derive(Debug)]
pub struct Plan {
    moves: Vec<Move>,
}

/// Check what the kernel can tell before anything is made: each device is on the host, and
/// no name is taken in the container's namespace (a new one has only `lo`; a joined one is
/// listed). `None` when the config moves no device: then nothing here costs anything.
/// `rootless`: brig runs without root on the host, which cannot move devices (runc's rule).
pub fn prepare(
    devices: Option<&HashMap<String, LinuxNetDevice>>,
    namespaces: &[LinuxNamespace],
    rootless: bool,
) -> Result<Option<Plan>> {
    let Some(devices) = devices.filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let targets = targets(devices);
    let first = targets.keys().next().copied().unwrap_or_default();
    if rootless {
        return Err(Error::config(
            field(first),
            "moving network devices needs root on the host (not a rootless container)",
        ));
    }
    let mut host = Rtnl::open().map_err(|e| io_error(first, "open a netlink socket", e))?;
    let joined = namespaces
        .iter()
        .find(|ns| ns.typ() == LinuxNamespaceType::Network)
        .and_then(|ns| ns.path().as_ref());
    let existing: HashSet<String> = match joined {
        None => HashSet::from(["lo".to_string()]),
        Some(path) => {
            let netns = std::fs::File::open(path).map_err(|e| {
                io_error(
                    first,
                    &format!("open network namespace {}", path.display()),
                    e,
                )
            })?;
            Rtnl::open_in(netns.as_fd())
                .and_then(|mut ns| ns.links())
                .map_err(|e| {
                    io_error(
                        first,
                        &format!("list the devices of network namespace {}", path.display()),
                        e,
                    )
                })?
                .into_iter()
                .map(|l| l.name)
                .collect()
        }
    };
    let mut moves = Vec::new();
    for (name, target) in targets {
        let link = host
            .link_by_name(name)
            .map_err(|e| io_error(name, "look the device up", e))?
            .ok_or_else(|| {
                Error::config(
                    field(name),
                    format!("no network device {name:?} on the host"),
                )
            })?;
        if !is_template(target) && existing.contains(target) {
            return Err(Error::config(
                field(name),
                format!(
                    "a network device named {target:?} already exists in the container's \
                     network namespace"
                ),
            ));
        }
        moves.push(Move {
            host: name.to_string(),
            index: link.index,
            name: target.to_string(),
        });
    }
    // Explicit names first: a template then numbers around them, whatever the order of
    // the config's keys.
    moves.sort_by_key(|m| is_template(&m.name));
    Ok(Some(Plan { moves }))
}

fn io_error(host: &str, what: &str, err: std::io::Error) -> Error {
    Error::Io {
        what: format!("{}: {what}", field(host)),
        err,
    }
}

impl Plan {
    /// Move every device into `netns`, keep its permanent global addresses, set it up.
    /// A failure part way leaves the moved ones in `netns`, whose end (create kills init)
    /// hands them to the kernel's rule, as the spec says.
    pub fn apply(&self, netns: BorrowedFd<'_>) -> Result<()> {
        let mut host = Rtnl::open().map_err(|e| io_error("", "open a netlink socket", e))?;
        let mut inside = Rtnl::open_in(netns).map_err(|e| {
            io_error(
                "",
                "open a netlink socket in the container's network namespace",
                e,
            )
        })?;
        for m in &self.moves {
            let fail = |what: &str, e| io_error(&m.host, what, e);
            // The kernel drops a device's addresses when it leaves a namespace: read them now.
            let addresses: Vec<_> = host
                .addresses(m.index)
                .map_err(|e| fail("read its addresses", e))?
                .into_iter()
                .filter(|a| a.kept_on_move())
                .collect();
            let before: HashSet<u32> = inside
                .links()
                .map_err(|e| fail("list the container's devices", e))?
                .into_iter()
                .map(|l| l.index)
                .collect();
            host.move_link(m.index, &m.name, netns).map_err(|e| {
                fail(
                    &format!(
                        "move it into the container's network namespace as {:?}",
                        m.name
                    ),
                    e,
                )
            })?;
            // Its index may change in the new namespace, and a template's name is the
            // kernel's choice: it is the one device that was not there before.
            let moved = inside
                .links()
                .map_err(|e| fail("list the container's devices", e))?
                .into_iter()
                .find(|l| !before.contains(&l.index))
                .ok_or_else(|| {
                    Error::config(
                        field(&m.host),
                        "moved, but not found in the container's network namespace",
                    )
                })?;
            for address in &addresses {
                inside
                    .add_address(moved.index, address)
                    .map_err(|e| fail(&format!("add address {address} to {}", moved.name), e))?;
            }
            inside
                .set_up(moved.index)
                .map_err(|e| fail(&format!("set {} up", moved.name), e))?;
            tracing::debug!(
                "network device {} moved into the container as {} with {} address(es)",
                m.host,
                moved.name,
                addresses.len()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn devices(value: serde_json::Value) -> HashMap<String, LinuxNetDevice> {
        serde_json::from_value(value).unwrap()
    }

    fn netns(path: Option<&str>) -> Vec<LinuxNamespace> {
        let mut ns = json!({"type": "network"});
        if let Some(p) = path {
            ns["path"] = json!(p);
        }
        vec![serde_json::from_value(ns).unwrap()]
    }

    fn err(d: serde_json::Value, ns: &[LinuxNamespace]) -> String {
        validate(&devices(d), ns).unwrap_err().to_string()
    }

    #[test]
    fn names_follow_the_kernel() {
        assert_eq!(name_problem("eth0", false), None);
        assert_eq!(name_problem("a234567890abcde", false), None);
        assert!(name_problem("a234567890abcdef", false).is_some());
        assert!(name_problem("", false).is_some());
        assert!(name_problem("..", false).is_some());
        assert!(name_problem("a/b", false).is_some());
        assert!(name_problem("a:b", false).is_some());
        assert!(name_problem("a b", false).is_some());
        assert!(name_problem("net%d", false).is_some());
        assert_eq!(name_problem("net%d", true), None);
        assert!(name_problem("net%s", true).is_some());
        assert!(name_problem("n%d%d", true).is_some());
    }

    #[test]
    fn validation_names_the_device() {
        let ns = netns(None);
        assert!(validate(&devices(json!({"eth9": {}})), &ns).is_ok());
        assert!(validate(
            &devices(json!({"eth9": {"name": "c%d"}, "eth8": {"name": "c%d"}})),
            &ns
        )
        .is_ok());
        assert!(validate(&devices(json!({"eth9": {}})), &netns(Some("/run/netns/x"))).is_ok());
        let e = err(json!({"eth9": {}}), &[]);
        assert!(
            e.starts_with("linux.netDevices[\"eth9\"]: needs a network namespace"),
            "{e}"
        );
        let e = err(json!({"eth9": {"name": "bad name"}}), &ns);
        assert!(
            e.starts_with("linux.netDevices[\"eth9\"].name: invalid network device name"),
            "{e}"
        );
        let e = err(json!({"eth/9": {}}), &ns);
        assert!(e.starts_with("linux.netDevices[\"eth/9\"]: invalid"), "{e}");
        let e = err(json!({"eth8": {"name": "c0"}, "eth9": {"name": "c0"}}), &ns);
        assert!(
            e.starts_with("linux.netDevices[\"eth9\"]: the name \"c0\""),
            "{e}"
        );
        // A host name that is another's new name is fine: both leave the host.
        assert!(validate(
            &devices(json!({"a": {"name": "b"}, "b": {"name": "a"}})),
            &ns
        )
        .is_ok());
        assert!(validate(&HashMap::new(), &[]).is_ok());
    }
}
