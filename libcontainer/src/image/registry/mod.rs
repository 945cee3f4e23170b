//! A client of the OCI distribution API (pull side): ping, manifests and blobs, with
//! anonymous, Basic and Bearer authentication, retries, redirects and resumable blob reads.
//!
//! It fetches and does not verify: the caller (the image store) hashes every byte it is given
//! and compares with the digests, so the same checks apply to every transport. The headers a
//! registry sends (`Content-Type`, `Docker-Content-Digest`, `Content-Length`) are exposed.
//!
//! Blocking (ureq + rustls with ring): a pull runs blob downloads on a few threads; a
//! `Registry` is cheap to clone and shares its connections and tokens.

mod auth;
mod blob;
pub mod credentials;
pub mod error;
mod retry;
mod transport;

use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use ureq::http::{Response, Uri};
use ureq::Body;

pub use blob::BlobReader;
pub use credentials::{AuthFiles, Credentials};
pub use error::{RegistryError, Result, Target};
pub use transport::{is_loopback, plain_http_allowed};

use auth::{Scheme, TokenCache};
use retry::Failure;
use transport::{origin, Origin};

pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_DOCKER_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// What `manifest` asks for when the caller gives no `Accept` list.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
    MEDIA_TYPE_DOCKER_LIST,
    MEDIA_TYPE_DOCKER_MANIFEST,
];

/// The largest manifest or index accepted by default (the distribution spec suggests 4 MiB).
pub const MANIFEST_LIMIT: u64 = 4 << 20;

/// How long a request waits in all for the retries a registry asks for with `Retry-After`.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

/// Docker Hub's names; its API lives at `registry-1.docker.io`.
const DOCKER_HUB_NAMES: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];
const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `--creds user[:pass]`; wins over the auth files.
    pub creds: Option<Credentials>,
    /// Where to look for credentials when `creds` is not given.
    pub auth_files: AuthFiles,
    /// `--plain-http`: speak HTTP to a registry that is not on loopback.
    pub plain_http: bool,
    /// Extra trusted CA certificates (PEM files), on top of the system store.
    pub ca_files: Vec<PathBuf>,
    /// Directories holding `HOST[:PORT]/*.crt` CA files for a registry.
    pub certs_dirs: Vec<PathBuf>,
    /// Retries after a 5xx answer or a dropped connection (blob reads resume with `Range`).
    pub retries: u32,
    /// The first retry's delay, doubled at each retry (at most 8 s), when the registry does
    /// not say how long to wait.
    pub backoff: Duration,
    /// The most a request waits in all for its retries; a `Retry-After` that asks for more
    /// fails at once.
    pub max_retry_wait: Duration,
    /// Manifests larger than this are refused.
    pub manifest_limit: u64,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            creds: None,
            auth_files: AuthFiles::default(),
            plain_http: false,
            ca_files: Vec::new(),
            certs_dirs: vec![
                PathBuf::from("/etc/containers/certs.d"),
                PathBuf::from("/etc/docker/certs.d"),
            ],
            retries: 4,
            backoff: Duration::from_millis(250),
            max_retry_wait: MAX_RETRY_WAIT,
            manifest_limit: MANIFEST_LIMIT,
        }
    }
}

impl RegistryOptions {
    /// The defaults plus the credentials chain of the environment (`--authfile` if given,
    /// `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.docker/config.json`).
    pub fn from_env(
        creds: Option<&str>,
        authfile: Option<&std::path::Path>,
        plain_http: bool,
    ) -> Result<Self> {
        Ok(RegistryOptions {
            creds: creds.map(Credentials::parse).transpose()?,
            auth_files: AuthFiles::from_env(authfile),
            plain_http,
            ..RegistryOptions::default()
        })
    }
}

/// A manifest or index as the registry sent it (at most `manifest_limit` bytes).
#[derive(Debug, Clone)]
pub struct ManifestResponse {
    pub bytes: Vec<u8>,
    /// `Content-Type` without parameters; empty when the registry sent none.
    pub media_type: String,
    /// `Docker-Content-Digest`, as claimed by the registry (not verified here).
    pub content_digest: Option<String>,
}

/// A repository on a registry.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    /// As the user named it (`docker.io`, `host:5000`): messages and credentials use it.
    registry: String,
    /// Where the API is (`registry-1.docker.io` for Docker Hub).
    api_host: String,
    repository: String,
    opts: RegistryOptions,
    creds: Option<Credentials>,
    agent: ureq::Agent,
    /// `https://host` or `http://host`, decided at the first request.
    base: Mutex<Option<String>>,
    auth: Mutex<AuthState>,
}

#[derive(Default)]
struct AuthState {
    scheme: Option<Scheme>,
    tokens: TokenCache,
}

/// How a request authenticates: to the registry (Basic or a token for this scope), with a
/// fixed header (the token endpoint's Basic), or not at all. Either way only towards the
/// origin it was meant for.
enum Auth<'a> {
    None,
    Registry { scope: &'a str },
    Fixed { header: String, origin: Origin },
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn valid_component(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b) || extra.contains(&b))
}

impl Registry {
    /// `registry` is `host[:port]` as in an image reference, `repository` its path
    /// (`library/busybox`; a Docker Hub name without `/` gets `library/`).
    pub fn new(registry: &str, repository: &str, opts: RegistryOptions) -> Result<Registry> {
        let bad = |reason| RegistryError::InvalidHost {
            host: registry.to_string(),
            reason,
        };
        if registry.is_empty() {
            return Err(bad("empty"));
        }
        if registry.contains("://") || registry.contains('/') {
            return Err(bad("a registry is host[:port], without scheme or path"));
        }
        if format!("https://{registry}/").parse::<Uri>().is_err() {
            return Err(bad("not a valid host[:port]"));
        }
        let hub = DOCKER_HUB_NAMES.contains(&registry.to_ascii_lowercase().as_str());
        let api_host = if hub {
            DOCKER_HUB_API.to_string()
        } else {
            registry.to_string()
        };
        let repository = if hub && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        if !repository.split('/').all(|c| valid_component(c, b"")) {
            return Err(RegistryError::InvalidHost {
                host: format!("{registry}/{repository}"),
                reason: "invalid repository name",
            });
        }
        let creds = match &opts.creds {
            Some(c) => Some(c.clone()),
            None => opts.auth_files.lookup(registry, &repository)?,
        };
        let roots = if opts.plain_http {
            ureq::tls::RootCerts::Specific(Arc::new(Vec::new()))
        } else {
            transport::root_certs(registry, &opts.ca_files, &opts.certs_dirs)?
        };
        Ok(Registry {
            inner: Arc::new(Inner {
                registry: registry.to_string(),
                api_host,
                repository,
                agent: transport::agent(roots),
                creds,
                opts,
                base: Mutex::new(None),
                auth: Mutex::new(AuthState::default()),
            }),
        })
    }

    pub fn registry(&self) -> &str {
        &self.inner.registry
    }

    pub fn repository(&self) -> &str {
        &self.inner.repository
    }

    fn target(&self, reference: &str) -> Target {
        Target {
            registry: self.inner.registry.clone(),
            repository: self.inner.repository.clone(),
            reference: reference.to_string(),
        }
    }

    fn scope(&self) -> String {
        format!("repository:{}:pull", self.inner.repository)
    }

    /// `https://host`, or `http://host` with `--plain-http`, or for a loopback registry that
    /// does not answer TLS.
    fn base(&self) -> String {
        let mut base = lock(&self.inner.base);
        if let Some(b) = &*base {
            return b.clone();
        }
        let host = &self.inner.api_host;
        let chosen = if self.inner.opts.plain_http {
            format!("http://{host}")
        } else if is_loopback(host) {
            // A loopback registry speaks TLS when the handshake gets as far as its
            // certificate: then an untrusted certificate is the error to report, not a
            // plain-HTTP answer to a TLS port.
            let probe = self
                .inner
                .agent
                .get(format!("https://{host}/v2/"))
                .config()
                .timeout_global(Some(Duration::from_secs(5)))
                .build()
                .call();
            match probe {
                Ok(_) => format!("https://{host}"),
                Err(e) if transport::speaks_tls(&e) => format!("https://{host}"),
                Err(_) => format!("http://{host}"),
            }
        } else {
            format!("https://{host}")
        };
        *base = Some(chosen.clone());
        chosen
    }

    fn url(&self, target: &Target, path: &str) -> Result<Uri> {
        let url = format!("{}{path}", self.base());
        url.parse().map_err(|_| RegistryError::Redirect {
            target: target.clone().into(),
            url,
            reason: "not a valid url".to_string(),
        })
    }

    /// `GET /v2/`: the registry answers the distribution API. A 401 is an answer too when no
    /// credentials were given (pulls may still get anonymous tokens); with credentials they
    /// are checked.
    pub fn ping(&self) -> Result<()> {
        let target = self.target("");
        let url = self.url(&target, "/v2/")?;
        let (resp, _) = self.send(&target, "pinging", url, &[], Auth::Registry { scope: "" })?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            401 if self.inner.creds.is_none() => Ok(()),
            _ => Err(self.api_error(&target, resp)),
        }
    }

    /// `GET /v2/<repo>/manifests/<reference>` (a tag or a digest) with `accept` (the four
    /// image types when empty).
    pub fn manifest(&self, reference: &str, accept: &[&str]) -> Result<ManifestResponse> {
        let target = self.target(reference);
        if !valid_component(reference, b":+=") {
            return Err(RegistryError::Api {
                target: target.into(),
                status: 0,
                code: "NAME_INVALID".to_string(),
                message: "invalid tag or digest".to_string(),
            });
        }
        let accept = if accept.is_empty() {
            MANIFEST_MEDIA_TYPES.join(", ")
        } else {
            accept.join(", ")
        };
        let path = format!("/v2/{}/manifests/{reference}", self.inner.repository);
        let scope = self.scope();
        let limit = self.inner.opts.manifest_limit;
        let mut attempt = 0;
        loop {
            let url = self.url(&target, &path)?;
            let (resp, url) = self.send(
                &target,
                "fetching manifest",
                url,
                &[("Accept", accept.clone())],
                Auth::Registry { scope: &scope },
            )?;
            if !resp.status().is_success() {
                return Err(self.api_error(&target, resp));
            }
            let media_type = header(&resp, "content-type")
                .map(|t| t.split(';').next().unwrap_or_default().trim().to_string())
                .unwrap_or_default();
            let content_digest = header(&resp, "docker-content-digest");
            let too_large = || RegistryError::ManifestTooLarge {
                target: target.clone().into(),
                limit,
            };
            if resp.body().content_length().is_some_and(|l| l > limit) {
                return Err(too_large());
            }
            match resp
                .into_body()
                .into_with_config()
                .limit(limit)
                .read_to_vec()
            {
                Ok(bytes) => {
                    return Ok(ManifestResponse {
                        bytes,
                        media_type,
                        content_digest,
                    })
                }
                Err(ureq::Error::BodyExceedsLimit(_)) => return Err(too_large()),
                Err(e) if Failure::of(&e).retryable() && attempt < self.inner.opts.retries => {
                    attempt += 1;
                    self.sleep_backoff(attempt);
                }
                Err(e) => {
                    return Err(RegistryError::Transport {
                        target: target.into(),
                        what: "reading manifest",
                        url: url.to_string(),
                        source: Box::new(e),
                    })
                }
            }
        }
    }

    /// `GET /v2/<repo>/blobs/<digest>` from byte `offset`: a reader that follows redirects
    /// (without `Authorization` off the registry's host) and, when the connection drops,
    /// resumes with `Range` (or skips what it had when the registry ignores `Range`).
    pub fn blob(&self, digest: &str, offset: u64) -> Result<BlobReader> {
        BlobReader::open(self.clone(), digest, offset)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(6);
        let delay = self.inner.opts.backoff.saturating_mul(factor);
        delay.min(Duration::from_secs(8))
    }

    fn sleep_backoff(&self, attempt: u32) {
        std::thread::sleep(self.backoff(attempt));
    }

    /// One GET with everything around it: retries on 429 and 5xx after the `Retry-After` the
    /// registry asks for (at most `max_retry_wait` in all) or with backoff, and on dropped
    /// connections and timeouts (not on names that do not resolve or refused connections), redirects followed by hand, authentication learned from a 401 and tried
    /// again once (a cached token is dropped and fetched anew). Returns the last answer,
    /// whatever its status, and the URL that gave it.
    fn send(
        &self,
        target: &Target,
        what: &'static str,
        mut url: Uri,
        headers: &[(&str, String)],
        auth: Auth<'_>,
    ) -> Result<(Response<Body>, Uri)> {
        let mut attempt = 0;
        let mut redirects = 0;
        let mut auth_retried = false;
        let mut waited = Duration::ZERO;
        let registry_origin = self.url(target, "/").ok().as_ref().and_then(origin);
        loop {
            if !plain_http_allowed(&url, self.inner.opts.plain_http) {
                return Err(RegistryError::PlainHttpRefused {
                    target: target.clone().into(),
                    url: url.to_string(),
                });
            }
            let here = origin(&url);
            let mut req = self.inner.agent.get(url.clone());
            for (name, value) in headers {
                req = req.header(*name, value.as_str());
            }
            let mut registry_auth = false;
            match &auth {
                Auth::Registry { scope } if here.is_some() && here == registry_origin => {
                    registry_auth = true;
                    if let Some(value) = self.authorization(target, scope)? {
                        req = req.header("Authorization", value);
                    }
                }
                Auth::Fixed { header, origin } if here.as_ref() == Some(origin) => {
                    req = req.header("Authorization", header.as_str());
                }
                _ => {}
            }
            let resp = match req.call() {
                Ok(resp) => resp,
                Err(e) => {
                    let failure = Failure::of(&e);
                    if failure.retryable() && attempt < self.inner.opts.retries {
                        tracing::debug!(%url, error = %e, attempt, "retrying");
                        attempt += 1;
                        let delay = self.backoff(attempt);
                        waited += delay;
                        std::thread::sleep(delay);
                        continue;
                    }
                    // Not retried: a name that does not resolve or a port nobody listens on
                    // will not change in a few seconds.
                    if let Some(reason) = failure.unreachable_reason() {
                        return Err(RegistryError::Unreachable {
                            target: target.clone().into(),
                            what,
                            host: url.authority().map(|a| a.to_string()).unwrap_or_default(),
                            reason,
                            source: Box::new(e),
                        });
                    }
                    return Err(RegistryError::Transport {
                        target: target.clone().into(),
                        what,
                        url: url.to_string(),
                        source: Box::new(e),
                    });
                }
            };
            let status = resp.status().as_u16();
            if matches!(status, 429 | 500 | 502 | 503 | 504) && attempt < self.inner.opts.retries {
                let asked = header(&resp, "retry-after")
                    .and_then(|v| retry::retry_after(&v, std::time::SystemTime::now()));
                let delay = asked.unwrap_or_else(|| self.backoff(attempt + 1));
                let budget = self.inner.opts.max_retry_wait;
                if asked.is_some() && waited + delay > budget {
                    let mut err = self.api_error(target, resp);
                    if let RegistryError::Api { message, .. } = &mut err {
                        message.push_str(&format!(
                            " (the registry asks to retry after {} s, more than the {} s brig waits)",
                            delay.as_secs_f64().ceil(),
                            budget.saturating_sub(waited).as_secs()
                        ));
                    }
                    return Err(err);
                }
                tracing::debug!(%url, status, attempt, ?delay, "retrying");
                attempt += 1;
                waited += delay;
                std::thread::sleep(delay);
                continue;
            }
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                redirects += 1;
                let redirect_err = |reason: &str| RegistryError::Redirect {
                    target: target.clone().into(),
                    url: url.to_string(),
                    reason: reason.to_string(),
                };
                if redirects > 10 {
                    return Err(redirect_err("more than 10 redirects"));
                }
                let location =
                    header(&resp, "location").ok_or_else(|| redirect_err("no Location header"))?;
                url = transport::resolve_location(&url, &location)
                    .ok_or_else(|| redirect_err(&format!("invalid Location {location:?}")))?;
                continue;
            }
            if status == 401 && registry_auth && !auth_retried {
                if let Auth::Registry { scope } = &auth {
                    auth_retried = true;
                    if self.learn_challenge(target, &resp, scope)? {
                        continue;
                    }
                }
            }
            return Ok((resp, url));
        }
    }

    /// Records the scheme a 401 asked for and drops the token that failed. Returns whether
    /// trying again can help.
    fn learn_challenge(&self, target: &Target, resp: &Response<Body>, scope: &str) -> Result<bool> {
        let values: Vec<&str> = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return Ok(false);
        }
        let joined = values.join(", ");
        let challenges =
            auth::parse_challenges(&joined).map_err(|reason| RegistryError::Challenge {
                target: target.clone().into(),
                header: joined.clone(),
                reason,
            })?;
        let Some(scheme) = Scheme::choose(&challenges) else {
            return Ok(false);
        };
        let retry = match scheme {
            Scheme::Basic => self.inner.creds.is_some(),
            Scheme::Bearer { .. } => true,
        };
        let mut state = lock(&self.inner.auth);
        state.scheme = Some(scheme);
        state.tokens.forget(scope);
        Ok(retry)
    }

    /// The `Authorization` value for a request to the registry, fetching a token when the
    /// registry wants Bearer and none is cached for `scope`.
    fn authorization(&self, target: &Target, scope: &str) -> Result<Option<String>> {
        let scheme = {
            let state = lock(&self.inner.auth);
            if let Some(token) = state.tokens.get(scope) {
                return Ok(Some(format!("Bearer {token}")));
            }
            state.scheme.clone()
        };
        match scheme {
            None => Ok(None),
            Some(Scheme::Basic) => Ok(self.inner.creds.as_ref().map(basic_header)),
            Some(Scheme::Bearer { realm, service }) => {
                let (token, expires_in) =
                    self.fetch_token(target, &realm, service.as_deref(), scope)?;
                lock(&self.inner.auth)
                    .tokens
                    .insert(scope, token.clone(), expires_in);
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// `GET realm?service=..&scope=..`, with Basic credentials when there are some.
    fn fetch_token(
        &self,
        target: &Target,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<(String, Duration)> {
        let token_err = |reason: String| RegistryError::Token {
            target: target.clone().into(),
            realm: realm.to_string(),
            reason,
        };
        let mut query = Vec::new();
        if let Some(service) = service {
            query.push(format!("service={}", auth::query_escape(service)));
        }
        if !scope.is_empty() {
            query.push(format!("scope={}", auth::query_escape(scope)));
        }
        let sep = if realm.contains('?') { '&' } else { '?' };
        let url = if query.is_empty() {
            realm.to_string()
        } else {
            format!("{realm}{sep}{}", query.join("&"))
        };
        let uri: Uri = url
            .parse()
            .map_err(|_| token_err("the realm is not a valid url".to_string()))?;
        let realm_origin =
            origin(&uri).ok_or_else(|| token_err("the realm is not an http(s) url".to_string()))?;
        let auth = match &self.inner.creds {
            Some(c) => Auth::Fixed {
                header: basic_header(c),
                origin: realm_origin,
            },
            None => Auth::None,
        };
        let (resp, _) = self.send(target, "fetching token", uri, &[], auth)?;
        if !resp.status().is_success() {
            return Err(self.api_error(target, resp));
        }
        let body = resp
            .into_body()
            .into_with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| token_err(e.to_string()))?;
        auth::parse_token_response(&body).map_err(token_err)
    }

    /// The error a non-2xx answer stands for, with the registry's own code and message.
    fn api_error(&self, target: &Target, resp: Response<Body>) -> RegistryError {
        let status = resp.status();
        let mut body = Vec::new();
        let _ = resp
            .into_body()
            .into_reader()
            .take(64 << 10)
            .read_to_end(&mut body);
        let (mut code, mut message) = parse_error_body(&body).unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            let message = if text.is_empty() || text.starts_with('<') {
                status.canonical_reason().unwrap_or("error").to_lowercase()
            } else {
                text.chars().take(200).collect()
            };
            (String::new(), message)
        });
        if code.is_empty() {
            code = match status.as_u16() {
                401 => "UNAUTHORIZED".to_string(),
                403 => "DENIED".to_string(),
                429 => "TOOMANYREQUESTS".to_string(),
                s => format!("HTTP_{s}"),
            };
        }
        if status.as_u16() == 401 && self.inner.creds.is_none() {
            message.push_str(&format!(
                " (no credentials for {}: use --creds or --authfile)",
                self.inner.registry
            ));
        }
        RegistryError::Api {
            target: target.clone().into(),
            status: status.as_u16(),
            code,
            message,
        }
    }
}

fn basic_header(c: &Credentials) -> String {
    let raw = format!("{}:{}", c.username, c.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// `{"errors":[{"code":..,"message":..}]}` (oci-spec's ErrorResponse, or any code when the
/// registry uses one outside the spec), or a token server's `{"details":..}`.
fn parse_error_body(body: &[u8]) -> Option<(String, String)> {
    if let Ok(resp) = serde_json::from_slice::<oci_spec::distribution::ErrorResponse>(body) {
        if let Some(first) = resp.detail().first() {
            let code = serde_json::to_value(first.code())
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let message = resp
                .detail()
                .iter()
                .filter_map(|e| e.message().clone())
                .filter(|m| !m.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            return Some((code, message));
        }
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    if let Some(first) = v
        .get("errors")
        .and_then(|e| e.as_array())
        .and_then(|e| e.first())
    {
        let s = |k: &str| {
            first
                .get(k)
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_string()
        };
        return Some((s("code"), s("message")));
    }
    for key in ["details", "message", "error_description", "error"] {
        if let Some(m) = v.get(key).and_then(|m| m.as_str()) {
            return Some((String::new(), m.to_string()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        let (c, m) = parse_error_body(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#,
        )
        .unwrap();
        assert_eq!(
            (c.as_str(), m.as_str()),
            ("MANIFEST_UNKNOWN", "manifest unknown")
        );
        let (c, _) =
            parse_error_body(br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#)
                .unwrap();
        assert_eq!(c, "TOOMANYREQUESTS");
        let (c, m) =
            parse_error_body(br#"{"errors":[{"code":"PAYMENT_REQUIRED","message":"pay"}]}"#)
                .unwrap();
        assert_eq!((c.as_str(), m.as_str()), ("PAYMENT_REQUIRED", "pay"));
        let (c, m) = parse_error_body(br#"{"details":"incorrect username or password"}"#).unwrap();
        assert_eq!(
            (c.as_str(), m.as_str()),
            ("", "incorrect username or password")
        );
        assert!(parse_error_body(b"<html>").is_none());
    }

    #[test]
    fn docker_hub_names() {
        let r = Registry::new("docker.io", "busybox", RegistryOptions::default()).unwrap();
        assert_eq!(r.inner.api_host, "registry-1.docker.io");
        assert_eq!(r.repository(), "library/busybox");
        assert_eq!(r.registry(), "docker.io");
        let r = Registry::new("quay.io", "busybox", RegistryOptions::default()).unwrap();
        assert_eq!(r.repository(), "busybox");
    }

    #[test]
    fn bad_names() {
        for host in ["", "https://x", "x/y", "a b"] {
            assert!(
                Registry::new(host, "r", RegistryOptions::default()).is_err(),
                "{host}"
            );
        }
        for repo in ["", "a//b", "a/../b?x", "A B"] {
            assert!(
                Registry::new("h", repo, RegistryOptions::default()).is_err(),
                "{repo}"
            );
        }
    }

    /// A registry that is not on loopback is reached over HTTPS; a redirect (or realm) to
    /// plain HTTP there is refused before any connection is made.
    #[test]
    fn plain_http_refused_without_flag() {
        let r = Registry::new("registry.invalid", "a/b", RegistryOptions::default()).unwrap();
        let target = r.target("latest");
        assert_eq!(r.base(), "https://registry.invalid");
        let url: Uri = "http://registry.invalid/v2/a/b/manifests/latest"
            .parse()
            .unwrap();
        let err = r
            .send(&target, "fetching manifest", url, &[], Auth::None)
            .unwrap_err();
        assert!(
            matches!(err, RegistryError::PlainHttpRefused { .. }),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("registry.invalid") && msg.contains("--plain-http"),
            "{msg}"
        );

        let opts = RegistryOptions {
            plain_http: true,
            ..RegistryOptions::default()
        };
        let r = Registry::new("registry.invalid", "a/b", opts).unwrap();
        assert_eq!(r.base(), "http://registry.invalid");
    }
}
