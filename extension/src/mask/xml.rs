//! XML bodies (AWS query-protocol responses, S3, SOAP): sensitive elements with all they
//! hold, sensitive attributes, and name/value siblings (`<Name>DbPassword</Name>
//! <Value>...</Value>`, `<ParameterKey>`/`<ParameterValue>`: the value is masked when
//! the key rule matches the name's text). A document cut anywhere is masked as far as
//! it goes.

use std::ops::Range;

use super::rules::{is_pair_name, is_pair_value, Masker, MASK};

/// An open element.
#[derive(Debug, Default)]
struct Open {
    /// Its content is masked (its own name, an ancestor's, or its pair's name).
    secret: bool,
    /// A name member of a name/value pair: its text, collected.
    pair_name: Option<String>,
    /// A value member of a pair not known secret: where its content starts in `out`.
    pair_value_at: Option<usize>,
    /// A child name member named a secret: value children are masked.
    pair_secret: bool,
    /// Contents of value children written before their name was seen (ranges in `out`).
    pair_values: Vec<Range<usize>>,
}

impl Masker {
    /// Masks XML (AWS query-protocol responses, SOAP, ...): the text of every element
    /// whose local name is sensitive — and of everything inside it, as JSON masks a
    /// sensitive key's whole value (`<Credentials>` holds `<SecretAccessKey>`) — and the
    /// values of sensitive attributes. Byte for byte otherwise; a document cut anywhere
    /// is masked as far as it goes. `None` if nothing changed.
    pub fn mask_xml(&self, input: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(input.len());
        let mut changed = false;
        let mut open: Vec<Open> = Vec::new();
        // Ranges of `out` to become MASK at the end (pair values seen before their name).
        let mut to_mask: Vec<Range<usize>> = Vec::new();
        let mut i = 0;
        while i < input.len() {
            let inside_secret = open.last().is_some_and(|o| o.secret);
            if input[i] != b'<' {
                let end = memchr_from(input, i, b'<');
                if let Some(name) = open.last_mut().and_then(|o| o.pair_name.as_mut()) {
                    name.push_str(&String::from_utf8_lossy(&input[i..end]));
                }
                if inside_secret && input[i..end].iter().any(|b| !b.is_ascii_whitespace()) {
                    out.extend_from_slice(MASK.as_bytes());
                    changed = true;
                } else {
                    out.extend_from_slice(&input[i..end]);
                }
                i = end;
                continue;
            }
            let rest = &input[i..];
            let skip_to = |pat: &[u8], from: usize| -> usize {
                rest[from..]
                    .windows(pat.len())
                    .position(|w| w == pat)
                    .map_or(rest.len(), |p| from + p + pat.len())
            };
            if rest.starts_with(b"<![CDATA[") {
                let end = skip_to(b"]]>", 9);
                if let Some(name) = open.last_mut().and_then(|o| o.pair_name.as_mut()) {
                    let text = &rest[9..end];
                    let text = text.strip_suffix(b"]]>").unwrap_or(text);
                    name.push_str(&String::from_utf8_lossy(text));
                }
                if inside_secret {
                    out.extend_from_slice(MASK.as_bytes());
                    changed = true;
                } else {
                    out.extend_from_slice(&rest[..end]);
                }
                i += end;
            } else if rest.starts_with(b"<!--")
                || rest.starts_with(b"<?")
                || rest.starts_with(b"<!")
            {
                let end = if rest.starts_with(b"<!--") {
                    skip_to(b"-->", 4)
                } else {
                    skip_to(b">", 2)
                };
                out.extend_from_slice(&rest[..end]);
                i += end;
            } else if rest.starts_with(b"</") {
                let end = skip_to(b">", 2);
                let closed = open.pop();
                if let Some(closed) = closed {
                    let parent = open.last_mut();
                    if let (Some(at), Some(parent)) = (closed.pair_value_at, parent) {
                        if at == out.len() {
                            // Empty: nothing to hide.
                        } else if parent.pair_secret {
                            to_mask.push(at..out.len());
                        } else {
                            parent.pair_values.push(at..out.len());
                        }
                    } else if let (Some(name), Some(parent)) = (closed.pair_name, open.last_mut()) {
                        if self.is_sensitive_key(name.trim()) {
                            parent.pair_secret = true;
                            to_mask.append(&mut parent.pair_values);
                        }
                    }
                }
                out.extend_from_slice(&rest[..end]);
                i += end;
            } else {
                let (end, self_closing, tag_changed) = self.mask_xml_tag(rest, &mut out);
                changed |= tag_changed;
                let name_end = rest[1..]
                    .iter()
                    .position(|&b| b.is_ascii_whitespace() || b == b'/' || b == b'>')
                    .map_or(rest.len(), |p| p + 1);
                let name = String::from_utf8_lossy(&rest[1..name_end]);
                let local = name.rsplit(':').next().unwrap_or("");
                if !self_closing {
                    // Operation envelopes (`CreateAccessKeyResponse`, `AssumeRoleResult`:
                    // AWS query protocol) hold the whole answer: their own name does not
                    // make it secret; what is inside is judged by its own names.
                    let envelope = ["response", "result"]
                        .iter()
                        .any(|e| local.to_ascii_lowercase().ends_with(e));
                    let pair_secret = open.last().is_some_and(|o| o.pair_secret);
                    let secret = inside_secret
                        || (!envelope && self.is_sensitive_param(local))
                        || (pair_secret && is_pair_value(local));
                    let mut element = Open {
                        secret,
                        ..Open::default()
                    };
                    if !secret && is_pair_name(local) {
                        element.pair_name = Some(String::new());
                    } else if !secret && is_pair_value(local) {
                        element.pair_value_at = Some(out.len());
                    }
                    open.push(element);
                }
                i += end;
            }
        }
        // Cut before a pair's name was seen (or finished): whether it named a secret is
        // unknown, and the values are masked as if it did.
        for o in &mut open {
            to_mask.append(&mut o.pair_values);
        }
        if let Some(at) = open.last().and_then(|o| o.pair_value_at) {
            if at < out.len() {
                to_mask.push(at..out.len());
            }
        }
        if to_mask.is_empty() {
            return changed.then_some(out);
        }
        to_mask.sort_by_key(|r| r.start);
        let mut masked = Vec::with_capacity(out.len());
        let mut at = 0;
        for r in to_mask {
            if r.start < at {
                continue;
            }
            masked.extend_from_slice(&out[at..r.start]);
            masked.extend_from_slice(MASK.as_bytes());
            at = r.end;
        }
        masked.extend_from_slice(&out[at..]);
        Some(masked)
    }

    /// Copies the start tag at the front of `tag` into `out`, masking the values of
    /// sensitive attributes. Returns (its length, self-closing, changed).
    fn mask_xml_tag(&self, tag: &[u8], out: &mut Vec<u8>) -> (usize, bool, bool) {
        let n = tag.len();
        let is_space = |b: u8| b.is_ascii_whitespace();
        let mut changed = false;
        // `<` and the element name.
        let mut i = 1;
        while i < n && !is_space(tag[i]) && tag[i] != b'/' && tag[i] != b'>' {
            i += 1;
        }
        out.extend_from_slice(&tag[..i]);
        while i < n {
            match tag[i] {
                b'>' => {
                    out.push(b'>');
                    return (i + 1, tag[i - 1] == b'/', changed);
                }
                b if is_space(b) || b == b'/' => {
                    out.push(b);
                    i += 1;
                }
                _ => {
                    // An attribute: name, optional `= value` (quoted or not).
                    let name_start = i;
                    while i < n && !is_space(tag[i]) && !matches!(tag[i], b'=' | b'>' | b'/') {
                        i += 1;
                    }
                    let name = String::from_utf8_lossy(&tag[name_start..i]).into_owned();
                    let local = name.rsplit(':').next().unwrap_or("");
                    let secret = !local.is_empty() && self.is_sensitive_param(local);
                    out.extend_from_slice(&tag[name_start..i]);
                    let mut j = i;
                    while j < n && is_space(tag[j]) {
                        j += 1;
                    }
                    if j >= n || tag[j] != b'=' {
                        continue;
                    }
                    j += 1;
                    while j < n && is_space(tag[j]) {
                        j += 1;
                    }
                    out.extend_from_slice(&tag[i..j]);
                    let (value_start, value_end, next) = match tag.get(j) {
                        Some(&q) if q == b'"' || q == b'\'' => {
                            out.push(q);
                            let close = tag[j + 1..]
                                .iter()
                                .position(|&b| b == q)
                                .map_or(n, |p| j + 1 + p);
                            (j + 1, close, (close + 1).min(n))
                        }
                        _ => {
                            let end = tag[j..]
                                .iter()
                                .position(|&b| is_space(b) || b == b'>')
                                .map_or(n, |p| j + p);
                            (j, end, end)
                        }
                    };
                    if secret && value_end > value_start {
                        out.extend_from_slice(MASK.as_bytes());
                        changed = true;
                    } else {
                        out.extend_from_slice(&tag[value_start..value_end]);
                    }
                    out.extend_from_slice(&tag[value_end..next]);
                    i = next;
                }
            }
        }
        (n, false, changed)
    }
}

pub(super) fn looks_like_xml(bytes: &[u8]) -> bool {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    start.is_some_and(|s| {
        bytes[s] == b'<'
            && bytes
                .get(s + 1)
                .is_some_and(|&c| c == b'?' || c == b'!' || c.is_ascii_alphabetic())
    })
}

/// Index of the first `byte` at or after `from`, or the end.
fn memchr_from(input: &[u8], from: usize, byte: u8) -> usize {
    input[from..]
        .iter()
        .position(|&b| b == byte)
        .map_or(input.len(), |p| from + p)
}
