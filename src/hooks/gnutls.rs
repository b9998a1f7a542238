//! GnuTLS plaintext: `gnutls_record_send`, `gnutls_record_recv`, and `gnutls_deinit` to
//! end the connection. wget and libcurl-gnutls use these.
//!
//! The socket comes from `gnutls_transport_get_int` (wget sets the fd as the transport),
//! else from the socket call made inside the record call on the same thread.
#![allow(clippy::missing_safety_doc)]

use core::ffi::{c_int, c_uint, c_void};
use libc::{size_t, ssize_t};

use super::{after, call_real};
use crate::capture::{self, Bytes};
use crate::conn::origin;
use crate::sys::resolve::RealFn;
use crate::{conn, spool, tls};
use tapline_record::{TlsInfo, TlsLibrary};

static REAL_SEND: RealFn = RealFn::new(c"gnutls_record_send");
static REAL_RECV: RealFn = RealFn::new(c"gnutls_record_recv");
static REAL_DEINIT: RealFn = RealFn::new(c"gnutls_deinit");
static REAL_TRANSPORT_GET_INT: RealFn = RealFn::new(c"gnutls_transport_get_int");
static REAL_SERVER_NAME_GET: RealFn = RealFn::new(c"gnutls_server_name_get");
static REAL_ALPN_SELECTED: RealFn = RealFn::new(c"gnutls_alpn_get_selected_protocol");
static REAL_SERVER_NAME_SET: RealFn = RealFn::new(c"gnutls_server_name_set");

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
        // SAFETY: gnutls_record_send consumed `ret` bytes of `data`.
        after(|| on_send(session, unsafe { bytes(data, ret as usize) }, ret as usize));
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
                capture::ingress(&s.slot, unsafe { bytes(data, ret as usize) }, ret as usize);
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
        if let Some(s) = tls::find(key) {
            let conn_id = s.slot.conn_id.load(core::sync::atomic::Ordering::Acquire);
            capture::close(&s.slot, conn_id);
            tls::remove(s, key);
        }
    });
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
        let fd = s.slot.info().fd;
        let mut name = [0u8; 256];
        let sni = server_name(session, &mut name);
        let alpn = alpn_selected(session);
        let info = TlsInfo {
            library: TlsLibrary::GnuTls,
            flags: 0,
            sni_len: sni.len() as u16,
            alpn_len: alpn.len() as u16,
            fd,
            socket_conn_id: tls::socket_facts(fd).socket_conn_id,
        };
        spool::tls_info(conn_id, &info, sni, alpn, now);
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
