//! Image references: what `brig pull` is given.
//!
//! - `[host[:port]/]repo[:tag][@sha256:HEX]`: a registry (the digest wins over the tag; a
//!   short name is Docker Hub's: `busybox` is `docker.io/library/busybox:latest`, served by
//!   `registry-1.docker.io`); an optional `docker://` prefix as skopeo writes it;
//! - `oci:DIR[:NAME]`: an OCI image layout, NAME an `org.opencontainers.image.ref.name`;
//! - `oci-archive:FILE[:NAME]`: a tar of an OCI image layout;
//! - `docker-archive:FILE[:NAME:TAG]`: what `docker save` writes.
//!
//! As skopeo does, a path ends at its first `:`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use oci_spec::image::Digest;

pub const DOCKER_HUB: &str = "docker.io";
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
const MAX_NAME: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {input:?}: {part}")]
pub struct ReferenceError {
    pub input: String,
    /// Which part is wrong, and why.
    pub part: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryReference {
    /// As named (`docker.io` for Docker Hub); see [`RegistryReference::api_host`].
    pub host: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Registry(RegistryReference),
    Layout { dir: PathBuf, name: Option<String> },
    OciArchive { file: PathBuf, name: Option<String> },
    DockerArchive { file: PathBuf, name: Option<String> },
}

impl RegistryReference {
    /// The host the Distribution API is at.
    pub fn api_host(&self) -> &str {
        if self.host == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.host
        }
    }

    /// What to ask the registry's manifest endpoint for: the digest when there is one.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".into(),
        }
    }
}

impl fmt::Display for RegistryReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (transport, path, name) = match self {
            Reference::Registry(r) => return write!(f, "{r}"),
            Reference::Layout { dir, name } => ("oci", dir, name),
            Reference::OciArchive { file, name } => ("oci-archive", file, name),
            Reference::DockerArchive { file, name } => ("docker-archive", file, name),
        };
        write!(f, "{transport}:{}", path.display())?;
        if let Some(name) = name {
            write!(f, ":{name}")?;
        }
        Ok(())
    }
}

impl Reference {
    /// The digest the reference pins, if any.
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Reference::Registry(r) => r.digest.as_ref(),
            _ => None,
        }
    }

    /// The name stored in the store's index.json: the full form, paths made absolute.
    pub fn store_name(&self) -> String {
        let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
        match self {
            Reference::Registry(r) => r.to_string(),
            Reference::Layout { dir, name } => Reference::Layout {
                dir: absolute(dir),
                name: name.clone(),
            }
            .to_string(),
            Reference::OciArchive { file, name } => Reference::OciArchive {
                file: absolute(file),
                name: name.clone(),
            }
            .to_string(),
            Reference::DockerArchive { file, name } => Reference::DockerArchive {
                file: absolute(file),
                name: name.clone(),
            }
            .to_string(),
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, ReferenceError> {
        let err = |part: String| ReferenceError {
            input: input.to_string(),
            part,
        };
        if let Some(rest) = input.strip_prefix("oci:") {
            let (path, name) = split_path(rest, "oci", "directory").map_err(err)?;
            if let Some(name) = &name {
                check_ref_name(name).map_err(err)?;
            }
            return Ok(Reference::Layout { dir: path, name });
        }
        if let Some(rest) = input.strip_prefix("oci-archive:") {
            let (path, name) = split_path(rest, "oci-archive", "file").map_err(err)?;
            if let Some(name) = &name {
                check_ref_name(name).map_err(err)?;
            }
            return Ok(Reference::OciArchive { file: path, name });
        }
        if let Some(rest) = input.strip_prefix("docker-archive:") {
            let (path, name) = split_path(rest, "docker-archive", "file").map_err(err)?;
            if let Some(name) = &name {
                // NAME:TAG, itself a registry-style name.
                parse_registry(name).map_err(|e| err(format!("docker-archive name: {}", e)))?;
            }
            return Ok(Reference::DockerArchive { file: path, name });
        }
        let rest = input.strip_prefix("docker://").unwrap_or(input);
        parse_registry(rest).map(Reference::Registry).map_err(err)
    }
}

fn split_path(
    rest: &str,
    transport: &str,
    what: &str,
) -> Result<(PathBuf, Option<String>), String> {
    let (path, name) = match rest.split_once(':') {
        Some((path, name)) => (path, Some(name)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(format!("the {what} after \"{transport}:\" is empty"));
    }
    match name {
        Some("") => Err(format!("the name after \"{transport}:{path}:\" is empty")),
        _ => Ok((PathBuf::from(path), name.map(str::to_string))),
    }
}

/// An `org.opencontainers.image.ref.name`: printable, no whitespace.
fn check_ref_name(name: &str) -> Result<(), String> {
    if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "the name {name:?} has whitespace or control characters"
        ));
    }
    Ok(())
}

fn parse_registry(input: &str) -> Result<RegistryReference, String> {
    if input.is_empty() {
        return Err("it is empty".into());
    }
    let (rest, digest) = match input.split_once('@') {
        Some((rest, digest)) => {
            let parsed = Digest::from_str(digest)
                .map_err(|e| format!("the digest {digest:?} is not valid: {e}"))?;
            if parsed.algorithm().as_ref() != "sha256" {
                return Err(format!(
                    "the digest {digest:?} is not sha256 (the only algorithm supported)"
                ));
            }
            (rest, Some(parsed))
        }
        None => (input, None),
    };
    if rest.is_empty() {
        return Err("the name before '@' is empty".into());
    }
    // A tag is after the last ':' that follows the last '/' (a port's ':' is before it).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            (&rest[..at], Some(&rest[at + 1..]))
        }
        None => (rest, None),
    };
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    let (host, path) = match name.split_once('/') {
        Some((first, path))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            check_host(first)?;
            (first.to_string(), path.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    let host = if host == "index.docker.io" {
        DOCKER_HUB.to_string()
    } else {
        host
    };
    let repository = if host == DOCKER_HUB && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    check_repository(&repository)?;
    let tag = match (tag, &digest) {
        (Some(tag), _) => Some(tag.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some("latest".to_string()),
    };
    Ok(RegistryReference {
        host,
        repository,
        tag,
        digest,
    })
}

fn check_tag(tag: &str) -> Result<(), String> {
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "the tag {tag:?} is not valid (1 to 128 of [A-Za-z0-9_.-], not starting with '.' or '-')"
        ))
    }
}

fn check_host(host: &str) -> Result<(), String> {
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        match v6.split_once(']') {
            Some((addr, rest)) if addr.parse::<std::net::Ipv6Addr>().is_ok() => {
                (addr, rest.strip_prefix(':'))
            }
            _ => {
                return Err(format!(
                    "the registry host {host:?} is not a valid IPv6 address"
                ))
            }
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!(
                "the registry port {port:?} is not a number from 1 to 65535"
            ));
        }
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !host.starts_with('[') && !name.split('.').all(label_ok) {
        return Err(format!(
            "the registry host {name:?} is not a valid host name"
        ));
    }
    Ok(())
}

fn check_repository(repository: &str) -> Result<(), String> {
    if repository.len() > MAX_NAME {
        return Err(format!(
            "the repository {repository:?} is longer than {MAX_NAME} characters"
        ));
    }
    for component in repository.split('/') {
        if !valid_component(component) {
            return Err(format!(
                "the repository {repository:?} is not valid: component {component:?} must be \
                 lowercase letters and digits separated by '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    // Separators: one '.', one or two '_', or any number of '-', between alphanumerics.
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn registry(input: &str) -> RegistryReference {
        match input.parse::<Reference>().unwrap() {
            Reference::Registry(r) => r,
            other => panic!("{input}: {other:?}"),
        }
    }

    fn error(input: &str) -> String {
        input.parse::<Reference>().unwrap_err().to_string()
    }

    #[test]
    fn docker_hub_short_names() {
        let r = registry("busybox");
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.manifest_reference(), "latest");
        assert_eq!(
            registry("user/app:1.0").to_string(),
            "docker.io/user/app:1.0"
        );
        assert_eq!(
            registry("docker.io/busybox:1").to_string(),
            "docker.io/library/busybox:1"
        );
        assert_eq!(
            registry("index.docker.io/library/busybox").to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            registry("docker://alpine:3").to_string(),
            "docker.io/library/alpine:3"
        );
    }

    #[test]
    fn hosts_ports_tags_and_digests() {
        let r = registry("localhost:5000/a/b-c/d__e:v1.2_3");
        assert_eq!(r.host, "localhost:5000");
        assert_eq!(r.api_host(), "localhost:5000");
        assert_eq!(r.repository, "a/b-c/d__e");
        assert_eq!(r.tag.as_deref(), Some("v1.2_3"));
        let r = registry("quay.io/x/y");
        assert_eq!(
            (r.host.as_str(), r.tag.as_deref()),
            ("quay.io", Some("latest"))
        );
        let r = registry("localhost/x");
        assert_eq!(r.host, "localhost");
        let r = registry("[::1]:5000/x:t");
        assert_eq!(r.host, "[::1]:5000");
        // The digest wins over the tag.
        let r = registry(&format!("127.0.0.1:5000/x:t@sha256:{HEX}"));
        assert_eq!(r.manifest_reference(), format!("sha256:{HEX}"));
        assert_eq!(r.tag.as_deref(), Some("t"));
        let r = registry(&format!("busybox@sha256:{HEX}"));
        assert_eq!(r.tag, None);
        assert_eq!(
            r.to_string(),
            format!("docker.io/library/busybox@sha256:{HEX}")
        );
    }

    #[test]
    fn malformed_references_name_the_wrong_part() {
        assert!(error("").contains("empty"));
        assert!(error("Busybox").contains("component \"Busybox\""));
        assert!(error("a//b").contains("component \"\""));
        assert!(error("a:-x").contains("the tag \"-x\""));
        assert!(error("a:").contains("the tag \"\""));
        assert!(error(&format!("a:{}", "t".repeat(129))).contains("the tag"));
        assert!(error("a@sha256:zz").contains("the digest \"sha256:zz\""));
        assert!(error(&format!("a@sha512:{}", "a".repeat(128))).contains("not sha256"));
        assert!(error(&format!("@sha256:{HEX}")).contains("the name before '@'"));
        assert!(error("host:99999/a").contains("the registry port \"99999\""));
        assert!(error("ho_st.io/a").contains("the registry host \"ho_st.io\""));
        assert!(error("a/b..c").contains("component \"b..c\""));
        assert!(error("a/b___c").contains("component \"b___c\""));
        assert!(error("oci:").contains("the directory after \"oci:\" is empty"));
        assert!(error("oci:/d:").contains("the name after \"oci:/d:\" is empty"));
        assert!(error("oci-archive:").contains("the file"));
        assert!(error("docker-archive:/f:Bad:tag").contains("docker-archive name"));
        assert!(error("oci:/d:a b").contains("whitespace"));
    }

    #[test]
    fn transports() {
        assert_eq!(
            "oci:/tmp/l".parse::<Reference>().unwrap(),
            Reference::Layout {
                dir: "/tmp/l".into(),
                name: None
            }
        );
        assert_eq!(
            "oci:rel/l:v1".parse::<Reference>().unwrap(),
            Reference::Layout {
                dir: "rel/l".into(),
                name: Some("v1".into())
            }
        );
        assert_eq!(
            "oci-archive:/x.tar:latest".parse::<Reference>().unwrap(),
            Reference::OciArchive {
                file: "/x.tar".into(),
                name: Some("latest".into())
            }
        );
        assert_eq!(
            "docker-archive:/x.tar:busybox:1"
                .parse::<Reference>()
                .unwrap(),
            Reference::DockerArchive {
                file: "/x.tar".into(),
                name: Some("busybox:1".into())
            }
        );
        assert_eq!(
            "docker-archive:/x.tar".parse::<Reference>().unwrap(),
            Reference::DockerArchive {
                file: "/x.tar".into(),
                name: None
            }
        );
        assert_eq!(
            "oci:/tmp/l:v1".parse::<Reference>().unwrap().to_string(),
            "oci:/tmp/l:v1"
        );
    }
}
