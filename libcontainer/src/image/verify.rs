//! What a manifest or index may be: image indexes (OCI, Docker manifest list) and image
//! manifests (OCI, Docker schema 2) whose config is an image config and whose layers are
//! layers brig can unpack. Schema 1, artifacts and unknown media types are refused.

use oci_spec::image::{ImageIndex, ImageManifest, MediaType};

use super::error::{Error, Result};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const SCHEMA1: [&str; 3] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/json",
];
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// The media types `Accept` should list, best first.
pub const ACCEPT: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// Layer media types brig can unpack.
pub const LAYER_TYPES: [&str; 11] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar",
];

#[derive(Debug)]
pub enum Parsed {
    Index(Box<ImageIndex>),
    Manifest(Box<ImageManifest>),
}

pub fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// Parses `bytes` (already verified against their digest) and checks it is an image.
/// `hint` is the media type the descriptor or the registry gave.
pub fn parse(what: &str, bytes: &[u8], hint: Option<&str>) -> Result<(Parsed, String)> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|source| Error::Json {
        what: what.into(),
        source,
    })?;
    let field = value.get("mediaType").and_then(|v| v.as_str());
    let version = value.get("schemaVersion").and_then(|v| v.as_u64());
    let schema1 = |t: &str| SCHEMA1[..2].contains(&t);
    if version == Some(1) || field.is_some_and(schema1) || hint.is_some_and(schema1) {
        return Err(Error::unsupported(
            what,
            "a Docker schema 1 manifest (deprecated; only schema 2 and OCI images are pulled)",
        ));
    }
    if version != Some(2) {
        return Err(Error::invalid(what, "schemaVersion is not 2"));
    }
    // The descriptor's type and the document's own must agree (a manifest served as an index
    // would otherwise be read as the wrong thing); generic JSON types say nothing.
    let hint = hint.filter(|h| !SCHEMA1[2..].contains(h) && !h.is_empty());
    if let (Some(field), Some(hint)) = (field, hint) {
        if field != hint {
            return Err(Error::invalid(
                what,
                format!("its mediaType {field:?} is not the {hint:?} it was fetched as"),
            ));
        }
    }
    let media_type = match field.or(hint) {
        Some(t) => t.to_string(),
        None if value.get("manifests").is_some() => OCI_INDEX.into(),
        None if value.get("config").is_some() => OCI_MANIFEST.into(),
        None => return Err(Error::invalid(what, "neither an index nor a manifest")),
    };
    if is_index_type(&media_type) {
        let index: ImageIndex = serde_json::from_value(value).map_err(|source| Error::Json {
            what: what.into(),
            source,
        })?;
        return Ok((Parsed::Index(Box::new(index)), media_type));
    }
    if media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST {
        let reason = if media_type == MediaType::ArtifactManifest.to_string() {
            "an artifact manifest, not a container image".to_string()
        } else {
            format!("media type {media_type:?} is not an image manifest or index")
        };
        return Err(Error::unsupported(what, reason));
    }
    let manifest: ImageManifest = serde_json::from_value(value).map_err(|source| Error::Json {
        what: what.into(),
        source,
    })?;
    check_manifest(what, &manifest)?;
    Ok((Parsed::Manifest(Box::new(manifest)), media_type))
}

fn check_manifest(what: &str, manifest: &ImageManifest) -> Result<()> {
    if let Some(artifact) = manifest.artifact_type() {
        return Err(Error::unsupported(
            what,
            format!("an artifact (artifactType {artifact}), not a container image"),
        ));
    }
    let config = manifest.config().media_type().to_string();
    if config != OCI_CONFIG && config != DOCKER_CONFIG {
        return Err(Error::unsupported(
            what,
            format!("an artifact: its config has media type {config:?}, not an image config"),
        ));
    }
    for (i, layer) in manifest.layers().iter().enumerate() {
        let media_type = layer.media_type().to_string();
        if !LAYER_TYPES.contains(&media_type.as_str()) {
            return Err(Error::unsupported(
                what,
                format!(
                    "layer {i} ({}) has media type {media_type:?}, not a layer brig can unpack",
                    layer.digest()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn manifest(config_type: &str, layer_type: &str, extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}"{extra},
            "config":{{"mediaType":"{config_type}","digest":"{D}","size":3}},
            "layers":[{{"mediaType":"{layer_type}","digest":"{D}","size":3}}]}}"#
        )
    }

    fn err(bytes: &str, hint: Option<&str>) -> String {
        parse("m", bytes.as_bytes(), hint).unwrap_err().to_string()
    }

    #[test]
    fn images_pass() {
        let m = manifest(OCI_CONFIG, LAYER_TYPES[1], "");
        let (parsed, t) = parse("m", m.as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert!(matches!(parsed, Parsed::Manifest(_)));
        assert_eq!(t, OCI_MANIFEST);
        let index = r#"{"schemaVersion":2,"manifests":[]}"#;
        let (parsed, t) = parse("i", index.as_bytes(), None).unwrap();
        assert!(matches!(parsed, Parsed::Index(_)));
        assert_eq!(t, OCI_INDEX);
    }

    #[test]
    fn non_images_are_refused() {
        let e = err(&manifest(OCI_CONFIG, "application/x-foo", ""), None);
        assert!(
            e.contains("layer 0") && e.contains("application/x-foo"),
            "{e}"
        );
        let e = err(
            &manifest(
                "application/vnd.cncf.helm.config.v1+json",
                LAYER_TYPES[0],
                "",
            ),
            None,
        );
        assert!(e.contains("an artifact") && e.contains("helm"), "{e}");
        let e = err(
            &manifest(
                OCI_CONFIG,
                LAYER_TYPES[0],
                r#","artifactType":"application/x-sbom""#,
            ),
            None,
        );
        assert!(e.contains("artifactType application/x-sbom"), "{e}");
        let e = err(r#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#, None);
        assert!(e.contains("schema 1"), "{e}");
        let e = err(
            r#"{"schemaVersion":2,"manifests":[]}"#,
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
        );
        assert!(e.contains("schema 1"), "{e}");
        let e = err(&manifest(OCI_CONFIG, LAYER_TYPES[0], ""), Some(OCI_INDEX));
        assert!(e.contains("not the"), "{e}");
        let e = err("{", None);
        assert!(e.contains("invalid JSON"), "{e}");
    }
}
