//! The segment spool: records appended into shared, pre-faulted spool files with one
//! atomic add and one `memcpy` — no syscall, no lock on the hot path.
//!
//! Why: a `writev` per record costs a syscall (~0.2 µs) plus the kernel's copy into the
//! page cache; a 1 MiB hand-off to a new file costs ~130 µs. A segment is a file created
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
//! The invariant that keeps unmapping safe: a thread touches a mapping only between
//! incrementing its slot's `inflight` counter and decrementing it, and only after
//! checking (after the increment, in sequentially consistent order) that the slot is
//! still the current one. The thread that retires a slot unmaps it only once it has
//! seen `inflight == 0` after the slot stopped being current.
//!
//! After `fork`, the child keeps appending to the segment it shares with its parent
//! (it registers its pid in the segment's writer table; its records carry its pid) and
//! claims segments of its own, `<child pid>-<seq>.tls`, from then on.
//!
//! Every failure drops the record and counts it; a `Drops` record reports the count
//! once writing works again. A filesystem that cannot allocate or map makes the process
//! fall back to the file spool (`file.rs`) for good.

use core::ptr;
use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
use libc::c_int;
use tapline_record::segment::{field, SegmentHeader, State, DATA_START, MAX_WRITERS};
use tapline_record::{Header, HEADER_LEN, MAGIC};

use super::dir::{open_spool_dir, write_decimal};
use super::drops::DropCounter;
use super::process;
use crate::config;
use crate::sys::raw;

/// Mappings a process can hold at once: the current segment, retired ones that a
/// slow thread may still be copying into, and parked ones waiting to be reused.
const SLOTS: usize = 8;
/// At most this many full segments stay mapped for reuse (`PARKED`); past that, a
/// newly full one is let go (unmapped, and deleted by the reader once read) — see
/// [`room_to_park`].
const PARK_MAX: usize = 4;
const NONE: usize = usize::MAX;

const EMPTY: u8 = 0;
const ACTIVE: u8 = 1;
/// Full; a thread of this process may still be copying into it.
const RETIRED: u8 = 2;
/// Full, nobody of this process writes to it; still mapped (page tables filled), to be
/// reused in place once the reader has consumed it.
const PARKED: u8 = 3;
/// Claimed and mapped ahead of need, while the current segment was half full: the next
/// switch installs it at once, so other threads need not wait for a claim.
const STANDBY: u8 = 4;

struct Slot {
    base: AtomicPtr<u8>,
    size: AtomicU64,
    /// Threads of this process between "I use this slot" and "I am done with it".
    inflight: AtomicU32,
    state: AtomicU8,
    /// When it was parked (monotonic ns): the oldest parked slot goes first.
    parked_at: AtomicU64,
    /// Bytes from the start of the mapping whose pages were write-faulted ahead of need
    /// (`MADV_POPULATE_WRITE`), a window at a time ([`populate_ahead`]). Kept while a
    /// segment is parked: a reused segment needs no new faulting.
    populated: AtomicU64,
    /// Copy large parts with non-temporal stores (the segment's lines are not in any
    /// cache); false for a segment the reader zeroed moments ago ([`copy_stream`]).
    stream: AtomicBool,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            base: AtomicPtr::new(ptr::null_mut()),
            size: AtomicU64::new(0),
            inflight: AtomicU32::new(0),
            state: AtomicU8::new(EMPTY),
            parked_at: AtomicU64::new(0),
            populated: AtomicU64::new(0),
            stream: AtomicBool::new(true),
        }
    }
}

static SLOT: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];
/// Index of the slot new records go to, or `NONE`.
static CURRENT: AtomicUsize = AtomicUsize::new(NONE);
/// Index of the `STANDBY` slot, or `NONE`. Changed only with `SWITCHING` held.
static STANDBY_IDX: AtomicUsize = AtomicUsize::new(NONE);
/// Held by the one thread that moves the process to its next segment.
static SWITCHING: AtomicBool = AtomicBool::new(false);
/// Set while the switching thread claims a new segment (slow: files, mappings), so
/// that other threads stop waiting for it and use the file spool meanwhile.
static SWITCH_SLOW: AtomicBool = AtomicBool::new(false);
/// How long a thread waits for another's switch to a reused segment (`spin_loop`
/// rounds, ~1–2 µs) before its record goes to the file spool.
const SWITCH_SPINS: u32 = 64;
/// Next segment sequence number of this process.
static SEQ: AtomicU32 = AtomicU32::new(0);
/// Bytes of segments this process claimed (against `TAPLINE_SPOOL_MAX_BYTES`).
static CLAIMED_BYTES: AtomicU64 = AtomicU64::new(0);
/// After a failed claim, no new attempt before this monotonic time (ns).
static RETRY_AFTER: AtomicU64 = AtomicU64::new(0);
/// Set when this filesystem cannot hold segments: the file spool takes over.
static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
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
        matches!(write_record(h, parts), Ok(())) || fallback(h, parts)
    });
}

/// Counts a record that was dropped before it reached this writer (too large to be a
/// record); reported with this writer's next `Drops` record.
pub fn count_drop(len: u64) {
    DROPS.count(1, len);
}

/// How long to wait after a failed claim (disk full, directory bound) before trying
/// again: a claim attempt costs a directory scan, so not at every record.
const RETRY_NS: u64 = 10_000_000;

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
    UNSUPPORTED.load(Ordering::Relaxed)
}

/// Appends one record; see [`file::append`] for the arguments.
pub fn append(header: &mut Header, parts: &[&[u8]]) -> Outcome {
    if UNSUPPORTED.load(Ordering::Relaxed) {
        return Outcome::Unsupported;
    }
    let len = u64::from(header.length);
    if NEED_PROC_START.load(Ordering::Relaxed) && NEED_PROC_START.swap(false, Ordering::Relaxed) {
        // A forked child writing into the segment it shares with its parent.
        let (mut h, start, cmd) = process::proc_start(header, u32::MAX);
        if write_record(&mut h, &[&start, cmd]).is_err() {
            NEED_PROC_START.store(true, Ordering::Relaxed);
        }
    }
    let written = match write_record(header, parts) {
        Ok(()) => true,
        Err(Busy) => return Outcome::Busy,
        Err(Failed) => false,
    };
    if !written {
        DROPS.count(1, len);
        if UNSUPPORTED.load(Ordering::Relaxed) {
            return Outcome::Unsupported;
        }
        return Outcome::Dropped;
    }
    DROPS.report(header, |h, parts| write_record(h, parts).is_ok());
    Outcome::Written
}

/// Records and bytes dropped and not yet reported (for tests and benchmarks).
pub fn dropped() -> (u64, u64) {
    DROPS.get()
}

/// Why a record did not go into a segment.
enum NotWritten {
    /// Another thread is switching segments.
    Busy,
    /// No segment (bounds, disk full, unsupported) or too large.
    Failed,
}
use NotWritten::{Busy, Failed};

fn write_record(header: &mut Header, parts: &[&[u8]]) -> Result<(), NotWritten> {
    let (head, pad) = header.seal(parts);
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
        let base = slot.base.load(Ordering::Acquire);
        let size = slot.size.load(Ordering::Relaxed);
        // SAFETY: `base` maps `size` bytes and stays mapped while our `inflight` count is
        // held (module invariant); the segment header was initialised before the slot
        // was published.
        let placed = unsafe {
            commit(
                base,
                size,
                &head,
                parts,
                pad,
                slot.stream.load(Ordering::Relaxed),
            )
        };
        if let Some(off) = placed {
            if (off + len) / POPULATE_WINDOW != off / POPULATE_WINDOW {
                // SAFETY: still counted in `inflight`: the mapping stays.
                unsafe { populate_ahead(slot, base, size, off + len) };
            }
        }
        slot.inflight.fetch_sub(1, Ordering::Release);
        if let Some(off) = placed {
            // The one reservation that crosses the middle of the segment gets the next
            // one ready, unless the reader has handed one back.
            let half = size / 2;
            if off <= half && off + len > half {
                prepare_standby(cur, header);
            }
            return Ok(());
        }
        switch(cur, header)?;
    }
    Err(Failed)
}

/// Views the aligned word at `base + at` as an atomic.
///
/// # Safety
/// `base + at` must be mapped, 8-aligned for `AtomicU64` (4 for `AtomicU32`), and only
/// ever accessed atomically by concurrent writers.
unsafe fn atomic_u64<'a>(base: *mut u8, at: usize) -> &'a AtomicU64 {
    // SAFETY: the caller guarantees mapping and alignment.
    unsafe { AtomicU64::from_ptr(base.add(at) as *mut u64) }
}

/// See [`atomic_u64`].
///
/// # Safety
/// As for [`atomic_u64`], with 4-byte alignment.
unsafe fn atomic_u32<'a>(base: *mut u8, at: usize) -> &'a AtomicU32 {
    // SAFETY: the caller guarantees mapping and alignment.
    unsafe { AtomicU32::from_ptr(base.add(at) as *mut u32) }
}

/// Reserves space in the segment at `base` and writes the sealed record there.
/// Returns where, or `None` (and marks the segment full) when it does not fit.
///
/// # Safety
/// `base` maps a segment of `size` bytes with an initialised header, for the whole call.
unsafe fn commit(
    base: *mut u8,
    size: u64,
    head: &[u8; HEADER_LEN],
    parts: &[&[u8]],
    pad: usize,
    stream: bool,
) -> Option<u64> {
    let len = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    // SAFETY: header words are 8-aligned within the mapped first page.
    let reserve = unsafe { atomic_u64(base, field::RESERVE) };
    let off = reserve.fetch_add(u64::from(len), Ordering::Relaxed);
    if off + u64::from(len) > size {
        if off <= size {
            // Ours is the one reservation that crossed the end: say where records end.
            // SAFETY: as above.
            unsafe {
                atomic_u64(base, field::DATA_END).store(off, Ordering::Release);
                atomic_u32(base, field::STATE).store(State::Full as u32, Ordering::Release);
            }
        }
        return None;
    }
    // SAFETY: [off, off + len) lies within the mapping and was reserved for us alone;
    // `off` is 8-aligned because DATA_START and every record length are.
    unsafe {
        let rec = base.add(off as usize);
        // Version and type, then length, then pid: a reader that meets this record
        // uncommitted learns how long it is and whose it is.
        ptr::copy_nonoverlapping(head.as_ptr().add(4), rec.add(4), 4);
        atomic_u32(rec, 8).store(len, Ordering::Relaxed);
        let pid = u32::from_le_bytes([head[32], head[33], head[34], head[35]]);
        atomic_u32(rec, 32).store(pid, Ordering::Release);
        ptr::copy_nonoverlapping(head.as_ptr().add(12), rec.add(12), 20);
        ptr::copy_nonoverlapping(head.as_ptr().add(36), rec.add(36), HEADER_LEN - 36);
        let mut at = HEADER_LEN;
        let mut streamed = false;
        for p in parts {
            if stream && p.len() >= STREAM_MIN {
                copy_stream(rec.add(at), p.as_ptr(), p.len());
                streamed = true;
            } else {
                ptr::copy_nonoverlapping(p.as_ptr(), rec.add(at), p.len());
            }
            at += p.len();
        }
        ptr::write_bytes(rec.add(at), 0, pad);
        if streamed {
            // Non-temporal stores are weakly ordered: they must all be visible before
            // the magic is.
            store_fence();
        }
        atomic_u32(rec, 0).store(MAGIC, Ordering::Release);
    }
    Some(off)
}

/// In a process's first segment, pages are write-faulted this many bytes at a time,
/// one window ahead of the records.
///
/// Why: faulting a whole 4 MiB segment costs ~60 µs or more on the thread that makes
/// the process's first record — at a Lambda function's cold start — for pages a small
/// invocation never touches. Two windows at the claim are cheaper; the record that
/// crosses into a new window faults the one after it, so appends still meet pages that
/// are mapped and writable. Later segments are faulted whole at their claim: one call
/// per segment measured cheaper per page than sixteen (the hand-off benchmark's "ready"
/// row: ~120 µs against ~145 µs per MiB).
const POPULATE_WINDOW: u64 = 256 << 10;

/// Write-faults the pages up to two windows past `end` that are not faulted yet.
///
/// # Safety
/// `base` maps `size` bytes for the whole call (the caller is counted in `inflight`).
unsafe fn populate_ahead(slot: &Slot, base: *mut u8, size: u64, end: u64) {
    let target = ((end / POPULATE_WINDOW + 2) * POPULATE_WINDOW).min(size);
    let done = slot.populated.load(Ordering::Relaxed);
    if target <= done {
        return;
    }
    // SAFETY: [done, target) lies within the mapping; both are page multiples.
    unsafe {
        libc::madvise(
            base.add(done as usize) as *mut libc::c_void,
            (target - done) as usize,
            libc::MADV_POPULATE_WRITE,
        )
    };
    slot.populated.fetch_max(target, Ordering::Relaxed);
}

/// Parts at least this long are copied with non-temporal stores ([`copy_stream`]).
const STREAM_MIN: usize = 4096;

/// Copies `n` bytes with non-temporal stores for every whole 64-byte line of `dst`.
///
/// Why: a spool never rewrites what it wrote, so large records land in lines that are
/// not in any cache. An ordinary store first reads each such line from memory (read
/// for ownership) and later writes it back; a streaming store writes the line once.
/// Measured on the hand-off benchmark's machine: 1 MiB in 64 KiB pieces into memory
/// beyond the caches, ~140 µs with `memcpy`, ~80 µs streamed. The caller issues
/// [`store_fence`] before publishing what was copied.
///
/// # Safety
/// `src` is readable and `dst` writable for `n` bytes; they do not overlap.
#[cfg(target_arch = "x86_64")]
unsafe fn copy_stream(dst: *mut u8, src: *const u8, n: usize) {
    use core::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
    let head = dst.align_offset(64).min(n);
    // SAFETY: within the caller's ranges; the streamed stores go to 16-aligned
    // addresses (`dst + i` is 64-aligned for every `i` past `head`). SSE2 is part of
    // the x86_64 baseline.
    unsafe {
        ptr::copy_nonoverlapping(src, dst, head);
        let mut i = head;
        while i + 64 <= n {
            let s = src.add(i) as *const __m128i;
            let d = dst.add(i) as *mut __m128i;
            let a = _mm_loadu_si128(s);
            let b = _mm_loadu_si128(s.add(1));
            let c = _mm_loadu_si128(s.add(2));
            let e = _mm_loadu_si128(s.add(3));
            _mm_stream_si128(d, a);
            _mm_stream_si128(d.add(1), b);
            _mm_stream_si128(d.add(2), c);
            _mm_stream_si128(d.add(3), e);
            i += 64;
        }
        ptr::copy_nonoverlapping(src.add(i), dst.add(i), n - i);
    }
}

/// See the x86_64 version; elsewhere an ordinary copy.
///
/// # Safety
/// As for the x86_64 version.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn copy_stream(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller guarantees both ranges.
    unsafe { ptr::copy_nonoverlapping(src, dst, n) };
}

/// Orders the non-temporal stores of [`copy_stream`] before later stores.
fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_sfence()
    };
    #[cfg(not(target_arch = "x86_64"))]
    core::sync::atomic::fence(Ordering::SeqCst);
}

/// Moves the process from the segment in slot `from` (or from none) to a new one.
/// Exactly one thread switches; the others do not wait for it (`Busy`: their record
/// goes to the file spool, unless the switch already happened).
fn switch(from: usize, at: &Header) -> Result<(), NotWritten> {
    if SWITCHING
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        // Reusing a parked segment takes well under a microsecond: wait for that
        // (bounded), but not for a claim, which makes and maps a file.
        let mut spins = 0;
        while SWITCHING.load(Ordering::Acquire)
            && !SWITCH_SLOW.load(Ordering::Relaxed)
            && spins < SWITCH_SPINS
        {
            core::hint::spin_loop();
            spins += 1;
        }
        return if CURRENT.load(Ordering::SeqCst) != from {
            Ok(())
        } else {
            Err(Busy)
        };
    }
    let ok = CURRENT.load(Ordering::SeqCst) != from || install_next(from, at);
    SWITCH_SLOW.store(false, Ordering::Relaxed);
    SWITCHING.store(false, Ordering::Release);
    if ok {
        Ok(())
    } else {
        Err(Failed)
    }
}

/// Called with `SWITCHING` held.
fn install_next(from: usize, at: &Header) -> bool {
    reclaim_retired();
    // SAFETY: called with SWITCHING held (reuse_parked's contract).
    if let Some((idx, base, size, seq)) = unsafe { reuse_parked(at.pid) } {
        // The reader zeroed it after it was parked: if that was moments ago, its lines
        // are still in the caches, and ordinary stores beat streaming ones.
        let parked_at = SLOT[idx].parked_at.load(Ordering::Relaxed);
        let stream = at.mono_ns.saturating_sub(parked_at) > HOT_NS;
        publish(from, idx, base, size, seq, stream, at);
        return true;
    }
    let standby = STANDBY_IDX.swap(NONE, Ordering::Relaxed);
    if standby != NONE {
        let slot = &SLOT[standby];
        let base = slot.base.load(Ordering::Acquire);
        let size = slot.size.load(Ordering::Relaxed);
        // SAFETY: the standby slot maps a claimed segment with its header written.
        let seq = unsafe { atomic_u32(base, field::SEQ).load(Ordering::Relaxed) };
        publish(from, standby, base, size, seq, true, at);
        return true;
    }
    match claim_into_slot(at) {
        Some((idx, base, size, seq)) => {
            publish(from, idx, base, size, seq, true, at);
            true
        }
        None => false,
    }
}

/// Claims a new segment (slow: files and mappings) into an empty slot. Called with
/// `SWITCHING` held.
fn claim_into_slot(at: &Header) -> Option<(usize, *mut u8, u64, u32)> {
    let now = at.mono_ns;
    if now < RETRY_AFTER.load(Ordering::Relaxed) {
        return None;
    }
    SWITCH_SLOW.store(true, Ordering::Relaxed);
    let idx = match (0..SLOTS).find(|&i| SLOT[i].state.load(Ordering::Relaxed) == EMPTY) {
        Some(i) => i,
        None => let_go_oldest_parked()?,
    };
    match claim_segment(at.pid) {
        Ok((base, size, seq)) => {
            SLOT[idx]
                .populated
                .store(populated_at_claim(size), Ordering::Relaxed);
            Some((idx, base, size, seq))
        }
        Err(Failure::Unsupported) => {
            UNSUPPORTED.store(true, Ordering::Relaxed);
            None
        }
        Err(Failure::Unavailable) => {
            RETRY_AFTER.store(now + RETRY_NS, Ordering::Relaxed);
            None
        }
    }
}

/// Gets the segment after the current one (slot `cur`) ready while the current one
/// still has room: claimed and mapped now, installed at the switch. Skipped if another
/// thread is switching, a standby exists, or the reader handed a segment back.
fn prepare_standby(cur: usize, at: &Header) {
    if STANDBY_IDX.load(Ordering::Relaxed) != NONE
        || SWITCHING
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let reusable = SLOT.iter().any(|slot| {
        // SAFETY: parked slots stay mapped while SWITCHING is held.
        slot.state.load(Ordering::Relaxed) == PARKED
            && unsafe { handed_back(slot.base.load(Ordering::Acquire)) }
    });
    if CURRENT.load(Ordering::SeqCst) == cur
        && STANDBY_IDX.load(Ordering::Relaxed) == NONE
        && !reusable
    {
        if let Some((idx, base, size, _)) = claim_into_slot(at) {
            fill_slot(idx, base, size, STANDBY);
            STANDBY_IDX.store(idx, Ordering::Relaxed);
        }
    }
    SWITCH_SLOW.store(false, Ordering::Relaxed);
    SWITCHING.store(false, Ordering::Release);
}

/// Bytes write-faulted at the claim of a process's first segment (the header page and
/// the first records); the rest follow a window at a time.
const FIRST_POPULATED: u64 = 2 * POPULATE_WINDOW;

/// How much of a segment of `size` bytes its claim write-faults: all of it, in one
/// call (cheapest per page), except for the process's first segment, whose claim is
/// part of the program's start (a Lambda cold start): that one is faulted a window at
/// a time as records reach it.
fn populated_at_claim(size: u64) -> u64 {
    if SEQ.load(Ordering::Relaxed) <= 1 {
        FIRST_POPULATED.min(size)
    } else {
        size
    }
}

/// Puts a mapped segment in slot `idx`, in `state`.
fn fill_slot(idx: usize, base: *mut u8, size: u64, state: u8) {
    let slot = &SLOT[idx];
    slot.base.store(base, Ordering::Release);
    slot.size.store(size, Ordering::Relaxed);
    slot.state.store(state, Ordering::Relaxed);
}

/// A segment parked less than this long ago (and zeroed by the reader since) is
/// written with ordinary stores: its lines are likely still cached.
const HOT_NS: u64 = 20_000_000;

/// Makes the segment mapped at `base` (header ready, nobody writing) the current one,
/// opening it with a `ProcStart`, and retires slot `from`. Called with `SWITCHING` held.
fn publish(from: usize, idx: usize, base: *mut u8, size: u64, seq: u32, stream: bool, at: &Header) {
    // Every segment (and every use of a reused one) opens with who writes it.
    let (mut h, start, cmd) = process::proc_start(at, seq);
    let parts: [&[u8]; 2] = [&start, cmd];
    let (head, pad) = h.seal(&parts);
    // SAFETY: `base` maps a segment of `size` bytes with its header written.
    unsafe { commit(base, size, &head, &parts, pad, false) };
    SLOT[idx].stream.store(stream, Ordering::Relaxed);
    fill_slot(idx, base, size, ACTIVE);
    CURRENT.store(idx, Ordering::SeqCst);
    if from != NONE {
        SLOT[from].state.store(RETIRED, Ordering::Relaxed);
        reclaim_retired();
    }
}

/// Has the reader consumed (read to its end and zeroed) this use of the segment?
///
/// # Safety
/// `base` maps a segment header (a parked slot, with `SWITCHING` held).
unsafe fn handed_back(base: *mut u8) -> bool {
    // SAFETY: header words are aligned within the mapped first page. Acquire: the
    // reader zeroed the data before it wrote CONSUMED.
    unsafe {
        atomic_u32(base, field::CONSUMED).load(Ordering::Acquire)
            == atomic_u32(base, field::EPOCH).load(Ordering::Relaxed)
    }
}

/// Unmaps a slot's segment and empties the slot (nobody of this process uses it).
fn unmap_slot(slot: &Slot) {
    let base = slot.base.load(Ordering::Acquire);
    let size = slot.size.load(Ordering::Relaxed);
    // SAFETY: the caller guarantees no thread of this process touches the mapping.
    unsafe { libc::munmap(base as *mut libc::c_void, size as usize) };
    slot.base.store(ptr::null_mut(), Ordering::Relaxed);
    slot.state.store(EMPTY, Ordering::Relaxed);
}

/// A parked segment the reader has consumed (read to its end and zeroed), made ready
/// for a new epoch in place: no syscall, no page fault, no new page-cache page.
/// Returns its slot, mapping, size and sequence number.
///
/// # Safety
/// Called with `SWITCHING` held (parked slots change only under it).
unsafe fn reuse_parked(pid: u32) -> Option<(usize, *mut u8, u64, u32)> {
    for (i, slot) in SLOT.iter().enumerate() {
        if slot.state.load(Ordering::Relaxed) != PARKED {
            continue;
        }
        let base = slot.base.load(Ordering::Acquire);
        let size = slot.size.load(Ordering::Relaxed);
        // SAFETY: a parked slot's mapping stays until this thread (holding SWITCHING)
        // lets it go; its header words are aligned within the first page.
        unsafe {
            if !handed_back(base) {
                continue;
            }
            let epoch = atomic_u32(base, field::EPOCH).load(Ordering::Relaxed);
            // The reader waits for a new epoch before it looks again: reset every
            // field, then announce the epoch (release) last.
            atomic_u64(base, field::RESERVE).store(DATA_START, Ordering::Relaxed);
            atomic_u64(base, field::DATA_END).store(0, Ordering::Relaxed);
            for w in 1..MAX_WRITERS {
                atomic_u32(base, field::WRITERS + 4 * w).store(0, Ordering::Relaxed);
            }
            atomic_u32(base, field::WRITERS).store(pid, Ordering::Relaxed);
            atomic_u32(base, field::CREATOR).store(pid, Ordering::Relaxed);
            atomic_u32(base, field::STATE).store(State::Claimed as u32, Ordering::Relaxed);
            atomic_u32(base, field::EPOCH).store(epoch.wrapping_add(1).max(1), Ordering::Release);
        }
        // Not re-faulted with MADV_POPULATE_WRITE: page tables stay filled while a
        // segment is parked, and that walk costs ~80 µs per 4 MiB even when every page
        // is still writable. If writeback cleaned pages meanwhile, each takes one
        // write fault on its next append, which the walk would only have moved here.
        // SAFETY: as above.
        let seq = unsafe { atomic_u32(base, field::SEQ).load(Ordering::Relaxed) };
        return Some((i, base, size, seq));
    }
    None
}

/// Lets the oldest parked segment go (its keeper is cleared, so the reader deletes it
/// once read) and returns its now empty slot. Called with `SWITCHING` held.
fn let_go_oldest_parked() -> Option<usize> {
    let idx = (0..SLOTS)
        .filter(|&i| SLOT[i].state.load(Ordering::Relaxed) == PARKED)
        .min_by_key(|&i| SLOT[i].parked_at.load(Ordering::Relaxed))?;
    let_go(idx);
    Some(idx)
}

/// Unmaps parked slot `idx` for good, clearing the segment's keeper first. Called with
/// `SWITCHING` held.
fn let_go(idx: usize) {
    let slot = &SLOT[idx];
    // SAFETY: parked: mapped, and no thread of this process uses it.
    unsafe { atomic_u32(slot.base.load(Ordering::Acquire), field::KEEPER) }
        .store(0, Ordering::Release);
    unmap_slot(slot);
}

/// Is there room for one more parked segment? While all `PARK_MAX` places are taken,
/// the newest full segment is let go, not the older parked ones: a reader consumes
/// segments oldest first, so those are the ones it hands back first. Only a parked
/// segment nobody consumed for [`STALE_NS`] (no reader is following this spool, or it
/// lost these files) gives its place up.
fn room_to_park() -> bool {
    let parked = |i: &usize| SLOT[*i].state.load(Ordering::Relaxed) == PARKED;
    if (0..SLOTS).filter(parked).count() < PARK_MAX {
        return true;
    }
    let now = process::now().mono_ns;
    let stale = (0..SLOTS)
        .filter(parked)
        .filter(|&i| now.saturating_sub(SLOT[i].parked_at.load(Ordering::Relaxed)) > STALE_NS)
        // SAFETY: a parked slot stays mapped while SWITCHING is held (by our caller).
        .filter(|&i| !unsafe { handed_back(SLOT[i].base.load(Ordering::Acquire)) })
        .min_by_key(|&i| SLOT[i].parked_at.load(Ordering::Relaxed));
    match stale {
        Some(i) => {
            let_go(i);
            true
        }
        None => false,
    }
}

/// A parked segment not consumed for this long is given up for a newer one.
const STALE_NS: u64 = 1_000_000_000;

/// Retired slots no thread of this process is using any more: taken off their writer
/// tables, then parked for reuse (if this process keeps the segment and there is
/// room) or unmapped. Called with `SWITCHING` held.
fn reclaim_retired() {
    let pid = process::pid();
    for slot in &SLOT {
        if slot.state.load(Ordering::Relaxed) != RETIRED
            || slot.inflight.load(Ordering::SeqCst) != 0
        {
            continue;
        }
        let base = slot.base.load(Ordering::Acquire);
        // SAFETY: the slot is retired and unused (inflight 0 after it stopped being
        // current), so nobody in this process touches the mapping any more.
        unsafe { unregister(base, pid) };
        // SAFETY: as above; the keeper word is aligned in the first page.
        let ours = unsafe { atomic_u32(base, field::KEEPER).load(Ordering::Relaxed) } == pid;
        if ours && room_to_park() {
            slot.parked_at
                .store(process::now().mono_ns, Ordering::Relaxed);
            slot.state.store(PARKED, Ordering::Relaxed);
            continue;
        }
        if ours {
            // SAFETY: as above.
            unsafe { atomic_u32(base, field::KEEPER).store(0, Ordering::Release) };
        }
        unmap_slot(slot);
    }
}

/// Adds `pid` to the segment's writer table. False if the table is full.
///
/// # Safety
/// `base` maps a segment header.
unsafe fn register(base: *mut u8, pid: u32) -> bool {
    (0..MAX_WRITERS).any(|i| {
        // SAFETY: the writer table lies in the mapped first page, 4-aligned.
        let w = unsafe { atomic_u32(base, field::WRITERS + 4 * i) };
        w.compare_exchange(0, pid, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    })
}

/// Takes `pid` off the segment's writer table.
///
/// # Safety
/// `base` maps a segment header.
unsafe fn unregister(base: *mut u8, pid: u32) {
    for i in 0..MAX_WRITERS {
        // SAFETY: as in `register`.
        let w = unsafe { atomic_u32(base, field::WRITERS + 4 * i) };
        let _ = w.compare_exchange(pid, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// In the child after `fork` (one thread left): threads that were copying in the parent
/// do not exist here; keep the shared segment if the child can register as its writer.
/// The parent's retired, parked and standby segments are the parent's: the child only
/// drops its copies of their mappings.
pub fn after_fork_child() {
    SWITCHING.store(false, Ordering::Relaxed);
    SWITCH_SLOW.store(false, Ordering::Relaxed);
    for slot in &SLOT {
        slot.inflight.store(0, Ordering::Relaxed);
    }
    let cur = CURRENT.load(Ordering::Relaxed);
    STANDBY_IDX.store(NONE, Ordering::Relaxed);
    for (i, slot) in SLOT.iter().enumerate() {
        let state = slot.state.load(Ordering::Relaxed);
        if i != cur && (state == RETIRED || state == PARKED || state == STANDBY) {
            // The child's own copy of the mapping; no other thread exists here.
            unmap_slot(slot);
        }
    }
    if cur != NONE {
        let base = SLOT[cur].base.load(Ordering::Relaxed);
        // SAFETY: the current slot's mapping was inherited from the parent.
        let shared = unsafe { register(base, process::pid()) };
        if !shared {
            SLOT[cur].state.store(RETIRED, Ordering::Relaxed);
            CURRENT.store(NONE, Ordering::SeqCst);
        }
        NEED_PROC_START.store(shared, Ordering::Relaxed);
    }
    SEQ.store(0, Ordering::Relaxed);
    CLAIMED_BYTES.store(0, Ordering::Relaxed);
    RETRY_AFTER.store(0, Ordering::Relaxed);
    DROPS.reset();
}

enum Failure {
    /// No segment now (disk full, directory or process bound reached, a race): retry later.
    Unavailable,
    /// This filesystem cannot allocate or map segments.
    Unsupported,
}

/// A path-sized buffer on the stack.
struct Name {
    buf: [u8; 64],
    len: usize,
}

impl Name {
    fn new() -> Name {
        Name {
            buf: [0; 64],
            len: 0,
        }
    }
    fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.buf.len() - 1 - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }
    fn push_decimal(&mut self, v: u64) {
        let mut digits = [0u8; 20];
        let n = write_decimal(&mut digits, v);
        self.push(&digits[..n]);
    }
    /// NUL-terminated (the buffer is zeroed and never filled to its last byte).
    fn as_ptr(&self) -> *const libc::c_char {
        self.buf.as_ptr() as *const libc::c_char
    }
    #[cfg(test)]
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// What a scan of the spool directory found.
struct DirScan {
    /// Claimed segments (`<pid>-<seq>.tls`) of all processes.
    claimed: u64,
    /// Up to `FREE_MAX` names of segments made ahead of need.
    free: [Name; FREE_MAX],
    nfree: usize,
}
const FREE_MAX: usize = 4;

/// Claims a segment: a ready one if the reader made some, else a new one.
fn claim_segment(pid: u32) -> Result<(*mut u8, u64, u32), Failure> {
    let Some(dirfd) = open_spool_dir() else {
        return Err(Failure::Unavailable);
    };
    let result = claim_in(dirfd, pid);
    raw::close(dirfd);
    result
}

fn claim_in(dirfd: c_int, pid: u32) -> Result<(*mut u8, u64, u32), Failure> {
    let scan = scan_dir(dirfd);
    if scan.claimed >= config::max_segments() {
        return Err(Failure::Unavailable);
    }
    let want = config::segment_bytes();
    if CLAIMED_BYTES.load(Ordering::Relaxed) + want > config::process_bytes() {
        return Err(Failure::Unavailable);
    }
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    // Set up under a name readers ignore, publish under the final name when ready.
    let mut tmp = Name::new();
    tmp.push(b".claim-");
    tmp.push_decimal(u64::from(pid));
    tmp.push(b"-");
    tmp.push_decimal(u64::from(seq));
    let mut fd = -1;
    for free in &scan.free[..scan.nfree] {
        if rename_noreplace(dirfd, free, &tmp) {
            fd = open_checked(dirfd, &tmp);
            if fd >= 0 {
                break;
            }
            // SAFETY: NUL-terminated name relative to our directory.
            unsafe { libc::unlinkat(dirfd, tmp.as_ptr(), 0) };
        }
    }
    let size = if fd >= 0 {
        file_size(fd)
    } else {
        fd = create_allocated(dirfd, &tmp, want)?;
        want
    };
    // SAFETY: mapping a descriptor we own, of `size` bytes that are allocated on disk.
    let base = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    raw::close(fd);
    if base == libc::MAP_FAILED {
        let e = raw::errno();
        // SAFETY: as above.
        unsafe { libc::unlinkat(dirfd, tmp.as_ptr(), 0) };
        return Err(if e == libc::ENOMEM || e == libc::EAGAIN {
            Failure::Unavailable
        } else {
            Failure::Unsupported
        });
    }
    // Fault the first pages in for writing now, so that the first write to each does
    // not take a fault later; the rest follow a window ahead of the records
    // (`populate_ahead`). (Not MAP_POPULATE as well: it maps shared pages read-only, a
    // pass over the page tables that this one redoes.) Older kernels lack it: then the
    // first writes fault, nothing worse.
    // SAFETY: `base` maps `size` bytes.
    unsafe {
        libc::madvise(
            base,
            populated_at_claim(size) as usize,
            libc::MADV_POPULATE_WRITE,
        )
    };
    let base = base as *mut u8;
    let header = SegmentHeader::claimed(size, pid, seq);
    // SAFETY: the first page is mapped and nobody else knows this file yet.
    unsafe { ptr::copy_nonoverlapping(header.as_ptr(), base, header.len()) };
    let mut name = Name::new();
    name.push_decimal(u64::from(pid));
    name.push(b"-");
    name.push_decimal(u64::from(seq));
    name.push(b".tls");
    if !rename_noreplace(dirfd, &tmp, &name) {
        // SAFETY: `base` maps `size` bytes; the name is NUL-terminated.
        unsafe {
            libc::munmap(base as *mut libc::c_void, size as usize);
            libc::unlinkat(dirfd, tmp.as_ptr(), 0);
        }
        return Err(Failure::Unavailable);
    }
    CLAIMED_BYTES.fetch_add(size, Ordering::Relaxed);
    Ok((base, size, seq))
}

/// Creates `name` with `size` bytes allocated (so that writes through the mapping can
/// never hit a full disk).
fn create_allocated(dirfd: c_int, name: &Name, size: u64) -> Result<c_int, Failure> {
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: NUL-terminated name relative to our directory.
    let fd = unsafe { libc::openat(dirfd, name.as_ptr(), flags, 0o600 as libc::c_uint) };
    if fd < 0 {
        return Err(Failure::Unavailable);
    }
    // SAFETY: fallocate on a descriptor we own.
    if unsafe { libc::fallocate(fd, 0, 0, size as libc::off_t) } != 0 {
        let e = raw::errno();
        raw::close(fd);
        // SAFETY: as above.
        unsafe { libc::unlinkat(dirfd, name.as_ptr(), 0) };
        return Err(match e {
            libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL | libc::ENODEV => Failure::Unsupported,
            _ => Failure::Unavailable,
        });
    }
    Ok(fd)
}

/// Opens a claimed ready-made segment and checks that it is ours, a regular file of a
/// sane size, and fully allocated. Returns -1 otherwise.
fn open_checked(dirfd: c_int, name: &Name) -> c_int {
    let flags = libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: NUL-terminated name relative to our directory.
    let fd = unsafe { libc::openat(dirfd, name.as_ptr(), flags) };
    if fd < 0 {
        return -1;
    }
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: `st` is writable; `fd` is ours.
    let ok = unsafe { libc::fstat(fd, &mut st) } == 0
        && (st.st_mode & libc::S_IFMT) == libc::S_IFREG
        // SAFETY: geteuid has no preconditions.
        && st.st_uid == unsafe { libc::geteuid() }
        && (tapline_record::segment::MIN_SEGMENT_BYTES..=tapline_record::segment::MAX_SEGMENT_BYTES)
            .contains(&(st.st_size as u64))
        && st.st_size % 4096 == 0
        && (st.st_blocks as u64) * 512 >= st.st_size as u64;
    if !ok {
        raw::close(fd);
        return -1;
    }
    fd
}

fn file_size(fd: c_int) -> u64 {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: `st` is writable; `fd` is ours.
    unsafe { libc::fstat(fd, &mut st) };
    st.st_size as u64
}

/// `renameat2(RENAME_NOREPLACE)`: atomic, and never replaces a file (a dead process of
/// the same pid may have left an unread segment under the same name).
fn rename_noreplace(dirfd: c_int, from: &Name, to: &Name) -> bool {
    // SAFETY: NUL-terminated names relative to our directory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            dirfd,
            from.as_ptr(),
            dirfd,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    r == 0
}

/// Counts claimed segments and collects a few ready-made ones, with `getdents64` into a
/// stack buffer (no allocation, no `opendir`).
fn scan_dir(dirfd: c_int) -> DirScan {
    let mut scan = DirScan {
        claimed: 0,
        free: [Name::new(), Name::new(), Name::new(), Name::new()],
        nfree: 0,
    };
    // SAFETY: rewinding a directory descriptor we own.
    unsafe { libc::lseek(dirfd, 0, libc::SEEK_SET) };
    let mut buf = [0u64; 512];
    loop {
        // SAFETY: `buf` is writable for its size in bytes.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dirfd,
                buf.as_mut_ptr(),
                core::mem::size_of_val(&buf),
            )
        };
        if n <= 0 {
            break;
        }
        // SAFETY: the kernel wrote `n` bytes of dirent64 records into `buf`.
        let bytes = unsafe { core::slice::from_raw_parts(buf.as_ptr() as *const u8, n as usize) };
        let mut at = 0;
        while at + 19 < bytes.len() {
            let reclen = u16::from_le_bytes([bytes[at + 16], bytes[at + 17]]) as usize;
            if reclen == 0 || at + reclen > bytes.len() {
                break;
            }
            let name = &bytes[at + 19..at + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if name.ends_with(b".tls") {
                if name.starts_with(b"free-") {
                    if scan.nfree < FREE_MAX && name.len() < 60 {
                        scan.free[scan.nfree].push(name);
                        scan.nfree += 1;
                    }
                } else if name.first().is_some_and(u8::is_ascii_digit) {
                    scan.claimed += 1;
                }
            }
            at += reclen;
        }
    }
    scan
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_nul_terminated_and_bounded() {
        let mut n = super::Name::new();
        n.push(b"free-");
        n.push_decimal(123);
        assert_eq!(n.bytes(), b"free-123");
        for _ in 0..20 {
            n.push(b"0123456789");
        }
        assert_eq!(n.len, 63);
        assert_eq!(n.buf[63], 0);
    }
}
