//! How container processes are made: the clone, the sync protocol, init's side, the exec'd
//! (tenant) side, the final exec step and the per-process attributes.

pub mod attrs;
pub mod clone;
pub mod execve;
pub mod init;
pub mod sync;
pub mod tenant;
// Issue 12 (escapes 1-3): the binary, the host /proc and the cwd out of the container's reach.
pub mod cloned_binary;
pub mod guard;
