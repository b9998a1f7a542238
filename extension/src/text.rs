//! Small text decoders every stage of the reader needs, written once: percent-decoding
//! (URLs, forms, `OTEL_*` variables), JSON string unescaping (also of strings a cut left
//! unfinished), `a=b&c=d` pairs, case-insensitive header lookup and `host[:port]` splitting.
//!
//! Why here: the model, the masker, AWS recognition and the exporter each read the same
//! encodings; two copies of one decoder drift (one unescaper once turned a surrogate pair
//! into U+FFFD). This module imports nothing of the crate, so anything may import it.

/// Percent-decodes `s` (and `+` as space when `plus_is_space`), lossily: a `%` not
/// followed by two hex digits stays, bytes that are not UTF-8 become U+FFFD.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of one hex digit.
pub(crate) fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Four hex digits at `input[at..]` as a number.
fn hex4(input: &[u8], at: usize) -> Option<u32> {
    let digits = input.get(at..at + 4)?;
    digits
        .iter()
        .try_fold(0u32, |acc, &d| Some(acc << 4 | u32::from(hex_val(d)?)))
}

/// A JSON string's content, read from `input[from..]` (just after its opening quote).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct JsonString {
    /// The index after the closing quote, or `input.len()` if the input ends first.
    pub(crate) end: usize,
    /// The unescaped text (what was there, for a cut string). A surrogate pair becomes
    /// its character; a lone surrogate or bad escape becomes U+FFFD or is skipped.
    pub(crate) text: String,
    /// The closing quote was found.
    pub(crate) closed: bool,
}

/// Unescapes the JSON string whose content starts at `input[from]`.
pub(crate) fn json_string(input: &[u8], from: usize) -> JsonString {
    let mut out: Vec<u8> = Vec::new();
    let mut i = from;
    while i < input.len() {
        match input[i] {
            b'"' => {
                return JsonString {
                    end: i + 1,
                    text: String::from_utf8_lossy(&out).into_owned(),
                    closed: true,
                }
            }
            b'\\' => {
                let Some(&e) = input.get(i + 1) else {
                    i += 1;
                    continue;
                };
                i += 2;
                match e {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'u' => {
                        let (ch, used) = unicode_escape(input, i);
                        i += used;
                        if let Some(ch) = ch {
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                    }
                    other => out.push(other),
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    JsonString {
        end: input.len(),
        text: String::from_utf8_lossy(&out).into_owned(),
        closed: false,
    }
}

/// The character of a `\u` escape whose four digits start at `input[at]`, joined with a
/// following `\uDC00`-`\uDFFF` when it is a high surrogate; and how many bytes it used.
/// `None` (digits missing or bad): the escape is skipped.
fn unicode_escape(input: &[u8], at: usize) -> (Option<char>, usize) {
    let Some(hi) = hex4(input, at) else {
        return (None, 4.min(input.len() - at));
    };
    if (0xD800..0xDC00).contains(&hi)
        && input.get(at + 4) == Some(&b'\\')
        && input.get(at + 5) == Some(&b'u')
    {
        if let Some(lo) = hex4(input, at + 6).filter(|lo| (0xDC00..0xE000).contains(lo)) {
            let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            return (char::from_u32(cp), 10);
        }
    }
    (Some(char::from_u32(hi).unwrap_or('\u{FFFD}')), 4)
}

/// `a=1&b=2` pairs, percent-decoded (`+` is a space, as in forms); empty pairs skipped,
/// a pair without `=` has an empty value.
pub(crate) fn form_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// The first value of `key` in pairs (exact match).
pub(crate) fn pair_value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `k1=v1,k2=v2` (the `OTEL_EXPORTER_OTLP_HEADERS` / `OTEL_RESOURCE_ATTRIBUTES` format):
/// trimmed, percent-decoded (`+` stays); entries without `=` or with an empty key are
/// skipped.
pub(crate) fn key_values(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            let k = percent_decode(k.trim(), false);
            let v = percent_decode(v.trim(), false);
            (!k.is_empty()).then_some((k, v))
        })
        .collect()
}

/// The value of the first header with this name (case-insensitive).
pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `host[:port]` or `[v6][:port]` → host (without brackets) and port.
pub(crate) fn split_host_port(s: &str) -> (String, Option<u16>) {
    let s = s.trim();
    // Userinfo has no business in a Host header, but may be in an absolute target.
    let s = s.rsplit_once('@').map_or(s, |(_, h)| h);
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return (host.to_owned(), port);
        }
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => (host.to_owned(), Some(p)),
            Err(_) => (host.to_owned(), None),
        },
        _ => (s.to_owned(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unescape(s: &str) -> (String, bool) {
        let j = json_string(s.as_bytes(), 0);
        (j.text, j.closed)
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c", false), "a b+c");
        assert_eq!(percent_decode("a%20b+c", true), "a b c");
        assert_eq!(percent_decode("100%", true), "100%");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
        assert_eq!(percent_decode("%C3%A9", false), "é");
        assert_eq!(percent_decode("%FF", false), "\u{FFFD}");
    }

    #[test]
    fn json_escapes() {
        assert_eq!(
            unescape(r#"a\"b\u0041\n\/" tail"#),
            ("a\"bA\n/".into(), true)
        );
        assert_eq!(json_string(br#"ab"c"#, 0).end, 3);
        // Cut: what was there, not closed.
        assert_eq!(unescape(r"abc\"), ("abc".into(), false));
        assert_eq!(unescape(r"abc\u00"), ("abc".into(), false));
    }

    /// Regression: the AWS field reader's own unescaper turned a surrogate pair into
    /// U+FFFD (twice), so an emoji in a DynamoDB table name or an SQS message id came
    /// out as two replacement characters.
    #[test]
    fn a_surrogate_pair_is_one_character() {
        assert_eq!(unescape(r#"x\ud83d\ude00y""#), ("x\u{1F600}y".into(), true));
        assert_eq!(unescape(r#"\uD834\uDD1E""#), ("\u{1D11E}".into(), true));
        // A lone high surrogate is not a character.
        assert_eq!(unescape(r#"\ud83dz""#), ("\u{FFFD}z".into(), true));
        // A high surrogate followed by a non-low escape keeps both readings apart.
        assert_eq!(unescape(r#"\ud83d\u0041""#), ("\u{FFFD}A".into(), true));
    }

    #[test]
    fn pairs_and_headers() {
        let p = form_pairs("Action=Publish&&TopicArn=arn%3Aaws%3Asns&Message=a+b&flag");
        assert_eq!(pair_value(&p, "TopicArn"), Some("arn:aws:sns"));
        assert_eq!(pair_value(&p, "Message"), Some("a b"));
        assert_eq!(pair_value(&p, "flag"), Some(""));
        assert_eq!(p.len(), 4);
        assert_eq!(
            key_values(" a = 1%2C2 ,b,=x, c=d+e"),
            [("a".into(), "1,2".into()), ("c".into(), "d+e".into())]
        );
        let h = vec![("Content-Type".to_string(), "text/plain".to_string())];
        assert_eq!(header(&h, "content-type"), Some("text/plain"));
        assert_eq!(header(&h, "content-length"), None);
    }

    #[test]
    fn host_ports() {
        for (input, host, port) in [
            ("example.com", "example.com", None),
            ("example.com:8080", "example.com", Some(8080)),
            ("[::1]:9000", "::1", Some(9000)),
            ("[::1]", "::1", None),
            ("::1", "::1", None),
            ("h:notaport", "h", None),
            ("user@h:1", "h", Some(1)),
        ] {
            assert_eq!(split_host_port(input), (host.to_owned(), port), "{input}");
        }
    }
}
