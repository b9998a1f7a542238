//! Incremental HTTP/2 framer for one direction of one connection (RFC 9113 §4–6).
//!
//! Why in the hook: HPACK is stateful, so the reader needs every header block whole and
//! in wire order; bodies only up to `TAPLINE_MAX_BODY` per stream. The framer follows
//! the 9-byte frame headers across any split of reads and writes, joins HEADERS or
//! PUSH_PROMISE with their CONTINUATIONs into one block (padding and priority fields
//! removed) in a fixed buffer, passes DATA payload prefixes through by stream, and
//! notes END_STREAM, RST_STREAM, GOAWAY and SETTINGS. PING, PRIORITY and WINDOW_UPDATE
//! are skipped. All state lives in this fixed-size struct: no allocation, no lock.
//!
//! Streams are followed in a bounded table ([`STREAMS`] per direction). A stream that
//! finds the table full is still seen (its header blocks are whole, its end is
//! reported), but its DATA is only counted. The table is per direction, so the two
//! directions never share memory; a RST_STREAM seen in one direction reaches the other
//! through [`Framer::peer_reset`].

use tapline_record::{h2_block_flags, h2_stream_flags, Stamp};

pub use super::wire::{Block, H2Sink, StreamEnd, Verdict, BLOCK_LIMIT, PREFACE, STREAMS};
use super::wire::{
    FLAG_ACK, FLAG_END_HEADERS, FLAG_END_STREAM, FLAG_PADDED, FLAG_PRIORITY, FRAME_CONTINUATION,
    FRAME_DATA, FRAME_GOAWAY, FRAME_HEADERS, FRAME_PUSH_PROMISE, FRAME_RST_STREAM, FRAME_SETTINGS,
    SETTINGS_HEADER_TABLE_SIZE, SETTINGS_MAX_FRAME_SIZE,
};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// Reading the client connection preface (egress only).
    #[default]
    Preface = 0,
    /// Reading a 9-byte frame header.
    Header,
    /// Reading the pad length / priority / promised stream id fields.
    Pre,
    /// Reading payload content.
    Content,
    /// Skipping padding.
    Padding,
    /// Framing lost: ignore everything.
    Stopped,
}

/// One followed stream in this direction. `id == 0` is a free entry.
#[derive(Clone, Copy, Debug)]
struct Stream {
    id: u32,
    flags: u16,
    data_len: u64,
    wire_len: u64,
    first: Stamp,
    last: Stamp,
}

/// Per-direction HTTP/2 framing state (about 36 KiB: it lives in a pool, not in the
/// fd table). All-zero bytes are a valid (stopped-at-preface) state; [`Framer::start`]
/// begins a direction in place.
#[repr(C)]
pub struct Framer {
    phase: Phase,
    /// Bytes of the preface matched, or of the frame header / pre fields collected.
    have: u8,
    pre_need: u8,
    hdr: [u8; 9],
    pre: [u8; 6],
    /// The frame being read.
    ftype: u8,
    fflags: u8,
    fstream: u32,
    flen: u32,
    /// Content bytes left in the frame, then padding bytes left.
    content_left: u32,
    pad_left: u32,
    /// Content bytes of the current frame seen so far.
    content_pos: u32,
    /// Control payload (RST_STREAM, GOAWAY, one SETTINGS entry) collected.
    ctl: [u8; 8],
    /// Index into `streams` of the current frame's stream, or `u16::MAX` if none.
    cur: u16,
    /// Last index found (most frames follow the stream before).
    hint: u16,
    settings_flags: u16,
    header_table_size: u32,
    max_frame_size: u32,
    /// A header block is open (HEADERS/PUSH_PROMISE seen, END_HEADERS not yet).
    in_block: bool,
    block_stream: u32,
    block_promised: u32,
    block_end_stream: bool,
    block_flags: u16,
    block_len: u32,
    block_seq: u32,
    /// Resets learnt from the other direction, processed up to here.
    peer_resets_seen: u32,
    streams: [Stream; STREAMS],
    /// Streams that found the table full and have not ended (0 = free).
    untracked: [u32; UNTRACKED_RING],
    untracked_next: u32,
    block: [u8; BLOCK_LIMIT],
}

/// Untracked streams remembered at once per direction.
const UNTRACKED_RING: usize = 16;

const NONE: u16 = u16::MAX;

const NO_STREAM: Stream = Stream {
    id: 0,
    flags: 0,
    data_len: 0,
    wire_len: 0,
    first: Stamp {
        wall_ns: 0,
        mono_ns: 0,
    },
    last: Stamp {
        wall_ns: 0,
        mono_ns: 0,
    },
};

impl Framer {
    /// A framer by value (tests, the fuzz target); the library starts pooled ones in
    /// place with [`Framer::start`].
    pub const fn new(expect_preface: bool) -> Self {
        Framer {
            phase: if expect_preface {
                Phase::Preface
            } else {
                Phase::Header
            },
            have: 0,
            pre_need: 0,
            hdr: [0; 9],
            pre: [0; 6],
            ftype: 0,
            fflags: 0,
            fstream: 0,
            flen: 0,
            content_left: 0,
            pad_left: 0,
            content_pos: 0,
            ctl: [0; 8],
            cur: NONE,
            hint: 0,
            settings_flags: 0,
            header_table_size: 0,
            max_frame_size: 0,
            in_block: false,
            block_stream: 0,
            block_promised: 0,
            block_end_stream: false,
            block_flags: 0,
            block_len: 0,
            block_seq: 0,
            peer_resets_seen: 0,
            streams: [NO_STREAM; STREAMS],
            untracked: [0; UNTRACKED_RING],
            untracked_next: 0,
            block: [0; BLOCK_LIMIT],
        }
    }

    /// Starts a direction: `expect_preface` for the client's (egress) side.
    pub fn start(&mut self, expect_preface: bool) {
        self.phase = if expect_preface {
            Phase::Preface
        } else {
            Phase::Header
        };
        self.have = 0;
        self.pre_need = 0;
        self.cur = NONE;
        self.hint = 0;
        self.in_block = false;
        self.block_len = 0;
        self.block_seq = 0;
        self.peer_resets_seen = 0;
        self.settings_flags = 0;
        self.header_table_size = 0;
        self.max_frame_size = 0;
        self.streams = [NO_STREAM; STREAMS];
        self.untracked = [0; UNTRACKED_RING];
        self.untracked_next = 0;
    }

    pub fn is_stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    /// Header blocks seen so far in this direction.
    pub fn blocks(&self) -> u32 {
        self.block_seq
    }

    /// How many resets the other direction has posted that this one has handled.
    pub fn peer_resets_seen(&self) -> u32 {
        self.peer_resets_seen
    }

    /// The other direction saw RST_STREAM for `stream_id` (the `n`-th reset it posted):
    /// the stream ends here too, if this direction still follows it.
    pub fn peer_reset(
        &mut self,
        n: u32,
        stream_id: u32,
        error_code: u32,
        now: Stamp,
        sink: &mut impl H2Sink,
    ) {
        self.peer_resets_seen = self.peer_resets_seen.max(n);
        if let Some(i) = self.find(stream_id) {
            self.end_stream(i, h2_stream_flags::RESET, error_code, now, sink);
        }
    }

    /// Feeds bytes in wire order.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        now: Stamp,
        max_body: u64,
        sink: &mut impl H2Sink,
    ) -> Verdict {
        while !data.is_empty() {
            let used = match self.phase {
                Phase::Stopped => return Verdict::Malformed,
                Phase::Preface => {
                    let at = self.have as usize;
                    let n = data.len().min(PREFACE.len() - at);
                    if data[..n] != PREFACE[at..at + n] {
                        return self.stop();
                    }
                    self.have += n as u8;
                    if self.have as usize == PREFACE.len() {
                        self.phase = Phase::Header;
                        self.have = 0;
                    }
                    n
                }
                Phase::Header => {
                    let at = self.have as usize;
                    let n = data.len().min(9 - at);
                    self.hdr[at..at + n].copy_from_slice(&data[..n]);
                    self.have += n as u8;
                    if self.have == 9 {
                        self.have = 0;
                        if self.begin_frame(now).is_err() {
                            return self.stop();
                        }
                        if self.phase == Phase::Content && self.content_left == 0 {
                            self.end_content(now, sink);
                        }
                    }
                    n
                }
                Phase::Pre => {
                    let at = self.have as usize;
                    let n = data.len().min(self.pre_need as usize - at);
                    self.pre[at..at + n].copy_from_slice(&data[..n]);
                    self.have += n as u8;
                    if self.have == self.pre_need {
                        self.have = 0;
                        if self.after_pre().is_err() {
                            return self.stop();
                        }
                        if self.content_left == 0 {
                            self.end_content(now, sink);
                        }
                    }
                    n
                }
                Phase::Content => {
                    let n = data.len().min(self.content_left as usize);
                    self.content(&data[..n], max_body, sink);
                    self.content_left -= n as u32;
                    self.content_pos += n as u32;
                    if self.content_left == 0 {
                        self.end_content(now, sink);
                    }
                    n
                }
                Phase::Padding => {
                    let n = data.len().min(self.pad_left as usize);
                    self.pad_left -= n as u32;
                    if self.pad_left == 0 {
                        self.end_frame(now, sink);
                    }
                    n
                }
            };
            data = &data[used..];
        }
        if self.phase == Phase::Stopped {
            Verdict::Malformed
        } else {
            Verdict::Continue
        }
    }

    /// The connection ended: an open header block and every followed stream are
    /// reported cut off.
    pub fn finish(&mut self, now: Stamp, sink: &mut impl H2Sink) {
        if self.in_block {
            self.emit_block(h2_block_flags::INCOMPLETE, sink);
        }
        for i in 0..STREAMS {
            if self.streams[i].id != 0 {
                self.end_stream(i, h2_stream_flags::INCOMPLETE, 0, now, sink);
            }
        }
        self.phase = Phase::Stopped;
    }

    fn stop(&mut self) -> Verdict {
        self.phase = Phase::Stopped;
        Verdict::Malformed
    }

    /// A frame header is complete: check it, account it, and decide how to read it.
    fn begin_frame(&mut self, now: Stamp) -> Result<(), ()> {
        let h = self.hdr;
        self.flen = u32::from_be_bytes([0, h[0], h[1], h[2]]);
        self.ftype = h[3];
        self.fflags = h[4];
        self.fstream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7FFF_FFFF;
        self.content_pos = 0;
        self.pad_left = 0;
        // Inside a header block only CONTINUATION of the same stream may come.
        if self.in_block != (self.ftype == FRAME_CONTINUATION)
            || (self.in_block && self.fstream != self.block_stream)
        {
            return Err(());
        }
        let stream_frame = matches!(
            self.ftype,
            FRAME_DATA | FRAME_HEADERS | FRAME_PUSH_PROMISE | FRAME_CONTINUATION | FRAME_RST_STREAM
        );
        if stream_frame && self.fstream == 0 {
            return Err(());
        }
        if matches!(self.ftype, FRAME_SETTINGS | FRAME_GOAWAY) && self.fstream != 0 {
            return Err(());
        }
        let (padded, pre) = match self.ftype {
            FRAME_DATA => (self.fflags & FLAG_PADDED != 0, 0),
            FRAME_HEADERS => (
                self.fflags & FLAG_PADDED != 0,
                if self.fflags & FLAG_PRIORITY != 0 {
                    5
                } else {
                    0
                },
            ),
            FRAME_PUSH_PROMISE => (self.fflags & FLAG_PADDED != 0, 4),
            FRAME_RST_STREAM if self.flen != 4 => return Err(()),
            FRAME_SETTINGS if !self.flen.is_multiple_of(6) => return Err(()),
            FRAME_GOAWAY if self.flen < 8 => return Err(()),
            _ => (false, 0),
        };
        self.pre_need = u8::from(padded) + pre;
        if self.flen < u32::from(self.pre_need) {
            return Err(());
        }
        // The stream this frame belongs to, for accounting. Only HEADERS opens an entry
        // (a stream starts with one in each direction): DATA of a stream that found the
        // table full is never tracked from the middle, and WINDOW_UPDATE or PRIORITY on
        // a stream that ended here never reopen it.
        self.cur = NONE;
        if self.fstream != 0 {
            let opens = self.ftype == FRAME_HEADERS;
            let i = match self.find(self.fstream) {
                Some(i) => Some(i),
                // A stream that found the table full stays untracked: its trailers
                // (a second HEADERS) must not open an entry in the middle of it.
                None if opens && !self.is_untracked(self.fstream) => {
                    let i = self.open(self.fstream, now);
                    if i.is_none() {
                        self.note_untracked(self.fstream);
                    }
                    i
                }
                None => None,
            };
            if let Some(i) = i {
                let s = &mut self.streams[i];
                s.wire_len += 9 + u64::from(self.flen);
                s.last = now;
                self.cur = i as u16;
            }
        }
        if self.ftype == FRAME_HEADERS || self.ftype == FRAME_PUSH_PROMISE {
            self.in_block = true;
            self.block_stream = self.fstream;
            self.block_promised = 0;
            self.block_end_stream =
                self.ftype == FRAME_HEADERS && self.fflags & FLAG_END_STREAM != 0;
            self.block_flags = if self.ftype == FRAME_PUSH_PROMISE {
                h2_block_flags::PUSH_PROMISE
            } else {
                0
            };
            self.block_len = 0;
        }
        if self.pre_need > 0 {
            self.phase = Phase::Pre;
            Ok(())
        } else {
            self.content_left = self.flen;
            self.phase = Phase::Content;
            Ok(())
        }
    }

    /// Pad length, priority and promised stream id are read: the content follows.
    fn after_pre(&mut self) -> Result<(), ()> {
        let padded = match self.ftype {
            FRAME_DATA | FRAME_HEADERS | FRAME_PUSH_PROMISE => self.fflags & FLAG_PADDED != 0,
            _ => false,
        };
        let pad = if padded { u32::from(self.pre[0]) } else { 0 };
        if self.ftype == FRAME_PUSH_PROMISE {
            let at = usize::from(padded);
            let p = &self.pre[at..at + 4];
            self.block_promised = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7FFF_FFFF;
        }
        let rest = self.flen - u32::from(self.pre_need);
        if pad > rest {
            return Err(());
        }
        self.content_left = rest - pad;
        self.pad_left = pad;
        self.phase = Phase::Content;
        Ok(())
    }

    fn content(&mut self, bytes: &[u8], max_body: u64, sink: &mut impl H2Sink) {
        match self.ftype {
            FRAME_DATA => {
                if self.cur == NONE {
                    return;
                }
                let s = &mut self.streams[self.cur as usize];
                let offset = s.data_len;
                s.data_len += bytes.len() as u64;
                if offset < max_body {
                    let keep = (max_body - offset).min(bytes.len() as u64) as usize;
                    sink.data(s.id, offset, &bytes[..keep]);
                }
                if s.data_len > max_body {
                    s.flags |= h2_stream_flags::BODY_TRUNCATED;
                }
            }
            FRAME_HEADERS | FRAME_PUSH_PROMISE | FRAME_CONTINUATION => {
                let at = self.block_len as usize;
                if at < BLOCK_LIMIT {
                    let n = bytes.len().min(BLOCK_LIMIT - at);
                    self.block[at..at + n].copy_from_slice(&bytes[..n]);
                }
                self.block_len = self.block_len.saturating_add(bytes.len() as u32);
            }
            FRAME_SETTINGS => {
                for (k, &b) in bytes.iter().enumerate() {
                    let at = (self.content_pos as usize + k) % 6;
                    self.ctl[at] = b;
                    if at == 5 {
                        self.setting();
                    }
                }
            }
            FRAME_RST_STREAM | FRAME_GOAWAY => {
                let at = self.content_pos as usize;
                if at < 8 {
                    let n = bytes.len().min(8 - at);
                    self.ctl[at..at + n].copy_from_slice(&bytes[..n]);
                }
            }
            _ => {}
        }
    }

    fn setting(&mut self) {
        if self.fflags & FLAG_ACK != 0 {
            return;
        }
        let c = self.ctl;
        let id = u16::from_be_bytes([c[0], c[1]]);
        let value = u32::from_be_bytes([c[2], c[3], c[4], c[5]]);
        match id {
            SETTINGS_HEADER_TABLE_SIZE => {
                self.settings_flags |= tapline_record::h2_settings_flags::HEADER_TABLE_SIZE;
                self.header_table_size = value;
            }
            SETTINGS_MAX_FRAME_SIZE => {
                self.settings_flags |= tapline_record::h2_settings_flags::MAX_FRAME_SIZE;
                self.max_frame_size = value;
            }
            _ => {}
        }
    }

    fn end_content(&mut self, now: Stamp, sink: &mut impl H2Sink) {
        if self.pad_left > 0 {
            self.phase = Phase::Padding;
        } else {
            self.end_frame(now, sink);
        }
    }

    /// The whole frame (padding included) has passed.
    fn end_frame(&mut self, now: Stamp, sink: &mut impl H2Sink) {
        self.phase = Phase::Header;
        let c = self.ctl;
        match self.ftype {
            FRAME_DATA if self.fflags & FLAG_END_STREAM != 0 => {
                self.end_current(h2_stream_flags::END_STREAM, 0, now, sink);
            }
            FRAME_HEADERS | FRAME_PUSH_PROMISE | FRAME_CONTINUATION
                if self.fflags & FLAG_END_HEADERS != 0 =>
            {
                self.emit_block(0, sink);
                if self.block_end_stream {
                    self.end_current(h2_stream_flags::END_STREAM, 0, now, sink);
                }
            }
            FRAME_SETTINGS if self.fflags & FLAG_ACK == 0 => {
                sink.settings(
                    self.settings_flags,
                    self.header_table_size,
                    self.max_frame_size,
                );
                self.settings_flags = 0;
                self.header_table_size = 0;
                self.max_frame_size = 0;
            }
            FRAME_RST_STREAM => {
                let code = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                sink.reset(self.fstream, code);
                self.end_current(h2_stream_flags::RESET, code, now, sink);
            }
            FRAME_GOAWAY => {
                let last = u32::from_be_bytes([c[0], c[1], c[2], c[3]]) & 0x7FFF_FFFF;
                let code = u32::from_be_bytes([c[4], c[5], c[6], c[7]]);
                sink.goaway(last, code);
            }
            _ => {}
        }
    }

    fn emit_block(&mut self, extra: u16, sink: &mut impl H2Sink) {
        let mut flags = self.block_flags | extra;
        if self.block_end_stream {
            flags |= h2_block_flags::END_STREAM;
        }
        if self.block_len as usize > BLOCK_LIMIT {
            flags |= h2_block_flags::TRUNCATED;
        }
        let block = Block {
            stream_id: self.block_stream,
            promised_stream_id: self.block_promised,
            block_seq: self.block_seq,
            flags,
            block_len: self.block_len,
        };
        let kept = (self.block_len as usize).min(BLOCK_LIMIT);
        sink.headers(&block, &self.block[..kept]);
        self.block_seq = self.block_seq.wrapping_add(1);
        self.in_block = false;
    }

    /// Ends the current frame's stream; a stream without an entry (the table was full)
    /// is reported with what this frame showed.
    fn end_current(&mut self, flags: u16, code: u32, now: Stamp, sink: &mut impl H2Sink) {
        if self.cur != NONE {
            self.end_stream(self.cur as usize, flags, code, now, sink);
            self.cur = NONE;
        } else if flags & (h2_stream_flags::END_STREAM | h2_stream_flags::RESET) != 0 {
            self.forget_untracked(self.fstream);
            if flags & h2_stream_flags::END_STREAM == 0 {
                return;
            }
            sink.stream_end(&StreamEnd {
                stream_id: self.fstream,
                flags: flags | h2_stream_flags::UNTRACKED,
                data_len: if self.ftype == FRAME_DATA {
                    u64::from(self.content_pos)
                } else {
                    0
                },
                wire_len: 9 + u64::from(self.flen),
                first: now,
                last: now,
                error_code: code,
            });
        }
    }

    fn end_stream(&mut self, i: usize, flags: u16, code: u32, now: Stamp, sink: &mut impl H2Sink) {
        let s = self.streams[i];
        sink.stream_end(&StreamEnd {
            stream_id: s.id,
            flags: s.flags | flags,
            data_len: s.data_len,
            wire_len: s.wire_len,
            first: s.first,
            last: if flags & h2_stream_flags::INCOMPLETE != 0 {
                s.last
            } else {
                now
            },
            error_code: code,
        });
        self.streams[i] = NO_STREAM;
    }

    fn is_untracked(&self, id: u32) -> bool {
        self.untracked.contains(&id)
    }

    /// Remembers a stream that found the table full (the oldest one is forgotten when
    /// more are open at once than the ring holds).
    fn note_untracked(&mut self, id: u32) {
        let at = self.untracked_next as usize % UNTRACKED_RING;
        self.untracked[at] = id;
        self.untracked_next = self.untracked_next.wrapping_add(1);
    }

    fn forget_untracked(&mut self, id: u32) {
        for u in self.untracked.iter_mut() {
            if *u == id {
                *u = 0;
            }
        }
    }

    fn find(&mut self, id: u32) -> Option<usize> {
        if id == 0 {
            return None;
        }
        let h = self.hint as usize;
        if self.streams[h].id == id {
            return Some(h);
        }
        let i = self.streams.iter().position(|s| s.id == id)?;
        self.hint = i as u16;
        Some(i)
    }

    fn open(&mut self, id: u32, now: Stamp) -> Option<usize> {
        let i = self.streams.iter().position(|s| s.id == 0)?;
        self.streams[i] = Stream {
            id,
            flags: 0,
            data_len: 0,
            wire_len: 0,
            first: now,
            last: now,
        };
        self.hint = i as u16;
        Some(i)
    }
}

#[cfg(test)]
mod tests;
