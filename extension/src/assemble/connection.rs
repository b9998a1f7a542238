//! One connection's records sorted out: its messages (head and body fragments joined
//! by offset), its open/close/TLS facts, and the linking of a TLS socket to the
//! plaintext seen through a TLS library hook on it.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tapline_record::TlsLibrary;
use tapline_record::{CloseReason, ConnClose, ConnOpen, Data, Direction, MsgEnd, Part, Protocol};

use super::failure::{FailedCall, TlsFailure};
use crate::client_hello::parse_client_hello;
use crate::exchange::TlsKind;
use crate::http2::H2Record;
pub(super) use crate::pieces::Pieces as Fragments;
use crate::spool::{socket_addr, SpoolEntry, SpoolRecord};

/// `ECONNRESET` on Linux: the errno that makes a missing response a "connection reset".
pub(super) const ECONNRESET: i32 = 104;

/// Where the reassembly of a connection begins when the exchanges before it were
/// already handed out and the records of their messages dropped (the Lambda
/// extension's [`crate::lambda::feed::ExchangeFeed`] does this for keep-alive
/// connections that live for many invocations).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ConnStart {
    /// The first request left (`msg_seq` in the egress direction): exchanges
    /// `0..request` are gone, and the next exchange is number `request`.
    pub request: u32,
    /// The first response left (`msg_seq` in the ingress direction): the first
    /// `request` final responses, and every interim one before them, are gone.
    pub response: u32,
}

/// Everything seen of one HTTP message.
#[derive(Default)]
pub(super) struct Message {
    pub(super) head: Fragments,
    pub(super) body: Fragments,
    pub(super) end: Option<MsgEnd>,
    /// Wall time of the `MsgEnd` record: when the last byte was written or read.
    pub(super) end_wall_ns: Option<u64>,
    pub(super) first_wall_ns: Option<u64>,
    pub(super) last_wall_ns: u64,
    /// The furthest `MsgProgress` of a message without an end: its counts so far.
    pub(super) progress: Option<MsgEnd>,
}

impl Message {
    pub(super) fn flag(&self, f: u16) -> bool {
        self.end.is_some_and(|e| e.has(f))
    }

    pub(super) fn start_wall_ns(&self) -> Option<u64> {
        self.end
            .map(|e| e.start_wall_ns)
            .filter(|&t| t != 0)
            .or(self.first_wall_ns)
    }

    pub(super) fn end_wall_ns(&self) -> u64 {
        self.end_wall_ns.unwrap_or(self.last_wall_ns)
    }
}

/// What a socket's `ConnOpen` tells about how it was set up.
#[derive(Clone, Copy, Debug)]
pub(super) struct SocketSetup {
    /// When a non-blocking `connect` started (`CONNECT_STARTED`); `None` when the
    /// start is not known (a blocking `connect` is stamped when it returned).
    pub(super) connect_started_wall_ns: Option<u64>,
    /// When `SO_ERROR` said the connect succeeded, when the library saw it ask.
    pub(super) established_wall_ns: Option<u64>,
    /// The socket's first write (its `ConnOpen`'s time): the connection was
    /// established by then; for TLS, the ClientHello.
    pub(super) first_write_wall_ns: u64,
}

impl SocketSetup {
    /// The connect phase: its start to `SO_ERROR`'s answer, else to the first write.
    fn connect_ns(&self) -> Option<u64> {
        let end = self.established_wall_ns.unwrap_or(self.first_write_wall_ns);
        span(self.connect_started_wall_ns?, end)
    }
}

/// `to - from` when both are stamps and in order.
fn span(from: u64, to: u64) -> Option<u64> {
    (from != 0 && to >= from).then(|| to - from)
}

/// One connection's records, sorted out.
pub(super) struct Connection {
    pub(super) conn_id: u64,
    /// Messages before these were handed out already (see [`ConnStart`]).
    pub(super) start: ConnStart,
    pub(super) pid: u32,
    pub(super) open: Option<ConnOpen>,
    /// Wall time of the `ConnOpen` record: the connection's first write (for a TLS
    /// socket the ClientHello, for a TLS library's plaintext the first plaintext).
    pub(super) open_wall_ns: Option<u64>,
    pub(super) close: Option<ConnClose>,
    pub(super) close_wall_ns: Option<u64>,
    pub(super) tls_library: Option<TlsLibrary>,
    pub(super) tls_sni: Option<String>,
    pub(super) tls_alpn: Option<String>,
    pub(super) tls_fd: i32,
    pub(super) tls_socket_conn: Option<u64>,
    pub(super) raw: Fragments,
    pub(super) requests: BTreeMap<u32, Message>,
    pub(super) responses: BTreeMap<u32, Message>,
    pub(super) first_wall_ns: u64,
    pub(super) last_wall_ns: u64,
    pub(super) first_mono_ns: u64,
    pub(super) last_mono_ns: u64,
    /// For a TLS socket: its plaintext is reported by another connection.
    pub(super) has_plaintext: bool,
    /// For a plaintext connection: facts borrowed from its TLS socket.
    pub(super) socket_peer: Option<SocketAddr>,
    pub(super) socket_sni: Option<String>,
    /// For a plaintext connection: how its TLS socket was set up.
    pub(super) socket_setup: Option<SocketSetup>,
    /// HTTP/2 records, in reading order ([`crate::http2`] makes the exchanges).
    pub(super) h2: Vec<H2Record>,
    /// Why its TLS handshake failed (its own `Failure` records, or, for a plaintext
    /// connection, its socket's).
    pub(super) tls_failure: Option<TlsFailure>,
    /// Its process reported records lost (`Drops`): a hole in a message is lost
    /// records, and says so.
    pub(super) records_lost: bool,
}

impl Connection {
    pub(super) fn build(conn_id: u64, start: ConnStart, entries: &[&SpoolEntry]) -> Connection {
        let first = entries.first().map(|e| e.meta);
        let mut c = Connection {
            conn_id,
            start,
            pid: first.map_or(0, |m| m.pid),
            open: None,
            open_wall_ns: None,
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
            socket_setup: None,
            h2: Vec::new(),
            tls_failure: None,
            records_lost: false,
        };
        for e in entries {
            c.last_wall_ns = c.last_wall_ns.max(e.meta.wall_ns);
            c.last_mono_ns = c.last_mono_ns.max(e.meta.mono_ns);
            match &e.record {
                SpoolRecord::ConnOpen(o) if c.open.is_none() => {
                    c.open = Some(*o);
                    c.open_wall_ns = Some(e.meta.wall_ns);
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
                SpoolRecord::Data(f, _)
                    if f.part != Part::Raw && c.before_start(f.dir, f.msg_seq) => {}
                SpoolRecord::MsgEnd(m) | SpoolRecord::MsgProgress(m)
                    if c.before_start(m.dir, m.msg_seq) => {}
                SpoolRecord::Data(f, bytes) => c.add_fragment(f, bytes, e.meta.wall_ns),
                SpoolRecord::H2(f) => c.h2.push(H2Record {
                    dir: f.dir,
                    wall_ns: e.meta.wall_ns,
                    event: f.event.clone(),
                }),
                SpoolRecord::Failure { .. } => {
                    if let Some(f) = FailedCall::of(e) {
                        c.add_tls_failure(f.tls_failure());
                    }
                }
                SpoolRecord::MsgProgress(m) => {
                    let msg = c.message(m.dir, m.msg_seq);
                    if msg.progress.is_none_or(|p| p.wire_len <= m.wire_len) {
                        msg.progress = Some(*m);
                    }
                    msg.last_wall_ns = msg.last_wall_ns.max(e.meta.wall_ns);
                    msg.first_wall_ns.get_or_insert(e.meta.wall_ns);
                }
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

    fn add_tls_failure(&mut self, f: TlsFailure) {
        self.tls_failure = Some(match self.tls_failure.take() {
            Some(had) => had.or_better(f),
            None => f,
        });
    }

    /// The `error` of an exchange of this connection that got no response, when its
    /// TLS handshake failed.
    pub(super) fn tls_error(&self) -> Option<&str> {
        self.tls_failure.as_ref().map(|f| f.text.as_str())
    }

    /// True for a message whose exchange was handed out before [`Self::start`].
    pub(super) fn before_start(&self, dir: Direction, seq: u32) -> bool {
        match dir {
            Direction::Egress => seq < self.start.request,
            Direction::Ingress | Direction::Unknown(_) => seq < self.start.response,
        }
    }

    pub(super) fn message(&mut self, dir: Direction, seq: u32) -> &mut Message {
        match dir {
            Direction::Egress => self.requests.entry(seq).or_default(),
            Direction::Ingress | Direction::Unknown(_) => self.responses.entry(seq).or_default(),
        }
    }

    pub(super) fn add_fragment(&mut self, f: &Data, bytes: &[u8], wall_ns: u64) {
        if f.part == Part::Raw {
            if f.dir == Direction::Egress {
                self.raw.push(f.offset, bytes);
            }
            return;
        }
        let msg = self.message(f.dir, f.msg_seq);
        msg.first_wall_ns.get_or_insert(wall_ns);
        msg.last_wall_ns = msg.last_wall_ns.max(wall_ns);
        match f.part {
            Part::Head => msg.head.push(f.offset, bytes),
            Part::Body => msg.body.push(f.offset, bytes),
            Part::Raw | Part::Unknown(_) => {}
        }
    }

    /// Why the connection ended, and the errno of a failed read or write.
    pub(super) fn close_reason(&self) -> Option<(CloseReason, i32)> {
        self.close.map(|c| (c.reason, c.errno))
    }

    pub(super) fn protocol(&self) -> Option<Protocol> {
        self.open
            .map(|o| o.protocol)
            .or(self.close.and_then(|c| c.protocol.known()))
    }

    pub(super) fn fd(&self) -> i32 {
        match self.open {
            Some(o) if o.fd >= 0 => o.fd,
            _ => self.tls_fd,
        }
    }

    pub(super) fn peer(&self) -> Option<SocketAddr> {
        self.open
            .and_then(|o| socket_addr(&o.peer))
            .or(self.socket_peer)
    }

    /// How this connection's socket was set up, from its own `ConnOpen`.
    fn own_setup(&self) -> Option<SocketSetup> {
        let open = self.open?;
        let started = open.flags & tapline_record::conn_flags::CONNECT_STARTED != 0;
        Some(SocketSetup {
            connect_started_wall_ns: (started && open.connect_wall_ns != 0)
                .then_some(open.connect_wall_ns),
            established_wall_ns: (started && open.established_wall_ns != 0)
                .then_some(open.established_wall_ns),
            first_write_wall_ns: self.open_wall_ns?,
        })
    }

    /// The set-up phases of the connection's first exchange, `(connect, tls)` in ns:
    /// connect from a non-blocking `connect` to `SO_ERROR` saying it succeeded (else
    /// to the socket's first write); TLS from the ClientHello written on the socket to
    /// the first plaintext written through the TLS library. Each only when both its
    /// ends were recorded.
    pub(super) fn setup_phases(&self) -> (Option<u64>, Option<u64>) {
        match self.socket_setup {
            // Plaintext through a TLS library: its socket tells the connect and the
            // ClientHello; its own first write is the first plaintext.
            Some(socket) => (
                socket.connect_ns(),
                self.open_wall_ns
                    .and_then(|p| span(socket.first_write_wall_ns, p)),
            ),
            None => (self.own_setup().and_then(|s| s.connect_ns()), None),
        }
    }

    /// The library marked the connection as the traced runtime's Runtime API one.
    pub(super) fn runtime_api(&self) -> bool {
        self.open
            .is_some_and(|o| o.flags & tapline_record::conn_flags::RUNTIME_API != 0)
    }

    pub(super) fn is_tls(&self) -> bool {
        matches!(
            self.protocol(),
            Some(Protocol::Tls | Protocol::TlsPlaintext)
        ) || self.tls_library.is_some()
    }

    pub(super) fn tls_kind(&self) -> TlsKind {
        match (self.protocol(), self.tls_library) {
            (_, Some(TlsLibrary::GnuTls)) => TlsKind::GnuTls,
            (_, Some(TlsLibrary::OpenSsl)) => TlsKind::OpenSsl,
            (_, Some(TlsLibrary::Jsse)) => TlsKind::Jsse,
            // Plaintext from a TLS hook whose TlsInfo was lost: OpenSSL is by far the
            // most common library, and "none" would claim the socket was plaintext.
            (Some(Protocol::TlsPlaintext), None) => TlsKind::OpenSsl,
            (Some(Protocol::Tls), None) => TlsKind::Opaque,
            _ => TlsKind::None,
        }
    }

    /// `(sni, alpn)` of the captured ClientHello, if there is one.
    pub(super) fn client_hello(&self) -> (Option<String>, Option<String>) {
        if self.raw.is_empty() {
            return (None, None);
        }
        let (raw, _) = self.raw.joined();
        match parse_client_hello(&raw) {
            Ok(h) => (h.sni, (!h.alpn.is_empty()).then(|| h.alpn.join(","))),
            Err(_) => (None, None),
        }
    }
}

/// An IPv4-mapped IPv6 address (`[::ffff:a.b.c.d]`, Java's sockets) as the IPv4 one.
fn unmapped(a: Option<SocketAddr>) -> Option<SocketAddr> {
    a.map(|a| match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        v4 => v4,
    })
}

/// Marries TLS sockets to the plaintext connections seen through TLS hooks on the same
/// fd of the same process while the socket was open, so that each is reported once.
pub(super) fn link_tls_sockets(conns: &mut [Connection]) {
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
        let (peer, sni, setup, failure) = {
            let s = &conns[si];
            (
                s.peer(),
                s.client_hello().0,
                s.own_setup(),
                s.tls_failure.clone(),
            )
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
            // same time; else (memory BIOs, Java's SSLEngine: no fd) the same server name
            // at the same time, or — no server name for an address literal — the same
            // peer address the TLS engine was made for.
            let named = c.tls_socket_conn == Some(socket_conn);
            let same_fd = fd >= 0 && c.pid == pid && c.fd() == fd && overlaps;
            let unnamed = c.fd() < 0 && c.tls_socket_conn.is_none() && c.pid == pid && overlaps;
            let same_name = unnamed && sni.is_some() && c.tls_sni == sni;
            // A Java SSLEngine session knows its peer's port, and its address only for
            // an address literal; the JDK sends no SNI for a name without a dot
            // (`localhost`), so the port (and the address when known) must do.
            let own_peer = c.open.and_then(|o| socket_addr(&o.peer));
            let own_port = c.open.map(|o| o.peer.port).filter(|&p| p != 0);
            let same_peer = unnamed
                && sni.is_none()
                && peer.is_some_and(|p| {
                    own_port == Some(p.port())
                        && (own_peer.is_none() || unmapped(own_peer) == unmapped(Some(p)))
                });
            if named || same_fd || same_name || same_peer {
                if c.open.and_then(|o| socket_addr(&o.peer)).is_none() {
                    c.socket_peer = peer;
                }
                c.socket_sni = sni.clone();
                c.socket_setup = setup;
                if let Some(f) = failure.clone() {
                    c.add_tls_failure(f);
                }
                linked = true;
            }
        }
        conns[si].has_plaintext = linked;
    }
    link_failed_handshakes(conns);
}

/// A plaintext connection of a memory-BIO session (node: no socket fd, no socket named)
/// whose handshake failed may be written after its socket closed — node hands the
/// request to `SSL_write` while it tears the connection down — so it overlaps no
/// socket in time. It is the same call as the last socket of the same process to the
/// same server name that opened before it and was not linked: one exchange, with the
/// socket's peer.
fn link_failed_handshakes(conns: &mut [Connection]) {
    for pi in 0..conns.len() {
        let c = &conns[pi];
        let unlinked = c.protocol() == Some(Protocol::TlsPlaintext)
            && c.tls_failure.is_some()
            && c.fd() < 0
            && c.tls_socket_conn.is_none()
            && c.socket_peer.is_none()
            && c.tls_sni.is_some();
        if !unlinked {
            continue;
        }
        let (pid, sni, at) = (c.pid, c.tls_sni.clone(), c.first_mono_ns);
        let socket = conns
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.protocol() == Some(Protocol::Tls)
                    && !s.has_plaintext
                    && s.pid == pid
                    && s.first_mono_ns <= at
                    && s.client_hello().0 == sni
            })
            .max_by_key(|(_, s)| s.first_mono_ns)
            .map(|(i, _)| i);
        let Some(si) = socket else { continue };
        let peer = conns[si].peer();
        let failure = conns[si].tls_failure.clone();
        conns[si].has_plaintext = true;
        let c = &mut conns[pi];
        c.socket_peer = peer;
        c.socket_sni = sni;
        if let Some(f) = failure {
            c.add_tls_failure(f);
        }
    }
}
