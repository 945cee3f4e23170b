//! The HTTP agent (ureq, blocking, rustls with ring) and the rules on where it may go: TLS
//! trusts the system CA store plus `/etc/containers/certs.d/HOST[:PORT]/*.crt`,
//! `/etc/docker/certs.d/...` and any extra CA file; plain HTTP only for loopback hosts or when
//! the user allowed it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ureq::http::Uri;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use super::error::{RegistryError, Result};

/// The host part of `host[:port]` or `[v6]:port`, lowercase, without brackets.
pub fn host_of(authority: &str) -> String {
    let a = authority.trim();
    let host = if let Some(rest) = a.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if a.matches(':').count() > 1 {
        a // a bare IPv6 address
    } else {
        a.split(':').next().unwrap_or(a)
    };
    host.to_ascii_lowercase()
}

/// 127.0.0.0/8, ::1 and localhost: registries on this machine may speak plain HTTP.
pub fn is_loopback(authority: &str) -> bool {
    let host = host_of(authority);
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// The origin a URL belongs to: scheme, lowercase host, port (defaulted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

pub fn origin(uri: &Uri) -> Option<Origin> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    let port = authority.port_u16().or(match scheme.as_str() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    })?;
    Some(Origin {
        host: host_of(authority.host()),
        scheme,
        port,
    })
}

/// Resolves a `Location` header against the URL that answered with it.
pub fn resolve_location(base: &Uri, location: &str) -> Option<Uri> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.parse().ok();
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?;
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}").parse().ok();
    }
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}").parse().ok();
    }
    // Relative to the base path's directory.
    let path = base.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    format!("{scheme}://{authority}{dir}{location}")
        .parse()
        .ok()
}

/// Whether a URL may be fetched: HTTPS always, HTTP only to a loopback host or with
/// `plain_http`.
pub fn plain_http_allowed(uri: &Uri, plain_http: bool) -> bool {
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") => true,
        Some(s) if s.eq_ignore_ascii_case("http") => {
            plain_http || uri.authority().is_some_and(|a| is_loopback(a.as_str()))
        }
        _ => false,
    }
}

/// The trusted roots: the system store (rustls-native-certs: /etc/ssl/certs, honouring
/// `SSL_CERT_FILE`/`SSL_CERT_DIR`), the registry's certs.d directories and `extra` files.
pub fn root_certs(registry: &str, extra: &[PathBuf], certs_d: &[PathBuf]) -> Result<RootCerts> {
    let mut certs: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .into_iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    for dir in certs_d {
        let dir = dir.join(registry);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "crt"))
            .collect();
        files.sort();
        for file in files {
            certs.extend(read_pem(&file)?);
        }
    }
    for file in extra {
        certs.extend(read_pem(file)?);
    }
    Ok(RootCerts::Specific(Arc::new(certs)))
}

fn read_pem(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let err = |reason: String| RegistryError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| err(e.to_string()))? {
            out.push(c);
        }
    }
    if out.is_empty() {
        return Err(err("no certificate in the file".to_string()));
    }
    Ok(out)
}

/// Whether a failed HTTPS request reached a TLS server (it sent a certificate or an alert), as
/// opposed to a server that does not speak TLS at all.
pub fn speaks_tls(e: &ureq::Error) -> bool {
    let ureq::Error::Io(io) = e else {
        return false;
    };
    io.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|tls| {
            matches!(
                tls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::AlertReceived(_)
            )
        })
}

pub fn agent(roots: RootCerts) -> ureq::Agent {
    let tls = TlsConfig::builder()
        .root_certs(roots)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        // Redirects are followed by hand: Authorization must not leave the registry's host.
        .max_redirects(0)
        .user_agent(concat!("brig/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .build()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1:5000",
            "127.9.8.7",
            "localhost",
            "LOCALHOST:80",
            "[::1]:5000",
            "::1",
            "x.localhost:1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "example.com",
            "10.0.0.1:5000",
            "[::2]:5000",
            "127.0.0.1.nip.io",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn plain_http_refused_off_loopback() {
        let u = |s: &str| s.parse::<Uri>().unwrap();
        assert!(!plain_http_allowed(
            &u("http://registry.example.com/v2/"),
            false
        ));
        assert!(plain_http_allowed(
            &u("http://registry.example.com/v2/"),
            true
        ));
        assert!(plain_http_allowed(&u("http://127.0.0.1:5000/v2/"), false));
        assert!(plain_http_allowed(&u("http://[::1]:5000/v2/"), false));
        assert!(plain_http_allowed(
            &u("https://registry.example.com/v2/"),
            false
        ));
        assert!(!plain_http_allowed(
            &u("ftp://registry.example.com/v2/"),
            true
        ));
    }

    #[test]
    fn origins_and_locations() {
        let base: Uri = "https://Reg.example.com/v2/a/blobs/sha256:1"
            .parse()
            .unwrap();
        let o = origin(&base).unwrap();
        assert_eq!(
            (o.scheme.as_str(), o.host.as_str(), o.port),
            ("https", "reg.example.com", 443)
        );
        let same = resolve_location(&base, "/v2/x").unwrap();
        assert_eq!(same.to_string(), "https://Reg.example.com/v2/x");
        assert_eq!(origin(&same), Some(o.clone()));
        let cdn = resolve_location(&base, "https://cdn.example.com/b?sig=1").unwrap();
        assert_ne!(origin(&cdn), Some(o.clone()));
        let port = resolve_location(&base, "https://reg.example.com:8443/b").unwrap();
        assert_ne!(origin(&port), Some(o));
        let rel = resolve_location(&base, "c").unwrap();
        assert_eq!(rel.to_string(), "https://Reg.example.com/v2/a/blobs/c");
    }
}
