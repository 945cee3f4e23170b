//! `brig pull` from OCI layouts, oci-archive and docker-archive into the verified store
//! (issue 14), `brig images`, `brig rmi`. Every fixture is generated here: blobs of
//! pseudo-random bytes (layers are not unpacked in this stage), configs and manifests written
//! as JSON, archives made with tar(1).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use integration::{brig_binary, fails, noise, ok, stderr, ScratchDir};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

fn sha(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// An OCI image layout being written.
struct Layout {
    dir: PathBuf,
    entries: Vec<Value>,
}

impl Layout {
    fn new(dir: PathBuf) -> Self {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let layout = Layout {
            dir,
            entries: Vec::new(),
        };
        layout.write_index();
        layout
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }

    /// Writes a blob; its descriptor.
    fn blob(&self, media_type: &str, bytes: &[u8]) -> Value {
        let digest = sha(bytes);
        fs::write(self.blob_path(&digest), bytes).unwrap();
        json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
    }

    /// An image config; the layers are uncompressed, so their digests are the diff_ids.
    fn config(&self, arch: &str, layers: &[Value]) -> Value {
        let diff_ids: Vec<&Value> = layers.iter().map(|l| &l["digest"]).collect();
        let config = json!({
            "architecture": arch, "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        self.blob(OCI_CONFIG, &serde_json::to_vec(&config).unwrap())
    }

    /// An image of `layers` (seed, size) for `arch`; its manifest descriptor.
    fn image(&self, arch: &str, layers: &[(u64, usize)]) -> Value {
        let layers: Vec<Value> = layers
            .iter()
            .map(|&(seed, len)| self.blob(LAYER, &noise(seed, len)))
            .collect();
        let manifest = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": self.config(arch, &layers), "layers": layers,
        });
        self.blob(OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap())
    }

    fn manifest_json(&self, desc: &Value) -> Value {
        let digest = desc["digest"].as_str().unwrap();
        serde_json::from_slice(&fs::read(self.blob_path(digest)).unwrap()).unwrap()
    }

    /// Lists `desc` in index.json, named `name` when given.
    fn add(&mut self, mut desc: Value, name: Option<&str>) -> Value {
        if let Some(name) = name {
            desc["annotations"] = json!({"org.opencontainers.image.ref.name": name});
        }
        self.entries.push(desc.clone());
        self.write_index();
        desc
    }

    fn write_index(&self) {
        let index = json!({"schemaVersion": 2, "manifests": self.entries});
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }

    fn reference(&self, name: Option<&str>) -> String {
        match name {
            Some(name) => format!("oci:{}:{name}", self.dir.display()),
            None => format!("oci:{}", self.dir.display()),
        }
    }
}

fn platform(desc: &Value, arch: &str, variant: Option<&str>) -> Value {
    let mut desc = desc.clone();
    desc["platform"] = json!({"os": "linux", "architecture": arch});
    if let Some(v) = variant {
        desc["platform"]["variant"] = json!(v);
    }
    desc
}

fn brig(args: &[&str]) -> Output {
    Command::new(brig_binary()).args(args).output().unwrap()
}

fn pull(store: &Path, reference: &str, extra: &[&str]) -> Output {
    let store = store.to_str().unwrap();
    let mut args = vec!["pull", "--store", store];
    args.extend_from_slice(extra);
    args.push(reference);
    brig(&args)
}

/// The manifest digest `brig pull` printed.
#[track_caller]
fn pulled(out: &Output) -> String {
    let text = ok(out);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("manifest "))
        .unwrap_or_else(|| panic!("no manifest line in {text:?}"));
    assert!(text.contains("\nconfig sha256:"), "{text}");
    line.to_string()
}

fn images(store: &Path) -> Vec<Value> {
    let out = brig(&[
        "images",
        "--format",
        "json",
        "--store",
        store.to_str().unwrap(),
    ]);
    serde_json::from_str::<Value>(&ok(&out))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Every file of the store: path → (content digest, inode, mtime). Lock files are left out:
/// they are made once and hold no data.
fn snapshot(store: &Path) -> BTreeMap<String, (String, u64, i64, i64)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (String, u64, i64, i64)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if meta.is_dir() {
                out.insert(rel.clone() + "/", (String::new(), meta.ino(), 0, 0));
                walk(root, &path, out);
            } else if !rel.starts_with(".locks/") && !rel.ends_with(".lock") {
                let content = sha(&fs::read(&path).unwrap());
                out.insert(rel, (content, meta.ino(), meta.mtime(), meta.mtime_nsec()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(store, store, &mut out);
    out
}

/// Blobs that do not hash to their names, and images whose blobs are missing.
fn store_problems(store: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let blobs = store.join("blobs/sha256");
    if !store.join("index.json").exists() {
        // Killed while the store was being made: no blob may be there yet.
        if fs::read_dir(&blobs).is_ok_and(|mut d| d.next().is_some()) {
            problems.push("blobs without an index.json".into());
        }
        return problems;
    }
    for entry in fs::read_dir(&blobs).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if sha(&fs::read(entry.path()).unwrap()) != format!("sha256:{name}") {
            problems.push(format!("blob {name} does not hash to its name"));
        }
    }
    let index: Value =
        serde_json::from_slice(&fs::read(store.join("index.json")).unwrap()).unwrap();
    for desc in index["manifests"].as_array().unwrap() {
        let path =
            |d: &Value| blobs.join(d["digest"].as_str().unwrap().trim_start_matches("sha256:"));
        let Ok(bytes) = fs::read(path(desc)) else {
            problems.push(format!("manifest {} missing", desc["digest"]));
            continue;
        };
        let manifest: Value = serde_json::from_slice(&bytes).unwrap();
        let mut blobs_of = vec![manifest["config"].clone()];
        blobs_of.extend(manifest["layers"].as_array().unwrap().iter().cloned());
        for blob in blobs_of {
            match fs::metadata(path(&blob)) {
                Ok(m) if m.len() == blob["size"].as_u64().unwrap() => {}
                _ => problems.push(format!("blob {} of an image missing", blob["digest"])),
            }
        }
    }
    problems
}

#[test]
fn every_reference_form_through_local_transports() {
    let scratch = ScratchDir::new("brig-img-refs");
    let store = scratch.path("store");
    let mut layout = Layout::new(scratch.path("layout"));
    let v1 = layout.image("amd64", &[(1, 3000), (2, 5000)]);
    let v2 = layout.image("amd64", &[(1, 3000), (3, 7000)]);
    layout.add(v1.clone(), Some("v1"));
    layout.add(v2.clone(), Some("v2"));
    let v1_digest = v1["digest"].as_str().unwrap();
    let v2_digest = v2["digest"].as_str().unwrap();

    // oci:DIR:NAME; oci:DIR with several names must name one.
    assert_eq!(
        pulled(&pull(&store, &layout.reference(Some("v1")), &[])),
        v1_digest
    );
    assert_eq!(
        pulled(&pull(&store, &layout.reference(Some("v2")), &[])),
        v2_digest
    );
    let err = fails(&pull(&store, &layout.reference(None), &[]));
    assert!(
        err.contains("index.json has 2 images") && err.contains("v1, v2"),
        "{err}"
    );
    let err = fails(&pull(&store, &layout.reference(Some("v3")), &[]));
    assert!(
        err.contains("no image named \"v3\" (names: v1, v2)"),
        "{err}"
    );

    // oci:DIR with one unnamed image.
    let mut single = Layout::new(scratch.path("single"));
    let only = single.image("amd64", &[(4, 100)]);
    single.add(only.clone(), None);
    assert_eq!(
        pulled(&pull(&store, &single.reference(None), &[])),
        only["digest"].as_str().unwrap()
    );

    // oci-archive:FILE[:NAME]: a tar of the layout.
    let archive = scratch.path("layout.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&layout.dir)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let oci_archive = format!("oci-archive:{}", archive.display());
    assert_eq!(
        pulled(&pull(&store, &format!("{oci_archive}:v2"), &[])),
        v2_digest
    );
    let err = fails(&pull(&store, &oci_archive, &[]));
    assert!(err.contains("index.json has 2 images"), "{err}");

    // docker-archive:FILE[:NAME:TAG]: manifest.json + legacy layout, with a symlinked layer
    // as docker save writes for a layer two images share.
    let saved = scratch.path("saved");
    fs::create_dir_all(saved.join("aaa")).unwrap();
    fs::create_dir_all(saved.join("bbb")).unwrap();
    fs::create_dir_all(saved.join("ccc")).unwrap();
    fs::write(saved.join("aaa/layer.tar"), noise(10, 4000)).unwrap();
    fs::write(saved.join("bbb/layer.tar"), noise(11, 6000)).unwrap();
    std::os::unix::fs::symlink("../aaa/layer.tar", saved.join("ccc/layer.tar")).unwrap();
    let config = json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha(&noise(10, 4000)), sha(&noise(11, 6000))]}});
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", sha(&config_bytes).trim_start_matches("sha256:"));
    fs::write(saved.join(&config_name), &config_bytes).unwrap();
    let config2 = json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha(&noise(10, 4000))]}});
    fs::write(
        saved.join("other.json"),
        serde_json::to_vec(&config2).unwrap(),
    )
    .unwrap();
    let manifest = json!([
        {"Config": config_name, "RepoTags": ["busybox:latest"], "Layers": ["aaa/layer.tar", "bbb/layer.tar"]},
        {"Config": "other.json", "RepoTags": ["localhost:5000/other:1"], "Layers": ["ccc/layer.tar"]},
    ]);
    fs::write(
        saved.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let docker_tar = scratch.path("docker.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&saved)
        .arg("-cf")
        .arg(&docker_tar)
        .args([
            "manifest.json",
            "aaa",
            "bbb",
            "ccc",
            &config_name,
            "other.json",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let docker = format!("docker-archive:{}", docker_tar.display());
    let a = pulled(&pull(&store, &format!("{docker}:busybox:latest"), &[]));
    // The same image by its full name: same computed digests.
    let b = pulled(&pull(
        &store,
        &format!("{docker}:docker.io/library/busybox:latest"),
        &[],
    ));
    assert_eq!(a, b);
    let c = pulled(&pull(
        &store,
        &format!("{docker}:localhost:5000/other:1"),
        &[],
    ));
    assert_ne!(a, c);
    let err = fails(&pull(&store, &docker, &[]));
    assert!(err.contains("2 images: name one"), "{err}");
    let err = fails(&pull(&store, &format!("{docker}:nope:1"), &[]));
    assert!(err.contains("no image tagged \"nope:1\""), "{err}");
    // The converted manifest points at the archive's config by its computed digest.
    let manifest: Value = serde_json::from_slice(
        &fs::read(
            store
                .join("blobs/sha256")
                .join(a.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["config"]["digest"], json!(sha(&config_bytes)));
    assert_eq!(
        manifest["layers"][1]["digest"],
        json!(sha(&noise(11, 6000)))
    );

    let names: Vec<String> = images(&store)
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 7, "{names:?}");
    assert!(names.contains(&format!("oci:{}:v1", layout.dir.display())));
    assert!(names.contains(&format!("{docker}:busybox:latest")));
    assert!(store_problems(&store).is_empty());

    // Malformed references and what is not implemented.
    let err = fails(&pull(&store, "Busybox:latest", &[]));
    assert!(err.contains("component \"Busybox\""), "{err}");
    let err = fails(&pull(&store, "oci:", &[]));
    assert!(
        err.contains("the directory after \"oci:\" is empty"),
        "{err}"
    );
    let err = fails(&pull(&store, "busybox:-x", &[]));
    assert!(err.contains("the tag \"-x\""), "{err}");
    let err = fails(&pull(
        &store,
        &layout.reference(Some("v1")),
        &["--platform", "linux"],
    ));
    assert!(err.contains("--platform"), "{err}");
    let store_s = store.to_str().unwrap();
    let reference = layout.reference(Some("v1"));
    // A BUNDLE that is not empty is refused (image_run.rs covers unpacking into one).
    let bundle = scratch.path("full-bundle");
    fs::create_dir_all(bundle.join("something")).unwrap();
    let err = fails(&brig(&[
        "pull",
        "--store",
        store_s,
        &reference,
        bundle.to_str().unwrap(),
    ]));
    assert!(err.contains("not empty"), "{err}");
}

#[test]
fn multi_arch_index_each_platform_and_no_match() {
    let scratch = ScratchDir::new("brig-img-multi");
    let store = scratch.path("store");
    let mut layout = Layout::new(scratch.path("layout"));
    let amd64 = layout.image("amd64", &[(20, 1000)]);
    let arm64 = layout.image("arm64", &[(21, 1000)]);
    let armv7 = layout.image("arm", &[(22, 1000)]);
    let mut attestation = layout.blob(
        OCI_MANIFEST,
        &fs::read(layout.blob_path(amd64["digest"].as_str().unwrap())).unwrap(),
    );
    attestation["platform"] = json!({"os": "unknown", "architecture": "unknown"});
    attestation["annotations"] = json!({"vnd.docker.reference.type": "attestation-manifest"});
    // index.json → index → index → manifests: an index that points to another index.
    let inner = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        attestation,
        platform(&amd64, "amd64", None),
        platform(&arm64, "arm64", Some("v8")),
        platform(&armv7, "arm", Some("v7")),
    ]});
    let inner = layout.blob(OCI_INDEX, &serde_json::to_vec(&inner).unwrap());
    let outer = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [inner]});
    let outer = layout.blob(OCI_INDEX, &serde_json::to_vec(&outer).unwrap());
    layout.add(outer, Some("multi"));
    let reference = layout.reference(Some("multi"));
    let digest = |d: &Value| d["digest"].as_str().unwrap().to_string();

    assert_eq!(
        pulled(&pull(&store, &reference, &["--platform", "linux/arm64"])),
        digest(&arm64)
    );
    assert_eq!(
        pulled(&pull(&store, &reference, &["--platform", "linux/arm/v7"])),
        digest(&armv7)
    );
    assert_eq!(
        pulled(&pull(&store, &reference, &["--platform", "linux/amd64"])),
        digest(&amd64)
    );
    if std::env::consts::ARCH == "x86_64" {
        assert_eq!(pulled(&pull(&store, &reference, &[])), digest(&amd64));
    }
    let before = snapshot(&store);
    let err = fails(&pull(&store, &reference, &["--platform", "linux/s390x"]));
    assert!(
        err.contains("no image for platform linux/s390x")
            && err.contains("it has: linux/amd64, linux/arm64/v8, linux/arm/v7"),
        "{err}"
    );
    assert!(!err.contains("unknown"), "{err}");
    assert_eq!(snapshot(&store), before);
    let listed = images(&store);
    assert_eq!(
        listed.len(),
        1,
        "one name, the last platform pulled: {listed:?}"
    );
    assert_eq!(listed[0]["platform"], json!("linux/amd64"));
}

#[test]
fn hostile_layouts_fail_and_leave_the_store_as_it_was() {
    let scratch = ScratchDir::new("brig-img-hostile");
    let store = scratch.path("store");
    // A store that already holds an image sharing the first layer of the hostile ones.
    let mut good = Layout::new(scratch.path("good"));
    let desc = good.image("amd64", &[(30, 2000)]);
    good.add(desc, Some("good"));
    pulled(&pull(&store, &good.reference(Some("good")), &[]));

    type Break = fn(&mut Layout, Value) -> Value;
    let cases: Vec<(&str, Break, &str)> = vec![
        (
            "tampered manifest",
            |l, d| {
                // Same size, another layer: only the digest can tell.
                let path = l.blob_path(d["digest"].as_str().unwrap());
                let text = fs::read_to_string(&path).unwrap();
                let m: Value = serde_json::from_str(&text).unwrap();
                let hex = m["layers"][2]["digest"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("sha256:");
                fs::write(&path, text.replace(hex, &"0".repeat(64))).unwrap();
                d
            },
            "digest mismatch",
        ),
        (
            "wrong config digest",
            |l, d| {
                let m = l.manifest_json(&d);
                let path = l.blob_path(m["config"]["digest"].as_str().unwrap());
                let mut bytes = fs::read(&path).unwrap();
                let last = bytes.len() - 2;
                bytes[last] = b' ';
                fs::write(path, bytes).unwrap();
                d
            },
            "config sha256:",
        ),
        (
            "wrong layer digest",
            |l, d| {
                let m = l.manifest_json(&d);
                let path = l.blob_path(m["layers"][1]["digest"].as_str().unwrap());
                let mut bytes = fs::read(&path).unwrap();
                bytes[100] ^= 1;
                fs::write(path, bytes).unwrap();
                d
            },
            "digest mismatch",
        ),
        (
            "blob shorter than its descriptor",
            |l, d| {
                rewrite(l, d, |m| {
                    let size = m["layers"][1]["size"].as_u64().unwrap();
                    m["layers"][1]["size"] = json!(size + 10);
                })
            },
            "the content has",
        ),
        (
            "blob longer than its descriptor",
            |l, d| {
                rewrite(l, d, |m| {
                    let size = m["layers"][1]["size"].as_u64().unwrap();
                    m["layers"][1]["size"] = json!(size - 10);
                })
            },
            "is longer than",
        ),
        (
            "index with a wrong size",
            |_, mut d| {
                d["size"] = json!(d["size"].as_u64().unwrap() + 1);
                d
            },
            "size mismatch",
        ),
        (
            "missing blob",
            |l, d| {
                let m = l.manifest_json(&d);
                fs::remove_file(l.blob_path(m["layers"][2]["digest"].as_str().unwrap())).unwrap();
                d
            },
            "not found",
        ),
        (
            "artifact",
            |l, d| {
                rewrite(l, d, |m| {
                    m["artifactType"] = json!("application/vnd.example.sbom");
                })
            },
            "artifactType application/vnd.example.sbom",
        ),
        (
            "non-image config",
            |l, d| {
                rewrite(l, d, |m| {
                    m["config"]["mediaType"] = json!("application/vnd.cncf.helm.config.v1+json");
                })
            },
            "not an image config",
        ),
        (
            "unknown layer media type",
            |l, d| {
                rewrite(l, d, |m| {
                    m["layers"][1]["mediaType"] = json!("application/x-unknown");
                })
            },
            "not a layer brig can unpack",
        ),
        (
            "schema1",
            |l, _| {
                let m = json!({"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": [], "history": []});
                l.blob(
                    "application/vnd.docker.distribution.manifest.v1+prettyjws",
                    &serde_json::to_vec(&m).unwrap(),
                )
            },
            "schema 1",
        ),
        (
            "diff_ids that do not match the layers",
            |l, d| {
                rewrite(l, d, |m| {
                    let layers = m["layers"].as_array().unwrap()[..2].to_vec();
                    m["layers"] = json!(layers);
                })
            },
            "diff_ids for the manifest's 2 layers",
        ),
    ];
    for (n, (name, breaker, expected)) in cases.into_iter().enumerate() {
        let mut layout = Layout::new(scratch.path(&format!("case{n}")));
        // Layer 0 is the good image's; layers 1 and 2 are new.
        let desc = layout.image(
            "amd64",
            &[(30, 2000), (31 + n as u64, 300_000), (60 + n as u64, 500)],
        );
        let desc = breaker(&mut layout, desc);
        layout.add(desc, Some("bad"));
        let before = snapshot(&store);
        let err = fails(&pull(&store, &layout.reference(Some("bad")), &[]));
        assert!(err.contains(expected), "{name}: {err:?} lacks {expected:?}");
        assert_eq!(snapshot(&store), before, "{name}: the store changed");
    }
    assert_eq!(images(&store).len(), 1);
    assert!(store_problems(&store).is_empty());
}

/// Rewrites the manifest `desc` points to with `edit`; the new descriptor.
fn rewrite(layout: &mut Layout, desc: Value, edit: impl Fn(&mut Value)) -> Value {
    let mut manifest = layout.manifest_json(&desc);
    edit(&mut manifest);
    layout.blob(OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap())
}

#[test]
fn second_pull_writes_nothing_and_shared_layers_are_stored_once() {
    let scratch = ScratchDir::new("brig-img-again");
    let store = scratch.path("store");
    let mut layout = Layout::new(scratch.path("layout"));
    let a = layout.image("amd64", &[(40, 10_000), (41, 20_000)]);
    let b = layout.image("amd64", &[(40, 10_000), (42, 30_000)]);
    layout.add(a, Some("a"));
    layout.add(b, Some("b"));
    let first = pull(&store, &layout.reference(Some("a")), &[]);
    assert!(stderr(&first).contains(": 4 blobs"), "{}", stderr(&first));
    let before = snapshot(&store);
    let again = pull(&store, &layout.reference(Some("a")), &[]);
    pulled(&again);
    assert!(
        stderr(&again).contains(": 0 blobs (0.0 MB)"),
        "{}",
        stderr(&again)
    );
    assert_eq!(snapshot(&store), before, "a second pull wrote to the store");
    // b shares a layer: only its own three blobs are transferred.
    let other = pull(&store, &layout.reference(Some("b")), &["--quiet"]);
    pulled(&other);
    assert_eq!(stderr(&other), "", "--quiet prints nothing on stderr");
    assert_eq!(
        fs::read_dir(store.join("blobs/sha256")).unwrap().count(),
        4 + 3
    );
}

#[test]
fn concurrent_pulls_of_overlapping_images() {
    let scratch = ScratchDir::new("brig-img-concurrent");
    let store = scratch.path("store");
    let mut layout = Layout::new(scratch.path("layout"));
    let shared = [(50, 2 << 20), (51, 2 << 20)];
    let a = layout.image("amd64", &[shared[0], shared[1], (52, 1 << 20)]);
    let b = layout.image("amd64", &[shared[0], shared[1], (53, 1 << 20)]);
    layout.add(a, Some("a"));
    layout.add(b, Some("b"));
    let children: Vec<_> = ["a", "b", "a", "b"]
        .iter()
        .map(|name| {
            Command::new(brig_binary())
                .args(["pull", "--quiet", "--store", store.to_str().unwrap()])
                .arg(layout.reference(Some(name)))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        pulled(&child.wait_with_output().unwrap());
    }
    assert_eq!(images(&store).len(), 2);
    assert_eq!(
        fs::read_dir(store.join("blobs/sha256")).unwrap().count(),
        2 * 2 + 3 + 1
    );
    assert!(
        store_problems(&store).is_empty(),
        "{:?}",
        store_problems(&store)
    );
    assert_eq!(fs::read_dir(store.join(".tmp")).unwrap().count(), 0);
}

#[test]
fn pull_killed_then_repeated() {
    let scratch = ScratchDir::new("brig-img-killed");
    let store = scratch.path("store");
    let mut layout = Layout::new(scratch.path("layout"));
    let image = layout.image("amd64", &[(70, 4 << 20), (71, 4 << 20), (72, 4 << 20)]);
    layout.add(image.clone(), Some("big"));
    let reference = layout.reference(Some("big"));
    for delay in [0u64, 5, 15, 40, 100, 250] {
        let mut child = Command::new(brig_binary())
            .args([
                "pull",
                "--quiet",
                "--store",
                store.to_str().unwrap(),
                &reference,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert!(
            store_problems(&store).is_empty(),
            "after a kill at {delay} ms: {:?}",
            store_problems(&store)
        );
    }
    assert_eq!(
        pulled(&pull(&store, &reference, &[])),
        image["digest"].as_str().unwrap()
    );
    assert!(store_problems(&store).is_empty());
    assert_eq!(images(&store).len(), 1);
}

#[test]
fn rmi_collects_only_what_no_image_uses() {
    let scratch = ScratchDir::new("brig-img-rmi");
    let store = scratch.path("store");
    let s = store.to_str().unwrap();
    let mut layout = Layout::new(scratch.path("layout"));
    let a = layout.image("amd64", &[(80, 1000), (81, 1000)]);
    let b = layout.image("amd64", &[(80, 1000), (82, 1000)]);
    layout.add(a.clone(), Some("a"));
    layout.add(b.clone(), Some("b"));
    pulled(&pull(&store, &layout.reference(Some("a")), &[]));
    pulled(&pull(&store, &layout.reference(Some("b")), &[]));
    let blobs = || fs::read_dir(store.join("blobs/sha256")).unwrap().count();
    assert_eq!(blobs(), 4 + 3);

    // By the name as typed on the command line.
    let out = ok(&brig(&["rmi", "--store", s, &layout.reference(Some("a"))]));
    assert!(
        out.contains("untagged oci:") && out.contains("(3 blobs,"),
        "{out}"
    );
    assert_eq!(blobs(), 4, "b's manifest, config and both layers stay");
    assert!(store
        .join("blobs/sha256")
        .join(sha(&noise(80, 1000)).trim_start_matches("sha256:"))
        .exists());
    assert!(store_problems(&store).is_empty());

    // By a prefix of the manifest digest.
    let prefix = &b["digest"].as_str().unwrap()["sha256:".len().."sha256:".len() + 12];
    ok(&brig(&["rmi", "--store", s, prefix]));
    assert_eq!(blobs(), 0);
    assert!(images(&store).is_empty());
    let err = fails(&brig(&["rmi", "--store", s, "nothing:here"]));
    assert!(
        err.contains("image \"nothing:here\"") && err.contains("not found"),
        "{err}"
    );
}
