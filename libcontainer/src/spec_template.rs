//! The config.json `brig spec` writes: runc's default, member for member and in runc's order
//! and layout (tab indents, no final newline), so tools and tests written against `runc spec`
//! start from the same bundle. Only the hostname (`brig`) and `ociVersion` (the version brig
//! implements) differ.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use crate::config::OCI_VERSION;

/// A JSON value whose objects keep their members in the order written (serde_json's `Value`
/// sorts them by name).
enum Node {
    Object(Vec<(&'static str, Node)>),
    Array(Vec<Node>),
    Str(&'static str),
    Bool(bool),
    Int(i64),
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (key, value) in members {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            Node::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Str(s) => serializer.serialize_str(s),
            Node::Bool(b) => serializer.serialize_bool(*b),
            Node::Int(n) => serializer.serialize_i64(*n),
        }
    }
}

fn obj(members: Vec<(&'static str, Node)>) -> Node {
    Node::Object(members)
}

fn strs(items: &[&'static str]) -> Node {
    Node::Array(items.iter().map(|s| Node::Str(s)).collect())
}

fn mount(
    destination: &'static str,
    typ: &'static str,
    source: &'static str,
    options: &[&'static str],
) -> Node {
    let mut members = vec![
        ("destination", Node::Str(destination)),
        ("type", Node::Str(typ)),
        ("source", Node::Str(source)),
    ];
    if !options.is_empty() {
        members.push(("options", strs(options)));
    }
    obj(members)
}

/// The caller's own ids, for `spec --rootless`: root in the container is the caller.
#[derive(Debug, Clone, Copy)]
pub struct Rootless {
    pub uid: u32,
    pub gid: u32,
}

fn template(cgroup_namespace: bool, rootless: Option<Rootless>) -> Node {
    let caps = || strs(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    // runc's ToRootless: no network namespace (an unprivileged user could not configure one),
    // a user namespace last, no gid= on devpts (gid 5 is not mapped), /sys bound from the host
    // (sysfs can only be mounted by the owner of the network namespace) and no resources.
    let mut namespaces: Vec<Node> = ["pid", "network", "ipc", "uts", "mount"]
        .iter()
        .filter(|t| rootless.is_none() || **t != "network")
        .map(|t| obj(vec![("type", Node::Str(t))]))
        .collect();
    if cgroup_namespace {
        namespaces.push(obj(vec![("type", Node::Str("cgroup"))]));
    }
    if rootless.is_some() {
        namespaces.push(obj(vec![("type", Node::Str("user"))]));
    }
    let devpts_options: &[&'static str] = if rootless.is_some() {
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
        ]
    } else {
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]
    };
    let sys = match rootless {
        Some(_) => mount(
            "/sys",
            "none",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro"],
        ),
        None => mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
    };
    let id_map = |id: u32| {
        Node::Array(vec![obj(vec![
            ("containerID", Node::Int(0)),
            ("hostID", Node::Int(i64::from(id))),
            ("size", Node::Int(1)),
        ])])
    };
    let mut linux = match rootless {
        Some(ids) => vec![
            ("uidMappings", id_map(ids.uid)),
            ("gidMappings", id_map(ids.gid)),
        ],
        None => vec![(
            "resources",
            obj(vec![(
                "devices",
                Node::Array(vec![obj(vec![
                    ("allow", Node::Bool(false)),
                    ("access", Node::Str("rwm")),
                ])]),
            )]),
        )],
    };
    linux.push(("namespaces", Node::Array(namespaces)));
    obj(vec![
        ("ociVersion", Node::Str(OCI_VERSION)),
        (
            "process",
            obj(vec![
                ("terminal", Node::Bool(true)),
                (
                    "user",
                    obj(vec![("uid", Node::Int(0)), ("gid", Node::Int(0))]),
                ),
                ("args", strs(&["sh"])),
                (
                    "env",
                    strs(&[
                        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "TERM=xterm",
                    ]),
                ),
                ("cwd", Node::Str("/")),
                (
                    "capabilities",
                    obj(vec![
                        ("bounding", caps()),
                        ("effective", caps()),
                        ("permitted", caps()),
                        ("ambient", caps()),
                    ]),
                ),
                (
                    "rlimits",
                    Node::Array(vec![obj(vec![
                        ("type", Node::Str("RLIMIT_NOFILE")),
                        ("hard", Node::Int(1024)),
                        ("soft", Node::Int(1024)),
                    ])]),
                ),
                ("noNewPrivileges", Node::Bool(true)),
            ]),
        ),
        (
            "root",
            obj(vec![
                ("path", Node::Str("rootfs")),
                ("readonly", Node::Bool(true)),
            ]),
        ),
        ("hostname", Node::Str("brig")),
        (
            "mounts",
            Node::Array(vec![
                mount("/proc", "proc", "proc", &[]),
                mount(
                    "/dev",
                    "tmpfs",
                    "tmpfs",
                    &["nosuid", "strictatime", "mode=755", "size=65536k"],
                ),
                mount("/dev/pts", "devpts", "devpts", devpts_options),
                mount(
                    "/dev/shm",
                    "tmpfs",
                    "shm",
                    &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
                ),
                mount(
                    "/dev/mqueue",
                    "mqueue",
                    "mqueue",
                    &["nosuid", "noexec", "nodev"],
                ),
                sys,
                mount(
                    "/sys/fs/cgroup",
                    "cgroup",
                    "cgroup",
                    &["nosuid", "noexec", "nodev", "relatime", "ro"],
                ),
            ]),
        ),
        (
            "linux",
            obj(linux
                .into_iter()
                .chain([
                    (
                        "maskedPaths",
                        strs(&[
                            "/proc/acpi",
                            "/proc/asound",
                            "/proc/kcore",
                            "/proc/keys",
                            "/proc/latency_stats",
                            "/proc/timer_list",
                            "/proc/timer_stats",
                            "/proc/sched_debug",
                            "/sys/firmware",
                            "/proc/scsi",
                        ]),
                    ),
                    (
                        "readonlyPaths",
                        strs(&[
                            "/proc/bus",
                            "/proc/fs",
                            "/proc/irq",
                            "/proc/sys",
                            "/proc/sysrq-trigger",
                        ]),
                    ),
                ])
                .collect()),
        ),
    ])
}

/// As runc: on a cgroup v2 host the container gets its own cgroup namespace, so the cgroup2
/// mount at /sys/fs/cgroup shows its own cgroup rather than the host's root.
fn wants_cgroup_namespace() -> bool {
    crate::cgroups::detect() == crate::cgroups::Mode::V2
}

/// The default config as a JSON value (members sorted; for code that edits it).
pub fn default_spec() -> Value {
    serde_json::to_value(template(wants_cgroup_namespace(), None)).unwrap_or(Value::Null)
}

/// The default config.json as `runc spec` lays it out: tab indents, runc's member order, no
/// final newline.
pub fn default_spec_text() -> String {
    render(&template(wants_cgroup_namespace(), None))
}

/// `spec --rootless`: runc's rootless config for a caller with `ids`.
pub fn rootless_spec_text(ids: Rootless) -> String {
    render(&template(wants_cgroup_namespace(), Some(ids)))
}

fn render(node: &Node) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Writing into a Vec cannot fail, and every Node is representable in JSON.
    let _ = node.serialize(&mut serializer);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_is_valid() {
        let spec: oci_spec::runtime::Spec = serde_json::from_value(default_spec()).unwrap();
        crate::config::validate(&spec).unwrap();
    }

    /// What runc 1.1.5's `runc spec` writes on a v1 host, but for hostname and ociVersion.
    const RUNC_SPEC: &str = include_str!("testdata/runc-spec.json");

    #[test]
    fn text_is_runcs_layout() {
        let expected = RUNC_SPEC
            .replace("\"1.0.2-dev\"", &format!("{OCI_VERSION:?}"))
            .replace("\"hostname\": \"runc\"", "\"hostname\": \"brig\"");
        assert_eq!(render(&template(false, None)), expected);
    }

    #[test]
    fn cgroup_namespace_is_last() {
        let v: Value = serde_json::from_str(&render(&template(true, None))).unwrap();
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        assert_eq!(ns.last().unwrap()["type"], "cgroup");
        assert_eq!(ns.len(), 6);
    }

    /// What runc 1.1.5's `runc spec --rootless` writes for uid/gid 65534 on a v1 host.
    const RUNC_ROOTLESS_SPEC: &str = include_str!("testdata/runc-spec-rootless.json");

    #[test]
    fn rootless_text_is_runcs() {
        let expected = RUNC_ROOTLESS_SPEC
            .replace("\"1.0.2-dev\"", &format!("{OCI_VERSION:?}"))
            .replace("\"hostname\": \"runc\"", "\"hostname\": \"brig\"");
        let ids = Rootless {
            uid: 65534,
            gid: 65534,
        };
        assert_eq!(render(&template(false, Some(ids))), expected);
        let spec: oci_spec::runtime::Spec = serde_json::from_str(&expected).unwrap();
        crate::config::validate(&spec).unwrap();
    }
}
