//! HTTP/2 in the reader: the library's per-frame records of one connection → one
//! [`crate::exchange::Exchange`] per stream.
//!
//! Why here and not in the library: HPACK needs a dynamic table per connection and
//! direction, and tables need memory that grows with the traffic; the library copies
//! header blocks whole (HEADERS or PUSH_PROMISE with their CONTINUATIONs, padding and
//! priority stripped) and numbers them per direction, and the reader decodes them in
//! that order from the connection's first block. Because tapline sees every connection
//! from its first byte, the tables are exact; when a block was cut by the head limit or
//! lost (a gap in the numbers), the state is unknown from there on, and the later
//! streams of that connection say `"HPACK state lost"` instead of showing wrong headers.
//!
//! - [`hpack`]: RFC 7541 decoding (our own; see its docs for why), [`huffman`] its code;
//! - [`stream`]: records → streams → exchanges (pairing by stream id, pseudo-headers,
//!   interim responses, trailers, resets, GOAWAY, pushes).

pub mod hpack;
pub mod huffman;
pub mod record;
pub mod stream;

use tapline_record::Direction;

pub use record::{decode_record, H2Frame};
pub use stream::{exchanges, ConnFacts};

/// What the library recorded about an HTTP/2 connection, one frame (or frame group)
/// at a time, in wire order per direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum H2Event {
    /// The connection carries HTTP/2 from here on (`H2Start`).
    Start {
        /// [`tapline_record::h2_start`] value.
        how: u8,
        /// For an h2c upgrade: the HTTP/1 request (`msg_seq`) that stream 1 answers.
        upgrade_msg_seq: u32,
    },
    /// A complete header block: HEADERS (or PUSH_PROMISE) and its CONTINUATIONs.
    HeaderBlock(HeaderBlock),
    /// A prefix (or a piece of the prefix) of a stream's DATA payload.
    Data {
        stream: u32,
        /// Offset of `bytes` in the stream's data (padding excluded).
        offset: u64,
        bytes: Vec<u8>,
    },
    /// One direction of a stream is over: END_STREAM, RST_STREAM, or the connection
    /// ended first.
    StreamEnd(StreamEnd),
    /// RST_STREAM.
    Reset { stream: u32, code: u32 },
    /// GOAWAY: streams above `last_stream` were not (and will not be) processed.
    GoAway { last_stream: u32, code: u32 },
    /// SETTINGS (not ACKs): the values the reader needs, when present.
    Settings {
        header_table_size: Option<u32>,
        max_frame_size: Option<u32>,
    },
}

/// A header block as the library copied it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderBlock {
    pub stream: u32,
    /// For PUSH_PROMISE: the stream it reserves (whose request this block is).
    pub promised: Option<u32>,
    /// The HEADERS frame carried END_STREAM.
    pub end_stream: bool,
    /// The block was longer than the head limit (or the connection ended inside it):
    /// `block` is its prefix.
    pub truncated: bool,
    /// Per-direction number of header blocks, 0, 1, 2, ... in wire order.
    pub seq: u32,
    pub block: Vec<u8>,
}

/// The end of one direction of a stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamEnd {
    pub stream: u32,
    /// DATA payload bytes (padding excluded), all of them, captured or not.
    pub data_bytes: u64,
    /// Frame bytes of the stream in this direction (headers, data, padding).
    pub wire_bytes: u64,
    /// Wall-clock times of the stream's first and last frame in this direction.
    pub first_wall_ns: u64,
    pub last_wall_ns: u64,
    /// END_STREAM was seen: this direction is complete.
    pub end_stream: bool,
    /// The data was longer than the body limit: only a prefix was copied.
    pub body_truncated: bool,
    /// The connection ended before this direction was complete.
    pub incomplete: bool,
    /// Ended by RST_STREAM.
    pub reset: bool,
    /// RST_STREAM's error code, when `reset`.
    pub error_code: u32,
    /// The library's stream table was full: no data copied, counts partial.
    pub untracked: bool,
}

/// One HTTP/2 record of a connection, with what its header said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H2Record {
    pub dir: Direction,
    pub wall_ns: u64,
    pub event: H2Event,
}

/// The RFC 9113 §7 name of an error code (`"CANCEL"`), or its hex value.
pub fn error_code_name(code: u32) -> String {
    let name = match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => return format!("0x{code:x}"),
    };
    name.to_owned()
}
