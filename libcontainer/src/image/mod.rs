//! The image stage (issue 14): references, the transports that read an image (OCI layout,
//! oci-archive, docker-archive, a registry), platform choice, verification of every byte, and
//! the content-addressed store. It never runs a container and imports no runtime module.

pub mod archive;
pub mod digest;
pub mod error;
pub mod layout;
pub mod platform;
pub mod pull;
pub mod reference;
// TODO(integrator): once the `registry` helper's `image/registry/` is merged, add
// `pub mod registry;` and `pub mod registry_source;` (registry_source.rs, in this directory, is
// the registry as a `Source`; it was built and run against that branch's API) and use it in
// src/commands/pull.rs (see the TODO there).
pub mod source;
pub mod store;
pub mod verify;

pub use error::{Error, Result};
