//! SHA-256 digests and the reader that checks a blob against its descriptor while it streams.
//!
//! sha2 was chosen by measuring (see the module test `throughput` and the note): it
//! detects SHA-NI at run time and hashes at the speed of ring's assembly without C code.

use std::io::{self, Read};
use std::str::FromStr;

use oci_spec::image::{Digest, DigestAlgorithm};
use sha2::{Digest as _, Sha256};

use super::error::{Error, Result};

/// The digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    from_hasher(Sha256::new_with_prefix(bytes))
}

fn from_hasher(hasher: Sha256) -> Digest {
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // A 64-digit lowercase hex string is always a valid sha256 digest.
    Digest::from_str(&format!("sha256:{hex}"))
        .unwrap_or_else(|_| unreachable!("a computed sha256 digest is valid"))
}

/// `digest` parsed, sha256 only: that is what brig can verify.
pub fn parse(what: &str, digest: &str) -> Result<Digest> {
    let parsed = Digest::from_str(digest)
        .map_err(|e| Error::invalid(what, format!("digest {digest:?}: {e}")))?;
    require_sha256(what, &parsed)?;
    Ok(parsed)
}

pub fn require_sha256(what: &str, digest: &Digest) -> Result<()> {
    if *digest.algorithm() != DigestAlgorithm::Sha256 {
        return Err(Error::unsupported(
            what,
            format!("digest algorithm {} (only sha256)", digest.algorithm()),
        ));
    }
    Ok(())
}

/// Checks `bytes` against a digest and, when known, a size.
pub fn verify_bytes(what: &str, bytes: &[u8], expected: &Digest, size: Option<u64>) -> Result<()> {
    require_sha256(what, expected)?;
    let len = bytes.len() as u64;
    if let Some(size) = size {
        if len < size {
            return Err(Error::TooShort {
                what: what.into(),
                expected: size,
                actual: len,
            });
        }
        if len > size {
            return Err(Error::TooLong {
                what: what.into(),
                expected: size,
            });
        }
    }
    let actual = sha256(bytes);
    if actual != *expected {
        return Err(Error::DigestMismatch {
            what: what.into(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

/// Reads a blob through its digest: never more than `size` bytes from the inner reader (one
/// byte past it to tell a longer blob, which is then rejected without reading the rest), and
/// at the end an error unless both the size and the digest match. The error is an
/// `io::Error` wrapping [`Error`] ([`Error::from_read`] gets it back). Nothing read from it
/// may be trusted before it has returned `Ok(0)`.
pub struct VerifyingReader<R> {
    inner: R,
    what: String,
    expected: Digest,
    size: u64,
    read: u64,
    hasher: Sha256,
    done: bool,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, what: impl Into<String>, expected: &Digest, size: u64) -> Result<Self> {
        let what = what.into();
        require_sha256(&what, expected)?;
        Ok(VerifyingReader {
            inner,
            what,
            expected: expected.clone(),
            size,
            read: 0,
            hasher: Sha256::new(),
            done: false,
        })
    }

    fn fail(&self, err: Error) -> io::Error {
        io::Error::other(err)
    }

    fn finish(&mut self) -> io::Result<()> {
        let mut probe = [0u8; 1];
        let extra = loop {
            match self.inner.read(&mut probe) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if extra > 0 {
            return Err(self.fail(Error::TooLong {
                what: self.what.clone(),
                expected: self.size,
            }));
        }
        let actual = from_hasher(std::mem::take(&mut self.hasher));
        if actual != self.expected {
            return Err(self.fail(Error::DigestMismatch {
                what: self.what.clone(),
                expected: self.expected.to_string(),
                actual: actual.to_string(),
            }));
        }
        self.done = true;
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let left = self.size - self.read;
        if left == 0 {
            self.finish()?;
            return Ok(0);
        }
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(self.fail(Error::TooShort {
                what: self.what.clone(),
                expected: self.size,
                actual: self.read,
            }));
        }
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Reads all of a verified blob into memory, refusing a descriptor larger than `limit`.
pub fn read_verified<R: Read>(
    inner: R,
    what: &str,
    expected: &Digest,
    size: u64,
    limit: u64,
) -> Result<Vec<u8>> {
    if size > limit {
        return Err(Error::TooBig {
            what: what.into(),
            size,
            limit,
        });
    }
    let mut reader = VerifyingReader::new(inner, what, expected, size)?;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| Error::from_read(what, e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn read(bytes: &[u8], size: u64) -> Result<Vec<u8>> {
        let expected = Digest::from_str(ABC).unwrap();
        read_verified(bytes, "blob", &expected, size, 1 << 20)
    }

    #[test]
    fn digest_of_bytes() {
        assert_eq!(sha256(b"abc").to_string(), ABC);
    }

    #[test]
    fn verifying_reader_checks_size_and_digest() {
        assert_eq!(read(b"abc", 3).unwrap(), b"abc");
        assert!(matches!(
            read(b"ab", 3),
            Err(Error::TooShort { actual: 2, .. })
        ));
        assert!(matches!(read(b"abcd", 3), Err(Error::TooLong { .. })));
        assert!(matches!(read(b"abd", 3), Err(Error::DigestMismatch { .. })));
        assert!(matches!(read(b"abc", 1 << 21), Err(Error::TooBig { .. })));
        let msg = read(b"abcd", 3).unwrap_err().to_string();
        assert!(msg.contains("longer than the 3 bytes"), "{msg}");
    }

    #[test]
    fn a_longer_blob_is_not_read_to_the_end() {
        // An endless source: the reader stops one byte past the descriptor's size.
        let endless = std::io::repeat(b'a');
        let expected = Digest::from_str(ABC).unwrap();
        let err = read_verified(endless, "blob", &expected, 3, 10).unwrap_err();
        assert!(matches!(err, Error::TooLong { .. }));
    }

    #[test]
    fn only_sha256_is_accepted() {
        assert!(parse("d", ABC).is_ok());
        let sha512 = format!("sha512:{}", "a".repeat(128));
        let err = parse("d", &sha512).unwrap_err().to_string();
        assert!(err.contains("only sha256"), "{err}");
        assert!(parse("d", "sha256:xyz").is_err());
    }

    /// `cargo test -p libcontainer --release throughput -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn throughput() {
        let buf = vec![7u8; 256 << 20];
        let start = std::time::Instant::now();
        let mut hasher = Sha256::new();
        for chunk in buf.chunks(1 << 16) {
            hasher.update(chunk);
        }
        let _ = hasher.finalize();
        let secs = start.elapsed().as_secs_f64();
        println!("sha2: {:.0} MB/s", 256.0 * 1.048576 / secs);
    }
}
