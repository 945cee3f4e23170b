//! Errors of the registry client: each names the registry and, where there is one, the
//! repository and the reference (tag or digest) being fetched.

use std::path::PathBuf;

/// What a request was about, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub registry: String,
    pub repository: String,
    /// A tag or a digest; empty for requests about the registry itself (ping, token).
    pub reference: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "registry {}", self.registry)?;
        if !self.repository.is_empty() {
            write!(f, ", repository {}", self.repository)?;
        }
        if !self.reference.is_empty() {
            write!(f, ", reference {}", self.reference)?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid registry host {host:?}: {reason}")]
    InvalidHost { host: String, reason: &'static str },

    #[error("invalid --creds value: {0}")]
    InvalidCreds(&'static str),

    #[error("reading credentials file {}: {source}", path.display())]
    AuthFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("parsing credentials file {}: {reason}", path.display())]
    AuthFileFormat { path: PathBuf, reason: String },

    #[error("credential helper {helper} (from {}) for {server}: {reason}", path.display())]
    CredentialHelper {
        helper: String,
        path: PathBuf,
        server: String,
        reason: String,
    },

    #[error("loading CA certificates from {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },

    #[error("{target}: plain http to {url} refused: the registry is not on a loopback address and plain http was not allowed (--plain-http)")]
    PlainHttpRefused { target: Box<Target>, url: String },

    #[error("{target}: {what} {url}: {source}")]
    Transport {
        target: Box<Target>,
        what: &'static str,
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },

    #[error("{target}: {what}: cannot reach {host}: {reason}")]
    Unreachable {
        target: Box<Target>,
        what: &'static str,
        host: String,
        reason: &'static str,
        #[source]
        source: Box<ureq::Error>,
    },

    #[error("{target}: {what} {url}: {source}")]
    Io {
        target: Box<Target>,
        what: &'static str,
        url: String,
        #[source]
        source: std::io::Error,
    },

    /// The registry answered with an error status; `code` is the distribution-spec error code
    /// (`MANIFEST_UNKNOWN`, `UNAUTHORIZED`, ...) when the body had one, else `HTTP_<status>`.
    #[error("{target}: {code}: {message} (http {status})")]
    Api {
        target: Box<Target>,
        status: u16,
        code: String,
        message: String,
    },

    #[error("{target}: manifest larger than {limit} bytes")]
    ManifestTooLarge { target: Box<Target>, limit: u64 },

    #[error("{target}: cannot parse authentication challenge {header:?}: {reason}")]
    Challenge {
        target: Box<Target>,
        header: String,
        reason: &'static str,
    },

    #[error("{target}: token from {realm}: {reason}")]
    Token {
        target: Box<Target>,
        realm: String,
        reason: String,
    },

    #[error("{target}: redirect from {url}: {reason}")]
    Redirect {
        target: Box<Target>,
        url: String,
        reason: String,
    },

    #[error("{target}: resuming at byte {offset}: {reason}")]
    Resume {
        target: Box<Target>,
        offset: u64,
        reason: String,
    },
}

impl RegistryError {
    /// The distribution-spec error code of a registry answer, e.g. `MANIFEST_UNKNOWN`.
    pub fn code(&self) -> Option<&str> {
        match self {
            RegistryError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, RegistryError>;
