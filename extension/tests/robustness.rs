//! The spool is untrusted input: whatever its bytes, reading and reporting never
//! panic, and damage to some records does not hide the others.
//!
//! The fuzz target (`fuzz/fuzz_targets/spool_reader.rs`) explores the same entry point
//! with coverage guidance; this test runs on stable in CI with a fixed-seed generator.

mod common;

use common::{SpoolWriter, MS};
use tapline::check_spool_bytes;
use tapline_record::{msg_flags, Direction, Part, Protocol};

/// xorshift64*: deterministic, no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A realistic file: two connections, three exchanges, an opaque TLS connection.
fn sample() -> Vec<u8> {
    let mut w = SpoolWriter::new(42);
    let (a, b, t) = (w.conn_id(1), w.conn_id(2), w.conn_id(3));
    let get = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
    let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
    w.open(a, Protocol::Http1, 3, "127.0.0.1:80")
        .request(a, 0, get, b"")
        .response(a, 0, ok, b"hi")
        .request(a, 1, get, b"")
        .response(a, 1, ok, b"hi")
        .closed(a)
        .open(b, Protocol::Http1, 4, "127.0.0.1:81")
        .request(
            b,
            0,
            "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n",
            b"abc",
        )
        .tick(MS)
        .message(
            b,
            Direction::Ingress,
            0,
            "HTTP/1.1 204 No Content\r\n\r\n",
            b"",
            msg_flags::NO_BODY,
        )
        .closed(b)
        .open(t, Protocol::Tls, 5, "10.1.1.1:443")
        .data(
            t,
            Direction::Egress,
            Part::Raw,
            0,
            0,
            include_bytes!("payloads/client_hello_openssl_sni_alpn.bin"),
        )
        .close(t, 1.into(), 0, 10, 20);
    w.bytes
}

#[test]
fn clean_sample_reads_fully() {
    let a = check_spool_bytes(&[&sample()]);
    assert_eq!(a.exchanges.len(), 4);
    assert!(!a.totals.anything_lost(), "{:?}", a.totals);
}

#[test]
fn every_single_bit_flip_keeps_the_other_records() {
    let clean = sample();
    let total = check_spool_bytes(&[&clean]).totals.records;
    // Every 7th bit keeps the test fast; a flip damages at most one record.
    for bit in (0..clean.len() * 8).step_by(7) {
        let mut bytes = clean.clone();
        bytes[bit / 8] ^= 1 << (bit % 8);
        let a = check_spool_bytes(&[&bytes]);
        assert!(a.totals.records + 1 >= total, "bit {bit}: {:?}", a.totals);
    }
}

#[test]
fn every_truncation_reads_a_prefix() {
    let clean = sample();
    let mut last = 0;
    for cut in 0..=clean.len() {
        let a = check_spool_bytes(&[&clean[..cut]]);
        assert!(a.totals.records >= last, "cut {cut}");
        last = a.totals.records;
    }
}

#[test]
fn garbage_between_records_is_skipped_and_counted() {
    let clean = sample();
    let mut dirty = b"garbage before".to_vec();
    dirty.extend_from_slice(&clean[..200]);
    dirty.extend_from_slice(&[0xff; 33]);
    dirty.extend_from_slice(&clean[200..]);
    dirty.extend_from_slice(b"TLR1 and a fake magic at the end");
    let a = check_spool_bytes(&[&dirty, b"", &[0u8; 100]]);
    assert!(a.totals.skipped_bytes > 0);
    // The record split by the inserted bytes is lost; the rest is read.
    assert!(a.exchanges.len() >= 3, "{:?}", a.exchanges.len());
}

#[test]
fn pseudo_random_bytes_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let clean = sample();
    for i in 0..3000 {
        let len = rng.below(600);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if i % 3 == 0 {
            // Splice real records in, so that the walk gets past the magic often.
            let at = rng.below(clean.len());
            let n = rng.below(clean.len() - at);
            bytes.extend_from_slice(&clean[at..at + n]);
        }
        if i % 5 == 0 {
            // Mutate a real file in a few places.
            bytes = clean.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len());
                bytes[at] = rng.next() as u8;
            }
        }
        let _ = check_spool_bytes(&[&bytes]);
    }
}

#[test]
fn records_with_wild_values_are_survivable() {
    // Well-framed records (valid CRC) with absurd offsets, lengths and sizes.
    let mut w = SpoolWriter::new(1);
    let c = w.conn_id(1);
    w.open(c, Protocol::Http1, -1, "0.0.0.0:0")
        .data(
            c,
            Direction::Egress,
            Part::Head,
            u32::MAX,
            u64::MAX,
            b"GET / HTTP/1.1\r\n",
        )
        .data(c, Direction::Egress, Part::Body, 0, u64::MAX - 1, b"x")
        .end(
            c,
            Direction::Egress,
            0,
            u64::MAX,
            u64::MAX,
            u64::MAX,
            u16::MAX,
            u16::MAX,
            u64::MAX / 2,
        )
        .end(c, Direction::Ingress, 0, 0, u64::MAX, 0, 0, 150, 0)
        .data(c, Direction::Ingress, Part::Head, 7, 0, b"\x00\xff\r\n\r\n");
    let _ = check_spool_bytes(&[&w.bytes]);
}

/// A segment file holding `records` (concatenated frames) after its header, claimed by
/// a pid that does not exist (so every uncommitted reservation is a hole).
fn segment_with(records: &[u8], full: bool) -> Vec<u8> {
    use tapline_record::segment::{field, SegmentHeader, DATA_START, MIN_SEGMENT_BYTES};
    let size = MIN_SEGMENT_BYTES as usize;
    let mut seg = vec![0u8; size];
    seg[..field::END].copy_from_slice(&SegmentHeader::claimed(size as u64, 0x7FFF_FFF0, 0));
    let start = DATA_START as usize;
    let n = records.len().min(size - start);
    seg[start..start + n].copy_from_slice(&records[..n]);
    let reserve = (start + n) as u64;
    seg[field::RESERVE..field::RESERVE + 8].copy_from_slice(&reserve.to_le_bytes());
    if full {
        seg[field::STATE..field::STATE + 4].copy_from_slice(&2u32.to_le_bytes());
        seg[field::DATA_END..field::DATA_END + 8].copy_from_slice(&reserve.to_le_bytes());
    }
    seg
}

#[test]
fn a_clean_segment_reads_like_the_record_file() {
    let clean = sample();
    let seg = tapline::read_segment(&segment_with(&clean, true));
    assert!(seg.valid);
    assert_eq!(seg.frames, clean, "every committed record, in order");
    assert_eq!(seg.stats.holes + seg.stats.garbage_bytes + seg.pending, 0);
}

#[test]
fn pseudo_random_segments_never_panic_and_return_only_records_that_check() {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let clean = sample();
    for i in 0..2000 {
        let mut records = clean.clone();
        for _ in 0..1 + rng.below(6) {
            let at = rng.below(records.len());
            records[at] = if i % 2 == 0 { 0 } else { rng.next() as u8 };
        }
        let mut seg = segment_with(&records, i % 3 != 0);
        if i % 7 == 0 {
            // Scribble on the header too.
            let at = rng.below(128);
            seg[at] = rng.next() as u8;
        }
        let out = tapline::read_segment(&seg);
        for item in tapline_record::RecordIter::new(&out.frames) {
            assert!(
                matches!(item, tapline_record::Item::Record { .. }),
                "read_segment returned bytes that are not a checked record"
            );
        }
        let _ = check_spool_bytes(&[&out.frames]);
    }
}
