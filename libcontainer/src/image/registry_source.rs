//! The registry as a [`Source`]: the `registry` module's client fetches, `pull` verifies.
//! A manifest fetched by tag is checked against `Docker-Content-Digest` when the registry
//! sends one (and by digest against the reference's digest, in `pull`).

use std::io::{Cursor, Read};

use oci_spec::image::Descriptor;

use super::digest;
use super::error::{Error, Result};
use super::reference::RegistryReference;
use super::registry::{Registry, RegistryOptions};
use super::source::{Source, TopManifest};
use super::verify;

pub struct RegistrySource {
    registry: Registry,
    reference: RegistryReference,
}

fn transport(err: impl std::fmt::Display) -> Error {
    Error::Transport(err.to_string())
}

impl RegistrySource {
    pub fn new(reference: &RegistryReference, options: RegistryOptions) -> Result<Self> {
        // The client maps docker.io to its API host, registry-1.docker.io.
        let registry =
            Registry::new(&reference.host, &reference.repository, options).map_err(transport)?;
        Ok(RegistrySource {
            registry,
            reference: reference.clone(),
        })
    }
}

impl Source for RegistrySource {
    fn describe(&self) -> String {
        self.reference.to_string()
    }

    fn top(&self) -> Result<TopManifest> {
        let response = self
            .registry
            .manifest(&self.reference.manifest_reference(), &verify::ACCEPT)
            .map_err(transport)?;
        let claimed_digest = response
            .content_digest
            .as_deref()
            .map(|d| digest::parse(&format!("{}: Docker-Content-Digest", self.describe()), d))
            .transpose()?;
        Ok(TopManifest {
            bytes: response.bytes,
            media_type: Some(response.media_type).filter(|t| !t.is_empty()),
            claimed_digest,
            claimed_size: None,
        })
    }

    fn manifest(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        let media_type = desc.media_type().to_string();
        let response = self
            .registry
            .manifest(desc.digest().as_ref(), &[media_type.as_str()])
            .map_err(transport)?;
        Ok(Box::new(Cursor::new(response.bytes)))
    }

    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        let reader = self
            .registry
            .blob(desc.digest().as_ref(), 0)
            .map_err(transport)?;
        Ok(Box::new(reader))
    }
}
