//! `linux.netDevices` (runtime spec 1.2, issue 21): a host interface is moved into the
//! container's network namespace, renamed if asked (`%d` templates too), with its permanent
//! global addresses, and up. Every refused config leaves the interface on the host and no
//! state, cgroup or mount. Nothing is moved back on delete: a dummy dies with the namespace.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use integration::{fails, mounts_under, ok, unique_id, Bundle};
use serde_json::json;

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> std::process::Output {
    Command::new("ip").args(args).output().unwrap()
}

fn on_host(name: &str) -> bool {
    ip(&["link", "show", "dev", name]).status.success()
}

/// One end of a veth pair on the host (the host kernel has no dummy driver), deleted at the
/// end unless it went into a container: a namespace's end destroys its veth, and the peer.
struct Dummy(String);

impl Dummy {
    /// `None` (the test passes, saying why) where the kernel has no veth driver.
    fn new() -> Option<Dummy> {
        let name = format!(
            "bnd{}x{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let peer = format!("{name}p");
        let out = ip(&["link", "add", &name, "type", "veth", "peer", "name", &peer]);
        if !out.status.success() {
            eprintln!(
                "skipped: ip link add {name} type veth: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Dummy(name))
    }

    fn add_address(&self, args: &[&str]) {
        let out = ip(&[&["addr", "add"], args, &["dev", &self.0]].concat());
        assert!(out.status.success(), "ip addr add {args:?}: {out:?}");
    }
}

impl Drop for Dummy {
    fn drop(&mut self) {
        for name in [self.0.clone(), format!("{}p", self.0)] {
            if on_host(&name) {
                let _ = ip(&["link", "del", &name]);
            }
        }
    }
}

/// A named network namespace (`ip netns add`), deleted at the end.
struct NetNs(String);

impl NetNs {
    fn new() -> NetNs {
        let name = format!("brig-nd-{}", unique_id("ns"));
        let out = ip(&["netns", "add", &name]);
        assert!(out.status.success(), "ip netns add: {out:?}");
        NetNs(name)
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

fn bundle(name: &str, script: &str, devices: serde_json::Value) -> (Bundle, String) {
    let mut b = Bundle::with_script(name, script);
    let rel = format!("brig-nd-{}", unique_id(name));
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(rel);
        c["linux"]["netDevices"] = devices;
    });
    (b, rel)
}

/// The container's cgroup directories of a relative cgroupsPath that still exist.
fn cgroups_left(rel: &str) -> Vec<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut left = Vec::new();
    for line in own.lines() {
        let mut p = line.splitn(3, ':');
        let (_, list, path) = (p.next(), p.next().unwrap_or(""), p.next().unwrap_or(""));
        let base = match list.split(',').next() {
            Some("") => PathBuf::from("/sys/fs/cgroup/unified"),
            Some(c) if c.starts_with("name=") => continue,
            Some(c) => PathBuf::from("/sys/fs/cgroup").join(c),
            None => continue,
        };
        for dir in [
            base.join(path.trim_start_matches('/')).join(rel),
            PathBuf::from("/sys/fs/cgroup")
                .join(path.trim_start_matches('/'))
                .join(rel),
        ] {
            if dir.exists() {
                left.push(dir);
            }
        }
    }
    left
}

#[test]
fn a_device_is_moved_with_its_addresses_and_up_and_not_given_back() {
    let Some(dev) = Dummy::new() else { return };
    dev.add_address(&["10.201.7.1/24"]);
    dev.add_address(&["2001:db8:7::1/64", "nodad"]);
    // Not global: stays behind.
    dev.add_address(&["10.202.7.1/24", "scope", "link"]);
    let (b, _) = bundle("nd", "sleep 1000", json!({ dev.0.as_str(): {} }));
    let id = unique_id("nd");
    ok(&b.brig(&["run", "-d", &id]));
    assert!(!on_host(&dev.0), "{} is still on the host", dev.0);

    let link = ok(&b.brig(&["exec", &id, "ip", "-o", "link", "show", "dev", &dev.0]));
    assert!(link.contains(",UP"), "not up: {link}");
    let addrs = ok(&b.brig(&["exec", &id, "ip", "-o", "addr", "show", "dev", &dev.0]));
    assert!(addrs.contains("inet 10.201.7.1/24"), "{addrs}");
    assert!(addrs.contains("inet6 2001:db8:7::1/64"), "{addrs}");
    assert!(
        !addrs.contains("10.202.7.1"),
        "a link-scope address moved: {addrs}"
    );
    // Its flags came along: no duplicate address detection, so not left tentative.
    assert!(!addrs.contains("tentative"), "{addrs}");

    // The spec: never moved back. A virtual device dies with the namespace.
    ok(&b.brig(&["delete", "--force", &id]));
    // The kernel tears the namespace down in the background: the peer goes with it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while on_host(&format!("{}p", dev.0)) {
        assert!(
            std::time::Instant::now() < deadline,
            "its peer is still on the host"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!on_host(&dev.0), "{} came back to the host", dev.0);
}

#[test]
fn renamed_and_numbered_by_a_template() {
    let (Some(a), Some(t)) = (Dummy::new(), Dummy::new()) else {
        return;
    };
    // The template is given the number after the explicit name, whatever the order.
    let (b, _) = bundle(
        "ndname",
        "ls /sys/class/net | tr '\\n' ' '; cat /sys/class/net/ctr1/operstate",
        json!({ a.0.as_str(): {"name": "ctr%d"}, t.0.as_str(): {"name": "ctr0"} }),
    );
    let out = ok(&b.run(&unique_id("ndname")));
    let names: Vec<&str> = out.split_whitespace().collect();
    assert!(names.contains(&"ctr0") && names.contains(&"ctr1"), "{out}");
    assert!(
        !names.contains(&a.0.as_str()) && !names.contains(&t.0.as_str()),
        "{out}"
    );
}

/// A refused config: what, `linux.netDevices`, another change to config.json, the error.
type Case<'a> = (
    &'a str,
    serde_json::Value,
    Box<dyn Fn(&mut serde_json::Value) + 'a>,
    String,
);

#[test]
fn refused_configs_leave_the_device_on_the_host_and_nothing_behind() {
    let Some(dev) = Dummy::new() else { return };
    let other = NetNs::new();
    let out = ip(&[
        "-n", &other.0, "link", "add", "taken0", "type", "veth", "peer", "name", "taken0p",
    ]);
    assert!(out.status.success(), "{out:?}");
    let field = format!("linux.netDevices[\"{}\"]", dev.0);
    let cases: Vec<Case> = vec![
        (
            "missing",
            json!({"bndnosuch0": {}}),
            Box::new(|_| {}),
            "linux.netDevices[\"bndnosuch0\"]: no network device \"bndnosuch0\" on the host"
                .to_string(),
        ),
        (
            "taken",
            json!({ dev.0.as_str(): {"name": "lo"} }),
            Box::new(|_| {}),
            format!("{field}: a network device named \"lo\" already exists"),
        ),
        (
            "taken-joined",
            json!({ dev.0.as_str(): {"name": "taken0"} }),
            Box::new(|c| {
                for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
                    if ns["type"] == "network" {
                        ns["path"] = json!(other.path());
                    }
                }
            }),
            format!("{field}: a network device named \"taken0\" already exists"),
        ),
        (
            "no-netns",
            json!({ dev.0.as_str(): {} }),
            Box::new(|c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|ns| ns["type"] != "network")
            }),
            format!("{field}: needs a network namespace"),
        ),
        (
            "bad-name",
            json!({ dev.0.as_str(): {"name": "bad/name"} }),
            Box::new(|_| {}),
            format!("{field}.name: invalid network device name \"bad/name\""),
        ),
        (
            "long-name",
            json!({ dev.0.as_str(): {"name": "a234567890abcdef"} }),
            Box::new(|_| {}),
            format!("{field}.name: invalid network device name"),
        ),
    ];
    for (what, devices, edit, expect) in cases {
        let (mut b, rel) = bundle("ndbad", "true", devices);
        b.edit(|c| edit(c));
        let err = fails(&b.brig(&["run", &unique_id("ndbad")]));
        assert!(err.contains(&expect), "{what}: wanted {expect:?} in: {err}");
        assert!(on_host(&dev.0), "{what}: the device left the host");
        assert!(
            b.containers().is_empty(),
            "{what}: state left: {:?}",
            b.containers()
        );
        assert!(
            cgroups_left(&rel).is_empty(),
            "{what}: cgroup left: {:?}",
            cgroups_left(&rel)
        );
        assert!(
            mounts_under(&b.dir).is_empty(),
            "{what}: {:?}",
            mounts_under(&b.dir)
        );
    }
}

#[test]
fn a_joined_namespace_gets_the_device() {
    let Some(dev) = Dummy::new() else { return };
    dev.add_address(&["10.203.7.1/24"]);
    let netns = NetNs::new();
    let (mut b, _) = bundle(
        "ndjoin",
        "ip -o addr show dev in0",
        json!({ dev.0.as_str(): {"name": "in0"} }),
    );
    b.edit(|c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = json!(netns.path());
            }
        }
    });
    let out = ok(&b.run(&unique_id("ndjoin")));
    assert!(out.contains("inet 10.203.7.1/24"), "{out}");
    // The namespace outlives the container: the device is still in it, up.
    let link = ip(&["-n", &netns.0, "-o", "link", "show", "dev", "in0"]);
    assert!(on_host(&format!("{}p", dev.0)), "its peer went with it");
    assert!(link.status.success() && String::from_utf8_lossy(&link.stdout).contains(",UP"));
}

#[test]
fn features_report_net_devices() {
    let b = Bundle::new("ndfeat");
    let features: serde_json::Value = serde_json::from_str(&ok(&b.brig(&["features"]))).unwrap();
    assert_eq!(features["linux"]["netDevices"], json!({"enabled": true}));
}
