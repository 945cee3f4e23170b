//! Tar archives as sources, read in place (never extracted): `oci-archive:` (a tar of an OCI
//! layout, served through [`Layout`](super::layout::Layout)) and `docker-archive:` (what
//! `docker save` writes: `manifest.json` + the legacy layout, converted here to an OCI
//! manifest whose digests are computed from the bytes).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use oci_spec::image::{Descriptor, Digest, MediaType};
use sha2::{Digest as _, Sha256};

use super::error::{Error, Result};
use super::layout::Files;
use super::reference::Reference;
use super::source::{Source, TopManifest, MANIFEST_LIMIT};

/// How many symlinks to follow inside an archive before giving up.
const MAX_LINKS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Span {
    offset: u64,
    size: u64,
}

/// The regular files of a tar, found by one pass over its headers and then read in place.
pub struct TarFiles {
    path: PathBuf,
    files: HashMap<String, Span>,
    links: HashMap<String, String>,
}

/// `./a//b/` → `a/b`; `..` resolved; None when it leaves the root.
fn normalize(path: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Some(parts.join("/"))
}

impl TarFiles {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io("open archive", path, e))?;
        let what = |e: std::io::Error| Error::io("read archive", path, e);
        let mut archive = tar::Archive::new(std::io::BufReader::new(file));
        let mut files = HashMap::new();
        let mut links = HashMap::new();
        // Seeks over the files' data: one pass over the headers only.
        for entry in archive.entries_with_seek().map_err(what)? {
            let entry = entry.map_err(what)?;
            let name = entry.path().map_err(what)?.into_owned();
            let Some(key) = normalize(&name) else {
                continue;
            };
            let kind = entry.header().entry_type();
            if kind.is_file() {
                files.insert(
                    key,
                    Span {
                        offset: entry.raw_file_position(),
                        size: entry.size(),
                    },
                );
            } else if kind.is_symlink() || kind.is_hard_link() {
                let Some(target) = entry.link_name().map_err(what)? else {
                    continue;
                };
                // A symlink is relative to its directory, a hard link to the archive's root.
                let base = if kind.is_symlink() {
                    name.parent().map(Path::to_path_buf).unwrap_or_default()
                } else {
                    PathBuf::new()
                };
                if let Some(resolved) = normalize(&base.join(&target)) {
                    links.insert(key, resolved);
                }
            }
        }
        Ok(TarFiles {
            path: path.into(),
            files,
            links,
        })
    }

    fn span(&self, rel: &str) -> Option<Span> {
        let mut key = normalize(Path::new(rel))?;
        for _ in 0..MAX_LINKS {
            if let Some(span) = self.files.get(&key) {
                return Some(*span);
            }
            key = self.links.get(&key)?.clone();
        }
        None
    }
}

impl Files for TarFiles {
    fn open(&self, rel: &str) -> Result<(Box<dyn Read + Send + '_>, u64)> {
        let span = self.span(rel).ok_or_else(|| Error::NotFound {
            what: format!("{}: {rel}", self.path.display()),
        })?;
        let mut file =
            File::open(&self.path).map_err(|e| Error::io("open archive", &self.path, e))?;
        file.seek(SeekFrom::Start(span.offset))
            .map_err(|e| Error::io("seek in archive", &self.path, e))?;
        Ok((Box::new(file.take(span.size)), span.size))
    }
}

/// One image of a docker-archive's manifest.json.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

pub struct DockerArchive {
    files: TarFiles,
    describe: String,
    manifest: Vec<u8>,
    /// The computed digest of each blob → its file in the archive.
    blobs: HashMap<Digest, String>,
}

/// `busybox:1` and `docker.io/library/busybox:1` name the same image.
fn same_name(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<Reference>(), b.parse::<Reference>()) {
        (Ok(Reference::Registry(a)), Ok(Reference::Registry(b))) => a == b,
        _ => false,
    }
}

impl DockerArchive {
    pub fn open(path: &Path, name: Option<String>) -> Result<Self> {
        let files = TarFiles::open(path)?;
        let describe = Reference::DockerArchive {
            file: path.into(),
            name: name.clone(),
        }
        .to_string();
        let read_all = |rel: &str| -> Result<Vec<u8>> {
            let (reader, size) = files.open(rel).map_err(|e| match e {
                Error::NotFound { .. } => Error::NotFound {
                    what: format!("{describe}: {rel}"),
                },
                other => other,
            })?;
            if size > MANIFEST_LIMIT * 8 {
                return Err(Error::TooBig {
                    what: format!("{describe}: {rel}"),
                    size,
                    limit: MANIFEST_LIMIT * 8,
                });
            }
            let mut bytes = Vec::new();
            reader
                .take(size)
                .read_to_end(&mut bytes)
                .map_err(|e| Error::from_read(format!("{describe}: {rel}"), e))?;
            Ok(bytes)
        };
        let saved: Vec<SavedImage> =
            serde_json::from_slice(&read_all("manifest.json")?).map_err(|source| Error::Json {
                what: format!("{describe}: manifest.json"),
                source,
            })?;
        let tags = |image: &SavedImage| image.repo_tags.clone().unwrap_or_default();
        let image = match &name {
            Some(name) => saved
                .iter()
                .find(|image| tags(image).iter().any(|tag| same_name(tag, name)))
                .ok_or_else(|| Error::NotFound {
                    what: format!(
                        "{describe}: no image tagged {name:?} (tags: {})",
                        saved.iter().flat_map(tags).collect::<Vec<_>>().join(", ")
                    ),
                })?,
            None => match saved.as_slice() {
                [only] => only,
                [] => {
                    return Err(Error::NotFound {
                        what: format!("{describe}: manifest.json lists no image"),
                    })
                }
                several => {
                    return Err(Error::invalid(
                        &describe,
                        format!(
                            "{} images: name one as {describe}:NAME:TAG (tags: {})",
                            several.len(),
                            several.iter().flat_map(tags).collect::<Vec<_>>().join(", ")
                        ),
                    ))
                }
            },
        };
        let mut blobs = HashMap::new();
        let config = read_all(&image.config)?;
        let config_digest = super::digest::sha256(&config);
        blobs.insert(config_digest.clone(), image.config.clone());
        let mut layers = Vec::new();
        for rel in &image.layers {
            let (digest, size, gzip) = hash_file(&files, rel, &describe)?;
            let media_type = if gzip {
                MediaType::ImageLayerGzip
            } else {
                MediaType::ImageLayer
            };
            layers.push(serde_json::json!({
                "mediaType": media_type.to_string(),
                "digest": digest.to_string(),
                "size": size,
            }));
            blobs.insert(digest, rel.clone());
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MediaType::ImageManifest.to_string(),
            "config": {
                "mediaType": MediaType::ImageConfig.to_string(),
                "digest": config_digest.to_string(),
                "size": config.len(),
            },
            "layers": layers,
        });
        let manifest = serde_json::to_vec(&manifest).map_err(|source| Error::Json {
            what: format!("{describe}: converted manifest"),
            source,
        })?;
        Ok(DockerArchive {
            files,
            describe,
            manifest,
            blobs,
        })
    }
}

/// The sha256 and size of a file in the archive, and whether it is gzip-compressed.
fn hash_file(files: &TarFiles, rel: &str, describe: &str) -> Result<(Digest, u64, bool)> {
    let what = format!("{describe}: {rel}");
    let (mut reader, _) = files.open(rel).map_err(|e| match e {
        Error::NotFound { .. } => Error::NotFound { what: what.clone() },
        other => other,
    })?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    let mut head = [0u8; 2];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| Error::from_read(what.clone(), e))?;
        if n == 0 {
            break;
        }
        if size < 2 {
            for (i, b) in buf[..n].iter().enumerate().take(2 - size as usize) {
                head[size as usize + i] = *b;
            }
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let digest = Digest::from_str(&format!("sha256:{hex}"))
        .map_err(|e| Error::invalid(&what, e.to_string()))?;
    Ok((digest, size, size >= 2 && head == [0x1f, 0x8b]))
}

impl Source for DockerArchive {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn top(&self) -> Result<TopManifest> {
        Ok(TopManifest {
            bytes: self.manifest.clone(),
            media_type: Some(MediaType::ImageManifest.to_string()),
            claimed_digest: None,
            claimed_size: None,
        })
    }

    fn blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        let rel = self
            .blobs
            .get(desc.digest())
            .ok_or_else(|| Error::NotFound {
                what: format!("{}: blob {}", self.describe, desc.digest()),
            })?;
        Ok(self.files.open(rel)?.0)
    }
}
