//! The transport trait: what every source of images (registry, OCI layout, oci-archive,
//! docker-archive) provides. Sources hand out bytes as they have them; verification,
//! platform choice and the store are written once on top (see `pull`).

use std::io::Read;
use std::path::Path;

use oci_spec::image::{Descriptor, Digest};

use super::archive::{DockerArchive, TarFiles};
use super::error::Result;
use super::layout::{DirFiles, Layout};
use super::reference::Reference;

/// The largest manifest or index accepted (registries cap them at 4 MiB).
pub const MANIFEST_LIMIT: u64 = 4 << 20;

/// The manifest or index a reference names, unverified.
#[derive(Debug, Clone)]
pub struct TopManifest {
    pub bytes: Vec<u8>,
    /// The media type the source gave (Content-Type, the descriptor's), if any.
    pub media_type: Option<String>,
    /// The digest the source claims for these bytes (a layout's index.json descriptor, a
    /// registry's Docker-Content-Digest); checked by `pull`.
    pub claimed_digest: Option<Digest>,
    /// The size the source claims (a descriptor's), checked too.
    pub claimed_size: Option<u64>,
}

pub trait Source: Send + Sync {
    /// What the source is, for messages (`oci:/path:name`, `localhost:5000/repo:tag`).
    fn describe(&self) -> String;

    /// The top manifest or index the reference names.
    fn top(&self) -> Result<TopManifest>;

    /// A manifest or index that an index points to. Registries serve these from
    /// `/manifests/`; the others from their blobs.
    fn manifest(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        self.blob(desc)
    }

    /// A blob's bytes as the source has them; the caller verifies them.
    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>>;
}

/// The source for a local reference (`oci:`, `oci-archive:`, `docker-archive:`); None for a
/// registry reference, whose source needs the network options (`registry_source`).
pub fn open_local(reference: &Reference) -> Result<Option<Box<dyn Source>>> {
    Ok(Some(match reference {
        Reference::Layout { dir, name } => Box::new(Layout::new(
            DirFiles::new(dir)?,
            format!("{reference}"),
            name.clone(),
        )),
        Reference::OciArchive { file, name } => Box::new(Layout::new(
            TarFiles::open(Path::new(file))?,
            format!("{reference}"),
            name.clone(),
        )),
        Reference::DockerArchive { file, name } => {
            Box::new(DockerArchive::open(file, name.clone())?)
        }
        Reference::Registry(_) => return Ok(None),
    }))
}
