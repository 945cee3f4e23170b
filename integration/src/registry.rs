//! A registry for the image tests, offline and on loopback only: Debian's `docker-registry`
//! (anonymous or htpasswd Basic) on 127.0.0.1 with its own config and storage, and `Front`, a
//! small HTTP proxy written here that counts requests and can play a Bearer-token registry
//! (with its token server), redirect blob GETs to a second port, answer 503 a few times, or
//! cut a blob download short, or rewrite any answer (a tampered manifest or blob, a 429 with
//! `Retry-After`). Images are pushed with `skopeo` from an OCI layout built here from Debian's
//! busybox-static, or byte for byte through the registry's HTTP API (`put_blob`,
//! `put_manifest`) when a test needs exact manifests, indexes and configs. Everything is
//! stopped by Drop.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::Digest as _;

/// alice / s3cret, bcrypt (registry 2.8's htpasswd reads bcrypt only).
pub const HTPASSWD: &str = "alice:$2b$04$OIh5TepeNNPZmiAUxHE/vuPv0AKU046SbZLTqKtKLS33.8zTLyWNC\n";
pub const USER: &str = "alice";
pub const PASSWORD: &str = "s3cret";

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether the tools are installed (hack/install-deps.sh installs them); tests skip without.
pub fn available() -> bool {
    have("docker-registry") && have("skopeo") && Path::new("/bin/busybox").exists()
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn wait_listening(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(crate::unique_id(name));
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// `docker-registry serve` on 127.0.0.1:free-port; killed and its directory removed on Drop.
pub struct TestRegistry {
    child: Child,
    pub addr: String,
    pub dir: PathBuf,
    pub htpasswd: bool,
    /// The CA that signed the registry's certificate, when it serves TLS.
    pub ca: Option<PathBuf>,
}

/// A throwaway CA and a certificate for 127.0.0.1 signed by it (openssl, P-256, one day).
fn make_certs(dir: &Path) -> PathBuf {
    let script = r#"set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -keyout ca.key -out ca.pem -subj /CN=brig-test-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
  -extfile server.ext -out server.pem 2>/dev/null
"#;
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("ca.pem")
}

impl TestRegistry {
    pub fn start(htpasswd: bool) -> TestRegistry {
        Self::start_with(htpasswd, false)
    }

    /// With `tls`, the registry serves HTTPS with a certificate from a CA of its own
    /// (`self.ca`), which clients must be told to trust.
    pub fn start_with(htpasswd: bool, tls: bool) -> TestRegistry {
        let dir = temp_dir("registry");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.join("storage").display()
        );
        let ca = tls.then(|| {
            let ca = make_certs(&dir);
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.join("server.pem").display(),
                dir.join("server.key").display()
            ));
            ca
        });
        if htpasswd {
            fs::write(dir.join("htpasswd"), HTPASSWD).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: brig-test\n    path: {}\n",
                dir.join("htpasswd").display()
            ));
        }
        fs::write(dir.join("config.yml"), config).unwrap();
        let log = fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let reg = TestRegistry {
            child,
            addr,
            dir,
            htpasswd,
            ca,
        };
        wait_listening(&reg.addr);
        reg
    }

    /// Pushes an OCI layout's image to `repo:tag` with skopeo.
    pub fn push(&self, layout: &Path, repo: &str, tag: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if self.htpasswd {
            cmd.arg(format!("--dest-creds={USER}:{PASSWORD}"));
        }
        cmd.arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.addr));
        let out = cmd.output().expect("running skopeo");
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// One HTTP/1.1 exchange over a new connection (plain HTTP, `Connection: close`): status,
/// headers (lowercase names) and body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, HashMap<String, String>, Vec<u8>) {
    let mut conn = TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).unwrap();
    conn.write_all(body).unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, answer[split + 4..].to_vec())
}

pub fn sha256(bytes: &[u8]) -> String {
    let hex: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

impl TestRegistry {
    fn auth_header(&self) -> Vec<(&'static str, String)> {
        if self.htpasswd {
            vec![(
                "Authorization",
                format!("Basic {}", auth_entry(USER, PASSWORD)),
            )]
        } else {
            Vec::new()
        }
    }

    /// Uploads `bytes` as a blob of `repo` (POST then PUT); its digest.
    pub fn put_blob(&self, repo: &str, bytes: &[u8]) -> String {
        assert!(self.ca.is_none(), "put_blob speaks plain HTTP");
        let digest = sha256(bytes);
        let auth = self.auth_header();
        let (status, headers, body) = http(
            &self.addr,
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &auth,
            b"",
        );
        assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
        let location = &headers["location"];
        let path = match location.split_once("://") {
            Some((_, rest)) => &rest[rest.find('/').unwrap()..],
            None => location.as_str(),
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut put_headers = auth.clone();
        put_headers.push(("Content-Type", "application/octet-stream".into()));
        let (status, _, body) = http(
            &self.addr,
            "PUT",
            &format!("{path}{sep}digest={digest}"),
            &put_headers,
            bytes,
        );
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        digest
    }

    /// Stores a manifest or index as `repo:reference` (a tag or its digest); its digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> String {
        let mut headers = self.auth_header();
        headers.push(("Content-Type", media_type.to_string()));
        let (status, _, body) = http(
            &self.addr,
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &headers,
            bytes,
        );
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        sha256(bytes)
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A one-layer OCI layout (a gzip layer holding busybox-static) with its digests.
pub struct Layout {
    pub dir: PathBuf,
    pub layer_digest: String,
    pub config_digest: String,
}

impl Layout {
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let hex = digest.strip_prefix("sha256:").unwrap();
        fs::read(self.dir.join("blobs/sha256").join(hex)).unwrap()
    }
}

impl Drop for Layout {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next().unwrap().to_string()
}

/// Writes `data` as a blob of the layout and returns its digest and size.
fn put_blob(dir: &Path, data: &[u8]) -> (String, u64) {
    let tmp = dir.join("blob.tmp");
    fs::write(&tmp, data).unwrap();
    let hex = sha256_file(&tmp);
    fs::rename(&tmp, dir.join("blobs/sha256").join(&hex)).unwrap();
    (format!("sha256:{hex}"), data.len() as u64)
}

pub fn build_layout() -> Layout {
    let dir = temp_dir("layout");
    let root = dir.join("rootfs");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    let tar = dir.join("layer.tar");
    let st = Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mtime=@0",
        ])
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let diff_id = format!("sha256:{}", sha256_file(&tar));
    // gzip, as registries hold it (skopeo would compress a plain tar on the way, changing
    // its digest).
    let st = Command::new("gzip")
        .args(["-n", "-6"])
        .arg(&tar)
        .status()
        .unwrap();
    assert!(st.success());
    let gz = dir.join("layer.tar.gz");
    let layer = fs::read(&gz).unwrap();
    fs::remove_file(&gz).unwrap();
    fs::remove_dir_all(&root).unwrap();
    let (layer_digest, layer_size) = put_blob(&dir, &layer);
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/busybox", "sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let (config_digest, config_size) = put_blob(&dir, config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_size}],
    });
    let (manifest_digest, manifest_size) = put_blob(&dir, manifest.to_string().as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
                       "size": manifest_size, "annotations": {"org.opencontainers.image.ref.name": "latest"}}],
    });
    fs::write(dir.join("index.json"), index.to_string()).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    Layout {
        dir,
        layer_digest,
        config_digest,
    }
}

/// One request as `Front` (or its redirect target, or its token server) saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// "front", "cdn" or "token".
    pub listener: &'static str,
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// An answer on its way back from the registry through `Front`, for a rewrite to change.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `200 OK`, `429 Too Many Requests`, ...
    pub status: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets (or with None removes) a header.
    pub fn set_header(&mut self, name: &str, value: Option<String>) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        if let Some(v) = value {
            self.headers.push((name.to_string(), v));
        }
    }
}

/// Changes the registry's answer to a request before the client gets it (Content-Length is
/// set from the body afterwards).
pub type Rewrite = Box<dyn Fn(&Seen, &mut Answer) + Send + Sync>;

/// What `Front` does besides forwarding.
#[derive(Default)]
pub struct Behaviour {
    /// Applied to every answer forwarded from the registry.
    pub rewrite: Mutex<Option<Rewrite>>,
    /// Require `Bearer` tokens from the built-in token server (alice/s3cret, or anonymous
    /// when `anonymous_tokens`).
    pub bearer: bool,
    pub anonymous_tokens: bool,
    /// Answer blob GETs with 307 to the second listener, on `localhost` (another host).
    pub redirect_blobs: bool,
    /// Answer this many manifest GETs with 503 first.
    pub fail_503: AtomicU32,
    /// Cut the next blob download after this many body bytes (0: never).
    pub drop_blob_after: AtomicU64,
    /// Bumped to invalidate every token issued so far (the client must fetch a new one).
    pub token_generation: AtomicU32,
    /// Hold a blob's answer mid-body (see [`Hold`]).
    pub hold: Mutex<Option<Hold>>,
}

/// A blob answer sent in two parts: the first `after` body bytes, then the rest once `until`
/// says so (or `timeout` passed); `released` records whether `until` did.
pub struct Hold {
    /// A blob path containing this (a digest) is held.
    pub path_contains: String,
    pub after: usize,
    pub until: Box<dyn Fn() -> bool + Send + Sync>,
    pub timeout: Duration,
    pub released: Arc<AtomicBool>,
}

struct FrontState {
    upstream: String,
    token_addr: String,
    cdn_port: u16,
    behaviour: Behaviour,
    seen: Mutex<Vec<Seen>>,
    stop: AtomicBool,
}

/// The proxy in front of a `TestRegistry`; its threads end on Drop.
pub struct Front {
    pub addr: String,
    pub cdn_addr: String,
    pub token_addr: String,
    state: Arc<FrontState>,
}

impl Front {
    pub fn start(upstream: &str, behaviour: Behaviour) -> Front {
        let listen = |_: ()| TcpListener::bind("127.0.0.1:0").unwrap();
        let (front, cdn, token) = (listen(()), listen(()), listen(()));
        let addr = front.local_addr().unwrap().to_string();
        let cdn_port = cdn.local_addr().unwrap().port();
        let token_addr = token.local_addr().unwrap().to_string();
        let state = Arc::new(FrontState {
            upstream: upstream.to_string(),
            token_addr: token_addr.clone(),
            cdn_port,
            behaviour,
            seen: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        for (listener, name) in [(front, "front"), (cdn, "cdn"), (token, "token")] {
            let state = state.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if state.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let state = state.clone();
                    std::thread::spawn(move || {
                        let _ = serve(&state, name, conn);
                    });
                }
            });
        }
        Front {
            addr,
            cdn_addr: format!("localhost:{cdn_port}"),
            token_addr,
            state,
        }
    }

    pub fn behaviour(&self) -> &Behaviour {
        &self.state.behaviour
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.state.seen.lock().unwrap().clear();
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake each accept loop so it sees the flag.
        for addr in [&self.addr, &self.token_addr] {
            let _ = TcpStream::connect(addr);
        }
        let _ = TcpStream::connect(format!("127.0.0.1:{}", self.state.cdn_port));
    }
}

fn respond(
    conn: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()
}

fn token_for(gen: u32, scope: &str) -> String {
    format!("tok{gen}-{scope}")
}

fn serve(state: &FrontState, listener: &'static str, mut conn: TcpStream) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Ok(()); // not HTTP (e.g. a TLS probe)
    };
    if !path.starts_with('/') {
        return Ok(());
    }
    let mut headers = HashMap::new();
    let mut raw_headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            raw_headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let seen = Seen {
        listener,
        method: method.to_string(),
        path: path.to_string(),
        headers: headers.clone(),
    };
    state.seen.lock().unwrap().push(seen.clone());
    let b = &state.behaviour;
    let gen = b.token_generation.load(Ordering::SeqCst);

    if listener == "token" {
        let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
        let scope = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("scope="))
            .unwrap_or("")
            .replace("%3A", ":")
            .replace("%2F", "/");
        let expected = format!("Basic {}", base64(&format!("{USER}:{PASSWORD}")));
        let authorized = headers.get("authorization") == Some(&expected)
            || (b.anonymous_tokens && !headers.contains_key("authorization"));
        if !authorized {
            return respond(
                &mut conn,
                "401 Unauthorized",
                &[("Content-Type", "application/json".into())],
                br#"{"details":"incorrect username or password"}"#,
            );
        }
        let body = json!({"token": token_for(gen, &scope), "expires_in": 300}).to_string();
        return respond(
            &mut conn,
            "200 OK",
            &[("Content-Type", "application/json".into())],
            body.as_bytes(),
        );
    }

    let is_blob = method == "GET" && path.contains("/blobs/");
    if listener == "front" {
        if b.bearer {
            let repo_scope = path
                .strip_prefix("/v2/")
                .and_then(|p| {
                    p.split_once("/manifests/")
                        .or_else(|| p.split_once("/blobs/"))
                })
                .map(|(repo, _)| format!("repository:{repo}:pull"));
            let ok = match (&repo_scope, headers.get("authorization")) {
                (Some(scope), Some(a)) => *a == format!("Bearer {}", token_for(gen, scope)),
                (None, Some(a)) => a.starts_with(&format!("Bearer tok{gen}-")),
                _ => false,
            };
            if !ok {
                let mut challenge = format!(
                    "Bearer realm=\"http://{}/token\",service=\"brig-test\"",
                    state.token_addr
                );
                if let Some(scope) = &repo_scope {
                    challenge.push_str(&format!(",scope=\"{scope}\""));
                }
                return respond(
                    &mut conn,
                    "401 Unauthorized",
                    &[
                        ("WWW-Authenticate", challenge),
                        ("Content-Type", "application/json".into()),
                    ],
                    br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
                );
            }
        }
        if method == "GET" && path.contains("/manifests/") && b.fail_503.load(Ordering::SeqCst) > 0
        {
            b.fail_503.fetch_sub(1, Ordering::SeqCst);
            return respond(&mut conn, "503 Service Unavailable", &[], b"try later");
        }
        if is_blob && b.redirect_blobs {
            let location = format!("http://localhost:{}{path}", state.cdn_port);
            return respond(
                &mut conn,
                "307 Temporary Redirect",
                &[("Location", location)],
                b"",
            );
        }
    }
    let cut = if is_blob {
        b.drop_blob_after.swap(0, Ordering::SeqCst)
    } else {
        0
    };
    forward(state, &seen, &raw_headers, &mut conn, cut)
}

/// Relays the request to the registry (without the client's Authorization: the registry
/// behind a Bearer front is anonymous) and its answer back, cut after `cut` body bytes.
fn forward(
    state: &FrontState,
    seen: &Seen,
    headers: &[(String, String)],
    conn: &mut TcpStream,
    cut: u64,
) -> std::io::Result<()> {
    let (method, path) = (seen.method.as_str(), seen.path.as_str());
    let mut up = TcpStream::connect(&state.upstream)?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        state.upstream
    );
    for (k, v) in headers {
        let lk = k.to_ascii_lowercase();
        if lk == "host" || lk == "connection" || (lk == "authorization" && state.behaviour.bearer) {
            continue;
        }
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    up.write_all(req.as_bytes())?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    let Some(split) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(());
    };
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut reply = Answer {
        status: status_line
            .split_once(' ')
            .map(|(_, s)| s.to_string())
            .unwrap_or_default(),
        headers: lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .filter(|(k, _)| !k.eq_ignore_ascii_case("connection"))
            .collect(),
        body: answer[split + 4..].to_vec(),
    };
    if let Some(rewrite) = &*state.behaviour.rewrite.lock().unwrap() {
        rewrite(seen, &mut reply);
        if reply.header("transfer-encoding").is_none() {
            reply.set_header("Content-Length", Some(reply.body.len().to_string()));
        }
    }
    let mut out = format!("HTTP/1.1 {}\r\n", reply.status);
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    conn.write_all(out.as_bytes())?;
    let body = &reply.body;
    if let Some(hold) = &*state.behaviour.hold.lock().unwrap() {
        if seen.path.contains(&hold.path_contains) && hold.after < body.len() {
            conn.write_all(&body[..hold.after])?;
            conn.flush()?;
            let start = std::time::Instant::now();
            while start.elapsed() < hold.timeout {
                if (hold.until)() {
                    hold.released.store(true, Ordering::SeqCst);
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            conn.write_all(&body[hold.after..])?;
            return conn.flush();
        }
    }
    if cut > 0 && (cut as usize) < body.len() {
        conn.write_all(&body[..cut as usize])?;
        conn.flush()?;
        return conn.shutdown(Shutdown::Both);
    }
    conn.write_all(body)?;
    conn.flush()
}

fn base64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &c)| acc | (c as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The base64 the auth files use, for tests that write one.
pub fn auth_entry(user: &str, pass: &str) -> String {
    base64(&format!("{user}:{pass}"))
}
