//! Records a writer could not write, counted where they were dropped and reported by a
//! `Drops` record once that writer can write again.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tapline_record::{Header, RecordType};

/// Records a writer could not write, reported by a `Drops` record once it can write
/// again. Each writer (file, segment) keeps its own.
pub struct DropCounter {
    records: AtomicU64,
    bytes: AtomicU64,
}

impl Default for DropCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl DropCounter {
    pub const fn new() -> Self {
        DropCounter {
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// `records` records of `len` bytes in all were dropped.
    pub fn count(&self, records: u64, len: u64) {
        self.records.fetch_add(records, Relaxed);
        self.bytes.fetch_add(len, Relaxed);
    }

    /// Drops not reported yet? (One relaxed load: the check after every record.)
    #[inline(always)]
    pub fn pending(&self) -> bool {
        self.records.load(Relaxed) != 0
    }

    /// (records, bytes) not yet reported.
    pub fn get(&self) -> (u64, u64) {
        (self.records.load(Relaxed), self.bytes.load(Relaxed))
    }

    pub fn reset(&self) {
        self.records.store(0, Relaxed);
        self.bytes.store(0, Relaxed);
    }

    /// After a successful write: if anything was dropped, writes a `Drops` record with
    /// `write` (stamped like `at`); if that fails too, the counts stay for next time.
    pub fn report(&self, at: &Header, write: impl FnOnce(&mut Header, &[&[u8]]) -> bool) {
        if self.records.load(Relaxed) == 0 {
            return;
        }
        let records = self.records.swap(0, Relaxed);
        let bytes = self.bytes.swap(0, Relaxed);
        let payload = tapline_record::Drops { records, bytes }.encode();
        let mut h = Header::new(RecordType::Drops, payload.len(), at.wall_ns, at.mono_ns);
        h.pid = at.pid;
        h.tid = at.tid;
        if !write(&mut h, &[&payload]) {
            self.count(records + 1, bytes + u64::from(h.length));
        }
    }
}
