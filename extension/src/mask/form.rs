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

/// `a=b&c=d` with no whitespace: a form body or a query string. Decides whether an
/// untyped or `text/plain` body, or the text of a JSON string, is masked as a form.
///
/// Base64 is not a form whatever its letters spell (else its "name" is searched for
/// `key`, `auth`, ... and its empty "value" masked): a form's names hold no `/`, `;`
/// or `,` (a form encoder percent-encodes them; base64 and a data URL such as
/// `data:image/png;base64,...` hold them), and some pair has a value beyond `=`
/// (bare base64 ends in `=` or `==` padding, and that is all after its one `=`).
pub(super) fn looks_like_form(s: &str) -> bool {
    if s.bytes()
        .any(|b| b.is_ascii_whitespace() || b == b'"' || b == b'{')
    {
        return false;
    }
    let mut has_value = false;
    for pair in s.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name.bytes().any(|b| matches!(b, b'/' | b';' | b',')) {
            return false;
        }
        has_value |= value.bytes().any(|b| b != b'=');
    }
    has_value
}
