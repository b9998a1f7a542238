//! The HTTP/2 framer's cost per DATA frame, without hooks or I/O: the framer of the
//! library (`src/http2/framer.rs`, included by path as the fuzz target does) fed a long
//! stream of DATA frames (after one HEADERS) in 64 KiB pieces, as reads return them;
//! the sink only counts. Built and run by bench/h2_multiplex.sh. Prints ns per frame
//! for small (1 KiB) and full (16 KiB) frames, past the body limit (counted only) and
//! within it (the bytes handed to the sink, which only counts them).
#[path = "../src/http2/framer.rs"]
#[allow(dead_code)]
mod framer;
#[path = "../src/http2/wire.rs"]
#[allow(dead_code)]
mod wire;

use framer::{Block, Framer, H2Sink, StreamEnd};
use std::time::Instant;

struct Count(u64);
impl H2Sink for Count {
    fn headers(&mut self, _: &Block, b: &[u8]) {
        self.0 += b.len() as u64;
    }
    fn data(&mut self, _: u32, _: u64, b: &[u8]) {
        self.0 += b.len() as u64;
    }
    fn stream_end(&mut self, e: &StreamEnd) {
        self.0 += e.data_len;
    }
    fn reset(&mut self, _: u32, _: u32) {}
    fn goaway(&mut self, _: u32, _: u32) {}
    fn settings(&mut self, _: u16, _: u32, _: u32) {}
}

fn frame(out: &mut Vec<u8>, ftype: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(ftype);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

fn run(frame_len: usize, max_body: u64) -> f64 {
    // 1 MiB of DATA frames, fed again and again (one endless stream): what a read just
    // returned is in the cache, and so is this.
    let per_pass = (1 << 20) / frame_len;
    let passes = 256;
    let payload = vec![b'x'; frame_len];
    let mut head = Vec::new();
    frame(&mut head, 1, 4, 1, b"\x82\x86\x84");
    let mut wire = Vec::new();
    for _ in 0..per_pass {
        frame(&mut wire, 0, 0, 1, &payload);
    }
    let frames = per_pass * passes;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let mut f = Box::new(Framer::new(false));
        let mut sink = Count(0);
        f.feed(&head, tapline_record::Stamp::default(), max_body, &mut sink);
        let t = Instant::now();
        for _ in 0..passes {
            for piece in wire.chunks(64 << 10) {
                f.feed(piece, tapline_record::Stamp::default(), max_body, &mut sink);
            }
        }
        let ns = t.elapsed().as_nanos() as f64 / frames as f64;
        std::hint::black_box(sink.0);
        best = best.min(ns);
    }
    best
}

fn main() {
    for frame_len in [1024, 16384] {
        println!(
            "framer: {:>5}-byte DATA frames: {:.1} ns/frame counted only, {:.1} ns/frame handed to the sink",
            frame_len,
            run(frame_len, 0),
            run(frame_len, u64::MAX)
        );
    }
}
