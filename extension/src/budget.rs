//! Size limits, applied after masking and before any output: per field (each body,
//! each exchange's headers) and per batch (what one report or one export may weigh —
//! for the Lambda extension, one invocation's worth).
//!
//! Why this order of dropping: an exchange's identity — method, URL, status, timing —
//! is what every output needs and is small; bodies are large and least often read, so
//! they go first (largest first), then headers. Whatever is cut or dropped is marked
//! `truncated` on the body and on the exchange; full sizes (`Body::size`) are kept.

use crate::exchange::{Body, Exchange};

/// Fixed cost counted per exchange for the fields that are never dropped (ids, timing,
/// method, status, peer...), so that a batch of many small exchanges is measured fairly.
const EXCHANGE_OVERHEAD: usize = 256;
/// Per header: the `": "` and line end of the wire form, about what JSON adds too.
const HEADER_OVERHEAD: usize = 4;

/// Size limits. Zero means "keep nothing" for bodies and headers, never "unlimited".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Bytes of each captured body kept (`TAPLINE_MAX_BODY`, default 8192).
    pub max_body: usize,
    /// Bytes of headers kept per exchange, request and response together
    /// (`TAPLINE_MAX_HEADERS`, default 16384).
    pub max_header_bytes: usize,
    /// Bytes a whole batch may weigh (`TAPLINE_MAX_BATCH`, default 4 MiB).
    pub max_batch_bytes: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_body: 8192,
            max_header_bytes: 16384,
            max_batch_bytes: 4 << 20,
        }
    }
}

/// What [`Budget::apply`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BudgetOutcome {
    /// Bodies shortened to `max_body`.
    pub bodies_cut: usize,
    /// Exchanges whose headers were shortened to `max_header_bytes`.
    pub headers_cut: usize,
    /// Bodies dropped whole to fit the batch.
    pub bodies_dropped: usize,
    /// Exchanges whose headers were dropped whole to fit the batch.
    pub headers_dropped: usize,
    /// Estimated batch size before and after.
    pub bytes_before: usize,
    pub bytes_after: usize,
}

impl Budget {
    /// From `TAPLINE_MAX_BODY`, `TAPLINE_MAX_HEADERS`, `TAPLINE_MAX_BATCH` (bytes;
    /// unset or unparsable: the default).
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`Budget::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let d = Budget::default();
        let get = |k: &str, default: usize| {
            lookup(k)
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(default)
        };
        Budget {
            max_body: get("TAPLINE_MAX_BODY", d.max_body),
            max_header_bytes: get("TAPLINE_MAX_HEADERS", d.max_header_bytes),
            max_batch_bytes: get("TAPLINE_MAX_BATCH", d.max_batch_bytes),
        }
    }

    /// Enforces the per-field limits on every exchange, then the batch limit: bodies
    /// dropped largest first, then headers largest first, until the batch fits. Method,
    /// URL, status and timing are never touched (so a batch of many exchanges may still
    /// be over: `bytes_after` says by how much).
    pub fn apply(&self, exchanges: &mut [Exchange]) -> BudgetOutcome {
        let mut outcome = BudgetOutcome {
            bytes_before: exchanges.iter().map(exchange_bytes).sum(),
            ..Default::default()
        };
        for ex in exchanges.iter_mut() {
            for body in [&mut ex.request_body, &mut ex.response_body]
                .into_iter()
                .flatten()
            {
                if cut_body(body, self.max_body) {
                    outcome.bodies_cut += 1;
                    ex.truncated = true;
                }
            }
            if self.cut_headers(ex) {
                outcome.headers_cut += 1;
                ex.truncated = true;
            }
        }
        let mut total: usize = exchanges.iter().map(exchange_bytes).sum();
        if total > self.max_batch_bytes {
            // (size, exchange index, request?) of every non-empty body, largest first.
            let mut bodies: Vec<(usize, usize, bool)> = Vec::new();
            for (i, ex) in exchanges.iter().enumerate() {
                for (is_req, b) in [(true, &ex.request_body), (false, &ex.response_body)] {
                    if let Some(b) = b.as_ref().filter(|b| !b.bytes.is_empty()) {
                        bodies.push((b.bytes.len(), i, is_req));
                    }
                }
            }
            bodies.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            for (len, i, is_req) in bodies {
                if total <= self.max_batch_bytes {
                    break;
                }
                let ex = &mut exchanges[i];
                let body = if is_req {
                    &mut ex.request_body
                } else {
                    &mut ex.response_body
                };
                if let Some(b) = body {
                    b.bytes = Vec::new();
                    b.truncated = true;
                }
                ex.truncated = true;
                total -= len;
                outcome.bodies_dropped += 1;
            }
        }
        if total > self.max_batch_bytes {
            let mut heads: Vec<(usize, usize)> = exchanges
                .iter()
                .enumerate()
                .map(|(i, ex)| (headers_bytes(ex), i))
                .filter(|&(n, _)| n > 0)
                .collect();
            heads.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            for (len, i) in heads {
                if total <= self.max_batch_bytes {
                    break;
                }
                let ex = &mut exchanges[i];
                ex.request_headers = Vec::new();
                ex.response_headers = Vec::new();
                ex.response_trailers = Vec::new();
                ex.truncated = true;
                total -= len;
                outcome.headers_dropped += 1;
            }
        }
        outcome.bytes_after = total;
        outcome
    }

    /// Keeps whole headers, in wire order, within `max_header_bytes`: each side may use
    /// half, and what one side leaves unused goes to the other.
    fn cut_headers(&self, ex: &mut Exchange) -> bool {
        let req = list_bytes(&ex.request_headers);
        // Trailers count as the response's headers, and keep what the headers leave.
        let resp = list_bytes(&ex.response_headers) + list_bytes(&ex.response_trailers);
        let cap = self.max_header_bytes;
        if req + resp <= cap {
            return false;
        }
        let half = cap / 2;
        let (req_cap, resp_cap) = if req <= half {
            (req, cap - req)
        } else if resp <= half {
            (cap - resp, resp)
        } else {
            (half, cap - half)
        };
        keep_within(&mut ex.request_headers, req_cap);
        keep_within(&mut ex.response_headers, resp_cap);
        let left = resp_cap.saturating_sub(list_bytes(&ex.response_headers));
        keep_within(&mut ex.response_trailers, left);
        true
    }
}

/// Shortens a body's captured bytes to `max`, backing off to a UTF-8 character
/// boundary when the bytes are text. True if it cut.
///
/// A body the capture already cut (the library keeps `TAPLINE_MAX_BODY` bytes, wherever
/// that falls) may end inside a character although it is text: that partial character
/// is dropped too, even when nothing else needs cutting, so that the prefix is reported
/// as text rather than as base64 of bytes that are "not UTF-8" only at their last byte.
fn cut_body(body: &mut Body, max: usize) -> bool {
    // Text: valid UTF-8, or valid up to an incomplete sequence at the very end.
    let is_text = match std::str::from_utf8(&body.bytes) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    if body.bytes.len() <= max {
        if body.truncated && is_text {
            drop_partial_char(&mut body.bytes);
        }
        return false;
    }
    body.bytes.truncate(max);
    if is_text {
        // Binary (an invalid sequence before the end) is cut where it is.
        drop_partial_char(&mut body.bytes);
    }
    body.truncated = true;
    true
}

/// Drops an incomplete UTF-8 sequence at the end of otherwise valid text.
fn drop_partial_char(bytes: &mut Vec<u8>) {
    if let Err(e) = std::str::from_utf8(bytes) {
        if e.error_len().is_none() {
            bytes.truncate(e.valid_up_to());
        }
    }
}

fn keep_within(headers: &mut Vec<(String, String)>, cap: usize) {
    let mut used = 0;
    let keep = headers
        .iter()
        .take_while(|(n, v)| {
            used += n.len() + v.len() + HEADER_OVERHEAD;
            used <= cap
        })
        .count();
    headers.truncate(keep);
}

fn list_bytes(headers: &[(String, String)]) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + HEADER_OVERHEAD)
        .sum()
}

fn headers_bytes(ex: &Exchange) -> usize {
    list_bytes(&ex.request_headers)
        + list_bytes(&ex.response_headers)
        + list_bytes(&ex.response_trailers)
}

/// The estimated weight of one exchange in any output.
pub fn exchange_bytes(ex: &Exchange) -> usize {
    let s = |o: &Option<String>| o.as_ref().map_or(0, String::len);
    let b = |o: &Option<Body>| o.as_ref().map_or(0, |b| b.bytes.len());
    EXCHANGE_OVERHEAD
        + s(&ex.host)
        + s(&ex.path)
        + s(&ex.query)
        + s(&ex.sni)
        + s(&ex.error)
        + headers_bytes(ex)
        + b(&ex.request_body)
        + b(&ex.response_body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::tests::exchange;

    fn body(n: usize) -> Option<Body> {
        Some(Body {
            bytes: vec![b'a'; n],
            size: n as u64,
            truncated: false,
            decoded: None,
        })
    }

    #[test]
    fn from_lookup_defaults_and_overrides() {
        assert_eq!(Budget::from_lookup(|_| None), Budget::default());
        let b = Budget::from_lookup(|k| match k {
            "TAPLINE_MAX_BODY" => Some("100".into()),
            "TAPLINE_MAX_HEADERS" => Some(" 200 ".into()),
            "TAPLINE_MAX_BATCH" => Some("lots".into()),
            _ => None,
        });
        assert_eq!(
            (b.max_body, b.max_header_bytes, b.max_batch_bytes),
            (100, 200, 4 << 20)
        );
    }

    #[test]
    fn per_field_limits() {
        let budget = Budget {
            max_body: 10,
            max_header_bytes: 40,
            max_batch_bytes: usize::MAX,
        };
        let mut ex = exchange();
        ex.request_body = body(10);
        ex.response_body = Some(Body {
            bytes: "aaaaaaaaaé".as_bytes().to_vec(), // 11 bytes: 'é' straddles the cut
            size: 5000,
            truncated: false,
            decoded: None,
        });
        ex.request_headers = vec![("A".into(), "x".repeat(10)); 3]; // 15 each
        ex.response_headers = vec![("B".into(), "y".into())]; // 6
        let out = budget.apply(std::slice::from_mut(&mut ex));
        assert_eq!((out.bodies_cut, out.headers_cut), (1, 1));
        assert!(!ex.request_body.as_ref().unwrap().truncated);
        let resp = ex.response_body.as_ref().unwrap();
        assert_eq!(
            (resp.bytes.as_slice(), resp.size, resp.truncated),
            (&b"aaaaaaaaa"[..], 5000, true)
        );
        // response uses 6 of its 20: request gets 34 → two whole headers
        assert_eq!(
            (ex.request_headers.len(), ex.response_headers.len()),
            (2, 1)
        );
        assert!(ex.truncated);
    }

    #[test]
    fn text_cut_by_the_capture_inside_a_character_stays_text() {
        // "é" is two bytes; the capture kept 5 bytes of a longer body: "aé" + half an "é".
        let mut b = Body {
            bytes: "aéé".as_bytes()[..4].to_vec(),
            size: 40,
            truncated: true,
            decoded: None,
        };
        assert!(!cut_body(&mut b, 100));
        assert_eq!(b.bytes, "aé".as_bytes());
        // The same when the budget cuts too.
        let mut b = Body {
            bytes: "aééé".as_bytes()[..6].to_vec(),
            size: 40,
            truncated: true,
            decoded: None,
        };
        assert!(cut_body(&mut b, 4));
        assert_eq!(b.bytes, "aé".as_bytes());
        // A complete body is left as it is, even one ending in a broken character.
        let mut b = Body {
            bytes: "aé".as_bytes()[..2].to_vec(),
            size: 2,
            truncated: false,
            decoded: None,
        };
        assert!(!cut_body(&mut b, 100));
        assert_eq!(b.bytes.len(), 2);
        // Binary that the capture cut stays byte for byte.
        let mut b = Body {
            bytes: vec![0xff, b'a', 0xc3],
            size: 40,
            truncated: true,
            decoded: None,
        };
        assert!(!cut_body(&mut b, 100));
        assert_eq!(b.bytes, vec![0xff, b'a', 0xc3]);
    }

    #[test]
    fn binary_body_cut_exactly() {
        let mut b = Body {
            bytes: vec![0xff; 20],
            size: 20,
            truncated: false,
            decoded: None,
        };
        assert!(cut_body(&mut b, 7));
        assert_eq!(b.bytes.len(), 7);
    }

    #[test]
    fn batch_drops_bodies_largest_first_then_headers() {
        let mut exs: Vec<Exchange> = (0..3).map(|_| exchange()).collect();
        exs[0].request_body = body(1000);
        exs[1].response_body = body(3000);
        exs[2].response_body = body(2000);
        for ex in &mut exs {
            ex.request_headers = vec![("H".into(), "v".repeat(500))];
        }
        let base: usize = exs.iter().map(exchange_bytes).sum::<usize>() - 6000;
        // room for all but the largest body
        let budget = Budget {
            max_body: 1 << 20,
            max_header_bytes: 1 << 20,
            max_batch_bytes: base + 3000,
        };
        let out = budget.apply(&mut exs);
        assert_eq!(out.bodies_dropped, 1);
        assert!(exs[1].response_body.as_ref().unwrap().bytes.is_empty());
        assert_eq!(exs[1].response_body.as_ref().unwrap().size, 3000);
        assert!(exs[1].truncated && !exs[0].truncated && !exs[2].truncated);
        assert!(out.bytes_after <= budget.max_batch_bytes);

        // nothing fits: every body and every header goes; identity stays
        let tiny = Budget {
            max_batch_bytes: 0,
            ..budget
        };
        let out = tiny.apply(&mut exs);
        assert_eq!((out.bodies_dropped, out.headers_dropped), (2, 3));
        for ex in &exs {
            assert!(ex.truncated && ex.request_headers.is_empty());
            assert_eq!((ex.method.as_deref(), ex.status), (Some("POST"), Some(200)));
            assert!(ex.url().is_some() && ex.duration_ns > 0);
        }
        assert_eq!(
            out.bytes_after,
            exs.iter().map(exchange_bytes).sum::<usize>()
        );
    }

    #[test]
    fn under_budget_untouched() {
        let mut exs = vec![exchange()];
        exs[0].request_body = body(100);
        let before = exs.clone();
        let out = Budget::default().apply(&mut exs);
        assert_eq!(exs, before);
        assert_eq!(out.bytes_before, out.bytes_after);
    }
}
