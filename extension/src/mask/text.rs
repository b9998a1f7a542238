//! Text bodies (`text/plain`, and any body of no other format whose bytes are text):
//! header-like lines (`Authorization: Bearer ...`, `X-Api-Key: ...`, `password: ...`)
//! masked as headers are, and `key=value` pairs whose key matches the key rule.
//!
//! Why: logs, e-mails, `.env` files and hand-written protocols carry credentials in
//! these two shapes, with no structure a format masker could follow. A line cut by the
//! end of the capture is masked as far as it goes.

use std::sync::OnceLock;

use regex::Regex;

use super::rules::{Masker, MASK};

/// `Name: value` at the start of a line (the name optionally quoted, indented).
fn header_line() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"^([ \t]*"?)([A-Za-z0-9][A-Za-z0-9_.-]*)("?[ \t]*:[ \t]*)(.*?)(\r?)$"#)
            .expect("header line pattern")
    })
}

/// `key=value`, the value quoted (maybe cut) or running to whitespace, `&` or `;`.
fn key_value() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r#"([A-Za-z0-9_.-]+)([ \t]*=[ \t]*)("(?:[^"\\]|\\.)*\\?(?:"|$)|'[^']*(?:'|$)|[^\s&;"']+)"#,
        )
        .expect("key=value pattern")
    })
}

/// Bytes that hold text: UTF-8 (a character cut by the end allowed) without control
/// characters other than tab, line breaks and form feed.
pub(super) fn is_textual(bytes: &[u8]) -> bool {
    let valid = match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => {
            // A character cut by the end of the capture.
            std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or("")
        }
        Err(_) => return false,
    };
    !valid.is_empty()
        && !valid
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c'))
}

impl Masker {
    /// Masks header-like lines and sensitive `key=value` pairs in text. `None` if
    /// nothing changed (or the bytes are not text).
    pub(super) fn mask_text(&self, input: &[u8]) -> Option<Vec<u8>> {
        let (text, tail) = match std::str::from_utf8(input) {
            Ok(s) => (s, &[][..]),
            Err(e) if e.error_len().is_none() => (
                std::str::from_utf8(&input[..e.valid_up_to()]).ok()?,
                &input[e.valid_up_to()..],
            ),
            Err(_) => return None,
        };
        let mut changed = false;
        let mut out = String::with_capacity(text.len());
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                out.push('\n');
            }
            match self.mask_line(line) {
                Some(m) => {
                    out.push_str(&m);
                    changed = true;
                }
                None => out.push_str(line),
            }
        }
        if !changed {
            return None;
        }
        let mut out = out.into_bytes();
        out.extend_from_slice(tail);
        Some(out)
    }

    fn mask_line(&self, line: &str) -> Option<String> {
        // Both shapes need their separator: most lines of an ordinary body have neither.
        if !line.contains([':', '=']) {
            return None;
        }
        if let Some(c) = header_line().captures(line) {
            let (name, value) = (&c[2], &c[4]);
            if let Some(masked) = self.mask_header(name, value) {
                return Some(format!("{}{name}{}{masked}{}", &c[1], &c[3], &c[5]));
            }
        }
        self.mask_key_values(line)
    }

    /// `key=value` pairs in a line of text with a sensitive key.
    fn mask_key_values(&self, line: &str) -> Option<String> {
        if !line.contains('=') {
            return None;
        }
        let mut out = String::with_capacity(line.len());
        let mut at = 0;
        for c in key_value().captures_iter(line) {
            let (Some(key), Some(value)) = (c.get(1), c.get(3)) else {
                continue;
            };
            if !self.is_sensitive_param(key.as_str()) || value.as_str() == MASK {
                continue;
            }
            out.push_str(&line[at..value.start()]);
            out.push_str(MASK);
            at = value.end();
        }
        if at == 0 {
            return None;
        }
        out.push_str(&line[at..]);
        Some(out)
    }
}
