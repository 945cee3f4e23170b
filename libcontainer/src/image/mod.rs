//! The image stage: OCI images -> runtime bundles. Never imports the runtime modules.

pub mod unpack;
