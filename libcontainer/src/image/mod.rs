//! The image stage: turns an OCI image into a runtime bundle. It never imports the runtime
//! modules and the runtime never imports it (ARCHITECTURE.md).

pub mod convert;
pub mod passwd;
