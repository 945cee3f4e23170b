//! From an image to a running container (issue 15): `brig pull REF BUNDLE`, `brig spec --image`
//! and `brig run --image` on the OCI layout hack/make-image.sh builds, checked by what the
//! container saw; and the failures, which leave no bundle, state or store entry behind.

use std::fs;

use std::process::Command;

use integration::image::ImageScratch;
use integration::*;
use serde_json::Value;

/// hack/make-image.sh's busybox layout, a store and a state root (integration::image).
type Scratch = ImageScratch;

#[test]
fn pull_into_a_bundle_writes_rootfs_and_config() {
    let s = Scratch::new("img-pull-bundle");
    let bundle = s.0.join("bundle");
    let out = s.pull(&[], &bundle);
    ok(&out);
    assert!(bundle.join("rootfs/bin/busybox").is_file());
    // The layer's owner for the user's home, not the puller's.
    let meta = fs::metadata(bundle.join("rootfs/home/brig")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 1000);
    let config: Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["process"]["args"],
        serde_json::json!(["/bin/busybox", "sh"])
    );
    assert_eq!(config["process"]["cwd"], "/home/brig");
    assert_eq!(config["process"]["user"]["uid"], 1000);
    assert_eq!(config["root"]["path"], "rootfs");

    // A bundle directory that is not empty is refused and left as it was.
    let err = fails(&s.pull(&[], &bundle));
    assert!(err.contains("not empty"), "{err}");
    assert!(bundle.join("rootfs/bin/busybox").is_file());

    // --rootfs-only and --config-only.
    let only_rootfs = s.0.join("only-rootfs");
    ok(&s.pull(&["--rootfs-only"], &only_rootfs));
    assert!(only_rootfs.join("rootfs/bin/busybox").is_file());
    assert!(!only_rootfs.join("config.json").exists());
    let only_config = s.0.join("only-config");
    ok(&s.pull(&["--config-only"], &only_config));
    assert!(only_config.join("config.json").is_file());
    let left: Vec<_> = fs::read_dir(&only_config)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

#[test]
fn spec_image_writes_the_converted_config() {
    let s = Scratch::new("img-spec");
    let dir = s.0.join("b");
    fs::create_dir_all(&dir).unwrap();
    ok(&s.brig(&[
        "spec",
        "--bundle",
        dir.to_str().unwrap(),
        "--image",
        &s.image(),
        "--store",
        s.store().to_str().unwrap(),
    ]));
    let config: Value =
        serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["process"]["env"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e == &"GREETING=hello from brig")
            .count(),
        1
    );
    let left: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 1, "only config.json: {left:?}");
}

#[test]
fn run_image_runs_what_the_image_says() {
    let s = Scratch::new("img-run");
    let id = unique_id("img-run");
    let script =
        "id -u; id -g; pwd; echo \"$GREETING\"; touch /home/brig/written && echo writable; exit 7";
    let out = s.run_image(&[], &["--rm", &id, "--", "sh", "-c", script]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(
        lines,
        ["1000", "1000", "/home/brig", "hello from brig", "writable"]
    );
    // --rm: no bundle; the container is gone.
    assert!(!s.root().join("bundles").join(&id).exists());
    assert!(!s.root().join(&id).exists());

    // Without --rm the bundle stays until `delete` (here: --keep keeps the container).
    let id2 = unique_id("img-keep");
    let out = s.run_image(&[], &["--keep", &id2, "--", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(s
        .root()
        .join("bundles")
        .join(&id2)
        .join("rootfs/bin/busybox")
        .exists());
    ok(&s.brig(&["delete", &id2]));
    assert!(!s.root().join("bundles").join(&id2).exists());

    // Detached: the container's cgroup is brig-ID below this test's own, on every hierarchy.
    let id3 = unique_id("img-detach");
    let out = s.run_image(&[], &["--detach", &id3, "--", "sleep", "100"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let state: Value = serde_json::from_str(&ok(&s.brig(&["state", &id3]))).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let theirs = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let suffix = format!("/brig-{id3}");
    let mut placed = 0;
    for (mine, line) in own.lines().zip(theirs.lines()) {
        let (mine, line) = (
            mine.rsplit(':').next().unwrap(),
            line.rsplit(':').next().unwrap(),
        );
        if line.ends_with(&suffix) {
            assert_eq!(
                line,
                format!("{}{suffix}", mine.trim_end_matches('/')),
                "{theirs}"
            );
            placed += 1;
        }
    }
    assert!(
        placed > 0,
        "no hierarchy has the container in brig-{id3}: {theirs}"
    );
    ok(&s.brig(&["delete", "--force", &id3]));
    assert!(!s.root().join("bundles").join(&id3).exists());
}

#[test]
fn run_image_failures_leave_nothing_behind() {
    let s = Scratch::new("img-run-bad");
    let store = s.store();
    let id = unique_id("img-bad");
    // No such image.
    let missing = format!("oci:{}:nope", s.layout().display());
    let err = fails(&s.brig(&[
        "run",
        "--image",
        &missing,
        "--store",
        store.to_str().unwrap(),
        &id,
    ]));
    assert!(err.contains("nope"), "{err}");
    assert!(!s.root().join("bundles").join(&id).exists());
    assert!(!s.root().join(&id).exists());
    // The container cannot be created (its pid file cannot be written): the bundle goes too.
    let pid_file = s.0.join("no/such/dir/pid");
    let err = fails(&s.run_image(
        &[],
        &["--pid-file", pid_file.to_str().unwrap(), &id, "--", "true"],
    ));
    assert!(err.contains("no/such/dir/pid"), "{err}");
    assert!(!s.root().join("bundles").join(&id).exists());
    assert!(!s.root().join(&id).exists());
    // --rm with --detach is refused.
    fails(&s.brig(&["run", "--image", &s.image(), "--rm", "--detach", &id]));
}

/// The whole path from a registry: `brig pull` of a reference on a local registry behind a
/// front that wants Bearer tokens and redirects blobs to another host; a second pull
/// transfers no blob; `run --image` of the same reference runs from the store.
#[test]
fn pull_and_run_from_a_registry() {
    use integration::registry::{self, Behaviour, Front, TestRegistry};
    if !registry::available() {
        eprintln!("skipped: docker-registry, skopeo or busybox-static not installed (hack/install-deps.sh)");
        return;
    }
    let s = Scratch::new("img-registry");
    // TestRegistry::push copies the layout's `latest`.
    let layout = s.0.join("layout-latest");
    let out = Command::new(workspace().join("hack/make-image.sh"))
        .arg(&layout)
        .output()
        .unwrap();
    assert!(out.status.success(), "make-image.sh: {}", stderr(&out));
    let reg = TestRegistry::start(false);
    reg.push(&layout, "brig/busybox", "v1");
    let front = Front::start(
        &reg.addr,
        Behaviour {
            bearer: true,
            anonymous_tokens: true,
            redirect_blobs: true,
            ..Behaviour::default()
        },
    );
    let reference = format!("{}/brig/busybox:v1", front.addr);
    let store = s.store();
    let store = store.to_str().unwrap();
    let out = ok(&s.brig(&["pull", "--quiet", "--store", store, &reference]));
    assert!(out.contains("manifest sha256:"), "{out}");
    let blob_gets = |front: &Front| {
        front
            .seen()
            .iter()
            .filter(|r| r.method == "GET" && r.path.contains("/blobs/"))
            .count()
    };
    assert!(blob_gets(&front) >= 2, "config and layer were fetched");
    front.clear();
    ok(&s.brig(&["pull", "--quiet", "--store", store, &reference]));
    assert_eq!(blob_gets(&front), 0, "a second pull transfers no blob");

    let id = unique_id("img-reg-run");
    let out = s.brig(&[
        "run",
        "--image",
        &reference,
        "--store",
        store,
        "--rm",
        &id,
        "--",
        "sh",
        "-c",
        "id -u; echo $GREETING",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        ["1000", "hello from brig"]
    );
    assert_eq!(
        blob_gets(&front),
        0,
        "run --image found the image in the store"
    );
}
