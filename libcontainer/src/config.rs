//! Loading `config.json` and refusing what brig cannot honour, naming the field.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Context, Error, Result};

/// The runtime-spec version brig implements and writes in `state` and `spec`.
pub const OCI_VERSION: &str = "1.2.1";

/// The longest hostname or domainname the kernel takes.
const UTS_NAME_MAX: usize = 64;

/// A validated config.json with the paths it implies resolved.
#[derive(Debug)]
pub struct Config {
    pub spec: Spec,
    /// Absolute bundle directory.
    pub bundle: PathBuf,
    /// Absolute root filesystem directory.
    pub rootfs: PathBuf,
    /// `linux.seccomp` compiled: a bad profile fails create before anything is made, and init
    /// installs these filters without compiling again.
    pub seccomp: Option<crate::seccomp::Filters>,
}

impl Config {
    /// Read `config.json` in `bundle`, parse it and validate it.
    pub fn load(bundle: &Path) -> Result<Config> {
        let bundle = std::path::absolute(bundle)
            .ctx(|| format!("resolve bundle path {}", bundle.display()))?;
        let path = bundle.join("config.json");
        let data =
            std::fs::read(&path).ctx(|| format!("open config.json in {}", bundle.display()))?;
        let file = path.display().to_string();
        require_object(&data, &file)?;
        let spec: Spec =
            serde_json::from_slice(&data).map_err(|e| Error::config(file, e.to_string()))?;
        Config::from_spec(spec, bundle)
    }

    pub fn from_spec(spec: Spec, bundle: PathBuf) -> Result<Config> {
        let mut config = Config::without_files(spec)?;
        let root = config.spec.root().as_ref().map(|r| r.path().clone());
        let rootfs = bundle.join(root.unwrap_or_default());
        let meta = std::fs::metadata(&rootfs).ctx(|| format!("root.path {}", rootfs.display()))?;
        if !meta.is_dir() {
            return Err(Error::config(
                "root.path",
                format!("{} is not a directory", rootfs.display()),
            ));
        }
        config.rootfs =
            std::fs::canonicalize(&rootfs).ctx(|| format!("root.path {}", rootfs.display()))?;
        config.bundle = bundle;
        Ok(config)
    }

    /// Every check that does not look at the bundle's files: `bundle` and `rootfs` are left
    /// empty for the caller to fill.
    fn without_files(spec: Spec) -> Result<Config> {
        validate(&spec)?;
        if spec.root().is_none() {
            return Err(Error::config(
                "root",
                "missing: a container needs a root filesystem",
            ));
        }
        let seccomp = spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .map(crate::seccomp::compile)
            .transpose()?;
        let config = Config {
            spec,
            bundle: PathBuf::new(),
            rootfs: PathBuf::new(),
            seccomp,
        };
        Ok(config)
    }

    /// The namespace entry of `kind`, if the config asks for one.
    pub fn namespace(
        &self,
        kind: LinuxNamespaceType,
    ) -> Option<&oci_spec::runtime::LinuxNamespace> {
        namespaces(&self.spec).iter().find(|ns| ns.typ() == kind)
    }

    /// True when the container gets a namespace of `kind` of its own (listed without a path).
    pub fn new_namespace(&self, kind: LinuxNamespaceType) -> bool {
        self.namespace(kind).is_some_and(|ns| ns.path().is_none())
    }

    /// `linux.namespaces`, empty when absent.
    pub fn namespaces(&self) -> &[oci_spec::runtime::LinuxNamespace] {
        namespaces(&self.spec)
    }

    /// `linux.sysctl`, empty when absent.
    pub fn sysctl(&self) -> &std::collections::HashMap<String, String> {
        static EMPTY: std::sync::LazyLock<std::collections::HashMap<String, String>> =
            std::sync::LazyLock::new(Default::default);
        self.spec
            .linux()
            .as_ref()
            .and_then(|l| l.sysctl().as_ref())
            .unwrap_or(&EMPTY)
    }
}

/// Parse config.json from bytes and make every check `Config::load` makes except those on the
/// bundle's files (the root filesystem is not looked at): the fuzz target's entry point.
pub fn load_from_bytes(data: &[u8]) -> Result<Spec> {
    let spec: Spec =
        serde_json::from_slice(data).map_err(|e| Error::config("config.json", e.to_string()))?;
    Ok(Config::without_files(spec)?.spec)
}

fn namespaces(spec: &Spec) -> &[oci_spec::runtime::LinuxNamespace] {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or(&[])
}

/// Check what serde cannot: versions, required-on-Linux fields, absolute paths, and the
/// fields this build of brig does not implement yet (an error, never a silent ignore).
pub fn validate(spec: &Spec) -> Result<()> {
    validate_version(spec.version())?;
    if spec
        .root()
        .as_ref()
        .is_some_and(|r| r.path().as_os_str().is_empty())
    {
        return Err(Error::config("root.path", "must not be empty"));
    }
    validate_namespaces(spec)?;
    validate_without_mount_namespace(spec)?;
    validate_restricted_paths(spec)?;
    crate::hooks::validate(spec)?;
    if let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        crate::sysctl::validate(sysctl, namespaces(spec))?;
    }
    for (i, mount) in spec.mounts().as_deref().unwrap_or(&[]).iter().enumerate() {
        if mount.destination().as_os_str().is_empty() {
            return Err(Error::config(
                format!("mounts[{i}].destination"),
                "must not be empty",
            ));
        }
    }
    reject_unimplemented(spec)?;
    // `process` is optional at create; `start` fails without it (runtime spec).
    match spec.process() {
        Some(process) => validate_process(process),
        None => Ok(()),
    }
}

/// serde reads a struct from a JSON array too (fields by position), which turns `[]` into a
/// spec with an empty ociVersion: the document must be an object.
fn require_object(data: &[u8], file: &str) -> Result<()> {
    match data.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(()),
        // Empty or not JSON at all: serde's own message says where.
        None => Ok(()),
        Some(b'[') => Err(Error::config(
            file,
            "the document is an array, not a JSON object",
        )),
        Some(_) => match serde_json::from_slice::<serde_json::Value>(data) {
            Ok(_) => Err(Error::config(file, "the document is not a JSON object")),
            Err(_) => Ok(()),
        },
    }
}

/// A process.json for `exec --process`. runc reads it into Go's zero values, so a file without
/// `user` runs as uid 0, gid 0: the same default here (`file` names it in errors).
pub fn process_from_json(data: &[u8], file: &str) -> Result<oci_spec::runtime::Process> {
    require_object(data, file)?;
    let mut value: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| Error::config(file, e.to_string()))?;
    if let Some(object) = value.as_object_mut() {
        object
            .entry("user")
            .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    }
    serde_json::from_value(value).map_err(|e| Error::config(file, e.to_string()))
}

/// The checks every process gets, the container's own or one given to `exec`.
pub fn validate_process(process: &oci_spec::runtime::Process) -> Result<()> {
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => return Err(Error::config("process.args", "must name a program to run")),
    }
    if process.command_line().is_some() {
        return Err(Error::config("process.commandLine", "is for Windows only"));
    }
    if process.user().username().is_some() {
        return Err(Error::config(
            "process.user.username",
            "is for Windows only",
        ));
    }
    if !process.cwd().is_absolute() {
        return Err(Error::config(
            "process.cwd",
            format!("must be an absolute path, got {:?}", process.cwd()),
        ));
    }
    if let Some(size) = process.console_size() {
        for (name, value) in [("height", size.height()), ("width", size.width())] {
            if value > u16::MAX.into() {
                return Err(Error::config(
                    format!("process.consoleSize.{name}"),
                    format!("{value} is larger than a terminal can be ({})", u16::MAX),
                ));
            }
        }
    }
    if let Some(env) = process.env() {
        if let Some((i, bad)) = env.iter().enumerate().find(|(_, e)| !e.contains('=')) {
            return Err(Error::config(
                format!("process.env[{i}]"),
                format!("{bad:?} is not KEY=VALUE"),
            ));
        }
    }
    Ok(())
}

fn validate_version(version: &str) -> Result<()> {
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u64>().ok());
    match major {
        Some(1) => Ok(()),
        Some(_) => Err(Error::config(
            "ociVersion",
            format!("unsupported version {version:?}: brig implements {OCI_VERSION}"),
        )),
        None => Err(Error::config(
            "ociVersion",
            format!("{version:?} is not a semantic version"),
        )),
    }
}

fn validate_namespaces(spec: &Spec) -> Result<()> {
    crate::namespaces::validate(namespaces(spec))?;
    let has = |kind| namespaces(spec).iter().any(|ns| ns.typ() == kind);
    let new = |kind| crate::namespaces::is_new(namespaces(spec), kind);
    let linux = spec.linux().as_ref();
    let maps = linux.is_some_and(|l| l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty()));
    let gid_maps = linux.is_some_and(|l| l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty()));
    if new(LinuxNamespaceType::User) && (!maps || !gid_maps) {
        return Err(Error::config(
            "linux.uidMappings",
            "a new user namespace needs both uidMappings and gidMappings",
        ));
    }
    if (maps || gid_maps) && !has(LinuxNamespaceType::User) {
        return Err(Error::config(
            "linux.uidMappings",
            "id mappings are given but linux.namespaces has no user namespace",
        ));
    }
    // The kernel's limit (__NEW_UTS_LEN); sethostname would fail with EINVAL inside init.
    for (field, name) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        if let Some(name) = name.as_deref().filter(|n| n.len() > UTS_NAME_MAX) {
            return Err(Error::config(
                field,
                format!(
                    "is {} bytes long: the kernel allows at most {UTS_NAME_MAX}",
                    name.len()
                ),
            ));
        }
    }
    // A uts namespace of the container's own, new or joined by path, may be renamed (runc's
    // rule); without a uts entry the names would be the host's.
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(Error::config(
            "hostname",
            "setting the hostname needs a uts namespace in linux.namespaces",
        ));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts)
    {
        return Err(Error::config(
            "domainname",
            "setting the domainname needs a uts namespace in linux.namespaces",
        ));
    }
    Ok(())
}

/// Without a mount namespace the container lives in its caller's mount namespace: what would
/// remount there is refused (runc refuses masked and read-only paths, "unable to restrict sys
/// entries without a private MNT namespace"; it would apply rootfsPropagation to the caller's
/// `/`). root.readonly is honoured on the rootfs's own bind mount.
fn validate_without_mount_namespace(spec: &Spec) -> Result<()> {
    if namespaces(spec)
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::Mount)
    {
        return Ok(());
    }
    let why = "needs a mount namespace in linux.namespaces (brig never remounts its caller's)";
    if let Some(linux) = spec.linux() {
        if linux.masked_paths().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(Error::config("linux.maskedPaths", why));
        }
        if linux
            .readonly_paths()
            .as_ref()
            .is_some_and(|p| !p.is_empty())
        {
            return Err(Error::config("linux.readonlyPaths", why));
        }
        if linux
            .rootfs_propagation()
            .as_ref()
            .is_some_and(|p| !p.is_empty())
        {
            return Err(Error::config("linux.rootfsPropagation", why));
        }
    }
    Ok(())
}

/// `linux.maskedPaths` and `linux.readonlyPaths` are paths in the container: the spec says
/// they MUST be absolute.
fn validate_restricted_paths(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let lists = [
        ("linux.maskedPaths", linux.masked_paths()),
        ("linux.readonlyPaths", linux.readonly_paths()),
    ];
    for (field, paths) in lists {
        for (i, path) in paths.iter().flatten().enumerate() {
            if !path.starts_with('/') {
                return Err(Error::config(
                    format!("{field}[{i}]"),
                    format!("must be an absolute path, got {path:?}"),
                ));
            }
        }
    }
    Ok(())
}

/// Fields this host or this version cannot honour are refused: running a container without
/// the confinement it asked for would be a silent lie.
fn reject_unimplemented(spec: &Spec) -> Result<()> {
    if let Some(process) = spec.process() {
        crate::lsm::validate(
            process.apparmor_profile().as_deref(),
            process.selinux_label().as_deref(),
        )?;
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    if let Some(rdt) = linux.intel_rdt() {
        crate::intel_rdt::validate(rdt)?;
    }
    if let Some(offsets) = linux.time_offsets() {
        crate::namespaces::validate_time_offsets(offsets, namespaces(spec))?;
    }
    if let Some(devices) = linux.net_devices() {
        crate::netdev::validate(devices, namespaces(spec))?;
    }
    if linux
        .mount_label()
        .as_deref()
        .is_some_and(|l| !l.is_empty())
        && !crate::lsm::selinux_enabled()
    {
        tracing::debug!("linux.mountLabel ignored: SELinux is not enabled");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn without_a_mount_namespace_nothing_may_remount_the_callers() {
        let base = |extra: serde_json::Value| {
            let mut spec = json!({"ociVersion": "1.2.0", "root": {"path": "rootfs"},
                "linux": {"namespaces": [{"type": "pid"}]}});
            json_merge(&mut spec, extra);
            serde_json::from_value::<Spec>(spec).unwrap()
        };
        assert!(validate(&base(json!({}))).is_ok());
        for (extra, field) in [
            (
                json!({"linux": {"maskedPaths": ["/proc/kcore"]}}),
                "linux.maskedPaths",
            ),
            (
                json!({"linux": {"readonlyPaths": ["/proc/sys"]}}),
                "linux.readonlyPaths",
            ),
            (
                json!({"linux": {"rootfsPropagation": "rshared"}}),
                "linux.rootfsPropagation",
            ),
        ] {
            let err = validate(&base(extra)).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{field}: needs a mount namespace")),
                "{err}"
            );
        }
        let mut with_ns = base(json!({"linux": {"maskedPaths": ["/proc/kcore"]}}));
        let mut linux = with_ns.linux().clone().unwrap();
        linux.set_namespaces(Some(vec![
            serde_json::from_value(json!({"type": "mount"})).unwrap()
        ]));
        with_ns.set_linux(Some(linux));
        assert!(validate(&with_ns).is_ok());
    }

    fn json_merge(into: &mut serde_json::Value, from: serde_json::Value) {
        match (into, from) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    json_merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (slot, v) => *slot = v,
        }
    }

    #[test]
    fn a_process_file_without_user_runs_as_root() {
        let p = process_from_json(br#"{"args": ["true"], "cwd": "/"}"#, "p.json").unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
        let p = process_from_json(
            br#"{"args": ["true"], "cwd": "/", "user": {"uid": 7, "gid": 8}}"#,
            "p.json",
        )
        .unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (7, 8));
        let err = process_from_json(b"[1]", "p.json").unwrap_err().to_string();
        assert!(err.starts_with("p.json: "), "{err}");
    }

    fn spec(extra: serde_json::Value) -> Spec {
        let mut base = json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]}
        });
        merge(&mut base, extra);
        serde_json::from_value(base).unwrap()
    }

    fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
        match (base, extra) {
            (serde_json::Value::Object(b), serde_json::Value::Object(e)) => {
                for (k, v) in e {
                    merge(b.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (b, e) => *b = e,
        }
    }

    fn error(extra: serde_json::Value) -> String {
        validate(&spec(extra)).unwrap_err().to_string()
    }

    #[test]
    fn accepts_a_plain_config() {
        validate(&spec(json!({}))).unwrap();
        validate(&spec(json!({"hostname": "box"}))).unwrap();
    }

    #[test]
    fn names_the_bad_field() {
        assert!(
            error(json!({"ociVersion": "2.0.0"})).starts_with("ociVersion: unsupported version")
        );
        assert!(error(json!({"ociVersion": "x"})).starts_with("ociVersion:"));
        assert!(error(json!({"process": {"args": []}})).starts_with("process.args:"));
        assert!(error(json!({"process": {"cwd": "tmp"}}))
            .starts_with("process.cwd: must be an absolute"));
        assert!(error(json!({"process": {"env": ["NOEQUALS"]}})).starts_with("process.env[0]:"));
        assert!(
            error(json!({"linux": {"namespaces": [{"type": "network", "path": "x"}]}}))
                .starts_with("linux.namespaces[0].path: must be an absolute")
        );
        assert!(error(
            json!({"linux": {"namespaces": [{"type": "network"}, {"type": "network"}]}})
        )
        .contains("listed twice"));
        assert!(error(json!({"linux": {"namespaces": [{"type": "user"}]}}))
            .starts_with("linux.uidMappings"));
        assert!(
            error(json!({"linux": {"timeOffsets": {"monotonic": {"secs": 1}}}}))
                .starts_with("linux.timeOffsets: needs a new time namespace")
        );
        assert!(
            error(json!({"hostname": "h", "linux": {"namespaces": []}})).starts_with("hostname:")
        );
        assert_eq!(
            error(json!({"linux": {"maskedPaths": ["/proc/kcore", "proc/keys"]}})),
            "linux.maskedPaths[1]: must be an absolute path, got \"proc/keys\""
        );
        assert!(error(json!({"linux": {"readonlyPaths": [""]}}))
            .starts_with("linux.readonlyPaths[0]: must be an absolute path"));
    }

    #[test]
    fn load_from_bytes_checks_all_but_the_bundle_files() {
        let bytes = |extra| serde_json::to_vec(&spec(extra)).unwrap();
        // The root filesystem is not looked at: "rootfs" exists nowhere here.
        load_from_bytes(&bytes(json!({}))).unwrap();
        let err = |data: &[u8]| load_from_bytes(data).unwrap_err().to_string();
        assert!(err(b"[1]").starts_with("config.json: "));
        let mut no_root = spec(json!({}));
        no_root.set_root(None);
        assert!(err(&serde_json::to_vec(&no_root).unwrap()).starts_with("root: missing"));
        assert!(
            err(&bytes(json!({"process": {"cwd": "tmp"}}))).starts_with("process.cwd:"),
            "validate runs"
        );
        assert!(err(&bytes(
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_NOTIFY"}}})
        ))
        .starts_with("linux.seccomp.defaultAction:"));
        assert!(
            err(&bytes(json!({"linux": {"sysctl": {"kernel.panic": "1"}}})))
                .starts_with("linux.sysctl.kernel.panic:")
        );
    }

    #[test]
    fn hostname_in_a_joined_uts_namespace() {
        let joined = json!({"hostname": "h", "domainname": "d",
            "linux": {"namespaces": [{"type": "uts", "path": "/proc/1/ns/uts"}]}});
        validate(&spec(joined)).unwrap();
    }
}
