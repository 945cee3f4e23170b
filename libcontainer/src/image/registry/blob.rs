//! A blob download that survives dropped connections: it resumes with `Range: bytes=N-`, or
//! skips the first N bytes again when the registry ignores `Range`.

use std::io::{self, Read};

use ureq::BodyReader;

use super::error::{RegistryError, Result};
use super::{header, Auth, Registry};

/// Progress since the last failure that earns the retries back.
const PROGRESS_RESET: u64 = 1 << 20;

pub struct BlobReader {
    registry: Registry,
    digest: String,
    body: BodyReader<'static>,
    /// Bytes of the blob consumed so far (from its start, including the caller's offset).
    pos: u64,
    /// The blob's full size when the registry said it.
    size: Option<u64>,
    content_type: Option<String>,
    content_digest: Option<String>,
    retries_left: u32,
    since_failure: u64,
}

struct Opened {
    body: BodyReader<'static>,
    size: Option<u64>,
    content_type: Option<String>,
    content_digest: Option<String>,
}

impl BlobReader {
    pub(super) fn open(registry: Registry, digest: &str, offset: u64) -> Result<BlobReader> {
        let opened = open_at(&registry, digest, offset)?;
        Ok(BlobReader {
            retries_left: registry.inner.opts.retries,
            registry,
            digest: digest.to_string(),
            body: opened.body,
            pos: offset,
            size: opened.size,
            content_type: opened.content_type,
            content_digest: opened.content_digest,
            since_failure: 0,
        })
    }

    /// The blob's full size, from `Content-Length` or `Content-Range` (not verified here).
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// `Docker-Content-Digest`, as the registry claims it.
    pub fn content_digest(&self) -> Option<&str> {
        self.content_digest.as_deref()
    }

    /// Bytes of the blob read so far, counted from its start.
    pub fn position(&self) -> u64 {
        self.pos
    }
}

fn open_at(registry: &Registry, digest: &str, pos: u64) -> Result<Opened> {
    let target = registry.target(digest);
    if !super::valid_component(digest, b":+=") || !digest.contains(':') {
        return Err(RegistryError::Api {
            target: target.into(),
            status: 0,
            code: "DIGEST_INVALID".to_string(),
            message: "not a digest".to_string(),
        });
    }
    let path = format!("/v2/{}/blobs/{digest}", registry.inner.repository);
    let url = registry.url(&target, &path)?;
    let headers: Vec<(&str, String)> = if pos > 0 {
        vec![("Range", format!("bytes={pos}-"))]
    } else {
        Vec::new()
    };
    let scope = registry.scope();
    let (resp, url) = registry.send(
        &target,
        "fetching blob",
        url,
        &headers,
        Auth::Registry { scope: &scope },
    )?;
    let status = resp.status().as_u16();
    let content_type = header(&resp, "content-type");
    let content_digest = header(&resp, "docker-content-digest");
    let length = resp.body().content_length();
    let resume_err = |reason: String| RegistryError::Resume {
        target: target.clone().into(),
        offset: pos,
        reason,
    };
    let (size, skip) = match status {
        206 => {
            let range = header(&resp, "content-range").unwrap_or_default();
            let (start, total) = parse_content_range(&range)
                .ok_or_else(|| resume_err(format!("bad Content-Range {range:?}")))?;
            if start != pos {
                return Err(resume_err(format!(
                    "Content-Range {range:?} does not start at {pos}"
                )));
            }
            (total.or(length.map(|l| pos + l)), 0)
        }
        200..=299 => (length, pos),
        _ => return Err(registry.api_error(&target, resp)),
    };
    let mut body = resp.into_body().into_reader();
    if skip > 0 {
        // The registry ignored Range: read again what we had.
        let skipped = io::copy(&mut (&mut body).take(skip), &mut io::sink()).map_err(|source| {
            RegistryError::Io {
                target: target.clone().into(),
                what: "skipping to the resume point of",
                url: url.to_string(),
                source,
            }
        })?;
        if skipped < skip {
            return Err(resume_err(format!("the blob ended after {skipped} bytes")));
        }
    }
    Ok(Opened {
        body,
        size,
        content_type,
        content_digest,
    })
}

/// `bytes START-END/TOTAL` (TOTAL may be `*`).
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start, total))
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let failure = match self.body.read(buf) {
                Ok(0) => match self.size {
                    Some(size) if self.pos < size => io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("connection closed at byte {} of {size}", self.pos),
                    ),
                    _ => return Ok(0),
                },
                Ok(n) => {
                    self.pos += n as u64;
                    self.since_failure += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => e,
            };
            if self.since_failure >= PROGRESS_RESET {
                self.retries_left = self.registry.inner.opts.retries;
            }
            self.since_failure = 0;
            if self.retries_left == 0 {
                return Err(io::Error::new(
                    failure.kind(),
                    format!(
                        "{}: reading blob at byte {}: {failure}",
                        self.registry.target(&self.digest),
                        self.pos
                    ),
                ));
            }
            self.retries_left -= 1;
            let attempt = self.registry.inner.opts.retries - self.retries_left;
            tracing::debug!(digest = %self.digest, pos = self.pos, error = %failure, "resuming blob");
            self.registry.sleep_backoff(attempt);
            let opened =
                open_at(&self.registry, &self.digest, self.pos).map_err(io::Error::other)?;
            self.body = opened.body;
            if self.size.is_none() {
                self.size = opened.size;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("bytes 9-5/10"), None);
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
