//! One HTTP/2 connection's records → one [`Exchange`] per stream.
//!
//! Header blocks are decoded first, per direction, in the order of their sequence
//! numbers (HPACK state depends on nothing else); then every record is placed on its
//! stream, and each stream becomes an exchange. Which block is the request and which
//! the response is read from the pseudo-headers (`:method`, `:status`), not from the
//! direction, so a traced server reads as well as a traced client; when a block could
//! not be decoded, the client's view (the request is written) is assumed.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tapline_record::Direction;

use super::blocks::{decode_blocks, other, slot, Decoded, HpackResume};
use super::hpack::Field;
use super::record::H2Record;
use crate::exchange::{Body, Exchange, Timings, TlsKind};
use crate::pieces::Pieces;
use crate::spool::{H2Event, StreamEnd};
use tapline_record::CloseReason;

/// `ECONNRESET` on Linux.
const ECONNRESET: i32 = 104;

/// The RFC 9113 §7 name of an error code (`"CANCEL"`), or its hex value.
pub(crate) fn error_code_name(code: u32) -> String {
    let name = match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => return format!("0x{code:x}"),
    };
    name.to_owned()
}

/// What the rest of the reader knows about the connection the records came from.
#[derive(Clone, Debug)]
pub(crate) struct ConnFacts {
    pub pid: u32,
    pub conn_id: u64,
    pub tls: TlsKind,
    pub sni: Option<String>,
    pub alpn: Option<String>,
    pub peer: Option<SocketAddr>,
    /// Why the connection ended, and the errno of a failed read or write; `None` while
    /// it is open (or its close was lost).
    pub close: Option<(CloseReason, i32)>,
    /// After an h2c upgrade: the HTTP/1.1 exchange whose request stream 1 answers (its
    /// `101` response is an interim one).
    pub upgrade: Option<Exchange>,
}

/// A header block placed on its stream.
struct Block<'a> {
    dir: Direction,
    wall_ns: u64,
    end_stream: bool,
    decoded: &'a Decoded,
    /// Bytes of the block as copied (for wire counts when no stream end was seen).
    len: usize,
}

/// Everything seen of one stream.
#[derive(Default)]
struct Stream<'a> {
    /// Set for a stream reserved by PUSH_PROMISE: its request, and the direction the
    /// promise (and so the pushed response) travelled.
    promise: Option<(Direction, u64, &'a Decoded)>,
    blocks: Vec<Block<'a>>,
    /// Index 0: egress, 1: ingress.
    data: [Pieces; 2],
    end: [Option<StreamEnd>; 2],
    reset: Option<u32>,
    first_wall_ns: Option<u64>,
    last_wall_ns: u64,
}

impl Stream<'_> {
    fn touch(&mut self, wall_ns: u64) {
        self.first_wall_ns.get_or_insert(wall_ns);
        self.last_wall_ns = self.last_wall_ns.max(wall_ns);
    }
}

/// Appends one exchange per stream of the connection to `out`; returns how many.
/// `records` are the connection's HTTP/2 records in the order they were read (monotonic
/// time, then file order).
pub(crate) fn exchanges(facts: &ConnFacts, records: &[H2Record], out: &mut Vec<Exchange>) -> usize {
    exchanges_resuming(facts, records, &mut HpackResume::default(), out)
}

/// As [`exchanges`], for a connection read a little at a time: `hpack` holds the HPACK
/// state left by earlier calls (and the blocks they decoded that are still needed), so
/// that no header block is decoded twice and none is decoded without its predecessors.
pub(crate) fn exchanges_resuming(
    facts: &ConnFacts,
    records: &[H2Record],
    hpack: &mut HpackResume,
    out: &mut Vec<Exchange>,
) -> usize {
    let decoded = decode_blocks(records, hpack);
    let mut streams: BTreeMap<u32, Stream<'_>> = BTreeMap::new();
    let mut goaways: Vec<(u32, u32)> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        match &r.event {
            H2Event::HeaderBlock(b) if b.stream != 0 => {
                let Some(d) = decoded.get(&i) else { continue };
                if let Some(promised) = b.promised.filter(|&p| p != 0) {
                    let s = streams.entry(promised).or_default();
                    s.promise = Some((r.dir, r.wall_ns, d));
                    s.touch(r.wall_ns);
                    continue;
                }
                let s = streams.entry(b.stream).or_default();
                s.blocks.push(Block {
                    dir: r.dir,
                    wall_ns: r.wall_ns,
                    end_stream: b.end_stream,
                    decoded: d,
                    len: b.block.len(),
                });
                s.touch(r.wall_ns);
            }
            H2Event::Data {
                stream,
                offset,
                bytes,
            } if *stream != 0 => {
                let s = streams.entry(*stream).or_default();
                s.data[slot(r.dir)].push_owned(*offset, bytes.clone());
                s.touch(r.wall_ns);
            }
            H2Event::StreamEnd(e) if e.stream != 0 => {
                let s = streams.entry(e.stream).or_default();
                s.end[slot(r.dir)] = Some(*e);
                s.touch(r.wall_ns);
            }
            H2Event::Reset { stream, code } if *stream != 0 => {
                let s = streams.entry(*stream).or_default();
                s.reset.get_or_insert(*code);
                s.touch(r.wall_ns);
            }
            H2Event::GoAway { last_stream, code } => goaways.push((*last_stream, *code)),
            _ => {}
        }
    }
    let before = out.len();
    for (&id, s) in &streams {
        out.push(exchange(facts, id, s, &goaways));
    }
    out.len() - before
}

/// The parts of a stream that make its request and its response.
struct Sides<'s, 'a> {
    req_dir: Direction,
    resp_dir: Direction,
    request: Option<&'a Decoded>,
    request_wall_ns: Option<u64>,
    pushed: bool,
    resp_blocks: Vec<&'s Block<'a>>,
}

fn sides<'s, 'a>(s: &'s Stream<'a>) -> Sides<'s, 'a> {
    if let Some((dir, wall, d)) = s.promise {
        // A pushed stream: the promise is its request; the response travels the way
        // the promise did.
        return Sides {
            req_dir: other(dir),
            resp_dir: dir,
            request: Some(d),
            request_wall_ns: Some(wall),
            pushed: true,
            resp_blocks: s.blocks.iter().filter(|b| b.dir == dir).collect(),
        };
    }
    // The request is the block with `:method`; else the response is the one with
    // `:status`; when neither can be told (blocks whose table state is lost), the first
    // block is the request; with no block at all, the client's view.
    let has = |name: &str| s.blocks.iter().find(|b| b.decoded.pseudo(name).is_some());
    let req_dir = match (has(":method"), has(":status")) {
        (Some(b), _) => b.dir,
        (None, Some(b)) => other(b.dir),
        (None, None) => s.blocks.first().map_or(Direction::Egress, |b| b.dir),
    };
    let resp_dir = other(req_dir);
    Sides {
        req_dir,
        resp_dir,
        request: s
            .blocks
            .iter()
            .find(|b| b.dir == req_dir)
            .map(|b| b.decoded),
        request_wall_ns: s
            .blocks
            .iter()
            .find(|b| b.dir == req_dir)
            .map(|b| b.wall_ns),
        pushed: false,
        resp_blocks: s.blocks.iter().filter(|b| b.dir == resp_dir).collect(),
    }
}

/// Fields without pseudo-headers, as text; cookie crumbs (RFC 9113 §8.2.3) joined into
/// one `cookie` field where the first one was.
fn regular_fields(fields: &[Field]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(fields.len());
    let mut cookie_at: Option<usize> = None;
    for f in fields.iter().filter(|f| !f.name.starts_with(b":")) {
        let name = String::from_utf8_lossy(&f.name).into_owned();
        let value = String::from_utf8_lossy(&f.value).into_owned();
        if name == "cookie" {
            if let Some(at) = cookie_at {
                out[at].1.push_str("; ");
                out[at].1.push_str(&value);
                continue;
            }
            cookie_at = Some(out.len());
        }
        out.push((name, value));
    }
    out
}

fn body(pieces: &Pieces, end: Option<&StreamEnd>, truncated: &mut bool) -> Option<Body> {
    let (bytes, gap) = pieces.joined();
    let size = end.map_or(0, |e| e.data_bytes).max(bytes.len() as u64);
    if size == 0 {
        return None;
    }
    let cut = gap || end.is_some_and(|e| e.body_truncated) || (bytes.len() as u64) < size;
    *truncated |= cut;
    Some(Body {
        bytes,
        size,
        truncated: cut,
        decoded: None,
    })
}

/// A stream's request as the exchange shows it.
struct RequestPart<'u> {
    method: Option<String>,
    scheme: &'static str,
    host: Option<String>,
    port: Option<u16>,
    path: Option<String>,
    query: Option<String>,
    headers: Vec<(String, String)>,
    /// Stream 1 after an h2c upgrade: the HTTP/1.1 exchange that is its request.
    upgrade: Option<&'u Exchange>,
}

/// The request from its decoded block (or, for stream 1 after an h2c upgrade, from the
/// HTTP/1.1 request); host and port fall back to the SNI or the peer.
fn request_part<'u>(
    facts: &'u ConnFacts,
    id: u32,
    request: Option<&Decoded>,
    truncated: &mut bool,
) -> RequestPart<'u> {
    let upgrade = facts
        .upgrade
        .as_ref()
        .filter(|_| id == 1 && request.is_none());
    if let Some(u) = upgrade {
        *truncated |= u.truncated;
        return RequestPart {
            method: u.method.clone(),
            scheme: u.scheme,
            host: u.host.clone(),
            port: u.port,
            path: u.path.clone(),
            query: u.query.clone(),
            headers: u.request_headers.clone(),
            upgrade,
        };
    }
    let scheme = match request.and_then(|d| d.pseudo(":scheme")).as_deref() {
        Some("https") => "https",
        Some("http") => "http",
        _ if facts.tls != TlsKind::None => "https",
        _ => "http",
    };
    let default_port = if scheme == "https" { 443 } else { 80 };
    let headers = request.map_or_else(Vec::new, |d| regular_fields(d.fields()));
    let authority = request
        .and_then(|d| d.pseudo(":authority"))
        .or_else(|| {
            headers
                .iter()
                .find(|(n, _)| n == "host")
                .map(|(_, v)| v.clone())
        })
        .filter(|a| !a.is_empty());
    let (host, port) = match authority.map(|a| crate::text::split_host_port(&a)) {
        Some((h, p)) => (Some(h), Some(p.unwrap_or(default_port))),
        None => match (&facts.sni, facts.peer) {
            (Some(sni), p) => (
                Some(sni.clone()),
                Some(p.map_or(default_port, |p| p.port())),
            ),
            (None, Some(p)) => (Some(p.ip().to_string()), Some(p.port())),
            (None, None) => (None, None),
        },
    };
    let (path, query) = match request.and_then(|d| d.pseudo(":path")) {
        Some(p) => match p.split_once('?') {
            Some((path, q)) => (Some(path.to_owned()), Some(q.to_owned())),
            None => (Some(p), None),
        },
        None => (None, None),
    };
    RequestPart {
        method: request.and_then(|d| d.pseudo(":method")),
        scheme,
        host,
        port,
        path,
        query,
        headers,
        upgrade: None,
    }
}

/// A stream's response: interim (1xx) blocks skipped, the first final one, then
/// trailers.
#[derive(Default)]
struct ResponsePart {
    status: Option<u16>,
    headers: Vec<(String, String)>,
    trailers: Vec<(String, String)>,
    /// A response block carried END_STREAM.
    ended_by_headers: bool,
}

impl ResponsePart {
    /// Some response block was there, even if no final status decoded.
    fn responded(&self) -> bool {
        self.status.is_some() || !self.headers.is_empty()
    }
}

fn response_part(
    blocks: &[&Block<'_>],
    truncated: &mut bool,
    hpack_lost: &mut bool,
) -> ResponsePart {
    let mut r = ResponsePart::default();
    for b in blocks {
        match b.decoded {
            Decoded::Lost => {
                *hpack_lost = true;
                continue;
            }
            Decoded::Cut(_) => *truncated = true,
            Decoded::Whole(_) => {}
        }
        let code = b
            .decoded
            .pseudo(":status")
            .and_then(|s| s.trim().parse::<u16>().ok());
        match (r.status, code) {
            (None, Some(c)) if (100..200).contains(&c) => continue,
            (None, c) => {
                r.status = c;
                r.headers = regular_fields(b.decoded.fields());
            }
            (Some(_), _) => r.trailers.extend(regular_fields(b.decoded.fields())),
        }
        r.ended_by_headers |= b.end_stream;
    }
    r
}

fn exchange(facts: &ConnFacts, id: u32, s: &Stream<'_>, goaways: &[(u32, u32)]) -> Exchange {
    let sides = sides(s);
    let mut truncated = false;
    let mut hpack_lost = false;
    let request = sides.request;
    match request {
        Some(Decoded::Lost) => hpack_lost = true,
        Some(Decoded::Cut(_)) => truncated = true,
        _ => {}
    }
    let req = request_part(facts, id, request, &mut truncated);
    let upgrade = req.upgrade;
    let resp = response_part(&sides.resp_blocks, &mut truncated, &mut hpack_lost);

    let req_end = s.end[slot(sides.req_dir)].as_ref();
    let resp_end = s.end[slot(sides.resp_dir)].as_ref();
    let request_body = if sides.pushed {
        None
    } else if let Some(u) = upgrade {
        u.request_body.clone()
    } else {
        body(&s.data[slot(sides.req_dir)], req_end, &mut truncated)
    };
    let response_body = body(&s.data[slot(sides.resp_dir)], resp_end, &mut truncated);

    let error = stream_error(StreamFacts {
        facts,
        id,
        stream: s,
        goaways,
        ends: [req_end, resp_end],
        hpack_lost,
        request_seen: request.is_some() || upgrade.is_some(),
        resp: &resp,
    });

    let start = upgrade
        .map(|u| u.start_unix_ns)
        .or(req_end.map(|e| e.first_wall_ns).filter(|&t| t != 0))
        .or(sides.request_wall_ns)
        .or(s.first_wall_ns)
        .unwrap_or(0);
    let end = resp_end
        .map(|e| e.last_wall_ns)
        .filter(|&t| t != 0)
        .unwrap_or(s.last_wall_ns)
        .max(start);
    // A direction's first and last frame; its last only once it ended with END_STREAM.
    let frames = |e: Option<&StreamEnd>| {
        e.map_or((None, None), |e| {
            let first = Some(e.first_wall_ns).filter(|&t| t != 0);
            let complete = e.end_stream && !e.incomplete && !e.reset;
            (first, Some(e.last_wall_ns).filter(|&t| t != 0 && complete))
        })
    };
    let mut timings = Timings::exchange_phases(frames(req_end), frames(resp_end));
    if let Some(u) = upgrade {
        // The request was the HTTP/1.1 upgrade request.
        let sent = u.timings.send_ns.map(|send| u.start_unix_ns + send);
        let t = Timings::exchange_phases((Some(u.start_unix_ns), sent), frames(resp_end));
        timings.send_ns = t.send_ns;
        timings.wait_ns = t.wait_ns;
    }
    let wire = |dir: Direction| {
        s.end[slot(dir)].map_or_else(
            || {
                let blocks: usize = s
                    .blocks
                    .iter()
                    .filter(|b| b.dir == dir)
                    .map(|b| b.len)
                    .sum();
                let data: usize = s.data[slot(dir)].captured_len();
                (blocks + data) as u64
            },
            |e| e.wire_bytes,
        )
    };

    Exchange {
        pid: facts.pid,
        conn_id: facts.conn_id,
        seq: id,
        start_unix_ns: start,
        duration_ns: end - start,
        timings,
        method: req.method,
        scheme: req.scheme,
        host: req.host,
        port: req.port,
        path: req.path,
        query: req.query,
        http_version: Some("2".to_owned()),
        status: resp.status,
        request_headers: req.headers,
        response_headers: resp.headers,
        response_trailers: resp.trailers,
        pushed: sides.pushed,
        request_body,
        response_body,
        request_wire_bytes: match upgrade {
            _ if sides.pushed => 0,
            Some(u) => u.request_wire_bytes,
            None => wire(sides.req_dir),
        },
        response_wire_bytes: wire(sides.resp_dir),
        truncated,
        peer: facts.peer,
        tls: facts.tls,
        sni: facts.sni.clone(),
        alpn: facts.alpn.clone(),
        error,
        aws: None,
        grpc: None,
        runtime_api: false,
    }
}

/// What decides a stream's `error`.
struct StreamFacts<'a, 's> {
    facts: &'a ConnFacts,
    id: u32,
    stream: &'a Stream<'s>,
    goaways: &'a [(u32, u32)],
    /// The request's and the response's direction's ends.
    ends: [Option<&'a StreamEnd>; 2],
    hpack_lost: bool,
    request_seen: bool,
    resp: &'a ResponsePart,
}

/// The stream's error, the first that applies: HPACK state lost; none for a complete
/// response; a reset; a GOAWAY below it; no request; no response; an incomplete one.
fn stream_error(f: StreamFacts<'_, '_>) -> Option<String> {
    let [_, resp_end] = f.ends;
    let resp_complete = resp_end.is_some_and(|e| e.end_stream && !e.reset && !e.incomplete)
        || (f.resp.responded() && f.resp.ended_by_headers);
    let closed_error = match f.facts.close {
        Some((CloseReason::Error, ECONNRESET)) => Some("connection reset"),
        Some((CloseReason::Error, _)) => Some("connection error"),
        Some((CloseReason::PeerEof, _)) => Some("connection closed"),
        _ => None,
    };
    let reset = f
        .stream
        .reset
        .or_else(|| {
            f.ends
                .into_iter()
                .flatten()
                .find(|e| e.reset)
                .map(|e| e.error_code)
        })
        .map(|code| format!("stream reset: {}", error_code_name(code)));
    let goaway = f
        .goaways
        .iter()
        .filter(|(last, _)| f.id > *last)
        .map(|(_, code)| format!("connection going away: {}", error_code_name(*code)))
        .next();
    if f.hpack_lost {
        Some("HPACK state lost".to_owned())
    } else if resp_complete {
        None
    } else if let Some(r) = reset {
        Some(r)
    } else if let Some(g) = goaway {
        Some(g)
    } else if !f.request_seen {
        Some("request not captured".to_owned())
    } else if !f.resp.responded() {
        Some(closed_error.unwrap_or("no response").to_owned())
    } else {
        Some(
            match f.facts.close {
                Some((CloseReason::Error, ECONNRESET)) => "connection reset",
                _ => "incomplete response",
            }
            .to_owned(),
        )
    }
}
