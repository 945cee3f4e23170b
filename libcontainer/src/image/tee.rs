//! A blob being written into the store, readable while it is written (issue 15: a layer is
//! unpacked while it downloads, and its compressed bytes are written once, into the store).
//!
//! The writer (`Staging::stage_teed`) tells a [`Tee`] how far the file is written and, at the
//! end, whether the blob verified (digest and size); a [`TeeReader`] reads the same file with
//! `pread` up to what is written and waits for more. It returns end of stream only once the
//! blob verified, and an error if it did not: what it handed out before is unverified, so the
//! reader's consumer (the unpacker) must throw away what it made unless it reaches the end.
//! Nothing is buffered in memory: the bytes are the file's (the page cache's).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

enum State {
    /// Not started yet (waiting for a download slot, or for the store's blob lock).
    Waiting,
    /// Being written: the first `written` bytes are in the file.
    Growing {
        file: Arc<File>,
        written: u64,
    },
    /// Complete and verified (written now, or found in the store).
    Done {
        file: Arc<File>,
        len: u64,
    },
    Failed(String),
}

/// One blob's progress, shared by its writer and its readers.
pub struct Tee {
    state: Mutex<State>,
    changed: Condvar,
}

impl Default for Tee {
    fn default() -> Self {
        Tee {
            state: Mutex::new(State::Waiting),
            changed: Condvar::new(),
        }
    }
}

impl Tee {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set(&self, state: State) {
        let mut guard = self.lock();
        // A blob that ended stays ended (a late "failed" after a verified end changes nothing:
        // what the readers got was verified).
        if !matches!(*guard, State::Done { .. } | State::Failed(_)) {
            *guard = state;
        }
        drop(guard);
        self.changed.notify_all();
    }

    /// The writer created `file` (readable) and is about to fill it.
    pub fn started(&self, file: File) {
        self.set(State::Growing {
            file: Arc::new(file),
            written: 0,
        });
    }

    /// The first `written` bytes are in the file.
    pub fn advance(&self, written: u64) {
        let mut guard = self.lock();
        if let State::Growing { written: w, .. } = &mut *guard {
            *w = written;
        }
        drop(guard);
        self.changed.notify_all();
    }

    /// Every byte is written and verified: `len` bytes in all.
    pub fn verified(&self, len: u64) {
        let mut guard = self.lock();
        if let State::Growing { file, .. } = &*guard {
            *guard = State::Done {
                file: file.clone(),
                len,
            };
        }
        drop(guard);
        self.changed.notify_all();
    }

    /// The blob was already complete and verified (in the store, or staged by another pull).
    pub fn complete(&self, file: File, len: u64) {
        self.set(State::Done {
            file: Arc::new(file),
            len,
        });
    }

    /// The blob will not be complete: readers get `reason` as their error.
    pub fn fail(&self, reason: impl Into<String>) {
        self.set(State::Failed(reason.into()));
    }

    /// Whether it ended (verified or failed).
    pub fn ended(&self) -> bool {
        matches!(*self.lock(), State::Done { .. } | State::Failed(_))
    }

    /// A reader from the blob's first byte.
    pub fn reader(self: &Arc<Self>) -> TeeReader {
        TeeReader {
            tee: self.clone(),
            pos: 0,
        }
    }
}

/// Reads a [`Tee`]'s blob as it is written; end of stream only once it verified.
pub struct TeeReader {
    tee: Arc<Tee>,
    pos: u64,
}

impl Read for TeeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut guard = self.tee.lock();
        let (file, available) = loop {
            match &*guard {
                State::Growing { file, written } if *written > self.pos => {
                    break (file.clone(), *written - self.pos)
                }
                State::Done { file, len } => {
                    if *len <= self.pos {
                        return Ok(0);
                    }
                    break (file.clone(), *len - self.pos);
                }
                State::Failed(reason) => return Err(io::Error::other(reason.clone())),
                State::Waiting | State::Growing { .. } => {
                    guard = self
                        .tee
                        .changed
                        .wait(guard)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            }
        };
        drop(guard);
        let want = usize::try_from(available)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            // The file is shorter than what the writer said it wrote: never silently.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the blob being written is shorter than its writer says",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("brig-tee-{name}-{}", std::process::id()))
    }

    #[test]
    fn reads_follow_the_writer_and_end_only_when_verified() {
        let path = temp("grow");
        let mut w = File::create(&path).unwrap();
        let tee = Arc::new(Tee::default());
        let mut r = tee.reader();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            r.read_to_end(&mut all).map(|_| all)
        });
        tee.started(File::open(&path).unwrap());
        for chunk in [&b"hello "[..], b"pipe", b"line"] {
            w.write_all(chunk).unwrap();
            let len = w.metadata().unwrap().len();
            tee.advance(len);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            !reader.is_finished(),
            "end of stream before the blob verified"
        );
        tee.verified(14);
        assert_eq!(reader.join().unwrap().unwrap(), b"hello pipeline");
        // A second reader of a complete blob reads it all at once.
        let mut again = Vec::new();
        tee.reader().read_to_end(&mut again).unwrap();
        assert_eq!(again, b"hello pipeline");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_failed_blob_is_an_error_for_its_readers() {
        let path = temp("fail");
        std::fs::write(&path, b"unverified").unwrap();
        let tee = Arc::new(Tee::default());
        tee.started(File::open(&path).unwrap());
        tee.advance(10);
        let mut r = tee.reader();
        let mut buf = [0u8; 4];
        assert_eq!(r.read(&mut buf).unwrap(), 4);
        tee.fail("digest mismatch");
        let err = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("digest mismatch"), "{err}");
        // Ended stays ended.
        tee.verified(10);
        assert!(tee.reader().read(&mut buf).is_err());
        std::fs::remove_file(&path).unwrap();
    }
}
