//! The image stage (issues 14 and 15): references, the transports that read an image (OCI
//! layout, oci-archive, docker-archive, a registry), platform choice, verification of every
//! byte, the content-addressed store, layer unpacking and the image config -> config.json
//! conversion. It never runs a container and imports no runtime module.

pub mod archive;
pub mod bundle;
pub mod cache;
pub mod convert;
pub mod digest;
pub mod error;
pub mod layout;
pub mod passwd;
pub mod platform;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod registry_source;
pub mod source;
pub mod store;
pub mod tee;
pub mod unpack;
pub mod verify;

pub use error::{Error, Result};
