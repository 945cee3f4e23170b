//! Which manifest of an index to take: the host's os/architecture/variant or `--platform`.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::{Descriptor, Platform};

use super::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for PlatformSpec {
    type Err = Error;

    /// `os/arch[/variant]`, as `--platform` takes it.
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = |why: &str| Error::invalid(format!("platform {s:?}"), why.to_string());
        if !(2..=3).contains(&parts.len()) {
            return Err(bad("expected os/arch[/variant]"));
        }
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("an empty part"));
        }
        let (os, architecture) = (parts[0].to_lowercase(), normalize_arch(parts[1]));
        if os == "unknown" || architecture == "unknown" {
            return Err(bad("unknown/unknown is not a platform"));
        }
        let variant = parts.get(2).map(|v| v.to_lowercase());
        Ok(PlatformSpec {
            os,
            variant: default_variant(&architecture, variant),
            architecture,
        })
    }
}

fn normalize_arch(arch: &str) -> String {
    match arch.to_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        "i386" | "i686" | "x86" => "386".into(),
        other => other.into(),
    }
}

/// arm64's variant is v8 when none is named (containerd's normalisation).
fn default_variant(arch: &str, variant: Option<String>) -> Option<String> {
    match (arch, variant) {
        ("arm64", None) => Some("v8".into()),
        (_, variant) => variant,
    }
}

impl PlatformSpec {
    /// The platform brig runs on.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            "loongarch64" => "loong64",
            other => other,
        }
        .to_string();
        let variant = match architecture.as_str() {
            "arm64" => Some("v8".into()),
            "arm" => Some("v7".into()),
            _ => None,
        };
        PlatformSpec {
            os: std::env::consts::OS.into(),
            architecture,
            variant,
        }
    }

    fn of(platform: &Platform) -> Self {
        let architecture = normalize_arch(&platform.architecture().to_string());
        PlatformSpec {
            os: platform.os().to_string(),
            variant: platform.variant().clone(),
            architecture,
        }
    }

    /// How well an index entry fits: None when it does not, higher is better. An entry
    /// without a variant fits any variant (arm64 without one is v8), one with a variant
    /// must equal ours when we have one.
    fn score(&self, entry: &PlatformSpec) -> Option<u8> {
        if entry.os != self.os || entry.architecture != self.architecture {
            return None;
        }
        match (&self.variant, &entry.variant) {
            (Some(ours), Some(theirs)) if ours == theirs => Some(2),
            (Some(ours), None) if self.architecture == "arm64" && ours == "v8" => Some(2),
            (Some(_), Some(_)) => None,
            _ => Some(1),
        }
    }
}

/// True for an entry that is not an image for any platform: buildkit's attestations are
/// `unknown/unknown` with a `vnd.docker.reference.type` annotation.
fn is_attestation(desc: &Descriptor) -> bool {
    let unknown = desc.platform().as_ref().is_some_and(|p| {
        p.os().to_string() == "unknown" || p.architecture().to_string() == "unknown"
    });
    let annotated = desc
        .annotations()
        .as_ref()
        .is_some_and(|a| a.contains_key("vnd.docker.reference.type"));
    unknown || annotated
}

/// The entry of `manifests` for `wanted`. An entry without a platform is taken only when it
/// is the only candidate (a single-image index); otherwise the error lists what there is.
pub fn choose<'a>(
    what: &str,
    manifests: &'a [Descriptor],
    wanted: &PlatformSpec,
) -> Result<&'a Descriptor> {
    let candidates: Vec<&Descriptor> = manifests.iter().filter(|d| !is_attestation(d)).collect();
    let best = candidates
        .iter()
        .filter_map(|d| {
            let platform = d.platform().as_ref()?;
            wanted
                .score(&PlatformSpec::of(platform))
                .map(|score| (score, *d))
        })
        // The first of the best, as the index orders them.
        .fold(None::<(u8, &Descriptor)>, |best, (score, d)| match best {
            Some((b, _)) if b >= score => best,
            _ => Some((score, d)),
        });
    if let Some((_, desc)) = best {
        return Ok(desc);
    }
    if let [only] = candidates.as_slice() {
        if only.platform().is_none() {
            return Ok(only);
        }
    }
    let mut available: Vec<String> = candidates
        .iter()
        .map(|d| match d.platform() {
            Some(p) => PlatformSpec::of(p).to_string(),
            None => "(no platform)".into(),
        })
        .collect();
    available.dedup();
    Err(Error::NoPlatform {
        what: what.into(),
        wanted: wanted.to_string(),
        available: if available.is_empty() {
            "no images".into()
        } else {
            available.join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{DescriptorBuilder, MediaType, PlatformBuilder};
    use std::collections::HashMap;

    fn entry(os: &str, arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
        let mut platform = PlatformBuilder::default().os(os).architecture(arch);
        if let Some(v) = variant {
            platform = platform.variant(v);
        }
        DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .size(n as u64)
            .digest(crate::image::digest::sha256(&[n]))
            .platform(platform.build().unwrap())
            .build()
            .unwrap()
    }

    fn spec(s: &str) -> PlatformSpec {
        s.parse().unwrap()
    }

    #[test]
    fn parse_platforms() {
        assert_eq!(spec("linux/arm64").to_string(), "linux/arm64/v8");
        assert_eq!(spec("linux/x86_64").to_string(), "linux/amd64");
        assert_eq!(spec("linux/arm/v7").to_string(), "linux/arm/v7");
        assert!("linux".parse::<PlatformSpec>().is_err());
        assert!("linux//v7".parse::<PlatformSpec>().is_err());
        assert!("unknown/unknown".parse::<PlatformSpec>().is_err());
        let host = PlatformSpec::host();
        assert_eq!(host.os, "linux");
    }

    #[test]
    fn choose_by_platform() {
        let mut attestation = entry("unknown", "unknown", None, 9);
        let mut notes = HashMap::new();
        notes.insert(
            "vnd.docker.reference.type".to_string(),
            "attestation-manifest".to_string(),
        );
        attestation.set_annotations(Some(notes));
        let index = vec![
            attestation,
            entry("linux", "amd64", None, 1),
            entry("linux", "arm64", None, 2),
            entry("linux", "arm", Some("v6"), 3),
            entry("linux", "arm", Some("v7"), 4),
            entry("linux", "arm64", Some("v8"), 5),
        ];
        let pick = |s: &str| choose("index", &index, &spec(s)).map(|d| d.size());
        assert_eq!(pick("linux/amd64").unwrap(), 1);
        assert_eq!(pick("linux/arm64").unwrap(), 2);
        assert_eq!(pick("linux/arm64/v8").unwrap(), 2);
        assert_eq!(pick("linux/arm/v7").unwrap(), 4);
        assert_eq!(pick("linux/arm/v6").unwrap(), 3);
        let err = pick("linux/s390x").unwrap_err().to_string();
        assert_eq!(
            err,
            "no image for platform linux/s390x in index; it has: linux/amd64, linux/arm64, \
             linux/arm/v6, linux/arm/v7, linux/arm64/v8"
        );
        // Never the attestation, even when asked for nothing else.
        assert!(choose("i", &index[..1], &spec("linux/amd64")).is_err());
    }
}
