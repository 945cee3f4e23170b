//! How container processes are made: the clone, the sync channel, and init's side.

pub mod channel;
pub mod clone;
pub mod exec;
pub mod init;
pub mod tenant;
