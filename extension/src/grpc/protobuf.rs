//! Protocol Buffers decoded without a schema, as `protoc --decode_raw` does, into JSON:
//! an object per message whose keys are field numbers (`"1"`, `"2"`, ...; a repeated
//! field becomes an array), varints as numbers, fixed32/fixed64 as unsigned numbers,
//! length-delimited fields as a nested message when they parse as one (and do not read
//! as text), else as a string when they are printable UTF-8, else as base64.
//!
//! The input is untrusted and may be a prefix: nothing here panics, recursion is
//! bounded, and a field cut by the end of the capture is left out (its prefix could be
//! the first half of a secret that no rule would recognise any more); a nested message
//! cut there is decoded as far as it goes.

use base64::Engine;
use serde_json::{Map, Value};

/// How deep nested messages are guessed.
const MAX_DEPTH: u32 = 24;

/// A message decoded as far as its bytes go.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decoded {
    pub(crate) fields: Map<String, Value>,
    /// The bytes ended inside a field (only when decoding a cut message).
    pub(crate) cut: bool,
}

/// Decodes `bytes` as one message. `cut`: the bytes are a prefix of the message, so a
/// field running past their end is a cut, not an error. `None` if the bytes are not a
/// protobuf message (a bad tag or wire type, a length past the end of a whole message).
pub(crate) fn decode(bytes: &[u8], cut: bool) -> Option<Decoded> {
    decode_depth(bytes, cut, 0)
}

/// The JSON text of a whole or cut message: an object, or (not protobuf) the bytes as a
/// base64 string.
pub(crate) fn to_json(bytes: &[u8], cut: bool) -> Value {
    match decode(bytes, cut) {
        Some(d) => Value::Object(d.fields),
        None => text_or_base64(bytes),
    }
}

/// Printable UTF-8 as a string; anything else as base64 — of the bytes with their
/// credential-shaped values already masked: once in base64, no rule could see them.
fn text_or_base64(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) if is_text(s) => Value::String(s.to_string()),
        _ => {
            let masked = crate::mask::shapes::mask_bytes(b);
            let b = masked.as_deref().unwrap_or(b);
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
    }
}

fn decode_depth(bytes: &[u8], cut: bool, depth: u32) -> Option<Decoded> {
    let mut fields = Map::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some((tag, n)) = varint(&bytes[at..]) else {
            // A tag cut by the end of a prefix, or a malformed one.
            return cut.then_some(Decoded { fields, cut: true });
        };
        at += n;
        let number = tag >> 3;
        if number == 0 || number > (1 << 29) - 1 {
            return None;
        }
        let value = match tag & 7 {
            0 => match varint(&bytes[at..]) {
                Some((v, n)) => {
                    at += n;
                    Value::from(v)
                }
                None => return cut.then_some(Decoded { fields, cut: true }),
            },
            1 => match bytes.get(at..at + 8) {
                Some(b) => {
                    at += 8;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    Value::from(u64::from_le_bytes(a))
                }
                None => return cut.then_some(Decoded { fields, cut: true }),
            },
            5 => match bytes.get(at..at + 4) {
                Some(b) => {
                    at += 4;
                    Value::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                }
                None => return cut.then_some(Decoded { fields, cut: true }),
            },
            2 => {
                let (len, n) = match varint(&bytes[at..]) {
                    Some(x) => x,
                    None => return cut.then_some(Decoded { fields, cut: true }),
                };
                at += n;
                let avail = bytes.len() - at;
                match usize::try_from(len).ok().filter(|&l| l <= avail) {
                    Some(len) => {
                        let v = length_delimited(&bytes[at..at + len], depth);
                        at += len;
                        v
                    }
                    None if cut => {
                        // Cut inside this field: a nested message as far as it goes,
                        // else nothing of it.
                        let rest = &bytes[at..];
                        if let Some(d) = nested(rest, true, depth) {
                            insert(&mut fields, number, Value::Object(d.fields));
                        }
                        return Some(Decoded { fields, cut: true });
                    }
                    None => return None,
                }
            }
            // Groups (3, 4) are long deprecated; 6 and 7 do not exist.
            _ => return None,
        };
        insert(&mut fields, number, value);
    }
    Some(Decoded { fields, cut: false })
}

/// A length-delimited field: nested message, text or bytes.
fn length_delimited(b: &[u8], depth: u32) -> Value {
    if let Some(d) = nested(b, false, depth) {
        return Value::Object(d.fields);
    }
    text_or_base64(b)
}

/// `b` read as a nested message, when that is the likely reading: it parses (with at
/// least one field) and either is not text or starts with a control byte (the tag of
/// fields 1..3 is 0x08..0x1d; text rarely starts so).
fn nested(b: &[u8], cut: bool, depth: u32) -> Option<Decoded> {
    if depth + 1 >= MAX_DEPTH || b.is_empty() {
        return None;
    }
    let d = decode_depth(b, cut, depth + 1)?;
    if d.fields.is_empty() {
        return None;
    }
    let text = std::str::from_utf8(b).is_ok_and(is_text);
    (!text || b[0] < 0x20).then_some(d)
}

fn is_text(s: &str) -> bool {
    s.chars()
        .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
}

/// Adds a field; a repeated field number becomes an array of its values in wire order.
fn insert(fields: &mut Map<String, Value>, number: u64, value: Value) {
    let key = number.to_string();
    match fields.get_mut(&key) {
        Some(Value::Array(list)) => list.push(value),
        Some(first) => {
            let first = first.take();
            fields.insert(key, Value::Array(vec![first, value]));
        }
        None => {
            fields.insert(key, value);
        }
    }
}

/// A base-128 varint: (value, bytes read); `None` if cut or longer than 10 bytes.
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A tiny encoder for the tests: (field, wire value).
    enum F<'a> {
        V(u64, u64),
        I64(u64, u64),
        I32(u64, u32),
        B(u64, &'a [u8]),
    }

    fn enc_varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn enc(fields: &[F]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in fields {
            match f {
                F::V(n, v) => {
                    enc_varint(n << 3, &mut out);
                    enc_varint(*v, &mut out);
                }
                F::I64(n, v) => {
                    enc_varint(n << 3 | 1, &mut out);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                F::I32(n, v) => {
                    enc_varint(n << 3 | 5, &mut out);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                F::B(n, b) => {
                    enc_varint(n << 3 | 2, &mut out);
                    enc_varint(b.len() as u64, &mut out);
                    out.extend_from_slice(b);
                }
            }
        }
        out
    }

    #[test]
    fn decode_raw_like_protoc() {
        let inner = enc(&[F::B(1, b"nested text"), F::V(2, 7)]);
        let msg = enc(&[
            F::B(1, b"hello"),
            F::V(2, 150),
            F::V(3, u64::MAX),
            F::I64(4, 0x0102_0304_0506_0708),
            F::I32(5, 42),
            F::B(6, &inner),
            F::B(7, &[0xff, 0x00, 0x80]),
            F::V(8, 1),
            F::V(8, 2),
            F::B(8, b"three"),
            F::B(9, b""),
            F::B(20000, b"big field number"),
        ]);
        assert_eq!(
            to_json(&msg, false),
            json!({
                "1": "hello",
                "2": 150,
                "3": u64::MAX,
                "4": 0x0102_0304_0506_0708u64,
                "5": 42,
                "6": {"1": "nested text", "2": 7},
                "7": "/wCA",
                "8": [1, 2, "three"],
                "9": "",
                "20000": "big field number",
            })
        );
    }

    #[test]
    fn text_that_happens_to_parse_stays_text() {
        // "(A" is tag 5/varint 65: it parses, but it is printable text.
        let msg = enc(&[F::B(1, b"(A")]);
        assert_eq!(to_json(&msg, false), json!({"1": "(A"}));
    }

    #[test]
    fn not_protobuf_is_text_or_base64() {
        assert_eq!(to_json(b"\x07garbage", false), json!("B2dhcmJhZ2U="));
        assert_eq!(to_json(b"{\"a\": 1}", false), json!("{\"a\": 1}"));
        // A credential inside bytes is masked before they become base64.
        let mut b = b"\x07\x00key=".to_vec();
        b.extend_from_slice(b"ghp_R2d2C3poR2d2C3poR2d2C3poR2d2C3po1234\x00");
        let v = to_json(&b, false);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, b"\x07\x00key=****\x00");
        // A length past the end of a whole message.
        assert_eq!(decode(&[0x0a, 0x05, b'a'], false), None);
        assert_eq!(decode(&[0x00], false), None);
    }

    #[test]
    fn a_cut_message_keeps_its_whole_fields_and_drops_the_cut_one() {
        let inner = enc(&[F::B(1, b"first"), F::B(2, b"second-is-long")]);
        let msg = enc(&[F::V(1, 5), F::B(2, b"kept"), F::B(3, &inner)]);
        let mut seen_nested_first = false;
        for cut in 0..msg.len() {
            let d = decode(&msg[..cut], true).expect("a prefix decodes");
            assert!(d.cut || cut == 0 || d.fields.len() < 3, "{cut}");
            let text = Value::Object(d.fields.clone()).to_string();
            assert!(
                !text.contains("second-is-"),
                "a cut string shows nothing: {text}"
            );
            seen_nested_first |= d.fields.get("3") == Some(&json!({"1": "first"}));
        }
        assert!(
            seen_nested_first,
            "a cut nested message decodes as far as it goes"
        );
        let whole = decode(&msg, true).unwrap();
        assert!(!whole.cut);
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut msg = enc(&[F::V(1, 1)]);
        for _ in 0..200 {
            msg = enc(&[F::B(1, &msg)]);
        }
        let v = to_json(&msg, false);
        let mut depth = 0;
        let mut cur = &v;
        while let Some(next) = cur.get("1") {
            cur = next;
            depth += 1;
        }
        assert!(depth < 30 && cur.is_string(), "{depth}");
    }
}
