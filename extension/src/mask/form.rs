//! `name=value` pairs: query strings and `application/x-www-form-urlencoded` bodies.
//! Names are compared after percent-decoding; values of sensitive names become [`MASK`],
//! and so do the values of name/value pairs spelled as form arrays (AWS query protocol:
//! `Parameters.member.1.ParameterKey=DbPassword&Parameters.member.1.ParameterValue=...`,
//! `Attributes.entry.1.key=`/`.value=`, `MessageAttribute.1.Name=`/`.Value.StringValue=`):
//! a value member is masked when its sibling name member's value matches the key rule.

use super::rules::{is_pair_name, is_pair_value, Masker, MASK};
use crate::text::percent_decode;

/// `prefix.member` → (`prefix`, `member`, what follows `member`): the last
/// `.`-separated segment, or — for a value member — the one before `.StringValue` and
/// the like (`MessageAttribute.1.Value.StringValue`).
fn split_member(name: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut end = name.len();
    // At most two trailing segments are looked at: `P.Value` and `P.Value.X`.
    for _ in 0..2 {
        let Some(dot) = name[..end].rfind('.') else {
            break;
        };
        out.push((&name[..dot], &name[dot + 1..end]));
        end = dot;
    }
    out
}

impl Masker {
    /// Masks the values of sensitive `name=value` pairs separated by `sep` (a query
    /// string, a form body). Names are compared after percent-decoding. `None` if
    /// nothing changed.
    pub fn mask_pairs(&self, s: &str, sep: char) -> Option<String> {
        let mut changed = false;
        let mut out = String::with_capacity(s.len());
        // Prefixes of form-array pairs whose name member names a secret.
        let mut secret_pairs: Vec<String> = Vec::new();
        for pair in s.split(sep) {
            let Some((k, v)) = pair.split_once('=') else {
                continue;
            };
            let k = percent_decode(k, true);
            if let Some(&(prefix, member)) = split_member(k.trim()).first() {
                if is_pair_name(member) && self.is_sensitive_key(percent_decode(v, true).trim()) {
                    secret_pairs.push(prefix.to_string());
                }
            }
        }
        let pair_secret = |k: &str| {
            let members = split_member(k.trim());
            members.iter().enumerate().any(|(i, (p, m))| {
                // `P.Value.StringValue` is the value; `P.Value.DataType` is not.
                let tail_is_value = i == 0 || members[0].1.to_ascii_lowercase().ends_with("value");
                tail_is_value && is_pair_value(m) && secret_pairs.iter().any(|s| s == p)
            })
        };
        for (i, pair) in s.split(sep).enumerate() {
            if i > 0 {
                out.push(sep);
            }
            match pair.split_once('=') {
                Some((k, v))
                    if self.is_sensitive_param(percent_decode(k, true).trim())
                        || (!secret_pairs.is_empty() && pair_secret(&percent_decode(k, true))) =>
                {
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
