//! The image stage: from an OCI image (registry, layout, archive) to a runtime bundle. It never
//! imports the runtime modules, and the runtime never imports it.

pub mod registry;
