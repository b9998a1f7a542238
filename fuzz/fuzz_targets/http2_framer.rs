//! Arbitrary bytes, split at arbitrary points, through the HTTP/2 framer of the preload
//! library (`src/http2/framer.rs` and its `wire.rs`, included by path). The framer runs inside hooked libc calls, so it must never panic,
//! and what it reports must stay consistent: header blocks numbered 0, 1, 2, ... and
//! never longer than the block limit, DATA of each stream contiguous from 0 and never
//! past the body limit, every stream ended at most once while it is followed.
#![no_main]

#[path = "../../src/http2/framer.rs"]
#[allow(dead_code)]
mod framer;
#[path = "../../src/http2/wire.rs"]
#[allow(dead_code)]
mod wire;

use std::collections::HashMap;

use framer::{Block, Framer, H2Sink, StreamEnd, BLOCK_LIMIT};
use tapline_record::Stamp;
use libfuzzer_sys::fuzz_target;

const MAX_BODY: u64 = 64;

#[derive(Default)]
struct Check {
    next_block: u32,
    data_next: HashMap<u32, u64>,
}

impl H2Sink for Check {
    fn headers(&mut self, block: &Block, bytes: &[u8]) {
        assert_eq!(block.block_seq, self.next_block);
        assert!(bytes.len() <= BLOCK_LIMIT);
        assert!(bytes.len() as u64 <= u64::from(block.block_len));
        self.next_block += 1;
    }
    fn data(&mut self, stream_id: u32, offset: u64, bytes: &[u8]) {
        assert_ne!(stream_id, 0);
        let next = self.data_next.entry(stream_id).or_insert(0);
        assert_eq!(offset, *next, "DATA pieces are contiguous");
        *next += bytes.len() as u64;
        assert!(*next <= MAX_BODY);
    }
    fn stream_end(&mut self, end: &StreamEnd) {
        assert_ne!(end.stream_id, 0);
        let captured = self.data_next.remove(&end.stream_id).unwrap_or(0);
        assert!(captured <= end.data_len);
    }
    fn reset(&mut self, stream_id: u32, _error_code: u32) {
        assert_ne!(stream_id, 0);
    }
    fn goaway(&mut self, _last_stream_id: u32, _error_code: u32) {}
    fn settings(&mut self, _flags: u16, _header_table_size: u32, _max_frame_size: u32) {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(ctl >> 1) + 1;
    let mut framer = Box::new(Framer::new(ctl & 1 == 0));
    let mut check = Check::default();
    for piece in rest.chunks(step) {
        framer.feed(piece, Stamp::default(), MAX_BODY, &mut check);
    }
    framer.finish(Stamp::default(), &mut check);
});
