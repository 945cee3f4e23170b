//! Image config -> config.json (libcontainer::image::convert), checked by what a container run
//! from the converted config sees: its ids and groups in /proc/self/status, its environment,
//! working directory and arguments. Also the hostile passwd symlinks and hack/make-image.sh's
//! layout, validated by skopeo and umoci and run end to end.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;
use std::process::Command;

use integration::*;
use libcontainer::image::convert::{runtime_config, ConvertError, DEFAULT_PATH};
use libcontainer::image::passwd::PasswdError;
use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::Spec;
use serde_json::{json, Value};

/// Prints what the process saw, one fact a line.
const REPORT: &str = r#"#!/bin/sh
grep -E '^(Uid|Gid|Groups):' /proc/self/status
echo "cwd=$(pwd)"
env | sed 's/^/env=/'
for a in "$0" "$@"; do echo "arg=$a"; done
"#;

/// What the container reported.
#[derive(Debug, Default)]
struct Seen {
    uid: String,
    gid: String,
    groups: BTreeSet<u32>,
    cwd: String,
    env: Vec<String>,
    args: Vec<String>,
}

impl Seen {
    fn parse(out: &str) -> Seen {
        let mut seen = Seen::default();
        for line in out.lines() {
            // Real, effective, saved and filesystem ids: all four must agree.
            let ids = |rest: &str| {
                let ids: BTreeSet<&str> = rest.split_whitespace().collect();
                assert_eq!(ids.len(), 1, "ids differ: {line}");
                ids.into_iter().next().unwrap_or_default().to_string()
            };
            if let Some(rest) = line.strip_prefix("Uid:") {
                seen.uid = ids(rest);
            } else if let Some(rest) = line.strip_prefix("Gid:") {
                seen.gid = ids(rest);
            } else if let Some(rest) = line.strip_prefix("Groups:") {
                seen.groups = rest
                    .split_whitespace()
                    .map(|g| g.parse().unwrap())
                    .collect();
            } else if let Some(rest) = line.strip_prefix("cwd=") {
                seen.cwd = rest.to_string();
            } else if let Some(rest) = line.strip_prefix("env=") {
                seen.env.push(rest.to_string());
            } else if let Some(rest) = line.strip_prefix("arg=") {
                seen.args.push(rest.to_string());
            }
        }
        seen
    }

    fn env(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find_map(|e| e.strip_prefix(name)?.strip_prefix('='))
    }
}

/// A bundle whose rootfs (hack/make-rootfs.sh's) has the report script, users alice (1000,
/// in wheel and audio) and root (in wheel), and the directories the images name.
fn image_bundle(name: &str) -> Bundle {
    let b = Bundle::new(name);
    let rootfs = b.rootfs();
    b.add_script("report", REPORT);
    let mut passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    passwd.push_str("alice:x:1000:1000:Alice:/home/alice:/bin/sh\n");
    fs::write(rootfs.join("etc/passwd"), passwd).unwrap();
    let mut group = fs::read_to_string(rootfs.join("etc/group")).unwrap();
    group.push_str("wheel:x:10:alice,root\naudio:x:29:alice\nalice:x:1000:\n");
    fs::write(rootfs.join("etc/group"), group).unwrap();
    for dir in ["home/alice", "srv/app"] {
        fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    save_base(&b);
    b
}

/// Keep `brig spec`'s config aside: config.json is overwritten by each conversion.
fn save_base(b: &Bundle) {
    fs::write(b.dir.join("base.json"), b.config.to_string()).unwrap();
}

fn base(b: &Bundle) -> Spec {
    serde_json::from_slice(&fs::read(b.dir.join("base.json")).unwrap()).unwrap()
}

fn image_config(config: Value) -> ImageConfiguration {
    serde_json::from_value(json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
        "config": config,
    }))
    .unwrap()
}

/// Convert `config` against the bundle's rootfs with `brig spec`'s config as the base.
fn convert(
    b: &Bundle,
    config: &ImageConfiguration,
    args: Option<&[&str]>,
) -> Result<Spec, ConvertError> {
    runtime_config(
        config,
        &b.rootfs(),
        args.map(|a| a.iter().map(|s| s.to_string()).collect()),
        base(b),
    )
}

/// Convert, write config.json, run, and parse what the container reported.
fn run_image(b: &mut Bundle, config: Value, args: Option<&[&str]>) -> Seen {
    let spec = convert(b, &image_config(config), args).unwrap();
    b.edit(|c| *c = serde_json::to_value(&spec).unwrap());
    Seen::parse(&ok(&b.run(&unique_id("img"))))
}

fn gids(ids: &[u32]) -> BTreeSet<u32> {
    ids.iter().copied().collect()
}

#[test]
fn user_forms_as_the_container_sees_them() {
    let mut b = image_bundle("img-users");
    // (User, uid, gid, supplementary groups, HOME)
    let cases: &[(&str, &str, &str, &[u32], &str)] = &[
        ("", "0", "0", &[10], "/root"),
        ("alice", "1000", "1000", &[10, 29], "/home/alice"),
        ("1000", "1000", "1000", &[10, 29], "/home/alice"),
        ("1000:29", "1000", "29", &[], "/home/alice"),
        ("alice:wheel", "1000", "10", &[], "/home/alice"),
        ("4242:audio", "4242", "29", &[], "/"),
        ("alice:555", "1000", "555", &[], "/home/alice"),
        ("4242", "4242", "0", &[], "/"),
        ("4242:4343", "4242", "4343", &[], "/"),
    ];
    for (user, uid, gid, groups, home) in cases {
        let seen = run_image(
            &mut b,
            json!({"User": user, "Entrypoint": ["/report"]}),
            None,
        );
        assert_eq!(
            (seen.uid.as_str(), seen.gid.as_str(), &seen.groups),
            (*uid, *gid, &gids(groups)),
            "User {user:?}"
        );
        assert_eq!(seen.env("HOME"), Some(*home), "User {user:?}");
    }
}

#[test]
fn unknown_user_or_group_is_an_error_naming_it() {
    let b = image_bundle("img-unknown");
    let err = convert(
        &b,
        &image_config(json!({"User": "mallory", "Cmd": ["/report"]})),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown user \"mallory\""), "{err}");
    let err = convert(
        &b,
        &image_config(json!({"User": "alice:staff", "Cmd": ["/report"]})),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown group \"staff\""), "{err}");
}

#[test]
fn args_env_and_cwd_as_the_container_sees_them() {
    let mut b = image_bundle("img-args");
    let path = format!("PATH={DEFAULT_PATH}");

    // Entrypoint + Cmd, Env verbatim, defaults for PATH and HOME, WorkingDir.
    let seen = run_image(
        &mut b,
        json!({
            "User": "alice",
            "Entrypoint": ["/report", "ep"],
            "Cmd": ["c1", "c 2"],
            "Env": ["FOO=bar", "EMPTY=", "EQ=a=b"],
            "WorkingDir": "/srv/app",
        }),
        None,
    );
    assert_eq!(seen.args, ["/report", "ep", "c1", "c 2"]);
    assert_eq!(seen.cwd, "/srv/app");
    for want in [
        "FOO=bar",
        "EMPTY=",
        "EQ=a=b",
        &path,
        "HOME=/home/alice",
        "TERM=xterm",
    ] {
        assert!(seen.env.iter().any(|e| e == want), "{want}: {:?}", seen.env);
    }

    // An override replaces Cmd and keeps Entrypoint; no WorkingDir is /.
    let seen = run_image(
        &mut b,
        json!({"Entrypoint": ["/report"], "Cmd": ["ignored"]}),
        Some(&["o1", "o2"]),
    );
    assert_eq!(seen.args, ["/report", "o1", "o2"]);
    assert_eq!(seen.cwd, "/");

    // Cmd only, and the image's own PATH and HOME are kept.
    let seen = run_image(
        &mut b,
        json!({"Cmd": ["/report", "only"], "Env": ["PATH=/bin", "HOME=/srv"], "User": "alice"}),
        None,
    );
    assert_eq!(seen.args, ["/report", "only"]);
    assert_eq!(seen.env("PATH"), Some("/bin"));
    assert_eq!(seen.env("HOME"), Some("/srv"));
    assert_eq!(
        seen.env.iter().filter(|e| e.starts_with("PATH=")).count(),
        1
    );
    assert_eq!(
        seen.env.iter().filter(|e| e.starts_with("HOME=")).count(),
        1
    );

    // Neither Entrypoint nor Cmd.
    let err = convert(&b, &image_config(json!({"Env": ["A=1"]})), None).unwrap_err();
    assert!(matches!(err, ConvertError::NoCommand), "{err}");
}

#[test]
fn passwd_symlinks_never_read_host_files() {
    let mut b = image_bundle("img-hostile");
    let rootfs = b.rootfs();
    let passwd = rootfs.join("etc/passwd");
    let inside = "alice:x:1000:1000::/home/alice:/bin/sh\n";

    // `../../passwd` from the rootfs' /etc is the bundle directory, outside; resolved in the
    // root it is the rootfs' own /passwd.
    fs::write(b.dir.join("passwd"), "alice:x:6666:6666::/host:/bin/sh\n").unwrap();
    fs::write(rootfs.join("passwd"), inside).unwrap();
    fs::remove_file(&passwd).unwrap();
    symlink("../../passwd", &passwd).unwrap();
    let seen = run_image(&mut b, json!({"User": "alice", "Cmd": ["/report"]}), None);
    assert_eq!(
        (seen.uid.as_str(), seen.env("HOME")),
        ("1000", Some("/home/alice"))
    );

    // `/etc/shadow` is the rootfs' shadow, not the host's.
    fs::write(rootfs.join("etc/shadow"), inside).unwrap();
    fs::remove_file(&passwd).unwrap();
    symlink("/etc/shadow", &passwd).unwrap();
    let seen = run_image(&mut b, json!({"User": "alice", "Cmd": ["/report"]}), None);
    assert_eq!(seen.uid, "1000");
    // Without the rootfs' shadow there is no passwd: root is unknown (the host's shadow has
    // a root line whose third field is a number).
    fs::remove_file(rootfs.join("etc/shadow")).unwrap();
    let err = convert(
        &b,
        &image_config(json!({"User": "root", "Cmd": ["/report"]})),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(
            &err,
            ConvertError::User {
                source: PasswdError::UnknownUser { .. },
                ..
            }
        ),
        "{err}"
    );

    // An absolute path to a host file outside the rootfs.
    fs::remove_file(&passwd).unwrap();
    symlink(b.dir.join("passwd"), &passwd).unwrap();
    let err = convert(
        &b,
        &image_config(json!({"User": "alice", "Cmd": ["/report"]})),
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown user \"alice\""), "{err}");

    // A fifo would block a plain read: refused.
    fs::remove_file(&passwd).unwrap();
    let status = Command::new("mkfifo").arg(&passwd).status().unwrap();
    assert!(status.success());
    let err = convert(
        &b,
        &image_config(json!({"User": "alice", "Cmd": ["/report"]})),
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

fn run_tool(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (hack/install-deps.sh installs it)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// hack/make-image.sh's layout is valid for skopeo and umoci (which checks every digest and
/// diff_id while unpacking), and its config, converted against the unpacked rootfs, runs.
#[test]
fn make_image_layout_is_valid_and_runs() {
    let mut b = Bundle::new("img-layout");
    let layout = b.dir.join("layout");
    let digest = run_tool(
        Command::new(workspace().join("hack/make-image.sh"))
            .arg(&layout)
            .arg("test"),
    );
    let digest = digest.trim();
    assert!(digest.starts_with("sha256:"), "{digest}");

    let image = format!("oci:{}:test", layout.display());
    let inspect: Value =
        serde_json::from_str(&run_tool(Command::new("skopeo").args(["inspect", &image]))).unwrap();
    assert_eq!(inspect["Digest"], digest);
    let config: ImageConfiguration = serde_json::from_str(&run_tool(
        Command::new("skopeo").args(["inspect", "--config", &image]),
    ))
    .unwrap();

    // umoci verifies the blobs against their digests and the layer against its diff_id.
    let unpacked = b.dir.join("unpacked");
    run_tool(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:test", layout.display()))
            .arg(&unpacked),
    );
    let rootfs = b.rootfs();
    fs::remove_dir_all(&rootfs).unwrap();
    fs::rename(unpacked.join("rootfs"), &rootfs).unwrap();
    b.add_script("report", REPORT);

    // Entrypoint /bin/busybox; `-- sh /report x` replaces Cmd.
    let base: Spec = serde_json::from_value(b.config.clone()).unwrap();
    let spec = runtime_config(
        &config,
        &rootfs,
        Some(vec!["sh".into(), "/report".into(), "x".into()]),
        base,
    )
    .unwrap();
    b.edit(|c| *c = serde_json::to_value(&spec).unwrap());
    let seen = Seen::parse(&ok(&b.run(&unique_id("img-layout"))));
    assert_eq!(
        (seen.uid.as_str(), seen.gid.as_str(), &seen.groups),
        ("1000", "1000", &gids(&[100]))
    );
    assert_eq!(seen.cwd, "/home/brig");
    assert_eq!(seen.env("GREETING"), Some("hello from brig"));
    assert_eq!(seen.env("HOME"), Some("/home/brig"));
    assert_eq!(seen.args, ["/report", "x"]);
    let annotations = spec.annotations().clone().unwrap_or_default();
    assert_eq!(annotations["org.opencontainers.image.title"], "busybox");
    assert_eq!(
        annotations["org.opencontainers.image.stopSignal"],
        "SIGTERM"
    );
}
