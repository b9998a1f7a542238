use super::*;
use tapline_record::{h2_settings_flags, h2_stream_flags as sf};

/// Bytes curl 7.88 (nghttp2) wrote and read on one prior-knowledge connection to
/// tests/servers/h2_server.js: POST /echo "hello", GET /trailers, GET /other.
const CURL_EGRESS: &[u8] = include_bytes!("curl_h2c_egress.bin");
const CURL_INGRESS: &[u8] = include_bytes!("curl_h2c_ingress.bin");

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Headers(Block, Vec<u8>),
    Data(u32, u64, Vec<u8>),
    End(StreamEnd),
    Reset(u32, u32),
    GoAway(u32, u32),
    Settings(u16, u32, u32),
}

#[derive(Default)]
struct Rec(Vec<Ev>);

impl H2Sink for Rec {
    fn headers(&mut self, block: &Block, bytes: &[u8]) {
        self.0.push(Ev::Headers(*block, bytes.to_vec()));
    }
    fn data(&mut self, stream_id: u32, offset: u64, bytes: &[u8]) {
        self.0.push(Ev::Data(stream_id, offset, bytes.to_vec()));
    }
    fn stream_end(&mut self, end: &StreamEnd) {
        self.0.push(Ev::End(*end));
    }
    fn reset(&mut self, stream_id: u32, error_code: u32) {
        self.0.push(Ev::Reset(stream_id, error_code));
    }
    fn goaway(&mut self, last_stream_id: u32, error_code: u32) {
        self.0.push(Ev::GoAway(last_stream_id, error_code));
    }
    fn settings(&mut self, flags: u16, header_table_size: u32, max_frame_size: u32) {
        self.0
            .push(Ev::Settings(flags, header_table_size, max_frame_size));
    }
}

impl Rec {
    /// Data events merged per stream (pieces from different splits compare equal).
    fn normalized(&self) -> Vec<Ev> {
        let mut out: Vec<Ev> = Vec::new();
        for e in &self.0 {
            if let (Ev::Data(s, off, b), Some(Ev::Data(ps, poff, pb))) = (e, out.last_mut()) {
                if s == ps && *poff + pb.len() as u64 == *off {
                    pb.extend_from_slice(b);
                    continue;
                }
            }
            out.push(e.clone());
        }
        out
    }
    fn blocks(&self) -> Vec<&Block> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Ev::Headers(b, _) => Some(b),
                _ => None,
            })
            .collect()
    }
    fn ends(&self) -> Vec<&StreamEnd> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Ev::End(e) => Some(e),
                _ => None,
            })
            .collect()
    }
    fn body(&self, stream: u32) -> Vec<u8> {
        let mut v = Vec::new();
        for e in &self.0 {
            if let Ev::Data(s, off, b) = e {
                if *s == stream {
                    assert_eq!(*off, v.len() as u64, "data in order, no gaps");
                    v.extend_from_slice(b);
                }
            }
        }
        v
    }
}

const T: Stamp = Stamp {
    wall_ns: 1,
    mono_ns: 2,
};

fn framer(preface: bool) -> Box<Framer> {
    Box::new(Framer::new(preface))
}

fn run(preface: bool, pieces: &[&[u8]], max_body: u64) -> (Rec, Verdict) {
    let mut f = framer(preface);
    let mut rec = Rec::default();
    let mut v = Verdict::Continue;
    for p in pieces {
        v = f.feed(p, T, max_body, &mut rec);
    }
    (rec, v)
}

fn frame(ftype: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    let n = payload.len() as u32;
    v.extend_from_slice(&n.to_be_bytes()[1..]);
    v.push(ftype);
    v.push(flags);
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[test]
fn curl_exchange_ingress_records() {
    let (rec, v) = run(false, &[CURL_INGRESS], 1 << 20);
    assert_eq!(v, Verdict::Continue);
    let blocks = rec.blocks();
    // Responses on streams 1, 3 (+ its trailers), 5.
    let ids: Vec<_> = blocks.iter().map(|b| (b.stream_id, b.block_seq)).collect();
    assert_eq!(ids, [(1, 0), (3, 1), (3, 2), (5, 3)]);
    assert_eq!(
        blocks[2].flags & h2_block_flags::END_STREAM,
        h2_block_flags::END_STREAM,
        "trailers end stream 3"
    );
    assert_eq!(blocks[0].flags & h2_block_flags::END_STREAM, 0);
    assert_eq!(rec.body(1), b"hello");
    assert_eq!(rec.body(3), b"with trailers");
    assert_eq!(rec.body(5), b"hello h2 /other");
    let ends: Vec<_> = rec
        .ends()
        .iter()
        .map(|e| (e.stream_id, e.flags, e.data_len))
        .collect();
    assert_eq!(
        ends,
        [
            (1, sf::END_STREAM, 5),
            (3, sf::END_STREAM, 13),
            (5, sf::END_STREAM, 15)
        ]
    );
    // The server's SETTINGS frame (node sends none of the two values we keep).
    assert!(rec.0.iter().any(|e| matches!(e, Ev::Settings(..))));
}

#[test]
fn curl_exchange_egress_records() {
    let (rec, v) = run(true, &[CURL_EGRESS], 1 << 20);
    assert_eq!(v, Verdict::Continue);
    let ids: Vec<_> = rec.blocks().iter().map(|b| b.stream_id).collect();
    assert_eq!(ids, [1, 3, 5]);
    assert_eq!(rec.body(1), b"hello");
    // GETs end their stream with the HEADERS frame.
    let get = rec.blocks()[1];
    assert_eq!(
        get.flags & h2_block_flags::END_STREAM,
        h2_block_flags::END_STREAM
    );
    assert_eq!(rec.ends().len(), 3);
    // curl's SETTINGS carry neither HEADER_TABLE_SIZE nor MAX_FRAME_SIZE... or do: read
    // them as they are and check the wire agrees.
    let settings: Vec<_> = rec
        .0
        .iter()
        .filter(|e| matches!(e, Ev::Settings(..)))
        .collect();
    assert_eq!(settings.len(), 1);
}

#[test]
fn every_split_of_a_real_exchange_gives_the_same_records() {
    for (preface, bytes) in [(true, CURL_EGRESS), (false, CURL_INGRESS)] {
        let (whole, _) = run(preface, &[bytes], 1 << 20);
        let whole = whole.normalized();
        for i in 0..=bytes.len() {
            let (rec, v) = run(preface, &[&bytes[..i], &bytes[i..]], 1 << 20);
            assert_eq!(v, Verdict::Continue);
            assert_eq!(rec.normalized(), whole, "split at {i}");
        }
        for j in 1..bytes.len() {
            let i = j / 2;
            let (rec, _) = run(preface, &[&bytes[..i], &bytes[i..j], &bytes[j..]], 1 << 20);
            assert_eq!(rec.normalized(), whole, "split at {i}, {j}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        let (rec, _) = run(preface, &singles, 1 << 20);
        assert_eq!(rec.normalized(), whole, "byte at a time");
    }
}

#[test]
fn padding_and_priority_are_stripped() {
    // HEADERS: PADDED | PRIORITY | END_HEADERS, pad 3, priority 5 bytes, block "\x82\x86".
    let mut p = vec![3u8];
    p.extend_from_slice(&[0x80, 0, 0, 1, 16]);
    p.extend_from_slice(b"\x82\x86");
    p.extend_from_slice(&[0, 0, 0]);
    let mut wire = frame(
        FRAME_HEADERS,
        FLAG_PADDED | FLAG_PRIORITY | FLAG_END_HEADERS,
        1,
        &p,
    );
    // DATA: PADDED | END_STREAM, pad 4, "abc".
    wire.extend(frame(
        FRAME_DATA,
        FLAG_PADDED | FLAG_END_STREAM,
        1,
        b"\x04abc\0\0\0\0",
    ));
    for i in 0..=wire.len() {
        let (rec, v) = run(false, &[&wire[..i], &wire[i..]], 1 << 20);
        assert_eq!(v, Verdict::Continue);
        assert_eq!(
            rec.normalized(),
            [
                Ev::Headers(
                    Block {
                        stream_id: 1,
                        promised_stream_id: 0,
                        block_seq: 0,
                        flags: 0,
                        block_len: 2,
                    },
                    b"\x82\x86".to_vec()
                ),
                Ev::Data(1, 0, b"abc".to_vec()),
                Ev::End(StreamEnd {
                    stream_id: 1,
                    flags: sf::END_STREAM,
                    data_len: 3,
                    wire_len: (9 + 11) + (9 + 8),
                    first: T,
                    last: T,
                    error_code: 0,
                }),
            ],
            "split at {i}"
        );
    }
}

#[test]
fn continuation_frames_join_their_headers_and_push_promise() {
    let mut wire = frame(FRAME_HEADERS, FLAG_END_STREAM, 1, b"aaa");
    wire.extend(frame(FRAME_CONTINUATION, 0, 1, b"bbb"));
    wire.extend(frame(FRAME_CONTINUATION, FLAG_END_HEADERS, 1, b"cc"));
    // PUSH_PROMISE on stream 1 promising stream 2, padded, split by a CONTINUATION.
    let mut pp = vec![2u8, 0, 0, 0, 2];
    pp.extend_from_slice(b"pp");
    pp.extend_from_slice(&[0, 0]);
    wire.extend(frame(FRAME_PUSH_PROMISE, FLAG_PADDED, 3, &pp));
    wire.extend(frame(FRAME_CONTINUATION, FLAG_END_HEADERS, 3, b"q"));
    let (rec, v) = run(false, &[&wire], 1 << 20);
    assert_eq!(v, Verdict::Continue);
    let heads: Vec<_> = rec
        .0
        .iter()
        .filter_map(|e| match e {
            Ev::Headers(b, bytes) => Some((*b, bytes.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(heads.len(), 2);
    assert_eq!(heads[0].1, b"aaabbbcc");
    assert_eq!(heads[0].0.flags, h2_block_flags::END_STREAM);
    assert_eq!(heads[0].0.block_len, 8);
    assert_eq!(heads[1].1, b"ppq");
    assert_eq!(heads[1].0.flags, h2_block_flags::PUSH_PROMISE);
    assert_eq!(
        (heads[1].0.stream_id, heads[1].0.promised_stream_id),
        (3, 2)
    );
    assert_eq!(heads[1].0.block_seq, 1);
    // Stream 1 ended by its HEADERS (after the CONTINUATIONs).
    let e = rec.ends()[0];
    assert_eq!(
        (e.stream_id, e.flags, e.wire_len),
        (1, sf::END_STREAM, 12 + 12 + 11)
    );
}

#[test]
fn interleaved_frame_inside_a_header_block_stops_framing() {
    let mut wire = frame(FRAME_HEADERS, 0, 1, b"aaa");
    wire.extend(frame(FRAME_DATA, 0, 1, b"x"));
    assert_eq!(run(false, &[&wire], 100).1, Verdict::Malformed);
    let wire = frame(FRAME_CONTINUATION, FLAG_END_HEADERS, 1, b"a");
    assert_eq!(run(false, &[&wire], 100).1, Verdict::Malformed);
}

#[test]
fn long_header_block_is_cut_and_flagged() {
    let big = vec![0x55u8; BLOCK_LIMIT + 100];
    let mut wire = frame(FRAME_HEADERS, 0, 1, &big[..16384]);
    wire.extend(frame(FRAME_CONTINUATION, 0, 1, &big[16384..32768]));
    wire.extend(frame(
        FRAME_CONTINUATION,
        FLAG_END_HEADERS,
        1,
        &big[32768..],
    ));
    let (rec, _) = run(false, &[&wire], 100);
    let Ev::Headers(b, bytes) = &rec.0[0] else {
        panic!("{:?}", rec.0)
    };
    assert_eq!(bytes.len(), BLOCK_LIMIT);
    assert_eq!(b.block_len as usize, BLOCK_LIMIT + 100);
    assert_eq!(b.flags, h2_block_flags::TRUNCATED);
}

#[test]
fn data_beyond_max_body_is_counted_not_copied() {
    let mut wire = frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, b"h");
    wire.extend(frame(FRAME_DATA, 0, 1, b"0123456789"));
    wire.extend(frame(FRAME_DATA, FLAG_END_STREAM, 1, b"abcdef"));
    let (rec, _) = run(false, &[&wire], 12);
    assert_eq!(rec.body(1), b"0123456789ab");
    let e = rec.ends()[0];
    assert_eq!(e.data_len, 16);
    assert_eq!(e.flags, sf::END_STREAM | sf::BODY_TRUNCATED);
}

#[test]
fn streams_past_the_table_are_counted_and_ended() {
    let n = STREAMS as u32 + 6;
    let mut wire = Vec::new();
    for k in 0..n {
        wire.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS, 2 * k + 1, b"h"));
    }
    for k in 0..n {
        wire.extend(frame(FRAME_DATA, FLAG_END_STREAM, 2 * k + 1, b"body"));
    }
    let (rec, v) = run(false, &[&wire], 100);
    assert_eq!(v, Verdict::Continue);
    assert_eq!(rec.blocks().len(), n as usize, "every header block is kept");
    let ends = rec.ends();
    assert_eq!(ends.len(), n as usize, "every stream's end is reported");
    let untracked: Vec<_> = ends
        .iter()
        .filter(|e| e.flags & sf::UNTRACKED != 0)
        .map(|e| e.stream_id)
        .collect();
    assert_eq!(untracked.len(), 6);
    assert!(untracked.iter().all(|&s| s > 2 * STREAMS as u32));
    for e in &ends {
        assert_eq!(e.data_len, 4);
    }
    // Tracked streams' data is copied; untracked ones' is not.
    assert_eq!(rec.body(1), b"body");
    assert!(rec.body(untracked[0]).is_empty());
    // A stream that found the table full stays untracked through its trailers, even
    // once entries are free again.
    let mut t = framer(false);
    let mut r3 = Rec::default();
    let mut w3 = Vec::new();
    for k in 0..n {
        w3.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS, 2 * k + 1, b"h"));
    }
    w3.extend(frame(FRAME_DATA, FLAG_END_STREAM, 1, b"frees one entry"));
    let last = 2 * (n - 1) + 1;
    w3.extend(frame(FRAME_DATA, 0, last, b"not copied"));
    w3.extend(frame(
        FRAME_HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        last,
        b"t",
    ));
    t.feed(&w3, T, 100, &mut r3);
    assert!(r3.body(last).is_empty());
    let e = *r3
        .ends()
        .iter()
        .find(|e| e.stream_id == last)
        .expect("trailers end it");
    assert_eq!(e.flags, sf::END_STREAM | sf::UNTRACKED);
    // Ended streams free their entries: new streams are tracked again.
    let mut more = Box::new(Framer::new(false));
    let mut r2 = Rec::default();
    more.feed(&wire, T, 100, &mut r2);
    let next = 2 * n + 1;
    more.feed(
        &frame(FRAME_HEADERS, FLAG_END_HEADERS, next, b"h"),
        T,
        100,
        &mut r2,
    );
    more.feed(
        &frame(FRAME_DATA, FLAG_END_STREAM, next, b"again"),
        T,
        100,
        &mut r2,
    );
    assert_eq!(r2.body(next), b"again");
}

/// A pooled framer is started again in place: a SETTINGS frame the last connection
/// left half read does not leak its values into the next connection's first SETTINGS.
#[test]
fn start_forgets_a_half_read_settings_frame() {
    let mut f = framer(false);
    let mut rec = Rec::default();
    let whole = frame(
        FRAME_SETTINGS,
        0,
        0,
        &[0, 1, 0, 0, 0x10, 0, 0, 5, 0, 0, 0x40, 0],
    );
    assert_eq!(f.feed(&whole[..17], T, 100, &mut rec), Verdict::Continue);
    f.finish(T, &mut rec);
    f.start(false);
    let empty = frame(FRAME_SETTINGS, 0, 0, &[]);
    assert_eq!(f.feed(&empty, T, 100, &mut rec), Verdict::Continue);
    assert_eq!(rec.0, [Ev::Settings(0, 0, 0)]);
}

#[test]
fn reset_goaway_settings_are_reported() {
    let mut wire = frame(
        FRAME_SETTINGS,
        0,
        0,
        &[0, 1, 0, 0, 0x10, 0, 0, 5, 0, 0, 0x40, 0],
    );
    wire.extend(frame(FRAME_SETTINGS, FLAG_ACK, 0, &[]));
    wire.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, b"h"));
    wire.extend(frame(FRAME_RST_STREAM, 0, 1, &8u32.to_be_bytes()));
    let mut ga = 7u32.to_be_bytes().to_vec();
    ga.extend_from_slice(&2u32.to_be_bytes());
    ga.extend_from_slice(b"debug data");
    wire.extend(frame(FRAME_GOAWAY, 0, 0, &ga));
    wire.extend(frame(0x6, 0, 0, b"pingping"));
    wire.extend(frame(0x8, 0, 1, &[0, 0, 1, 0]));
    for i in 0..=wire.len() {
        let (rec, v) = run(false, &[&wire[..i], &wire[i..]], 100);
        assert_eq!(v, Verdict::Continue);
        let kinds: Vec<_> = rec
            .0
            .iter()
            .filter(|e| !matches!(e, Ev::Headers(..)))
            .cloned()
            .collect();
        assert_eq!(
            kinds,
            [
                Ev::Settings(
                    h2_settings_flags::HEADER_TABLE_SIZE | h2_settings_flags::MAX_FRAME_SIZE,
                    4096,
                    16384
                ),
                Ev::Reset(1, 8),
                Ev::End(StreamEnd {
                    stream_id: 1,
                    flags: sf::RESET,
                    data_len: 0,
                    wire_len: 10 + 13,
                    first: T,
                    last: T,
                    error_code: 8,
                }),
                Ev::GoAway(7, 2),
            ],
            "split at {i}"
        );
    }
}

#[test]
fn a_reset_from_the_other_direction_ends_the_stream_here() {
    let mut f = framer(false);
    let mut rec = Rec::default();
    f.feed(
        &frame(FRAME_HEADERS, FLAG_END_HEADERS, 5, b"h"),
        T,
        100,
        &mut rec,
    );
    f.feed(&frame(FRAME_DATA, 0, 5, b"part"), T, 100, &mut rec);
    f.peer_reset(1, 5, 8, T, &mut rec);
    assert_eq!(f.peer_resets_seen(), 1);
    let e = rec.ends()[0];
    assert_eq!(
        (e.stream_id, e.flags, e.error_code, e.data_len),
        (5, sf::RESET, 8, 4)
    );
    // Nothing left open: finishing reports nothing more.
    f.finish(T, &mut rec);
    assert_eq!(rec.ends().len(), 1);
}

#[test]
fn connection_end_reports_open_streams_and_blocks_incomplete() {
    let mut f = framer(true);
    let mut rec = Rec::default();
    let mut wire = PREFACE.to_vec();
    wire.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, b"h"));
    wire.extend(frame(FRAME_DATA, 0, 1, b"partial"));
    wire.extend(frame(FRAME_HEADERS, 0, 3, b"half"));
    assert_eq!(f.feed(&wire, T, 100, &mut rec), Verdict::Continue);
    f.finish(T, &mut rec);
    let blocks = rec.blocks();
    assert_eq!(blocks[1].flags, h2_block_flags::INCOMPLETE);
    let ends: Vec<_> = rec.ends().iter().map(|e| (e.stream_id, e.flags)).collect();
    assert_eq!(ends.len(), 2);
    assert!(ends.contains(&(1, sf::INCOMPLETE)));
    assert!(ends.contains(&(3, sf::INCOMPLETE)));
}

#[test]
fn garbage_stops_framing_and_never_panics() {
    assert_eq!(
        run(true, &[b"GET / HTTP/1.1\r\n\r\n"], 100).1,
        Verdict::Malformed
    );
    // DATA on stream 0, SETTINGS on a stream, a short RST_STREAM: not HTTP/2.
    for bad in [
        frame(FRAME_DATA, 0, 0, b"x"),
        frame(FRAME_SETTINGS, 0, 1, &[]),
        frame(FRAME_RST_STREAM, 0, 1, &[0, 0]),
        frame(FRAME_DATA, FLAG_PADDED, 1, &[9, 1, 2]),
    ] {
        assert_eq!(run(false, &[&bad], 100).1, Verdict::Malformed, "{bad:?}");
    }
    // Pseudo-random bytes in pseudo-random pieces.
    let mut x: u64 = 0x1234_5678;
    let mut f = framer(false);
    let mut rec = Rec::default();
    for _ in 0..2000 {
        let mut piece = [0u8; 64];
        for b in piece.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let n = (x >> 8) as usize % 65;
        let _ = f.feed(&piece[..n], T, 100, &mut rec);
        if f.is_stopped() {
            f.start(x & 1 == 0);
        }
    }
    f.finish(T, &mut rec);
}
