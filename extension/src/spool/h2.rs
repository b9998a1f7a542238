//! `H2*` records as the reader keeps them: the events of one HTTP/2 connection, in the
//! library's words (one complete header block, a DATA prefix, a stream's end, ...),
//! with their flag bits read once, here. [`crate::http2`] turns a connection's events
//! into exchanges.

use tapline_record as rec;
use tapline_record::{Direction, H2StartHow, RecordType};

/// What the library recorded about an HTTP/2 connection, one frame (or frame group)
/// at a time, in wire order per direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum H2Event {
    /// The connection carries HTTP/2 from here on (`H2Start`).
    Start {
        how: H2StartHow,
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

/// An HTTP/2 record's payload, decoded. `dir` is `Egress` for `H2Start`, which has none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H2Frame {
    pub dir: Direction,
    pub event: H2Event,
}

/// Decodes the payload of an `H2*` record; `None` when it does not fit its type (or the
/// type is not an HTTP/2 one).
pub(super) fn decode(rtype: RecordType, p: &[u8]) -> Option<H2Frame> {
    Some(match rtype {
        RecordType::H2Start => {
            let s = rec::H2Start::decode(p)?;
            H2Frame {
                dir: Direction::Egress,
                event: H2Event::Start {
                    how: s.how.known()?,
                    upgrade_msg_seq: s.upgrade_msg_seq,
                },
            }
        }
        RecordType::H2Headers => {
            let (h, bytes) = rec::H2Headers::decode(p)?;
            use rec::h2_block_flags as f;
            let push = h.flags & f::PUSH_PROMISE != 0;
            H2Frame {
                dir: h.dir.known()?,
                event: H2Event::HeaderBlock(HeaderBlock {
                    stream: h.stream_id,
                    promised: push.then_some(h.promised_stream_id),
                    end_stream: h.flags & f::END_STREAM != 0,
                    truncated: h.flags & (f::TRUNCATED | f::INCOMPLETE) != 0
                        || (bytes.len() as u64) < u64::from(h.block_len),
                    seq: h.block_seq,
                    block: bytes.to_vec(),
                }),
            }
        }
        RecordType::H2Data => {
            let (d, bytes) = rec::H2Data::decode(p)?;
            H2Frame {
                dir: d.dir.known()?,
                event: H2Event::Data {
                    stream: d.stream_id,
                    offset: d.offset,
                    bytes: bytes.to_vec(),
                },
            }
        }
        RecordType::H2StreamEnd => {
            let e = rec::H2StreamEnd::decode(p)?;
            use rec::h2_stream_flags as f;
            H2Frame {
                dir: e.dir.known()?,
                event: H2Event::StreamEnd(StreamEnd {
                    stream: e.stream_id,
                    data_bytes: e.data_len,
                    wire_bytes: e.wire_len,
                    first_wall_ns: e.first_wall_ns,
                    last_wall_ns: e.last_wall_ns,
                    end_stream: e.flags & f::END_STREAM != 0,
                    body_truncated: e.flags & f::BODY_TRUNCATED != 0,
                    incomplete: e.flags & f::INCOMPLETE != 0,
                    reset: e.flags & f::RESET != 0,
                    error_code: e.error_code,
                    untracked: e.flags & f::UNTRACKED != 0,
                }),
            }
        }
        RecordType::H2Reset => {
            let r = rec::H2Reset::decode(p)?;
            H2Frame {
                dir: r.dir.known()?,
                event: H2Event::Reset {
                    stream: r.stream_id,
                    code: r.error_code,
                },
            }
        }
        RecordType::H2GoAway => {
            let g = rec::H2GoAway::decode(p)?;
            H2Frame {
                dir: g.dir.known()?,
                event: H2Event::GoAway {
                    last_stream: g.last_stream_id,
                    code: g.error_code,
                },
            }
        }
        RecordType::H2Settings => {
            let s = rec::H2Settings::decode(p)?;
            use rec::h2_settings_flags as f;
            H2Frame {
                dir: s.dir.known()?,
                event: H2Event::Settings {
                    header_table_size: (s.flags & f::HEADER_TABLE_SIZE != 0)
                        .then_some(s.header_table_size),
                    max_frame_size: (s.flags & f::MAX_FRAME_SIZE != 0).then_some(s.max_frame_size),
                },
            }
        }
        _ => return None,
    })
}
