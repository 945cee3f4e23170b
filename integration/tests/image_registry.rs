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
