//! The hot path inside one segment: reserve space with one `fetch_add` on the header's
//! `reserve` word, copy the record in (length and pid first, the magic last, with
//! release order), and fault pages in a window ahead of the records.
//!
//! Which segment a record goes to, and what happens when one is full, is
//! [`super::slots`]' business; this module knows one [`Mapping`] at a time.

use core::sync::atomic::{AtomicU64, Ordering};
use tapline_record::segment::{field, State};
use tapline_record::{Header, WordSum, HEADER_LEN, MAGIC, VERSION_SUM};

use super::mapping::{store_fence, Mapping};
use crate::sys::crc32c;

/// Reserves space in the segment `m` and writes the record there: `header` (written
/// as version 3, [`VERSION_SUM`], its `crc32` computed here), the payload `parts` and
/// `pad` zero bytes. Returns where, or `None` (and marks the segment full) when it does
/// not fit.
///
/// The header goes in field by field from `header` (never encoded on the stack and
/// copied again). The check — the CRC-32C of the header's covered words and the
/// payload's word sum — is computed before the reservation, from the caller's parts:
/// it then waits for no store and runs alongside the atomic add. (A caller that
/// changes its buffer while the call copies it gets a record that does not check,
/// which the reader counts as corrupt, rather than a record of mixed bytes.)
///
/// # Safety
/// The [`Mapping`] contract, for a segment with an initialised header.
#[inline(always)]
pub unsafe fn commit(
    m: Mapping,
    header: &Header,
    parts: &[&[u8]],
    pad: usize,
    stream: bool,
) -> Option<u64> {
    let len = header.length;
    let size = m.size();
    // The check first, from the caller's bytes (in cache, and no store to wait for):
    // the header's covered words as version 3 writes them, and the payload's word sum.
    let head = Header {
        version: VERSION_SUM,
        ..*header
    }
    .covered_words();
    let mut sum = WordSum::new();
    for p in parts {
        sum.update(p);
    }
    let check = crc32c::summed_check(&head, sum.finish());
    // SAFETY: header words are 8-aligned within the mapped first page.
    let reserve = unsafe { m.u64_at(field::RESERVE) };
    let off = reserve.fetch_add(u64::from(len), Ordering::Relaxed);
    if off + u64::from(len) > size {
        if off <= size {
            // Ours is the one reservation that crossed the end: say where records end.
            // SAFETY: as above.
            unsafe {
                m.u64_at(field::DATA_END).store(off, Ordering::Release);
                m.u32_at(field::STATE)
                    .store(State::Full as u32, Ordering::Release);
            }
        }
        return None;
    }
    // SAFETY: [off, off + len) lies within the mapping and was reserved for us alone;
    // `off` is 8-aligned because DATA_START and every record length are.
    unsafe {
        let rec = off as usize;
        // Version and type, then length, then pid: a reader that meets this record
        // uncommitted learns how long it is and whose it is.
        let kind = u32::from(VERSION_SUM) | u32::from(header.rtype) << 16;
        m.u32_at(rec + 4).store(kind, Ordering::Relaxed);
        m.u32_at(rec + 8).store(len, Ordering::Relaxed);
        m.u32_at(rec + 32).store(header.pid, Ordering::Release);
        m.copy_in(rec + 16, &header.wall_ns.to_le_bytes());
        m.copy_in(rec + 24, &header.mono_ns.to_le_bytes());
        m.copy_in(rec + 36, &header.tid.to_le_bytes());
        m.copy_in(rec + 40, &header.conn_id.to_le_bytes());
        if pad != 0 {
            // The padding is the end of the record's last word: zero that word first,
            // and the payload's last bytes then overwrite its front (one store, where
            // zeroing 1 to 7 bytes after the copy was a `memset` call).
            m.u64_at(rec + len as usize - 8).store(0, Ordering::Relaxed);
        }
        let mut at = rec + HEADER_LEN;
        let mut streamed = false;
        for p in parts {
            if stream && p.len() >= STREAM_MIN {
                m.stream_in(at, p);
                streamed = true;
            } else {
                m.copy_in(at, p);
            }
            at += p.len();
        }
        debug_assert_eq!(at + pad, rec + len as usize);
        m.copy_in(rec + 12, &check.to_le_bytes());
        if streamed {
            // Non-temporal stores are weakly ordered: they must all be visible before
            // the magic is.
            store_fence();
        }
        m.u32_at(rec).store(MAGIC, Ordering::Release);
    }
    Some(off)
}

/// Parts at least this long are copied with non-temporal stores ([`Mapping::stream_in`])
/// into a segment whose lines are not cached.
const STREAM_MIN: usize = 4096;

/// In a process's first segment, pages are write-faulted at most this many bytes at a
/// time, ahead of the records.
///
/// Why: faulting a whole 4 MiB segment costs ~60 µs or more on the thread that makes
/// the process's first record — at a Lambda function's cold start — for pages a small
/// invocation never touches. The claim faults only the first few pages
/// ([`super::claim`]); from there the faulted part doubles, a step at most this large,
/// each time the records reach the middle of what is faulted, so appends still meet
/// pages that are mapped and writable. Later segments are faulted whole at their
/// claim: one call per segment measured cheaper per page than sixteen (the hand-off
/// benchmark's "ready" row: ~120 µs against ~145 µs per MiB).
pub const POPULATE_WINDOW: u64 = 256 << 10;

/// How far ahead of a record's end the pages should be faulted, given that `done`
/// bytes are: as far as is faulted already (so the faulted part doubles), at most a
/// window.
#[inline]
pub fn populate_step(done: u64) -> u64 {
    done.min(POPULATE_WINDOW)
}

/// Write-faults the pages from what is faulted (`populated`, the slot's count) to one
/// step past `end`.
///
/// # Safety
/// The [`Mapping`] contract (the caller is counted in `inflight`).
pub unsafe fn populate_ahead(populated: &AtomicU64, m: Mapping, end: u64) {
    let done = populated.load(Ordering::Relaxed);
    let step = populate_step(done).max(4096);
    let target = (done + step)
        .max((end + step).next_multiple_of(4096))
        .min(m.size());
    if target <= done {
        return;
    }
    // SAFETY: [done, target) lies within the mapping; both are page multiples.
    unsafe { m.populate_write(done, target) };
    populated.fetch_max(target, Ordering::Relaxed);
}
