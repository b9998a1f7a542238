//! HTTP/1 heads as captured: parsed with `httparse` (a head cut at the capture limit
//! up to its last complete line), and request targets and `Host` values taken apart.

use std::borrow::Cow;

use crate::text::split_host_port;

/// Largest number of header fields parsed in one head (the head capture limit is
/// 32 KiB, so this is never the limit in practice).
const MAX_HEADERS: usize = 8192;

pub(super) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RequestHead {
    pub(super) method: String,
    pub(super) target: String,
    /// HTTP/1.x minor version.
    pub(super) version: u8,
    pub(super) headers: Vec<(String, String)>,
}

/// A parsed response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ResponseHead {
    pub(super) status: u16,
    pub(super) version: u8,
    pub(super) headers: Vec<(String, String)>,
}

/// The head as httparse needs it: complete heads as they are; a head cut at the capture
/// limit up to its last complete line, closed with an empty line.
pub(super) fn completed_head(head: &[u8]) -> Cow<'_, [u8]> {
    if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
        return Cow::Borrowed(head);
    }
    match head.iter().rposition(|&b| b == b'\n') {
        Some(last) => {
            let mut v = head[..=last].to_vec();
            v.extend_from_slice(b"\r\n");
            Cow::Owned(v)
        }
        None => Cow::Borrowed(head),
    }
}

pub(super) fn header_slots(head: &[u8]) -> usize {
    (head.iter().filter(|&&b| b == b'\n').count() + 1).min(MAX_HEADERS)
}

pub(super) fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|h| !h.name.is_empty())
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

pub(super) fn parse_request(head: &[u8]) -> Option<RequestHead> {
    let head = completed_head(head);
    let mut slots = vec![httparse::EMPTY_HEADER; header_slots(&head)];
    let mut req = httparse::Request::new(&mut slots);
    let mut cfg = httparse::ParserConfig::default();
    cfg.allow_multiple_spaces_in_request_line_delimiters(true)
        .ignore_invalid_headers_in_requests(true);
    match cfg.parse_request(&mut req, &head) {
        Ok(httparse::Status::Complete(_)) => Some(RequestHead {
            method: req.method?.to_owned(),
            target: req.path?.to_owned(),
            version: req.version?,
            headers: owned_headers(req.headers),
        }),
        _ => None,
    }
}

pub(super) fn parse_response(head: &[u8]) -> Option<ResponseHead> {
    let head = completed_head(head);
    let mut slots = vec![httparse::EMPTY_HEADER; header_slots(&head)];
    let mut resp = httparse::Response::new(&mut slots);
    let mut cfg = httparse::ParserConfig::default();
    cfg.allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .ignore_invalid_headers_in_responses(true);
    match cfg.parse_response(&mut resp, &head) {
        Ok(httparse::Status::Complete(_)) => Some(ResponseHead {
            status: resp.code?,
            version: resp.version?,
            headers: owned_headers(resp.headers),
        }),
        _ => None,
    }
}

/// A request target taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Target {
    /// Host and port named by an absolute-form or authority-form target.
    pub(super) authority: Option<(String, Option<u16>)>,
    pub(super) path: String,
    pub(super) query: Option<String>,
}

/// Splits origin-form (`/a?b`), absolute-form (`http://h:1/a?b`, proxies) and
/// authority-form (`h:443`, CONNECT) targets.
pub(super) fn split_target(target: &str) -> Target {
    let lower = target
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rest = if lower.starts_with("http://") {
        Some(&target[7..])
    } else if lower.starts_with("https://") {
        Some(&target[8..])
    } else {
        None
    };
    let (authority, path_and_query) = match rest {
        Some(rest) => {
            let cut = rest.find(['/', '?']).unwrap_or(rest.len());
            let (auth, pq) = rest.split_at(cut);
            let pq = if pq.starts_with('?') || pq.is_empty() {
                format!("/{pq}")
            } else {
                pq.to_owned()
            };
            (Some(split_host_port(auth)), pq)
        }
        None if !target.starts_with('/') && target != "*" => {
            // Authority-form: CONNECT host:port.
            return Target {
                authority: Some(split_host_port(target)),
                path: String::new(),
                query: None,
            };
        }
        None => (None, target.to_owned()),
    };
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (path_and_query, None),
    };
    Target {
        authority,
        path,
        query,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = split_target("/a/b?x=1&y");
        assert_eq!(
            (t.path.as_str(), t.query.as_deref()),
            ("/a/b", Some("x=1&y"))
        );
        assert_eq!(t.authority, None);
        let t = split_target("http://Example.com:8080?q");
        assert_eq!(t.authority, Some(("Example.com".to_owned(), Some(8080))));
        assert_eq!((t.path.as_str(), t.query.as_deref()), ("/", Some("q")));
        let t = split_target("HTTPS://h/p");
        assert_eq!(t.authority, Some(("h".to_owned(), None)));
        assert_eq!(t.path, "/p");
        let t = split_target("example.com:443");
        assert_eq!(t.authority, Some(("example.com".to_owned(), Some(443))));
        assert_eq!(split_target("*").path, "*");
    }

    #[test]
    fn cut_heads_parse_to_their_last_line() {
        let h = parse_request(b"GET /x HTTP/1.1\r\nHost: a\r\nUser-Ag").expect("parses");
        assert_eq!(h.headers, vec![("Host".to_owned(), "a".to_owned())]);
        assert_eq!(parse_request(b"GET /x HT"), None);
        let r = parse_response(b"HTTP/1.0 204 No Content\r\n\r\n").expect("parses");
        assert_eq!((r.status, r.version), (204, 0));
    }
}
