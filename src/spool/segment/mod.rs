//! The segment spool: records appended into shared, pre-faulted spool files with one
//! atomic add and one `memcpy` — no syscall, no lock on the hot path.
//!
//! Why: a `writev` per record costs a syscall plus the kernel's copy into the page
//! cache, and a hand-off through a new file costs more again. A segment is a file created
//! at its full size (blocks allocated with `fallocate`, so a write into the mapping can
//! never meet a full disk and `SIGBUS`), mapped `MAP_SHARED` and write-faulted once
//! (`MADV_POPULATE_WRITE`; a process's first segment a window at a time, ahead of the
//! records), so appending is `memcpy` into memory the reader sees through
//! the page cache. The protocol (tapline.h, `tapline_record::segment`): reserve with
//! `fetch_add` on the header's `reserve` word; store `length`, then `pid`; copy the rest;
//! store the magic last with release order.
//!
//! Segments are made ahead of need by the reader (`free-*.tls`, zero-filled so their
//! pages are allocated and cached); a writer claims one with an atomic rename and only
//! makes its own when none is ready. The claim happens at the first record and at each
//! rotation, never in the constructor.
//!
//! The parts: [`append`] (the hot path inside one segment: reserve, copy, commit),
//! [`slots`] (which mapping is current; switching, parking, reuse, retirement, and the
//! invariant that keeps unmapping safe), [`claim`] (the filesystem: claiming and making
//! segments), [`mapping`] (the one type through which a mapping's bytes are reached).
//! This front picks the slot for each record.
//!
//! After `fork`, the child keeps appending to the segment it shares with its parent
//! (it registers its pid in the segment's writer table; its records carry its pid) and
//! claims segments of its own, `<child pid>-<seq>.tls`, from then on.
//!
//! Every failure drops the record and counts it; a `Drops` record reports the count
//! once writing works again. A filesystem that cannot allocate or map makes the process
//! fall back to the file spool (`spool/file.rs`) for good.

mod append;
mod claim;
mod mapping;
mod slots;

use core::sync::atomic::{AtomicBool, Ordering};
use tapline_record::segment::DATA_START;
use tapline_record::Header;

use crate::config;
use crate::spool::drops::DropCounter;
use crate::spool::process;
use append::{commit, populate_ahead, populate_step};
use slots::{prepare_standby, switch, Busy, Failed, NotWritten, CURRENT, NONE, SLOT};

/// Set in a forked child: its next record in the shared segment is preceded by a
/// `ProcStart` of its own.
static NEED_PROC_START: AtomicBool = AtomicBool::new(false);
static DROPS: DropCounter = DropCounter::new();

/// At exit: drops that no later record reported (writing never worked again, e.g. the
/// directory bound stayed reached) go out as a `Drops` record, in a segment if one
/// takes it, else through `fallback` (the file spool: a few dozen bytes), so the reader
/// learns of them.
pub fn report_drops_at_exit(at: &Header, fallback: fn(&mut Header, &[&[u8]]) -> bool) {
    DROPS.report(at, |h, parts| {
        matches!(write_record_out_of_line(h, parts), Ok(())) || fallback(h, parts)
    });
}

/// Counts a record that was dropped before it reached this writer (too large to be a
/// record); reported with this writer's next `Drops` record.
pub fn count_drop(len: u64) {
    DROPS.count(1, len);
}

/// What happened to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Written,
    /// Dropped and counted.
    Dropped,
    /// Segments cannot work here; the caller writes the record with the file spool.
    Unsupported,
    /// Another thread is moving the process to its next segment right now (its first
    /// one, or past a full one): rather than wait for it, the caller writes this record
    /// with the file spool (the reader merges both by time).
    Busy,
}

/// Segments cannot be used on this filesystem (the file spool is used instead).
pub fn unsupported() -> bool {
    slots::UNSUPPORTED.load(Ordering::Relaxed)
}

/// Appends one record; see [`super::file::append`] for the arguments.
///
/// The hot path — one record into the current segment — is this function and
/// [`write_record`] inlined into it; what happens rarely (a forked child's first record,
/// reporting drops, counting one) is out of line.
#[inline]
pub fn append(header: &mut Header, parts: &[&[u8]]) -> Outcome {
    if slots::UNSUPPORTED.load(Ordering::Relaxed) {
        return Outcome::Unsupported;
    }
    if NEED_PROC_START.load(Ordering::Relaxed) {
        child_proc_start(header);
    }
    match write_record(header, parts) {
        Ok(()) => {
            if DROPS.pending() {
                report_drops(header);
            }
            Outcome::Written
        }
        Err(Busy) => Outcome::Busy,
        Err(Failed) => not_written(header),
    }
}

/// A forked child writing into the segment it shares with its parent: its records
/// there open with a `ProcStart` of its own.
#[cold]
#[inline(never)]
fn child_proc_start(header: &Header) {
    if NEED_PROC_START.swap(false, Ordering::Relaxed) {
        let (mut h, start, cmd) = process::proc_start(header, u32::MAX);
        if write_record_out_of_line(&mut h, &[&start, cmd]).is_err() {
            NEED_PROC_START.store(true, Ordering::Relaxed);
        }
    }
}

/// After a record was written: the drops not reported yet, as a `Drops` record.
#[cold]
#[inline(never)]
fn report_drops(header: &Header) {
    DROPS.report(header, |h, parts| {
        write_record_out_of_line(h, parts).is_ok()
    });
}

/// A record that could not be written: counted.
#[cold]
#[inline(never)]
fn not_written(header: &Header) -> Outcome {
    DROPS.count(1, u64::from(header.length));
    if slots::UNSUPPORTED.load(Ordering::Relaxed) {
        return Outcome::Unsupported;
    }
    Outcome::Dropped
}

/// Records and bytes dropped and not yet reported (for tests and benchmarks).
pub fn dropped() -> (u64, u64) {
    DROPS.get()
}

/// [`write_record`] as a call, for the paths that are not the hot one.
#[inline(never)]
fn write_record_out_of_line(header: &mut Header, parts: &[&[u8]]) -> Result<(), NotWritten> {
    write_record(header, parts)
}

/// Puts one record into the current segment, switching segments when it is full.
#[inline(always)]
fn write_record(header: &mut Header, parts: &[&[u8]]) -> Result<(), NotWritten> {
    let pad = header.pad_for(parts.iter().map(|p| p.len()).sum());
    let len = u64::from(header.length);
    if len > config::segment_bytes() - DATA_START {
        return Err(Failed);
    }
    for _ in 0..3 {
        let cur = CURRENT.load(Ordering::SeqCst);
        if cur == NONE {
            switch(NONE, header)?;
            continue;
        }
        let slot = &SLOT[cur];
        slot.inflight.fetch_add(1, Ordering::SeqCst);
        if CURRENT.load(Ordering::SeqCst) != cur {
            slot.inflight.fetch_sub(1, Ordering::Release);
            continue;
        }
        let m = slot.mapping();
        // SAFETY: the mapping stays while our `inflight` count is held (the slots'
        // invariant); the segment header was initialised before the slot was published.
        let placed = unsafe { commit(m, header, parts, pad, slot.stream.load(Ordering::Relaxed)) };
        if let Some(off) = placed {
            let done = slot.populated.load(Ordering::Relaxed);
            if done < m.size() && off + len + populate_step(done) > done {
                // SAFETY: still counted in `inflight`: the mapping stays.
                unsafe { populate_ahead(&slot.populated, m, off + len) };
            }
        }
        slot.inflight.fetch_sub(1, Ordering::Release);
        if let Some(off) = placed {
            // The one reservation that crosses the middle of the segment gets the next
            // one ready, unless the reader has handed one back.
            let half = m.size() / 2;
            if off <= half && off + len > half {
                prepare_standby(cur, header);
            }
            return Ok(());
        }
        switch(cur, header)?;
    }
    Err(Failed)
}

/// In the child after `fork` (one thread left): see [`slots::after_fork_child`]; a
/// child that shares its parent's current segment opens its records there with a
/// `ProcStart` of its own.
pub fn after_fork_child() {
    if let Some(shared) = slots::after_fork_child() {
        NEED_PROC_START.store(shared, Ordering::Relaxed);
    }
    claim::after_fork_child();
    DROPS.reset();
}
