//! Layer media type -> decompressing reader, and the digest of what comes out of it.
//!
//! The media type alone decides the decompressor (the spec says so, and a guess from magic
//! bytes would let a layer be read as something its digest was not computed over).

use std::io::{self, BufReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use sha2::{Digest, Sha256, Sha512};

use super::UnpackError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The compression a layer media type names; an unknown type is an error.
pub fn compression(media_type: &str) -> Result<Compression, UnpackError> {
    let c = match media_type {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
        "application/vnd.oci.image.layer.v1.tar+zstd"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
        | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Compression::Zstd,
        other => return Err(UnpackError::MediaType(other.to_string())),
    };
    Ok(c)
}

/// Wrap `reader` in the decompressor for `c`. gzip reads every member (multi-member files
/// are what `pigz` and concatenating writers produce).
pub fn decompressor<'a, R: Read + 'a>(
    reader: R,
    c: Compression,
) -> Result<Box<dyn Read + 'a>, UnpackError> {
    const BUF: usize = 128 * 1024;
    Ok(match c {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(
            BufReader::with_capacity(BUF, reader),
        )),
        Compression::Zstd => Box::new(ZstdReader::new(reader)?),
    })
}

/// ruzstd's decoder, with its errors turned into io errors that say "zstd".
struct ZstdReader<R: Read> {
    inner: ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>,
}

impl<R: Read> ZstdReader<R> {
    fn new(reader: R) -> Result<Self, UnpackError> {
        let inner = ruzstd::decoding::StreamingDecoder::new(reader).map_err(|e| {
            UnpackError::Read(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("zstd: {e}"),
            ))
        })?;
        Ok(ZstdReader { inner })
    }
}

impl<R: Read> Read for ZstdReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

/// A digest algorithm and the expected hex value, parsed from `sha256:...` / `sha512:...`.
#[derive(Debug, Clone)]
pub struct Expected {
    pub algorithm: &'static str,
    pub hex: String,
}

pub fn parse_digest(digest: &str) -> Result<Expected, UnpackError> {
    let bad = || UnpackError::BadDiffId(digest.to_string());
    let (alg, hex) = digest.split_once(':').ok_or_else(bad)?;
    let (algorithm, len) = match alg {
        "sha256" => ("sha256", 64),
        "sha512" => ("sha512", 128),
        _ => return Err(bad()),
    };
    if hex.len() != len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad());
    }
    Ok(Expected {
        algorithm,
        hex: hex.to_string(),
    })
}

enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

/// Hashes every byte read through it.
pub struct DigestReader<R> {
    inner: R,
    hasher: Hasher,
    algorithm: &'static str,
    pub bytes: u64,
}

impl<R: Read> DigestReader<R> {
    pub fn new(inner: R, algorithm: &'static str) -> Self {
        let hasher = if algorithm == "sha512" {
            Hasher::Sha512(Sha512::new())
        } else {
            Hasher::Sha256(Sha256::new())
        };
        DigestReader {
            inner,
            hasher,
            algorithm,
            bytes: 0,
        }
    }

    /// Read the rest of the stream (tar padding after the end-of-archive marker is part of
    /// the digest) and return `algorithm:hex`.
    pub fn finish(mut self) -> Result<(String, u64), UnpackError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match self.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(UnpackError::Read(e)),
            }
        }
        let hex = match self.hasher {
            Hasher::Sha256(h) => hex(&h.finalize()),
            Hasher::Sha512(h) => hex(&h.finalize()),
        };
        Ok((format!("{}:{hex}", self.algorithm), self.bytes))
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        match &mut self.hasher {
            Hasher::Sha256(h) => h.update(&buf[..n]),
            Hasher::Sha512(h) => h.update(&buf[..n]),
        }
        self.bytes += n as u64;
        Ok(n)
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Decompressed chunks handed from the reading thread to the applying one.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight: enough to ride out a slow write or a slow read, little memory.
const IN_FLIGHT: usize = 8;

/// Read, decompress and hash `reader` on a second thread while `consume` applies the
/// plain stream on this one, so decompression overlaps with writing files. Returns what
/// `consume` returned and the digest (`algorithm:hex`) and length of the whole plain stream,
/// which the reading thread drains to its end even after `consume` stops reading (the tar
/// padding after the end-of-archive marker is part of the digest).
pub fn read_ahead<R, T>(
    reader: R,
    compression: Compression,
    algorithm: &'static str,
    consume: impl FnOnce(&mut ChunkReader) -> Result<T, UnpackError>,
) -> Result<(T, String, u64), UnpackError>
where
    R: Read + Send,
{
    let abort = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(IN_FLIGHT);
        let (recycle_tx, recycle_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
        let abort = &abort;
        let producer =
            scope.spawn(move || produce(reader, compression, algorithm, tx, recycle_rx, abort));
        let mut chunks = ChunkReader {
            rx,
            recycle: recycle_tx,
            current: Vec::new(),
            pos: 0,
        };
        let result = consume(&mut chunks);
        if result.is_err() {
            abort.store(true, Ordering::Relaxed);
        }
        drop(chunks);
        let digest = producer.join().unwrap_or_else(|_| {
            Err(UnpackError::Read(io::Error::other(
                "the layer reading thread panicked",
            )))
        });
        let value = result?;
        let (digest, bytes) = digest?;
        Ok((value, digest, bytes))
    })
}

fn produce<R: Read>(
    reader: R,
    compression: Compression,
    algorithm: &'static str,
    tx: SyncSender<io::Result<Vec<u8>>>,
    recycled: Receiver<Vec<u8>>,
    abort: &AtomicBool,
) -> Result<(String, u64), UnpackError> {
    let fail = |tx: &SyncSender<io::Result<Vec<u8>>>, e: UnpackError| {
        // The applying side reports the error it reads; this copy goes to the joiner.
        let copy = match &e {
            UnpackError::Read(inner) => io::Error::new(inner.kind(), inner.to_string()),
            other => io::Error::other(other.to_string()),
        };
        let _ = tx.send(Err(copy));
        Err(e)
    };
    let plain = match decompressor(reader, compression) {
        Ok(p) => p,
        Err(e) => return fail(&tx, e),
    };
    let mut hashed = DigestReader::new(plain, algorithm);
    let mut connected = true;
    loop {
        if abort.load(Ordering::Relaxed) {
            return Err(UnpackError::Read(io::Error::other("aborted")));
        }
        let mut buf = recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        buf.resize(CHUNK, 0);
        // Fill the chunk (decompressors return small pieces).
        let mut filled = 0;
        while filled < buf.len() {
            match hashed.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return fail(&tx, UnpackError::Read(e)),
            }
        }
        if filled == 0 {
            break;
        }
        buf.truncate(filled);
        if connected && tx.send(Ok(buf)).is_err() {
            connected = false;
        }
    }
    drop(tx);
    hashed.finish()
}

/// The plain layer stream, as chunks from the reading thread.
pub struct ChunkReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    recycle: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.current.len() {
            let next = match self.rx.recv() {
                Ok(chunk) => chunk?,
                // The reading thread is done: end of stream.
                Err(_) => return Ok(0),
            };
            let used = std::mem::replace(&mut self.current, next);
            let _ = self.recycle.try_send(used);
            self.pos = 0;
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(
            compression("application/vnd.docker.image.rootfs.diff.tar.gzip").ok(),
            Some(Compression::Gzip)
        );
        assert_eq!(
            compression("application/vnd.oci.image.layer.v1.tar+zstd").ok(),
            Some(Compression::Zstd)
        );
        assert!(compression("application/vnd.oci.image.layer.v1.tar+bzip2").is_err());
    }

    #[test]
    fn digests() {
        assert!(parse_digest("sha256:abc").is_err());
        assert!(parse_digest(&format!("md5:{}", "a".repeat(64))).is_err());
        assert!(parse_digest(&format!("sha256:{}", "A".repeat(64))).is_err());
        let d = parse_digest(&format!("sha256:{}", "a".repeat(64))).map(|e| e.algorithm);
        assert_eq!(d.ok(), Some("sha256"));
        let mut r = DigestReader::new(&b"abc"[..], "sha256");
        let mut sink = Vec::new();
        assert!(r.read_to_end(&mut sink).is_ok());
        let (d, n) = r.finish().unwrap_or_default();
        assert_eq!(n, 3);
        assert_eq!(
            d,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
