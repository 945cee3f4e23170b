//! The library error type: every variant says what was being done and why it failed.

use nix::errno::Errno;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A syscall failed while doing `what`.
    #[error("{what}: {}", errno_text(*errno))]
    Sys { what: String, errno: Errno },

    /// A file operation failed while doing `what`.
    #[error("{what}: {}", io_text(err))]
    Io { what: String, err: std::io::Error },

    /// config.json (or another input) is wrong; `field` names the JSON path.
    #[error("{field}: {reason}")]
    Config { field: String, reason: String },

    /// An option the caller gave (or left out) is wrong; `option` is the library's own name for
    /// it (`console_socket`, `sub_cgroups`): a CLI names its flag instead.
    #[error("{option}: {reason}")]
    Option {
        option: &'static str,
        reason: String,
    },

    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },

    #[error("container {0:?} does not exist")]
    NotFound(String),

    #[error("container {0:?} already exists")]
    Exists(String),

    /// The operation is not allowed in the container's current state.
    #[error("cannot {op} container {id:?}: it is {status}")]
    WrongState {
        op: &'static str,
        id: String,
        status: String,
    },

    /// A lifecycle hook failed, timed out or could not run.
    #[error("{0}")]
    Hook(String),

    /// The container's init reported (or caused) a failure.
    #[error("{0}")]
    Init(String),

    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn option(option: &'static str, reason: impl Into<String>) -> Self {
        Error::Option {
            option,
            reason: reason.into(),
        }
    }

    /// The errno behind this error, when a syscall caused it.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            Error::Io { err, .. } => err.raw_os_error().map(Errno::from_raw),
            _ => None,
        }
    }
}

/// `strerror` in lowercase, the way our messages are written.
pub fn errno_text(errno: Errno) -> String {
    errno.desc().to_lowercase()
}

fn io_text(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(raw) => errno_text(Errno::from_raw(raw)),
        None => err.to_string(),
    }
}

/// Attach "what was being done" to a failing syscall or file operation.
pub trait Context<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T> Context<T> for nix::Result<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|errno| Error::Sys {
            what: what().into(),
            errno,
        })
    }
}

impl<T> Context<T> for std::io::Result<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|err| Error::Io {
            what: what().into(),
            err,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_name_the_action() {
        let err: Result<()> = Err(Errno::ENOENT).ctx(|| "open config.json in /b");
        assert_eq!(
            err.unwrap_err().to_string(),
            "open config.json in /b: no such file or directory"
        );
        let err: Result<()> =
            Err(std::io::Error::from_raw_os_error(libc::EACCES)).ctx(|| "write state");
        assert_eq!(
            err.unwrap_err().to_string(),
            "write state: permission denied"
        );
    }
}
