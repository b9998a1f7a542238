//! Value-shape masking: values that look like credentials become [`MASK`] whatever key
//! they sit under.
//!
//! Why: key-name rules protect `{"password": ...}`, but a gRPC message decoded without
//! a schema has field numbers for keys, a `text/plain` body has no keys at all, and an
//! AWS key pair under `{"a": ..., "b": ...}` slips past every name rule. These rules
//! look at the value itself. They are one rule set, applied by the [`Masker`] to every
//! body (after the format's own key rules, whatever the format — none included), to
//! header and trailer values, path, query and error, and by `grpc/` to gRPC status
//! messages and to bytes it shows as base64.
//!
//! Each rule is a shape with a fixed prefix or structure that random data or ordinary
//! identifiers essentially never take (the false-positive measurement over a corpus of
//! ordinary payloads is the test `ordinary_payloads_stay_readable`). A token cut by the
//! end of a captured prefix is masked as far as it goes: the length a rule asks for is
//! waived when the match runs into the end of the input.
//!
//! The rules (README "Value shapes" lists them for users):
//! - JWT: `eyJ<b64url>.eyJ<b64url>[.<b64url>]` (a JSON header and payload);
//! - AWS access key id: `AKIA`/`ASIA` + 16 of `[A-Z0-9]`; and a 40-character
//!   `[A-Za-z0-9/+]` token with upper and lower case letters within 256 bytes of one
//!   (the secret access key beside its id);
//! - PEM private key: `-----BEGIN ... PRIVATE KEY-----` to its `END` line (or the end of
//!   the input);
//! - `Bearer <token>` / `Basic <token>`: the credential after the scheme (a Bearer token
//!   of 8+ characters holding a digit, or 16+ of mixed case; a Basic token that decodes
//!   to `user:password`);
//! - token prefixes: GitHub `ghp_ gho_ ghu_ ghs_ ghr_` (+36) and `github_pat_` (+22..),
//!   Slack `xoxa- xoxb- xoxp- xoxr- xoxs- xoxe-` (+10..), Stripe `sk_live_ rk_live_
//!   sk_test_ rk_test_` (+10..), Google API keys `AIza` (+35).

use std::ops::Range;
use std::sync::OnceLock;

use base64::Engine;
use regex::bytes::Regex;

use super::rules::{Masker, MASK};
use crate::exchange::Exchange;

/// How far (bytes, either side) from an access key id a 40-character token is taken for
/// its secret access key.
const SECRET_KEY_WINDOW: usize = 256;

/// Bytes that continue a token (base64, base64url): a shape with one of them right
/// before or after it is part of something longer (an image's base64, a hash).
fn continues(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+' | b'/')
}

/// Does the match starting at `start` stand at the start of a token? A JSON or C
/// escape (`\n`, `\t`, `\r`) before it counts as a separator.
fn starts_token(input: &[u8], start: usize) -> bool {
    match start.checked_sub(1).map(|p| input[p]) {
        None => true,
        Some(b'n' | b't' | b'r') if start >= 2 && input[start - 2] == b'\\' => true,
        Some(b) => !continues(b),
    }
}

/// One shape: a pattern, and what part of a match is the secret.
struct Shape {
    re: Regex,
    /// The regex group holding the secret (0: the whole match).
    group: usize,
    /// Fewest bytes of the secret group for a match to count, unless it runs into the
    /// end of the input (a cut token).
    min_len: usize,
    /// An extra check on the secret bytes.
    check: fn(&[u8]) -> bool,
    /// The match must be a whole token (nothing token-like right before or after it).
    whole_token: bool,
}

fn any(_: &[u8]) -> bool {
    true
}

/// A JWT has a payload after its header (a header alone is only cut at the end).
fn jwt(t: &[u8]) -> bool {
    t.windows(4).any(|w| w == b".eyJ")
}

/// A Bearer credential: random tokens hold a digit, or are long and of mixed case;
/// "Bearer authentication" is prose.
fn bearer_token(t: &[u8]) -> bool {
    let digit = t.iter().any(u8::is_ascii_digit);
    let upper = t.iter().any(u8::is_ascii_uppercase);
    let lower = t.iter().any(u8::is_ascii_lowercase);
    digit || (t.len() >= 16 && upper && lower)
}

/// A Basic credential is base64 of `user:password`.
fn basic_token(t: &[u8]) -> bool {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(t)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(t));
    match decoded {
        Ok(d) => d.contains(&b':') && d.iter().all(|&b| b >= 0x20 && b != 0x7f),
        // A cut token: the rule's end-of-input exception decides.
        Err(_) => false,
    }
}

fn shapes() -> &'static [Shape] {
    static SHAPES: OnceLock<Vec<Shape>> = OnceLock::new();
    SHAPES.get_or_init(|| {
        let shape = |re: &str, group, min_len, check| Shape {
            // The patterns are constants, checked by the unit tests.
            re: Regex::new(re).expect("value-shape pattern"),
            group,
            min_len,
            check,
            whole_token: group == 0,
        };
        vec![
            // JWT (JWS compact): header and payload are base64url JSON objects.
            shape(
                r"eyJ[A-Za-z0-9_-]{6,}(?:\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?)?",
                0,
                12,
                jwt,
            ),
            shape(r"(?:AKIA|ASIA)[A-Z0-9]{0,16}", 0, 20, any),
            Shape {
                whole_token: false,
                ..shape(
                    r"(?s)-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----|\z)",
                    0,
                    0,
                    any,
                )
            },
            shape(
                r"(?:Bearer|bearer|BEARER)(?:\s|%20|\+)+([A-Za-z0-9._~+/=-]+)",
                1,
                8,
                bearer_token,
            ),
            shape(
                r"(?:Basic|basic|BASIC)(?:\s|%20|\+)+([A-Za-z0-9+/=]+)",
                1,
                8,
                basic_token,
            ),
            shape(r"gh[pousr]_[A-Za-z0-9]{0,36}", 0, 40, any),
            shape(r"github_pat_[A-Za-z0-9_]*", 0, 33, any),
            shape(r"xox[abprse]-[A-Za-z0-9-]*", 0, 15, any),
            shape(r"[sr]k_(?:live|test)_[A-Za-z0-9]*", 0, 18, any),
            shape(r"AIza[0-9A-Za-z_-]{0,35}", 0, 39, any),
        ]
    })
}

fn aws_secret_candidate() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"[A-Za-z0-9/+]{40}").expect("aws secret pattern"))
}

/// The literal every shape's match starts with, one pattern: an input without any of
/// them holds no credential-shaped value (and the AWS secret key is only looked for
/// beside a key id), so most values (a header, a path, an ordinary body) take one
/// search instead of one per shape. Keep in step with [`shapes`]: the test
/// `every_shape_starts_with_a_prefilter_literal` checks it on each rule's examples.
fn prefilter() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"eyJ|AKIA|ASIA|-----BEGIN |Bearer|bearer|BEARER|Basic|basic|BASIC|gh[pousr]_|github_pat_|xox[abprse]-|[sr]k_(?:live|test)_|AIza",
        )
        .expect("value-shape prefilter")
    })
}

/// The byte ranges of `input` that hold credential-shaped values, sorted and merged.
pub(crate) fn find(input: &[u8]) -> Vec<Range<usize>> {
    if !prefilter().is_match(input) {
        return Vec::new();
    }
    find_unfiltered(input)
}

/// [`find`] without the prefilter: every shape's pattern run over `input`.
fn find_unfiltered(input: &[u8]) -> Vec<Range<usize>> {
    let mut found: Vec<Range<usize>> = Vec::new();
    let mut key_ids: Vec<Range<usize>> = Vec::new();
    for (i, shape) in shapes().iter().enumerate() {
        for caps in shape.re.captures_iter(input) {
            let (Some(whole), Some(secret)) = (caps.get(0), caps.get(shape.group)) else {
                continue;
            };
            // A token starts where nothing token-like stands before it, and ends where
            // nothing follows (or at the end of the input: a cut token).
            let at_end = secret.end() == input.len();
            if shape.whole_token
                && (!starts_token(input, whole.start())
                    || input.get(whole.end()).is_some_and(|&b| continues(b)))
            {
                continue;
            }
            let len = secret.end() - secret.start();
            if !at_end && (len < shape.min_len || !(shape.check)(secret.as_bytes())) {
                continue;
            }
            if len == 0 {
                continue;
            }
            if i == 1 {
                key_ids.push(secret.range());
            }
            found.push(secret.range());
        }
    }
    // The secret access key beside an access key id (one that starts within the
    // window), and one cut by the end of the input there.
    for id in &key_ids {
        let from = id.start.saturating_sub(SECRET_KEY_WINDOW);
        let to = (id.end + SECRET_KEY_WINDOW + 40).min(input.len());
        for m in aws_secret_candidate().find_iter(&input[from..to]) {
            let (s, e) = (from + m.start(), from + m.end());
            let before = s.checked_sub(1).map(|p| input[p]);
            let after = input.get(e).copied();
            let part_of_key = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+');
            let t = m.as_bytes();
            let mixed =
                t.iter().any(u8::is_ascii_uppercase) && t.iter().any(u8::is_ascii_lowercase);
            // `=` may stand before (`KEY=...`), not after (base64 padding: a longer value).
            if !before.is_some_and(part_of_key)
                && !after.is_some_and(|b| part_of_key(b) || b == b'=')
                && mixed
            {
                found.push(s..e);
            }
        }
        if to == input.len() {
            let run = input[from..]
                .iter()
                .rev()
                .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+')
                .count();
            let s = input.len() - run;
            if (1..40).contains(&run) && s >= from && starts_token(input, s) {
                found.push(s..input.len());
            }
        }
    }
    found.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(found.len());
    for r in found {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// `input` with every credential-shaped value replaced by [`MASK`]; `None` if there is
/// none.
pub(crate) fn mask_bytes(input: &[u8]) -> Option<Vec<u8>> {
    let ranges = find(input);
    if ranges.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let mut at = 0;
    for r in ranges {
        out.extend_from_slice(&input[at..r.start]);
        out.extend_from_slice(MASK.as_bytes());
        at = r.end;
    }
    out.extend_from_slice(&input[at..]);
    Some(out)
}

/// [`mask_bytes`] for text.
pub(crate) fn mask_str(input: &str) -> Option<String> {
    // Every range starts and ends on an ASCII byte or the end: the result stays UTF-8.
    mask_bytes(input.as_bytes()).map(|b| String::from_utf8_lossy(&b).into_owned())
}

impl Masker {
    /// The value-shape rules alone over some bytes (the masker runs them on every body
    /// after its format's key rules): `None` if nothing is credential-shaped. The rules
    /// are the same for every masker; this is a method so that the one masking API is
    /// the [`Masker`] (the `mask_cost` bench times it against the JSON key masker).
    pub fn mask_value_shapes(&self, input: &[u8]) -> Option<Vec<u8>> {
        mask_bytes(input)
    }
}

/// The value shapes in an exchange's header and trailer values, path, query and error
/// (bodies are done by [`Masker::mask_body`], after their format's key rules).
pub(crate) fn mask_exchange(ex: &mut Exchange) {
    for (_, value) in ex
        .request_headers
        .iter_mut()
        .chain(ex.response_headers.iter_mut())
        .chain(ex.response_trailers.iter_mut())
    {
        if let Some(m) = mask_str(value) {
            *value = m;
        }
    }
    for s in [&mut ex.path, &mut ex.query, &mut ex.error]
        .into_iter()
        .flatten()
    {
        if let Some(m) = mask_str(s) {
            *s = m;
        }
    }
}

#[cfg(test)]
mod tests;
