//! A streaming tar reader: ustar, PAX (local and global headers), GNU long names and link
//! targets, base-256 numbers, and sparse files in the GNU (`S`) and all three PAX formats
//! (0.0, 0.1, 1.0).
//!
//! Why not the `tar` crate: it does not read PAX sparse files (the format GNU tar writes with
//! `--format=posix --sparse`), and its entry type hides the sparse map, so holes would be written
//! as zeroes. Applying a layer also needs every header field raw (numeric ids, nanosecond mtimes,
//! xattr values as bytes) and nothing else: no path handling, no extraction. That is this file;
//! the safe extraction lives in `apply.rs`.

use std::io::{self, Read};

use super::UnpackError;

const BLOCK: usize = 512;
/// A PAX or GNU long-name header bigger than this is hostile, not a file name.
const MAX_META: u64 = 1 << 20;
/// Sparse map entries per file: bounded so a hostile map cannot eat memory.
const MAX_SPARSE: usize = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
}

/// One tar entry with its PAX/GNU extensions already merged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: Vec<u8>,
    pub link: Vec<u8>,
    pub kind: Kind,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// The file's apparent size.
    pub size: u64,
    /// Data segments `(offset, length)` of a sparse file, in order; the entry's data is their
    /// concatenation. `None` for an ordinary file.
    pub sparse: Option<Vec<(u64, u64)>>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Entry {
    /// The entry name for error messages.
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// PAX records that apply to the next entry (or, for a global header, to all that follow).
#[derive(Default, Clone)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u32>,
    gid: Option<u32>,
    mtime: Option<(i64, u32)>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    sparse_major: Option<u32>,
    sparse_minor: Option<u32>,
    sparse_name: Option<Vec<u8>>,
    sparse_realsize: Option<u64>,
    sparse_map: Option<Vec<(u64, u64)>>,
    /// Format 0.0: repeated GNU.sparse.offset / GNU.sparse.numbytes records.
    sparse_pairs: Vec<(u64, u64)>,
    pending_offset: Option<u64>,
}

pub struct Archive<R> {
    inner: R,
    /// Bytes consumed so far, for error messages.
    offset: u64,
    /// Data bytes of the current entry not yet read by the caller.
    data_left: u64,
    /// Padding after the current entry's data.
    pad_left: u64,
    global: Pax,
    finished: bool,
}

impl<R: Read> Archive<R> {
    pub fn new(inner: R) -> Self {
        Archive {
            inner,
            offset: 0,
            data_left: 0,
            pad_left: 0,
            global: Pax::default(),
            finished: false,
        }
    }

    fn tar_err(&self, reason: impl Into<String>) -> UnpackError {
        UnpackError::Tar {
            offset: self.offset,
            reason: reason.into(),
        }
    }

    /// Fill `buf` completely; `Ok(false)` on a clean end of stream before the first byte.
    fn read_block(&mut self, buf: &mut [u8]) -> Result<bool, UnpackError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => return Err(self.tar_err("unexpected end of archive inside a header")),
                Ok(n) => {
                    got += n;
                    self.offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(UnpackError::Read(e)),
            }
        }
        Ok(true)
    }

    fn skip(&mut self, mut n: u64) -> Result<(), UnpackError> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            let got = match self.inner.read(&mut buf[..want]) {
                Ok(0) => return Err(self.tar_err("unexpected end of archive inside an entry")),
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(UnpackError::Read(e)),
            };
            n -= got as u64;
            self.offset += got as u64;
        }
        Ok(())
    }

    /// Read a whole metadata payload (PAX, GNU long name) of `size` bytes plus its padding.
    fn read_meta(&mut self, size: u64) -> Result<Vec<u8>, UnpackError> {
        if size > MAX_META {
            return Err(self.tar_err(format!("extended header of {size} bytes is too large")));
        }
        let mut data = vec![0u8; size as usize];
        let mut got = 0;
        while got < data.len() {
            match self.inner.read(&mut data[got..]) {
                Ok(0) => return Err(self.tar_err("unexpected end of archive inside a header")),
                Ok(n) => {
                    got += n;
                    self.offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(UnpackError::Read(e)),
            }
        }
        self.skip(padding(size))?;
        Ok(data)
    }

    /// Read the current entry's data (after `next_entry`); 0 at its end.
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize, UnpackError> {
        if self.data_left == 0 {
            return Ok(0);
        }
        let want = self.data_left.min(buf.len() as u64) as usize;
        loop {
            match self.inner.read(&mut buf[..want]) {
                Ok(0) => return Err(self.tar_err("unexpected end of archive inside file data")),
                Ok(n) => {
                    self.data_left -= n as u64;
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(UnpackError::Read(e)),
            }
        }
    }

    /// Read exactly `buf.len()` bytes of the current entry's data.
    pub fn read_data_exact(&mut self, buf: &mut [u8]) -> Result<(), UnpackError> {
        let mut got = 0;
        while got < buf.len() {
            let n = self.read_data(&mut buf[got..])?;
            if n == 0 {
                return Err(self.tar_err("sparse map runs past the entry's data"));
            }
            got += n;
        }
        Ok(())
    }

    /// The next entry, skipping whatever the caller left unread of the previous one; `None`
    /// after the end-of-archive marker (or a clean end of stream on a block boundary).
    pub fn next_entry(&mut self) -> Result<Option<Entry>, UnpackError> {
        if self.finished {
            return Ok(None);
        }
        self.skip(self.data_left + self.pad_left)?;
        self.data_left = 0;
        self.pad_left = 0;

        let mut pax = self.global.clone();
        let mut gnu_name: Option<Vec<u8>> = None;
        let mut gnu_link: Option<Vec<u8>> = None;
        let mut header = [0u8; BLOCK];
        loop {
            if !self.read_block(&mut header)? {
                self.finished = true;
                return Ok(None);
            }
            if header.iter().all(|&b| b == 0) {
                // End of archive: two zero blocks (one is enough to stop; the rest is drained
                // by the caller so the digest covers every byte).
                self.finished = true;
                return Ok(None);
            }
            self.check_checksum(&header)?;
            let typeflag = header[156];
            let size = self.number(&header[124..136], "size")?;
            match typeflag {
                b'x' => {
                    let data = self.read_meta(size)?;
                    self.parse_pax(&data, &mut pax)?;
                }
                b'g' => {
                    let data = self.read_meta(size)?;
                    let mut global = std::mem::take(&mut self.global);
                    self.parse_pax(&data, &mut global)?;
                    self.global = global;
                    pax = self.global.clone();
                }
                b'L' => gnu_name = Some(trim_nul(self.read_meta(size)?)),
                b'K' => gnu_link = Some(trim_nul(self.read_meta(size)?)),
                _ => return self.build_entry(&header, typeflag, size, pax, gnu_name, gnu_link),
            }
        }
    }

    fn check_checksum(&self, header: &[u8; BLOCK]) -> Result<(), UnpackError> {
        let stored = parse_octal(&header[148..156]);
        let mut unsigned: u64 = 0;
        let mut signed: i64 = 0;
        for (i, &b) in header.iter().enumerate() {
            let b = if (148..156).contains(&i) { b' ' } else { b };
            unsigned += u64::from(b);
            signed += i64::from(b as i8);
        }
        match stored {
            Some(s) if s == unsigned || i64::try_from(s).ok() == Some(signed) => Ok(()),
            _ => Err(self.tar_err("bad header checksum: not a tar archive or a corrupt one")),
        }
    }

    fn number(&self, field: &[u8], what: &str) -> Result<u64, UnpackError> {
        parse_number(field).ok_or_else(|| self.tar_err(format!("invalid {what} field")))
    }

    fn parse_pax(&self, data: &[u8], pax: &mut Pax) -> Result<(), UnpackError> {
        let mut rest = data;
        while !rest.is_empty() {
            if rest.iter().all(|&b| b == 0) {
                break;
            }
            let space = rest
                .iter()
                .position(|&b| b == b' ')
                .ok_or_else(|| self.tar_err("malformed PAX record"))?;
            let len: usize = std::str::from_utf8(&rest[..space])
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|&l: &usize| l > space + 1 && l <= rest.len())
                .ok_or_else(|| self.tar_err("malformed PAX record length"))?;
            let record = &rest[space + 1..len];
            rest = &rest[len..];
            let record = record
                .strip_suffix(b"\n")
                .ok_or_else(|| self.tar_err("PAX record without newline"))?;
            let eq = record
                .iter()
                .position(|&b| b == b'=')
                .ok_or_else(|| self.tar_err("PAX record without '='"))?;
            let (key, value) = (&record[..eq], &record[eq + 1..]);
            self.pax_record(key, value, pax)?;
        }
        Ok(())
    }

    fn pax_record(&self, key: &[u8], value: &[u8], pax: &mut Pax) -> Result<(), UnpackError> {
        let text = || std::str::from_utf8(value).unwrap_or("");
        let num = |what: &str| -> Result<u64, UnpackError> {
            text()
                .parse()
                .map_err(|_| self.tar_err(format!("invalid PAX {what} {:?}", text())))
        };
        let id = |what: &str| -> Result<u32, UnpackError> {
            u32::try_from(num(what)?).map_err(|_| self.tar_err(format!("PAX {what} out of range")))
        };
        match key {
            b"path" => pax.path = Some(value.to_vec()),
            b"linkpath" => pax.linkpath = Some(value.to_vec()),
            b"size" => pax.size = Some(num("size")?),
            b"uid" => pax.uid = Some(id("uid")?),
            b"gid" => pax.gid = Some(id("gid")?),
            b"mtime" => {
                pax.mtime = Some(
                    parse_pax_time(text())
                        .ok_or_else(|| self.tar_err(format!("invalid PAX mtime {:?}", text())))?,
                )
            }
            b"GNU.sparse.major" => pax.sparse_major = Some(id("GNU.sparse.major")?),
            b"GNU.sparse.minor" => pax.sparse_minor = Some(id("GNU.sparse.minor")?),
            b"GNU.sparse.name" => pax.sparse_name = Some(value.to_vec()),
            b"GNU.sparse.realsize" | b"GNU.sparse.size" => {
                pax.sparse_realsize = Some(num("GNU.sparse.realsize")?)
            }
            b"GNU.sparse.map" => {
                let numbers: Vec<u64> = text()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse())
                    .collect::<Result<_, _>>()
                    .map_err(|_| self.tar_err("invalid GNU.sparse.map"))?;
                if !numbers.len().is_multiple_of(2) || numbers.len() / 2 > MAX_SPARSE {
                    return Err(self.tar_err("invalid GNU.sparse.map"));
                }
                pax.sparse_map = Some(numbers.chunks(2).map(|c| (c[0], c[1])).collect());
            }
            b"GNU.sparse.offset" => pax.pending_offset = Some(num("GNU.sparse.offset")?),
            b"GNU.sparse.numbytes" => {
                let offset = pax
                    .pending_offset
                    .take()
                    .ok_or_else(|| self.tar_err("GNU.sparse.numbytes without offset"))?;
                if pax.sparse_pairs.len() >= MAX_SPARSE {
                    return Err(self.tar_err("too many sparse segments"));
                }
                pax.sparse_pairs.push((offset, num("GNU.sparse.numbytes")?));
            }
            _ => {
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    pax.xattrs.retain(|(n, _)| n != name);
                    pax.xattrs.push((name.to_vec(), value.to_vec()));
                }
                // Anything else (atime, ctime, uname, gname, comments, vendor keys) does not
                // change what lands on disk.
            }
        }
        Ok(())
    }

    fn build_entry(
        &mut self,
        h: &[u8; BLOCK],
        typeflag: u8,
        header_size: u64,
        pax: Pax,
        gnu_name: Option<Vec<u8>>,
        gnu_link: Option<Vec<u8>>,
    ) -> Result<Option<Entry>, UnpackError> {
        let ustar = &h[257..263] == b"ustar\0";
        let mut name = trim_nul(h[0..100].to_vec());
        if ustar && h[345] != 0 {
            let mut full = trim_nul(h[345..500].to_vec());
            full.push(b'/');
            full.extend_from_slice(&name);
            name = full;
        }
        let name = pax.sparse_name.or(pax.path).or(gnu_name).unwrap_or(name);
        let link = pax
            .linkpath
            .or(gnu_link)
            .unwrap_or_else(|| trim_nul(h[157..257].to_vec()));
        let kind = match typeflag {
            b'0' | 0 | b'7' | b'S' => Kind::File,
            b'1' => Kind::Hardlink,
            b'2' => Kind::Symlink,
            b'3' => Kind::Char,
            b'4' => Kind::Block,
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            other => {
                return Err(UnpackError::Entry {
                    entry: String::from_utf8_lossy(&name).into_owned(),
                    reason: format!("unsupported tar entry type {:?}", other as char),
                })
            }
        };
        let id = |field: &[u8], what: &str| -> Result<u32, UnpackError> {
            u32::try_from(self.number(field, what)?)
                .map_err(|_| self.tar_err(format!("{what} out of range")))
        };
        let mode = (self.number(&h[100..108], "mode")? & 0o7777) as u32;
        let uid = match pax.uid {
            Some(u) => u,
            None => id(&h[108..116], "uid")?,
        };
        let gid = match pax.gid {
            Some(g) => g,
            None => id(&h[116..124], "gid")?,
        };
        let (mtime, mtime_nsec) = match pax.mtime {
            Some(t) => t,
            None => (
                parse_signed(&h[136..148]).ok_or_else(|| self.tar_err("invalid mtime"))?,
                0,
            ),
        };
        let (dev_major, dev_minor) = if matches!(kind, Kind::Char | Kind::Block) {
            (id(&h[329..337], "devmajor")?, id(&h[337..345], "devminor")?)
        } else {
            (0, 0)
        };
        // Hardlinks, symlinks, directories, devices and fifos carry no data, whatever the size
        // field says (old writers put the target's size on hardlinks).
        let mut data_size = pax.size.unwrap_or(header_size);
        if kind != Kind::File {
            data_size = 0;
        }
        // The header's size says how many blocks follow even when PAX overrides it.
        let stream_size = pax.size.unwrap_or(header_size);
        self.data_left = data_size;
        self.pad_left = stream_size - data_size + padding(stream_size);

        let mut size = data_size;
        let mut sparse = None;
        if typeflag == b'S' {
            let (map, realsize) = self.gnu_sparse_map(h)?;
            sparse = Some(map);
            size = realsize;
        } else if kind == Kind::File {
            match (pax.sparse_major, pax.sparse_minor) {
                (Some(1), Some(0)) => {
                    sparse = Some(self.pax_sparse_map_1_0()?);
                    size = pax.sparse_realsize.unwrap_or(data_size);
                }
                _ if pax.sparse_map.is_some() => {
                    sparse = pax.sparse_map;
                    size = pax.sparse_realsize.unwrap_or(data_size);
                }
                _ if !pax.sparse_pairs.is_empty() => {
                    sparse = Some(pax.sparse_pairs);
                    size = pax.sparse_realsize.unwrap_or(data_size);
                }
                _ => {}
            }
        }
        if let Some(map) = &sparse {
            let mut end = 0u64;
            let mut total = 0u64;
            for &(off, len) in map {
                let seg_end = off.checked_add(len);
                match seg_end {
                    Some(e) if off >= end && e <= size => end = e,
                    _ => return Err(self.tar_err("sparse map out of order or past the file size")),
                }
                total += len;
            }
            if total != self.data_left {
                return Err(self.tar_err(format!(
                    "sparse map covers {total} bytes but the entry holds {}",
                    self.data_left
                )));
            }
        }
        Ok(Some(Entry {
            name,
            link,
            kind,
            mode,
            uid,
            gid,
            mtime,
            mtime_nsec,
            dev_major,
            dev_minor,
            size,
            sparse,
            xattrs: pax.xattrs,
        }))
    }

    /// Old GNU sparse (`S`): four map slots in the header, 21 more per extension block.
    fn gnu_sparse_map(&mut self, h: &[u8; BLOCK]) -> Result<(Vec<(u64, u64)>, u64), UnpackError> {
        let mut map = Vec::new();
        let realsize = self.number(&h[483..495], "GNU sparse realsize")?;
        self.sparse_slots(&h[386..482], &mut map)?;
        let mut extended = h[482] != 0;
        let mut block = [0u8; BLOCK];
        while extended {
            if !self.read_block(&mut block)? {
                return Err(self.tar_err("unexpected end of archive in a GNU sparse header"));
            }
            self.sparse_slots(&block[..504], &mut map)?;
            extended = block[504] != 0;
        }
        Ok((map, realsize))
    }

    fn sparse_slots(&self, slots: &[u8], map: &mut Vec<(u64, u64)>) -> Result<(), UnpackError> {
        for slot in slots.chunks_exact(24) {
            if slot[0] == 0 {
                break;
            }
            if map.len() >= MAX_SPARSE {
                return Err(self.tar_err("too many sparse segments"));
            }
            let off = self.number(&slot[..12], "sparse offset")?;
            let len = self.number(&slot[12..], "sparse length")?;
            map.push((off, len));
        }
        Ok(())
    }

    /// PAX sparse 1.0: the map is text at the start of the data, padded to a block.
    fn pax_sparse_map_1_0(&mut self) -> Result<Vec<(u64, u64)>, UnpackError> {
        let mut pending: Vec<u8> = Vec::new();
        let mut block = [0u8; BLOCK];
        let mut numbers: Vec<u64> = Vec::new();
        let mut count: Option<usize> = None;
        loop {
            if let Some(c) = count {
                if numbers.len() == 2 * c {
                    break;
                }
            }
            if let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let n: u64 = std::str::from_utf8(&pending[..nl])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| self.tar_err("invalid PAX sparse map"))?;
                pending.drain(..=nl);
                match count {
                    None => {
                        let c = usize::try_from(n).unwrap_or(usize::MAX);
                        if c > MAX_SPARSE {
                            return Err(self.tar_err("too many sparse segments"));
                        }
                        count = Some(c);
                    }
                    Some(_) => numbers.push(n),
                }
                continue;
            }
            if pending.len() > 64 {
                return Err(self.tar_err("invalid PAX sparse map"));
            }
            self.read_data_exact(&mut block)?;
            pending.extend_from_slice(&block);
        }
        Ok(numbers.chunks(2).map(|c| (c[0], c[1])).collect())
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn trim_nul(mut v: Vec<u8>) -> Vec<u8> {
    if let Some(p) = v.iter().position(|&b| b == 0) {
        v.truncate(p);
    }
    v
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let s: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ' || b == 0)
        .take_while(|&b| b != b' ' && b != 0)
        .collect();
    if s.is_empty() {
        return Some(0);
    }
    let s = std::str::from_utf8(&s).ok()?;
    u64::from_str_radix(s, 8).ok()
}

/// Octal, or GNU base-256 (high bit of the first byte set) for values that do not fit.
pub(crate) fn parse_number(field: &[u8]) -> Option<u64> {
    match field.first() {
        Some(&b) if b & 0x80 != 0 => {
            if b & 0x40 != 0 {
                return None; // negative
            }
            let mut v: u64 = u64::from(b & 0x3f);
            for &byte in &field[1..] {
                v = v.checked_mul(256)?.checked_add(u64::from(byte))?;
            }
            Some(v)
        }
        _ => parse_octal(field),
    }
}

fn parse_signed(field: &[u8]) -> Option<i64> {
    match field.first() {
        Some(&b) if b & 0xc0 == 0xc0 => {
            // Negative base-256: two's complement over the field.
            let mut v: i64 = -1;
            for &byte in field {
                v = (v << 8) | i64::from(byte);
            }
            Some(v)
        }
        _ => parse_number(field).and_then(|v| i64::try_from(v).ok()),
    }
}

/// `seconds[.fraction]`, possibly negative.
fn parse_pax_time(s: &str) -> Option<(i64, u32)> {
    let (secs, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let mut sec: i64 = secs.parse().ok()?;
    let mut digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    while digits.len() < 9 {
        digits.push('0');
    }
    let mut nsec: u32 = digits.parse().ok()?;
    if secs.starts_with('-') && nsec > 0 {
        sec -= 1;
        nsec = 1_000_000_000 - nsec;
    }
    Some((sec, nsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"0000644\0"), Some(0o644));
        assert_eq!(parse_number(b"  755 \0"), Some(0o755));
        assert_eq!(parse_number(b"\0\0\0\0"), Some(0));
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[11] = 1;
        big[10] = 2;
        assert_eq!(parse_number(&big), Some(513));
        assert_eq!(parse_number(b"9"), None);
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time("1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(parse_pax_time("1.5"), Some((1, 500_000_000)));
        assert_eq!(parse_pax_time("-1.25"), Some((-2, 750_000_000)));
        assert_eq!(parse_pax_time("x"), None);
    }

    #[test]
    fn not_a_tar() {
        let junk = vec![b'a'; 2048];
        let mut a = Archive::new(&junk[..]);
        assert!(matches!(a.next_entry(), Err(UnpackError::Tar { .. })));
    }
}
