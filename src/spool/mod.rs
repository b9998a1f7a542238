//! Turning what the capture layer saw into records, and handing them to the writer.
//!
//! Each function builds one record's fixed payload on the stack and passes borrowed
//! slices (the caller's own buffer for captured bytes) to the writer: at most one copy
//! of the bytes — a `memcpy` into a shared segment ([`segment`], the default), or the
//! kernel's copy of a `writev` ([`file`], the fallback where segments cannot be mapped,
//! or with `TAPLINE_SPOOL_MODE=file`).

pub mod file;
pub mod segment;

use core::cell::Cell;
use core::sync::atomic::{AtomicU32, Ordering};
use tapline_record::{
    ConnClose, ConnOpen, Data, Header, MsgEnd, ProcStart, RecordType, Stamp, TlsInfo,
};

use crate::config::{self, SpoolMode};
use crate::sys::raw;

static PID: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// This thread's kernel id, cached (0 = not yet known). A `const` cell without
    /// `Drop`: no lazy initialisation, no destructor at thread exit.
    static TID: Cell<u32> = const { Cell::new(0) };
}

/// Caches the pid (constructor, and the child after `fork`).
pub fn set_pid() {
    // SAFETY: getpid has no preconditions.
    PID.store(unsafe { libc::getpid() } as u32, Ordering::Relaxed);
}

/// In the child after `fork`: new pid, new thread id, new files.
pub fn after_fork_child() {
    set_pid();
    let _ = TID.try_with(|t| t.set(0));
    file::after_fork_child();
    segment::after_fork_child();
}

pub fn pid() -> u32 {
    PID.load(Ordering::Relaxed)
}

fn tid() -> u32 {
    TID.try_with(|t| {
        let v = t.get();
        if v != 0 {
            return v;
        }
        let v = raw::gettid();
        t.set(v);
        v
    })
    .unwrap_or(0)
}

/// The current time, as records carry it.
pub fn now() -> Stamp {
    let (wall_ns, mono_ns) = raw::now();
    Stamp { wall_ns, mono_ns }
}

fn header(rtype: RecordType, payload_len: usize, conn_id: u64, at: Stamp) -> Header {
    let mut h = Header::new(rtype, payload_len, at.wall_ns, at.mono_ns);
    h.pid = pid();
    h.tid = tid();
    h.conn_id = conn_id;
    h
}

/// Writes one record of any type; `parts` is its payload in pieces. True if it was
/// written (false: dropped and counted, or too large to be a record).
pub fn record(rtype: RecordType, conn_id: u64, at: Stamp, parts: &[&[u8]]) -> bool {
    record_with(config::spool_mode(), rtype, conn_id, at, parts)
}

/// [`record`] through a given writer (benchmarks compare them in one process).
pub fn record_with(
    mode: SpoolMode,
    rtype: RecordType,
    conn_id: u64,
    at: Stamp,
    parts: &[&[u8]],
) -> bool {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if len + tapline_record::HEADER_LEN > tapline_record::MAX_RECORD_LEN {
        // Cannot be a record (captured bytes are cut into DATA_CHUNK pieces before
        // they get here): dropped, and counted like any other drop.
        let len = (len + tapline_record::HEADER_LEN) as u64;
        match mode {
            SpoolMode::Segment if !segment::unsupported() => segment::count_drop(len),
            _ => file::count_drop(len),
        }
        return false;
    }
    let mut h = header(rtype, len, conn_id, at);
    if mode == SpoolMode::Segment {
        match segment::append(&mut h, parts) {
            segment::Outcome::Written => return true,
            segment::Outcome::Dropped => return false,
            segment::Outcome::Unsupported | segment::Outcome::Busy => {}
        }
    }
    file::append(&mut h, parts)
}

/// The writer records go to now: the configured one, unless segments turned out to be
/// impossible here.
pub fn active_mode() -> SpoolMode {
    match config::spool_mode() {
        SpoolMode::Segment if !segment::unsupported() => SpoolMode::Segment,
        _ => SpoolMode::File,
    }
}

/// At exit (after the last connections were ended): drops not reported yet.
pub fn report_drops_at_exit(at: Stamp) {
    let h = header(RecordType::Drops, 0, 0, at);
    segment::report_drops_at_exit(&h);
    file::report_drops_at_exit(&h);
}

pub fn conn_open(conn_id: u64, open: &ConnOpen, at: Stamp) {
    record(RecordType::ConnOpen, conn_id, at, &[&open.encode()]);
}

/// Captured bytes larger than this go to the spool as several `Data` records (each
/// with its own offset; the reader places pieces by offset). A record holds at most
/// 1 MiB, and pieces much smaller than a segment waste little at a segment's end.
pub const DATA_CHUNK: usize = 64 << 10;

pub fn data(conn_id: u64, fixed: &Data, bytes: &[u8], at: Stamp) {
    if bytes.len() <= DATA_CHUNK {
        record(RecordType::Data, conn_id, at, &[&fixed.encode(), bytes]);
        return;
    }
    let mut offset = fixed.offset;
    for piece in bytes.chunks(DATA_CHUNK) {
        let part = Data {
            offset,
            len: piece.len() as u32,
            ..*fixed
        };
        record(RecordType::Data, conn_id, at, &[&part.encode(), piece]);
        offset += piece.len() as u64;
    }
}

pub fn msg_end(conn_id: u64, end: &MsgEnd, at: Stamp) {
    record(RecordType::MsgEnd, conn_id, at, &[&end.encode()]);
}

pub fn conn_close(conn_id: u64, close: &ConnClose, at: Stamp) {
    record(RecordType::ConnClose, conn_id, at, &[&close.encode()]);
}

pub fn tls_info(conn_id: u64, info: &TlsInfo, sni: &[u8], alpn: &[u8], at: Stamp) {
    record(
        RecordType::TlsInfo,
        conn_id,
        at,
        &[&info.encode(), sni, alpn],
    );
}

/// The `ProcStart` record that opens every spool file and segment (and a forked child's
/// first records in a segment it shares): its header, fixed part and command line.
pub(crate) fn proc_start(at: &Header, seq: u32) -> (Header, [u8; ProcStart::LEN], &'static [u8]) {
    let cmd = file::cmdline();
    let start = ProcStart {
        // SAFETY: getppid has no preconditions.
        ppid: unsafe { libc::getppid() } as u32,
        cmdline_len: cmd.len() as u32,
        file_seq: seq,
        flags: 0,
    }
    .encode();
    let mut h = Header::new(
        RecordType::ProcStart,
        start.len() + cmd.len(),
        at.wall_ns,
        at.mono_ns,
    );
    h.pid = at.pid;
    h.tid = at.tid;
    (h, start, cmd)
}

/// Records a writer could not write, reported by a `Drops` record once it can write
/// again. Each writer (file, segment) keeps its own.
pub(crate) struct DropCounter {
    records: core::sync::atomic::AtomicU64,
    bytes: core::sync::atomic::AtomicU64,
}

impl DropCounter {
    pub(crate) const fn new() -> Self {
        DropCounter {
            records: core::sync::atomic::AtomicU64::new(0),
            bytes: core::sync::atomic::AtomicU64::new(0),
        }
    }

    /// One record of `len` bytes was dropped.
    pub(crate) fn count(&self, records: u64, len: u64) {
        self.records
            .fetch_add(records, core::sync::atomic::Ordering::Relaxed);
        self.bytes
            .fetch_add(len, core::sync::atomic::Ordering::Relaxed);
    }

    /// (records, bytes) not yet reported.
    pub(crate) fn get(&self) -> (u64, u64) {
        use core::sync::atomic::Ordering::Relaxed;
        (self.records.load(Relaxed), self.bytes.load(Relaxed))
    }

    pub(crate) fn reset(&self) {
        use core::sync::atomic::Ordering::Relaxed;
        self.records.store(0, Relaxed);
        self.bytes.store(0, Relaxed);
    }

    /// After a successful write: if anything was dropped, writes a `Drops` record with
    /// `write` (stamped like `at`); if that fails too, the counts stay for next time.
    pub(crate) fn report(&self, at: &Header, write: impl FnOnce(&mut Header, &[&[u8]]) -> bool) {
        use core::sync::atomic::Ordering::Relaxed;
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
