//! How container processes are made: the clone, the sync channel, and init's side.

pub mod channel;
pub mod clone;
pub mod exec;
pub mod init;
pub mod tenant;
// Issue 12 (escapes 1-3): the binary, the host /proc and the cwd out of the container's reach.
pub mod cloned_binary;
pub mod guard;
