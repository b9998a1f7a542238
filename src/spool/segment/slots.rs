//! The process's segment slots: which mapping records go to now, and what happens to a
//! segment once it is full.
//!
//! A slot moves EMPTY → ACTIVE (current) → RETIRED (full; a slow thread may still be
//! copying into it) → PARKED (kept mapped to be reused in place once the reader has
//! consumed it) or EMPTY (unmapped; the reader deletes the file once read). A STANDBY
//! slot holds the next segment, claimed while the current one was half full. Exactly
//! one thread at a time (`SWITCHING`) changes which slot is current, parks, reuses or
//! lets go; the others never wait for a claim.
//!
//! The invariant that keeps unmapping safe: a thread touches a mapping only between
//! incrementing its slot's `inflight` counter and decrementing it, and only after
//! checking (after the increment, in sequentially consistent order) that the slot is
//! still the current one. The thread that retires a slot unmaps it only once it has
//! seen `inflight == 0` after the slot stopped being current.

use core::ptr;
use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
use tapline_record::segment::{field, State, DATA_START, MAX_WRITERS};
use tapline_record::Header;

use super::append::commit;
use super::claim::{claim_segment, Failure};
use super::mapping::Mapping;
use crate::spool::process;

/// Mappings a process can hold at once: the current segment, retired ones that a
/// slow thread may still be copying into, and parked ones waiting to be reused.
pub const SLOTS: usize = 8;
/// At most this many full segments stay mapped for reuse (`PARKED`); past that, a
/// newly full one is let go (unmapped, and deleted by the reader once read) — see
/// [`room_to_park`].
const PARK_MAX: usize = 4;
pub const NONE: usize = usize::MAX;

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

pub struct Slot {
    base: AtomicPtr<u8>,
    size: AtomicU64,
    /// Threads of this process between "I use this slot" and "I am done with it".
    pub inflight: AtomicU32,
    state: AtomicU8,
    /// When it was parked (monotonic ns): the oldest parked slot goes first.
    parked_at: AtomicU64,
    /// Bytes from the start of the mapping whose pages were write-faulted ahead of need
    /// (`MADV_POPULATE_WRITE`), a window at a time ([`super::append::populate_ahead`]). Kept while a
    /// segment is parked: a reused segment needs no new faulting.
    pub populated: AtomicU64,
    /// Copy large parts with non-temporal stores (the segment's lines are not in any
    /// cache); false for a segment the reader zeroed moments ago.
    pub stream: AtomicBool,
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

    /// The slot's mapping (valid only under the module contract of [`Mapping`]).
    pub fn mapping(&self) -> Mapping {
        Mapping::new(
            self.base.load(Ordering::Acquire),
            self.size.load(Ordering::Relaxed),
        )
    }
}

pub static SLOT: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];
/// Index of the slot new records go to, or `NONE`.
pub static CURRENT: AtomicUsize = AtomicUsize::new(NONE);
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
/// After a failed claim, no new attempt before this monotonic time (ns).
static RETRY_AFTER: AtomicU64 = AtomicU64::new(0);
/// Set when this filesystem cannot hold segments: the file spool takes over.
pub static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// How long to wait after a failed claim (disk full, directory bound) before trying
/// again: a claim attempt costs a directory scan, so not at every record.
const RETRY_NS: u64 = 10_000_000;

/// Why a record did not go into a segment.
pub enum NotWritten {
    /// Another thread is switching segments.
    Busy,
    /// No segment (bounds, disk full, unsupported) or too large.
    Failed,
}
pub use NotWritten::{Busy, Failed};

/// Moves the process from the segment in slot `from` (or from none) to a new one.
/// Exactly one thread switches; the others do not wait for it (`Busy`: their record
/// goes to the file spool, unless the switch already happened).
pub fn switch(from: usize, at: &Header) -> Result<(), NotWritten> {
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
    if let Some((idx, m, seq)) = unsafe { reuse_parked(at.pid) } {
        // The reader zeroed it after it was parked: if that was moments ago, its lines
        // are still in the caches, and ordinary stores beat streaming ones.
        let parked_at = SLOT[idx].parked_at.load(Ordering::Relaxed);
        let stream = at.mono_ns.saturating_sub(parked_at) > HOT_NS;
        publish(from, idx, m, seq, stream, at);
        return true;
    }
    let standby = STANDBY_IDX.swap(NONE, Ordering::Relaxed);
    if standby != NONE {
        let m = SLOT[standby].mapping();
        // SAFETY: the standby slot maps a claimed segment with its header written.
        let seq = unsafe { m.u32_at(field::SEQ).load(Ordering::Relaxed) };
        publish(from, standby, m, seq, true, at);
        return true;
    }
    match claim_into_slot(at) {
        Some((idx, m, seq)) => {
            publish(from, idx, m, seq, true, at);
            true
        }
        None => false,
    }
}

/// Claims a new segment (slow: files and mappings) into an empty slot. Called with
/// `SWITCHING` held.
fn claim_into_slot(at: &Header) -> Option<(usize, Mapping, u32)> {
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
        Ok((m, seq, populated)) => {
            SLOT[idx].populated.store(populated, Ordering::Relaxed);
            Some((idx, m, seq))
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
pub fn prepare_standby(cur: usize, at: &Header) {
    if STANDBY_IDX.load(Ordering::Relaxed) != NONE
        || SWITCHING
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let reusable = SLOT.iter().any(|slot| {
        // SAFETY: parked slots stay mapped while SWITCHING is held.
        slot.state.load(Ordering::Relaxed) == PARKED && unsafe { handed_back(slot.mapping()) }
    });
    if CURRENT.load(Ordering::SeqCst) == cur
        && STANDBY_IDX.load(Ordering::Relaxed) == NONE
        && !reusable
    {
        if let Some((idx, m, _)) = claim_into_slot(at) {
            fill_slot(idx, m, STANDBY);
            STANDBY_IDX.store(idx, Ordering::Relaxed);
        }
    }
    SWITCH_SLOW.store(false, Ordering::Relaxed);
    SWITCHING.store(false, Ordering::Release);
}

/// Puts a mapped segment in slot `idx`, in `state`.
fn fill_slot(idx: usize, m: Mapping, state: u8) {
    let slot = &SLOT[idx];
    slot.base.store(m.base(), Ordering::Release);
    slot.size.store(m.size(), Ordering::Relaxed);
    slot.state.store(state, Ordering::Relaxed);
}

/// A segment parked less than this long ago (and zeroed by the reader since) is
/// written with ordinary stores: its lines are likely still cached.
const HOT_NS: u64 = 20_000_000;

/// Makes the segment `m` (header ready, nobody writing) the current one,
/// opening it with a `ProcStart`, and retires slot `from`. Called with `SWITCHING` held.
fn publish(from: usize, idx: usize, m: Mapping, seq: u32, stream: bool, at: &Header) {
    // Every segment (and every use of a reused one) opens with who writes it.
    let (h, start, cmd) = process::proc_start(at, seq);
    let parts: [&[u8]; 2] = [&start, cmd];
    let pad = h.pad_for(start.len() + cmd.len());
    // SAFETY: `m` maps a segment with its header written; nobody else uses it yet.
    unsafe { commit(m, &h, &parts, pad, false) };
    SLOT[idx].stream.store(stream, Ordering::Relaxed);
    fill_slot(idx, m, ACTIVE);
    CURRENT.store(idx, Ordering::SeqCst);
    if from != NONE {
        SLOT[from].state.store(RETIRED, Ordering::Relaxed);
        reclaim_retired();
    }
}

/// Has the reader consumed (read to its end and zeroed) this use of the segment?
///
/// # Safety
/// The [`Mapping`] contract (a parked slot, with `SWITCHING` held).
unsafe fn handed_back(m: Mapping) -> bool {
    // SAFETY: header words are aligned within the mapped first page. Acquire: the
    // reader zeroed the data before it wrote CONSUMED.
    unsafe {
        m.u32_at(field::CONSUMED).load(Ordering::Acquire)
            == m.u32_at(field::EPOCH).load(Ordering::Relaxed)
    }
}

/// Unmaps a slot's segment and empties the slot (nobody of this process uses it).
fn unmap_slot(slot: &Slot) {
    // SAFETY: the caller guarantees no thread of this process touches the mapping; the
    // slot forgets it below.
    unsafe { slot.mapping().unmap() };
    slot.base.store(ptr::null_mut(), Ordering::Relaxed);
    slot.state.store(EMPTY, Ordering::Relaxed);
}

/// A parked segment the reader has consumed (read to its end and zeroed), made ready
/// for a new epoch in place: no syscall, no page fault, no new page-cache page.
/// Returns its slot, mapping, size and sequence number.
///
/// # Safety
/// Called with `SWITCHING` held (parked slots change only under it).
unsafe fn reuse_parked(pid: u32) -> Option<(usize, Mapping, u32)> {
    for (i, slot) in SLOT.iter().enumerate() {
        if slot.state.load(Ordering::Relaxed) != PARKED {
            continue;
        }
        let m = slot.mapping();
        // SAFETY: a parked slot's mapping stays until this thread (holding SWITCHING)
        // lets it go; its header words are aligned within the first page.
        unsafe {
            if !handed_back(m) {
                continue;
            }
            let epoch = m.u32_at(field::EPOCH).load(Ordering::Relaxed);
            // The reader waits for a new epoch before it looks again: reset every
            // field, then announce the epoch (release) last.
            m.u64_at(field::RESERVE)
                .store(DATA_START, Ordering::Relaxed);
            m.u64_at(field::DATA_END).store(0, Ordering::Relaxed);
            for w in 1..MAX_WRITERS {
                m.u32_at(field::WRITERS + 4 * w).store(0, Ordering::Relaxed);
            }
            m.u32_at(field::WRITERS).store(pid, Ordering::Relaxed);
            m.u32_at(field::CREATOR).store(pid, Ordering::Relaxed);
            m.u32_at(field::STATE)
                .store(State::Claimed as u32, Ordering::Relaxed);
            m.u32_at(field::EPOCH)
                .store(epoch.wrapping_add(1).max(1), Ordering::Release);
        }
        // Not re-faulted with MADV_POPULATE_WRITE: page tables stay filled while a
        // segment is parked, and that walk costs ~80 µs per 4 MiB even when every page
        // is still writable. If writeback cleaned pages meanwhile, each takes one
        // write fault on its next append, which the walk would only have moved here.
        // SAFETY: as above.
        let seq = unsafe { m.u32_at(field::SEQ).load(Ordering::Relaxed) };
        return Some((i, m, seq));
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
    unsafe { slot.mapping().u32_at(field::KEEPER) }.store(0, Ordering::Release);
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
        .filter(|&i| !unsafe { handed_back(SLOT[i].mapping()) })
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
        let m = slot.mapping();
        // SAFETY: the slot is retired and unused (inflight 0 after it stopped being
        // current), so nobody in this process touches the mapping any more.
        unsafe { unregister(m, pid) };
        // SAFETY: as above; the keeper word is aligned in the first page.
        let ours = unsafe { m.u32_at(field::KEEPER).load(Ordering::Relaxed) } == pid;
        if ours && room_to_park() {
            slot.parked_at
                .store(process::now().mono_ns, Ordering::Relaxed);
            slot.state.store(PARKED, Ordering::Relaxed);
            continue;
        }
        if ours {
            // SAFETY: as above.
            unsafe { m.u32_at(field::KEEPER).store(0, Ordering::Release) };
        }
        unmap_slot(slot);
    }
}

/// Adds `pid` to the segment's writer table. False if the table is full.
///
/// # Safety
/// The [`Mapping`] contract.
unsafe fn register(m: Mapping, pid: u32) -> bool {
    (0..MAX_WRITERS).any(|i| {
        // SAFETY: the writer table lies in the mapped first page, 4-aligned.
        let w = unsafe { m.u32_at(field::WRITERS + 4 * i) };
        w.compare_exchange(0, pid, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    })
}

/// Takes `pid` off the segment's writer table.
///
/// # Safety
/// The [`Mapping`] contract.
unsafe fn unregister(m: Mapping, pid: u32) {
    for i in 0..MAX_WRITERS {
        // SAFETY: as in `register`.
        let w = unsafe { m.u32_at(field::WRITERS + 4 * i) };
        let _ = w.compare_exchange(pid, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// In the child after `fork` (one thread left): threads that were copying in the parent
/// do not exist here; keep the shared segment if the child can register as its writer.
/// The parent's retired, parked and standby segments are the parent's: the child only
/// drops its copies of their mappings. Returns whether the child shares the current
/// segment, when there is one.
pub fn after_fork_child() -> Option<bool> {
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
    RETRY_AFTER.store(0, Ordering::Relaxed);
    if cur == NONE {
        return None;
    }
    // SAFETY: the current slot's mapping was inherited from the parent; this is the
    // only thread.
    let shared = unsafe { register(SLOT[cur].mapping(), process::pid()) };
    if !shared {
        SLOT[cur].state.store(RETIRED, Ordering::Relaxed);
        CURRENT.store(NONE, Ordering::SeqCst);
    }
    Some(shared)
}
