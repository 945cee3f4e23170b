//! libcontainer: everything the brig OCI runtime does, usable without the CLI.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// Raw syscalls live in `sys`, behind safe wrappers; nowhere else.
#![deny(unsafe_code)]

pub mod atomic_file;
pub mod capabilities;
pub mod cgroups;
pub mod config;
pub mod container;
pub mod criu;
pub mod error;
pub mod features;
pub mod hooks;
#[cfg(feature = "image")]
pub mod image;
pub mod intel_rdt;
pub mod lsm;
pub mod mountinfo;
pub mod namespaces;
pub mod netdev;
pub mod process;
pub mod procfs;
pub mod rlimits;
pub mod rootfs;
pub mod rootless;
pub mod sd_notify;
pub mod seccomp;
pub mod signal;
pub mod spec_template;
pub mod state;
#[allow(unsafe_code)]
pub mod sys;
pub mod sysctl;
pub mod timestamp;
pub mod tty;
pub mod user_ns;

pub use error::{Error, Result};
