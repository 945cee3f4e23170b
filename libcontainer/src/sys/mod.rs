//! The syscall layer: every raw system call brig makes, behind a safe, typed function.
//!
//! Only this module holds `unsafe`; the rest of the crate is `#![deny(unsafe_code)]`. Where nix
//! wraps a call, use nix; a wrapper here exists because nix lacks the call (clone3, pidfd_open,
//! the new mount API, seccomp(2), close_range, ...) or lacks a flag brig needs. Each wrapper is
//! one syscall, returns `std::io::Result` (or nix's `Result`), and carries a `// SAFETY:` line.

pub mod bpf;
pub mod capability;
pub mod clone;
pub mod fd;
pub mod ioprio;
pub mod keyring;
pub mod mempolicy;
pub mod mount;
pub mod pidfd;
pub mod process;
pub mod sched;
pub mod seccomp;
pub mod signal;
pub mod socket;
pub mod tty;
pub mod uts;
pub mod xattr;
