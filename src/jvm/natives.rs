//! What the wrapped JSSE methods call: the `private static native` pre- and post-hooks
//! `wrap_methods` added, bound by `agent` with `RegisterNatives`.
//!
//! Sessions are keyed by the Java object that owns the TLS connection — the
//! `SSLSocketImpl` behind the application streams (their `this$0`), or the
//! `SSLEngineImpl` — through a JVMTI object tag (a tag follows the object through GC
//! moves; `ObjectFree` ends the session). A tag is `KEY_MARK | counter << 4`: never a
//! user-space address, so the keys share [`crate::tls`]'s table with `SSL*` pointers.
//!
//! - SSLSocket: the write pre-hook enters the session ([`tls::enter`]), so the socket
//!   call made inside the write on the same thread teaches the session its socket (the
//!   reader then drops the socket's opaque twin), exactly as for `SSL_write`. The
//!   post-hooks read the plaintext in place (a JNI critical region over the transferred
//!   range) and feed it to [`capture`] as OpenSSL plaintext is fed. `read` returning -1
//!   is the peer's end.
//! - SSLEngine: `wrap` consumes plaintext from its source buffers, `unwrap` produces it
//!   into its destination buffers. The pre-hook remembers those buffers' positions in a
//!   `const` thread-local array (pre and post run on the same thread, with nothing
//!   wrapped in between); the post-hook reads each buffer's bytes between its position
//!   before and after. The engine does no socket I/O itself (HttpClient's selector
//!   thread does), so its session has no socket: its peer is the engine's
//!   `getPeerHost()`/`getPeerPort()`, and the reader pairs it with the opaque socket of
//!   the same server name (or address) at the same time.
//!
//! Rules: a native never throws (every JNI exception we cause is cleared), never
//! panics across the boundary, and changes nothing the Java code sees.

use core::cell::Cell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicI64, AtomicPtr, AtomicU8, Ordering};

use jni_sys::{jarray, jclass, jfieldID, jint, jlong, jmethodID, jobject, jobjectArray, JNIEnv};
use tapline_record::{TlsLibrary, WireAddr, AF_INET, AF_INET6};

use super::jvmti::{Jni, Jvmti, RawMonitor};
use crate::capture::{self, Bytes};
use crate::conn::{self, origin};
use crate::hooks::after;
use crate::{spool, tls};

/// Set in every session key: keys are tags, never addresses (user space is below 2^47).
const KEY_MARK: i64 = 1 << 62;
static NEXT_TAG: AtomicI64 = AtomicI64::new(1);
/// Serialises the first tagging of an object (once per connection, never per call).
static TAG_MONITOR: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());

/// The agent's start: the monitor tags are given under.
pub(super) fn init(jv: Jvmti) -> bool {
    match jv.create_raw_monitor(c"tapline tags") {
        Some(m) => {
            TAG_MONITOR.store(m, Ordering::Release);
            true
        }
        None => false,
    }
}

/// The session key of `obj`; with `create`, tags an untagged object (else 0).
fn key_of(obj: jobject, create: bool) -> usize {
    let Some(jv) = super::agent::jvmti() else {
        return 0;
    };
    if obj.is_null() {
        return 0;
    }
    let tag = jv.tag(obj);
    if tag != 0 || !create {
        return tag as usize;
    }
    let m: RawMonitor = TAG_MONITOR.load(Ordering::Acquire);
    if m.is_null() || jv.raw_monitor_enter(m) != super::jvmti::OK {
        return 0;
    }
    let mut tag = jv.tag(obj);
    if tag == 0 {
        let t = KEY_MARK | (NEXT_TAG.fetch_add(1, Ordering::Relaxed) << 4);
        if jv.set_tag(obj, t) == super::jvmti::OK {
            tag = t;
        }
    }
    let _ = jv.raw_monitor_exit(m);
    tag as usize
}

/// A tagged object was collected: its session ends (`ObjectFree`, inside GC: no JNI,
/// only our own tables and the spool).
pub(super) fn object_freed(tag: jlong) {
    if tag & KEY_MARK == 0 {
        return;
    }
    after(|| {
        let key = tag as usize;
        if let Some(s) = tls::find(key) {
            let conn_id = s.slot.conn_id.load(Ordering::Acquire);
            capture::close(&s.slot, conn_id);
            tls::remove(s, key);
        }
    });
}

/// Field and method ids, looked up on first use from the objects themselves (boot
/// classes never unload, so the ids stay valid). `state`: 0 not yet, 1 found, 2 missing.
struct Ids<const N: usize> {
    state: AtomicU8,
    ids: [AtomicPtr<c_void>; N],
}

impl<const N: usize> Ids<N> {
    const fn new() -> Self {
        Ids {
            state: AtomicU8::new(0),
            ids: [const { AtomicPtr::new(core::ptr::null_mut()) }; N],
        }
    }

    /// The ids, looking them up with `find` the first time.
    fn get(&self, find: impl FnOnce() -> Option<[*mut c_void; N]>) -> Option<[*mut c_void; N]> {
        match self.state.load(Ordering::Acquire) {
            1 => Some(core::array::from_fn(|i| {
                self.ids[i].load(Ordering::Relaxed)
            })),
            2 => None,
            _ => match find() {
                Some(ids) => {
                    for (cell, id) in self.ids.iter().zip(ids) {
                        cell.store(id, Ordering::Relaxed);
                    }
                    self.state.store(1, Ordering::Release);
                    Some(ids)
                }
                None => {
                    self.state.store(2, Ordering::Release);
                    None
                }
            },
        }
    }
}

fn class_of(jni: Jni, obj: jobject) -> jclass {
    jni.object_class(obj)
}

/// The `SSLSocketImpl` behind an application stream (`this$0`).
fn outer_socket(jni: Jni, stream: jobject, ids: &Ids<1>) -> jobject {
    let Some([this0]) = ids.get(|| {
        let c = class_of(jni, stream);
        let f = jni.field_id(c, c"this$0", c"Lsun/security/ssl/SSLSocketImpl;");
        jni.delete_local(c);
        Some([f? as *mut c_void])
    }) else {
        return core::ptr::null_mut();
    };
    // SAFETY: `this0` is the `this$0` field of this stream's class.
    unsafe { jni.object_field(stream, this0 as jfieldID) }
}

/// What a new session is told about its peer: host name, port, ALPN.
struct Peer {
    host: [u8; 256],
    host_len: usize,
    port: u16,
    alpn: [u8; 64],
    alpn_len: usize,
}

impl Peer {
    fn new() -> Self {
        Peer {
            host: [0; 256],
            host_len: 0,
            port: 0,
            alpn: [0; 64],
            alpn_len: 0,
        }
    }

    fn host(&self) -> &[u8] {
        &self.host[..self.host_len]
    }

    /// The host as an address literal, if it is one (then no SNI was sent).
    fn literal(&self) -> Option<WireAddr> {
        let s = core::str::from_utf8(self.host()).ok()?;
        let s = s.trim_start_matches('[').trim_end_matches(']');
        let mut a = WireAddr {
            family: 0,
            port: self.port,
            addr: [0; 16],
        };
        if let Ok(v4) = s.parse::<std::net::Ipv4Addr>() {
            a.family = AF_INET;
            a.addr[..4].copy_from_slice(&v4.octets());
        } else if let Ok(v6) = s.parse::<std::net::Ipv6Addr>() {
            a.family = AF_INET6;
            a.addr = v6.octets();
        } else {
            return None;
        }
        Some(a)
    }

    /// The server name a client sends (none for an address literal).
    fn sni(&self) -> &[u8] {
        if self.literal().is_some() {
            &[]
        } else {
            self.host()
        }
    }
}

/// `conContext.applicationProtocol` of an `SSLSocketImpl` or `SSLEngineImpl`: a field
/// read, so no lock of the socket is taken.
fn alpn_of(jni: Jni, tls_obj: jobject, ids: &Ids<2>, out: &mut Peer) {
    let Some([ctx_f, proto_f]) = ids.get(|| {
        let c = class_of(jni, tls_obj);
        let ctx = jni.field_id(c, c"conContext", c"Lsun/security/ssl/TransportContext;");
        jni.delete_local(c);
        let tc = jni.find_class(c"sun/security/ssl/TransportContext")?;
        let proto = jni.field_id(tc, c"applicationProtocol", c"Ljava/lang/String;");
        jni.delete_local(tc);
        Some([ctx? as *mut c_void, proto? as *mut c_void])
    }) else {
        return;
    };
    // SAFETY: `ctx_f` is the `conContext` field of this object's class.
    let ctx = unsafe { jni.object_field(tls_obj, ctx_f as jfieldID) };
    if ctx.is_null() {
        return;
    }
    // SAFETY: `proto_f` is `TransportContext.applicationProtocol`.
    let proto = unsafe { jni.object_field(ctx, proto_f as jfieldID) };
    out.alpn_len = jni.string_into(proto, &mut out.alpn);
    jni.delete_local(proto);
    jni.delete_local(ctx);
}

/// Plaintext moved through session `key` (dir 0: written, 1: read). `fd`: the socket
/// seen inside the call (-1: none); `peer`: what a new session is told.
fn on_plaintext(key: usize, dir: usize, data: &[u8], fd: i32, peer: &Peer) {
    let n = data.len();
    if n == 0 || key == 0 {
        return;
    }
    if dir == 1 {
        // Reads never start following a session (as for OpenSSL): a client writes first.
        if let Some(s) = tls::find(key) {
            capture::ingress(&s.slot, Bytes::One(data), n);
        }
        return;
    }
    let Some((s, new)) = tls::find_or_insert(key) else {
        return;
    };
    if new {
        let mut info = tls::socket_facts(fd).info;
        if fd < 0 {
            if let Some(a) = peer.literal() {
                info.peer = a;
            } else {
                info.peer.port = peer.port;
            }
        }
        s.slot
            .start(conn::new_conn_id(spool::pid()), origin::JSSE, info);
    }
    capture::egress(&s.slot, Bytes::One(data), n, |conn_id, now| {
        let alpn = &peer.alpn[..peer.alpn_len];
        tls::write_info(&s.slot, conn_id, TlsLibrary::Jsse, peer.sni(), alpn, now);
    });
}

fn on_peer_closed(key: usize) {
    if let Some(s) = tls::find(key) {
        capture::eof(&s.slot);
    }
}

/// Runs a native's body: panics caught, and a fallback value then.
fn guarded<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(core::panic::AssertUnwindSafe(f)).unwrap_or(fallback)
}

// ---------------------------------------------------------------------------------
// SSLSocket: AppOutputStream.write([BII)V, AppInputStream.read([BII)I

static OUT_THIS0: Ids<1> = Ids::new();
static IN_THIS0: Ids<1> = Ids::new();
static SOCKET_ALPN: Ids<2> = Ids::new();
static SOCKET_HOST: Ids<1> = Ids::new();

/// `[pre, post]` for a wrapped method of [`super::JSSE_TARGETS`] (None: one this file
/// has no natives for, and the class must then be left as it is).
pub(super) fn for_method(class: &str, method: &str, desc: &str) -> Option<[*mut c_void; 2]> {
    Some(match (class, method, desc) {
        ("sun/security/ssl/SSLSocketImpl$AppOutputStream", "write", "([BII)V") => {
            [write_pre as *mut c_void, write_post as *mut c_void]
        }
        ("sun/security/ssl/SSLSocketImpl$AppInputStream", "read", "([BII)I") => {
            [read_pre as *mut c_void, read_post as *mut c_void]
        }
        ("sun/security/ssl/SSLEngineImpl", "wrap", WRAP_DESC) => {
            [wrap_pre as *mut c_void, wrap_post as *mut c_void]
        }
        ("sun/security/ssl/SSLEngineImpl", "unwrap", UNWRAP_DESC) => {
            [unwrap_pre as *mut c_void, unwrap_post as *mut c_void]
        }
        _ => return None,
    })
}

const WRAP_DESC: &str =
    "([Ljava/nio/ByteBuffer;IILjava/nio/ByteBuffer;)Ljavax/net/ssl/SSLEngineResult;";
const UNWRAP_DESC: &str =
    "(Ljava/nio/ByteBuffer;[Ljava/nio/ByteBuffer;II)Ljavax/net/ssl/SSLEngineResult;";

/// Enters the socket's session for the call; the token is the session this thread was
/// in before (what [`tls::leave`] restores).
fn enter_socket(env: *mut JNIEnv, stream: jobject, ids: &Ids<1>, create: bool) -> jlong {
    let jni = Jni(env);
    let outer = outer_socket(jni, stream, ids);
    let key = key_of(outer, create);
    jni.delete_local(outer);
    tls::enter(key) as jlong
}

unsafe extern "system" fn write_pre(
    env: *mut JNIEnv,
    _class: jclass,
    this: jobject,
    _b: jarray,
    _off: jint,
    _len: jint,
) -> jlong {
    guarded(0, || enter_socket(env, this, &OUT_THIS0, true))
}

#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn write_post(
    env: *mut JNIEnv,
    _class: jclass,
    token: jlong,
    this: jobject,
    b: jarray,
    off: jint,
    len: jint,
) {
    let key = tls::current();
    let fd = tls::inner_socket().unwrap_or(-1);
    tls::leave(token as usize);
    guarded((), || {
        socket_plaintext(Jni(env), this, &OUT_THIS0, key, 0, b, off, len, fd)
    });
}

unsafe extern "system" fn read_pre(
    env: *mut JNIEnv,
    _class: jclass,
    this: jobject,
    _b: jarray,
    _off: jint,
    _len: jint,
) -> jlong {
    guarded(0, || enter_socket(env, this, &IN_THIS0, false))
}

#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn read_post(
    env: *mut JNIEnv,
    _class: jclass,
    token: jlong,
    this: jobject,
    b: jarray,
    off: jint,
    _len: jint,
    r: jint,
) {
    let key = tls::current();
    let fd = tls::inner_socket().unwrap_or(-1);
    tls::leave(token as usize);
    guarded((), || {
        if r == -1 && key != 0 {
            after(|| on_peer_closed(key));
        } else {
            socket_plaintext(Jni(env), this, &IN_THIS0, key, 1, b, off, r, fd);
        }
    });
}

/// `n` bytes at `off` of `b` went through session `key`, the socket of `stream` (dir 0
/// out, 1 in). The key is the one the pre-hook entered (no second tag lookup).
#[allow(clippy::too_many_arguments)]
fn socket_plaintext(
    jni: Jni,
    stream: jobject,
    ids: &Ids<1>,
    key: usize,
    dir: usize,
    b: jarray,
    off: jint,
    n: jint,
    fd: i32,
) {
    if n <= 0 || off < 0 || key == 0 || !crate::config::active() {
        return;
    }
    let mut peer = Peer::new();
    if dir == 0 && tls::find(key).is_none() {
        // A new session: what only JNI can tell, gathered before the critical region.
        let outer = outer_socket(jni, stream, ids);
        alpn_of(jni, outer, &SOCKET_ALPN, &mut peer);
        if let Some([host_f]) = SOCKET_HOST.get(|| {
            let c = class_of(jni, outer);
            let f = jni.field_id(c, c"peerHost", c"Ljava/lang/String;");
            jni.delete_local(c);
            Some([f? as *mut c_void])
        }) {
            // SAFETY: `host_f` is `SSLSocketImpl.peerHost`.
            let host = unsafe { jni.object_field(outer, host_f as jfieldID) };
            peer.host_len = jni.string_into(host, &mut peer.host);
            jni.delete_local(host);
        }
        jni.delete_local(outer);
    }
    let (from, to) = (off as usize, off as usize + n as usize);
    jni.with_bytes(b, from, to, |bytes| {
        after(|| on_plaintext(key, dir, bytes, fd, &peer));
    });
}

// ---------------------------------------------------------------------------------
// SSLEngine: wrap([ByteBuffer;II ByteBuffer), unwrap(ByteBuffer [ByteBuffer;II): the
// abstract SSLEngine methods every public overload calls

/// Buffers whose positions one call can remember; a call with more is not captured
/// past them (the connection's framing then stops making sense and the reader says so).
const SNAP_BUFFERS: usize = 64;

thread_local! {
    /// Positions of the buffers the running wrap/unwrap reads from or writes to,
    /// remembered by its pre-hook. `const`, no `Drop`.
    static POSITIONS: [Cell<i32>; SNAP_BUFFERS] = const { [const { Cell::new(-1) }; SNAP_BUFFERS] };
}

/// `java.nio.Buffer.position`, `ByteBuffer.hb`, `ByteBuffer.offset`.
static BUFFER_FIELDS: Ids<3> = Ids::new();
/// `SSLEngine.getPeerHost()`, `getPeerPort()`.
static ENGINE_PEER: Ids<2> = Ids::new();
static ENGINE_ALPN: Ids<2> = Ids::new();

fn buffer_fields(jni: Jni) -> Option<[*mut c_void; 3]> {
    BUFFER_FIELDS.get(|| {
        let buffer = jni.find_class(c"java/nio/Buffer")?;
        let pos = jni.field_id(buffer, c"position", c"I");
        jni.delete_local(buffer);
        let bb = jni.find_class(c"java/nio/ByteBuffer")?;
        let hb = jni.field_id(bb, c"hb", c"[B");
        let offset = jni.field_id(bb, c"offset", c"I");
        jni.delete_local(bb);
        Some([
            pos? as *mut c_void,
            hb? as *mut c_void,
            offset? as *mut c_void,
        ])
    })
}

/// Remembers the positions of `bufs[off..off + len]`; the token is how many.
fn snapshot(env: *mut JNIEnv, bufs: jobjectArray, off: jint, len: jint) -> jlong {
    let jni = Jni(env);
    let Some([pos_f, _, _]) = buffer_fields(jni) else {
        return 0;
    };
    let n = (len.max(0) as usize).min(SNAP_BUFFERS);
    let _ = POSITIONS.try_with(|p| {
        for (i, cell) in p.iter().enumerate().take(n) {
            let b = jni.element(bufs, off.saturating_add(i as jint));
            let pos = if b.is_null() {
                -1
            } else {
                // SAFETY: `pos_f` is `Buffer.position`; `b` is a ByteBuffer.
                unsafe { jni.int_field(b, pos_f as jfieldID) }
            };
            jni.delete_local(b);
            cell.set(pos);
        }
    });
    n as jlong
}

/// For each buffer remembered by [`snapshot`], the bytes between its position then and
/// now, handed to `f` in order.
fn moved_bytes(
    env: *mut JNIEnv,
    token: jlong,
    bufs: jobjectArray,
    off: jint,
    mut f: impl FnMut(&[u8]),
) {
    let jni = Jni(env);
    let Some([pos_f, hb_f, offset_f]) = buffer_fields(jni) else {
        return;
    };
    let n = (token.max(0) as usize).min(SNAP_BUFFERS);
    for i in 0..n {
        let before = POSITIONS.try_with(|p| p[i].get()).unwrap_or(-1);
        let b = jni.element(bufs, off.saturating_add(i as jint));
        if b.is_null() || before < 0 {
            jni.delete_local(b);
            continue;
        }
        // SAFETY: `pos_f` is `Buffer.position`; `b` is a ByteBuffer.
        let now = unsafe { jni.int_field(b, pos_f as jfieldID) };
        if now > before {
            let (from, to) = (before as usize, now as usize);
            let direct = jni.direct_address(b);
            if !direct.is_null() {
                // SAFETY: a direct buffer's memory starts at `direct` and holds at
                // least `limit >= position` bytes; `[from, to)` lies below position.
                f(unsafe { core::slice::from_raw_parts(direct.add(from), to - from) });
            } else {
                // SAFETY: `hb_f`/`offset_f` are `ByteBuffer.hb`/`offset`.
                let hb = unsafe { jni.object_field(b, hb_f as jfieldID) };
                // SAFETY: as above.
                let base = unsafe { jni.int_field(b, offset_f as jfieldID) }.max(0) as usize;
                jni.with_bytes(hb, base + from, base + to, &mut f);
                jni.delete_local(hb);
            }
        }
        jni.delete_local(b);
    }
}

/// What a new engine session is told: `getPeerHost()`, `getPeerPort()`, ALPN.
fn engine_peer(jni: Jni, engine: jobject) -> Peer {
    let mut peer = Peer::new();
    if let Some([host_m, port_m]) = ENGINE_PEER.get(|| {
        let c = class_of(jni, engine);
        let host = jni.method_id(c, c"getPeerHost", c"()Ljava/lang/String;");
        let port = jni.method_id(c, c"getPeerPort", c"()I");
        jni.delete_local(c);
        Some([host? as *mut c_void, port? as *mut c_void])
    }) {
        // SAFETY: `host_m` is `SSLEngine.getPeerHost()`, a method of this engine.
        let host = unsafe { jni.call_object(engine, host_m as jmethodID) };
        peer.host_len = jni.string_into(host, &mut peer.host);
        jni.delete_local(host);
        // SAFETY: `port_m` is `SSLEngine.getPeerPort()`.
        let port = unsafe { jni.call_int(engine, port_m as jmethodID) };
        peer.port = port.and_then(|p| u16::try_from(p).ok()).unwrap_or(0);
    }
    alpn_of(jni, engine, &ENGINE_ALPN, &mut peer);
    peer
}

#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn wrap_pre(
    env: *mut JNIEnv,
    _class: jclass,
    _this: jobject,
    srcs: jobjectArray,
    soff: jint,
    slen: jint,
    _dst: jobject,
) -> jlong {
    guarded(0, || snapshot(env, srcs, soff, slen))
}

#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn wrap_post(
    env: *mut JNIEnv,
    _class: jclass,
    token: jlong,
    this: jobject,
    srcs: jobjectArray,
    soff: jint,
    _slen: jint,
    _dst: jobject,
    _result: jobject,
) {
    guarded((), || engine_plaintext(env, this, 0, token, srcs, soff));
}

#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn unwrap_pre(
    env: *mut JNIEnv,
    _class: jclass,
    _this: jobject,
    _src: jobject,
    dsts: jobjectArray,
    doff: jint,
    dlen: jint,
) -> jlong {
    guarded(0, || snapshot(env, dsts, doff, dlen))
}

#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn unwrap_post(
    env: *mut JNIEnv,
    _class: jclass,
    token: jlong,
    this: jobject,
    _src: jobject,
    dsts: jobjectArray,
    doff: jint,
    _dlen: jint,
    _result: jobject,
) {
    guarded((), || engine_plaintext(env, this, 1, token, dsts, doff));
}

/// The plaintext a `wrap` consumed (dir 0) or an `unwrap` produced (dir 1).
fn engine_plaintext(
    env: *mut JNIEnv,
    engine: jobject,
    dir: usize,
    token: jlong,
    bufs: jobjectArray,
    off: jint,
) {
    if token <= 0 || !crate::config::active() {
        return;
    }
    let jni = Jni(env);
    let key = key_of(engine, dir == 0);
    if key == 0 {
        return;
    }
    let peer = if dir == 0 && tls::find(key).is_none() {
        engine_peer(jni, engine)
    } else {
        Peer::new()
    };
    moved_bytes(env, token, bufs, off, |bytes| {
        after(|| on_plaintext(key, dir, bytes, -1, &peer));
    });
}
