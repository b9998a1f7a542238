//! XML bodies (AWS query-protocol responses, S3, SOAP): sensitive elements with all they
//! hold, and sensitive attributes. A document cut anywhere is masked as far as it goes.

use super::rules::{Masker, MASK};

impl Masker {
    /// Masks XML (AWS query-protocol responses, SOAP, ...): the text of every element
    /// whose local name is sensitive — and of everything inside it, as JSON masks a
    /// sensitive key's whole value (`<Credentials>` holds `<SecretAccessKey>`) — and the
    /// values of sensitive attributes. Byte for byte otherwise; a document cut anywhere
    /// is masked as far as it goes. `None` if nothing changed.
    pub fn mask_xml(&self, input: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(input.len());
        let mut changed = false;
        // Open elements: is each one sensitive (itself or by an ancestor)?
        let mut open: Vec<bool> = Vec::new();
        let mut i = 0;
        while i < input.len() {
            let inside_secret = open.last().copied().unwrap_or(false);
            if input[i] != b'<' {
                let end = memchr_from(input, i, b'<');
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
                out.extend_from_slice(&rest[..end]);
                open.pop();
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
                    open.push(inside_secret || (!envelope && self.is_sensitive_param(local)));
                }
                i += end;
            }
        }
        changed.then_some(out)
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
