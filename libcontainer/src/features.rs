//! `features`: what this brig implements (runtime-spec features.json), from the tables the
//! code itself uses.

use std::collections::HashMap;

use oci_spec::runtime::{
    Apparmor, Cgroup as CgroupFeature, Features, IDMap, IntelRdt, LinuxFeature, LinuxNamespaceType,
    LinuxSeccompAction, MemoryPolicy, MountExtensions, NetDevices, Seccomp, Selinux,
};
use serde_json::Value;

use crate::config::OCI_VERSION;
use crate::hooks::HookKind;
use crate::process::attrs::{MEMORY_POLICY_FLAGS, MEMORY_POLICY_MODES};
use crate::rootfs::options;
use crate::seccomp;

/// features.json as oci-spec's `Features` types it, every list taken from the code's own tables.
pub fn features() -> Features {
    let strings = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let mut capabilities: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
    capabilities.sort();

    let mut cgroup = CgroupFeature::default();
    cgroup.set_v1(Some(true));
    cgroup.set_v2(Some(true));
    cgroup.set_systemd(Some(true));
    cgroup.set_systemd_user(Some(false));
    cgroup.set_rdma(Some(true));

    let mut filter = Seccomp::default();
    filter.set_enabled(Some(true));
    // Every name brig takes is one oci-spec knows: a name it does not is left out, not faked.
    filter.set_actions(Some(
        seccomp::ACTIONS
            .iter()
            .filter_map(|a| serde_json::from_value::<LinuxSeccompAction>(Value::from(*a)).ok())
            .collect(),
    ));
    filter.set_operators(Some(strings(seccomp::OPERATORS)));
    filter.set_archs(Some(
        seccomp::ARCHS
            .iter()
            .filter_map(|a| serde_json::from_value(Value::from(*a)).ok())
            .collect(),
    ));
    let known: Vec<&str> = seccomp::FLAGS.iter().map(|(name, _)| *name).collect();
    filter.set_known_flags(Some(strings(&known)));
    filter.set_supported_flags(Some(strings(&seccomp::supported_flags())));

    let mut apparmor = Apparmor::default();
    apparmor.set_enabled(Some(true));
    let mut selinux = Selinux::default();
    selinux.set_enabled(Some(true));
    let mut intel_rdt = IntelRdt::default();
    intel_rdt.set_enabled(Some(true));
    let mut memory_policy = MemoryPolicy::default();
    let names = |table: &[(&str, _)]| table.iter().map(|(n, _)| n.to_string()).collect();
    memory_policy.set_modes(Some(names(MEMORY_POLICY_MODES)));
    memory_policy.set_flags(Some(names(MEMORY_POLICY_FLAGS)));
    let mut idmap = IDMap::default();
    idmap.set_enabled(Some(true));
    let mut mount_extensions = MountExtensions::default();
    mount_extensions.set_idmap(Some(idmap));
    let mut net_devices = NetDevices::default();
    net_devices.set_enabled(Some(true));

    let mut linux = LinuxFeature::default();
    linux.set_namespaces(Some(
        [
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Cgroup,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::User,
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Time,
        ]
        .to_vec(),
    ));
    linux.set_capabilities(Some(capabilities));
    linux.set_cgroup(Some(cgroup));
    linux.set_seccomp(Some(filter));
    linux.set_apparmor(Some(apparmor));
    linux.set_selinux(Some(selinux));
    linux.set_intel_rdt(Some(intel_rdt));
    linux.set_memory_policy(Some(memory_policy));
    linux.set_mount_extensions(Some(mount_extensions));
    linux.set_net_devices(Some(net_devices));

    let mut features = Features::default();
    features.set_oci_version_min("1.0.0".to_string());
    features.set_oci_version_max(OCI_VERSION.to_string());
    features.set_hooks(Some(
        HookKind::ALL.iter().map(|h| h.name().to_string()).collect(),
    ));
    features.set_mount_options(Some(strings(&options::known_names())));
    features.set_linux(Some(linux));
    features.set_annotations(Some(HashMap::from([
        (
            "io.github.brig.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        (
            // `checkpoint` and `restore` through CRIU, as runc says it (engines read this).
            "org.opencontainers.runc.checkpoint.enabled".to_string(),
            "true".to_string(),
        ),
    ])));
    features
}

/// `features()` as JSON: members left unset are absent, not `null` (oci-spec's types would
/// print them as null), and object keys sorted.
pub fn features_json() -> Value {
    let mut value = serde_json::to_value(features()).unwrap_or(Value::Null);
    drop_nulls(&mut value);
    value
}

fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_what_the_code_knows() {
        let f = features_json();
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
