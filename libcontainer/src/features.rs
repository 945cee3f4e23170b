//! `features`: what this brig implements (runtime-spec features.json), from the tables the
//! code itself uses.

use serde_json::{json, Value};

use crate::config::OCI_VERSION;
use crate::hooks::HookKind;
use crate::namespaces::spec_name;
use crate::process::attrs::{MEMORY_POLICY_FLAGS, MEMORY_POLICY_MODES};
use crate::rootfs::options;
use crate::seccomp;

pub fn features() -> Value {
    use oci_spec::runtime::LinuxNamespaceType::*;
    let namespaces: Vec<&str> = [Mount, Cgroup, Uts, Ipc, User, Pid, Network, Time]
        .into_iter()
        .map(spec_name)
        .collect();
    let mut capabilities: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
    capabilities.sort();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": HookKind::ALL.iter().map(|h| h.name()).collect::<Vec<_>>(),
        "mountOptions": options::known_names(),
        "linux": {
            "namespaces": namespaces,
            "capabilities": capabilities,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": seccomp::ACTIONS,
                "operators": seccomp::OPERATORS,
                "archs": seccomp::ARCHS,
                "knownFlags": seccomp::FLAGS.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
                "supportedFlags": seccomp::supported_flags()
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            "intelRdt": {"enabled": true},
            "memoryPolicy": {
                "modes": MEMORY_POLICY_MODES.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
                "flags": MEMORY_POLICY_FLAGS.iter().map(|(n, _)| *n).collect::<Vec<_>>()
            },
            "mountExtensions": {"idmap": {"enabled": true}},
            "netDevices": {"enabled": false}
        },
        "annotations": {
            "io.github.brig.version": env!("CARGO_PKG_VERSION"),
            "org.opencontainers.runc.checkpoint.enabled": "false"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_what_the_code_knows() {
        let f = features();
        assert_eq!(f["ociVersionMax"], OCI_VERSION);
        let hooks = f["hooks"].as_array().unwrap();
        assert!(hooks.contains(&json!("createContainer")) && hooks.len() == 6);
        let mounts = f["mountOptions"].as_array().unwrap();
        for o in ["rro", "rbind", "nosuid", "tmpcopyup", "rslave"] {
            assert!(mounts.contains(&json!(o)), "{o}");
        }
        assert!(f["linux"]["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("CAP_SYS_ADMIN")));
        assert!(f["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!("network")));
        let seccomp = &f["linux"]["seccomp"];
        assert!(seccomp["actions"]
            .as_array()
            .unwrap()
            .contains(&json!("SCMP_ACT_NOTIFY")));
        assert!(seccomp["archs"]
            .as_array()
            .unwrap()
            .contains(&json!("SCMP_ARCH_X32")));
        // NEW_LISTENER is brig's own flag for the NOTIFY filter, not one a profile names.
        let known = seccomp["knownFlags"].as_array().unwrap();
        assert!(!known.contains(&json!("SECCOMP_FILTER_FLAG_NEW_LISTENER")));
        assert!(seccomp["supportedFlags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| known.contains(f)));
        // Parsing a known name gives something, an unknown one is data.
        assert!(options::parse(&["rro"]).recursive_set != 0);
    }
}
