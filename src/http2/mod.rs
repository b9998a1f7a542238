//! HTTP/2 connections: the framer ([`framer`]) and the pool of framer states that
//! connections carrying HTTP/2 borrow.
//!
//! Why a pool: a framer keeps a whole header block (up to 32 KiB) and a stream table
//! per direction, about 72 KiB a connection. The fd table has 65,536 slots, so the state
//! cannot live there; a slot holds only the index of a pool entry, taken with one
//! compare-exchange when the connection turns out to be HTTP/2 and given back when it
//! ends. The pool is mapped once (`MAP_NORESERVE`: only entries in use cost memory).
//! With the pool exhausted a connection is counted, not framed (its `ConnOpen` says
//! HTTP/2 and no `H2Start` follows).
//!
//! Each direction's framer is used under that direction's busy flag of the connection's
//! slot, as the HTTP/1 framers are. A RST_STREAM ends the stream in both directions;
//! the direction that saw it posts it to a small ring of atomics that the other
//! direction reads at its next step, so the two never share a framer.

pub mod framer;
pub mod upgrade;
pub mod wire;

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use tapline_record::{
    Direction, H2Data, H2GoAway, H2Headers, H2Reset, H2Settings, H2Start, H2StartHow, H2StreamEnd,
    RecordType, Stamp,
};

use self::framer::Framer;
use self::wire::{Block, H2Sink, StreamEnd, Verdict};
use crate::bytes::Bytes;
use crate::conn::{state, Slot};
use crate::spool;

/// HTTP/2 connections framed at once.
pub const POOL: usize = 128;
/// Resets one direction can post before the other must have read them.
const RESET_RING: usize = 16;

#[repr(C)]
struct Entry {
    /// The conn id using this entry; 0 when free.
    owner: AtomicU64,
    /// Resets posted by each direction: `stream_id << 32 | error_code`.
    resets: [[AtomicU64; RESET_RING]; 2],
    reset_count: [AtomicU32; 2],
    framers: [UnsafeCell<Framer>; 2],
}

// SAFETY: `framers[d]` is only used by the thread holding busy flag `d` of the slot
// whose `h2` names this entry (see `frame_from`); the rest is atomics.
unsafe impl Sync for Entry {}

static POOL_PTR: AtomicPtr<Entry> = AtomicPtr::new(core::ptr::null_mut());

/// Maps the pool (constructor). On failure HTTP/2 is counted, not framed.
pub fn init() {
    if let Some(p) = crate::sys::map_zeroed(POOL * core::mem::size_of::<Entry>()) {
        POOL_PTR.store(p as *mut Entry, Ordering::Release);
    }
}

fn entry(index: u32) -> Option<&'static Entry> {
    let p = POOL_PTR.load(Ordering::Acquire);
    let i = (index as usize).checked_sub(1)?;
    if p.is_null() || i >= POOL {
        return None;
    }
    // SAFETY: `p` maps POOL zeroed entries for the life of the process; zero bytes are
    // a valid Entry (atomics, and a framer whose zero state is valid); `i < POOL`.
    Some(unsafe { &*p.add(i) })
}

/// The connection in `slot` (`conn_id`) carries HTTP/2 from here on: takes a pool entry,
/// starts both framers (the egress one expecting the client preface when `preface`),
/// and writes `H2Start`. Call it while the slot's framers are not in use (the state
/// was just published by this thread, or both busy flags are held).
pub fn open(
    slot: &Slot,
    conn_id: u64,
    how: H2StartHow,
    upgrade_msg_seq: u32,
    preface: bool,
    now: Stamp,
) {
    if POOL_PTR.load(Ordering::Acquire).is_null() {
        return;
    }
    for index in 1..=POOL as u32 {
        let Some(e) = entry(index) else { return };
        if e.owner
            .compare_exchange(0, conn_id, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            continue;
        }
        // SAFETY: the entry was free and is now ours; nobody else can reach its framers
        // until `slot.h2` names it below.
        unsafe {
            (*e.framers[0].get()).start(preface);
            (*e.framers[1].get()).start(false);
        }
        for d in 0..2 {
            e.reset_count[d].store(0, Ordering::Relaxed);
        }
        let start = H2Start {
            how,
            flags: 0,
            upgrade_msg_seq,
        };
        spool::record(RecordType::H2Start, conn_id, now, &[&start.encode()]);
        slot.h2.store(index, Ordering::Release);
        return;
    }
}

/// Is the connection in `slot` framed as HTTP/2?
pub fn is_framed(slot: &Slot) -> bool {
    entry(slot.h2.load(Ordering::Acquire)).is_some()
}

/// Feeds bytes of direction `dir` to the connection's framer. `None`: not framed, or
/// the direction was busy on another thread (then bytes were missed).
pub fn frame(
    slot: &Slot,
    conn_id: u64,
    dir: usize,
    bytes: Bytes<'_>,
    done: usize,
    now: Stamp,
) -> Option<Verdict> {
    let all = upgrade::Resume {
        pieces: 0,
        offset: 0,
    };
    frame_from(slot, conn_id, dir, bytes, done, all, now)
}

/// [`frame`], from a point inside the bytes (the byte after a 101's head).
pub fn frame_from(
    slot: &Slot,
    conn_id: u64,
    dir: usize,
    bytes: Bytes<'_>,
    done: usize,
    from: upgrade::Resume,
    now: Stamp,
) -> Option<Verdict> {
    entry(slot.h2.load(Ordering::Acquire))?;
    let max_body = crate::config::max_body();
    slot.with_busy(dir, || {
        // Looked up again under the busy flag: the entry is given back (and may be
        // taken by another connection) only while both flags of its slot are held, so
        // an entry this connection owns now stays ours until the flag is released.
        let e = entry(slot.h2.load(Ordering::Acquire))?;
        if e.owner.load(Ordering::Acquire) != conn_id {
            return None;
        }
        // SAFETY: the busy flag of `dir` is held and this connection owns the entry:
        // this thread is the only user of its framer `dir`.
        let fr = unsafe { &mut *e.framers[dir].get() };
        let mut sink = RecordSink::new(conn_id, dir, now);
        take_peer_resets(e, dir, fr, now, &mut sink);
        let mut verdict = Verdict::Continue;
        let mut index = 0;
        bytes.each(done, |piece| {
            let piece = match index.cmp(&from.pieces) {
                core::cmp::Ordering::Less => &[][..],
                core::cmp::Ordering::Equal => piece.get(from.offset..).unwrap_or(&[]),
                core::cmp::Ordering::Greater => piece,
            };
            index += 1;
            if verdict == Verdict::Continue {
                verdict = fr.feed(piece, now, max_body, &mut sink);
            }
        });
        for i in 0..sink.resets_len {
            post_reset(e, dir, sink.resets[i]);
        }
        Some(verdict)
    })
    .flatten()
}

/// The connection ends: cut-off blocks and streams of both directions are written and
/// the pool entry is given back. The caller holds both busy flags of `slot`.
pub fn finish_locked(slot: &Slot, conn_id: u64, now: Stamp) {
    let index = slot.h2.swap(0, Ordering::AcqRel);
    let Some(e) = entry(index) else { return };
    if e.owner.load(Ordering::Acquire) != conn_id {
        return;
    }
    for dir in 0..2 {
        // SAFETY: the caller holds both busy flags, so no framer step runs.
        let fr = unsafe { &mut *e.framers[dir].get() };
        let mut sink = RecordSink::new(conn_id, dir, now);
        fr.finish(now, &mut sink);
    }
    e.owner.store(0, Ordering::Release);
}

/// Gives back pool entry `index` if connection `conn_id` still owns it, without writing
/// anything: the connection's end was missed. The caller holds both busy flags of the
/// slot that named the entry and has cleared its `h2`.
pub fn abandon(index: u32, conn_id: u64) {
    if let Some(e) = entry(index) {
        let _ = e
            .owner
            .compare_exchange(conn_id, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

fn post_reset(e: &Entry, dir: usize, packed: u64) {
    let n = e.reset_count[dir].load(Ordering::Relaxed);
    e.resets[dir][n as usize % RESET_RING].store(packed, Ordering::Relaxed);
    e.reset_count[dir].store(n.wrapping_add(1), Ordering::Release);
}

fn take_peer_resets(e: &Entry, dir: usize, fr: &mut Framer, now: Stamp, sink: &mut RecordSink) {
    let other = 1 - dir;
    let posted = e.reset_count[other].load(Ordering::Acquire);
    let mut seen = fr.peer_resets_seen();
    if posted == seen {
        return;
    }
    if posted.wrapping_sub(seen) as usize > RESET_RING {
        seen = posted.wrapping_sub(RESET_RING as u32);
    }
    while seen != posted {
        let packed = e.resets[other][seen as usize % RESET_RING].load(Ordering::Relaxed);
        seen = seen.wrapping_add(1);
        fr.peer_reset(seen, (packed >> 32) as u32, packed as u32, now, sink);
    }
}

/// Framer output → spool records for one connection and direction.
struct RecordSink {
    conn_id: u64,
    dir: Direction,
    at: Stamp,
    /// Resets seen in this step, posted to the other direction afterwards.
    resets: [u64; 8],
    resets_len: usize,
}

impl RecordSink {
    fn new(conn_id: u64, dir: usize, at: Stamp) -> Self {
        RecordSink {
            conn_id,
            dir: if dir == 0 {
                Direction::Egress
            } else {
                Direction::Ingress
            },
            at,
            resets: [0; 8],
            resets_len: 0,
        }
    }
}

impl H2Sink for RecordSink {
    fn headers(&mut self, block: &Block, bytes: &[u8]) {
        let fixed = H2Headers {
            dir: self.dir,
            flags: block.flags,
            stream_id: block.stream_id,
            promised_stream_id: block.promised_stream_id,
            block_seq: block.block_seq,
            len: bytes.len() as u32,
            block_len: block.block_len,
        };
        spool::record(
            RecordType::H2Headers,
            self.conn_id,
            self.at,
            &[&fixed.encode(), bytes],
        );
    }

    fn data(&mut self, stream_id: u32, offset: u64, bytes: &[u8]) {
        let mut at = 0;
        for piece in bytes.chunks(spool::DATA_CHUNK) {
            let fixed = H2Data {
                dir: self.dir,
                flags: 0,
                stream_id,
                offset: offset + at,
                len: piece.len() as u32,
            };
            spool::record(
                RecordType::H2Data,
                self.conn_id,
                self.at,
                &[&fixed.encode(), piece],
            );
            at += piece.len() as u64;
        }
    }

    fn stream_end(&mut self, end: &StreamEnd) {
        let fixed = H2StreamEnd {
            dir: self.dir,
            flags: end.flags,
            stream_id: end.stream_id,
            data_len: end.data_len,
            wire_len: end.wire_len,
            first_wall_ns: end.first.wall_ns,
            first_mono_ns: end.first.mono_ns,
            last_wall_ns: end.last.wall_ns,
            last_mono_ns: end.last.mono_ns,
            error_code: end.error_code,
        };
        spool::record(
            RecordType::H2StreamEnd,
            self.conn_id,
            self.at,
            &[&fixed.encode()],
        );
    }

    fn reset(&mut self, stream_id: u32, error_code: u32) {
        let fixed = H2Reset {
            dir: self.dir,
            stream_id,
            error_code,
        };
        spool::record(
            RecordType::H2Reset,
            self.conn_id,
            self.at,
            &[&fixed.encode()],
        );
        if self.resets_len < self.resets.len() {
            self.resets[self.resets_len] = (u64::from(stream_id) << 32) | u64::from(error_code);
            self.resets_len += 1;
        }
    }

    fn goaway(&mut self, last_stream_id: u32, error_code: u32) {
        let fixed = H2GoAway {
            dir: self.dir,
            last_stream_id,
            error_code,
        };
        spool::record(
            RecordType::H2GoAway,
            self.conn_id,
            self.at,
            &[&fixed.encode()],
        );
    }

    fn settings(&mut self, flags: u16, header_table_size: u32, max_frame_size: u32) {
        let fixed = H2Settings {
            dir: self.dir,
            flags,
            header_table_size,
            max_frame_size,
        };
        spool::record(
            RecordType::H2Settings,
            self.conn_id,
            self.at,
            &[&fixed.encode()],
        );
    }
}

/// `H2Start.how` for a connection whose client preface was seen on `origin`.
pub fn how_for_preface(from_tls: bool) -> H2StartHow {
    if from_tls {
        H2StartHow::Tls
    } else {
        H2StartHow::PriorKnowledge
    }
}

/// Switches an HTTP/1 connection to HTTP/2 after a 101 to h2c read on it: the state
/// moves to HTTP/2, a pool framer starts (`H2Start`, how = h2c upgrade), and the rest of
/// this read is framed. False if the connection was no longer HTTP/1 (ended meanwhile).
pub fn switch_to_h2c(
    slot: &Slot,
    conn_id: u64,
    msg_seq: u32,
    at: upgrade::Resume,
    bytes: Bytes<'_>,
    done: usize,
    now: Stamp,
) -> bool {
    if slot
        .state
        .compare_exchange(state::HTTP, state::H2C, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    open(slot, conn_id, H2StartHow::H2cUpgrade, msg_seq, true, now);
    match frame_from(slot, conn_id, 1, bytes, done, at, now) {
        Some(Verdict::Continue) => true,
        Some(Verdict::Malformed) => false,
        // Not framed (the pool was exhausted: counted only), or bytes were missed.
        None => !is_framed(slot),
    }
}
