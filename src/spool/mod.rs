//! Turning what the capture layer saw into records, and handing them to the writer.
//!
//! Each function builds one record's fixed payload on the stack and passes borrowed
//! slices (the caller's own buffer for captured bytes) to the writer: at most one copy
//! of the bytes — a `memcpy` into a shared segment ([`segment`], the default), or the
//! kernel's copy of a `writev` ([`file`], the fallback where segments cannot be mapped,
//! or with `TAPLINE_SPOOL_MODE=file`).
//!
//! The module graph below runs one way: this front → the writers (`file`, `segment`)
//! → what both use (`process`: ids, clock, `ProcStart`; `drops`; `dir`: the spool
//! directory). Nothing here depends on the framer.

pub mod dir;
pub mod drops;
pub mod file;
pub mod process;
pub mod segment;

use tapline_record::{
    ConnClose, ConnOpen, Data, Failure, MsgEnd, Notice, NoticeKind, RecordType, Stamp, TlsInfo,
};

use crate::config::{self, SpoolMode};
use process::header;
pub use process::{now, pid, set_pid};

/// In the child after `fork`: new pid, new thread id, new files.
pub fn after_fork_child() {
    process::after_fork_child();
    file::after_fork_child();
    segment::after_fork_child();
}

/// Writes one record of any type; `parts` is its payload in pieces. True if it was
/// written (false: dropped and counted, or too large to be a record).
///
/// Inlined, with [`record_with`], into each record function below: a record costs one
/// call, into the writer ([`segment::append`]), not a chain of them (each level's saved
/// registers are stores the writer's atomic add waits for).
#[inline(always)]
pub fn record(rtype: RecordType, conn_id: u64, at: Stamp, parts: &[&[u8]]) -> bool {
    record_with(config::spool_mode(), rtype, conn_id, at, parts)
}

/// [`record`] through a given writer (benchmarks compare them in one process).
#[inline(always)]
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

/// Counts a record lost before it was made (a capture step that panicked, caught by
/// `hooks::after`): reported with the active writer's next `Drops` record.
pub fn count_lost() {
    match active_mode() {
        SpoolMode::Segment => segment::count_drop(0),
        SpoolMode::File => file::count_drop(0),
    }
}

/// At exit (after the last connections were ended): drops not reported yet.
pub fn report_drops_at_exit(at: Stamp) {
    let h = header(RecordType::Drops, 0, 0, at);
    segment::report_drops_at_exit(&h, file::append);
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

/// A message's last captured bytes and its end, from the same call: one `DataEnd`
/// record, meaning [`data`] then [`msg_end`] with this header. Bytes too many for one
/// record go as those two instead.
pub fn data_end(conn_id: u64, fixed: &Data, bytes: &[u8], end: &MsgEnd, at: Stamp) {
    if bytes.len() <= DATA_CHUNK {
        record(
            RecordType::DataEnd,
            conn_id,
            at,
            &[&fixed.encode(), &end.encode(), bytes],
        );
        return;
    }
    data(conn_id, fixed, bytes, at);
    msg_end(conn_id, end, at);
}

/// A message's counts so far (`MsgProgress`, the `MsgEnd` layout).
pub fn msg_progress(conn_id: u64, counts: &MsgEnd, at: Stamp) {
    record(RecordType::MsgProgress, conn_id, at, &[&counts.encode()]);
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

/// A blind spot said out loud: `program` (a path, cut at [`Notice::MAX_PATH`]) runs, or
/// is loaded, in process `pid` where the library will not see it. No allocation and no
/// lock: callable from the exec hooks (after `vfork` the child shares our memory) and
/// from constructor code. True if the record was written.
pub fn notice(kind: NoticeKind, pid: u32, program: &[u8]) -> bool {
    let path = &program[..program.len().min(Notice::MAX_PATH)];
    let fixed = Notice {
        kind,
        flags: 0,
        path_len: path.len() as u16,
        pid,
    };
    let parts: [&[u8]; 2] = [&fixed.encode(), path];
    let me = crate::sys::raw::syscall6(libc::SYS_getpid, [0; 6]) as u32;
    if me != process::pid() {
        // A `vfork` child (or a raw `clone`): our memory, but its own descriptor
        // table. The segment writer only stores into memory we share (a claim's
        // descriptors are closed again); the file writer keeps a descriptor the
        // parent would not have. Segments only, then, and never the file fallback.
        if active_mode() != SpoolMode::Segment {
            return false;
        }
        let len = parts.iter().map(|p| p.len()).sum();
        let mut h = header(RecordType::Notice, len, 0, now());
        return matches!(segment::append(&mut h, &parts), segment::Outcome::Written);
    }
    record(RecordType::Notice, 0, now(), &parts)
}

/// A call that failed before any HTTP (`name` and `reason` as the record says them).
pub fn failure(conn_id: u64, fixed: &Failure, name: &[u8], reason: &[u8], at: Stamp) {
    record(
        RecordType::Failure,
        conn_id,
        at,
        &[&fixed.encode(), name, reason],
    );
}
