//! `H2*` spool records → [`H2Frame`]s: the one place their bytes become typed values.

use tapline_record as rec;
use tapline_record::{Direction, RecordType};

use super::{H2Event, HeaderBlock, StreamEnd};

/// An HTTP/2 record's payload, decoded. `dir` is `Egress` for `H2Start`, which has none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H2Frame {
    pub dir: Direction,
    pub event: H2Event,
}

/// Decodes the payload of an `H2*` record; `None` when it does not fit its type (or the
/// type is not an HTTP/2 one).
pub fn decode_record(rtype: u16, p: &[u8]) -> Option<H2Frame> {
    let dir = |d: u8| Direction::from_u8(d);
    Some(match RecordType::from_u16(rtype)? {
        RecordType::H2Start => {
            let s = rec::H2Start::decode(p)?;
            H2Frame {
                dir: Direction::Egress,
                event: H2Event::Start {
                    how: s.how,
                    upgrade_msg_seq: s.upgrade_msg_seq,
                },
            }
        }
        RecordType::H2Headers => {
            let (h, bytes) = rec::H2Headers::decode(p)?;
            use rec::h2_block_flags as f;
            let push = h.flags & f::PUSH_PROMISE != 0;
            H2Frame {
                dir: h.direction()?,
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
                dir: d.direction()?,
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
                dir: e.direction()?,
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
                dir: dir(r.dir)?,
                event: H2Event::Reset {
                    stream: r.stream_id,
                    code: r.error_code,
                },
            }
        }
        RecordType::H2GoAway => {
            let g = rec::H2GoAway::decode(p)?;
            H2Frame {
                dir: dir(g.dir)?,
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
                dir: dir(s.dir)?,
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
