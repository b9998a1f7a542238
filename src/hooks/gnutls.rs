//! GnuTLS plaintext: `gnutls_record_send`, `gnutls_record_recv`, and `gnutls_deinit` to
//! end the connection. wget and libcurl-gnutls use these.
//!
//! The socket comes from `gnutls_transport_get_int` (wget sets the fd as the transport),
//! else from the socket call made inside the record call on the same thread.
//!
//! A failed handshake (`gnutls_handshake`: a fatal error, said by `gnutls_strerror`, and
//! for a received alert its name) and a peer certificate that did not verify
//! (`gnutls_certificate_verify_peers2/3`: wget checks after the handshake, and may be
//! told to go on) are written as TLS `Failure`s on the socket's connection.
#![allow(clippy::missing_safety_doc)]

use core::ffi::{c_char, c_int, c_uint, c_void};
use libc::{size_t, ssize_t};

use super::{after, call_real, transferred, ReasonText};
use crate::capture::{self, Bytes};
use crate::conn::origin;
use crate::sys::resolve::RealFn;
use crate::{conn, spool, tls};
use tapline_record::{failure_flags, TlsLibrary};

static REAL_SEND: RealFn = RealFn::new(c"gnutls_record_send");
static REAL_RECV: RealFn = RealFn::new(c"gnutls_record_recv");
static REAL_DEINIT: RealFn = RealFn::new(c"gnutls_deinit");
static REAL_TRANSPORT_GET_INT: RealFn = RealFn::new(c"gnutls_transport_get_int");
static REAL_SERVER_NAME_GET: RealFn = RealFn::new(c"gnutls_server_name_get");
static REAL_ALPN_SELECTED: RealFn = RealFn::new(c"gnutls_alpn_get_selected_protocol");
static REAL_SERVER_NAME_SET: RealFn = RealFn::new(c"gnutls_server_name_set");
static REAL_HANDSHAKE: RealFn = RealFn::new(c"gnutls_handshake");
static REAL_VERIFY_PEERS2: RealFn = RealFn::new(c"gnutls_certificate_verify_peers2");
static REAL_VERIFY_PEERS3: RealFn = RealFn::new(c"gnutls_certificate_verify_peers3");
static REAL_ERROR_IS_FATAL: RealFn = RealFn::new(c"gnutls_error_is_fatal");
static REAL_STRERROR: RealFn = RealFn::new(c"gnutls_strerror");
static REAL_ALERT_GET: RealFn = RealFn::new(c"gnutls_alert_get");
static REAL_ALERT_GET_NAME: RealFn = RealFn::new(c"gnutls_alert_get_name");

/// GNUTLS_E_FATAL_ALERT_RECEIVED: the peer's alert says why.
const E_FATAL_ALERT_RECEIVED: c_int = -12;
/// GNUTLS_E_PUSH_ERROR, GNUTLS_E_PULL_ERROR, GNUTLS_E_PREMATURE_TERMINATION: the
/// transport failed (a reset, a close); the socket's own end says it better.
const TRANSPORT_ERRORS: [c_int; 3] = [-53, -54, -110];

/// `gnutls_certificate_status_t` bits, in the words of
/// `gnutls_certificate_verification_status_print` (which allocates: not called here).
const CERT_STATUS: [(c_uint, &[u8]); 14] = [
    (1 << 6, b"the certificate issuer is unknown"),
    (1 << 7, b"the certificate issuer is not a CA"),
    (1 << 10, b"the certificate has expired"),
    (1 << 9, b"the certificate is not yet activated"),
    (1 << 5, b"the certificate was revoked"),
    (1 << 8, b"the certificate uses an insecure algorithm"),
    (1 << 11, b"the signature in the certificate is invalid"),
    (
        1 << 14,
        b"the name in the certificate does not match the expected",
    ),
    (
        1 << 16,
        b"the certificate chain violates the signer's constraints",
    ),
    (1 << 17, b"the certificate does not match the pinned one"),
    (1 << 18, b"the certificate is not for this purpose"),
    (
        1 << 19,
        b"the certificate requires the server to include an OCSP status",
    ),
    (1 << 20, b"the received OCSP status response is invalid"),
    (
        1 << 21,
        b"the certificate contains an unknown critical extension",
    ),
];

/// GNUTLS_E_INTERNAL_ERROR: what we return if the real function cannot be found.
const E_INTERNAL: ssize_t = -59;
const GNUTLS_NAME_DNS: c_uint = 1;

#[repr(C)]
struct Datum {
    data: *mut u8,
    size: c_uint,
}

#[no_mangle]
pub unsafe extern "C" fn gnutls_record_send(
    session: *mut c_void,
    data: *const c_void,
    size: size_t,
) -> ssize_t {
    let prev = tls::enter(session as usize);
    let ret = call_real!(
        REAL_SEND,
        fn(*mut c_void, *const c_void, size_t) -> ssize_t,
        (session, data, size),
        E_INTERNAL
    );
    tls::leave(prev);
    if ret > 0 {
        let n = ret as usize;
        // SAFETY: gnutls_record_send consumed `ret` bytes of `data`.
        after(|| on_send(session, unsafe { transferred(data, n) }, n));
    }
    ret
}

#[no_mangle]
pub unsafe extern "C" fn gnutls_record_recv(
    session: *mut c_void,
    data: *mut c_void,
    size: size_t,
) -> ssize_t {
    let prev = tls::enter(session as usize);
    let ret = call_real!(
        REAL_RECV,
        fn(*mut c_void, *mut c_void, size_t) -> ssize_t,
        (session, data, size),
        E_INTERNAL
    );
    tls::leave(prev);
    if ret > 0 {
        after(|| {
            if let Some(s) = tls::find(session as usize) {
                // SAFETY: gnutls_record_recv wrote `ret` bytes into `data`.
                capture::ingress(
                    &s.slot,
                    unsafe { transferred(data, ret as usize) },
                    ret as usize,
                );
            }
        });
    } else if ret == 0 {
        after(|| {
            if let Some(s) = tls::find(session as usize) {
                capture::eof(&s.slot);
            }
        });
    }
    ret
}

/// The client names its server here; GnuTLS will not tell us later (its
/// `gnutls_server_name_get` answers on the server side only).
#[no_mangle]
pub unsafe extern "C" fn gnutls_server_name_set(
    session: *mut c_void,
    kind: c_uint,
    name: *const c_void,
    len: size_t,
) -> c_int {
    let ret = call_real!(
        REAL_SERVER_NAME_SET,
        fn(*mut c_void, c_uint, *const c_void, size_t) -> c_int,
        (session, kind, name, len),
        E_INTERNAL as c_int
    );
    if ret == 0 && kind == GNUTLS_NAME_DNS && !name.is_null() {
        // SAFETY: GnuTLS accepted `len` bytes at `name` as the server name.
        let bytes = unsafe { core::slice::from_raw_parts(name as *const u8, len.min(256)) };
        after(|| tls::remember_server_name(session as usize, bytes));
    }
    ret
}

#[no_mangle]
pub unsafe extern "C" fn gnutls_deinit(session: *mut c_void) {
    call_real!(REAL_DEINIT, fn(*mut c_void) -> (), (session), ());
    after(|| {
        let key = session as usize;
        tls::forget_failure(key);
        if let Some(s) = tls::find(key) {
            let conn_id = s.slot.conn_id.load(core::sync::atomic::Ordering::Acquire);
            capture::close(&s.slot, conn_id);
            tls::remove(s, key);
        }
    });
}

#[no_mangle]
pub unsafe extern "C" fn gnutls_handshake(session: *mut c_void) -> c_int {
    let prev = tls::enter(session as usize);
    let ret = call_real!(
        REAL_HANDSHAKE,
        fn(*mut c_void) -> c_int,
        (session),
        E_INTERNAL as c_int
    );
    tls::leave(prev);
    if ret < 0 {
        after(|| on_handshake_failed(session, ret));
    }
    ret
}

#[no_mangle]
pub unsafe extern "C" fn gnutls_certificate_verify_peers2(
    session: *mut c_void,
    status: *mut c_uint,
) -> c_int {
    let ret = call_real!(
        REAL_VERIFY_PEERS2,
        fn(*mut c_void, *mut c_uint) -> c_int,
        (session, status),
        E_INTERNAL as c_int
    );
    if ret == 0 && !status.is_null() {
        // SAFETY: on success GnuTLS stored the status in `*status`.
        let st = unsafe { *status };
        after(|| on_verified(session, st));
    }
    ret
}

#[no_mangle]
pub unsafe extern "C" fn gnutls_certificate_verify_peers3(
    session: *mut c_void,
    hostname: *const c_void,
    status: *mut c_uint,
) -> c_int {
    let ret = call_real!(
        REAL_VERIFY_PEERS3,
        fn(*mut c_void, *const c_void, *mut c_uint) -> c_int,
        (session, hostname, status),
        E_INTERNAL as c_int
    );
    if ret == 0 && !status.is_null() {
        // SAFETY: on success GnuTLS stored the status in `*status`.
        let st = unsafe { *status };
        after(|| on_verified(session, st));
    }
    ret
}

/// `gnutls_handshake` returned `ret` < 0: a fatal error is the handshake's failure.
fn on_handshake_failed(session: *mut c_void, ret: c_int) {
    let fatal = call_real!(REAL_ERROR_IS_FATAL, fn(c_int) -> c_int, (ret), 0);
    if fatal == 0 || TRANSPORT_ERRORS.contains(&ret) || !tls::first_failure(session as usize) {
        return;
    }
    let mut text = ReasonText::new();
    text.push(c_text(call_real!(
        REAL_STRERROR,
        fn(c_int) -> *const c_char,
        (ret),
        core::ptr::null()
    )));
    if ret == E_FATAL_ALERT_RECEIVED {
        let alert = call_real!(REAL_ALERT_GET, fn(*mut c_void) -> c_int, (session), -1);
        let name = c_text(call_real!(
            REAL_ALERT_GET_NAME,
            fn(c_int) -> *const c_char,
            (alert),
            core::ptr::null()
        ));
        if !name.is_empty() {
            text.push(b" (");
            text.push(name);
            text.push(b")");
        }
    }
    if text.is_empty() {
        text.push(b"handshake failed");
    }
    failure(session, 0, ret, text.as_bytes());
}

/// The peer's certificate was checked: `status` 0 is trusted.
fn on_verified(session: *mut c_void, status: c_uint) {
    if status == 0 || !tls::first_failure(session as usize) {
        return;
    }
    let mut text = ReasonText::new();
    text.push(b"certificate verify failed");
    let mut first = true;
    for (bit, what) in CERT_STATUS {
        if status & bit != 0 {
            text.push(if first { b": " } else { b", " });
            text.push(what);
            first = false;
        }
    }
    failure(
        session,
        failure_flags::TLS_VERIFY_ONLY,
        status as c_int,
        text.as_bytes(),
    );
}

/// Writes a TLS `Failure` for `session` on its socket's connection (else its plaintext
/// connection's, else one of its own).
fn failure(session: *mut c_void, flags: u8, code: c_int, reason: &[u8]) {
    let fd = match transport_fd(session) {
        fd if fd >= 0 && conn::slot(fd).is_some() => fd,
        _ => tls::inner_socket().unwrap_or(-1),
    };
    let facts = tls::socket_facts(fd);
    let conn_id = match (facts.socket_conn_id, tls::find(session as usize)) {
        (0, Some(s)) => s.slot.conn_id.load(core::sync::atomic::Ordering::Acquire),
        (0, None) => conn::new_conn_id(spool::pid()),
        (socket, _) => socket,
    };
    let mut name = [0u8; 256];
    let n = tls::server_name(session as usize, &mut name);
    capture::tls_failed(conn_id, &facts.info.peer, flags, code, &name[..n], reason);
}

/// A static C string of GnuTLS's (an error or alert name), capped.
fn c_text<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        return &[];
    }
    // SAFETY: GnuTLS's error and alert names are NUL-terminated static strings.
    let s = unsafe { core::ffi::CStr::from_ptr(p) }.to_bytes();
    &s[..s.len().min(200)]
}

fn on_send(session: *mut c_void, data: Bytes<'_>, n: usize) {
    let Some((s, new)) = tls::find_or_insert(session as usize) else {
        return;
    };
    if new {
        let fd = match transport_fd(session) {
            fd if fd >= 0 && conn::slot(fd).is_some() => fd,
            _ => tls::inner_socket().unwrap_or(-1),
        };
        s.slot.start(
            conn::new_conn_id(spool::pid()),
            origin::GNUTLS,
            tls::socket_facts(fd).info,
        );
    }
    capture::egress(&s.slot, data, n, |conn_id, now| {
        let mut name = [0u8; 256];
        let sni = server_name(session, &mut name);
        let alpn = alpn_selected(session);
        tls::write_info(&s.slot, conn_id, TlsLibrary::GnuTls, sni, alpn, now);
    });
}

fn transport_fd(session: *mut c_void) -> c_int {
    call_real!(
        REAL_TRANSPORT_GET_INT,
        fn(*mut c_void) -> c_int,
        (session),
        -1
    )
}

fn server_name(session: *mut c_void, buf: &mut [u8; 256]) -> &[u8] {
    let n = tls::server_name(session as usize, buf);
    if n > 0 {
        return &buf[..n];
    }
    let mut len: size_t = buf.len();
    let mut ty: c_uint = 0;
    let r = call_real!(
        REAL_SERVER_NAME_GET,
        fn(*mut c_void, *mut c_void, *mut size_t, *mut c_uint, c_uint) -> c_int,
        (
            session,
            buf.as_mut_ptr() as *mut c_void,
            &mut len,
            &mut ty,
            0
        ),
        -1
    );
    if r != 0 || ty != GNUTLS_NAME_DNS {
        return &[];
    }
    let len = len.min(buf.len());
    // The length may or may not count a trailing NUL.
    let end = buf[..len].iter().position(|&b| b == 0).unwrap_or(len);
    &buf[..end]
}

fn alpn_selected<'a>(session: *mut c_void) -> &'a [u8] {
    let mut d = Datum {
        data: core::ptr::null_mut(),
        size: 0,
    };
    let r = call_real!(
        REAL_ALPN_SELECTED,
        fn(*mut c_void, *mut Datum) -> c_int,
        (session, &mut d),
        -1
    );
    if r != 0 || d.data.is_null() || d.size == 0 {
        return &[];
    }
    // SAFETY: GnuTLS points the datum at `size` bytes owned by the session.
    unsafe { core::slice::from_raw_parts(d.data, d.size.min(255) as usize) }
}
