//! `multipart/form-data` and `multipart/mixed` bodies: split by their boundary, each
//! part masked on its own.
//!
//! A part's `Content-Disposition` name is a key for the key rule (a sensitive name: the
//! part's content is masked whole), its headers are masked as headers, its content by
//! its own content type (JSON, form, XML, GraphQL, text, a nested multipart); a file
//! part whose content is not text is shown as its name, filename, type and size only.
//! A body cut by the end of the capture: the parts before the cut are masked, the cut
//! part as far as it goes.

use super::rules::{Masker, MASK};
use super::text::is_textual;

/// How deep multiparts inside multiparts are followed.
const MAX_DEPTH: u32 = 4;

/// The `boundary` parameter of a content type.
fn boundary(content_type: &str) -> Option<String> {
    let lower = content_type.to_ascii_lowercase();
    let at = lower.find("boundary=")? + "boundary=".len();
    let rest = &content_type[at..];
    let b = match rest.strip_prefix('"') {
        Some(q) => q.split('"').next().unwrap_or(""),
        None => rest.split([';', ' ', '\t']).next().unwrap_or(""),
    };
    (!b.is_empty()).then(|| b.to_string())
}

/// A parameter of a `Content-Disposition` value (`name`, `filename`).
fn disposition_param(value: &str, param: &str) -> Option<String> {
    for p in value.split(';').skip(1) {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case(param) {
            let v = v.trim();
            return Some(
                v.strip_prefix('"')
                    .map_or(v, |v| v.trim_end_matches('"'))
                    .to_string(),
            );
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

impl Masker {
    /// Masks a multipart body part by part. `None` if nothing changed (or there is no
    /// boundary).
    pub(super) fn mask_multipart(
        &self,
        input: &[u8],
        content_type: &str,
        depth: u32,
    ) -> Option<Vec<u8>> {
        if depth >= MAX_DEPTH {
            return None;
        }
        let delim = format!("--{}", boundary(content_type)?).into_bytes();
        // The first delimiter: at the start or after a line break.
        let mut at = if input.starts_with(&delim) {
            0
        } else {
            find(input, &[b"\n".as_slice(), &delim].concat(), 0)? + 1
        };
        let mut out = Vec::with_capacity(input.len());
        out.extend_from_slice(&input[..at]);
        let mut changed = false;
        loop {
            // `at` is at a delimiter (or a cut prefix of one).
            let after = (at + delim.len()).min(input.len());
            out.extend_from_slice(&input[at..after]);
            if input[after..].starts_with(b"--") || after == input.len() {
                out.extend_from_slice(&input[after..]);
                break;
            }
            // The rest of the delimiter line.
            let line_end = find(input, b"\n", after).map_or(input.len(), |p| p + 1);
            out.extend_from_slice(&input[after..line_end]);
            let next = find(input, &[b"\n".as_slice(), &delim].concat(), line_end);
            // The part runs to the line break before the next delimiter (or the end).
            let (part_end, next_at) = match next {
                Some(n) => {
                    let end = if n > line_end && input[n - 1] == b'\r' {
                        n - 1
                    } else {
                        n
                    };
                    (end.max(line_end), Some(n + 1))
                }
                None => (input.len(), None),
            };
            let part = &input[line_end..part_end];
            match self.mask_part(part, depth) {
                Some(m) => {
                    out.extend_from_slice(&m);
                    changed = true;
                }
                None => out.extend_from_slice(part),
            }
            match next_at {
                Some(n) => {
                    out.extend_from_slice(&input[part_end..n]);
                    at = n;
                }
                None => break,
            }
        }
        changed.then_some(out)
    }

    /// One part: its headers, then its content.
    fn mask_part(&self, part: &[u8], depth: u32) -> Option<Vec<u8>> {
        let (head_end, body_start) = match find(part, b"\r\n\r\n", 0) {
            Some(p) => (p, p + 4),
            None => match find(part, b"\n\n", 0) {
                Some(p) => (p, p + 2),
                // Cut inside the headers: there is no content yet.
                None => (part.len(), part.len()),
            },
        };
        let head = String::from_utf8_lossy(&part[..head_end]);
        let mut changed = false;
        let mut out = Vec::with_capacity(part.len());
        let (mut name, mut filename, mut content_type) = (None, None, None);
        for (i, line) in head.split('\n').enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            let (line, cr) = match line.strip_suffix('\r') {
                Some(l) => (l, "\r"),
                None => (line, ""),
            };
            let Some((k, v)) = line.split_once(':') else {
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(cr.as_bytes());
                continue;
            };
            let value = v.trim();
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                name = disposition_param(value, "name");
                filename = disposition_param(value, "filename");
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(value.to_string());
            }
            match self.mask_header(k.trim(), value) {
                Some(m) => {
                    out.extend_from_slice(format!("{k}: {m}").as_bytes());
                    changed = true;
                }
                None => out.extend_from_slice(line.as_bytes()),
            }
            out.extend_from_slice(cr.as_bytes());
        }
        out.extend_from_slice(&part[head_end..body_start]);
        let content = &part[body_start..];
        if content.is_empty() {
            return changed.then_some(out);
        }
        let masked = if name.as_deref().is_some_and(|n| self.is_sensitive_param(n)) {
            Some(MASK.as_bytes().to_vec())
        } else if filename.is_some() && !is_textual(content) {
            Some(format!("[file content: {} bytes, not shown]", content.len()).into_bytes())
        } else {
            self.mask_format(content, content_type.as_deref(), depth + 1)
        };
        match masked {
            Some(m) => {
                out.extend_from_slice(&m);
                changed = true;
            }
            None => out.extend_from_slice(content),
        }
        changed.then_some(out)
    }
}
