//! Where registry credentials come from: `--creds user[:pass]`, then an auth file
//! (`--authfile`, else `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`
//! then `~/.docker/config.json`), in the containers-auth.json / docker config format, whose
//! `credHelpers` (per registry) and `credsStore` (for all) name a credential helper:
//! `docker-credential-NAME get` reads the registry on stdin and answers
//! `{"ServerURL":..,"Username":..,"Secret":..}`, as docker and containers/image call it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;

use super::error::{RegistryError, Result};

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

// Never print a password, not even in a debug log.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials {{ username: {:?}, password: <hidden> }}",
            self.username
        )
    }
}

impl Credentials {
    /// Parses `--creds user[:pass]` (the password may contain `:`; without one it is empty).
    pub fn parse(creds: &str) -> Result<Credentials> {
        let (username, password) = creds.split_once(':').unwrap_or((creds, ""));
        if username.is_empty() {
            return Err(RegistryError::InvalidCreds("the user name is empty"));
        }
        Ok(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        })
    }
}

/// The auth files to search, in order: an explicit one alone, else the default chain.
#[derive(Debug, Clone, Default)]
pub struct AuthFiles {
    /// `--authfile`, or `$REGISTRY_AUTH_FILE`: only this file is read, and it must exist.
    pub explicit: Option<PathBuf>,
    /// Default locations, read when present.
    pub defaults: Vec<PathBuf>,
}

impl AuthFiles {
    /// The chain podman and skopeo use, from the process environment.
    pub fn from_env(authfile: Option<&Path>) -> AuthFiles {
        let explicit = authfile
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("REGISTRY_AUTH_FILE").map(PathBuf::from))
            .filter(|p| !p.as_os_str().is_empty());
        let mut defaults = Vec::new();
        if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            defaults.push(PathBuf::from(dir).join("containers/auth.json"));
        }
        if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            defaults.push(PathBuf::from(home).join(".docker/config.json"));
        }
        AuthFiles { explicit, defaults }
    }

    /// Credentials for `registry` (as the user wrote it, e.g. `docker.io` or `host:5000`) and
    /// `repository`; an entry for `host/namespace` wins over one for `host`.
    pub fn lookup(&self, registry: &str, repository: &str) -> Result<Option<Credentials>> {
        if let Some(path) = &self.explicit {
            let text = std::fs::read_to_string(path).map_err(|source| RegistryError::AuthFile {
                path: path.clone(),
                source,
            })?;
            return lookup_in(path, &text, registry, repository);
        }
        for path in &self.defaults {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(RegistryError::AuthFile {
                        path: path.clone(),
                        source,
                    })
                }
            };
            if let Some(creds) = lookup_in(path, &text, registry, repository)? {
                return Ok(Some(creds));
            }
        }
        Ok(None)
    }
}

/// Docker Hub has several names; auth files use any of them.
fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    }
}

/// An auth file key: `host`, `host/namespace/...`, or a legacy URL such as
/// `https://index.docker.io/v1/` (whose path is not a namespace).
fn normalize_key(key: &str) -> String {
    let key = key.trim_end_matches('/');
    let (host, rest) = match key.split_once("://") {
        Some((_, url)) => (url.split('/').next().unwrap_or(url), ""),
        None => match key.split_once('/') {
            Some((host, rest)) => (host, rest),
            None => (key, ""),
        },
    };
    let host = canonical_host(host);
    if rest.is_empty() {
        host
    } else {
        format!("{host}/{rest}")
    }
}

fn lookup_in(
    path: &Path,
    text: &str,
    registry: &str,
    repository: &str,
) -> Result<Option<Credentials>> {
    let format_err = |reason: String| RegistryError::AuthFileFormat {
        path: path.to_path_buf(),
        reason,
    };
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format_err(e.to_string()))?;
    let host = canonical_host(registry);
    // A helper named for this registry is the only source this file has for it.
    if let Some(helpers) = doc.get("credHelpers") {
        let helpers = helpers
            .as_object()
            .ok_or_else(|| format_err("\"credHelpers\" is not an object".to_string()))?;
        for (key, helper) in helpers {
            if normalize_key(key) != host {
                continue;
            }
            let helper = helper
                .as_str()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| format_err(format!("credHelpers entry {key:?} is not a name")))?;
            return run_helper(path, helper, &host);
        }
    }
    if let Some(auths) = doc.get("auths") {
        let auths = auths
            .as_object()
            .ok_or_else(|| format_err("\"auths\" is not an object".to_string()))?;
        // Most specific first: host/a/b/c, host/a/b, host/a, host.
        let mut wanted = vec![host.clone()];
        let mut prefix = host.clone();
        for part in repository.split('/').filter(|p| !p.is_empty()) {
            prefix = format!("{prefix}/{part}");
            wanted.push(prefix.clone());
        }
        for want in wanted.iter().rev() {
            for (key, entry) in auths {
                if normalize_key(key) != *want {
                    continue;
                }
                if let Some(creds) = entry_credentials(entry)
                    .map_err(|reason| format_err(format!("entry {key:?}: {reason}")))?
                {
                    return Ok(Some(creds));
                }
            }
        }
    }
    // docker keeps only empty placeholders in "auths" when a store holds the credentials.
    match doc.get("credsStore") {
        None => Ok(None),
        Some(serde_json::Value::String(store)) if store.is_empty() => Ok(None),
        Some(serde_json::Value::String(store)) => run_helper(path, store, &host),
        Some(_) => Err(format_err("\"credsStore\" is not a name".to_string())),
    }
}

/// What a credential helper's `get` prints.
#[derive(serde::Deserialize)]
struct HelperReply {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// `docker-credential-HELPER get` with `server` on stdin (found on `$PATH`). None when the
/// helper has nothing for the server.
fn run_helper(path: &Path, helper: &str, server: &str) -> Result<Option<Credentials>> {
    let program = format!("docker-credential-{helper}");
    let err = |reason: String| RegistryError::CredentialHelper {
        helper: program.clone(),
        path: path.to_path_buf(),
        server: server.to_string(),
        reason,
    };
    if helper.contains('/') {
        return Err(err("a helper is a name, not a path".to_string()));
    }
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its stdin is judged by its answer.
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| err(format!("waiting for it: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = format!("{} {}", stdout.trim(), stderr.trim());
        // The helpers' protocol says so on stdout for an unknown server.
        if said.contains("credentials not found") {
            return Ok(None);
        }
        return Err(err(format!("{}: {}", out.status, said.trim())));
    }
    let reply: HelperReply = serde_json::from_str(stdout.trim())
        .map_err(|e| err(format!("its answer is not the helper JSON: {e}")))?;
    if reply.username == "<token>" {
        // An identity token is exchanged at the token server with an OAuth2 refresh grant,
        // which this client does not do: go on anonymously rather than send it as a password.
        tracing::warn!(helper = %program, server, "identity tokens are not supported; pulling anonymously");
        return Ok(None);
    }
    if reply.username.is_empty() && reply.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: reply.username,
        password: reply.secret,
    }))
}

fn entry_credentials(
    entry: &serde_json::Value,
) -> std::result::Result<Option<Credentials>, String> {
    if let Some(auth) = entry
        .get("auth")
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty())
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| format!("\"auth\" is not base64: {e}"))?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| "\"auth\" is not utf-8".to_string())?;
        let (user, pass) = decoded
            .split_once(':')
            .ok_or_else(|| "\"auth\" is not user:password".to_string())?;
        return Ok(Some(Credentials {
            username: user.to_string(),
            password: pass.to_string(),
        }));
    }
    let user = entry.get("username").and_then(|u| u.as_str());
    let pass = entry.get("password").and_then(|p| p.as_str());
    match (user, pass) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials {
            username: u.to_string(),
            password: p.to_string(),
        })),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn creds_flag() {
        let c = Credentials::parse("alice:pa:ss").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "pa:ss")
        );
        assert_eq!(Credentials::parse("bob").unwrap().password, "");
        assert!(Credentials::parse(":x").is_err());
        assert!(!format!("{c:?}").contains("pa:ss"));
    }

    #[test]
    fn docker_hub_aliases_and_namespaces() {
        let text = format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "quay.io": {{"auth": "{}"}},
                "quay.io/team": {{"username": "t", "password": "p"}},
                "localhost:5000": {{"auth": ""}}
            }}}}"#,
            b64("hub:secret"),
            b64("q:1")
        );
        let p = Path::new("auth.json");
        let hub = lookup_in(p, &text, "docker.io", "library/busybox")
            .unwrap()
            .unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("hub", "secret")
        );
        let hub = lookup_in(p, &text, "registry-1.docker.io", "x")
            .unwrap()
            .unwrap();
        assert_eq!(hub.username, "hub");
        assert_eq!(
            lookup_in(p, &text, "quay.io", "team/app")
                .unwrap()
                .unwrap()
                .username,
            "t"
        );
        assert_eq!(
            lookup_in(p, &text, "quay.io", "other/app")
                .unwrap()
                .unwrap()
                .username,
            "q"
        );
        assert_eq!(lookup_in(p, &text, "localhost:5000", "a").unwrap(), None);
        assert_eq!(lookup_in(p, &text, "ghcr.io", "a").unwrap(), None);
    }

    #[test]
    fn bad_files_are_named() {
        let p = Path::new("/x/auth.json");
        let err = lookup_in(p, "{", "h", "r").unwrap_err().to_string();
        assert!(err.contains("/x/auth.json"), "{err}");
        let err = lookup_in(p, r#"{"auths":{"h":{"auth":"!!"}}}"#, "h", "r")
            .unwrap_err()
            .to_string();
        assert!(err.contains("base64") && err.contains("\"h\""), "{err}");
    }

    /// A helper named for the registry is asked (here: one that is not installed, so the
    /// error shows it was chosen); `auths` wins over `credsStore`; other registries' helpers
    /// are not run.
    #[test]
    fn credential_helpers_chosen_by_registry() {
        let p = Path::new("/x/config.json");
        let text = format!(
            r#"{{"auths": {{"quay.io": {{"auth": "{}"}}, "ghcr.io": {{}}}},
                "credHelpers": {{"registry.example:5000": "brig-absent-1", "docker.io": "brig-absent-2"}},
                "credsStore": "brig-absent-3"}}"#,
            b64("q:1")
        );
        let err = lookup_in(p, &text, "registry.example:5000", "a")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("docker-credential-brig-absent-1")
                && err.contains("registry.example:5000")
                && err.contains("/x/config.json")
                && err.contains("cannot run it"),
            "{err}"
        );
        let err = lookup_in(p, &text, "index.docker.io", "library/busybox")
            .unwrap_err()
            .to_string();
        assert!(err.contains("docker-credential-brig-absent-2 "), "{err}");
        assert_eq!(
            lookup_in(p, &text, "quay.io", "a")
                .unwrap()
                .unwrap()
                .username,
            "q"
        );
        let err = lookup_in(p, &text, "ghcr.io", "a").unwrap_err().to_string();
        assert!(err.contains("docker-credential-brig-absent-3"), "{err}");
        let err = lookup_in(p, r#"{"credsStore": "../evil"}"#, "h", "r")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a path"), "{err}");
        let err = lookup_in(p, r#"{"credHelpers": []}"#, "h", "r")
            .unwrap_err()
            .to_string();
        assert!(err.contains("credHelpers"), "{err}");
    }

    #[test]
    fn explicit_file_must_exist_defaults_may_not() {
        let files = AuthFiles {
            explicit: Some(PathBuf::from("/nonexistent/brig-auth.json")),
            defaults: vec![],
        };
        assert!(files.lookup("h", "r").is_err());
        let files = AuthFiles {
            explicit: None,
            defaults: vec![PathBuf::from("/nonexistent/brig-auth.json")],
        };
        assert_eq!(files.lookup("h", "r").unwrap(), None);
    }
}
