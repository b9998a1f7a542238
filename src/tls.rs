//! TLS sessions: plaintext connections keyed by the TLS library's session object
//! (`SSL*`, `gnutls_session_t`).
//!
//! Why key by the session and not by the fd: `SSL_get_fd` is -1 for custom BIOs (curl,
//! rust native-tls) and memory BIOs (Python asyncio, Node), so the session object is the
//! one identity every case has. The socket is learnt when it can be: from the library
//! (`SSL_get_fd`, `gnutls_transport_get_int`) or from the socket call made *inside* the
//! TLS call on the same thread (see [`enter`] and [`note_inner_socket`]). Knowing it
//! gives the peer address and lets the reader drop the socket's opaque twin.
//!
//! The table is fixed-size open addressing, mapped once; keys are claimed with one
//! compare-exchange. A full table means the session is not followed (never a failure).

use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use tapline_record::{Stamp, TlsInfo, TlsLibrary};

use crate::conn::{self, state, ConnInfo, Slot};
use crate::spool;
use crate::sys::thread;

/// Sessions followed at once.
pub const SESSIONS: usize = 4096;
/// Longest probe sequence before giving up on a lookup or insert.
const MAX_PROBE: usize = 64;
const EMPTY: usize = 0;
const TOMBSTONE: usize = 1;

#[repr(C)]
pub struct Session {
    key: AtomicUsize,
    pub slot: Slot,
}

static TABLE: AtomicPtr<Session> = AtomicPtr::new(core::ptr::null_mut());

/// Maps the session table (constructor).
pub fn init() {
    if let Some(p) = crate::sys::map_zeroed(SESSIONS * core::mem::size_of::<Session>()) {
        TABLE.store(p as *mut Session, Ordering::Release);
    }
}

fn entry(i: usize) -> Option<&'static Session> {
    let t = TABLE.load(Ordering::Acquire);
    if t.is_null() {
        return None;
    }
    // SAFETY: `t` maps SESSIONS zeroed sessions for the process's life; zero bytes are
    // a valid Session (an EMPTY key and a free slot); `i` is reduced modulo SESSIONS.
    Some(unsafe { &*t.add(i % SESSIONS) })
}

fn home(key: usize) -> usize {
    ((key as u64 >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize
}

/// The session followed for `key`, if any.
pub fn find(key: usize) -> Option<&'static Session> {
    if key <= TOMBSTONE {
        return None;
    }
    let h = home(key);
    for i in 0..MAX_PROBE {
        let e = entry(h + i)?;
        match e.key.load(Ordering::Acquire) {
            EMPTY => return None,
            k if k == key => return Some(e),
            _ => {}
        }
    }
    None
}

/// The session for `key`, claiming a free entry for it if it has none. The bool says
/// the entry is new (its slot must be started).
pub fn find_or_insert(key: usize) -> Option<(&'static Session, bool)> {
    if let Some(e) = find(key) {
        return Some((e, false));
    }
    if key <= TOMBSTONE {
        return None;
    }
    let h = home(key);
    for i in 0..MAX_PROBE {
        let e = entry(h + i)?;
        let k = e.key.load(Ordering::Acquire);
        if (k == EMPTY || k == TOMBSTONE)
            && e.key
                .compare_exchange(k, key, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            return Some((e, true));
        }
    }
    None
}

/// Calls `f` on every session followed now.
pub fn each_session(mut f: impl FnMut(&'static Session)) {
    for i in 0..SESSIONS {
        if let Some(e) = entry(i) {
            if e.key.load(Ordering::Acquire) > TOMBSTONE {
                f(e);
            }
        }
    }
}

/// Forgets `key` (the session was freed; its address may be reused).
pub fn remove(e: &Session, key: usize) {
    let _ = e
        .key
        .compare_exchange(key, TOMBSTONE, Ordering::AcqRel, Ordering::Relaxed);
}

/// Marks `key` as the TLS session whose call runs on this thread, before the real TLS
/// call; returns what to pass to [`leave`]. Two stores into this thread's block
/// (`sys::thread`), nothing else.
#[inline]
pub fn enter(key: usize) -> usize {
    thread::with(|t| {
        t.tls_inner_fd.set(0);
        t.tls_session.replace(key)
    })
    .unwrap_or(0)
}

/// The session [`enter`] marked on this thread (0: none): what a hook that runs after
/// the call (the Java agent's post-hooks) reads before [`leave`].
#[inline]
pub fn current() -> usize {
    thread::with(|t| t.tls_session.get()).unwrap_or(0)
}

/// Ends what [`enter`] began.
#[inline]
pub fn leave(prev: usize) {
    let _ = thread::with(|t| t.tls_session.set(prev));
}

/// A followed socket carried bytes: if a TLS call is running on this thread, that TLS
/// session writes to (or reads from) this socket.
pub fn note_inner_socket(fd: i32) {
    let _ = thread::with(|t| {
        if t.tls_session.get() != 0 && fd >= 0 {
            t.tls_inner_fd.set(fd as u32 + 1);
        }
    });
}

/// The socket seen inside the TLS call that just returned, if any.
pub fn inner_socket() -> Option<i32> {
    let v = thread::with(|t| t.tls_inner_fd.get()).unwrap_or(0);
    (v != 0).then(|| (v - 1) as i32)
}

/// What a new plaintext connection knows about its socket: fd, peer, and the socket's
/// own conn id (when the socket is followed as TLS ciphertext).
pub struct SocketFacts {
    pub info: ConnInfo,
    pub socket_conn_id: u64,
}

/// Writes the `TlsInfo` record of a plaintext connection just announced: the library,
/// server name and ALPN, and the socket (and its ciphertext connection) under it.
pub fn write_info(
    slot: &Slot,
    conn_id: u64,
    library: TlsLibrary,
    sni: &[u8],
    alpn: &[u8],
    now: Stamp,
) {
    let fd = slot.info().fd;
    let info = TlsInfo {
        library,
        flags: 0,
        sni_len: sni.len() as u16,
        alpn_len: alpn.len() as u16,
        fd,
        socket_conn_id: socket_facts(fd).socket_conn_id,
    };
    spool::tls_info(conn_id, &info, sni, alpn, now);
}

/// Gathers [`SocketFacts`] for a socket fd (-1: unknown).
pub fn socket_facts(fd: i32) -> SocketFacts {
    let mut info = ConnInfo {
        fd,
        connect: spool::now(),
        ..ConnInfo::default()
    };
    let mut socket_conn_id = 0;
    if let Some(s) = conn::slot(fd) {
        let st = s.state.load(Ordering::Acquire);
        if st != state::FREE {
            let known = s.info();
            info.peer = known.peer;
            info.local = known.local;
            info.connect = known.connect;
            // ENDED: a TLS socket whose read or write failed (a handshake that the
            // peer broke off) is still the one under the session.
            if st == state::TLS || st == state::ENDED {
                socket_conn_id = s.conn_id.load(Ordering::Relaxed);
            }
        }
    }
    SocketFacts {
        info,
        socket_conn_id,
    }
}

/// Sessions whose failed handshake was written (a `Failure` once per session, though
/// the program may call again after the failure): a small ring of keys, a key cleared
/// when its session is freed.
const FAILED_RING: usize = 32;
static FAILED: [AtomicUsize; FAILED_RING] = [const { AtomicUsize::new(0) }; FAILED_RING];
static NEXT_FAILED: AtomicUsize = AtomicUsize::new(0);

/// True the first time a failure of session `key` is to be written.
pub fn first_failure(key: usize) -> bool {
    if key == 0 || FAILED.iter().any(|k| k.load(Ordering::Acquire) == key) {
        return false;
    }
    FAILED[NEXT_FAILED.fetch_add(1, Ordering::Relaxed) % FAILED_RING].store(key, Ordering::Release);
    true
}

/// Session `key` was freed: its address may name another session next.
pub fn forget_failure(key: usize) {
    for k in &FAILED {
        let _ = k.compare_exchange(key, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// Server names set on client sessions (`gnutls_server_name_set`), kept until the
/// session sends its first plaintext: GnuTLS answers `gnutls_server_name_get` only on
/// the server side, so the client's SNI must be caught when it is set. A small ring
/// keyed by session; a lookup validates the entry with its sequence word.
struct NameEntry {
    seq: AtomicUsize,
    key: AtomicUsize,
    len: AtomicUsize,
    words: [core::sync::atomic::AtomicU64; NAME_WORDS],
}

const NAME_RING: usize = 64;
const NAME_WORDS: usize = 32;
#[allow(clippy::declare_interior_mutable_const)]
const ZERO_WORD: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const NO_NAME: NameEntry = NameEntry {
    seq: AtomicUsize::new(0),
    key: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    words: [ZERO_WORD; NAME_WORDS],
};
static NAMES: [NameEntry; NAME_RING] = [NO_NAME; NAME_RING];
static NEXT_NAME: AtomicUsize = AtomicUsize::new(0);

/// Remembers the server name a client session asked for.
pub fn remember_server_name(key: usize, name: &[u8]) {
    let name = &name[..name.len().min(NAME_WORDS * 8)];
    let e = &NAMES[NEXT_NAME.fetch_add(1, Ordering::Relaxed) % NAME_RING];
    e.seq.fetch_add(1, Ordering::AcqRel);
    e.key.store(key, Ordering::Relaxed);
    for (i, w) in e.words.iter().enumerate() {
        let mut word = [0u8; 8];
        let from = (i * 8).min(name.len());
        let to = (from + 8).min(name.len());
        word[..to - from].copy_from_slice(&name[from..to]);
        w.store(u64::from_le_bytes(word), Ordering::Relaxed);
    }
    e.len.store(name.len(), Ordering::Relaxed);
    e.seq.fetch_add(1, Ordering::Release);
}

/// The server name remembered for `key`, copied into `out`; its length (0 if none).
pub fn server_name(key: usize, out: &mut [u8; NAME_WORDS * 8]) -> usize {
    let newest = NEXT_NAME.load(Ordering::Relaxed);
    for back in 1..=NAME_RING {
        let e = &NAMES[(newest + NAME_RING * 2 - back) % NAME_RING];
        let before = e.seq.load(Ordering::Acquire);
        if before == 0 || before & 1 == 1 || e.key.load(Ordering::Relaxed) != key {
            continue;
        }
        let len = e.len.load(Ordering::Relaxed).min(out.len());
        for (i, w) in e.words.iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        if e.seq.load(Ordering::Acquire) == before {
            return len;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_names_are_found_by_session() {
        super::remember_server_name(0x1000, b"api.example.test");
        super::remember_server_name(0x2000, b"other.example.test");
        let mut buf = [0u8; 256];
        let n = super::server_name(0x1000, &mut buf);
        assert_eq!(&buf[..n], b"api.example.test");
        assert_eq!(super::server_name(0x3000, &mut buf), 0);
    }
}
