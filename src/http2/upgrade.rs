//! `Upgrade: h2c` answered by `101 Switching Protocols`: the HTTP/1 framer stops at the
//! 101, and the same connection goes on as HTTP/2 (RFC 7540 §3.2). The upgrade request
//! is stream 1's request; the server's first HTTP/2 bytes may arrive in the very read
//! that carried the 101, so the switch happens at the byte after the 101's head.
//!
//! [`UpgradeWatch`] sits between the response framer and its record sink: it passes
//! everything on, notes whether the current head names `h2c`, and where in the caller's
//! buffer that head ended (the framer hands the sink slices of the buffer it was fed).

use tapline_record::MsgEnd;

use crate::http1::FrameSink;

/// Where the HTTP/2 bytes start in a read: after `pieces` whole pieces and `offset`
/// bytes of the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    pub pieces: usize,
    pub offset: usize,
}

/// A [`FrameSink`] that forwards to `inner` and watches for a 101 to `h2c`.
pub struct UpgradeWatch<'a, S> {
    pub inner: &'a mut S,
    /// Bytes of "h2c" matched at the end of the head so far (case-insensitive).
    matched: u8,
    names_h2c: bool,
    /// The head being read is a 101's.
    in_101: bool,
    /// Address one past the last head byte the framer handed over.
    head_end: usize,
    /// The 101 (msg_seq) whose head named h2c, once its end was reported.
    upgrade: Option<u32>,
}

impl<'a, S> UpgradeWatch<'a, S> {
    pub fn new(inner: &'a mut S) -> Self {
        UpgradeWatch {
            inner,
            matched: 0,
            names_h2c: false,
            in_101: false,
            head_end: 0,
            upgrade: None,
        }
    }

    /// After the framer said [`Verdict::Upgraded`] on `piece` (the `index`-th piece of
    /// the call): where HTTP/2 starts, if the 101 was to h2c.
    pub fn resume(&self, index: usize, piece: &[u8]) -> Option<(u32, Resume)> {
        let msg_seq = self.upgrade?;
        let start = piece.as_ptr() as usize;
        let offset = self.head_end.checked_sub(start)?;
        (offset <= piece.len()).then_some((
            msg_seq,
            Resume {
                pieces: index,
                offset,
            },
        ))
    }
}

impl<'b, S: FrameSink<'b>> FrameSink<'b> for UpgradeWatch<'_, S> {
    fn head(&mut self, msg_seq: u32, offset: u64, bytes: &'b [u8]) {
        if offset == 0 {
            self.matched = 0;
            self.names_h2c = false;
            // Only a 101's head is searched: other heads cost one comparison.
            self.in_101 = bytes.len() >= 12 && &bytes[8..12] == b" 101";
        }
        if !self.in_101 {
            self.head_end = 0;
            return self.inner.head(msg_seq, offset, bytes);
        }
        for &b in bytes {
            let want = b"h2c"[self.matched as usize];
            self.matched = if b.to_ascii_lowercase() == want {
                self.matched + 1
            } else {
                u8::from(b.eq_ignore_ascii_case(&b'h'))
            };
            if self.matched == 3 {
                self.names_h2c = true;
                self.matched = 0;
            }
        }
        self.head_end = bytes.as_ptr() as usize + bytes.len();
        self.inner.head(msg_seq, offset, bytes);
    }
    fn body(&mut self, msg_seq: u32, offset: u64, bytes: &'b [u8]) {
        self.inner.body(msg_seq, offset, bytes);
    }
    fn end(&mut self, end: &MsgEnd) {
        if end.status == 101 && self.names_h2c {
            self.upgrade = Some(end.msg_seq);
        }
        self.inner.end(end);
    }

    fn progress(&mut self, p: &MsgEnd) {
        self.inner.progress(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::{Framer, RequestKinds, Role, Verdict as H1Verdict};
    use tapline_record::Stamp;

    struct Nothing;
    impl FrameSink<'_> for Nothing {
        fn head(&mut self, _: u32, _: u64, _: &[u8]) {}
        fn body(&mut self, _: u32, _: u64, _: &[u8]) {}
        fn end(&mut self, _: &MsgEnd) {}
        fn progress(&mut self, _: &MsgEnd) {}
    }

    fn after_101(wire: &[u8]) -> Option<(u32, Resume)> {
        let mut fr = Framer::new();
        let mut kinds = RequestKinds::default();
        let mut inner = Nothing;
        let mut watch = UpgradeWatch::new(&mut inner);
        let v = fr.feed(
            Role::Response,
            wire,
            Stamp::default(),
            0,
            &mut kinds,
            &mut watch,
        );
        assert_eq!(v, H1Verdict::Upgraded);
        watch.resume(2, wire)
    }

    #[test]
    fn a_101_to_h2c_resumes_at_the_byte_after_its_head() {
        let head =
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUPGRADE: H2C\r\n\r\n";
        let mut wire = head.to_vec();
        wire.extend_from_slice(b"\0\0\0\x04\0\0\0\0\0");
        assert_eq!(
            after_101(&wire),
            Some((
                0,
                Resume {
                    pieces: 2,
                    offset: head.len()
                }
            ))
        );
        // A 101 to another protocol (websocket) is not HTTP/2.
        assert_eq!(
            after_101(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nxx"),
            None
        );
    }
}
