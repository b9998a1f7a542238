//! Arbitrary bytes, split at arbitrary points, through the HTTP/1.x framer of the
//! preload library (`src/http1.rs`, included by path: the library is a cdylib only).
//! The framer runs inside hooked libc calls, so it must never panic, and what it
//! reports must stay consistent: fragment offsets increase, captured body bytes never
//! exceed the limit, message numbers increase by one.
#![no_main]

#[path = "../../src/http1.rs"]
#[allow(dead_code)]
mod http1;

use http1::{FrameSink, Framer, RequestKinds, Role};
use tapline_record::{MsgEnd, Stamp};
use libfuzzer_sys::fuzz_target;

const MAX_BODY: u64 = 64;

#[derive(Default)]
struct Check {
    next_seq: u32,
    body_captured: u64,
    head_next: u64,
}

impl FrameSink<'_> for Check {
    fn head(&mut self, seq: u32, offset: u64, bytes: &[u8]) {
        assert_eq!(seq, self.next_seq);
        assert_eq!(offset, self.head_next, "head fragments are contiguous");
        self.head_next += bytes.len() as u64;
        assert!(self.head_next <= http1::HEAD_CAPTURE_LIMIT);
    }
    fn body(&mut self, seq: u32, _offset: u64, bytes: &[u8]) {
        assert_eq!(seq, self.next_seq);
        self.body_captured += bytes.len() as u64;
        assert!(self.body_captured <= MAX_BODY);
    }
    fn end(&mut self, end: &MsgEnd) {
        assert_eq!(end.msg_seq, self.next_seq);
        assert!(end.wire_len >= end.head_len);
        self.next_seq += 1;
        self.body_captured = 0;
        self.head_next = 0;
    }
    fn progress(&mut self, p: &MsgEnd) {
        assert_eq!(p.msg_seq, self.next_seq, "progress of the message in progress");
        assert!(p.body_len > MAX_BODY, "progress only past the captured prefix");
        assert!(p.wire_len >= p.head_len + p.body_len);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let role = if ctl & 1 == 0 { Role::Request } else { Role::Response };
    let step = usize::from(ctl >> 1) + 1;
    let mut framer = Framer::new();
    let mut kinds = RequestKinds { head_bits: u64::from(ctl), connect_bits: 0 };
    let mut check = Check::default();
    for piece in rest.chunks(step) {
        framer.feed(role, piece, Stamp::default(), MAX_BODY, &mut kinds, &mut check);
    }
    framer.finish_on_close(&mut check);
});
