//! What happens after a hooked call returned: the safe logic behind the `extern "C"`
//! shims in [`crate::hooks`].
//!
//! Each function is told what the real call did (bytes done, error) and updates the
//! connection table, frames HTTP/1.x and emits records. It never changes what the caller
//! sees; the shim has already saved the result and errno, and restores errno after.

use core::sync::atomic::Ordering;
use tapline_record::{
    CloseReason, ConnClose, ConnOpen, Data, Direction, Failure, FailureStage, MsgEnd, Part,
    Protocol, Stamp, WireAddr,
};

pub use crate::bytes::Bytes;
use crate::conn::{self, origin, state, ConnInfo, Slot};
use crate::http1::{FrameSink, Role, Verdict};
use crate::lambda::LifecycleSink;
use crate::tls_wire::Walk;
use crate::{config, http2, names, spool, tls};
use tapline_record::failure_flags;

/// How many first bytes of a TLS connection are kept (the ClientHello, for SNI/ALPN).
const RAW_HELLO_LIMIT: usize = 2048;

/// Is this fd one whose traffic we look at? (The shims' fast path.)
#[inline]
pub fn interesting(fd: i32) -> bool {
    match conn::slot(fd) {
        Some(s) => matches!(
            s.state.load(Ordering::Relaxed),
            state::PENDING | state::HTTP | state::TLS | state::H2C
        ),
        None => false,
    }
}

/// Is this fd in the table at all (including ignored connections)?
#[inline]
pub fn known(fd: i32) -> bool {
    conn::slot(fd).is_some_and(|s| s.state.load(Ordering::Relaxed) != state::FREE)
}

/// `connect` succeeded (`in_progress` false) or is in progress (`EINPROGRESS`) on `fd`.
///
/// # Safety
/// `addr` must be valid for `len` bytes (it was just passed to the real `connect`).
pub unsafe fn on_connect(
    fd: i32,
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
    in_progress: bool,
) {
    let Some(slot) = conn::slot(fd) else { return };
    if addr.is_null() {
        return;
    }
    // SAFETY: the caller guarantees `addr` is valid for `len` bytes.
    let peer = unsafe { wire_addr(addr, len) };
    let Some(peer) = peer else { return };
    if !is_stream_socket(fd) {
        return;
    }
    let local = local_addr(fd).unwrap_or_default();
    let info = ConnInfo {
        fd,
        peer,
        local,
        connect: spool::now(),
        connect_started: in_progress,
    };
    if slot.start(conn::new_conn_id(spool::pid()), origin::SOCKET, info) {
        conn::set_watch(fd, conn::watch::CONN, true);
    }
}

/// A blocking `connect` on `fd` failed with `errno` (`addr` as given to it).
///
/// # Safety
/// `addr` must be valid for `len` bytes (it was just passed to the real `connect`).
pub unsafe fn on_connect_failed(
    fd: i32,
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
    errno: i32,
) {
    if addr.is_null() || !is_stream_socket(fd) {
        return;
    }
    // SAFETY: the caller guarantees `addr` is valid for `len` bytes.
    if let Some(peer) = unsafe { wire_addr(addr, len) } {
        connect_failed(&peer, errno);
    }
}

/// `getsockopt(SO_ERROR)` on `fd` said `errno`: a non-blocking connect still pending
/// here failed (node, asyncio and curl learn it this way).
pub fn on_so_error(fd: i32, errno: i32) {
    let Some(slot) = conn::slot(fd) else { return };
    pending_failed(slot, errno);
}

/// `getsockopt(SO_ERROR)` on `fd` said 0: a non-blocking connect still pending here
/// is established (curl, node, asyncio and CPython with a timeout ask this way). The
/// first answer is kept: it is the connect phase's end.
pub fn on_so_error_none(fd: i32) {
    let Some(slot) = conn::slot(fd) else { return };
    if slot.state.load(Ordering::Acquire) != state::PENDING || !slot.info().connect_started {
        return;
    }
    let _ = slot.established_wall.compare_exchange(
        0,
        spool::now().wall_ns,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
}

/// A connect that had not carried a byte yet failed: reported once (the slot leaves
/// PENDING first, so a second report loses the race).
fn pending_failed(slot: &Slot, errno: i32) {
    if slot.bytes[0].load(Ordering::Relaxed) != 0
        || slot
            .state
            .compare_exchange(
                state::PENDING,
                state::IGNORED,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
    {
        return;
    }
    connect_failed(&slot.info().peer, errno);
}

/// Writes the `Failure` of a connect to `peer`, named by the lookup that gave it.
fn connect_failed(peer: &WireAddr, errno: i32) {
    if peer.family != tapline_record::AF_INET && peer.family != tapline_record::AF_INET6 {
        return;
    }
    let named = names::name_for(peer);
    let name = named.as_ref().map_or(&[][..], |(n, len)| &n[..*len]);
    let fixed = Failure {
        stage: FailureStage::Connect,
        flags: 0,
        name_len: name.len() as u16,
        code: errno,
        peer: *peer,
        reason_len: 0,
    };
    let conn_id = conn::new_conn_id(spool::pid());
    spool::failure(conn_id, &fixed, name, &[], spool::now());
}

/// The process wrote `done` bytes of `bytes` to socket `fd`.
pub fn on_egress(fd: i32, bytes: Bytes<'_>, done: usize) {
    let Some(slot) = conn::slot(fd) else { return };
    egress(slot, bytes, done, |_, _| {});
    tls::note_inner_socket(fd);
}

/// The process read `done` bytes into `bytes` from socket `fd`.
pub fn on_ingress(fd: i32, bytes: Bytes<'_>, done: usize) {
    let Some(slot) = conn::slot(fd) else { return };
    ingress(slot, bytes, done);
    tls::note_inner_socket(fd);
}

/// A read on socket `fd` returned 0: the peer closed its side.
pub fn on_eof(fd: i32) {
    if let Some(slot) = conn::slot(fd) {
        eof(slot);
        tls::note_inner_socket(fd);
    }
}

/// A read on socket `fd` failed with `errno`.
pub fn on_error(fd: i32, errno: i32) {
    if let Some(slot) = conn::slot(fd) {
        error(slot, errno);
        tls::note_inner_socket(fd);
    }
}

/// A write on socket `fd` failed with `errno`.
pub fn on_send_error(fd: i32, errno: i32) {
    if let Some(slot) = conn::slot(fd) {
        send_error(slot, errno);
    }
}

/// A write failed with `errno`. `EPIPE`/`ECONNRESET` on an HTTP/1 connection end the
/// request only: a server that answers an upload early (413, 401) and closes with the
/// body unread makes the client's next write fail, and the client then reads the
/// answer that is already in its socket. The response side stays followed; the
/// connection's end carries the errno. Anything else is [`error`].
pub fn send_error(slot: &Slot, errno: i32) {
    if !matches!(errno, libc::EPIPE | libc::ECONNRESET)
        || slot.state.load(Ordering::Acquire) != state::HTTP
    {
        return error(slot, errno);
    }
    if slot
        .send_errno
        .compare_exchange(0, errno, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return; // the request was ended by an earlier failed write
    }
    let now = spool::now();
    let conn_id = slot.conn_id.load(Ordering::Relaxed);
    slot.with_framer(0, |fr, _, _| {
        fr.finish_on_close(&mut RecordSink::new(conn_id, Direction::Egress, now))
    });
}

/// A connection taken out of the table just before the real `close`, so that a thread
/// that is handed the same fd number the moment it is free never feeds its bytes to
/// this connection. Only the state word changes before the call: capture is skipped,
/// never added.
#[derive(Clone, Copy)]
pub struct Detached {
    state: u8,
    conn_id: u64,
}

/// Detaches `fd`'s connection (call before the real `close`).
#[inline]
pub fn detach(fd: i32) -> Option<Detached> {
    let slot = conn::slot(fd)?;
    let conn_id = slot.conn_id.load(Ordering::Acquire);
    let st = slot.state.swap(state::FREE, Ordering::AcqRel);
    conn::set_watch(fd, conn::watch::CONN, false);
    (st != state::FREE).then_some(Detached { state: st, conn_id })
}

/// Before the real `close` of a connection [`detach`] found still PENDING (no byte
/// written): whether its connect never finished (TCP still in SYN-SENT: the program
/// gave up waiting, as `curl --connect-timeout` and asyncio's `wait_for` do). One
/// `getsockopt(TCP_INFO)`, the only call made on a descriptor before its `close`.
pub fn connect_unfinished(fd: i32, d: Option<Detached>) -> Option<WireAddr> {
    let d = d.filter(|d| d.state == state::PENDING)?;
    let slot = conn::slot(fd)?;
    if slot.bytes[0].load(Ordering::Relaxed) != 0
        || slot.conn_id.load(Ordering::Relaxed) != d.conn_id
    {
        return None;
    }
    // SAFETY: an all-zero tcp_info is a valid value of this plain C struct.
    let mut info: libc::tcp_info = unsafe { core::mem::zeroed() };
    let mut len = core::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let r = crate::sys::raw::syscall6(
        libc::SYS_getsockopt,
        [
            fd as usize,
            libc::IPPROTO_TCP as usize,
            libc::TCP_INFO as usize,
            &mut info as *mut libc::tcp_info as usize,
            &mut len as *mut libc::socklen_t as usize,
            0,
        ],
    );
    const TCP_SYN_SENT: u8 = 2;
    (r == 0 && len >= 1 && info.tcpi_state == TCP_SYN_SENT).then(|| slot.info().peer)
}

/// A connect the program gave up on before it finished ([`connect_unfinished`]).
pub fn on_connect_abandoned(peer: &WireAddr) {
    connect_failed(peer, libc::ETIMEDOUT);
}

/// `close(fd)` returned; `detached` is what [`detach`] took out before the call.
pub fn on_close(fd: i32, detached: Option<Detached>) {
    spool::file::descriptor_closed(fd, fd);
    let (Some(slot), Some(d)) = (conn::slot(fd), detached) else {
        return;
    };
    if matches!(d.state, state::HTTP | state::TLS | state::H2C) {
        let reason = if slot.eof.load(Ordering::Relaxed) {
            CloseReason::PeerEof
        } else {
            CloseReason::Closed
        };
        end_connection(slot, d.conn_id, d.state, reason, 0, spool::now());
    }
}

/// The process is exiting (`exit`, return from `main`): every connection still open
/// gets its end written — cut-off messages, and a `ConnClose` with the byte counts,
/// which opaque TLS connections need most (Java's pool and node's sockets are often
/// still open at exit). `_exit` and fatal signals skip this; the reader copes.
pub fn flush_at_exit() {
    let now = spool::now();
    tls::each_session(|s| end_if_followed(&s.slot, CloseReason::AtExit, 0, now));
    conn::each_slot(|slot| end_if_followed(slot, CloseReason::AtExit, 0, now));
    spool::report_drops_at_exit(now);
}

/// Ends a connection that is being followed (exactly once: the state moves to ENDED
/// first, so a concurrent ender loses the race and writes nothing).
fn end_if_followed(slot: &Slot, reason: CloseReason, errno: i32, now: Stamp) {
    let st = slot.state.load(Ordering::Acquire);
    if matches!(st, state::HTTP | state::TLS | state::H2C)
        && slot
            .state
            .compare_exchange(st, state::ENDED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        let conn_id = slot.conn_id.load(Ordering::Relaxed);
        end_connection(slot, conn_id, st, reason, errno, now);
    }
}

/// `close_range(lo, hi)` returned: forget every connection in the range.
pub fn on_close_range(lo: u32, hi: u32) {
    let hi_fd = hi.min(conn::MAX_FDS as u32 - 1);
    spool::file::descriptor_closed(
        lo.min(i32::MAX as u32) as i32,
        hi.min(i32::MAX as u32) as i32,
    );
    let mut fd = lo;
    while fd <= hi_fd {
        if known(fd as i32) {
            on_close(fd as i32, detach(fd as i32));
        }
        fd += 1;
    }
}

/// Bytes written on a followed connection (a socket, or a TLS session's plaintext).
/// `on_open` runs right after the connection's `ConnOpen` is written, if this call
/// classified it (the TLS hooks add their `TlsInfo` there).
pub fn egress(slot: &Slot, bytes: Bytes<'_>, done: usize, on_open: impl FnOnce(u64, Stamp)) {
    if done == 0 {
        return;
    }
    let now = spool::now();
    let mut st = slot.state.load(Ordering::Acquire);
    if st == state::PENDING {
        st = classify(slot, bytes.first(done), now, on_open);
    }
    match st {
        state::HTTP => {
            count(slot, 0, done, now);
            frame(slot, 0, bytes, done, now);
        }
        state::H2C => {
            count(slot, 0, done, now);
            frame_h2(slot, 0, bytes, done, now);
        }
        state::TLS => {
            count(slot, 0, done, now);
            walk_tls(slot, 0, bytes, done);
        }
        _ => {}
    }
}

/// Bytes read on a followed connection.
pub fn ingress(slot: &Slot, bytes: Bytes<'_>, done: usize) {
    let now = spool::now();
    match slot.state.load(Ordering::Acquire) {
        // A response read before the request's write was captured: the write and the read
        // run on different threads (Java's HttpClient, async runtimes) and the reader won
        // the race to capture. The bytes say HTTP/1.x as clearly as a request would.
        state::PENDING
            if slot.origin.load(Ordering::Relaxed) == origin::SOCKET
                && bytes.first(done).starts_with(b"HTTP/1.")
                && open_as(slot, state::HTTP, Protocol::Http1, &[], now, |_, _| {})
                    == state::HTTP =>
        {
            count(slot, 1, done, now);
            frame(slot, 1, bytes, done, now);
        }
        // Anything else read first classifies nothing: a server that speaks first (SMTP,
        // MySQL) is ignored once the client's first write is not HTTP or TLS; and such a
        // read may be one that was in flight on the same fd number before it was closed
        // and reused.
        state::HTTP => {
            count(slot, 1, done, now);
            frame(slot, 1, bytes, done, now);
        }
        state::H2C => {
            count(slot, 1, done, now);
            frame_h2(slot, 1, bytes, done, now);
        }
        state::TLS => {
            count(slot, 1, done, now);
            walk_tls(slot, 1, bytes, done);
        }
        _ => {}
    }
}

/// TLS ciphertext moved on a socket: during the handshake, look for an alert
/// ([`crate::tls_wire`]) and write it as the connection's `Failure`.
fn walk_tls(slot: &Slot, dir: usize, bytes: Bytes<'_>, done: usize) {
    let seen = slot.with_busy(dir, || {
        let mut walk = Walk::unpack(slot.tls_walk[dir].load(Ordering::Relaxed));
        if walk.done() {
            return None;
        }
        let mut seen = None;
        bytes.each(done, |piece| {
            if seen.is_none() {
                seen = walk.step(piece, dir == 0);
            }
        });
        slot.tls_walk[dir].store(walk.pack(), Ordering::Relaxed);
        seen
    });
    let Some(Some(desc)) = seen else { return };
    let flags = failure_flags::TLS_ALERT
        | if dir == 1 {
            failure_flags::TLS_ALERT_FROM_PEER
        } else {
            0
        };
    let conn_id = slot.conn_id.load(Ordering::Relaxed);
    tls_failed(conn_id, &slot.info().peer, flags, i32::from(desc), &[], &[]);
}

/// Writes the `Failure` of a TLS handshake on connection `conn_id` (the socket's, when
/// it is followed) to `peer`; `sni` names the server when the peer's lookup does not.
pub fn tls_failed(conn_id: u64, peer: &WireAddr, flags: u8, code: i32, sni: &[u8], reason: &[u8]) {
    let named = names::name_for(peer);
    let name = match &named {
        Some((n, len)) if sni.is_empty() => &n[..*len],
        _ => sni,
    };
    let reason = &reason[..reason.len().min(512)];
    let fixed = Failure {
        stage: FailureStage::Tls,
        flags,
        name_len: name.len() as u16,
        code,
        peer: *peer,
        reason_len: reason.len() as u16,
    };
    spool::failure(conn_id, &fixed, name, reason, spool::now());
}

/// The peer closed its side: a close-delimited response is complete.
pub fn eof(slot: &Slot) {
    if slot.state.load(Ordering::Acquire) != state::HTTP || slot.eof.swap(true, Ordering::AcqRel) {
        return;
    }
    let now = spool::now();
    let conn_id = slot.conn_id.load(Ordering::Relaxed);
    slot.with_framer(1, |fr, _, _| {
        fr.finish_on_close(&mut RecordSink::new(conn_id, Direction::Ingress, now))
    });
}

/// A read or write failed with `errno`. Connection-ending errors end the connection;
/// EAGAIN, EINTR and the like change nothing.
pub fn error(slot: &Slot, errno: i32) {
    // The first read or write on a non-blocking connect that failed.
    if slot.state.load(Ordering::Relaxed) == state::PENDING
        && matches!(
            errno,
            libc::ECONNREFUSED | libc::ETIMEDOUT | libc::EHOSTUNREACH | libc::ENETUNREACH
        )
    {
        return pending_failed(slot, errno);
    }
    if !matches!(
        errno,
        libc::ECONNRESET
            | libc::EPIPE
            | libc::ETIMEDOUT
            | libc::ECONNABORTED
            | libc::EHOSTUNREACH
            | libc::ENETUNREACH
            | libc::ENETDOWN
    ) {
        return;
    }
    end_if_followed(slot, CloseReason::Error, errno, spool::now());
}

/// The connection was closed by the process (or its TLS session freed). Does nothing
/// if the slot now belongs to another connection than `conn_id`.
pub fn close(slot: &Slot, conn_id: u64) {
    if slot.conn_id.load(Ordering::Acquire) != conn_id {
        return;
    }
    let st = slot.state.swap(state::FREE, Ordering::AcqRel);
    if let Some(fd) = conn::fd_of(slot) {
        conn::set_watch(fd, conn::watch::CONN, false);
    }
    if matches!(st, state::HTTP | state::TLS | state::H2C) {
        let reason = if slot.eof.load(Ordering::Relaxed) {
            CloseReason::PeerEof
        } else {
            CloseReason::Closed
        };
        end_connection(slot, conn_id, st, reason, 0, spool::now());
    }
}

/// Decides from the first bytes written what a PENDING connection carries, and writes
/// its `ConnOpen` (and, for TLS, the ClientHello) when it is worth following.
fn classify(slot: &Slot, first: &[u8], now: Stamp, on_open: impl FnOnce(u64, Stamp)) -> u8 {
    let from_tls = slot.origin.load(Ordering::Relaxed) != origin::SOCKET;
    let (new_state, protocol) = match sniff(first) {
        Some(Protocol::Http1) if from_tls => (state::HTTP, Protocol::TlsPlaintext),
        Some(p @ Protocol::Http1) => (state::HTTP, p),
        Some(p @ Protocol::Tls) if !from_tls => (state::TLS, p),
        Some(p @ Protocol::H2c) => (state::H2C, p),
        _ => (state::IGNORED, Protocol::Http1),
    };
    open_as(slot, new_state, protocol, first, now, on_open)
}

/// Moves a PENDING connection to `new_state` and announces it. Returns the state the
/// connection is in afterwards (another thread may have classified it first).
fn open_as(
    slot: &Slot,
    new_state: u8,
    protocol: Protocol,
    first: &[u8],
    now: Stamp,
    on_open: impl FnOnce(u64, Stamp),
) -> u8 {
    let from_tls = slot.origin.load(Ordering::Relaxed) != origin::SOCKET;
    if slot
        .state
        .compare_exchange(
            state::PENDING,
            new_state,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_err()
    {
        return slot.state.load(Ordering::Acquire);
    }
    if new_state == state::IGNORED {
        return new_state;
    }
    let info = slot.info();
    let conn_id = slot.conn_id.load(Ordering::Relaxed);
    let open = ConnOpen {
        fd: info.fd,
        protocol,
        flags: if slot.runtime_api.load(Ordering::Relaxed) {
            tapline_record::conn_flags::RUNTIME_API
        } else {
            0
        } | if info.connect_started && !from_tls {
            tapline_record::conn_flags::CONNECT_STARTED
        } else {
            0
        },
        connect_wall_ns: info.connect.wall_ns,
        connect_mono_ns: info.connect.mono_ns,
        established_wall_ns: if from_tls {
            0
        } else {
            slot.established_wall.load(Ordering::Relaxed)
        },
        peer: info.peer,
        local: info.local,
    };
    if !from_tls {
        names::emit_for(conn_id, &info.peer, now);
    }
    spool::conn_open(conn_id, &open, now);
    on_open(conn_id, now);
    if new_state == state::H2C {
        http2::open(
            slot,
            conn_id,
            http2::how_for_preface(from_tls),
            0,
            true,
            now,
        );
    }
    if new_state == state::TLS {
        let hello = &first[..first.len().min(RAW_HELLO_LIMIT)];
        let fixed = Data {
            dir: Direction::Egress,
            part: Part::Raw,
            flags: 0,
            msg_seq: 0,
            offset: 0,
            len: hello.len() as u32,
        };
        spool::data(conn_id, &fixed, hello, now);
    }
    new_state
}

/// What the first bytes of a client connection say it carries.
pub fn sniff(first: &[u8]) -> Option<Protocol> {
    if first.len() >= 3 && first[0] == 0x16 && first[1] == 0x03 && first[2] <= 0x04 {
        return Some(Protocol::Tls);
    }
    if first.starts_with(b"PRI * HTTP/2.0") {
        return Some(Protocol::H2c);
    }
    // An HTTP/1.x request line: METHOD SP target. Methods are upper-case tokens.
    let method_len = first.iter().take_while(|b| b.is_ascii_uppercase()).count();
    if (3..=16).contains(&method_len) && first.get(method_len) == Some(&b' ') {
        let rest = &first[method_len + 1..];
        let target = rest.first().copied();
        let connect = &first[..method_len] == b"CONNECT";
        let absolute = |scheme: &[u8]| {
            let n = rest.len().min(scheme.len());
            n > 0 && rest[..n] == scheme[..n]
        };
        if matches!(target, Some(b'/') | Some(b'*') | None)
            || absolute(b"http://")
            || absolute(b"https://")
            || (connect && is_authority_start(target))
        {
            return Some(Protocol::Http1);
        }
    }
    None
}

/// CONNECT's target is `host:port`.
fn is_authority_start(b: Option<u8>) -> bool {
    b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'[')
}

fn count(slot: &Slot, dir: usize, done: usize, now: Stamp) {
    slot.bytes[dir].fetch_add(done as u64, Ordering::Relaxed);
    if dir == 0 {
        let _ = slot.first_out_wall.compare_exchange(
            0,
            now.wall_ns,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    } else {
        slot.last_in_wall.store(now.wall_ns, Ordering::Relaxed);
    }
}

/// Feeds the bytes to the direction's framer; stops following on a verdict.
fn frame(slot: &Slot, dir: usize, bytes: Bytes<'_>, done: usize, now: Stamp) {
    let conn_id = slot.conn_id.load(Ordering::Relaxed);
    let (direction, role) = if dir == 0 {
        (Direction::Egress, Role::Request)
    } else {
        (Direction::Ingress, Role::Response)
    };
    let max_body = config::max_body();
    let runtime_api = dir == 0 && slot.runtime_api.load(Ordering::Relaxed);
    let mut h2c = None;
    let verdict = slot.with_framer(dir, |fr, kinds, pending| {
        let mut sink = RecordSink::new(conn_id, direction, now);
        let mut verdict = Verdict::Continue;
        let mut index = 0;
        bytes.each(done, |piece| {
            if verdict != Verdict::Continue {
                return;
            }
            index += 1;
            verdict = if dir == 1 {
                // A 101 to h2c: the connection goes on as HTTP/2 (http2::upgrade).
                let mut watch = http2::upgrade::UpgradeWatch::new(&mut sink);
                let v = fr.feed(role, piece, now, max_body, kinds, &mut watch);
                if v == Verdict::Upgraded {
                    h2c = watch.resume(index - 1, piece);
                }
                v
            } else if runtime_api {
                let mut watch = LifecycleSink {
                    inner: &mut sink,
                    pending: &mut *pending,
                    at: now,
                };
                fr.feed(role, piece, now, max_body, kinds, &mut watch)
            } else {
                fr.feed(role, piece, now, max_body, kinds, &mut sink)
            };
        });
        verdict
    });
    let reason = match verdict {
        Some(Verdict::Continue) => return,
        Some(Verdict::Upgraded) => match h2c {
            Some((msg_seq, at)) => {
                if http2::switch_to_h2c(slot, conn_id, msg_seq, at, bytes, done, now) {
                    return;
                }
                if slot.state.load(Ordering::Acquire) == state::H2C {
                    frame_h2_failed(slot, conn_id, now);
                    return;
                }
                CloseReason::Upgraded
            }
            None => CloseReason::Upgraded,
        },
        // Malformed, or another thread was in the framer: we missed bytes.
        Some(Verdict::Malformed) | None => CloseReason::Untracked,
    };
    if slot
        .state
        .compare_exchange(
            state::HTTP,
            state::ENDED,
            Ordering::AcqRel,
            Ordering::Relaxed,
        )
        .is_ok()
    {
        end_connection(slot, conn_id, state::HTTP, reason, 0, now);
    }
}

/// Feeds the bytes to the direction's HTTP/2 framer; stops following when the bytes
/// are not HTTP/2 framing or another thread was in the framer (bytes were missed).
fn frame_h2(slot: &Slot, dir: usize, bytes: Bytes<'_>, done: usize, now: Stamp) {
    if !http2::is_framed(slot) {
        return; // the pool was exhausted: counted, not framed
    }
    let conn_id = slot.conn_id.load(Ordering::Relaxed);
    match http2::frame(slot, conn_id, dir, bytes, done, now) {
        Some(http2::framer::Verdict::Continue) => {}
        _ => frame_h2_failed(slot, conn_id, now),
    }
}

/// HTTP/2 framing was lost (or bytes were missed): the connection is no longer followed.
fn frame_h2_failed(slot: &Slot, conn_id: u64, now: Stamp) {
    if slot
        .state
        .compare_exchange(
            state::H2C,
            state::ENDED,
            Ordering::AcqRel,
            Ordering::Relaxed,
        )
        .is_ok()
    {
        end_connection(slot, conn_id, state::H2C, CloseReason::Untracked, 0, now);
    }
}

/// Writes the end of a connection: cut-off messages, then `ConnClose`. Holds both
/// framers meanwhile, so that a new connection on the same fd number cannot reset the
/// slot under it.
fn end_connection(slot: &Slot, conn_id: u64, was: u8, reason: CloseReason, errno: i32, now: Stamp) {
    // A write that failed earlier (see `send_error`) is why the connection ended, unless
    // a read failed too.
    let send_errno = slot.send_errno.load(Ordering::Relaxed);
    let (reason, errno) = match reason {
        CloseReason::Closed | CloseReason::PeerEof | CloseReason::AtExit if send_errno != 0 => {
            (CloseReason::Error, send_errno)
        }
        _ => (reason, errno),
    };
    let protocol = match was {
        state::TLS => Protocol::Tls,
        state::H2C => Protocol::H2c,
        _ => Protocol::Http1,
    };
    let close = |slot: &Slot| ConnClose {
        reason,
        protocol,
        errno,
        bytes_out: slot.bytes[0].load(Ordering::Relaxed),
        bytes_in: slot.bytes[1].load(Ordering::Relaxed),
        first_out_wall_ns: slot.first_out_wall.load(Ordering::Relaxed),
        last_in_wall_ns: slot.last_in_wall.load(Ordering::Relaxed),
    };
    let finished = slot.finish(|egress, ingress| {
        if slot.conn_id.load(Ordering::Relaxed) != conn_id {
            return None; // the slot already belongs to a newer connection
        }
        if was == state::HTTP {
            egress.finish_on_close(&mut RecordSink::new(conn_id, Direction::Egress, now));
            ingress.finish_on_close(&mut RecordSink::new(conn_id, Direction::Ingress, now));
        }
        if was == state::H2C {
            http2::finish_locked(slot, conn_id, now);
        }
        if was == state::TLS
            && Walk::unpack(slot.tls_walk[0].load(Ordering::Relaxed)).ended_with_encrypted_alert()
        {
            let flags = failure_flags::TLS_ALERT | failure_flags::TLS_ALERT_ENCRYPTED;
            tls_failed(conn_id, &slot.info().peer, flags, 0, &[], &[]);
        }
        Some(close(slot))
    });
    let record = match finished {
        Some(Some(c)) => c,
        // Newer connection, or the framers stayed busy: counts are not ours to read.
        _ => ConnClose {
            bytes_out: 0,
            bytes_in: 0,
            first_out_wall_ns: 0,
            last_in_wall_ns: 0,
            ..close(slot)
        },
    };
    spool::conn_close(conn_id, &record, now);
}

/// Framer output → spool records for one connection and direction, for the bytes of
/// one call (`'a`: the call's buffer).
///
/// The last captured piece is held, not written, until the next thing the framer
/// reports: the message's end makes one `DataEnd` record of the two (a small message's
/// last piece and its end come in the same call: one record where there were two);
/// anything else — another piece, progress, the sink's end ([`Drop`]) — writes it
/// alone first. The records and their order are the same either way.
pub struct RecordSink<'a, W: RecordWriter = Spool> {
    conn_id: u64,
    dir: Direction,
    at: Stamp,
    held: Option<Held<'a>>,
    out: W,
}

/// A captured piece a [`RecordSink`] has not written yet.
struct Held<'a> {
    part: Part,
    msg_seq: u32,
    offset: u64,
    bytes: &'a [u8],
}

/// Where a [`RecordSink`] writes its records: the spool ([`Spool`]); a test's list.
pub trait RecordWriter {
    fn data(&mut self, conn_id: u64, fixed: &Data, bytes: &[u8], at: Stamp);
    fn msg_end(&mut self, conn_id: u64, end: &MsgEnd, at: Stamp);
    fn data_end(&mut self, conn_id: u64, fixed: &Data, bytes: &[u8], end: &MsgEnd, at: Stamp);
    fn msg_progress(&mut self, conn_id: u64, p: &MsgEnd, at: Stamp);
}

/// The spool's record functions.
pub struct Spool;

impl RecordWriter for Spool {
    #[inline(always)]
    fn data(&mut self, conn_id: u64, fixed: &Data, bytes: &[u8], at: Stamp) {
        spool::data(conn_id, fixed, bytes, at);
    }
    #[inline(always)]
    fn msg_end(&mut self, conn_id: u64, end: &MsgEnd, at: Stamp) {
        spool::msg_end(conn_id, end, at);
    }
    #[inline(always)]
    fn data_end(&mut self, conn_id: u64, fixed: &Data, bytes: &[u8], end: &MsgEnd, at: Stamp) {
        spool::data_end(conn_id, fixed, bytes, end, at);
    }
    #[inline(always)]
    fn msg_progress(&mut self, conn_id: u64, p: &MsgEnd, at: Stamp) {
        spool::msg_progress(conn_id, p, at);
    }
}

impl RecordSink<'_> {
    pub fn new(conn_id: u64, dir: Direction, at: Stamp) -> Self {
        Self::with_writer(conn_id, dir, at, Spool)
    }
}

impl<'a, W: RecordWriter> RecordSink<'a, W> {
    pub fn with_writer(conn_id: u64, dir: Direction, at: Stamp, out: W) -> Self {
        RecordSink {
            conn_id,
            dir,
            at,
            held: None,
            out,
        }
    }

    fn fixed(&self, h: &Held<'a>) -> Data {
        Data {
            dir: self.dir,
            part: h.part,
            flags: 0,
            msg_seq: h.msg_seq,
            offset: h.offset,
            len: h.bytes.len() as u32,
        }
    }

    /// Writes the held piece, if any, as a `Data` record of its own.
    fn flush(&mut self) {
        if let Some(h) = self.held.take() {
            let fixed = self.fixed(&h);
            self.out.data(self.conn_id, &fixed, h.bytes, self.at);
        }
    }

    fn hold(&mut self, part: Part, msg_seq: u32, offset: u64, bytes: &'a [u8]) {
        self.flush();
        self.held = Some(Held {
            part,
            msg_seq,
            offset,
            bytes,
        });
    }
}

impl<'a, W: RecordWriter> FrameSink<'a> for RecordSink<'a, W> {
    fn head(&mut self, msg_seq: u32, offset: u64, bytes: &'a [u8]) {
        self.hold(Part::Head, msg_seq, offset, bytes);
    }
    fn body(&mut self, msg_seq: u32, offset: u64, bytes: &'a [u8]) {
        self.hold(Part::Body, msg_seq, offset, bytes);
    }
    fn end(&mut self, end: &MsgEnd) {
        match self.held.take() {
            Some(h) if h.msg_seq == end.msg_seq => {
                let fixed = self.fixed(&h);
                self.out
                    .data_end(self.conn_id, &fixed, h.bytes, end, self.at);
            }
            held => {
                self.held = held;
                self.flush();
                self.out.msg_end(self.conn_id, end, self.at);
            }
        }
    }
    fn progress(&mut self, p: &MsgEnd) {
        self.flush();
        self.out.msg_progress(self.conn_id, p, self.at);
    }
}

impl<W: RecordWriter> Drop for RecordSink<'_, W> {
    /// The piece still held when the call's bytes are done (its message's end comes
    /// in a later call) is written now: nothing held is lost. Not while a panic
    /// unwinds through the framer (`hooks::after` catches it): a second panic there
    /// would abort the host, so the piece is skipped.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.flush();
        }
    }
}

/// An IPv4/IPv6 address from a `sockaddr`, or `None` for other families.
///
/// # Safety
/// `addr` must be valid for `len` bytes.
pub unsafe fn peer_of(addr: *const libc::sockaddr, len: libc::socklen_t) -> Option<WireAddr> {
    // SAFETY: forwarded.
    unsafe { wire_addr(addr, len) }
}

/// A TCP peer address from a `sockaddr`, or `None` for other families.
///
/// # Safety
/// `addr` must be valid for `len` bytes.
unsafe fn wire_addr(addr: *const libc::sockaddr, len: libc::socklen_t) -> Option<WireAddr> {
    let len = len as usize;
    if len < core::mem::size_of::<libc::sa_family_t>() {
        return None;
    }
    // SAFETY: at least the family field is readable.
    let family = unsafe { (*addr).sa_family } as i32;
    match family {
        libc::AF_INET if len >= core::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: family and length say this is a sockaddr_in; read unaligned.
            let sin = unsafe { core::ptr::read_unaligned(addr as *const libc::sockaddr_in) };
            let mut a = [0u8; 16];
            a[..4].copy_from_slice(&sin.sin_addr.s_addr.to_ne_bytes());
            Some(WireAddr {
                family: tapline_record::AF_INET,
                port: u16::from_be(sin.sin_port),
                addr: a,
            })
        }
        libc::AF_INET6 if len >= core::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: family and length say this is a sockaddr_in6; read unaligned.
            let sin6 = unsafe { core::ptr::read_unaligned(addr as *const libc::sockaddr_in6) };
            Some(WireAddr {
                family: tapline_record::AF_INET6,
                port: u16::from_be(sin6.sin6_port),
                addr: sin6.sin6_addr.s6_addr,
            })
        }
        _ => None,
    }
}

fn is_stream_socket(fd: i32) -> bool {
    let mut ty: libc::c_int = 0;
    let mut len = core::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `ty` and `len` are valid for getsockopt to write.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            &mut ty as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    r == 0 && ty == libc::SOCK_STREAM
}

fn local_addr(fd: i32) -> Option<WireAddr> {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut ss: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
    let mut len = core::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `ss` is large enough for any address; `len` says so.
    let r = unsafe { libc::getsockname(fd, &mut ss as *mut _ as *mut libc::sockaddr, &mut len) };
    if r != 0 {
        return None;
    }
    // SAFETY: getsockname wrote `len` valid bytes into `ss`.
    unsafe { wire_addr(&ss as *const _ as *const libc::sockaddr, len) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::{Framer, RequestKinds, PROGRESS_EVERY_NS};

    /// The records a [`RecordSink`] wrote, by type, with their message and bytes.
    #[derive(Default)]
    struct Written(Vec<(&'static str, u32, Vec<u8>)>);

    impl RecordWriter for &mut Written {
        fn data(&mut self, _: u64, fixed: &Data, bytes: &[u8], _: Stamp) {
            assert_eq!(fixed.len as usize, bytes.len());
            self.0.push(("data", fixed.msg_seq, bytes.to_vec()));
        }
        fn msg_end(&mut self, _: u64, end: &MsgEnd, _: Stamp) {
            self.0.push(("msg_end", end.msg_seq, Vec::new()));
        }
        fn data_end(&mut self, _: u64, fixed: &Data, bytes: &[u8], end: &MsgEnd, _: Stamp) {
            assert_eq!(
                (fixed.len as usize, fixed.msg_seq),
                (bytes.len(), end.msg_seq)
            );
            self.0.push(("data_end", end.msg_seq, bytes.to_vec()));
        }
        fn msg_progress(&mut self, _: u64, p: &MsgEnd, _: Stamp) {
            self.0.push(("msg_progress", p.msg_seq, Vec::new()));
        }
    }

    /// Feeds each call's pieces to one framer, a sink per call (as [`frame`] does).
    fn written(
        role: Role,
        calls: &[(&[&[u8]], u64)],
        max_body: u64,
    ) -> Vec<(&'static str, u32, Vec<u8>)> {
        let mut fr = Framer::new();
        let mut kinds = RequestKinds::default();
        let mut out = Written::default();
        for &(pieces, mono_ns) in calls {
            let at = Stamp {
                wall_ns: mono_ns,
                mono_ns,
            };
            let mut sink = RecordSink::with_writer(1, Direction::Ingress, at, &mut out);
            for piece in pieces {
                fr.feed(role, piece, at, max_body, &mut kinds, &mut sink);
            }
        }
        out.0
    }

    fn rec(t: &'static str, seq: u32, bytes: &[u8]) -> (&'static str, u32, Vec<u8>) {
        (t, seq, bytes.to_vec())
    }

    #[test]
    fn a_message_ending_in_its_call_ends_with_one_combined_record() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        let both: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(
            written(Role::Response, &[(&[both], 0)], 1024),
            [rec("data", 0, head), rec("data_end", 0, b"hello")]
        );
        // A request without a body: its head and its end.
        let get: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            written(Role::Request, &[(&[get], 0)], 1024),
            [rec("data_end", 0, get)]
        );
        // Pieces of one call (writev) share the sink: two messages, the first one's
        // body and the second one's head in one piece.
        let second: &[u8] = b"HTTP/1.1 204 No Content\r\n\r\n";
        let mut joined = b"lo".to_vec();
        joined.extend_from_slice(second);
        let pieces: &[&[u8]] = &[&both[..both.len() - 2], &joined];
        assert_eq!(
            written(Role::Response, &[(pieces, 0)], 1024),
            [
                rec("data", 0, head),
                rec("data", 0, b"hel"),
                rec("data_end", 0, b"lo"),
                rec("data_end", 1, second),
            ]
        );
    }

    #[test]
    fn a_message_ending_in_a_later_call_keeps_data_then_end() {
        // Chunked: the last chunk comes in a call of its own, with no captured bytes.
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut first = head.to_vec();
        first.extend_from_slice(b"5\r\nhello\r\n");
        let calls: &[(&[&[u8]], u64)] = &[(&[&first], 0), (&[b"0\r\n\r\n"], 1)];
        assert_eq!(
            written(Role::Response, calls, 1024),
            [
                rec("data", 0, head),
                rec("data", 0, b"hello"),
                rec("msg_end", 0, b""),
            ]
        );
        // Past the captured prefix, the piece before a progress report is written first,
        // and the end (no captured bytes with it) stands alone.
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
        let mut first = head.to_vec();
        first.extend_from_slice(b"ab");
        let later = PROGRESS_EVERY_NS;
        let pieces: &[&[u8]] = &[b"cdefg", b"hij"];
        let calls: &[(&[&[u8]], u64)] = &[(&[&first], 0), (pieces, later)];
        assert_eq!(
            written(Role::Response, calls, 4),
            [
                rec("data", 0, head),
                rec("data", 0, b"ab"),
                rec("data", 0, b"cd"),
                rec("msg_progress", 0, b""),
                rec("msg_end", 0, b""),
            ]
        );
        // The connection closes: a body until close ends in the close's own sink.
        let mut fr = Framer::new();
        let mut kinds = RequestKinds::default();
        let mut out = Written::default();
        let wire: &[u8] = b"HTTP/1.1 200 OK\r\n\r\nabc";
        let at = Stamp::default();
        {
            let mut sink = RecordSink::with_writer(1, Direction::Ingress, at, &mut out);
            fr.feed(Role::Response, wire, at, 1024, &mut kinds, &mut sink);
        }
        fr.finish_on_close(&mut RecordSink::with_writer(
            1,
            Direction::Ingress,
            at,
            &mut out,
        ));
        assert_eq!(
            out.0,
            [
                rec("data", 0, &wire[..wire.len() - 3]),
                rec("data", 0, b"abc"),
                rec("msg_end", 0, b""),
            ]
        );
    }

    #[test]
    fn sniffer_classifies_first_bytes() {
        assert_eq!(sniff(b"GET / HTTP/1.1\r\n"), Some(Protocol::Http1));
        assert_eq!(sniff(b"OPTIONS * HTTP/1.1\r\n"), Some(Protocol::Http1));
        assert_eq!(
            sniff(b"CONNECT example.test:443 HTTP/1.1\r\n"),
            Some(Protocol::Http1)
        );
        assert_eq!(sniff(b"GET http://x/ HTTP/1.1\r\n"), Some(Protocol::Http1));
        assert_eq!(sniff(b"\x16\x03\x01\x02\x00\x01"), Some(Protocol::Tls));
        assert_eq!(
            sniff(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            Some(Protocol::H2c)
        );
        assert_eq!(sniff(b"SSH-2.0-OpenSSH_9\r\n"), None);
        assert_eq!(sniff(b"*1\r\n$4\r\nPING\r\n"), None);
        assert_eq!(sniff(b"HELO there\r\n"), None);
        assert_eq!(sniff(b"HELO host\r\n"), None);
        assert_eq!(sniff(b"\x00\x00\x00\x08\x04\xd2\x16\x2f"), None);
        assert_eq!(sniff(b""), None);
    }
}
