//! Batches that could not be sent wait here, as encoded request bodies in
//! `<spool_dir>/outbox/`, and are sent first on the next export: a collector that is down
//! for a while costs a delay, not data.
//!
//! The outbox is bounded (file count and bytes): when a new batch would exceed either
//! bound, the oldest batches are deleted and counted in `outbox/dropped` (a decimal
//! counter), so a long outage loses the oldest data knowingly, never silently. Files are
//! written to a temporary name and renamed, so a reader never sees half a batch.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::encode::Encoding;

/// Errors of the outbox (all are I/O on its directory).
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("batch of {len} bytes is larger than the whole outbox ({max} bytes)")]
    TooLarge { len: u64, max: u64 },
}

/// One waiting batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    pub path: PathBuf,
    pub encoding: Encoding,
    pub len: u64,
}

/// What [`Outbox::put`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutOutcome {
    pub path: PathBuf,
    /// Older batches deleted to make room.
    pub dropped: usize,
}

/// The bounded directory of unsent batches.
#[derive(Clone, Debug)]
pub struct Outbox {
    dir: PathBuf,
    max_files: usize,
    max_bytes: u64,
}

const DROPPED_FILE: &str = "dropped";

impl Outbox {
    /// `<spool_dir>/outbox`, at most 64 batches and 16 MiB.
    pub fn new(spool_dir: &Path) -> Self {
        Outbox {
            dir: spool_dir.join("outbox"),
            max_files: 64,
            max_bytes: 16 << 20,
        }
    }

    pub fn with_limits(mut self, max_files: usize, max_bytes: u64) -> Self {
        self.max_files = max_files.max(1);
        self.max_bytes = max_bytes;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(&self, path: &Path) -> impl FnOnce(io::Error) -> OutboxError {
        let path = path.to_path_buf();
        move |source| OutboxError::Io { path, source }
    }

    /// Keeps `payload` for later, deleting the oldest batches if the bounds require.
    pub fn put(&self, payload: &[u8], encoding: Encoding) -> Result<PutOutcome, OutboxError> {
        let len = payload.len() as u64;
        if len > self.max_bytes {
            self.count_dropped(1)?;
            return Err(OutboxError::TooLarge {
                len,
                max: self.max_bytes,
            });
        }
        fs::create_dir_all(&self.dir).map_err(self.io(&self.dir))?;
        let mut pending = self.pending()?;
        let mut dropped = 0;
        let mut total: u64 = pending.iter().map(|e| e.len).sum();
        while !pending.is_empty()
            && (pending.len() + 1 > self.max_files || total + len > self.max_bytes)
        {
            let oldest = pending.remove(0);
            total -= oldest.len;
            match fs::remove_file(&oldest.path) {
                Ok(()) => dropped += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io(&oldest.path)(e)),
            }
        }
        if dropped > 0 {
            self.count_dropped(dropped as u64)?;
        }
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "{now:020}-{}-{}.{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            encoding.extension()
        );
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        fs::write(&tmp, payload).map_err(self.io(&tmp))?;
        fs::rename(&tmp, &path).map_err(self.io(&path))?;
        Ok(PutOutcome { path, dropped })
    }

    /// Waiting batches, oldest first. A missing directory is an empty outbox.
    pub fn pending(&self) -> Result<Vec<OutboxEntry>, OutboxError> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(self.io(&self.dir))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            let Some(encoding) = name
                .rsplit_once('.')
                .and_then(|(_, ext)| Encoding::from_extension(ext))
            else {
                continue;
            };
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            out.push(OutboxEntry {
                path,
                encoding,
                len,
            });
        }
        // Names start with a zero-padded timestamp: lexical order is age order.
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    pub fn read(&self, entry: &OutboxEntry) -> Result<Vec<u8>, OutboxError> {
        fs::read(&entry.path).map_err(self.io(&entry.path))
    }

    /// Removes a batch that was sent (or that the collector refused for good).
    pub fn remove(&self, entry: &OutboxEntry) -> Result<(), OutboxError> {
        match fs::remove_file(&entry.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(self.io(&entry.path)(e)),
            _ => Ok(()),
        }
    }

    /// Batches deleted unsent over the outbox's lifetime.
    pub fn dropped_total(&self) -> u64 {
        fs::read_to_string(self.dir.join(DROPPED_FILE))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Adds `n` to the lifetime count of batches deleted unsent.
    pub fn count_dropped(&self, n: u64) -> Result<(), OutboxError> {
        fs::create_dir_all(&self.dir).map_err(self.io(&self.dir))?;
        let path = self.dir.join(DROPPED_FILE);
        let total = self.dropped_total() + n;
        fs::write(&path, format!("{total}\n")).map_err(self.io(&path))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    pub(crate) struct TempDir(pub PathBuf);
    impl TempDir {
        pub(crate) fn new(tag: &str) -> Self {
            static N: AtomicU64 = AtomicU64::new(0);
            let p = std::env::temp_dir().join(format!(
                "tapline-test-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn put_pending_remove_in_age_order() {
        let d = TempDir::new("outbox");
        let ob = Outbox::new(&d.0);
        assert!(ob.pending().unwrap().is_empty());
        ob.put(b"one", Encoding::Json).unwrap();
        ob.put(b"two2", Encoding::Protobuf).unwrap();
        let p = ob.pending().unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(ob.read(&p[0]).unwrap(), b"one");
        assert_eq!((p[1].encoding, p[1].len), (Encoding::Protobuf, 4));
        ob.remove(&p[0]).unwrap();
        ob.remove(&p[0]).unwrap(); // already gone: fine
        assert_eq!(ob.pending().unwrap().len(), 1);
        // stray files are ignored
        fs::write(ob.dir().join("notes.txt"), "x").unwrap();
        fs::write(ob.dir().join(".half.json.tmp"), "x").unwrap();
        assert_eq!(ob.pending().unwrap().len(), 1);
    }

    #[test]
    fn bounded_oldest_dropped_and_counted() {
        let d = TempDir::new("outbox-bound");
        let ob = Outbox::new(&d.0).with_limits(3, 100);
        for i in 0..5u8 {
            ob.put(&[i; 10], Encoding::Json).unwrap();
        }
        let p = ob.pending().unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(ob.read(&p[0]).unwrap(), [2; 10]);
        assert_eq!(ob.dropped_total(), 2);
        // bytes bound: a 90-byte batch leaves room for one 10-byte batch
        let out = ob.put(&[9; 90], Encoding::Json).unwrap();
        assert_eq!(out.dropped, 2);
        assert_eq!(ob.pending().unwrap().len(), 2);
        assert_eq!(ob.dropped_total(), 4);
        // larger than the whole outbox: refused, counted
        assert!(matches!(
            ob.put(&[0; 101], Encoding::Json),
            Err(OutboxError::TooLarge { .. })
        ));
        assert_eq!(ob.dropped_total(), 5);
    }
}
