//! Pairing and building: the k-th final response answers the k-th request
//! (`include/tapline.h`, `TL_MSG_END`), and each pair becomes an [`Exchange`] with its
//! heads parsed, its host and port, its timing and its error.

use std::collections::BTreeMap;

use tapline_record::{msg_flags, Protocol};

use crate::exchange::{Body, Exchange, Timings, TlsKind};
use crate::http2::HpackResume;
use crate::text::split_host_port;

use super::connection::{Connection, Message};
use super::cut_short::{body_so_far, Declared, RECORDS_LOST};
use super::http_head::{header, parse_request, parse_response, split_target};
use super::http_head::{RequestHead, ResponseHead, Target};

/// A response and its parsed head.
type Answer<'a> = (&'a Message, Option<&'a ResponseHead>);

impl Connection {
    /// Appends this connection's exchanges.
    /// An HTTP/2 connection's streams decode their header blocks from `hpack` (a fresh
    /// state when `None`).
    pub(super) fn exchanges(&self, out: &mut Vec<Exchange>, hpack: Option<&mut HpackResume>) {
        let first_out = out.len();
        self.http1_exchanges(out);
        if !self.h2.is_empty() {
            self.h2_exchanges(first_out, out, hpack);
        }
        // The connection's set-up went before its first exchange only: HTTP/1's
        // first request (or the counted-only exchange), HTTP/2's stream 1.
        let (connect, tls) = self.setup_phases();
        for x in &mut out[first_out..] {
            let h2 = x.http_version.as_deref() == Some("2") && x.method.is_some();
            if (h2 && x.seq == 1) || (!h2 && x.seq == 0) {
                x.timings.connect_ns = connect;
                x.timings.tls_ns = tls;
            }
        }
        // A failed handshake is why a request got no response (one entry per call:
        // the failure, the plaintext and the socket are one exchange).
        if let Some(why) = self.tls_error() {
            for x in out[first_out..].iter_mut().filter(|x| x.status.is_none()) {
                x.error = Some(why.to_owned());
            }
        }
    }

    /// Appends the HTTP/1 exchanges (or the counted-only one) of this connection.
    fn http1_exchanges(&self, out: &mut Vec<Exchange>) {
        let no_http1 = self.requests.is_empty() && self.responses.is_empty();
        match self.protocol() {
            Some(Protocol::Tls) if no_http1 && self.h2.is_empty() => {
                if !self.has_plaintext {
                    out.push(self.counted_only(TlsKind::Opaque, None));
                }
                return;
            }
            Some(Protocol::H2c) if no_http1 && self.h2.is_empty() => {
                // h2c on a socket, or HTTP/2 plaintext from a TLS hook (ALPN h2).
                let tls = match self.tls_library {
                    Some(_) => self.tls_kind(),
                    None => TlsKind::None,
                };
                out.push(self.counted_only(tls, Some("2")));
                return;
            }
            _ => {}
        }

        // The k-th final response answers the k-th request (tapline.h, TL_MSG_END).
        // Counted on the responses' message numbers, not their ranks among the records
        // present: a response whose records were all lost (the writer dropped them,
        // spool full) still took its number, so the responses after it keep answering
        // their own requests. Every number counts as a final response except those
        // known to be interim (1xx but 101). Both count from the start (the exchanges
        // before it were handed out already).
        let first = self.start.request;
        let mut finals: BTreeMap<u32, (&Message, Option<ResponseHead>)> = BTreeMap::new();
        let mut interims = 0u32;
        for (&seq, m) in &self.responses {
            let (head, _) = m.head.joined();
            let head = parse_response(&head);
            let status = m
                .end
                .map(|e| e.status)
                .filter(|&s| s != 0)
                .or(head.as_ref().map(|h| h.status));
            if matches!(status, Some(s) if (100..200).contains(&s) && s != 101) {
                interims = interims.saturating_add(1);
                continue;
            }
            let k = seq
                .checked_sub(self.start.response)
                .and_then(|d| d.checked_sub(interims))
                .and_then(|d| d.checked_add(first));
            if let Some(k) = k {
                finals.entry(k).or_insert((m, head));
            }
        }
        // Walk the request numbers that exist and the final responses' numbers, not
        // 0..max: msg_seq is untrusted and may be huge.
        let mut keys: Vec<u32> = self.requests.keys().copied().collect();
        keys.extend(finals.keys().copied());
        keys.sort_unstable();
        keys.dedup();
        for k in keys {
            let req = self.requests.get(&k);
            let resp = finals.get(&k);
            out.push(self.exchange(k, req, resp.map(|(m, h)| (*m, h.as_ref()))));
        }
    }

    fn exchange(&self, seq: u32, req: Option<&Message>, resp: Option<Answer<'_>>) -> Exchange {
        let mut truncated = false;
        let req_head = req.and_then(|m| {
            let (bytes, cut) = head_bytes(m);
            truncated |= cut;
            parse_request(&bytes)
        });
        if let Some((m, _)) = resp {
            truncated |= head_cut(m);
        }
        let request_body = req.and_then(|m| body(m, &mut truncated));
        let response_body = resp.and_then(|(m, _)| body(m, &mut truncated));

        let scheme = if self.is_tls() { "https" } else { "http" };
        let sni = self.tls_sni.clone().or_else(|| self.socket_sni.clone());
        let target = req_head.as_ref().map(|h| split_target(&h.target));
        let (host, port) = self.host_port(scheme, req_head.as_ref(), target.as_ref(), &sni);
        let (start, end) = self.timing(req, resp);
        let timings = Timings::exchange_phases(
            req.map_or((None, None), |m| (m.start_wall_ns(), complete_end(m))),
            resp.map_or((None, None), |(m, _)| (m.start_wall_ns(), complete_end(m))),
        );

        let resp_head = resp.and_then(|(_, h)| h);
        let status = resp.and_then(|(m, h)| {
            m.end
                .map(|e| e.status)
                .filter(|&s| s != 0)
                .or(h.map(|h| h.status))
        });
        let http_version = req_head
            .as_ref()
            .map(|h| h.version)
            .or(resp_head.map(|h| h.version))
            .map(|minor| if minor == 0 { "1.0" } else { "1.1" }.to_owned());
        // Only a process that reported records lost is looked at for holes: a gap
        // between fragments, fewer head bytes than the end counted (under the head
        // limit), a request without its end although its response ended.
        let holes = || {
            let end_lost =
                req.is_some_and(|m| m.end.is_none()) && resp.is_some_and(|(m, _)| m.end.is_some());
            end_lost
                || [req, resp.map(|(m, _)| m)].into_iter().flatten().any(|m| {
                    let (head, gap) = m.head.joined();
                    let short = m.end.is_some_and(|e| {
                        !e.has(msg_flags::HEAD_TRUNCATED) && e.head_len > head.len() as u64
                    });
                    gap || short || m.body.joined().1
                })
        };
        let error = if self.records_lost && holes() {
            Some(RECORDS_LOST.to_owned())
        } else {
            self.exchange_error(req, req_head.as_ref(), resp)
        };

        Exchange {
            pid: self.pid,
            conn_id: self.conn_id,
            seq,
            start_unix_ns: start,
            duration_ns: end.saturating_sub(start),
            timings,
            method: req_head.as_ref().map(|h| h.method.clone()),
            scheme,
            host,
            port,
            path: target.as_ref().map(|t| t.path.clone()),
            query: target.and_then(|t| t.query),
            http_version,
            status,
            request_headers: req_head.map(|h| h.headers).unwrap_or_default(),
            response_headers: resp_head.map(|h| h.headers.clone()).unwrap_or_default(),
            response_trailers: Vec::new(),
            pushed: false,
            request_body,
            response_body,
            request_wire_bytes: req.map_or(0, wire_len),
            response_wire_bytes: resp.map_or(0, |(m, _)| wire_len(m)),
            truncated,
            peer: self.peer(),
            tls: self.tls_kind(),
            sni,
            alpn: self.tls_alpn.clone(),
            error,
            aws: None,
            grpc: None,
            runtime_api: self.runtime_api(),
        }
    }

    /// Host and port: from an absolute or authority target, else the `Host` header,
    /// else the server name, else the peer address.
    fn host_port(
        &self,
        scheme: &str,
        req_head: Option<&RequestHead>,
        target: Option<&Target>,
        sni: &Option<String>,
    ) -> (Option<String>, Option<u16>) {
        let peer = self.peer();
        let host_header = req_head
            .and_then(|h| header(&h.headers, "host"))
            .filter(|h| !h.is_empty())
            .map(split_host_port);
        let default_port = if scheme == "https" { 443 } else { 80 };
        match (target.and_then(|t| t.authority.clone()), host_header) {
            (Some((h, p)), _) | (None, Some((h, p))) => (Some(h), Some(p.unwrap_or(default_port))),
            (None, None) => match (sni, peer) {
                (Some(s), _) => (
                    Some(s.clone()),
                    Some(peer.map_or(default_port, |p| p.port())),
                ),
                (None, Some(p)) => (Some(p.ip().to_string()), Some(p.port())),
                (None, None) => (None, None),
            },
        }
    }

    /// Start (the request's first byte) and end (the response's last byte).
    fn timing(&self, req: Option<&Message>, resp: Option<Answer<'_>>) -> (u64, u64) {
        let start = req
            .and_then(Message::start_wall_ns)
            .or(resp.and_then(|(m, _)| m.start_wall_ns()))
            .unwrap_or(self.first_wall_ns);
        let end = match (resp, req) {
            (Some((m, _)), _) => m.end_wall_ns(),
            (None, Some(m)) => m.end_wall_ns(),
            (None, None) => start,
        };
        (start, end)
    }

    /// What went wrong, from what is missing and why the connection closed
    /// ([`super::cut_short`] says it with the counts).
    fn exchange_error(
        &self,
        req: Option<&Message>,
        req_head: Option<&RequestHead>,
        resp: Option<Answer<'_>>,
    ) -> Option<String> {
        match (req, resp) {
            (None, _) => Some("request not captured".into()),
            (Some(req), None) => Some(self.no_response(req)),
            (Some(req), Some((m, head))) => {
                if m.flag(msg_flags::MALFORMED) {
                    Some("malformed response".into())
                } else if m.end.is_none() || m.flag(msg_flags::INCOMPLETE) {
                    let declared = head.map_or(Declared::Unknown, |h| Declared::of(&h.headers));
                    Some(self.response_cut(m, declared))
                } else {
                    let declared = req_head.map_or(Declared::Unknown, |h| Declared::of(&h.headers));
                    self.request_cut(req, declared)
                }
            }
        }
    }
}

/// A message's head bytes, and whether they are cut short (a gap, the capture limit,
/// or fewer bytes than the message's head length).
fn head_bytes(m: &Message) -> (Vec<u8>, bool) {
    let (bytes, gap) = m.head.joined();
    let cut = gap
        || m.flag(msg_flags::HEAD_TRUNCATED)
        || m.end.is_some_and(|e| e.head_len > bytes.len() as u64);
    (bytes, cut)
}

/// Whether a message's head is cut short, as [`head_bytes`] says, without copying it.
fn head_cut(m: &Message) -> bool {
    let (len, gap) = m.head.joined_len();
    gap || m.flag(msg_flags::HEAD_TRUNCATED) || m.end.is_some_and(|e| e.head_len > len as u64)
}

/// The captured body of a message, `None` when it has none.
fn body(m: &Message, truncated: &mut bool) -> Option<Body> {
    let (bytes, gap) = m.body.joined();
    if m.flag(msg_flags::NO_BODY) && bytes.is_empty() {
        return None;
    }
    let size = body_so_far(m).0;
    if size == 0 {
        return None;
    }
    let cut = gap || m.flag(msg_flags::BODY_TRUNCATED) || (bytes.len() as u64) < size;
    *truncated |= cut;
    Some(Body {
        bytes,
        size,
        truncated: cut,
        decoded: None,
    })
}

/// When a message's last byte was, if it was complete (its `MsgEnd` says neither cut
/// off nor unparseable).
fn complete_end(m: &Message) -> Option<u64> {
    let cut = m.flag(msg_flags::INCOMPLETE) || m.flag(msg_flags::MALFORMED);
    m.end_wall_ns.filter(|_| !cut)
}

fn wire_len(m: &Message) -> u64 {
    match m.end {
        Some(e) => e.wire_len,
        None => {
            let (h, _) = m.head.joined();
            let (b, _) = m.body.joined();
            let captured = (h.len() + b.len()) as u64;
            m.progress.map_or(captured, |p| p.wire_len.max(captured))
        }
    }
}
