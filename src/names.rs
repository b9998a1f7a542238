//! Name lookups: what `getaddrinfo` answered, so that a connection can be named by the
//! host the program asked for when nothing else names it (opaque TLS without SNI,
//! HTTP/1.0 without `Host`).
//!
//! Why a ring in memory and not a record per lookup: most lookups never lead to a
//! connection we follow, and a process that never speaks HTTP must leave no spool file.
//! Lookups go into a small ring (lock-free, seqlock-validated, all fields atomics); when
//! a connection is classified, the ring is searched for its peer address and one
//! `NameLookup` record is written for that connection.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use tapline_record::{NameLookup, RecordType, WireAddr};

use crate::spool;
use tapline_record::Stamp;

const RING: usize = 32;
const NAME_WORDS: usize = 16; // 128 bytes
const MAX_ADDRS: usize = 8;

struct Entry {
    /// Even: stable; odd: being written.
    seq: AtomicU32,
    name_len: AtomicU32,
    count: AtomicU32,
    name: [AtomicU64; NAME_WORDS],
    /// Per address: word 0 = family | port << 16; words 1, 2 = the 16 address bytes.
    addrs: [[AtomicU64; 3]; MAX_ADDRS],
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const ZERO3: [AtomicU64; 3] = [ZERO; 3];
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Entry = Entry {
    seq: AtomicU32::new(0),
    name_len: AtomicU32::new(0),
    count: AtomicU32::new(0),
    name: [ZERO; NAME_WORDS],
    addrs: [ZERO3; MAX_ADDRS],
};

static ENTRIES: [Entry; RING] = [EMPTY; RING];
static NEXT: AtomicU32 = AtomicU32::new(0);

/// Remembers one lookup: `name` resolved to `addrs`.
pub fn remember(name: &[u8], addrs: &[WireAddr]) {
    if name.is_empty() || addrs.is_empty() {
        return;
    }
    let e = &ENTRIES[NEXT.fetch_add(1, Ordering::Relaxed) as usize % RING];
    e.seq.fetch_add(1, Ordering::AcqRel);
    let name = &name[..name.len().min(NAME_WORDS * 8)];
    for (i, w) in e.name.iter().enumerate() {
        let mut word = [0u8; 8];
        let from = (i * 8).min(name.len());
        let to = (from + 8).min(name.len());
        word[..to - from].copy_from_slice(&name[from..to]);
        w.store(u64::from_le_bytes(word), Ordering::Relaxed);
    }
    e.name_len.store(name.len() as u32, Ordering::Relaxed);
    let n = addrs.len().min(MAX_ADDRS);
    for (slot, a) in e.addrs.iter().zip(addrs) {
        slot[0].store(
            u64::from(a.family) | (u64::from(a.port) << 16),
            Ordering::Relaxed,
        );
        slot[1].store(
            u64::from_le_bytes(a.addr[..8].try_into().unwrap_or([0; 8])),
            Ordering::Relaxed,
        );
        slot[2].store(
            u64::from_le_bytes(a.addr[8..].try_into().unwrap_or([0; 8])),
            Ordering::Relaxed,
        );
    }
    e.count.store(n as u32, Ordering::Relaxed);
    e.seq.fetch_add(1, Ordering::Release);
}

/// Writes a `NameLookup` record for connection `conn_id` if a remembered lookup
/// returned `peer`'s address.
pub fn emit_for(conn_id: u64, peer: &WireAddr, at: Stamp) {
    let Some((name, name_len, addrs, count)) = find(peer) else {
        return;
    };
    let fixed = NameLookup {
        name_len: name_len as u16,
        count: count as u16,
    }
    .encode();
    let padded = (name_len + 7) & !7;
    let mut table = [0u8; MAX_ADDRS * NameLookup::ADDR_LEN];
    for (i, a) in addrs[..count].iter().enumerate() {
        table[i * NameLookup::ADDR_LEN..(i + 1) * NameLookup::ADDR_LEN]
            .copy_from_slice(&NameLookup::encode_addr(a));
    }
    spool::record(
        RecordType::NameLookup,
        conn_id,
        at,
        &[
            &fixed,
            &name[..padded],
            &table[..count * NameLookup::ADDR_LEN],
        ],
    );
}

/// The name a lookup resolved `peer` from, if one of the remembered lookups did: the
/// bytes and their length.
pub fn name_for(peer: &WireAddr) -> Option<([u8; NAME_WORDS * 8], usize)> {
    find(peer).map(|(name, len, _, _)| (name, len))
}

/// Hashes of the names whose failed lookup was already reported (0 = free).
static FAILED: [AtomicU64; 16] = [ZERO; 16];
static FAILED_NEXT: AtomicU32 = AtomicU32::new(0);

/// True the first time a failed lookup of `name` is seen in this process (a small ring
/// of hashes: a name that falls out of it may be reported again).
pub fn first_failure(name: &[u8]) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let h = h.max(1);
    if FAILED.iter().any(|w| w.load(Ordering::Relaxed) == h) {
        return false;
    }
    let i = FAILED_NEXT.fetch_add(1, Ordering::Relaxed) as usize % FAILED.len();
    FAILED[i].store(h, Ordering::Relaxed);
    true
}

type Found = ([u8; NAME_WORDS * 8], usize, [WireAddr; MAX_ADDRS], usize);

fn find(peer: &WireAddr) -> Option<Found> {
    // Newest first: the lookup just before the connect is the likeliest.
    let newest = NEXT.load(Ordering::Relaxed) as usize;
    for back in 1..=RING {
        let e = &ENTRIES[(newest + RING * 2 - back) % RING];
        let before = e.seq.load(Ordering::Acquire);
        if before & 1 == 1 || before == 0 {
            continue;
        }
        let count = (e.count.load(Ordering::Relaxed) as usize).min(MAX_ADDRS);
        let mut addrs = [WireAddr::default(); MAX_ADDRS];
        let mut hit = false;
        for (out, slot) in addrs.iter_mut().zip(&e.addrs).take(count) {
            let w0 = slot[0].load(Ordering::Relaxed);
            out.family = w0 as u16;
            out.port = (w0 >> 16) as u16;
            out.addr[..8].copy_from_slice(&slot[1].load(Ordering::Relaxed).to_le_bytes());
            out.addr[8..].copy_from_slice(&slot[2].load(Ordering::Relaxed).to_le_bytes());
            hit |= out.family == peer.family && out.addr == peer.addr;
        }
        if !hit {
            continue;
        }
        let name_len = (e.name_len.load(Ordering::Relaxed) as usize).min(NAME_WORDS * 8);
        let mut name = [0u8; NAME_WORDS * 8];
        for (i, w) in e.name.iter().enumerate() {
            name[i * 8..i * 8 + 8].copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        if e.seq.load(Ordering::Acquire) != before {
            continue; // overwritten while we read it
        }
        for a in addrs.iter_mut().take(count) {
            a.port = 0;
        }
        return Some((name, name_len, addrs, count));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4]) -> WireAddr {
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&a);
        WireAddr {
            family: tapline_record::AF_INET,
            port: 0,
            addr,
        }
    }

    #[test]
    fn finds_the_lookup_that_named_an_address() {
        remember(b"api.example.test", &[v4([10, 0, 0, 1]), v4([10, 0, 0, 2])]);
        remember(b"other.example.test", &[v4([10, 0, 0, 3])]);
        let mut peer = v4([10, 0, 0, 2]);
        peer.port = 443;
        let (name, len, _, count) = find(&peer).expect("found");
        assert_eq!(&name[..len], b"api.example.test");
        assert_eq!(count, 2);
        assert!(find(&v4([192, 0, 2, 1])).is_none());
    }
}
