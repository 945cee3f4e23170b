//! The error of the image stage: every variant says which reference, digest, path or entry.

use std::path::PathBuf;

use super::reference::ReferenceError;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Read {
        what: String,
        source: std::io::Error,
    },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{what}: size mismatch: the descriptor says {expected} bytes, the content has {actual}"
    )]
    TooShort {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what}: size mismatch: the content is longer than the {expected} bytes its descriptor says (cut off)")]
    TooLong { what: String, expected: u64 },
    #[error("{what}: {size} bytes is more than the {limit} bytes allowed")]
    TooBig { what: String, size: u64, limit: u64 },
    #[error("{what}: invalid JSON: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error("{what}: not supported: {reason}")]
    Unsupported { what: String, reason: String },
    #[error("no image for platform {wanted} in {what}; it has: {available}")]
    NoPlatform {
        what: String,
        wanted: String,
        available: String,
    },
    #[error("{what}: not found")]
    NotFound { what: String },
    #[error("{0}")]
    Transport(String),
    #[error("{what}: {source}")]
    Unpack {
        what: String,
        source: Box<super::unpack::UnpackError>,
    },
}

impl Error {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub fn unsupported(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Unsupported {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// An error that came through a verifying reader as an `io::Error` gets its own type back.
    pub fn from_read(what: impl Into<String>, source: std::io::Error) -> Self {
        if source.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            if let Some(Ok(err)) = source.into_inner().map(|inner| inner.downcast::<Error>()) {
                return *err;
            }
            return Error::Transport(format!("{}: read failed", what.into()));
        }
        Error::Read {
            what: what.into(),
            source,
        }
    }
}
