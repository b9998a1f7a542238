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

/// Arbitrary bytes read as a sequence of HTTP/2 records of one connection, run through
/// HPACK and stream assembly. The fuzz target (`http2_reader`) and the pseudo-random
/// robustness test call this: whatever the bytes, it must not panic.
///
/// Each record takes a kind byte, a direction bit, a stream id byte and a length byte,
/// then that many bytes; header blocks are numbered per direction as the library does,
/// except that the kind byte can make a gap.
pub fn check_records_bytes(data: &[u8]) -> Vec<crate::exchange::Exchange> {
    let mut records = Vec::new();
    let mut seq = [0u32; 2];
    let mut rest = data;
    let mut wall = 1_000u64;
    while let [kind, dir_stream, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (body, after) = tail.split_at(len);
        rest = after;
        let dir = if dir_stream & 0x80 != 0 {
            Direction::Ingress
        } else {
            Direction::Egress
        };
        let stream = u32::from(dir_stream & 0x7f);
        let word = |i: usize| body.get(i).map_or(0, |&b| u32::from(b));
        wall += u64::from(*kind);
        let event = match kind % 8 {
            0..=2 => {
                let s = &mut seq[usize::from(dir_stream & 0x80 != 0)];
                *s = s.wrapping_add(u32::from(*kind > 250));
                let block = HeaderBlock {
                    stream,
                    promised: (kind % 8 == 2).then_some(word(0)),
                    end_stream: kind & 0x10 != 0,
                    truncated: kind & 0x20 != 0,
                    seq: *s,
                    block: body.to_vec(),
                };
                *s = s.wrapping_add(1);
                H2Event::HeaderBlock(block)
            }
            3 => H2Event::Data {
                stream,
                offset: u64::from(word(0)) * 7,
                bytes: body.to_vec(),
            },
            4 => H2Event::StreamEnd(StreamEnd {
                stream,
                data_bytes: u64::from(word(0)) << word(1).min(63),
                wire_bytes: u64::from(word(2)),
                first_wall_ns: u64::from(word(3)) * wall,
                last_wall_ns: u64::from(word(4)),
                end_stream: word(5) & 1 != 0,
                body_truncated: word(5) & 2 != 0,
                incomplete: word(5) & 4 != 0,
                reset: word(5) & 8 != 0,
                error_code: word(6),
                untracked: word(5) & 16 != 0,
            }),
            5 => H2Event::Reset {
                stream,
                code: word(0),
            },
            6 => H2Event::GoAway {
                last_stream: word(0),
                code: word(1),
            },
            _ => H2Event::Settings {
                header_table_size: Some(word(0) << word(1).min(31)),
                max_frame_size: None,
            },
        };
        records.push(H2Record {
            dir,
            wall_ns: wall,
            event,
        });
    }
    let facts = ConnFacts {
        pid: 1,
        conn_id: 1,
        tls: crate::exchange::TlsKind::None,
        sni: None,
        alpn: None,
        peer: None,
        close: None,
        upgrade: None,
    };
    let mut out = Vec::new();
    exchanges(&facts, &records, &mut out);
    let mut sink = std::io::sink();
    for format in [
        crate::report::Format::Table,
        crate::report::Format::Json,
        crate::report::Format::Har,
    ] {
        let _ = crate::report::write(format, &out, &mut sink);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_have_rfc_9113_names() {
        assert_eq!(error_code_name(8), "CANCEL");
        assert_eq!(error_code_name(0xd), "HTTP_1_1_REQUIRED");
        assert_eq!(error_code_name(0x77), "0x77");
    }

    #[test]
    fn pseudo_random_records_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut streams = 0;
        for _ in 0..1500 {
            let len = (next() % 600) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Half of the rounds start with a real request block on stream 1, so that
            // decoding goes past the first byte of garbage.
            if next() % 2 == 0 {
                let mut head = vec![0u8, 1, 4, 0x82, 0x86, 0x84, 0x41];
                head.extend_from_slice(&data);
                data = head;
            }
            streams += check_records_bytes(&data).len();
        }
        assert!(streams > 0);
    }
}
