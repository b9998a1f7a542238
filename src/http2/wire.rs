//! HTTP/2 wire constants (RFC 9113 §6) and what the framer reports: the types a
//! [`super::framer::Framer`] hands to its [`H2Sink`].

use tapline_record::Stamp;
#[cfg(doc)]
use tapline_record::{h2_block_flags, h2_stream_flags};

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Longest header block captured whole; longer blocks are cut and flagged truncated.
pub const BLOCK_LIMIT: usize = 32 * 1024;
/// Streams followed at once per direction.
pub const STREAMS: usize = 64;

pub(super) const FRAME_DATA: u8 = 0x0;
pub(super) const FRAME_HEADERS: u8 = 0x1;
pub(super) const FRAME_RST_STREAM: u8 = 0x3;
pub(super) const FRAME_SETTINGS: u8 = 0x4;
pub(super) const FRAME_PUSH_PROMISE: u8 = 0x5;
pub(super) const FRAME_GOAWAY: u8 = 0x7;
pub(super) const FRAME_CONTINUATION: u8 = 0x9;

pub(super) const FLAG_END_STREAM: u8 = 0x1;
pub(super) const FLAG_ACK: u8 = 0x1;
pub(super) const FLAG_END_HEADERS: u8 = 0x4;
pub(super) const FLAG_PADDED: u8 = 0x8;
pub(super) const FLAG_PRIORITY: u8 = 0x20;

pub(super) const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub(super) const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

/// One complete header block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub stream_id: u32,
    pub promised_stream_id: u32,
    pub block_seq: u32,
    /// [`h2_block_flags`] bits.
    pub flags: u16,
    /// Whole block length (the captured bytes are at most [`BLOCK_LIMIT`]).
    pub block_len: u32,
}

/// One stream ended in this direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamEnd {
    pub stream_id: u32,
    /// [`h2_stream_flags`] bits.
    pub flags: u16,
    pub data_len: u64,
    pub wire_len: u64,
    pub first: Stamp,
    pub last: Stamp,
    pub error_code: u32,
}

/// Where the framer puts what it found. Slices borrow the caller's buffer or the
/// framer's block buffer.
pub trait H2Sink {
    fn headers(&mut self, block: &Block, bytes: &[u8]);
    fn data(&mut self, stream_id: u32, offset: u64, bytes: &[u8]);
    fn stream_end(&mut self, end: &StreamEnd);
    fn reset(&mut self, stream_id: u32, error_code: u32);
    fn goaway(&mut self, last_stream_id: u32, error_code: u32);
    /// A SETTINGS frame (not an ACK); `flags` are `h2_settings_flags` bits.
    fn settings(&mut self, flags: u16, header_table_size: u32, max_frame_size: u32);
}

/// What a call to [`Framer::feed`] ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// Not HTTP/2 framing: stop following.
    Malformed,
}
