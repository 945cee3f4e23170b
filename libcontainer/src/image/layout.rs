//! The OCI image layout as a source (`oci:DIR[:NAME]`, and inside a tar for oci-archive):
//! `oci-layout`, `index.json`, `blobs/<alg>/<hex>`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, MediaType};

use super::digest;
use super::error::{Error, Result};
use super::source::{Source, TopManifest, MANIFEST_LIMIT};

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Files of a layout, by path relative to its root.
pub trait Files: Send + Sync {
    /// The file's reader and its size, or `Error::NotFound`.
    fn open(&self, rel: &str) -> Result<(Box<dyn Read + Send + '_>, u64)>;
}

/// A layout in a directory.
pub struct DirFiles {
    root: PathBuf,
}

impl DirFiles {
    pub fn new(root: &Path) -> Result<Self> {
        match std::fs::metadata(root) {
            Ok(meta) if meta.is_dir() => Ok(DirFiles { root: root.into() }),
            Ok(_) => Err(Error::invalid(
                format!("oci layout {}", root.display()),
                "not a directory",
            )),
            Err(e) => Err(Error::io("open oci layout", root, e)),
        }
    }
}

impl Files for DirFiles {
    fn open(&self, rel: &str) -> Result<(Box<dyn Read + Send + '_>, u64)> {
        let path = self.root.join(rel);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound {
                    what: path.display().to_string(),
                })
            }
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        let size = file
            .metadata()
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        Ok((Box::new(file), size))
    }
}

pub struct Layout<F> {
    files: F,
    describe: String,
    name: Option<String>,
}

impl<F: Files> Layout<F> {
    pub fn new(files: F, describe: String, name: Option<String>) -> Self {
        Layout {
            files,
            describe,
            name,
        }
    }

    fn read_small(&self, rel: &str) -> Result<Vec<u8>> {
        let what = format!("{}: {rel}", self.describe);
        let (reader, size) = self.files.open(rel).map_err(|e| match e {
            Error::NotFound { .. } => Error::NotFound { what: what.clone() },
            other => other,
        })?;
        if size > MANIFEST_LIMIT {
            return Err(Error::TooBig {
                what,
                size,
                limit: MANIFEST_LIMIT,
            });
        }
        let mut bytes = Vec::new();
        reader
            .take(MANIFEST_LIMIT + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::from_read(what, e))?;
        Ok(bytes)
    }

    fn check_header(&self) -> Result<()> {
        let bytes = self.read_small("oci-layout")?;
        let what = format!("{}: oci-layout", self.describe);
        let header: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| Error::Json {
                what: what.clone(),
                source,
            })?;
        match header.get("imageLayoutVersion").and_then(|v| v.as_str()) {
            Some(v) if v.starts_with("1.") => Ok(()),
            Some(v) => Err(Error::unsupported(
                what,
                format!("imageLayoutVersion {v:?}"),
            )),
            None => Err(Error::invalid(what, "no imageLayoutVersion")),
        }
    }
}

fn ref_name(desc: &Descriptor) -> Option<&str> {
    desc.annotations()
        .as_ref()
        .and_then(|a| a.get(REF_NAME))
        .map(String::as_str)
}

impl<F: Files> Source for Layout<F> {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn top(&self) -> Result<TopManifest> {
        self.check_header()?;
        let bytes = self.read_small("index.json")?;
        let what = format!("{}: index.json", self.describe);
        let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            what: what.clone(),
            source,
        })?;
        let manifests = index.manifests();
        let chosen = match &self.name {
            Some(name) => manifests
                .iter()
                .find(|d| ref_name(d) == Some(name.as_str()))
                .ok_or_else(|| {
                    let names: Vec<&str> = manifests.iter().filter_map(ref_name).collect();
                    Error::NotFound {
                        what: format!(
                            "{}: no image named {name:?} (names: {})",
                            self.describe,
                            if names.is_empty() {
                                "none".into()
                            } else {
                                names.join(", ")
                            }
                        ),
                    }
                })?,
            None => match manifests.as_slice() {
                [] => {
                    return Err(Error::NotFound {
                        what: format!("{}: index.json lists no image", self.describe),
                    })
                }
                [only] => only,
                several => {
                    let names: Vec<&str> = several.iter().filter_map(ref_name).collect();
                    if !names.is_empty() {
                        return Err(Error::invalid(
                            &self.describe,
                            format!(
                                "index.json has {} images: name one as {}:NAME (names: {})",
                                several.len(),
                                self.describe,
                                names.join(", ")
                            ),
                        ));
                    }
                    // Unnamed entries, one per platform: index.json is the image index.
                    return Ok(TopManifest {
                        bytes,
                        media_type: Some(MediaType::ImageIndex.to_string()),
                        claimed_digest: None,
                        claimed_size: None,
                    });
                }
            },
        };
        let mut reader = self.blob(chosen)?.take(MANIFEST_LIMIT + 1);
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| Error::from_read(format!("{what}: {}", chosen.digest()), e))?;
        Ok(TopManifest {
            bytes,
            media_type: Some(chosen.media_type().to_string()),
            claimed_digest: Some(chosen.digest().clone()),
            claimed_size: Some(chosen.size()),
        })
    }

    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        let digest = desc.digest();
        digest::require_sha256(&self.describe, digest)?;
        let rel = format!("blobs/{}/{}", digest.algorithm(), digest.digest());
        match self.files.open(&rel) {
            Ok((reader, _)) => Ok(reader),
            Err(Error::NotFound { .. }) => Err(Error::NotFound {
                what: format!("{}: blob {digest}", self.describe),
            }),
            Err(e) => Err(e),
        }
    }
}
