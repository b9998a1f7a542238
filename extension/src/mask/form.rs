//! `name=value` pairs: query strings and `application/x-www-form-urlencoded` bodies.
//! Names are compared after percent-decoding; values of sensitive names become [`MASK`].

use super::rules::{Masker, MASK};
use crate::text::percent_decode;

impl Masker {
    /// Masks the values of sensitive `name=value` pairs separated by `sep` (a query
    /// string, a form body). Names are compared after percent-decoding. `None` if
    /// nothing changed.
    pub fn mask_pairs(&self, s: &str, sep: char) -> Option<String> {
        let mut changed = false;
        let mut out = String::with_capacity(s.len());
        for (i, pair) in s.split(sep).enumerate() {
            if i > 0 {
                out.push(sep);
            }
            match pair.split_once('=') {
                Some((k, v)) if self.is_sensitive_param(percent_decode(k, true).trim()) => {
                    out.push_str(k);
                    out.push('=');
                    out.push_str(MASK);
                    changed |= v != MASK;
                }
                _ => out.push_str(pair),
            }
        }
        changed.then_some(out)
    }

    pub(super) fn mask_form(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let s = String::from_utf8_lossy(bytes);
        self.mask_pairs(&s, '&').map(String::into_bytes)
    }
}

/// `a=b&c=d` with no whitespace: a form body or a query string.
pub(super) fn looks_like_form(s: &str) -> bool {
    !s.is_empty()
        && s.contains('=')
        && !s
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b == b'"' || b == b'{')
}
