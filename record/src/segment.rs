//! Shared spool segments: the layout of a segment file and the walk a reader makes over
//! its data area.
//!
//! A segment is a spool file created at its full size, mapped `MAP_SHARED` by every
//! process that writes to it, and filled by reservation: a writer adds its record's
//! length to the `reserve` word of the header (one atomic add, no lock, no syscall),
//! copies the record into the space it got, and stores the record's magic last, with
//! release order. `include/tapline.h` documents the same protocol for C.
//!
//! What a reader must cope with, and why the walk below looks the way it does:
//! - a record whose space is reserved but whose magic is still zero: its writer may be
//!   copying right now (wait), or may have been killed (skip it once it is dead). The
//!   writer stores `length` and then `pid` before anything else, so the reader knows how
//!   long the hole is and whom to ask;
//! - a hole whose `pid` is still zero (the writer was stopped between its reservation
//!   and its first store): nobody can say how long it is; the reader waits while any
//!   registered writer of the segment lives, then resynchronises;
//! - the reservation that crossed the end of the segment is not a record: its writer
//!   publishes `data_end` (where records stop) and marks the segment full.
//!
//! Everything here is pure: the reader hands in a snapshot of bytes and a way to ask
//! whether a process lives, and gets back steps. The I/O (and deleting finished
//! segments) belongs to the reader (the extension's spool reader).

use crate::le::{le16, le32, le64};
use crate::{
    parse_record, ParseError, ALIGN, HEADER_LEN, MAGIC, MAX_RECORD_LEN, VERSION, VERSION_CRC32,
    VERSION_SUM,
};

/// `"TLSEG001"`: the first eight bytes of every segment file.
pub const SEGMENT_MAGIC: u64 = u64::from_le_bytes(*b"TLSEG001");
/// Segment layout version (2: segments are reused in place: `EPOCH`, `CONSUMED`,
/// `KEEPER`).
pub const SEGMENT_VERSION: u32 = 2;
/// Records start at this offset; the first page is the segment header.
pub const DATA_START: u64 = 4096;
/// How many processes can write to one segment at once (a process and the children
/// it forked while it held the segment).
pub const MAX_WRITERS: usize = 16;
/// Smallest and largest segment a reader or writer accepts.
pub const MIN_SEGMENT_BYTES: u64 = 64 << 10;
pub const MAX_SEGMENT_BYTES: u64 = 1 << 30;
/// File name suffix of segments (record files use `.tlr`).
pub const SUFFIX: &str = ".tls";
/// Name prefix of segments made ahead of need and not yet claimed by a writer.
pub const FREE_PREFIX: &str = "free-";
/// Readers name the segments they make ahead `free-<k>.tls`, `k` below this (the
/// lowest free `k` first), so that a process's first claim tries these names in order
/// instead of listing the directory. Other `free-*.tls` names are still claimed, found
/// by a listing.
pub const FREE_SLOTS: u32 = 8;

/// A segment's header page as met before a writer wrote its header: all zeros but
/// perhaps `creator` (a ready-made segment; one a writer renamed to `<pid>-<seq>.tls`
/// or claimed where it is, by its `creator` word, and has not set up yet). It holds no
/// record.
pub fn header_unwritten(b: &[u8]) -> bool {
    let creator = field::CREATOR..field::CREATOR + 4;
    b.len() >= field::END
        && b[..field::END]
            .iter()
            .enumerate()
            .all(|(i, &x)| x == 0 || creator.contains(&i))
}

/// Byte offsets of the header fields (all little-endian, naturally aligned).
pub mod field {
    /// u64 [`super::SEGMENT_MAGIC`].
    pub const MAGIC: usize = 0;
    /// u32 [`super::SEGMENT_VERSION`].
    pub const VERSION: usize = 8;
    /// u32 offset of the first record ([`super::DATA_START`]).
    pub const DATA_START: usize = 12;
    /// u64 size of the file, header included.
    pub const SIZE: usize = 16;
    /// u64, atomic: next free offset. Writers `fetch_add` their record's length; it
    /// runs past `SIZE` once the segment is full.
    pub const RESERVE: usize = 24;
    /// u32, atomic: [`super::State`].
    pub const STATE: usize = 32;
    /// u32 pid of the process that claimed the segment.
    pub const CREATOR: usize = 36;
    /// u64, atomic: 0 while not full; then the offset where records end.
    pub const DATA_END: usize = 40;
    /// u32 sequence number of the segment within its creator's segments.
    pub const SEQ: usize = 48;
    /// u32, atomic: which use of the file this is, from 1. The keeper adds one when it
    /// reuses the segment (after the reader consumed it); records of an earlier epoch
    /// are gone by then (the reader zeroed them).
    pub const EPOCH: usize = 52;
    /// u32, written by the reader: the last epoch it read to the end and zeroed
    /// (`[DATA_START, DATA_END)` is all zero again). 0 = none.
    pub const CONSUMED: usize = 56;
    /// u32, atomic: pid of the process that keeps the segment mapped to reuse it once
    /// consumed; 0 = nobody (the reader deletes it once read).
    pub const KEEPER: usize = 60;
    /// `MAX_WRITERS` × u32, atomic: pids of the processes that may write here (0 =
    /// free slot). Claimed with compare-and-swap; cleared when a process leaves.
    pub const WRITERS: usize = 64;
    /// End of the defined header; the rest of the first page is zero.
    pub const END: usize = WRITERS + 4 * super::MAX_WRITERS;
}

/// Lifecycle of a segment, in its `STATE` word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum State {
    /// Made ahead of need (`free-*.tls`); no header yet or not yet claimed.
    Fresh = 0,
    /// A process writes here.
    Claimed = 1,
    /// No more records will be reserved; `DATA_END` says where they end.
    Full = 2,
}

/// A segment header as a reader sees it (a snapshot of the first page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub size: u64,
    pub data_start: u64,
    pub reserve: u64,
    pub state: u32,
    pub creator: u32,
    pub data_end: u64,
    pub seq: u32,
    pub epoch: u32,
    pub consumed: u32,
    pub keeper: u32,
    pub writers: [u32; MAX_WRITERS],
}

impl SegmentHeader {
    /// Reads a header; `None` if the bytes are not a segment header this reader knows.
    pub fn parse(b: &[u8]) -> Option<SegmentHeader> {
        if b.len() < field::END || le64(b, field::MAGIC) != SEGMENT_MAGIC {
            return None;
        }
        if le32(b, field::VERSION) != SEGMENT_VERSION {
            return None;
        }
        let size = le64(b, field::SIZE);
        let data_start = u64::from(le32(b, field::DATA_START));
        if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&size)
            || data_start != DATA_START
            || !size.is_multiple_of(ALIGN as u64)
        {
            return None;
        }
        let mut writers = [0u32; MAX_WRITERS];
        for (i, w) in writers.iter_mut().enumerate() {
            *w = le32(b, field::WRITERS + 4 * i);
        }
        Some(SegmentHeader {
            size,
            data_start,
            reserve: le64(b, field::RESERVE),
            state: le32(b, field::STATE),
            creator: le32(b, field::CREATOR),
            data_end: le64(b, field::DATA_END),
            seq: le32(b, field::SEQ),
            epoch: le32(b, field::EPOCH),
            consumed: le32(b, field::CONSUMED),
            keeper: le32(b, field::KEEPER),
            writers,
        })
    }

    /// Encodes a freshly claimed header (the writer stores it before anyone else can
    /// see the segment under its claimed name): epoch 1, kept by its creator.
    pub fn claimed(size: u64, creator: u32, seq: u32) -> [u8; field::END] {
        let mut b = [0u8; field::END];
        b[field::MAGIC..field::MAGIC + 8].copy_from_slice(&SEGMENT_MAGIC.to_le_bytes());
        b[field::VERSION..field::VERSION + 4].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
        b[field::DATA_START..field::DATA_START + 4]
            .copy_from_slice(&(DATA_START as u32).to_le_bytes());
        b[field::SIZE..field::SIZE + 8].copy_from_slice(&size.to_le_bytes());
        b[field::RESERVE..field::RESERVE + 8].copy_from_slice(&DATA_START.to_le_bytes());
        b[field::STATE..field::STATE + 4].copy_from_slice(&(State::Claimed as u32).to_le_bytes());
        b[field::CREATOR..field::CREATOR + 4].copy_from_slice(&creator.to_le_bytes());
        b[field::SEQ..field::SEQ + 4].copy_from_slice(&seq.to_le_bytes());
        b[field::EPOCH..field::EPOCH + 4].copy_from_slice(&1u32.to_le_bytes());
        b[field::KEEPER..field::KEEPER + 4].copy_from_slice(&creator.to_le_bytes());
        b[field::WRITERS..field::WRITERS + 4].copy_from_slice(&creator.to_le_bytes());
        b
    }

    /// True once the segment is full and its writers said where records end.
    pub fn is_full(&self) -> bool {
        self.state == State::Full as u32 && self.data_end >= self.data_start
    }

    /// Where committed or reserved records can be found: `[data_start, limit)`.
    pub fn limit(&self) -> u64 {
        if self.is_full() {
            self.data_end.min(self.size)
        } else {
            self.reserve.clamp(self.data_start, self.size)
        }
    }

    /// May the reader hand this segment back to its keeper instead of deleting it?
    /// Only a full segment of a kept epoch; the keeper's liveness is the caller's
    /// question.
    pub fn reusable(&self) -> bool {
        self.is_full() && self.keeper != 0 && self.epoch != 0 && self.consumed != self.epoch
    }

    /// The registered writers (nonzero pids).
    pub fn writer_pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.writers.iter().copied().filter(|&p| p != 0)
    }
}

/// One step of a reader's walk over a segment's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A committed record, CRC checked, at `offset` (absolute in the file).
    Record { offset: u64, len: u32 },
    /// Reserved by a live process `pid`, not committed yet: look again later. The walk
    /// goes on past it (its length is known).
    Pending { offset: u64, len: u32, pid: u32 },
    /// Reserved by a process that is gone and never committed: skipped.
    Hole { offset: u64, len: u32 },
    /// Bytes that are not a record (corrupt, or a hole of unknown length after every
    /// writer died): skipped up to the next plausible record start.
    Garbage { offset: u64, len: u32 },
    /// The magic is set but the bytes do not check yet; the snapshot may have caught the
    /// record between two copies. Read it again (a fresh read) before calling it corrupt.
    Recheck { offset: u64, len: u32 },
    /// Reserved space of unknown owner while some writer of the segment lives: the walk
    /// cannot go past this offset now.
    Wait { offset: u64 },
}

/// What a reader knows about the processes that write a segment.
pub trait Liveness {
    /// Is process `pid` still running (not a zombie)?
    fn alive(&mut self, pid: u32) -> bool;
}

impl<F: FnMut(u32) -> bool> Liveness for F {
    fn alive(&mut self, pid: u32) -> bool {
        self(pid)
    }
}

/// Is `len` a length a record at `offset` could have, below `limit`?
pub fn plausible_len(offset: u64, len: u32, limit: u64) -> bool {
    let len = len as usize;
    len >= HEADER_LEN
        && len.is_multiple_of(ALIGN)
        && len <= MAX_RECORD_LEN
        && offset + len as u64 <= limit
}

/// Walks the snapshot `bytes`, which holds the segment's bytes `[base, base + len)`
/// with `base + len` = the header's [`SegmentHeader::limit`] at the time of the read.
///
/// `writers_alive` says whether any registered writer of the segment still lives; it is
/// consulted only at a hole whose owner is unknown.
pub struct Walk<'a, L: Liveness> {
    bytes: &'a [u8],
    base: u64,
    pos: usize,
    alive: L,
    writers_alive: bool,
    stopped: bool,
}

impl<'a, L: Liveness> Walk<'a, L> {
    pub fn new(bytes: &'a [u8], base: u64, alive: L, writers_alive: bool) -> Self {
        Walk {
            bytes,
            base,
            pos: 0,
            alive,
            writers_alive,
            stopped: false,
        }
    }

    /// The absolute offset the walk has reached (where the next poll starts).
    pub fn position(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// The next 8-aligned offset after `from` that may start a record: a committed
    /// record that checks, or a reservation that names its writer.
    fn resync(&self, from: usize) -> usize {
        let limit = self.base + self.bytes.len() as u64;
        let mut i = from.next_multiple_of(ALIGN);
        while i + HEADER_LEN <= self.bytes.len() {
            let b = &self.bytes[i..];
            let magic = le32(b, 0);
            if magic == MAGIC && parse_record(b).is_ok() {
                return i;
            }
            let at = self.base + i as u64;
            if magic == 0
                && matches!(le16(b, 4), VERSION | VERSION_CRC32 | VERSION_SUM)
                && le32(b, 32) != 0
                && plausible_len(at, le32(b, 8), limit)
            {
                return i;
            }
            i += ALIGN;
        }
        self.bytes.len()
    }
}

impl<L: Liveness> Iterator for Walk<'_, L> {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        if self.stopped || self.pos >= self.bytes.len() {
            return None;
        }
        let limit = self.base + self.bytes.len() as u64;
        let offset = self.base + self.pos as u64;
        let b = &self.bytes[self.pos..];
        let word = if b.len() >= 4 { le32(b, 0) } else { 1 };
        if word == MAGIC && b.len() >= HEADER_LEN {
            let len = le32(b, 8);
            match parse_record(b) {
                Ok((_, n)) => {
                    self.pos += n;
                    return Some(Step::Record {
                        offset,
                        len: n as u32,
                    });
                }
                Err(ParseError::BadChecksum) | Err(ParseError::Incomplete)
                    if plausible_len(offset, len, limit) =>
                {
                    self.pos += len as usize;
                    return Some(Step::Recheck { offset, len });
                }
                Err(_) => {}
            }
        } else if word == 0 && b.len() >= HEADER_LEN {
            let len = le32(b, 8);
            let pid = le32(b, 32);
            if pid != 0 && plausible_len(offset, len, limit) {
                self.pos += len as usize;
                return Some(if self.alive.alive(pid) {
                    Step::Pending { offset, len, pid }
                } else {
                    Step::Hole { offset, len }
                });
            }
            if self.writers_alive {
                self.stopped = true;
                return Some(Step::Wait { offset });
            }
        } else if word == 0 && self.writers_alive {
            self.stopped = true;
            return Some(Step::Wait { offset });
        }
        let next = self.resync(self.pos + 1);
        let len = (next - self.pos) as u32;
        self.pos = next;
        Some(Step::Garbage { offset, len })
    }
}

#[cfg(test)]
mod tests;
