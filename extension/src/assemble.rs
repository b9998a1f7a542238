//! Reassembly: spool records → [`Exchange`]s.
//!
//! Why it is shaped like this: the library writes what it saw, as it saw it, in
//! several files per process, and may die at any moment (a killed process leaves Data
//! records without their `MsgEnd` or `ConnClose`). So every step here builds from
//! whatever is present instead of expecting a complete sequence:
//!
//! 1. records are grouped by `conn_id` (unique across processes) and ordered by
//!    monotonic time, then file order, then position in the file;
//! 2. each message (direction, `msg_seq`) gets its head and body back by joining Data
//!    fragments by offset (a gap ends what can be used, and marks it truncated);
//! 3. heads are parsed with `httparse` (a head cut at the capture limit is parsed up
//!    to its last complete line);
//! 4. the k-th final response (not 1xx, except 101) answers the k-th request, as
//!    `include/tapline.h` defines;
//! 5. sizes come from `MsgEnd` (full sizes, not captured ones), times from `MsgEnd`'s
//!    start and end stamps, errors from the absence of a response and from why the
//!    connection closed.
//!
//! A TLS socket whose plaintext was also seen through a TLS library hook (same pid, same
//! fd, overlapping lifetime) is reported once, as the plaintext; only the others are
//! "opaque" exchanges (SNI and ALPN from the captured ClientHello, sizes and times from
//! the connection).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use tapline_record::{msg_flags, Direction, Part, Protocol};

use crate::exchange::{Body, Exchange, TlsKind};
use crate::http2::{ConnFacts, H2Event, H2Record};
use crate::spool::{
    CloseReason, ConnectionClose, ConnectionOpen, Fragment, MessageEnd, Spool, SpoolEntry,
    SpoolRecord, TlsLibrary,
};
use crate::tls::parse_client_hello;

/// `ECONNRESET` on Linux: the errno that makes a missing response a "connection reset".
const ECONNRESET: i32 = 104;
/// Largest number of header fields parsed in one head (the head capture limit is
/// 32 KiB, so this is never the limit in practice).
const MAX_HEADERS: usize = 8192;

/// Counts for the footer of a report: what could not be read or was lost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Spool files read.
    pub files: u64,
    /// Files that could not be read at all.
    pub unreadable_files: u64,
    /// Records decoded.
    pub records: u64,
    /// Bytes skipped as torn, corrupt or garbage, and in how many stretches.
    pub skipped_bytes: u64,
    pub skipped_stretches: u64,
    /// Well-framed records that did not decode.
    pub undecodable_records: u64,
    /// Records (and their bytes) the writers reported lost in `Drops` records.
    pub dropped_records: u64,
    pub dropped_bytes: u64,
}

impl Totals {
    /// True when something was lost or skipped, i.e. a report should say so.
    pub fn anything_lost(&self) -> bool {
        self.unreadable_files + self.skipped_bytes + self.undecodable_records + self.dropped_records
            > 0
    }
}

/// What a `ProcStart` record said about a process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    pub ppid: u32,
    pub argv: Vec<String>,
}

/// The result of reassembly.
#[derive(Clone, Debug, Default)]
pub struct Assembly {
    /// Sorted by start time (then pid, connection, position on the connection).
    pub exchanges: Vec<Exchange>,
    pub processes: BTreeMap<u32, ProcessInfo>,
    pub totals: Totals,
}

/// Where the reassembly of a connection begins when the exchanges before it were
/// already handed out and the records of their messages dropped (the Lambda
/// extension's [`crate::lambda::window::SpoolTail`] does this for keep-alive
/// connections that live for many invocations).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnStart {
    /// The first request left (`msg_seq` in the egress direction): exchanges
    /// `0..request` are gone, and the next exchange is number `request`.
    pub request: u32,
    /// The first response left (`msg_seq` in the ingress direction): the first
    /// `request` final responses, and every interim one before them, are gone.
    pub response: u32,
}

/// Builds every exchange the spool holds.
pub fn assemble(spool: &Spool) -> Assembly {
    assemble_from(spool, &HashMap::new())
}

/// Like [`assemble`], but each connection named in `starts` is reassembled from that
/// point on: its records of earlier messages are ignored (whether or not they are still
/// there), and its exchanges keep their position numbers (`seq`) on the connection.
pub fn assemble_from(spool: &Spool, starts: &HashMap<u64, ConnStart>) -> Assembly {
    let mut totals = Totals {
        files: spool.files.len() as u64,
        ..Totals::default()
    };
    for f in &spool.files {
        totals.unreadable_files += u64::from(f.error.is_some());
        totals.records += f.records;
        totals.skipped_bytes += f.skipped_bytes;
        totals.skipped_stretches += f.skipped_stretches;
        totals.undecodable_records += f.undecodable;
    }

    let mut processes = BTreeMap::new();
    let mut by_conn: BTreeMap<u64, Vec<&SpoolEntry>> = BTreeMap::new();
    for e in &spool.entries {
        match &e.record {
            SpoolRecord::Drops { records, bytes } => {
                totals.dropped_records = totals.dropped_records.saturating_add(*records);
                totals.dropped_bytes = totals.dropped_bytes.saturating_add(*bytes);
            }
            SpoolRecord::ProcStart { ppid, argv, .. } => {
                processes.entry(e.meta.pid).or_insert_with(|| ProcessInfo {
                    ppid: *ppid,
                    argv: argv.clone(),
                });
            }
            _ if e.meta.conn_id != 0 => by_conn.entry(e.meta.conn_id).or_default().push(e),
            _ => {}
        }
    }

    let mut conns: Vec<Connection> = by_conn
        .into_iter()
        .map(|(conn_id, mut entries)| {
            entries.sort_by_key(|e| (e.meta.mono_ns, e.meta.file, e.meta.index));
            let start = starts.get(&conn_id).copied().unwrap_or_default();
            Connection::build(conn_id, start, &entries)
        })
        .collect();
    link_tls_sockets(&mut conns);

    let mut exchanges = Vec::new();
    for conn in &conns {
        conn.exchanges(&mut exchanges);
    }
    exchanges.sort_by_key(|x| (x.start_unix_ns, x.pid, x.conn_id, x.seq));
    Assembly {
        exchanges,
        processes,
        totals,
    }
}

/// Pieces of one message part, placed by offset.
#[derive(Default)]
struct Fragments(Vec<(u64, Vec<u8>)>);

impl Fragments {
    fn push(&mut self, offset: u64, bytes: &[u8]) {
        self.0.push((offset, bytes.to_vec()));
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bytes from offset 0 up to the first gap, and whether a gap cut them short.
    /// Overlaps keep the bytes placed first. Never allocates more than was captured,
    /// whatever the (untrusted) offsets say.
    fn joined(&self) -> (Vec<u8>, bool) {
        let mut pieces: Vec<&(u64, Vec<u8>)> = self.0.iter().collect();
        pieces.sort_by_key(|(off, _)| *off);
        let mut out = Vec::new();
        for (off, bytes) in pieces {
            let have = out.len() as u64;
            if *off > have {
                return (out, true);
            }
            let skip = have - off;
            if let Some(rest) = usize::try_from(skip).ok().and_then(|s| bytes.get(s..)) {
                out.extend_from_slice(rest);
            }
        }
        (out, false)
    }
}

/// Everything seen of one HTTP message.
#[derive(Default)]
struct Message {
    head: Fragments,
    body: Fragments,
    end: Option<MessageEnd>,
    /// Wall time of the `MsgEnd` record: when the last byte was written or read.
    end_wall_ns: Option<u64>,
    first_wall_ns: Option<u64>,
    last_wall_ns: u64,
}

impl Message {
    fn flag(&self, f: u16) -> bool {
        self.end.is_some_and(|e| e.has(f))
    }

    fn start_wall_ns(&self) -> Option<u64> {
        self.end
            .map(|e| e.start_wall_ns)
            .filter(|&t| t != 0)
            .or(self.first_wall_ns)
    }

    fn end_wall_ns(&self) -> u64 {
        self.end_wall_ns.unwrap_or(self.last_wall_ns)
    }
}

/// One connection's records, sorted out.
struct Connection {
    conn_id: u64,
    /// Messages before these were handed out already (see [`ConnStart`]).
    start: ConnStart,
    pid: u32,
    open: Option<ConnectionOpen>,
    close: Option<ConnectionClose>,
    close_wall_ns: Option<u64>,
    tls_library: Option<TlsLibrary>,
    tls_sni: Option<String>,
    tls_alpn: Option<String>,
    tls_fd: i32,
    tls_socket_conn: Option<u64>,
    raw: Fragments,
    requests: BTreeMap<u32, Message>,
    responses: BTreeMap<u32, Message>,
    first_wall_ns: u64,
    last_wall_ns: u64,
    first_mono_ns: u64,
    last_mono_ns: u64,
    /// For a TLS socket: its plaintext is reported by another connection.
    has_plaintext: bool,
    /// For a plaintext connection: facts borrowed from its TLS socket.
    socket_peer: Option<SocketAddr>,
    socket_sni: Option<String>,
    /// HTTP/2 records, in reading order ([`crate::http2`] makes the exchanges).
    h2: Vec<H2Record>,
}

impl Connection {
    fn build(conn_id: u64, start: ConnStart, entries: &[&SpoolEntry]) -> Connection {
        let first = entries.first().map(|e| e.meta);
        let mut c = Connection {
            conn_id,
            start,
            pid: first.map_or(0, |m| m.pid),
            open: None,
            close: None,
            close_wall_ns: None,
            tls_library: None,
            tls_sni: None,
            tls_alpn: None,
            tls_fd: -1,
            tls_socket_conn: None,
            raw: Fragments::default(),
            requests: BTreeMap::new(),
            responses: BTreeMap::new(),
            first_wall_ns: first.map_or(0, |m| m.wall_ns),
            last_wall_ns: 0,
            first_mono_ns: first.map_or(0, |m| m.mono_ns),
            last_mono_ns: 0,
            has_plaintext: false,
            socket_peer: None,
            socket_sni: None,
            h2: Vec::new(),
        };
        for e in entries {
            c.last_wall_ns = c.last_wall_ns.max(e.meta.wall_ns);
            c.last_mono_ns = c.last_mono_ns.max(e.meta.mono_ns);
            match &e.record {
                SpoolRecord::ConnOpen(o) if c.open.is_none() => {
                    c.open = Some(*o);
                    c.pid = e.meta.pid;
                }
                SpoolRecord::ConnClose(cl) => {
                    c.close = Some(*cl);
                    c.close_wall_ns = Some(e.meta.wall_ns);
                }
                SpoolRecord::TlsInfo {
                    library,
                    sni,
                    alpn,
                    fd,
                    socket_conn_id,
                } => {
                    c.tls_socket_conn = c.tls_socket_conn.or(*socket_conn_id);
                    c.tls_library = c.tls_library.or(*library);
                    c.tls_sni = c.tls_sni.take().or_else(|| sni.clone());
                    c.tls_alpn = c.tls_alpn.take().or_else(|| alpn.clone());
                    if *fd >= 0 {
                        c.tls_fd = *fd;
                    }
                }
                SpoolRecord::Data(f) if f.part != Part::Raw && c.before_start(f.dir, f.msg_seq) => {
                }
                SpoolRecord::MsgEnd(m) if c.before_start(m.dir, m.msg_seq) => {}
                SpoolRecord::Data(f) => c.add_fragment(f, e.meta.wall_ns),
                SpoolRecord::H2(f) => c.h2.push(H2Record {
                    dir: f.dir,
                    wall_ns: e.meta.wall_ns,
                    event: f.event.clone(),
                }),
                SpoolRecord::MsgEnd(m) => {
                    let msg = c.message(m.dir, m.msg_seq);
                    msg.end = Some(*m);
                    msg.end_wall_ns = Some(e.meta.wall_ns);
                    msg.last_wall_ns = msg.last_wall_ns.max(e.meta.wall_ns);
                    msg.first_wall_ns.get_or_insert(e.meta.wall_ns);
                }
                _ => {}
            }
        }
        c
    }

    /// True for a message whose exchange was handed out before [`Self::start`].
    fn before_start(&self, dir: Direction, seq: u32) -> bool {
        match dir {
            Direction::Egress => seq < self.start.request,
            Direction::Ingress => seq < self.start.response,
        }
    }

    fn message(&mut self, dir: Direction, seq: u32) -> &mut Message {
        match dir {
            Direction::Egress => self.requests.entry(seq).or_default(),
            Direction::Ingress => self.responses.entry(seq).or_default(),
        }
    }

    fn add_fragment(&mut self, f: &Fragment, wall_ns: u64) {
        if f.part == Part::Raw {
            if f.dir == Direction::Egress {
                self.raw.push(f.offset, &f.bytes);
            }
            return;
        }
        let msg = self.message(f.dir, f.msg_seq);
        msg.first_wall_ns.get_or_insert(wall_ns);
        msg.last_wall_ns = msg.last_wall_ns.max(wall_ns);
        match f.part {
            Part::Head => msg.head.push(f.offset, &f.bytes),
            Part::Body => msg.body.push(f.offset, &f.bytes),
            Part::Raw => {}
        }
    }

    fn protocol(&self) -> Option<Protocol> {
        self.open
            .map(|o| o.protocol)
            .or(self.close.and_then(|c| c.protocol))
    }

    fn fd(&self) -> i32 {
        match self.open {
            Some(o) if o.fd >= 0 => o.fd,
            _ => self.tls_fd,
        }
    }

    fn peer(&self) -> Option<SocketAddr> {
        self.open.and_then(|o| o.peer).or(self.socket_peer)
    }

    fn is_tls(&self) -> bool {
        matches!(
            self.protocol(),
            Some(Protocol::Tls | Protocol::TlsPlaintext)
        ) || self.tls_library.is_some()
    }

    fn tls_kind(&self) -> TlsKind {
        match (self.protocol(), self.tls_library) {
            (_, Some(TlsLibrary::GnuTls)) => TlsKind::GnuTls,
            (_, Some(TlsLibrary::OpenSsl)) => TlsKind::OpenSsl,
            // Plaintext from a TLS hook whose TlsInfo was lost: OpenSSL is by far the
            // most common library, and "none" would claim the socket was plaintext.
            (Some(Protocol::TlsPlaintext), None) => TlsKind::OpenSsl,
            (Some(Protocol::Tls), None) => TlsKind::Opaque,
            _ => TlsKind::None,
        }
    }

    /// `(sni, alpn)` of the captured ClientHello, if there is one.
    fn client_hello(&self) -> (Option<String>, Option<String>) {
        if self.raw.is_empty() {
            return (None, None);
        }
        let (raw, _) = self.raw.joined();
        match parse_client_hello(&raw) {
            Ok(h) => (h.sni, (!h.alpn.is_empty()).then(|| h.alpn.join(","))),
            Err(_) => (None, None),
        }
    }

    fn error_before_response(&self) -> Option<&'static str> {
        match self.close.map(|c| c.reason) {
            Some(CloseReason::Error(ECONNRESET)) => Some("connection reset"),
            Some(CloseReason::PeerEof) => Some("connection closed"),
            _ => None,
        }
    }

    /// Appends this connection's exchanges.
    fn exchanges(&self, out: &mut Vec<Exchange>) {
        let first_out = out.len();
        match self.protocol() {
            Some(Protocol::Tls)
                if self.requests.is_empty() && self.responses.is_empty() && self.h2.is_empty() =>
            {
                if !self.has_plaintext {
                    out.push(self.counted_only(TlsKind::Opaque, None));
                }
                return;
            }
            Some(Protocol::H2c)
                if self.requests.is_empty() && self.responses.is_empty() && self.h2.is_empty() =>
            {
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
        let finals: Vec<(&Message, Option<ResponseHead>)> = self
            .responses
            .values()
            .map(|m| {
                let (head, _) = m.head.joined();
                (m, parse_response(&head))
            })
            .filter(|(m, head)| {
                let status = m
                    .end
                    .map(|e| e.status)
                    .filter(|&s| s != 0)
                    .or(head.as_ref().map(|h| h.status));
                !matches!(status, Some(s) if (100..200).contains(&s) && s != 101)
            })
            .collect();
        // Walk the request numbers that exist and the final responses' ranks, not
        // 0..max: msg_seq is untrusted and may be huge. Both count from the start (the
        // exchanges before it were handed out already).
        let first = self.start.request;
        let mut keys: Vec<u32> = self.requests.keys().copied().collect();
        keys.extend((0..finals.len()).filter_map(|k| u32::try_from(k).ok()?.checked_add(first)));
        keys.sort_unstable();
        keys.dedup();
        for k in keys {
            let req = self.requests.get(&k);
            let resp = k
                .checked_sub(first)
                .and_then(|r| usize::try_from(r).ok())
                .and_then(|r| finals.get(r));
            out.push(self.exchange(k, req, resp.map(|(m, h)| (*m, h.as_ref()))));
        }
        if !self.h2.is_empty() {
            self.h2_exchanges(first_out, out);
        }
    }

    /// Appends the HTTP/2 streams' exchanges, after this connection's HTTP/1 ones (from
    /// `first` in `out`). After an h2c upgrade, the upgraded HTTP/1.1 exchange becomes
    /// stream 1's request. A connection with no stream is reported by its byte counts.
    fn h2_exchanges(&self, first: usize, out: &mut Vec<Exchange>) {
        let upgrade_seq = self.h2.iter().find_map(|r| match r.event {
            H2Event::Start {
                how: tapline_record::h2_start::H2C_UPGRADE,
                upgrade_msg_seq,
            } => Some(upgrade_msg_seq),
            _ => None,
        });
        let upgrade = upgrade_seq
            .and_then(|k| out[first..].iter().position(|x| x.seq == k))
            .map(|at| out.remove(first + at));
        let tls = match self.tls_library {
            Some(_) => self.tls_kind(),
            None if self.protocol() == Some(Protocol::H2c) => TlsKind::None,
            None => self.tls_kind(),
        };
        let facts = ConnFacts {
            pid: self.pid,
            conn_id: self.conn_id,
            tls,
            sni: self.tls_sni.clone().or_else(|| self.socket_sni.clone()),
            alpn: self.tls_alpn.clone(),
            peer: self.peer(),
            close: self.close.map(|c| c.reason),
            upgrade: upgrade.clone(),
        };
        let streams = crate::http2::exchanges(&facts, &self.h2, out);
        if streams == 0 {
            match upgrade {
                Some(u) => out.insert(first, u),
                None if out.len() == first => out.push(self.counted_only(tls, Some("2"))),
                None => {}
            }
        }
    }

    /// An exchange known only by its byte counts: opaque TLS, or h2c.
    fn counted_only(&self, tls: TlsKind, http_version: Option<&str>) -> Exchange {
        let (hello_sni, alpn) = self.client_hello();
        let sni = self.tls_sni.clone().or(hello_sni);
        let peer = self.peer();
        let (raw, _) = self.raw.joined();
        let start = self
            .close
            .map(|c| c.first_out_wall_ns)
            .filter(|&t| t != 0)
            .or(self.open.map(|o| o.connect_wall_ns).filter(|&t| t != 0))
            .unwrap_or(self.first_wall_ns);
        let end = self
            .close
            .map(|c| c.last_in_wall_ns)
            .filter(|&t| t != 0)
            .or(self.close_wall_ns)
            .unwrap_or(self.last_wall_ns);
        let (bytes_out, bytes_in) = self
            .close
            .map_or((raw.len() as u64, 0), |c| (c.bytes_out, c.bytes_in));
        // Without a close record the byte counts are unknown (only the ClientHello is):
        // say so rather than report them as if they were the traffic.
        let error = match self.close.map(|c| c.reason) {
            None => Some("connection still open when capture ended"),
            Some(CloseReason::Error(ECONNRESET)) => Some("connection reset"),
            Some(CloseReason::Error(_)) => Some("connection error"),
            Some(CloseReason::PeerEof | CloseReason::Closed) if bytes_in == 0 => {
                Some("no response")
            }
            _ => None,
        };
        let scheme = if tls == TlsKind::None {
            "http"
        } else {
            "https"
        };
        let (host, port) = match (&sni, peer) {
            (Some(s), _) => (Some(s.clone()), Some(peer.map_or(443, |p| p.port()))),
            (None, Some(p)) => (Some(p.ip().to_string()), Some(p.port())),
            (None, None) => (None, None),
        };
        Exchange {
            pid: self.pid,
            conn_id: self.conn_id,
            seq: 0,
            start_unix_ns: start,
            duration_ns: end.saturating_sub(start),
            method: None,
            scheme,
            host,
            port,
            path: None,
            query: None,
            http_version: http_version.map(str::to_owned),
            status: None,
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            response_trailers: Vec::new(),
            pushed: false,
            request_body: None,
            response_body: None,
            request_wire_bytes: bytes_out,
            response_wire_bytes: bytes_in,
            truncated: false,
            peer,
            tls,
            sni,
            alpn: self.tls_alpn.clone().or(alpn),
            error: error.map(str::to_owned),
            aws: None,
            grpc: None,
        }
    }

    fn exchange(
        &self,
        seq: u32,
        req: Option<&Message>,
        resp: Option<(&Message, Option<&ResponseHead>)>,
    ) -> Exchange {
        let mut truncated = false;
        let req_head = req.map(|m| {
            let (bytes, gap) = m.head.joined();
            truncated |= gap
                || m.flag(msg_flags::HEAD_TRUNCATED)
                || m.end.is_some_and(|e| e.head_len > bytes.len() as u64);
            parse_request(&bytes)
        });
        let req_head = req_head.flatten();
        if let Some((m, _)) = resp {
            let (bytes, gap) = m.head.joined();
            truncated |= gap
                || m.flag(msg_flags::HEAD_TRUNCATED)
                || m.end.is_some_and(|e| e.head_len > bytes.len() as u64);
        }
        let request_body = req.and_then(|m| body(m, &mut truncated));
        let response_body = resp.and_then(|(m, _)| body(m, &mut truncated));

        let scheme = if self.is_tls() { "https" } else { "http" };
        let sni = self.tls_sni.clone().or_else(|| self.socket_sni.clone());
        let peer = self.peer();
        let target = req_head.as_ref().map(|h| split_target(&h.target));
        let host_header = req_head
            .as_ref()
            .and_then(|h| header(&h.headers, "host"))
            .filter(|h| !h.is_empty())
            .map(split_host_port);
        let default_port = if scheme == "https" { 443 } else { 80 };
        let (host, port) = match (
            target.as_ref().and_then(|t| t.authority.clone()),
            host_header,
        ) {
            (Some((h, p)), _) | (None, Some((h, p))) => (Some(h), Some(p.unwrap_or(default_port))),
            (None, None) => match (&sni, peer) {
                (Some(s), _) => (
                    Some(s.clone()),
                    Some(peer.map_or(default_port, |p| p.port())),
                ),
                (None, Some(p)) => (Some(p.ip().to_string()), Some(p.port())),
                (None, None) => (None, None),
            },
        };

        let start = req
            .and_then(Message::start_wall_ns)
            .or(resp.and_then(|(m, _)| m.start_wall_ns()))
            .unwrap_or(self.first_wall_ns);
        let end = match (resp, req) {
            (Some((m, _)), _) => m.end_wall_ns(),
            (None, Some(m)) => m.end_wall_ns(),
            (None, None) => start,
        };

        let error = match (req, resp) {
            (None, _) => Some("request not captured"),
            (Some(_), None) => Some(self.error_before_response().unwrap_or("no response")),
            (Some(_), Some((m, _))) => {
                if m.flag(msg_flags::MALFORMED) {
                    Some("malformed response")
                } else if m.end.is_none() || m.flag(msg_flags::INCOMPLETE) {
                    match self.close.map(|c| c.reason) {
                        Some(CloseReason::Error(ECONNRESET)) => Some("connection reset"),
                        _ => Some("incomplete response"),
                    }
                } else {
                    None
                }
            }
        };

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

        Exchange {
            pid: self.pid,
            conn_id: self.conn_id,
            seq,
            start_unix_ns: start,
            duration_ns: end.saturating_sub(start),
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
            peer,
            tls: self.tls_kind(),
            sni,
            alpn: self.tls_alpn.clone(),
            error: error.map(str::to_owned),
            aws: None,
            grpc: None,
        }
    }
}

/// The captured body of a message, `None` when it has none.
fn body(m: &Message, truncated: &mut bool) -> Option<Body> {
    let (bytes, gap) = m.body.joined();
    if m.flag(msg_flags::NO_BODY) && bytes.is_empty() {
        return None;
    }
    let size = m.end.map_or(0, |e| e.body_len).max(bytes.len() as u64);
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

fn wire_len(m: &Message) -> u64 {
    match m.end {
        Some(e) => e.wire_len,
        None => {
            let (h, _) = m.head.joined();
            let (b, _) = m.body.joined();
            (h.len() + b.len()) as u64
        }
    }
}

/// Marries TLS sockets to the plaintext connections seen through TLS hooks on the same
/// fd of the same process while the socket was open, so that each is reported once.
fn link_tls_sockets(conns: &mut [Connection]) {
    let sockets: Vec<(usize, u64, u32, i32, u64, u64, bool)> = conns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.protocol() == Some(Protocol::Tls))
        .map(|(i, c)| {
            let closed = c.close.is_some();
            (
                i,
                c.conn_id,
                c.pid,
                c.fd(),
                c.first_mono_ns,
                c.last_mono_ns,
                closed,
            )
        })
        .collect();
    for (si, socket_conn, pid, fd, from, to, closed) in sockets {
        let (peer, sni) = {
            let s = &conns[si];
            (s.peer(), s.client_hello().0)
        };
        let mut linked = false;
        for c in conns.iter_mut() {
            let plaintext = c.protocol() == Some(Protocol::TlsPlaintext)
                || (c.protocol() == Some(Protocol::H2c) && c.tls_library.is_some());
            if !plaintext {
                continue;
            }
            let overlaps = c.first_mono_ns >= from && (!closed || c.first_mono_ns <= to);
            // The library named the socket; else the same fd in the same process at the
            // same time; else (memory BIOs: no fd) the same server name at the same time.
            let named = c.tls_socket_conn == Some(socket_conn);
            let same_fd = fd >= 0 && c.pid == pid && c.fd() == fd && overlaps;
            let same_name = c.fd() < 0
                && c.tls_socket_conn.is_none()
                && c.pid == pid
                && overlaps
                && sni.is_some()
                && c.tls_sni == sni;
            if named || same_fd || same_name {
                if c.open.and_then(|o| o.peer).is_none() {
                    c.socket_peer = peer;
                }
                c.socket_sni = sni.clone();
                linked = true;
            }
        }
        conns[si].has_plaintext = linked;
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RequestHead {
    method: String,
    target: String,
    /// HTTP/1.x minor version.
    version: u8,
    headers: Vec<(String, String)>,
}

/// A parsed response head.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ResponseHead {
    status: u16,
    version: u8,
    headers: Vec<(String, String)>,
}

/// The head as httparse needs it: complete heads as they are; a head cut at the capture
/// limit up to its last complete line, closed with an empty line.
fn completed_head(head: &[u8]) -> Cow<'_, [u8]> {
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

fn header_slots(head: &[u8]) -> usize {
    (head.iter().filter(|&&b| b == b'\n').count() + 1).min(MAX_HEADERS)
}

fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
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

fn parse_request(head: &[u8]) -> Option<RequestHead> {
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

fn parse_response(head: &[u8]) -> Option<ResponseHead> {
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
struct Target {
    /// Host and port named by an absolute-form or authority-form target.
    authority: Option<(String, Option<u16>)>,
    path: String,
    query: Option<String>,
}

/// Splits origin-form (`/a?b`), absolute-form (`http://h:1/a?b`, proxies) and
/// authority-form (`h:443`, CONNECT) targets.
fn split_target(target: &str) -> Target {
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

/// `host[:port]` or `[v6][:port]` → host (without brackets) and port.
pub(crate) fn split_host_port(s: &str) -> (String, Option<u16>) {
    let s = s.trim();
    // Userinfo has no business in a Host header, but may be in an absolute target.
    let s = s.rsplit_once('@').map_or(s, |(_, h)| h);
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return (host.to_owned(), port);
        }
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => (host.to_owned(), Some(p)),
            Err(_) => (host.to_owned(), None),
        },
        _ => (s.to_owned(), None),
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
    fn host_ports() {
        for (input, host, port) in [
            ("example.com", "example.com", None),
            ("example.com:8080", "example.com", Some(8080)),
            ("[::1]:9000", "::1", Some(9000)),
            ("[::1]", "::1", None),
            ("::1", "::1", None),
            ("h:notaport", "h", None),
            ("user@h:1", "h", Some(1)),
        ] {
            assert_eq!(split_host_port(input), (host.to_owned(), port), "{input}");
        }
    }

    #[test]
    fn cut_heads_parse_to_their_last_line() {
        let h = parse_request(b"GET /x HTTP/1.1\r\nHost: a\r\nUser-Ag").expect("parses");
        assert_eq!(h.headers, vec![("Host".to_owned(), "a".to_owned())]);
        assert_eq!(parse_request(b"GET /x HT"), None);
        let r = parse_response(b"HTTP/1.0 204 No Content\r\n\r\n").expect("parses");
        assert_eq!((r.status, r.version), (204, 0));
    }

    #[test]
    fn fragments_join_by_offset_and_stop_at_gaps() {
        let mut f = Fragments::default();
        f.push(5, b"56789");
        f.push(0, b"01234");
        f.push(3, b"34567"); // overlap
        assert_eq!(f.joined(), (b"0123456789".to_vec(), false));
        f.push(20, b"x");
        assert_eq!(f.joined(), (b"0123456789".to_vec(), true));
        let mut huge = Fragments::default();
        huge.push(u64::MAX, b"x");
        assert_eq!(huge.joined(), (Vec::new(), true));
    }
}
