//! The image stage run by an unprivileged user (issues 15 and 17): `brig pull REF BUNDLE`,
//! `brig spec --image --rootless` and `brig run --image` as a user the test makes, on an image
//! whose layer has a file owned by uid 1000, setuid and setgid files, directories their owner
//! may not write, a device node and privileged xattrs. Entries stay the user's with their
//! owner recorded in `user.rootlesscontainers` (umoci's rootless unpack); the container sees
//! uid 0 and what it writes belongs to the user on the host.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use integration::rootless_user::*;
use integration::*;
use serde_json::{json, Value};

/// The extra layer: python3 tarfile, pax format (xattrs as SCHILY.xattr).
const MAKE_LAYER: &str = r##"
import io, sys, tarfile
CAP = bytes([1, 0, 0, 2, 0, 0x20, 0, 0] + [0] * 12).decode("utf-8", "surrogateescape")
out = io.BytesIO()
t = tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT)
def add(name, kind=tarfile.REGTYPE, mode=0o644, uid=0, gid=0, data=b"", xattrs=None, dev=None):
    i = tarfile.TarInfo(name)
    i.type, i.mode, i.uid, i.gid, i.mtime = kind, mode, uid, gid, 1000000
    if dev:
        i.devmajor, i.devminor = dev
    if xattrs:
        i.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
    i.size = len(data) if kind == tarfile.REGTYPE else 0
    t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
add("owned", tarfile.DIRTYPE, 0o755, 1000, 1000)
add("owned/file", data=b"mine\n", uid=1000, gid=1000)
add("bin/su-test", mode=0o4755, data=b"#!/bin/sh\n")
add("bin/sg-test", mode=0o2755, gid=1000, data=b"#!/bin/sh\n")
add("locked", tarfile.DIRTYPE, 0o555)
add("locked/inner", data=b"in\n")
add("locked/sub", tarfile.DIRTYPE, 0o500)
add("locked/sub/deep", data=b"deep\n", uid=1000)
add("dev/null-test", tarfile.CHRTYPE, 0o666, dev=(1, 3))
add("fifo", tarfile.FIFOTYPE, 0o600)
add("xattrs", data=b"x\n", xattrs={"user.brig": "kept", "trusted.brig": "root only",
                                    "security.capability": CAP})
t.close()
sys.stdout.buffer.write(out.getvalue())
"##;

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(data))
}

/// A blob into the layout; its descriptor.
fn put_blob(layout: &Path, media_type: &str, data: &[u8]) -> Value {
    let hex = sha256_hex(data);
    fs::write(layout.join("blobs/sha256").join(&hex), data).unwrap();
    json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": data.len()})
}

/// hack/make-image.sh's busybox layout (`v1`: User brig, uid 1000) plus `extra`: the same
/// layer, the extra layer on top, and no User (root).
fn make_layout(dir: &Path) -> PathBuf {
    let layout = dir.join("layout");
    let out = Command::new(workspace().join("hack/make-image.sh"))
        .arg(&layout)
        .arg("v1")
        .output()
        .unwrap();
    assert!(out.status.success(), "make-image.sh: {}", stderr(&out));
    let layer = Command::new("python3")
        .args(["-c", MAKE_LAYER])
        .output()
        .unwrap();
    assert!(layer.status.success(), "python3: {}", stderr(&layer));
    let layer = layer.stdout;
    let mut index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let base_desc = index["manifests"][0].clone();
    let blob = |d: &Value| {
        let digest = d["digest"].as_str().unwrap().trim_start_matches("sha256:");
        fs::read(layout.join("blobs/sha256").join(digest)).unwrap()
    };
    let mut manifest: Value = serde_json::from_slice(&blob(&base_desc)).unwrap();
    let mut config: Value = serde_json::from_slice(&blob(&manifest["config"])).unwrap();
    config["config"]["User"] = json!("");
    config["config"]["WorkingDir"] = json!("/");
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(json!(format!("sha256:{}", sha256_hex(&layer))));
    let layer_desc = put_blob(&layout, "application/vnd.oci.image.layer.v1.tar", &layer);
    manifest["layers"].as_array_mut().unwrap().push(layer_desc);
    manifest["config"] = put_blob(
        &layout,
        "application/vnd.oci.image.config.v1+json",
        &serde_json::to_vec(&config).unwrap(),
    );
    let mut desc = put_blob(
        &layout,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    desc["platform"] = base_desc["platform"].clone();
    desc["annotations"] = json!({"org.opencontainers.image.ref.name": "extra"});
    index["manifests"].as_array_mut().unwrap().push(desc);
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    layout
}

/// The test user with the layout in its directory (readable to it).
fn setup(test: &str) -> (RootlessUser, PathBuf) {
    let u = RootlessUser::new(test);
    let layout = make_layout(u.dir());
    chown_tree(&layout, u.uid, u.gid);
    (u, layout)
}

fn image(layout: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", layout.display())
}

/// What `user.rootlesscontainers` holds for 1000:1000 (protobuf Resource{uid, gid}).
const OWNER_1000: &[u8] = &[0x08, 0xe8, 0x07, 0x10, 0xe8, 0x07];

fn owner(p: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid())
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// The rootfs a rootless unpack of `extra` wrote, entry by entry.
#[track_caller]
fn assert_rootless_rootfs(rootfs: &Path, uid: u32, gid: u32) {
    for p in [
        "",
        "owned",
        "owned/file",
        "bin/su-test",
        "locked/sub/deep",
        "fifo",
        "bin/busybox",
    ] {
        assert_eq!(owner(&rootfs.join(p)), (uid, gid), "owner of /{p}");
    }
    assert_eq!(
        fs::read_to_string(rootfs.join("owned/file")).unwrap(),
        "mine\n"
    );
    assert_eq!(
        lgetxattr(&rootfs.join("owned/file"), "user.rootlesscontainers").as_deref(),
        Some(OWNER_1000)
    );
    // 0:1000: the uid is not recorded (NoopID).
    assert_eq!(
        lgetxattr(&rootfs.join("bin/sg-test"), "user.rootlesscontainers").as_deref(),
        Some(&[0x08, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x10, 0xe8, 0x07][..])
    );
    // Root's entries carry nothing.
    assert_eq!(
        lgetxattr(&rootfs.join("bin/su-test"), "user.rootlesscontainers"),
        None
    );
    assert_eq!(mode(&rootfs.join("bin/su-test")), 0o4755);
    assert_eq!(mode(&rootfs.join("bin/sg-test")), 0o2755);
    // Directories the user could not write still got their entries, and their modes last.
    assert_eq!(mode(&rootfs.join("locked")), 0o555);
    assert_eq!(mode(&rootfs.join("locked/sub")), 0o500);
    assert!(rootfs.join("locked/inner").is_file());
    assert!(fs::symlink_metadata(rootfs.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    // No device node without privileges; user.* kept, trusted.* and the capability skipped.
    assert!(!rootfs.join("dev/null-test").exists());
    let x = rootfs.join("xattrs");
    assert_eq!(lgetxattr(&x, "user.brig").as_deref(), Some(&b"kept"[..]));
    assert_eq!(lgetxattr(&x, "trusted.brig"), None);
    assert_eq!(lgetxattr(&x, "security.capability"), None);
}

/// `brig pull REF BUNDLE` as the user, into its default store ($HOME/.local/share/brig/images
/// without XDG_DATA_HOME), then into a bundle with a rootless config.json.
#[test]
fn pull_into_store_and_bundle_as_a_user() {
    let (u, layout) = setup("imgrl-pull");
    let bundle = u.dir().join("pulled");
    let out = u.brig(&["pull", &image(&layout, "extra"), "pulled"]);
    ok(&out);
    let text = stderr(&out);
    assert!(text.contains("device node"), "{text}");
    assert!(text.contains("trusted.brig"), "{text}");
    assert!(text.contains("security.capability"), "{text}");
    assert!(text.contains("user.rootlesscontainers"), "{text}");
    let store = u.dir().join(".local/share/brig/images");
    assert!(
        store.join("index.json").is_file(),
        "no store at {}",
        store.display()
    );
    assert_eq!(owner(&store.join("index.json")), (u.uid, u.gid));
    assert_rootless_rootfs(&bundle.join("rootfs"), u.uid, u.gid);
    let config: Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let ns: Vec<&str> = config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(ns.contains(&"user") && !ns.contains(&"network"), "{ns:?}");
    assert_eq!(
        config["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": u.uid, "size": 1}])
    );
    assert_eq!(config["linux"]["resources"], Value::Null);
    assert_eq!(config["process"]["user"]["uid"], 0);
}

/// `run --image` as the user: the bundle under $XDG_RUNTIME_DIR/brig/bundles, a rootless
/// config; inside, uid 0 and the image's files owned by root; what it writes is the user's.
#[test]
fn run_image_as_a_user() {
    let (u, layout) = setup("imgrl-run");
    let id = unique_id("imgrl-run");
    let script = "id -u; stat -c '%u:%g %a' /owned/file /bin/su-test /locked; \
                  echo hi >/made-here; cat /proc/self/uid_map";
    let out = u.brig(&[
        "run",
        "--image",
        &image(&layout, "extra"),
        &id,
        "--",
        "sh",
        "-c",
        script,
    ]);
    let text = ok(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0", "{text}");
    assert_eq!(lines[1], "0:0 644", "{text}");
    assert_eq!(lines[2], "0:0 4755", "{text}");
    assert_eq!(lines[3], "0:0 555", "{text}");
    let map: Vec<&str> = lines[4].split_whitespace().collect();
    assert_eq!(map, ["0", &u.uid.to_string(), "1"], "{text}");
    let bundle = u.state_root().join("bundles").join(&id);
    assert_eq!(owner(&bundle.join("rootfs/made-here")), (u.uid, u.gid));
    assert_rootless_rootfs(&bundle.join("rootfs"), u.uid, u.gid);
    // delete removes the bundle (the container is gone, hence --force), 0555 and 0500
    // directories included.
    ok(&u.brig(&["delete", "--force", &id]));
    assert!(!bundle.exists(), "bundle left behind");

    // --rm removes it at exit.
    let id = unique_id("imgrl-rm");
    let out = ok(&u.brig(&[
        "run",
        "--rm",
        "--image",
        &image(&layout, "extra"),
        &id,
        "--",
        "true",
    ]));
    assert_eq!(out, "");
    assert!(!u.state_root().join("bundles").join(&id).exists());
    u.assert_nothing_left(&id);
}

/// `spec --image --rootless`: the image's config on runc's rootless one. An image that runs
/// as uid 1000 (make-image.sh's User brig) gets the user's subordinate ranges for ids from 1,
/// and is refused, naming the ids, when the user has none.
#[test]
fn spec_image_rootless_and_a_non_root_image_user() {
    let (u, layout) = setup("imgrl-spec");
    fs::create_dir(u.dir().join("specdir")).unwrap();
    chown_tree(&u.dir().join("specdir"), u.uid, u.gid);
    ok(&u.brig(&[
        "spec",
        "--rootless",
        "--image",
        &image(&layout, "v1"),
        "--bundle",
        "specdir",
    ]));
    let config: Value =
        serde_json::from_slice(&fs::read(u.dir().join("specdir/config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["user"]["uid"], 1000);
    assert_eq!(config["process"]["args"], json!(["/bin/busybox", "sh"]));
    assert_eq!(
        config["linux"]["uidMappings"],
        json!([
            {"containerID": 0, "hostID": u.uid, "size": 1},
            {"containerID": 1, "hostID": u.subuid, "size": 65536}
        ])
    );
    let mounts = config["mounts"].as_array().unwrap();
    let sys = mounts.iter().find(|m| m["destination"] == "/sys").unwrap();
    assert_eq!(sys["type"], "none", "{sys}");
    let pts = mounts
        .iter()
        .find(|m| m["destination"] == "/dev/pts")
        .unwrap();
    assert!(!pts.to_string().contains("gid=5"), "{pts}");
    assert_eq!(config["linux"]["resources"], Value::Null);
    assert!(!u.dir().join("specdir/rootfs").exists());

    // run --image of it: the process is uid 1000 inside, a subordinate id outside.
    let id = unique_id("imgrl-u1000");
    let out = ok(&u.brig(&[
        "run",
        "--rm",
        "--image",
        &image(&layout, "v1"),
        &id,
        "--",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map | tr -s ' ' | tr '\\n' ' '",
    ]));
    assert!(out.starts_with("1000\n"), "{out}");
    assert!(out.contains(&format!(" 1 {} 65536", u.subuid)), "{out}");

    // Without subordinate ranges: refused, naming the uid and the file, nothing left.
    {
        let _lock = USERS.lock().unwrap_or_else(|e| e.into_inner());
        for file in ["/etc/subuid", "/etc/subgid"] {
            let text = fs::read_to_string(file).unwrap();
            let kept: String = text
                .lines()
                .filter(|l| l.split(':').next() != Some(u.name.as_str()))
                .map(|l| format!("{l}\n"))
                .collect();
            fs::write(file, kept).unwrap();
        }
    }
    let id = unique_id("imgrl-nosub");
    let out = u.brig(&["run", "--image", &image(&layout, "v1"), &id, "--", "true"]);
    let err = fails(&out);
    assert!(
        err.contains("uid 1000") && err.contains("/etc/subuid"),
        "{err}"
    );
    assert!(!u.state_root().join("bundles").join(&id).exists());
    u.assert_nothing_left(&id);
}

/// Root of a user namespace (as under `podman unshare`): `unshare --map-auto` maps the user's
/// subordinate ranges, so uid 1000 lands as one of them; `unshare -r` maps the user alone, so
/// uid 1000 cannot be given and is recorded.
#[test]
fn pull_as_root_of_a_user_namespace() {
    let (u, layout) = setup("imgrl-unshare");
    let run = |args: &[&str], bundle: &str| -> Output {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid",
            &u.uid.to_string(),
            "--regid",
            &u.gid.to_string(),
            "--init-groups",
            "unshare",
        ])
        .args(args)
        .arg(&u.brig)
        .args(["pull", "--store", "store", &image(&layout, "extra"), bundle])
        .current_dir(u.dir())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", u.dir())
        .env("USER", &u.name)
        .stdin(Stdio::null());
        output_via_files(&mut cmd, u.dir())
    };
    chown_tree(u.dir(), u.uid, u.gid);
    let out = run(&["--map-root-user", "--map-auto"], "mapped");
    ok(&out);
    let rootfs = u.dir().join("mapped/rootfs");
    assert_eq!(owner(&rootfs.join("bin/busybox")), (u.uid, u.gid));
    // Container 1000 is the 1000th id of the range mapped from 1.
    assert_eq!(
        owner(&rootfs.join("owned/file")),
        (u.subuid + 999, u.subgid + 999)
    );
    assert_eq!(
        lgetxattr(&rootfs.join("owned/file"), "user.rootlesscontainers"),
        None
    );
    assert_eq!(mode(&rootfs.join("bin/su-test")), 0o4755);

    let out = run(&["--map-root-user"], "single");
    ok(&out);
    let rootfs = u.dir().join("single/rootfs");
    assert_eq!(owner(&rootfs.join("owned/file")), (u.uid, u.gid));
    assert_eq!(
        lgetxattr(&rootfs.join("owned/file"), "user.rootlesscontainers").as_deref(),
        Some(OWNER_1000)
    );
    assert!(
        stderr(&out).contains("not mapped in this user namespace"),
        "{}",
        stderr(&out)
    );
}

/// As root nothing changes: entries get their owners, nothing is recorded.
#[test]
fn root_unpack_still_chowns() {
    let dir = std::env::temp_dir().join(format!("brig-it-{}", unique_id("imgrl-root")));
    fs::create_dir_all(&dir).unwrap();
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    let _rm = Rm(dir.clone());
    let layout = make_layout(&dir);
    let out = Command::new(brig_binary())
        .args(["--root"])
        .arg(dir.join("state"))
        .args(["pull", "--store"])
        .arg(dir.join("store"))
        .arg(image(&layout, "extra"))
        .arg(dir.join("b"))
        .output()
        .unwrap();
    ok(&out);
    let rootfs = dir.join("b/rootfs");
    assert_eq!(owner(&rootfs.join("owned/file")), (1000, 1000));
    assert_eq!(
        lgetxattr(&rootfs.join("owned/file"), "user.rootlesscontainers"),
        None
    );
    assert_eq!(owner(&rootfs.join("bin/sg-test")), (0, 1000));
    assert_eq!(mode(&rootfs.join("bin/sg-test")), 0o2755);
    assert!(fs::symlink_metadata(rootfs.join("dev/null-test"))
        .unwrap()
        .file_type()
        .is_char_device());
    assert!(lgetxattr(&rootfs.join("xattrs"), "security.capability").is_some());
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(rootfs.join("locked/inner"))
        .unwrap();
    f.write_all(b"root may\n").unwrap();
}
