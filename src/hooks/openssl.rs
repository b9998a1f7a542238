//! OpenSSL plaintext: `SSL_write`, `SSL_write_ex`, `SSL_read`, `SSL_read_ex`, and
//! `SSL_free` to end the connection.
//!
//! Why all four: Python 3 calls only the `_ex` variants; curl, Perl and Ruby the plain
//! ones; rust-openssl both. Why `SSL_free` and not `SSL_shutdown`: many clients never
//! shut down cleanly, but every session is freed (or the process exits).
//!
//! The real functions are found with the loaded-objects fallback of
//! [`crate::sys::resolve`]: Python's `_ssl` and Perl's Net::SSLeay load libssl
//! `RTLD_LOCAL`, where `dlsym(RTLD_NEXT)` returns NULL. `SSL_peek` is not interposed:
//! peeked bytes never pass through these hooks, so they cannot be counted twice.
//!
//! Only the bytes each call reports as done are captured (Perl and Ruby write 16 KiB
//! at a time out of larger buffers; `ret <= 0` is WANT_READ/WANT_WRITE or an error).
#![allow(clippy::missing_safety_doc)]

use core::ffi::{c_char, c_int, c_uint, c_void, CStr};
use libc::size_t;

use super::{after, call_real};
use crate::capture::{self, Bytes};
use crate::conn::origin;
use crate::sys::resolve::RealFn;
use crate::{conn, spool, tls};
use tapline_record::{tls_library, TlsInfo};

static REAL_SSL_WRITE: RealFn = RealFn::new(c"SSL_write");
static REAL_SSL_WRITE_EX: RealFn = RealFn::new(c"SSL_write_ex");
static REAL_SSL_READ: RealFn = RealFn::new(c"SSL_read");
static REAL_SSL_READ_EX: RealFn = RealFn::new(c"SSL_read_ex");
static REAL_SSL_FREE: RealFn = RealFn::new(c"SSL_free");
static REAL_SSL_GET_FD: RealFn = RealFn::new(c"SSL_get_fd");
static REAL_SSL_GET_ERROR: RealFn = RealFn::new(c"SSL_get_error");
static REAL_SSL_GET_SERVERNAME: RealFn = RealFn::new(c"SSL_get_servername");
static REAL_SSL_GET0_ALPN_SELECTED: RealFn = RealFn::new(c"SSL_get0_alpn_selected");

/// `SSL_get_error` says the peer closed the TLS connection cleanly.
const SSL_ERROR_ZERO_RETURN: c_int = 6;
const TLSEXT_NAMETYPE_HOST_NAME: c_int = 0;

/// Never reached in practice: our `SSL_*` symbols are only called by programs that
/// loaded libssl, where the real function exists. Report an SSL error, as the function
/// itself does on failure.
const NO_REAL_FUNCTION: c_int = -1;

/// Where the session queries (`SSL_get_fd`, `SSL_get_error`, `SSL_get_servername`,
/// `SSL_get0_alpn_selected`) are found: in the shared libssl for the interposed
/// symbols ([`INTERPOSED`]); in the main executable for the inline hooks, where
/// `RTLD_NEXT` and the loaded-objects fallback cannot see them.
pub(crate) struct SessionQueries {
    pub get_fd: &'static dyn Resolved,
    pub get_error: &'static dyn Resolved,
    pub get_servername: &'static dyn Resolved,
    pub get0_alpn_selected: &'static dyn Resolved,
}

/// A function address found once (see [`RealFn`]).
pub(crate) trait Resolved: Sync {
    fn get(&self) -> Option<usize>;
}

impl Resolved for RealFn {
    fn get(&self) -> Option<usize> {
        RealFn::get(self)
    }
}

static INTERPOSED: SessionQueries = SessionQueries {
    get_fd: &REAL_SSL_GET_FD,
    get_error: &REAL_SSL_GET_ERROR,
    get_servername: &REAL_SSL_GET_SERVERNAME,
    get0_alpn_selected: &REAL_SSL_GET0_ALPN_SELECTED,
};

#[no_mangle]
pub unsafe extern "C" fn SSL_write(ssl: *mut c_void, buf: *const c_void, num: c_int) -> c_int {
    let prev = tls::enter(ssl as usize);
    let ret = call_real!(
        REAL_SSL_WRITE,
        fn(*mut c_void, *const c_void, c_int) -> c_int,
        (ssl, buf, num),
        NO_REAL_FUNCTION
    );
    tls::leave(prev);
    // SAFETY: `buf` is the caller's buffer that SSL_write just returned `ret` for.
    unsafe { after_write(&INTERPOSED, ssl, buf, ret) };
    ret
}

#[no_mangle]
pub unsafe extern "C" fn SSL_write_ex(
    ssl: *mut c_void,
    buf: *const c_void,
    num: size_t,
    written: *mut size_t,
) -> c_int {
    let prev = tls::enter(ssl as usize);
    let ret = call_real!(
        REAL_SSL_WRITE_EX,
        fn(*mut c_void, *const c_void, size_t, *mut size_t) -> c_int,
        (ssl, buf, num, written),
        0
    );
    tls::leave(prev);
    // SAFETY: the caller's arguments, which SSL_write_ex just returned `ret` for.
    unsafe { after_write_ex(&INTERPOSED, ssl, buf, ret, written) };
    ret
}

#[no_mangle]
pub unsafe extern "C" fn SSL_read(ssl: *mut c_void, buf: *mut c_void, num: c_int) -> c_int {
    let prev = tls::enter(ssl as usize);
    let ret = call_real!(
        REAL_SSL_READ,
        fn(*mut c_void, *mut c_void, c_int) -> c_int,
        (ssl, buf, num),
        NO_REAL_FUNCTION
    );
    tls::leave(prev);
    // SAFETY: `buf` is the caller's buffer that SSL_read just returned `ret` for.
    unsafe { after_read(&INTERPOSED, ssl, buf, ret) };
    ret
}

#[no_mangle]
pub unsafe extern "C" fn SSL_read_ex(
    ssl: *mut c_void,
    buf: *mut c_void,
    num: size_t,
    readbytes: *mut size_t,
) -> c_int {
    let prev = tls::enter(ssl as usize);
    let ret = call_real!(
        REAL_SSL_READ_EX,
        fn(*mut c_void, *mut c_void, size_t, *mut size_t) -> c_int,
        (ssl, buf, num, readbytes),
        0
    );
    tls::leave(prev);
    // SAFETY: the caller's arguments, which SSL_read_ex just returned `ret` for.
    unsafe { after_read_ex(&INTERPOSED, ssl, buf, ret, readbytes) };
    ret
}

#[no_mangle]
pub unsafe extern "C" fn SSL_free(ssl: *mut c_void) {
    call_real!(REAL_SSL_FREE, fn(*mut c_void) -> (), (ssl), ());
    after_free(ssl);
}

/// `SSL_write` on `ssl` returned `ret`.
///
/// # Safety
/// `buf` must be the buffer passed to that call.
pub(crate) unsafe fn after_write(
    q: &SessionQueries,
    ssl: *mut c_void,
    buf: *const c_void,
    ret: c_int,
) {
    if ret > 0 {
        // SAFETY: SSL_write consumed `ret` bytes of `buf`.
        after(|| on_plaintext(q, ssl, 0, unsafe { bytes(buf, ret as usize) }, ret as usize));
    }
}

/// `SSL_write_ex` on `ssl` returned `ret`.
///
/// # Safety
/// `buf` and `written` must be the pointers passed to that call.
pub(crate) unsafe fn after_write_ex(
    q: &SessionQueries,
    ssl: *mut c_void,
    buf: *const c_void,
    ret: c_int,
    written: *const size_t,
) {
    if ret == 1 && !written.is_null() {
        // SAFETY: on success SSL_write_ex stored the count in `*written`.
        let n = unsafe { *written };
        // SAFETY: and consumed that many bytes of `buf`.
        after(|| on_plaintext(q, ssl, 0, unsafe { bytes(buf, n) }, n));
    }
}

/// `SSL_read` on `ssl` returned `ret`.
///
/// # Safety
/// `buf` must be the buffer passed to that call.
pub(crate) unsafe fn after_read(
    q: &SessionQueries,
    ssl: *mut c_void,
    buf: *mut c_void,
    ret: c_int,
) {
    if ret > 0 {
        // SAFETY: SSL_read wrote `ret` bytes into `buf`.
        after(|| on_plaintext(q, ssl, 1, unsafe { bytes(buf, ret as usize) }, ret as usize));
    } else if ret == 0 {
        after(|| on_peer_closed(ssl));
    }
}

/// `SSL_read_ex` on `ssl` returned `ret`.
///
/// # Safety
/// `buf` and `readbytes` must be the pointers passed to that call.
pub(crate) unsafe fn after_read_ex(
    q: &SessionQueries,
    ssl: *mut c_void,
    buf: *mut c_void,
    ret: c_int,
    readbytes: *const size_t,
) {
    if ret == 1 && !readbytes.is_null() {
        // SAFETY: on success SSL_read_ex stored the count in `*readbytes`.
        let n = unsafe { *readbytes };
        // SAFETY: and wrote that many bytes into `buf`.
        after(|| on_plaintext(q, ssl, 1, unsafe { bytes(buf, n) }, n));
    } else if ret == 0 {
        after(|| {
            if tls::find(ssl as usize).is_some() && ssl_error(q, ssl, ret) == SSL_ERROR_ZERO_RETURN
            {
                on_peer_closed(ssl)
            }
        });
    }
}

/// `SSL_free(ssl)` returned: the session ends.
pub(crate) fn after_free(ssl: *mut c_void) {
    after(|| end_session(ssl as usize));
}

/// # Safety
/// `buf` must be valid for `n` bytes.
unsafe fn bytes<'a>(buf: *const c_void, n: usize) -> Bytes<'a> {
    if buf.is_null() || n == 0 {
        return Bytes::One(&[]);
    }
    // SAFETY: see above.
    Bytes::One(unsafe { core::slice::from_raw_parts(buf as *const u8, n) })
}

/// Plaintext moved through `ssl` (dir 0: written, 1: read).
fn on_plaintext(q: &SessionQueries, ssl: *mut c_void, dir: usize, data: Bytes<'_>, n: usize) {
    let key = ssl as usize;
    if dir == 1 {
        // Reads never start following a session: a server reads first, and a client
        // always writes its request before it reads.
        if let Some(s) = tls::find(key) {
            capture::ingress(&s.slot, data, n);
        }
        return;
    }
    let Some((s, new)) = tls::find_or_insert(key) else {
        return;
    };
    if new {
        let fd = match ssl_get_fd(q, ssl) {
            fd if fd >= 0 => fd,
            _ => tls::inner_socket().unwrap_or(-1),
        };
        let facts = tls::socket_facts(fd);
        s.slot
            .start(conn::new_conn_id(spool::pid()), origin::OPENSSL, facts.info);
    }
    capture::egress(&s.slot, data, n, |conn_id, now| {
        let fd = s.slot.info().fd;
        let facts = tls::socket_facts(fd);
        let sni = servername(q, ssl);
        let alpn = alpn_selected(q, ssl);
        let info = TlsInfo {
            library: tls_library::OPENSSL,
            flags: 0,
            sni_len: sni.len() as u16,
            alpn_len: alpn.len() as u16,
            fd,
            socket_conn_id: facts.socket_conn_id,
        };
        spool::tls_info(conn_id, &info, sni, alpn, now);
    });
}

fn on_peer_closed(ssl: *mut c_void) {
    if let Some(s) = tls::find(ssl as usize) {
        capture::eof(&s.slot);
    }
}

fn end_session(key: usize) {
    if let Some(s) = tls::find(key) {
        let conn_id = s.slot.conn_id.load(core::sync::atomic::Ordering::Acquire);
        capture::close(&s.slot, conn_id);
        tls::remove(s, key);
    }
}

fn ssl_get_fd(q: &SessionQueries, ssl: *mut c_void) -> c_int {
    call_real!(q.get_fd, fn(*mut c_void) -> c_int, (ssl), -1)
}

fn ssl_error(q: &SessionQueries, ssl: *mut c_void, ret: c_int) -> c_int {
    call_real!(q.get_error, fn(*mut c_void, c_int) -> c_int, (ssl, ret), -1)
}

/// The SNI this client sent, capped at 255 bytes (a DNS name's limit).
fn servername<'a>(q: &SessionQueries, ssl: *mut c_void) -> &'a [u8] {
    let p: *const c_char = call_real!(
        q.get_servername,
        fn(*mut c_void, c_int) -> *const c_char,
        (ssl, TLSEXT_NAMETYPE_HOST_NAME),
        core::ptr::null()
    );
    if p.is_null() {
        return &[];
    }
    // SAFETY: OpenSSL returns a NUL-terminated string owned by the session.
    let name = unsafe { CStr::from_ptr(p) }.to_bytes();
    &name[..name.len().min(255)]
}

/// The ALPN protocol the server selected, if any.
fn alpn_selected<'a>(q: &SessionQueries, ssl: *mut c_void) -> &'a [u8] {
    let mut data: *const u8 = core::ptr::null();
    let mut len: c_uint = 0;
    call_real!(
        q.get0_alpn_selected,
        fn(*mut c_void, *mut *const u8, *mut c_uint) -> (),
        (ssl, &mut data, &mut len),
        ()
    );
    if data.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: OpenSSL points `data` at `len` bytes owned by the session.
    unsafe { core::slice::from_raw_parts(data, len.min(255) as usize) }
}
