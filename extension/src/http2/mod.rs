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

mod blocks;
pub(crate) mod hpack;
pub(crate) mod huffman;
mod progress;
mod record;
pub(crate) mod stream;

use tapline_record::Direction;

pub(crate) use crate::spool::{H2Event, HeaderBlock, StreamEnd};
pub(crate) use blocks::HpackResume;
pub(crate) use progress::{event_stream, StreamProgress};
pub(crate) use record::H2Record;
pub(crate) use stream::{exchanges, exchanges_resuming, ConnFacts};

/// Arbitrary bytes read as a sequence of HTTP/2 records of one connection, run through
/// HPACK and stream assembly ([`crate::check_h2_records_bytes`] adds the reports, for
/// the fuzz target): whatever the bytes, it must not panic.
///
/// Each record takes a kind byte, a direction bit, a stream id byte and a length byte,
/// then that many bytes; header blocks are numbered per direction as the library does,
/// except that the kind byte can make a gap.
pub(crate) fn check_records_bytes(data: &[u8]) -> Vec<crate::exchange::Exchange> {
    let records = records_from_bytes(data);
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
    out
}

/// The records [`check_records_bytes`] reads from arbitrary bytes.
fn records_from_bytes(data: &[u8]) -> Vec<H2Record> {
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
    records
}

/// Arbitrary bytes as one header block for a fresh HPACK decoder (the fuzz target):
/// whatever the bytes, no panic. Returns how many fields decoded before the end or an
/// error.
pub(crate) fn check_hpack_block(data: &[u8]) -> usize {
    let mut fields = Vec::new();
    let _ = hpack::Decoder::default().decode_into(data, &mut fields);
    fields.len()
}

#[cfg(test)]
mod tests {
    use super::stream::error_code_name;
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
