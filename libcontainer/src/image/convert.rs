//! An image configuration turned into the runtime `config.json`, as the image spec's
//! conversion.md says: args, env, cwd and user from `Config`, the implicit annotations and
//! `Config.Labels`; everything else (namespaces, mounts, masked and read-only paths,
//! capabilities, rlimits, terminal, root) comes from the base the caller passes, which is what
//! `brig spec` writes (`spec_template`, passed in by the CLI).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::image::{Config, ImageConfiguration};
use oci_spec::runtime::Spec;

use super::passwd::{self, PasswdError};

/// Docker's, podman's and `brig spec`'s PATH, for images that set none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// `Config.Volumes`, sorted and comma-separated: noted for the caller, not mounted (the spec
/// leaves volumes optional; a bundle's rootfs is private to its container anyway).
pub const VOLUMES_ANNOTATION: &str = "dev.brig.image.volumes";

const ANNOTATION_OS: &str = "org.opencontainers.image.os";
const ANNOTATION_ARCH: &str = "org.opencontainers.image.architecture";
const ANNOTATION_VARIANT: &str = "org.opencontainers.image.variant";
const ANNOTATION_OS_VERSION: &str = "org.opencontainers.image.os.version";
const ANNOTATION_OS_FEATURES: &str = "org.opencontainers.image.os.features";
const ANNOTATION_AUTHOR: &str = "org.opencontainers.image.author";
const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
const ANNOTATION_STOP_SIGNAL: &str = "org.opencontainers.image.stopSignal";
const ANNOTATION_EXPOSED_PORTS: &str = "org.opencontainers.image.exposedPorts";

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("image config has neither Entrypoint nor Cmd and no arguments were given")]
    NoCommand,
    #[error("image config WorkingDir {0:?} is not an absolute path")]
    RelativeWorkingDir(String),
    #[error("resolve image config User {user:?} in rootfs {rootfs}: {source}")]
    User {
        user: String,
        rootfs: PathBuf,
        source: PasswdError,
    },
}

/// The runtime config for a container of the image whose config is `image_config` and whose
/// layers are unpacked at `rootfs`. `args_override` (`-- ARGS`) replaces `Config.Cmd`; `base`
/// is the default config (`brig spec`) the image's settings are written into.
pub fn runtime_config(
    image_config: &ImageConfiguration,
    rootfs: &Path,
    args_override: Option<Vec<String>>,
    mut base: Spec,
) -> Result<Spec, ConvertError> {
    let no_config = Config::default();
    let config = image_config.config().as_ref().unwrap_or(&no_config);

    let args = process_args(config, args_override)?;
    let cwd = working_dir(config)?;
    let user_spec = config.user().as_deref().unwrap_or("");
    let exec = passwd::resolve_user(rootfs, user_spec).map_err(|source| ConvertError::User {
        user: user_spec.to_string(),
        rootfs: rootfs.to_path_buf(),
        source,
    })?;

    let mut process = base.process().clone().unwrap_or_default();
    let env = environment(
        config.env().as_deref().unwrap_or_default(),
        process.env().as_deref().unwrap_or_default(),
        &exec.home,
    );
    let mut user = process.user().clone();
    user.set_uid(exec.uid)
        .set_gid(exec.gid)
        .set_additional_gids((!exec.additional_gids.is_empty()).then_some(exec.additional_gids))
        .set_username(None);
    process
        .set_args(Some(args))
        .set_env(Some(env))
        .set_cwd(cwd)
        .set_user(user);
    base.set_process(Some(process));

    let mut annotations = base.annotations().clone().unwrap_or_default();
    annotations.extend(image_annotations(image_config, config));
    base.set_annotations((!annotations.is_empty()).then_some(annotations));
    Ok(base)
}

/// Entrypoint + Cmd; an override replaces Cmd (as `docker run IMAGE ARGS`).
fn process_args(
    config: &Config,
    args_override: Option<Vec<String>>,
) -> Result<Vec<String>, ConvertError> {
    let mut args = config.entrypoint().clone().unwrap_or_default();
    match args_override {
        Some(over) => args.extend(over),
        None => args.extend(config.cmd().iter().flatten().cloned()),
    }
    if args.is_empty() {
        return Err(ConvertError::NoCommand);
    }
    Ok(args)
}

fn working_dir(config: &Config) -> Result<PathBuf, ConvertError> {
    match config.working_dir().as_deref() {
        None | Some("") => Ok(PathBuf::from("/")),
        Some(dir) if dir.starts_with('/') => Ok(PathBuf::from(dir)),
        Some(dir) => Err(ConvertError::RelativeWorkingDir(dir.to_string())),
    }
}

fn env_name(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(name, _)| name)
}

/// `Config.Env` verbatim; then, for names it does not set, PATH (the default), the base's
/// entries (e.g. `TERM`) and HOME from passwd. Nothing the image sets is changed or removed.
fn environment(image_env: &[String], base_env: &[String], home: &str) -> Vec<String> {
    let mut env: Vec<String> = image_env.to_vec();
    let has = |env: &[String], name: &str| env.iter().any(|e| env_name(e) == name);
    if !has(&env, "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    for entry in base_env {
        if !has(&env, env_name(entry)) {
            env.push(entry.clone());
        }
    }
    if !has(&env, "HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

/// The implicit annotations, then `Config.Labels`, which take precedence over them.
fn image_annotations(image: &ImageConfiguration, config: &Config) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            out.insert(key.to_string(), v);
        }
    };
    put(ANNOTATION_OS, Some(image.os().to_string()));
    put(ANNOTATION_ARCH, Some(image.architecture().to_string()));
    put(ANNOTATION_VARIANT, image.variant().clone());
    put(ANNOTATION_OS_VERSION, image.os_version().clone());
    put(
        ANNOTATION_OS_FEATURES,
        image.os_features().as_ref().map(|f| f.join(",")),
    );
    put(ANNOTATION_AUTHOR, image.author().clone());
    put(ANNOTATION_CREATED, image.created().clone());
    put(ANNOTATION_STOP_SIGNAL, config.stop_signal().clone());
    put(
        ANNOTATION_EXPOSED_PORTS,
        sorted_list(config.exposed_ports()),
    );
    put(VOLUMES_ANNOTATION, sorted_list(config.volumes()));
    if let Some(labels) = config.labels() {
        out.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out
}

fn sorted_list(items: &Option<Vec<String>>) -> Option<String> {
    items.as_ref().map(|items| {
        let mut items = items.clone();
        items.sort();
        items.dedup();
        items.join(",")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The rootfs the conversion tests resolve users in.
    struct Rootfs(PathBuf);

    impl Rootfs {
        fn new(name: &str) -> Rootfs {
            static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let dir = std::env::temp_dir()
                .join(format!("brig-convert-{name}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("etc")).unwrap();
            std::fs::write(
                dir.join("etc/passwd"),
                "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
            )
            .unwrap();
            std::fs::write(
                dir.join("etc/group"),
                "root:x:0:\nwheel:x:10:alice\nalice:x:1000:\naudio:x:29:alice\n",
            )
            .unwrap();
            Rootfs(dir)
        }
    }

    impl Drop for Rootfs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// What `brig spec` writes (runc's default), as the base.
    fn base() -> Spec {
        let text = include_str!("../testdata/runc-spec.json");
        serde_json::from_str(text).unwrap()
    }

    fn image(config: serde_json::Value) -> ImageConfiguration {
        serde_json::from_value(json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": config,
        }))
        .unwrap()
    }

    fn convert(config: serde_json::Value) -> Result<Spec, ConvertError> {
        convert_with(config, None)
    }

    fn convert_with(
        config: serde_json::Value,
        args: Option<Vec<&str>>,
    ) -> Result<Spec, ConvertError> {
        let rootfs = Rootfs::new("t");
        runtime_config(
            &image(config),
            &rootfs.0,
            args.map(|a| a.into_iter().map(String::from).collect()),
            base(),
        )
    }

    fn args(spec: &Spec) -> Vec<String> {
        spec.process().as_ref().unwrap().args().clone().unwrap()
    }

    fn env(spec: &Spec) -> Vec<String> {
        spec.process().as_ref().unwrap().env().clone().unwrap()
    }

    fn annotations(spec: &Spec) -> HashMap<String, String> {
        spec.annotations().clone().unwrap_or_default()
    }

    #[test]
    fn entrypoint_and_cmd_are_joined() {
        let spec = convert(json!({"Entrypoint": ["/bin/ep", "-x"], "Cmd": ["a", "b"]})).unwrap();
        assert_eq!(args(&spec), ["/bin/ep", "-x", "a", "b"]);
    }

    #[test]
    fn entrypoint_only_and_cmd_only() {
        let spec = convert(json!({"Entrypoint": ["/bin/ep"]})).unwrap();
        assert_eq!(args(&spec), ["/bin/ep"]);
        let spec = convert(json!({"Cmd": ["/bin/sh", "-c", "true"]})).unwrap();
        assert_eq!(args(&spec), ["/bin/sh", "-c", "true"]);
    }

    #[test]
    fn override_replaces_cmd_only() {
        let cfg = json!({"Entrypoint": ["/bin/ep"], "Cmd": ["default"]});
        let spec = convert_with(cfg.clone(), Some(vec!["x", "y"])).unwrap();
        assert_eq!(args(&spec), ["/bin/ep", "x", "y"]);
        let spec = convert_with(json!({"Cmd": ["default"]}), Some(vec!["ls"])).unwrap();
        assert_eq!(args(&spec), ["ls"]);
        // An empty override leaves the entrypoint alone.
        let spec = convert_with(cfg, Some(vec![])).unwrap();
        assert_eq!(args(&spec), ["/bin/ep"]);
    }

    #[test]
    fn no_command_is_an_error() {
        assert!(matches!(convert(json!({})), Err(ConvertError::NoCommand)));
        assert!(matches!(
            convert_with(json!({"Cmd": ["x"]}), Some(vec![])),
            Err(ConvertError::NoCommand)
        ));
        // An image config without a `config` at all, and no arguments.
        let bare: ImageConfiguration = serde_json::from_value(json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []}
        }))
        .unwrap();
        let rootfs = Rootfs::new("bare");
        assert!(matches!(
            runtime_config(&bare, &rootfs.0, None, base()),
            Err(ConvertError::NoCommand)
        ));
        let spec = runtime_config(&bare, &rootfs.0, Some(vec!["sh".into()]), base()).unwrap();
        assert_eq!(args(&spec), ["sh"]);
    }

    #[test]
    fn env_is_verbatim_with_defaults_for_unset_names() {
        let spec = convert(json!({"Cmd": ["x"], "Env": ["A=1", "B=two=2", "C"]})).unwrap();
        assert_eq!(
            env(&spec),
            [
                "A=1",
                "B=two=2",
                "C",
                &format!("PATH={DEFAULT_PATH}"),
                "TERM=xterm",
                "HOME=/root"
            ]
        );
    }

    #[test]
    fn image_path_home_and_term_win() {
        let spec = convert(json!({
            "Cmd": ["x"], "User": "alice",
            "Env": ["PATH=/opt/bin", "HOME=/srv", "TERM=dumb"]
        }))
        .unwrap();
        assert_eq!(env(&spec), ["PATH=/opt/bin", "HOME=/srv", "TERM=dumb"]);
    }

    #[test]
    fn home_comes_from_passwd() {
        let spec = convert(json!({"Cmd": ["x"], "User": "alice"})).unwrap();
        assert!(env(&spec).contains(&"HOME=/home/alice".to_string()));
        let spec = convert(json!({"Cmd": ["x"], "User": "4242"})).unwrap();
        assert!(env(&spec).contains(&"HOME=/".to_string()));
    }

    #[test]
    fn working_dir() {
        let cwd = |s: &Spec| s.process().as_ref().unwrap().cwd().clone();
        assert_eq!(
            cwd(&convert(json!({"Cmd": ["x"]})).unwrap()),
            Path::new("/")
        );
        assert_eq!(
            cwd(&convert(json!({"Cmd": ["x"], "WorkingDir": ""})).unwrap()),
            Path::new("/")
        );
        assert_eq!(
            cwd(&convert(json!({"Cmd": ["x"], "WorkingDir": "/srv/app"})).unwrap()),
            Path::new("/srv/app")
        );
        let err = convert(json!({"Cmd": ["x"], "WorkingDir": "srv"})).unwrap_err();
        assert!(err.to_string().contains("\"srv\""), "{err}");
    }

    type Ids = (u32, u32, Option<Vec<u32>>);

    fn ids(spec: &Spec) -> Ids {
        let u = spec.process().as_ref().unwrap().user();
        (u.uid(), u.gid(), u.additional_gids().clone())
    }

    #[test]
    fn every_user_form() {
        let cases: &[(&str, Ids)] = &[
            ("", (0, 0, None)),
            ("0", (0, 0, None)),
            ("alice", (1000, 1000, Some(vec![10, 29]))),
            ("1000", (1000, 1000, Some(vec![10, 29]))),
            ("1000:29", (1000, 29, None)),
            ("alice:wheel", (1000, 10, None)),
            ("4242:wheel", (4242, 10, None)),
            ("alice:555", (1000, 555, None)),
            ("4242", (4242, 0, None)),
            ("4242:4343", (4242, 4343, None)),
        ];
        for (user, want) in cases {
            let spec = convert(json!({"Cmd": ["x"], "User": user})).unwrap();
            assert_eq!(&ids(&spec), want, "User {user:?}");
        }
    }

    #[test]
    fn unknown_user_or_group_is_an_error_naming_it() {
        let err = convert(json!({"Cmd": ["x"], "User": "mallory"})).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unknown user \"mallory\""), "{text}");
        assert!(text.contains("User \"mallory\""), "{text}");
        let err = convert(json!({"Cmd": ["x"], "User": "alice:staff"})).unwrap_err();
        assert!(err.to_string().contains("unknown group \"staff\""), "{err}");
    }

    #[test]
    fn base_additional_gids_are_replaced() {
        let rootfs = Rootfs::new("gids");
        let mut b = base();
        let mut process = b.process().clone().unwrap();
        let mut user = process.user().clone();
        user.set_additional_gids(Some(vec![99]));
        process.set_user(user);
        b.set_process(Some(process));
        let spec = runtime_config(
            &image(json!({"Cmd": ["x"], "User": "1000:1"})),
            &rootfs.0,
            None,
            b,
        )
        .unwrap();
        assert_eq!(ids(&spec), (1000, 1, None));
    }

    #[test]
    fn implicit_annotations() {
        let img: ImageConfiguration = serde_json::from_value(json!({
            "architecture": "arm64", "os": "linux", "variant": "v8",
            "os.version": "10.0", "os.features": ["a", "b"],
            "author": "Alice <a@example.com>", "created": "2026-12-04T10:00:00Z",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {
                "Cmd": ["x"], "StopSignal": "SIGRTMIN+3",
                "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
                "Volumes": {"/var/log": {}, "/data": {}}
            }
        }))
        .unwrap();
        let rootfs = Rootfs::new("ann");
        let spec = runtime_config(&img, &rootfs.0, None, base()).unwrap();
        let a = annotations(&spec);
        let want = [
            (ANNOTATION_OS, "linux"),
            (ANNOTATION_ARCH, "arm64"),
            (ANNOTATION_VARIANT, "v8"),
            (ANNOTATION_OS_VERSION, "10.0"),
            (ANNOTATION_OS_FEATURES, "a,b"),
            (ANNOTATION_AUTHOR, "Alice <a@example.com>"),
            (ANNOTATION_CREATED, "2026-12-04T10:00:00Z"),
            (ANNOTATION_STOP_SIGNAL, "SIGRTMIN+3"),
            (ANNOTATION_EXPOSED_PORTS, "53/udp,8080/tcp"),
            (VOLUMES_ANNOTATION, "/data,/var/log"),
        ];
        for (k, v) in want {
            assert_eq!(a.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert_eq!(a.len(), want.len());
    }

    #[test]
    fn labels_are_annotations_and_win() {
        let spec = convert(json!({
            "Cmd": ["x"], "StopSignal": "SIGTERM",
            "Labels": {
                "com.example.git": "abc",
                "org.opencontainers.image.os": "mine",
                "org.opencontainers.image.stopSignal": "SIGKILL"
            }
        }))
        .unwrap();
        let a = annotations(&spec);
        assert_eq!(a["com.example.git"], "abc");
        assert_eq!(a[ANNOTATION_OS], "mine");
        assert_eq!(a[ANNOTATION_STOP_SIGNAL], "SIGKILL");
        assert_eq!(a[ANNOTATION_ARCH], "amd64");
    }

    #[test]
    fn the_rest_is_the_base() {
        let b = base();
        let spec = convert(json!({"Cmd": ["x"], "User": "alice", "Env": ["A=1"]})).unwrap();
        assert_eq!(spec.linux(), b.linux());
        assert_eq!(spec.mounts(), b.mounts());
        assert_eq!(spec.root(), b.root());
        assert_eq!(spec.hostname(), b.hostname());
        let (p, bp) = (
            spec.process().as_ref().unwrap(),
            b.process().as_ref().unwrap(),
        );
        assert_eq!(p.capabilities(), bp.capabilities());
        assert_eq!(p.rlimits(), bp.rlimits());
        assert_eq!(p.no_new_privileges(), bp.no_new_privileges());
        assert_eq!(p.terminal(), bp.terminal());
    }
}
