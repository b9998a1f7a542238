//! HPACK (RFC 7541) decoding: one [`Decoder`] per connection and direction.
//!
//! Why our own decoder rather than a crate: the reader must never panic or grow without
//! bound on spool bytes (untrusted), must honour the peer's `SETTINGS_HEADER_TABLE_SIZE`
//! as it was seen on the wire, and must tell "this block is broken" apart from "this
//! block decoded" so that a connection whose dynamic table is no longer known says so
//! instead of showing wrong headers. The format is small (integers, string literals,
//! one static table, one FIFO dynamic table, a canonical Huffman code); decoding is
//! ~200 lines, tested against RFC 7541 Appendix C (C.2–C.6) and randomized garbage.

use std::collections::VecDeque;

use super::huffman;

/// Largest total of decoded name and value bytes one header block may produce. Indexed
/// fields copy table entries, so a small block can name a large list; past this the
/// block is refused (and the connection's state counts as lost).
pub const MAX_DECODED_LIST: usize = 4 << 20;
/// The table size every HPACK context starts with (SETTINGS_HEADER_TABLE_SIZE default).
pub const DEFAULT_TABLE_SIZE: usize = 4096;
/// Upper bound on the table size a SETTINGS value can allow: memory stays bounded
/// whatever a spool claims.
const MAX_TABLE_SIZE: usize = 1 << 24;

/// Why a header block did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    #[error("header block ends inside a field")]
    Truncated,
    #[error("integer too large")]
    IntegerOverflow,
    #[error("index {0} is in neither table")]
    BadIndex(usize),
    #[error("dynamic table size update to {0} above the allowed {1}")]
    TableSizeTooLarge(usize, usize),
    #[error("dynamic table size update after the first field")]
    LateTableSizeUpdate,
    #[error("bad Huffman string")]
    Huffman,
    #[error("decoded header list too large")]
    ListTooLarge,
}

/// A decoded header field. Names and values are bytes on the wire; HTTP/2 field names
/// are lowercase ASCII, values usually text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

/// One direction's HPACK decoding context.
#[derive(Clone, Debug)]
pub struct Decoder {
    /// Newest entry first (index 62 is `dynamic[0]`).
    dynamic: VecDeque<Field>,
    /// Sum of entry sizes (name + value + 32 each).
    size: usize,
    /// The table's current maximum size (set by size updates).
    max_size: usize,
    /// The largest size a size update may set: the decoding peer's
    /// `SETTINGS_HEADER_TABLE_SIZE`, as seen on the wire.
    allowed: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            dynamic: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE,
            allowed: DEFAULT_TABLE_SIZE,
        }
    }
}

/// RFC 7541 Appendix A.
static STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Reads bytes of a header block.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// An integer with an `n`-bit prefix (RFC 7541 §5.1).
    fn integer(&mut self, n: u32) -> Result<usize, HpackError> {
        let first = self.peek().ok_or(HpackError::Truncated)?;
        self.pos += 1;
        let mask = (1u16 << n) as usize - 1;
        let mut value = usize::from(first) & mask;
        if value < mask {
            return Ok(value);
        }
        let mut shift = 0u32;
        loop {
            let b = self.peek().ok_or(HpackError::Truncated)?;
            self.pos += 1;
            // Beyond 28 bits of continuation the value cannot be a real length or index.
            if shift > 28 {
                return Err(HpackError::IntegerOverflow);
            }
            value = value
                .checked_add(usize::from(b & 0x7f) << shift)
                .ok_or(HpackError::IntegerOverflow)?;
            shift += 7;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
    }

    /// A string literal (RFC 7541 §5.2).
    fn string(&mut self) -> Result<Vec<u8>, HpackError> {
        let huffman = self.peek().ok_or(HpackError::Truncated)? & 0x80 != 0;
        let len = self.integer(7)?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.buf.len())
            .ok_or(HpackError::Truncated)?;
        let raw = &self.buf[self.pos..end];
        self.pos = end;
        if huffman {
            let mut out = Vec::new();
            huffman::decode(raw, &mut out).map_err(|_| HpackError::Huffman)?;
            Ok(out)
        } else {
            Ok(raw.to_vec())
        }
    }
}

impl Decoder {
    /// The peer that decodes this direction announced `SETTINGS_HEADER_TABLE_SIZE`.
    ///
    /// A setting takes effect when the encoder has seen it, which the wire order of
    /// records cannot tell exactly; so the larger of the old and new value stays
    /// allowed, and the encoder's own size updates do the shrinking (as RFC 7541 §4.2
    /// requires of it).
    pub fn set_allowed_size(&mut self, size: u32) {
        let size = usize::try_from(size).unwrap_or(MAX_TABLE_SIZE);
        self.allowed = self.allowed.max(size.min(MAX_TABLE_SIZE));
    }

    /// Decodes one complete header block, updating the dynamic table.
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<Field>, HpackError> {
        let mut fields = Vec::new();
        self.decode_into(block, &mut fields)?;
        Ok(fields)
    }

    /// Decodes a header block into `fields`. On an error, `fields` holds what decoded
    /// before it, and the table may be half-updated: the caller must treat this
    /// context as lost.
    pub fn decode_into(&mut self, block: &[u8], fields: &mut Vec<Field>) -> Result<(), HpackError> {
        let mut cur = Cursor { buf: block, pos: 0 };
        let mut decoded = 0usize;
        let mut seen_field = false;
        while let Some(b) = cur.peek() {
            let field = if b & 0x80 != 0 {
                // Indexed field.
                let index = cur.integer(7)?;
                self.entry(index)?
            } else if b & 0xc0 == 0x40 {
                // Literal with incremental indexing.
                let field = self.literal(&mut cur, 6)?;
                self.insert(field.clone());
                field
            } else if b & 0xe0 == 0x20 {
                // Dynamic table size update: only before the first field.
                if seen_field {
                    return Err(HpackError::LateTableSizeUpdate);
                }
                let size = cur.integer(5)?;
                if size > self.allowed {
                    return Err(HpackError::TableSizeTooLarge(size, self.allowed));
                }
                self.max_size = size;
                self.evict_to(size);
                continue;
            } else {
                // Literal without indexing (0000) or never indexed (0001).
                self.literal(&mut cur, 4)?
            };
            seen_field = true;
            decoded = decoded.saturating_add(field.name.len() + field.value.len());
            if decoded > MAX_DECODED_LIST {
                return Err(HpackError::ListTooLarge);
            }
            fields.push(field);
        }
        Ok(())
    }

    fn literal(&self, cur: &mut Cursor<'_>, prefix: u32) -> Result<Field, HpackError> {
        let index = cur.integer(prefix)?;
        let name = if index == 0 {
            cur.string()?
        } else {
            self.entry(index)?.name
        };
        let value = cur.string()?;
        Ok(Field { name, value })
    }

    fn entry(&self, index: usize) -> Result<Field, HpackError> {
        match index {
            1..=61 => {
                let (n, v) = STATIC_TABLE[index - 1];
                Ok(Field {
                    name: n.as_bytes().to_vec(),
                    value: v.as_bytes().to_vec(),
                })
            }
            _ => index
                .checked_sub(62)
                .and_then(|i| self.dynamic.get(i))
                .cloned()
                .ok_or(HpackError::BadIndex(index)),
        }
    }

    fn insert(&mut self, field: Field) {
        let size = field.name.len() + field.value.len() + 32;
        if size > self.max_size {
            // An entry larger than the table empties it and is not added (§4.4).
            self.dynamic.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        self.size += size;
        self.dynamic.push_front(field);
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.dynamic.pop_back() {
                Some(f) => self.size -= f.name.len() + f.value.len() + 32,
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    /// The dynamic table's size in RFC 7541 terms (for tests).
    #[cfg(test)]
    fn table_size(&self) -> usize {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn pairs(fields: &[Field]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|f| {
                (
                    String::from_utf8(f.name.clone()).unwrap(),
                    String::from_utf8(f.value.clone()).unwrap(),
                )
            })
            .collect()
    }

    fn p(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn c_1_integers() {
        // C.1.1: 10 in a 5-bit prefix; C.1.2: 1337; C.1.3: 42 at an octet boundary.
        for (bytes, prefix, want) in [
            (vec![0x0a], 5, 10),
            (vec![0x1f, 0x9a, 0x0a], 5, 1337),
            (vec![0x2a], 8, 42),
        ] {
            let mut c = Cursor {
                buf: &bytes,
                pos: 0,
            };
            assert_eq!(c.integer(prefix), Ok(want));
        }
        let long = [0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        let mut c = Cursor { buf: &long, pos: 0 };
        assert_eq!(c.integer(5), Err(HpackError::IntegerOverflow));
    }

    #[test]
    fn c_2_literal_fields() {
        // C.2.1 literal with indexing.
        let mut d = Decoder::default();
        let f = d
            .decode(&hex(
                "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            ))
            .unwrap();
        assert_eq!(pairs(&f), p(&[("custom-key", "custom-header")]));
        assert_eq!(d.table_size(), 55);
        // C.2.2 without indexing.
        let mut d = Decoder::default();
        let f = d
            .decode(&hex("040c 2f73 616d 706c 652f 7061 7468"))
            .unwrap();
        assert_eq!(pairs(&f), p(&[(":path", "/sample/path")]));
        assert_eq!(d.table_size(), 0);
        // C.2.3 never indexed.
        let mut d = Decoder::default();
        let f = d
            .decode(&hex("1008 7061 7373 776f 7264 0673 6563 7265 74"))
            .unwrap();
        assert_eq!(pairs(&f), p(&[("password", "secret")]));
        assert_eq!(d.table_size(), 0);
        // C.2.4 indexed.
        let mut d = Decoder::default();
        let f = d.decode(&hex("82")).unwrap();
        assert_eq!(pairs(&f), p(&[(":method", "GET")]));
    }

    fn requests(blocks: [&str; 3], sizes: [usize; 3]) {
        let mut d = Decoder::default();
        let want = [
            p(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ]),
            p(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache"),
            ]),
            p(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ]),
        ];
        for i in 0..3 {
            let f = d.decode(&hex(blocks[i])).unwrap();
            assert_eq!(pairs(&f), want[i], "request {i}");
            assert_eq!(d.table_size(), sizes[i], "request {i}");
        }
    }

    #[test]
    fn c_3_requests_without_huffman() {
        requests(
            [
                "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                "8286 84be 5808 6e6f 2d63 6163 6865",
                "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
            ],
            [57, 110, 164],
        );
    }

    #[test]
    fn c_4_requests_with_huffman() {
        requests(
            [
                "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                "8286 84be 5886 a8eb 1064 9cbf",
                "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
            ],
            [57, 110, 164],
        );
    }

    fn responses(blocks: [&str; 3], sizes: [usize; 3]) {
        // C.5 / C.6: SETTINGS_HEADER_TABLE_SIZE 256, so entries are evicted.
        let mut d = Decoder {
            max_size: 256,
            ..Decoder::default()
        };
        let want = [
            p(&[
                (":status", "302"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("location", "https://www.example.com"),
            ]),
            p(&[
                (":status", "307"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("location", "https://www.example.com"),
            ]),
            p(&[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
                ("location", "https://www.example.com"),
                ("content-encoding", "gzip"),
                (
                    "set-cookie",
                    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
                ),
            ]),
        ];
        for i in 0..3 {
            let f = d.decode(&hex(blocks[i])).unwrap();
            assert_eq!(pairs(&f), want[i], "response {i}");
            assert_eq!(d.table_size(), sizes[i], "response {i}");
        }
    }

    #[test]
    fn c_5_responses_without_huffman() {
        responses(
            [
                "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230
                 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65
                 7861 6d70 6c65 2e63 6f6d",
                "4803 3330 37c1 c0bf",
                "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220
                 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157
                 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076
                 6572 7369 6f6e 3d31",
            ],
            [222, 222, 215],
        );
    }

    #[test]
    fn c_6_responses_with_huffman() {
        responses(
            [
                "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0
                 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
                "4883 640e ffc1 c0bf",
                "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b
                 d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27
                 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
            ],
            [222, 222, 215],
        );
    }

    #[test]
    fn table_size_updates_are_bounded_by_the_setting() {
        let mut d = Decoder::default();
        // 0x3f 0xe1 0x1f = update to 4096: allowed.
        assert!(d.decode(&hex("3fe11f 82")).is_ok());
        // 8192 is above the default setting...
        assert_eq!(
            d.decode(&hex("3fe13f")),
            Err(HpackError::TableSizeTooLarge(8192, 4096))
        );
        // ...until the decoding peer allows it.
        let mut d = Decoder::default();
        d.set_allowed_size(8192);
        assert!(d.decode(&hex("3fe13f")).is_ok());
        // An update after a field is an error.
        assert_eq!(
            d.decode(&hex("82 20")),
            Err(HpackError::LateTableSizeUpdate)
        );
        // Size 0 empties the table.
        let mut d = Decoder::default();
        d.decode(&hex(
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
        ))
        .unwrap();
        assert_eq!(d.table_size(), 55);
        d.decode(&hex("20")).unwrap();
        assert_eq!(d.table_size(), 0);
        assert_eq!(d.decode(&hex("be")), Err(HpackError::BadIndex(62)));
    }

    #[test]
    fn indexed_references_cannot_blow_up_memory() {
        let mut d = Decoder::default();
        d.set_allowed_size(u32::MAX);
        // One 4000-byte entry, then a block of 64 Ki references to it.
        let mut block = hex("3f e1 ff 03"); // size update to 65536
        block.extend_from_slice(&[0x40, 0x01, b'x', 0x7f, 0x81, 0x1e]); // value len 3968
        block.extend(std::iter::repeat_n(b'v', 3968));
        d.decode(&block).unwrap();
        let refs = vec![0xbe; 65536];
        assert_eq!(d.decode(&refs), Err(HpackError::ListTooLarge));
    }

    #[test]
    fn garbage_never_panics() {
        // A small xorshift generator: reproducible, no dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut d = Decoder::default();
        for round in 0..20_000 {
            let len = (next() % 64) as usize;
            let block: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if d.decode(&block).is_err() {
                d = Decoder::default();
            }
            if round % 97 == 0 {
                d.set_allowed_size(next() as u32);
            }
        }
    }
}
