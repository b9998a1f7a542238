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

use super::hpack::{Decoder, Field};
use super::{error_code_name, H2Event, H2Record, HeaderBlock, StreamEnd};
use crate::exchange::{Body, Exchange, TlsKind};
use crate::spool::CloseReason;

/// `ECONNRESET` on Linux.
const ECONNRESET: i32 = 104;

/// What the rest of the reader knows about the connection the records came from.
#[derive(Clone, Debug)]
pub struct ConnFacts {
    pub pid: u32,
    pub conn_id: u64,
    pub tls: TlsKind,
    pub sni: Option<String>,
    pub alpn: Option<String>,
    pub peer: Option<SocketAddr>,
    /// Why the connection ended; `None` while it is open (or its close was lost).
    pub close: Option<CloseReason>,
    /// After an h2c upgrade: the HTTP/1.1 exchange whose request stream 1 answers (its
    /// `101` response is an interim one).
    pub upgrade: Option<Exchange>,
}

/// A header block after HPACK.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Decoded {
    /// Every field, decoded from a known table state.
    Whole(Vec<Field>),
    /// The block was cut by the head limit: the fields before the cut.
    Cut(Vec<Field>),
    /// The table state was unknown (a block before this one was cut, lost or broken),
    /// or this block did not decode.
    Lost,
}

impl Decoded {
    fn fields(&self) -> &[Field] {
        match self {
            Decoded::Whole(f) | Decoded::Cut(f) => f,
            Decoded::Lost => &[],
        }
    }

    fn pseudo(&self, name: &str) -> Option<String> {
        self.fields()
            .iter()
            .find(|f| f.name == name.as_bytes())
            .map(|f| String::from_utf8_lossy(&f.value).into_owned())
    }
}

/// Decodes every header block, per direction in sequence order, honouring the
/// decoding peer's `SETTINGS_HEADER_TABLE_SIZE` as it was seen before each block.
/// Returns the decoded block for each record index that holds one.
fn decode_blocks(records: &[H2Record]) -> BTreeMap<usize, Decoded> {
    let mut out = BTreeMap::new();
    for dir in [Direction::Egress, Direction::Ingress] {
        let mut blocks: Vec<(usize, &HeaderBlock)> = records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.dir == dir)
            .filter_map(|(i, r)| match &r.event {
                H2Event::HeaderBlock(b) => Some((i, b)),
                _ => None,
            })
            .collect();
        blocks.sort_by_key(|(i, b)| (b.seq, *i));
        // The peer that decodes `dir` announces its table size in the other direction.
        let settings: Vec<(usize, u32)> = records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.dir != dir)
            .filter_map(|(i, r)| match r.event {
                H2Event::Settings {
                    header_table_size: Some(size),
                    ..
                } => Some((i, size)),
                _ => None,
            })
            .collect();
        let mut decoder = Decoder::default();
        let mut applied = 0;
        let mut expected: u32 = 0;
        let mut lost = false;
        for (i, block) in blocks {
            if block.seq < expected {
                // The same block twice (a record read twice): the first one counts.
                continue;
            }
            while let Some(&(at, size)) = settings.get(applied) {
                if at > i {
                    break;
                }
                decoder.set_allowed_size(size);
                applied += 1;
            }
            lost |= block.seq != expected;
            expected = block.seq.saturating_add(1);
            if lost {
                out.insert(i, Decoded::Lost);
                continue;
            }
            let mut fields = Vec::new();
            let result = decoder.decode_into(&block.block, &mut fields);
            let decoded = match (result, block.truncated) {
                (Ok(()), false) => Decoded::Whole(fields),
                // A cut block: what decoded before the cut is right; the table after
                // it is not known.
                (_, true) => {
                    lost = true;
                    Decoded::Cut(fields)
                }
                (Err(_), false) => {
                    lost = true;
                    Decoded::Lost
                }
            };
            out.insert(i, decoded);
        }
    }
    out
}

/// Pieces of one stream's data in one direction, placed by offset.
#[derive(Default)]
struct DataPieces(Vec<(u64, Vec<u8>)>);

impl DataPieces {
    /// Bytes from offset 0 to the first gap, and whether a gap cut them short.
    /// Overlaps keep the bytes placed first; untrusted offsets never make it allocate
    /// more than was captured.
    fn joined(&self) -> (Vec<u8>, bool) {
        let mut pieces: Vec<&(u64, Vec<u8>)> = self.0.iter().collect();
        pieces.sort_by_key(|(off, _)| *off);
        let mut out = Vec::new();
        for (off, bytes) in pieces {
            let have = out.len() as u64;
            if *off > have {
                return (out, true);
            }
            if let Some(rest) = usize::try_from(have - off)
                .ok()
                .and_then(|s| bytes.get(s..))
            {
                out.extend_from_slice(rest);
            }
        }
        (out, false)
    }
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
    data: [DataPieces; 2],
    end: [Option<StreamEnd>; 2],
    reset: Option<u32>,
    first_wall_ns: Option<u64>,
    last_wall_ns: u64,
}

fn slot(dir: Direction) -> usize {
    match dir {
        Direction::Egress => 0,
        Direction::Ingress => 1,
    }
}

fn other(dir: Direction) -> Direction {
    match dir {
        Direction::Egress => Direction::Ingress,
        Direction::Ingress => Direction::Egress,
    }
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
pub fn exchanges(facts: &ConnFacts, records: &[H2Record], out: &mut Vec<Exchange>) -> usize {
    let decoded = decode_blocks(records);
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
                s.data[slot(r.dir)].0.push((*offset, bytes.clone()));
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

fn body(pieces: &DataPieces, end: Option<&StreamEnd>, truncated: &mut bool) -> Option<Body> {
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

fn exchange(facts: &ConnFacts, id: u32, s: &Stream<'_>, goaways: &[(u32, u32)]) -> Exchange {
    let sides = sides(s);
    let mut truncated = false;
    let mut hpack_lost = false;

    // The request.
    let request = sides.request;
    match request {
        Some(Decoded::Lost) => hpack_lost = true,
        Some(Decoded::Cut(_)) => truncated = true,
        _ => {}
    }
    let method = request.and_then(|d| d.pseudo(":method"));
    let scheme = match request.and_then(|d| d.pseudo(":scheme")).as_deref() {
        Some("https") => "https",
        Some("http") => "http",
        _ if facts.tls != TlsKind::None => "https",
        _ => "http",
    };
    let default_port = if scheme == "https" { 443 } else { 80 };
    let authority = request
        .and_then(|d| d.pseudo(":authority"))
        .or_else(|| {
            request.and_then(|d| {
                regular_fields(d.fields())
                    .into_iter()
                    .find(|(n, _)| n == "host")
                    .map(|(_, v)| v)
            })
        })
        .filter(|a| !a.is_empty());
    let (host, port) = match authority.map(|a| crate::assemble::split_host_port(&a)) {
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
    let mut request_headers = request.map_or_else(Vec::new, |d| regular_fields(d.fields()));
    let (mut method, mut scheme, mut host, mut port, mut path, mut query) =
        (method, scheme, host, port, path, query);
    // Stream 1 after an h2c upgrade: its request is the HTTP/1.1 one.
    let upgrade = facts
        .upgrade
        .as_ref()
        .filter(|_| id == 1 && request.is_none());
    if let Some(u) = upgrade {
        method.clone_from(&u.method);
        scheme = u.scheme;
        host.clone_from(&u.host);
        port = u.port;
        path.clone_from(&u.path);
        query.clone_from(&u.query);
        request_headers.clone_from(&u.request_headers);
        truncated |= u.truncated;
    }

    // The response: interim (1xx) blocks skipped, the first final one, then trailers.
    let mut status: Option<u16> = None;
    let mut response_headers = Vec::new();
    let mut response_trailers = Vec::new();
    let mut resp_ended_by_headers = false;
    for b in &sides.resp_blocks {
        match b.decoded {
            Decoded::Lost => {
                hpack_lost = true;
                continue;
            }
            Decoded::Cut(_) => truncated = true,
            Decoded::Whole(_) => {}
        }
        let code = b
            .decoded
            .pseudo(":status")
            .and_then(|s| s.trim().parse::<u16>().ok());
        match (status, code) {
            (None, Some(c)) if (100..200).contains(&c) => continue,
            (None, c) => {
                status = c;
                response_headers = regular_fields(b.decoded.fields());
            }
            (Some(_), _) => response_trailers.extend(regular_fields(b.decoded.fields())),
        }
        resp_ended_by_headers |= b.end_stream;
    }
    // No final response decoded but some response block was there.
    let responded = status.is_some() || !response_headers.is_empty();

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

    let resp_complete = resp_end.is_some_and(|e| e.end_stream && !e.reset && !e.incomplete)
        || (responded && resp_ended_by_headers);
    let closed_error = match facts.close {
        Some(CloseReason::Error(ECONNRESET)) => Some("connection reset"),
        Some(CloseReason::Error(_)) => Some("connection error"),
        Some(CloseReason::PeerEof) => Some("connection closed"),
        _ => None,
    };
    let reset = s
        .reset
        .or_else(|| {
            [req_end, resp_end]
                .into_iter()
                .flatten()
                .find(|e| e.reset)
                .map(|e| e.error_code)
        })
        .map(|code| format!("stream reset: {}", error_code_name(code)));
    let goaway = goaways
        .iter()
        .filter(|(last, _)| id > *last)
        .map(|(_, code)| format!("connection going away: {}", error_code_name(*code)))
        .next();
    let error = if hpack_lost {
        Some("HPACK state lost".to_owned())
    } else if resp_complete {
        None
    } else if let Some(r) = reset {
        Some(r)
    } else if let Some(g) = goaway {
        Some(g)
    } else if request.is_none() && upgrade.is_none() {
        Some("request not captured".to_owned())
    } else if !responded {
        Some(closed_error.unwrap_or("no response").to_owned())
    } else {
        Some(
            match facts.close {
                Some(CloseReason::Error(ECONNRESET)) => "connection reset",
                _ => "incomplete response",
            }
            .to_owned(),
        )
    };

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
    let wire = |dir: Direction| {
        s.end[slot(dir)].map_or_else(
            || {
                let blocks: usize = s
                    .blocks
                    .iter()
                    .filter(|b| b.dir == dir)
                    .map(|b| b.len)
                    .sum();
                let data: usize = s.data[slot(dir)].0.iter().map(|(_, b)| b.len()).sum();
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
        method,
        scheme,
        host,
        port,
        path,
        query,
        http_version: Some("2".to_owned()),
        status,
        request_headers,
        response_headers,
        response_trailers,
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
    }
}
