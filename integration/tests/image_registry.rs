//! The registry client (libcontainer::image::registry) against a real registry on loopback:
//! Debian's docker-registry, anonymous and htpasswd Basic, and integration's `Front` proxy for
//! Bearer tokens, redirects, 503s and dropped connections. Library calls, offline.

use std::io::Read;
use std::time::Duration;

use integration::registry::{self, Behaviour, Front, Layout, TestRegistry, PASSWORD, USER};
use libcontainer::image::registry::{
    Credentials, Registry, RegistryOptions, MEDIA_TYPE_OCI_MANIFEST,
};

const REPO: &str = "brig/busybox";

macro_rules! require_tools {
    () => {
        if !registry::available() {
            eprintln!("skipped: docker-registry, skopeo or busybox-static not installed (hack/install-deps.sh)");
            return;
        }
    };
}

fn opts(creds: Option<(&str, &str)>) -> RegistryOptions {
    RegistryOptions {
        creds: creds.map(|(u, p)| Credentials {
            username: u.to_string(),
            password: p.to_string(),
        }),
        backoff: Duration::from_millis(20),
        ..RegistryOptions::default()
    }
}

fn setup(htpasswd: bool) -> (TestRegistry, Layout) {
    let reg = TestRegistry::start(htpasswd);
    let layout = registry::build_layout();
    reg.push(&layout.dir, REPO, "v1");
    (reg, layout)
}

fn read_blob(r: &Registry, digest: &str) -> Vec<u8> {
    let mut out = Vec::new();
    r.blob(digest, 0).unwrap().read_to_end(&mut out).unwrap();
    out
}

/// Manifest by tag, then by the digest the registry claimed, then the config and the layer.
fn pull_all(r: &Registry, layout: &Layout) {
    r.ping().unwrap();
    let by_tag = r.manifest("v1", &[]).unwrap();
    assert_eq!(by_tag.media_type, MEDIA_TYPE_OCI_MANIFEST);
    let digest = by_tag
        .content_digest
        .clone()
        .expect("Docker-Content-Digest");
    let by_digest = r.manifest(&digest, &[]).unwrap();
    assert_eq!(by_tag.bytes, by_digest.bytes);
    assert_eq!(
        read_blob(r, &layout.config_digest),
        layout.blob(&layout.config_digest)
    );
    let layer = r.blob(&layout.layer_digest, 0).unwrap();
    assert_eq!(
        layer.size(),
        Some(layout.blob(&layout.layer_digest).len() as u64)
    );
    assert_eq!(
        read_blob(r, &layout.layer_digest),
        layout.blob(&layout.layer_digest)
    );
}

#[test]
fn anonymous_ping_manifest_blob_and_errors() {
    require_tools!();
    let (reg, layout) = setup(false);
    let r = Registry::new(&reg.addr, REPO, opts(None)).unwrap();
    pull_all(&r, &layout);

    let err = r.manifest("nope", &[]).unwrap_err();
    assert_eq!(err.code(), Some("MANIFEST_UNKNOWN"), "{err}");
    let msg = err.to_string();
    for part in [reg.addr.as_str(), REPO, "nope", "manifest unknown"] {
        assert!(msg.contains(part), "{part} not in {msg}");
    }
    let missing = format!("sha256:{}", "0".repeat(64));
    let err = r.blob(&missing, 0).err().unwrap();
    assert_eq!(err.code(), Some("BLOB_UNKNOWN"), "{err}");
    let other = Registry::new(&reg.addr, "brig/absent", opts(None)).unwrap();
    let err = other.manifest("v1", &[]).unwrap_err();
    assert!(
        matches!(err.code(), Some("NAME_UNKNOWN" | "MANIFEST_UNKNOWN")),
        "{err}"
    );
}

#[test]
fn basic_auth_htpasswd() {
    require_tools!();
    let (reg, layout) = setup(true);
    let r = Registry::new(&reg.addr, REPO, opts(Some((USER, PASSWORD)))).unwrap();
    pull_all(&r, &layout);

    // Credentials from an auth file, matched by host.
    let authfile = reg.dir.join("auth.json");
    std::fs::write(
        &authfile,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
            reg.addr,
            registry::auth_entry(USER, PASSWORD)
        ),
    )
    .unwrap();
    let mut o = opts(None);
    o.auth_files.explicit = Some(authfile);
    let r = Registry::new(&reg.addr, REPO, o).unwrap();
    assert!(r.manifest("v1", &[]).is_ok());

    let wrong = Registry::new(&reg.addr, REPO, opts(Some((USER, "wrong")))).unwrap();
    let err = wrong.manifest("v1", &[]).unwrap_err();
    assert_eq!(err.code(), Some("UNAUTHORIZED"), "{err}");
    let msg = err.to_string();
    for part in [reg.addr.as_str(), REPO, "v1"] {
        assert!(msg.contains(part), "{part} not in {msg}");
    }
    assert!(wrong.ping().is_err());

    let none = Registry::new(&reg.addr, REPO, opts(None)).unwrap();
    let err = none.manifest("v1", &[]).unwrap_err();
    assert_eq!(err.code(), Some("UNAUTHORIZED"), "{err}");
    assert!(err.to_string().contains("--creds"), "{err}");
}

#[test]
fn bearer_tokens_cached_per_scope_and_refetched_on_401() {
    require_tools!();
    let (reg, layout) = setup(false);
    let front = Front::start(
        &reg.addr,
        Behaviour {
            bearer: true,
            ..Behaviour::default()
        },
    );
    let r = Registry::new(&front.addr, REPO, opts(Some((USER, PASSWORD)))).unwrap();
    pull_all(&r, &layout);
    let tokens = |f: &Front| f.seen().iter().filter(|s| s.listener == "token").count();
    // One token for the ping (no scope), one for the repository: the rest came from the cache.
    assert_eq!(tokens(&front), 2, "{:#?}", front.seen());
    let token_req = front
        .seen()
        .into_iter()
        .find(|s| s.listener == "token" && s.path.contains("scope="))
        .unwrap();
    assert!(
        token_req.path.contains("service=brig-test"),
        "{}",
        token_req.path
    );
    assert!(token_req
        .header("authorization")
        .is_some_and(|a| a.starts_with("Basic ")));

    // Tokens revoked: the next request gets 401, the client fetches a new one, once.
    front
        .behaviour()
        .token_generation
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    r.manifest("v1", &[]).unwrap();
    assert_eq!(tokens(&front), 3);

    let wrong = Registry::new(&front.addr, REPO, opts(Some((USER, "wrong")))).unwrap();
    let err = wrong.manifest("v1", &[]).unwrap_err();
    assert_eq!(err.code(), Some("UNAUTHORIZED"), "{err}");
    assert!(
        err.to_string().contains("incorrect username or password"),
        "{err}"
    );

    let missing = r.manifest("v9", &[]).unwrap_err();
    assert_eq!(missing.code(), Some("MANIFEST_UNKNOWN"), "{missing}");

    // Anonymous tokens.
    let anon_front = Front::start(
        &reg.addr,
        Behaviour {
            bearer: true,
            anonymous_tokens: true,
            ..Behaviour::default()
        },
    );
    let anon = Registry::new(&anon_front.addr, REPO, opts(None)).unwrap();
    pull_all(&anon, &layout);
}

#[test]
fn redirected_blobs_lose_authorization_off_host() {
    require_tools!();
    let (reg, layout) = setup(false);
    let front = Front::start(
        &reg.addr,
        Behaviour {
            bearer: true,
            redirect_blobs: true,
            ..Behaviour::default()
        },
    );
    let r = Registry::new(&front.addr, REPO, opts(Some((USER, PASSWORD)))).unwrap();
    assert_eq!(
        read_blob(&r, &layout.layer_digest),
        layout.blob(&layout.layer_digest)
    );
    let seen = front.seen();
    let at_front = seen
        .iter()
        .rfind(|s| s.listener == "front" && s.path.contains("/blobs/"))
        .unwrap();
    assert!(
        at_front
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer ")),
        "{seen:#?}"
    );
    let at_cdn: Vec<_> = seen.iter().filter(|s| s.listener == "cdn").collect();
    assert_eq!(at_cdn.len(), 1, "{seen:#?}");
    assert_eq!(
        at_cdn[0].header("authorization"),
        None,
        "Authorization sent off-host: {seen:#?}"
    );
}

#[test]
fn retries_a_503_and_resumes_a_dropped_blob_with_range() {
    require_tools!();
    let (reg, layout) = setup(false);
    let front = Front::start(&reg.addr, Behaviour::default());
    front
        .behaviour()
        .fail_503
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let r = Registry::new(&front.addr, REPO, opts(None)).unwrap();
    r.manifest("v1", &[]).unwrap();
    let manifests = front
        .seen()
        .iter()
        .filter(|s| s.path.contains("/manifests/"))
        .count();
    assert_eq!(manifests, 3, "two 503s then the answer");

    front.clear();
    let cut = 256 * 1024;
    front
        .behaviour()
        .drop_blob_after
        .store(cut, std::sync::atomic::Ordering::SeqCst);
    let layer = layout.blob(&layout.layer_digest);
    assert!(layer.len() as u64 > 2 * cut);
    assert_eq!(read_blob(&r, &layout.layer_digest), layer);
    let gets: Vec<_> = front
        .seen()
        .into_iter()
        .filter(|s| s.path.contains("/blobs/"))
        .collect();
    assert_eq!(gets.len(), 2, "{gets:#?}");
    assert_eq!(gets[0].header("range"), None);
    assert_eq!(
        gets[1].header("range"),
        Some(format!("bytes={cut}-").as_str())
    );

    // A reader opened at an offset starts there.
    let mut tail = Vec::new();
    r.blob(&layout.layer_digest, 100)
        .unwrap()
        .read_to_end(&mut tail)
        .unwrap();
    assert_eq!(tail, layer[100..]);
}

/// A loopback registry serving TLS with its own CA: trusted through `ca_files` (the option
/// behind an extra CA file; /etc/containers/certs.d/HOST:PORT/*.crt works the same way), and
/// refused with a certificate error, not a plain-HTTP fallback, without it.
#[test]
fn tls_with_an_extra_ca() {
    require_tools!();
    let reg = TestRegistry::start_with(true, true);
    let layout = registry::build_layout();
    reg.push(&layout.dir, REPO, "v1");
    let mut o = opts(Some((USER, PASSWORD)));
    o.ca_files = vec![reg.ca.clone().unwrap()];
    let r = Registry::new(&reg.addr, REPO, o).unwrap();
    pull_all(&r, &layout);

    let untrusted = Registry::new(&reg.addr, REPO, opts(Some((USER, PASSWORD)))).unwrap();
    let started = std::time::Instant::now();
    let err = untrusted.manifest("v1", &[]).unwrap_err().to_string();
    eprintln!("{err}");
    // A certificate error is not retried.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(err.contains(&format!("https://{}", reg.addr)), "{err}");
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// `brig pull` from the registry: hostile answers, multi-arch indexes, Retry-After, credential
// helpers, unreachable hosts. Images are uploaded byte for byte with put_blob/put_manifest.

mod cli {
    use std::collections::BTreeMap;
    use std::fs;
    use std::path::Path;
    use std::process::{Command, Output};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant, SystemTime};

    use integration::registry::{
        self, sha256, Answer, Behaviour, Front, Rewrite, Seen, TestRegistry,
    };
    use integration::{brig_binary, fails, noise, ok, ScratchDir};
    use serde_json::{json, Value};

    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    fn desc(media_type: &str, bytes: &[u8]) -> Value {
        json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
    }

    /// An image of uncompressed layers (so their digests are the diff_ids) uploaded to
    /// `repo`; the manifest's bytes. `edit` may change the config before it is uploaded.
    pub fn put_image(
        reg: &TestRegistry,
        repo: &str,
        arch: &str,
        seeds: &[u64],
        docker: bool,
        edit: impl Fn(&mut Value),
    ) -> Vec<u8> {
        let (layer_type, config_type, manifest_type) = if docker {
            (DOCKER_LAYER, DOCKER_CONFIG, DOCKER_MANIFEST)
        } else {
            (LAYER, OCI_CONFIG, OCI_MANIFEST)
        };
        let layers: Vec<Value> = seeds
            .iter()
            .map(|&seed| {
                let bytes = noise(seed, 20_000 + seed as usize);
                reg.put_blob(repo, &bytes);
                desc(layer_type, &bytes)
            })
            .collect();
        let mut config = json!({
            "architecture": arch, "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l["digest"].clone()).collect::<Vec<_>>()},
        });
        edit(&mut config);
        let config = serde_json::to_vec(&config).unwrap();
        reg.put_blob(repo, &config);
        let manifest = json!({
            "schemaVersion": 2, "mediaType": manifest_type,
            "config": desc(config_type, &config), "layers": layers,
        });
        serde_json::to_vec(&manifest).unwrap()
    }

    fn brig(args: &[&str], path_prefix: Option<&Path>) -> Output {
        let mut cmd = Command::new(brig_binary());
        cmd.args(args);
        if let Some(dir) = path_prefix {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{path}", dir.display()));
        }
        cmd.output().unwrap()
    }

    pub fn pull(store: &Path, reference: &str, extra: &[&str]) -> Output {
        pull_with_path(store, reference, extra, None)
    }

    fn pull_with_path(
        store: &Path,
        reference: &str,
        extra: &[&str],
        path: Option<&Path>,
    ) -> Output {
        let store = store.to_str().unwrap();
        let mut args = vec!["pull", "--quiet", "--store", store];
        args.extend_from_slice(extra);
        args.push(reference);
        brig(&args, path)
    }

    /// The manifest digest `brig pull` printed.
    #[track_caller]
    pub fn pulled(out: &Output) -> String {
        let text = ok(out);
        text.lines()
            .find_map(|l| l.strip_prefix("manifest "))
            .unwrap_or_else(|| panic!("no manifest line in {text:?}"))
            .to_string()
    }

    /// Every file of the store with its content digest, lock stripes left out (checked by
    /// `no_leftovers`).
    fn snapshot(store: &Path) -> BTreeMap<String, String> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                if path.is_dir() {
                    out.insert(rel.clone() + "/", String::new());
                    walk(root, &path, out);
                } else if !rel.starts_with(".locks/") {
                    out.insert(rel, sha256(&fs::read(&path).unwrap()));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(store, store, &mut out);
        out
    }

    /// Nothing a failed pull could leave: no staged or partial blob in `.tmp/`, no temp file,
    /// and `.locks/` only the empty per-prefix lock files (flock locks, released with the
    /// process that held them).
    #[track_caller]
    fn no_leftovers(store: &Path, case: &str) {
        let tmp: Vec<_> = fs::read_dir(store.join(".tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(tmp.is_empty(), "{case}: left in .tmp: {tmp:?}");
        for entry in fs::read_dir(store.join(".locks")).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit()),
                "{case}: unexpected lock {name}"
            );
            assert_eq!(entry.metadata().unwrap().len(), 0, "{case}: lock {name}");
        }
        for entry in fs::read_dir(store).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                [
                    ".tmp",
                    ".locks",
                    "blobs",
                    "index.json",
                    "oci-layout",
                    ".lock",
                    ".index.lock"
                ]
                .contains(&name.as_str()),
                "{case}: unexpected {name} in the store"
            );
        }
    }

    /// A Front whose answers are rewritten by whatever `set` last installed.
    fn set(front: &Front, f: impl Fn(&Seen, &mut Answer) + Send + Sync + 'static) {
        *front.behaviour().rewrite.lock().unwrap() = Some(Box::new(f));
    }

    fn is_manifest(seen: &Seen, reference: &str) -> bool {
        seen.path.ends_with(&format!("/manifests/{reference}"))
    }

    /// A rewrite of the answers for manifest `reference` alone.
    fn on_manifest(reference: &str, edit: impl Fn(&mut Answer) + Send + Sync + 'static) -> Rewrite {
        let reference = reference.to_string();
        Box::new(move |s, a| {
            if is_manifest(s, &reference) {
                edit(a);
            }
        })
    }

    /// A rewrite of the answers for blob `digest` alone.
    fn on_blob(digest: &str, edit: impl Fn(&mut Answer) + Send + Sync + 'static) -> Rewrite {
        let digest = digest.to_string();
        Box::new(move |s, a| {
            if s.path.ends_with(&digest) {
                edit(a);
            }
        })
    }

    fn flip_last_byte(body: &mut [u8]) {
        if let Some(last) = body.last_mut() {
            *last ^= 1;
        }
    }

    /// Each hostile answer fails the pull with an error naming the reference or digest, and
    /// the store is left exactly as it was (it already holds a good image).
    #[test]
    fn hostile_registry_answers_fail_and_leave_the_store_as_it_was() {
        require_tools!();
        let scratch = ScratchDir::new("brig-reg-hostile");
        let store = scratch.path("store");
        let reg = TestRegistry::start(false);
        let repo = "brig/hostile";
        let good = put_image(&reg, repo, "amd64", &[1, 2], false, |_| {});
        let good_digest = reg.put_manifest(repo, "good", OCI_MANIFEST, &good);
        // The hostile images share layer 1 with the good one; layer 3 is new.
        let image = put_image(&reg, repo, "amd64", &[1, 3], false, |_| {});
        let digest = reg.put_manifest(repo, "bad", OCI_MANIFEST, &image);
        let manifest: Value = serde_json::from_slice(&image).unwrap();
        let layer = manifest["layers"][1]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let config = manifest["config"]["digest"].as_str().unwrap().to_string();
        // An index pointing to the image, for the case of a child manifest tampered.
        let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest, "size": image.len(),
                           "platform": {"os": "linux", "architecture": "amd64"}}]}))
        .unwrap();
        let index_digest = reg.put_manifest(repo, "index", OCI_INDEX, &index);
        // A config with one diff_id for the two layers.
        let short = put_image(&reg, repo, "amd64", &[1, 3], false, |c| {
            c["rootfs"]["diff_ids"].as_array_mut().unwrap().pop();
        });
        reg.put_manifest(repo, "diffids", OCI_MANIFEST, &short);

        let front = Front::start(&reg.addr, Behaviour::default());
        let at = |r: &str| format!("{}/{repo}{r}", front.addr);
        assert_eq!(pulled(&pull(&store, &at(":good"), &[])), good_digest);
        // A second pull of the same image transfers no blob.
        front.clear();
        assert_eq!(pulled(&pull(&store, &at(":good"), &[])), good_digest);
        let blob_gets = |f: &Front| {
            f.seen()
                .iter()
                .filter(|s| s.path.contains("/blobs/"))
                .count()
        };
        assert_eq!(blob_gets(&front), 0, "{:#?}", front.seen());

        type Case = (&'static str, String, Vec<String>);
        let cases: Vec<(Case, Rewrite)> = vec![
            (
                (
                    "manifest by tag does not match Docker-Content-Digest",
                    at(":bad"),
                    vec![
                        format!("{repo}:bad"),
                        "digest mismatch".into(),
                        digest.clone(),
                    ],
                ),
                // Same length, another layer digest: only the hash tells.
                on_manifest("bad", |a| flip_last_byte(&mut a.body)),
            ),
            (
                (
                    "manifest by digest does not hash to it",
                    at(&format!("@{digest}")),
                    vec![digest.clone(), "digest mismatch".into()],
                ),
                on_manifest(&digest, |a| {
                    flip_last_byte(&mut a.body);
                    a.set_header("Docker-Content-Digest", None);
                }),
            ),
            (
                (
                    "manifest from an index does not match the index's digest",
                    at(":index"),
                    vec![format!("manifest {digest}"), "digest mismatch".into()],
                ),
                on_manifest(&digest, |a| {
                    flip_last_byte(&mut a.body);
                    a.set_header("Docker-Content-Digest", None);
                }),
            ),
            (
                (
                    "index by digest does not hash to it",
                    at(&format!("@{index_digest}")),
                    vec![index_digest.clone(), "digest mismatch".into()],
                ),
                on_manifest(&index_digest, |a| a.body.push(b'\n')),
            ),
            (
                (
                    "layer bytes do not match its digest",
                    at(":bad"),
                    vec![format!("layer {layer}"), "digest mismatch".into()],
                ),
                on_blob(&layer, |a| a.body[100] ^= 1),
            ),
            (
                (
                    "config bytes do not match its digest",
                    at(":bad"),
                    vec![format!("config {config}"), "digest mismatch".into()],
                ),
                on_blob(&config, |a| flip_last_byte(&mut a.body)),
            ),
            (
                (
                    "layer longer than its descriptor",
                    at(":bad"),
                    vec![format!("layer {layer}"), "longer than".into()],
                ),
                on_blob(&layer, |a| a.body.extend_from_slice(&[0; 4096])),
            ),
            (
                (
                    "layer shorter than its descriptor",
                    at(":bad"),
                    vec![format!("layer {layer}"), "size mismatch".into()],
                ),
                on_blob(&layer, |a| a.body.truncate(1000)),
            ),
            (
                (
                    "manifest larger than the 4 MiB cap",
                    at(":bad"),
                    vec![
                        repo.to_string(),
                        "bad".into(),
                        "larger than 4194304 bytes".into(),
                    ],
                ),
                on_manifest("bad", |a| a.body.resize(5 << 20, b' ')),
            ),
            (
                (
                    "config diff_ids do not match the layers",
                    at(":diffids"),
                    vec![
                        "config sha256:".into(),
                        "1 diff_ids for the manifest's 2 layers".into(),
                    ],
                ),
                Box::new(|_, _| {}),
            ),
        ];
        for ((name, reference, expected), rewrite) in cases {
            set(&front, rewrite);
            let before = snapshot(&store);
            let started = Instant::now();
            let out = pull(&store, &reference, &[]);
            let err = fails(&out);
            eprintln!("{name}: {:?}: {err}", started.elapsed());
            for part in &expected {
                assert!(err.contains(part.as_str()), "{name}: {part:?} not in {err}");
            }
            assert_eq!(snapshot(&store), before, "{name}: the store changed");
            no_leftovers(&store, name);
        }
        // The untampered image pulls, through the same front and into the same store.
        set(&front, |_, _| {});
        front.clear();
        assert_eq!(pulled(&pull(&store, &at(":bad"), &[])), digest);
        // Layer 1, shared with the good image, was not downloaded again.
        let shared = manifest["layers"][0]["digest"].as_str().unwrap();
        let fetched: Vec<String> = front
            .seen()
            .iter()
            .filter(|s| s.path.contains("/blobs/"))
            .map(|s| s.path.clone())
            .collect();
        assert_eq!(
            fetched.len(),
            2,
            "the new layer and the config: {fetched:#?}"
        );
        assert!(!fetched.iter().any(|p| p.ends_with(shared)), "{fetched:#?}");
    }

    /// A config that claims a size above the store's 32 MiB cap is refused before a byte of it
    /// is read; the registry stores whatever descriptor it is given.
    #[test]
    fn config_larger_than_the_cap() {
        require_tools!();
        let scratch = ScratchDir::new("brig-reg-cap");
        let store = scratch.path("store");
        let reg = TestRegistry::start(false);
        let repo = "brig/cap";
        let image = put_image(&reg, repo, "amd64", &[7], false, |_| {});
        let mut manifest: Value = serde_json::from_slice(&image).unwrap();
        manifest["config"]["size"] = json!(40u64 << 20);
        let bytes = serde_json::to_vec(&manifest).unwrap();
        reg.put_manifest(repo, "big", OCI_MANIFEST, &bytes);
        let err = fails(&pull(&store, &format!("{}/{repo}:big", reg.addr), &[]));
        let config = manifest["config"]["digest"].as_str().unwrap();
        assert!(err.contains(config) && err.contains("33554432"), "{err}");
        no_leftovers(&store, "config cap");
        assert!(fs::read_dir(store.join("blobs/sha256"))
            .unwrap()
            .next()
            .is_none());
    }

    /// An OCI index and a Docker manifest list, each with amd64, arm64/v8, arm/v7 and an
    /// attestation: `--platform` picks each, the host's is the default, a platform that is
    /// not there gets an error listing those that are.
    #[test]
    fn multi_arch_index_from_the_registry() {
        require_tools!();
        let scratch = ScratchDir::new("brig-reg-multi");
        let store = scratch.path("store");
        let reg = TestRegistry::start(false);
        let repo = "brig/multi";
        for docker in [false, true] {
            let (index_type, manifest_type) = if docker {
                (DOCKER_LIST, DOCKER_MANIFEST)
            } else {
                (OCI_INDEX, OCI_MANIFEST)
            };
            let mut entries = Vec::new();
            let mut digests = BTreeMap::new();
            let seed = if docker { 100 } else { 200 };
            for (i, (arch, variant)) in
                [("amd64", None), ("arm64", Some("v8")), ("arm", Some("v7"))]
                    .into_iter()
                    .enumerate()
            {
                let bytes = put_image(&reg, repo, arch, &[seed + i as u64], docker, |c| {
                    if let Some(v) = variant {
                        c["variant"] = json!(v);
                    }
                });
                let digest = reg.put_manifest(repo, &sha256(&bytes), manifest_type, &bytes);
                let mut entry = desc(manifest_type, &bytes);
                entry["platform"] = json!({"os": "linux", "architecture": arch});
                if let Some(v) = variant {
                    entry["platform"]["variant"] = json!(v);
                }
                entries.push(entry);
                digests.insert(arch, digest);
            }
            if !docker {
                // An attestation (buildkit's unknown/unknown), listed first: never chosen.
                let bytes = put_image(&reg, repo, "unknown", &[seed + 9], false, |_| {});
                reg.put_manifest(repo, &sha256(&bytes), OCI_MANIFEST, &bytes);
                let mut entry = desc(OCI_MANIFEST, &bytes);
                entry["platform"] = json!({"os": "unknown", "architecture": "unknown"});
                entry["annotations"] = json!({"vnd.docker.reference.type": "attestation-manifest"});
                entries.insert(0, entry);
            }
            let index = serde_json::to_vec(
                &json!({"schemaVersion": 2, "mediaType": index_type, "manifests": entries}),
            )
            .unwrap();
            let tag = if docker { "list" } else { "index" };
            reg.put_manifest(repo, tag, index_type, &index);
            let reference = format!("{}/{repo}:{tag}", reg.addr);
            for (platform, arch) in [
                ("linux/arm64", "arm64"),
                ("linux/arm64/v8", "arm64"),
                ("linux/arm/v7", "arm"),
                ("linux/amd64", "amd64"),
            ] {
                let got = pulled(&pull(&store, &reference, &["--platform", platform]));
                assert_eq!(got, digests[arch], "{tag} {platform}");
            }
            if std::env::consts::ARCH == "x86_64" {
                assert_eq!(pulled(&pull(&store, &reference, &[])), digests["amd64"]);
            }
            let before = snapshot(&store);
            let err = fails(&pull(&store, &reference, &["--platform", "linux/s390x"]));
            assert!(
                err.contains("no image for platform linux/s390x")
                    && err.contains("linux/amd64, linux/arm64/v8, linux/arm/v7")
                    && err.contains(&format!("{repo}:{tag}")),
                "{err}"
            );
            assert!(!err.contains("unknown/unknown"), "{err}");
            assert_eq!(snapshot(&store), before);
            no_leftovers(&store, "no platform");
        }
    }

    fn http_date(at: SystemTime) -> String {
        let secs = at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        let out = Command::new("date")
            .args([
                "-u",
                "-d",
                &format!("@{secs}"),
                "+%a, %d %b %Y %H:%M:%S GMT",
            ])
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// 429 and 503 with `Retry-After` (seconds, then an HTTP-date) are retried after the delay
    /// asked; a delay beyond what brig waits fails at once with the registry's code.
    #[test]
    fn retry_after_429_and_503() {
        require_tools!();
        let scratch = ScratchDir::new("brig-reg-retry");
        let store = scratch.path("store");
        let reg = TestRegistry::start(false);
        let repo = "brig/retry";
        let image = put_image(&reg, repo, "amd64", &[11], false, |_| {});
        let digest = reg.put_manifest(repo, "v1", OCI_MANIFEST, &image);
        let front = Front::start(&reg.addr, Behaviour::default());
        let reference = format!("{}/{repo}:v1", front.addr);

        // First a 429 asking for 1 s, then a 503 asking until a date 2 s ahead.
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        set(&front, move |s, a| {
            if !is_manifest(s, "v1") {
                return;
            }
            match c.fetch_add(1, Ordering::SeqCst) {
                0 => {
                    a.status = "429 Too Many Requests".into();
                    a.set_header("Retry-After", Some("1".into()));
                    a.body = br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#
                        .to_vec();
                }
                1 => {
                    a.status = "503 Service Unavailable".into();
                    let at = SystemTime::now() + Duration::from_secs(2);
                    a.set_header("Retry-After", Some(http_date(at)));
                    a.body = b"busy".to_vec();
                }
                _ => {}
            }
        });
        let started = Instant::now();
        assert_eq!(pulled(&pull(&store, &reference, &[])), digest);
        let took = started.elapsed();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // 1 s, then 1 to 2 s (the date has whole seconds); the default backoff would be 0.75 s.
        assert!(took >= Duration::from_millis(1900), "{took:?}");
        assert!(took < Duration::from_secs(6), "{took:?}");

        // A delay beyond the 10 s brig waits: no wait, the registry's error.
        let store2 = scratch.path("store2");
        set(&front, |s, a| {
            if is_manifest(s, "v1") {
                a.status = "429 Too Many Requests".into();
                a.set_header("Retry-After", Some("30".into()));
                a.body =
                    br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#.to_vec();
            }
        });
        let started = Instant::now();
        let err = fails(&pull(&store2, &reference, &[]));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        for part in [
            "TOOMANYREQUESTS",
            "slow down",
            "retry after 30 s",
            repo,
            "v1",
        ] {
            assert!(err.contains(part), "{part:?} not in {err}");
        }
        no_leftovers(&store2, "429");

        // Without Retry-After: the backoff, and the answer after it.
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        set(&front, move |s, a| {
            if is_manifest(s, "v1") && c.fetch_add(1, Ordering::SeqCst) == 0 {
                a.status = "429 Too Many Requests".into();
                a.body = Vec::new();
            }
        });
        assert_eq!(pulled(&pull(&store2, &reference, &[])), digest);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    /// A 429 that keeps asking for more: the library gives up once the wait would pass
    /// `max_retry_wait`, with the registry's code.
    #[test]
    fn retry_after_bounded_in_all() {
        require_tools!();
        let reg = TestRegistry::start(false);
        let repo = "brig/retry";
        let image = put_image(&reg, repo, "amd64", &[12], false, |_| {});
        reg.put_manifest(repo, "v1", OCI_MANIFEST, &image);
        let front = Front::start(&reg.addr, Behaviour::default());
        set(&front, |s, a| {
            if is_manifest(s, "v1") {
                a.status = "429 Too Many Requests".into();
                a.set_header("Retry-After", Some("1".into()));
            }
        });
        let opts = libcontainer::image::registry::RegistryOptions {
            max_retry_wait: Duration::from_millis(2500),
            ..libcontainer::image::registry::RegistryOptions::default()
        };
        let r = libcontainer::image::registry::Registry::new(&front.addr, repo, opts).unwrap();
        let started = Instant::now();
        let err = r.manifest("v1", &[]).unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.code(), Some("TOOMANYREQUESTS"), "{err}");
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(3),
            "{took:?}"
        );
        let gets = front.seen().iter().filter(|s| is_manifest(s, "v1")).count();
        assert_eq!(gets, 3, "two waits of 1 s, then the third would pass 2.5 s");
    }

    /// `credHelpers` and `credsStore` in the auth file run `docker-credential-NAME get` with
    /// the registry on stdin.
    #[test]
    fn credential_helpers() {
        require_tools!();
        let scratch = ScratchDir::new("brig-reg-helpers");
        let reg = TestRegistry::start(true);
        let repo = "brig/private";
        let image = put_image(&reg, repo, "amd64", &[13], false, |_| {});
        let digest = reg.put_manifest(repo, "v1", OCI_MANIFEST, &image);
        let reference = format!("{}/{repo}:v1", reg.addr);
        let bin = scratch.path("bin");
        fs::create_dir_all(&bin).unwrap();
        let log = scratch.path("helper.log");
        let helper = |name: &str, body: &str| {
            let path = bin.join(format!("docker-credential-{name}"));
            fs::write(
                &path,
                format!(
                    "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread -r server\necho \"{name} $server\" >> {}\n{body}\n",
                    log.display()
                ),
            )
            .unwrap();
            let mut perms = fs::metadata(&path).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
            fs::set_permissions(&path, perms).unwrap();
        };
        helper(
            "brig-good",
            &format!(
                "printf '{{\"ServerURL\":\"%s\",\"Username\":\"{}\",\"Secret\":\"{}\"}}' \"$server\"",
                registry::USER,
                registry::PASSWORD
            ),
        );
        helper(
            "brig-none",
            "echo 'credentials not found in native keychain'; exit 1",
        );
        helper("brig-broken", "echo 'the keyring is locked' >&2; exit 1");
        let authfile = scratch.path("config.json");
        let pull_with = |config: Value, store: &str| {
            fs::write(&authfile, config.to_string()).unwrap();
            let authfile = authfile.to_str().unwrap();
            pull_with_path(
                &scratch.path(store),
                &reference,
                &["--authfile", authfile],
                Some(&bin),
            )
        };
        let host = reg.addr.clone();

        // credHelpers for this registry, with a wrong `auths` entry it overrides.
        let out = pull_with(
            json!({"auths": {&host: {"auth": registry::auth_entry("alice", "wrong")}},
                   "credHelpers": {"other.example": "brig-broken", &host: "brig-good"}}),
            "s1",
        );
        assert_eq!(pulled(&out), digest);
        assert_eq!(
            fs::read_to_string(&log).unwrap(),
            format!("brig-good {host}\n")
        );

        // credsStore, for every registry without an entry of its own.
        fs::remove_file(&log).unwrap();
        let out = pull_with(
            json!({"auths": {&host: {}}, "credsStore": "brig-good"}),
            "s2",
        );
        assert_eq!(pulled(&out), digest);
        assert_eq!(
            fs::read_to_string(&log).unwrap(),
            format!("brig-good {host}\n")
        );

        // The helper has nothing for the registry: anonymous, refused by the registry.
        let err = fails(&pull_with(json!({"credsStore": "brig-none"}), "s3"));
        assert!(
            err.contains("UNAUTHORIZED") && err.contains("--creds"),
            "{err}"
        );

        // A helper that fails, or is not there: named, with the file and the registry.
        let err = fails(&pull_with(
            json!({"credHelpers": {&host: "brig-broken"}}),
            "s4",
        ));
        for part in [
            "docker-credential-brig-broken",
            "the keyring is locked",
            &host,
            authfile.to_str().unwrap(),
        ] {
            assert!(err.contains(part), "{part:?} not in {err}");
        }
        let err = fails(&pull_with(
            json!({"credHelpers": {&host: "brig-absent"}}),
            "s5",
        ));
        assert!(
            err.contains("docker-credential-brig-absent") && err.contains("cannot run it"),
            "{err}"
        );
    }

    /// A host that does not resolve, and a port nobody listens on, fail at once (no retries)
    /// and say which host.
    #[test]
    fn unreachable_hosts_fail_fast() {
        let scratch = ScratchDir::new("brig-reg-unreachable");
        let store = scratch.path("store");
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        // One lookup as the resolver answers it here (fast, or slow on a host whose DNS server
        // does not answer): brig may take that, not that times its retries.
        let started = Instant::now();
        let _ = std::net::ToSocketAddrs::to_socket_addrs("brig-test.invalid:443");
        let lookup = started.elapsed();
        for (reference, host, reason) in [
            (
                "brig-test.invalid/x/y:1",
                "brig-test.invalid",
                "does not resolve",
            ),
            (
                &format!("{closed}/x/y:1")[..],
                &closed[..],
                "connection refused",
            ),
        ] {
            let started = Instant::now();
            let err = fails(&pull(&store, reference, &[]));
            let took = started.elapsed();
            assert!(
                took < lookup * 2 + Duration::from_secs(1),
                "{reference}: {took:?} (a lookup takes {lookup:?}): {err}"
            );
            assert!(
                err.contains(&format!("cannot reach {host}")) && err.contains(reason),
                "{err}"
            );
            no_leftovers(&store, reference);
        }
    }
}

/// A config whose diff_id does not match its (real, tar) layer: the blobs all match their
/// digests, so the pull stores them; writing a bundle unpacks the layer through its diff_id,
/// fails naming the layer and both digests, and leaves no bundle behind.
/// The uncompressed tar (owner root) of `names` in `dir`, written to `out`; its bytes.
fn tar_of(dir: &std::path::Path, names: &[&str], out: &std::path::Path) -> Vec<u8> {
    let st = std::process::Command::new("tar")
        .args(["--owner=0", "--group=0", "-C"])
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .args(names)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read(out).unwrap()
}

/// A one-layer OCI image of `layer` (uncompressed) pushed to `repo` as `v1`, its config
/// naming `diff_id` and running `cmd`; the layer's digest.
fn put_one_layer_image(
    reg: &TestRegistry,
    repo: &str,
    layer: &[u8],
    diff_id: &str,
    cmd: &str,
) -> String {
    let layer_digest = reg.put_blob(repo, layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": [cmd]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let config_digest = reg.put_blob(repo, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    reg.put_manifest(repo, "v1", MEDIA_TYPE_OCI_MANIFEST, &manifest);
    layer_digest
}

#[test]
fn diff_id_mismatch_fails_the_bundle_and_leaves_none() {
    require_tools!();
    use cli::pulled;
    use integration::ScratchDir;
    let scratch = ScratchDir::new("brig-reg-diffid");
    let root = scratch.path("root/etc");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("hello"), "hi\n").unwrap();
    let layer = tar_of(&scratch.path("root"), &["."], &scratch.path("layer.tar"));
    let reg = TestRegistry::start(false);
    let repo = "brig/diffid";
    let wrong = registry::sha256(b"not the layer");
    put_one_layer_image(&reg, repo, &layer, &wrong, "/bin/sh");
    let store = scratch.path("store");
    let bundle = scratch.path("bundle");
    let reference = format!("{}/{repo}:v1", reg.addr);
    let out = std::process::Command::new(integration::brig_binary())
        .args(["pull", "--quiet", "--store"])
        .arg(&store)
        .arg(&reference)
        .arg(&bundle)
        .output()
        .unwrap();
    let err = integration::fails(&out);
    for part in [
        "does not match its diff_id",
        wrong.as_str(),
        &registry::sha256(&layer),
    ] {
        assert!(err.contains(part), "{part:?} not in {err}");
    }
    assert!(!bundle.exists(), "a bundle was left behind");
    // Without a bundle the pull itself succeeds: the blobs match their digests.
    let out = cli::pull(&store, &reference, &[]);
    assert!(!pulled(&out).is_empty());
}

/// `brig pull REF BUNDLE` is one pipeline (issue 15): a layer is unpacked while it downloads.
/// The registry holds the layer's answer after its first MiB until the layer's first file is
/// in the bundle's temporary rootfs (a pull that unpacks only after the download never gets
/// there, and the hold times out). The end is still checked: a layer whose last byte is wrong
/// fails the pull naming its digest, and leaves no bundle and no blob.
#[test]
fn a_layer_is_unpacked_while_it_downloads() {
    require_tools!();
    use integration::ScratchDir;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let scratch = ScratchDir::new("brig-reg-pipeline");
    let root = scratch.path("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("first"), "first\n").unwrap();
    let big: Vec<u8> = (0..3u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(root.join("big"), &big).unwrap();
    let layer = tar_of(&root, &["first", "big"], &scratch.path("layer.tar"));
    let reg = TestRegistry::start(false);
    let repo = "brig/pipeline";
    let layer_digest = put_one_layer_image(&reg, repo, &layer, &registry::sha256(&layer), "/first");
    let front = Front::start(&reg.addr, Behaviour::default());
    let reference = format!("{}/{repo}:v1", front.addr);
    let pull_bundle = |store: &std::path::Path, bundle: &std::path::Path| {
        std::process::Command::new(integration::brig_binary())
            .args(["pull", "--quiet", "--store"])
            .arg(store)
            .arg(&reference)
            .arg(bundle)
            .output()
            .unwrap()
    };

    let bundle = scratch.path("bundle");
    let released = Arc::new(AtomicBool::new(false));
    let watched = bundle.clone();
    *front.behaviour().hold.lock().unwrap() = Some(registry::Hold {
        path_contains: layer_digest.clone(),
        after: 1 << 20,
        until: Box::new(move || {
            std::fs::read_dir(&watched).is_ok_and(|entries| {
                entries.flatten().any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(".rootfs.unpack-")
                        && e.path().join("first").is_file()
                })
            })
        }),
        timeout: Duration::from_secs(10),
        released: released.clone(),
    });
    let store = scratch.path("store");
    integration::ok(&pull_bundle(&store, &bundle));
    assert!(
        released.load(Ordering::SeqCst),
        "the layer's first file was not unpacked while the layer downloaded"
    );
    assert_eq!(std::fs::read(bundle.join("rootfs/big")).unwrap(), big);
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/first")).unwrap(),
        "first\n"
    );

    // The same image, its layer's last byte flipped on the way: refused at the end of the
    // download, after most of it was unpacked; nothing left.
    *front.behaviour().hold.lock().unwrap() = None;
    let digest = layer_digest.clone();
    *front.behaviour().rewrite.lock().unwrap() = Some(Box::new(move |seen, answer| {
        if seen.path.contains(&digest) {
            if let Some(last) = answer.body.last_mut() {
                *last ^= 1;
            }
        }
    }));
    let store = scratch.path("store2");
    let bundle = scratch.path("bundle2");
    let out = pull_bundle(&store, &bundle);
    let err = integration::fails(&out);
    assert!(
        err.contains("digest mismatch") && err.contains(&layer_digest),
        "{err}"
    );
    assert!(!bundle.exists(), "a bundle was left behind");
    let hex = layer_digest.trim_start_matches("sha256:");
    assert!(
        !store.join("blobs/sha256").join(hex).exists(),
        "the bad blob was stored"
    );
    let tmp: Vec<_> = std::fs::read_dir(store.join(".tmp"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(tmp.is_empty(), "left in the store's .tmp: {tmp:?}");
}
