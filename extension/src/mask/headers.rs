//! Header values: credentials in `Authorization`, cookie values, URLs in `Referer` and
//! `Location`, and any header whose name is sensitive.

use super::rules::{Masker, MASK};

/// Headers masked whatever the key pattern says (lower-case).
const ALWAYS_MASKED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-amz-security-token",
    "x-api-key",
];

/// Headers whose values are URLs: their query and userinfo are masked like the request's.
const URL_HEADERS: &[&str] = &["referer", "location", "content-location"];

impl Masker {
    /// The masked value of one header, or `None` if it stays as is.
    pub fn mask_header(&self, name: &str, value: &str) -> Option<String> {
        let lname = name.to_ascii_lowercase();
        let masked = match lname.as_str() {
            "authorization" | "proxy-authorization" => mask_authorization(value),
            "cookie" => mask_cookie(value),
            "set-cookie" => mask_set_cookie(value),
            n if URL_HEADERS.contains(&n) => return self.mask_url(value),
            n if ALWAYS_MASKED_HEADERS.contains(&n) || self.is_sensitive_key(name) => {
                MASK.to_string()
            }
            _ => return None,
        };
        (masked != value).then_some(masked)
    }
}

/// `Bearer abc` → `Bearer ****`; SigV4 keeps the algorithm and `SignedHeaders`, never
/// the key id (in `Credential`) nor the signature.
fn mask_authorization(value: &str) -> String {
    let value = value.trim();
    let Some((scheme, rest)) = value.split_once(' ') else {
        return MASK.to_string();
    };
    if scheme.contains('=') {
        return MASK.to_string();
    }
    if scheme.starts_with("AWS4-") {
        let mut parts = vec![format!("{scheme} Credential={MASK}")];
        for p in rest.split(',') {
            if let Some(sh) = p.trim().strip_prefix("SignedHeaders=") {
                parts.push(format!("SignedHeaders={sh}"));
            }
        }
        parts.push(format!("Signature={MASK}"));
        return parts.join(", ");
    }
    format!("{scheme} {MASK}")
}

/// `a=1; b=2` → `a=****; b=****`: names are kept, values are not.
fn mask_cookie(value: &str) -> String {
    value
        .split(';')
        .map(|c| match c.split_once('=') {
            Some((k, _)) => format!("{k}={MASK}"),
            None => MASK.to_string(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// `id=abc; Path=/; HttpOnly` → `id=****; Path=/; HttpOnly`.
fn mask_set_cookie(value: &str) -> String {
    let (first, attrs) = match value.find(';') {
        Some(i) => value.split_at(i),
        None => (value, ""),
    };
    let first = match first.split_once('=') {
        Some((k, _)) => format!("{k}={MASK}"),
        None => MASK.to_string(),
    };
    first + attrs
}
