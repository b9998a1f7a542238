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
use crate::sys::resolve::{self, RealFn};
use crate::{conn, spool, tls};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tapline_record::{TlsInfo, TlsLibrary};

/// The OpenSSL functions we call, by index into [`NAMES`] and each copy's table.
const F_WRITE: usize = 0;
const F_WRITE_EX: usize = 1;
const F_READ: usize = 2;
const F_READ_EX: usize = 3;
const F_FREE: usize = 4;
const F_GET_FD: usize = 5;
const F_GET_ERROR: usize = 6;
const F_GET_SERVERNAME: usize = 7;
const F_GET0_ALPN_SELECTED: usize = 8;
const FNS: usize = 9;
const NAMES: [&CStr; FNS] = [
    c"SSL_write",
    c"SSL_write_ex",
    c"SSL_read",
    c"SSL_read_ex",
    c"SSL_free",
    c"SSL_get_fd",
    c"SSL_get_error",
    c"SSL_get_servername",
    c"SSL_get0_alpn_selected",
];

/// The functions as the generic lookup finds them (`RTLD_NEXT`, then the loaded
/// objects): used when the caller's own libssl cannot be told.
static DEFAULT: [RealFn; FNS] = [
    RealFn::new(NAMES[0]),
    RealFn::new(NAMES[1]),
    RealFn::new(NAMES[2]),
    RealFn::new(NAMES[3]),
    RealFn::new(NAMES[4]),
    RealFn::new(NAMES[5]),
    RealFn::new(NAMES[6]),
    RealFn::new(NAMES[7]),
    RealFn::new(NAMES[8]),
];

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
    get_fd: &DEFAULT[F_GET_FD],
    get_error: &DEFAULT[F_GET_ERROR],
    get_servername: &DEFAULT[F_GET_SERVERNAME],
    get0_alpn_selected: &DEFAULT[F_GET0_ALPN_SELECTED],
};

/// One libssl loaded in the process, and its functions. A process can hold two
/// (Python's `_ssl` with the system libssl, a wheel with its own, both `RTLD_LOCAL`):
/// our exported `SSL_write` then receives both copies' sessions, and must hand each to
/// the copy the caller would have reached without us.
struct Copy {
    /// Load address of the libssl object; 0 = free entry.
    base: AtomicUsize,
    ready: AtomicBool,
    fns: [Addr; FNS],
}

/// A function address found once; 0 = missing.
struct Addr(AtomicUsize);

impl Resolved for Addr {
    fn get(&self) -> Option<usize> {
        match self.0.load(Ordering::Acquire) {
            0 => None,
            a => Some(a),
        }
    }
}

const COPIES_MAX: usize = 4;
#[allow(clippy::declare_interior_mutable_const)]
const NO_ADDR: Addr = Addr(AtomicUsize::new(0));
#[allow(clippy::declare_interior_mutable_const)]
const NO_COPY: Copy = Copy {
    base: AtomicUsize::new(0),
    ready: AtomicBool::new(false),
    fns: [NO_ADDR; FNS],
};
static COPIES: [Copy; COPIES_MAX] = [NO_COPY; COPIES_MAX];

macro_rules! queries_of {
    ($i:expr) => {
        SessionQueries {
            get_fd: &COPIES[$i].fns[F_GET_FD],
            get_error: &COPIES[$i].fns[F_GET_ERROR],
            get_servername: &COPIES[$i].fns[F_GET_SERVERNAME],
            get0_alpn_selected: &COPIES[$i].fns[F_GET0_ALPN_SELECTED],
        }
    };
}
static COPY_QUERIES: [SessionQueries; COPIES_MAX] = [
    queries_of!(0),
    queries_of!(1),
    queries_of!(2),
    queries_of!(3),
];

/// Which copy serves a call site: (return address, copy index + 1, or [`USE_DEFAULT`]).
/// Call sites are few (a handful per library), so after the first call through each
/// one the answer is a scan of this array: no lock, no loader call.
const CALLERS_MAX: usize = 64;
const USE_DEFAULT: usize = usize::MAX;
#[allow(clippy::declare_interior_mutable_const)]
const NO_CALLER: (AtomicUsize, AtomicUsize) = (AtomicUsize::new(0), AtomicUsize::new(0));
static CALLERS: [(AtomicUsize, AtomicUsize); CALLERS_MAX] = [NO_CALLER; CALLERS_MAX];

/// The OpenSSL a call came for: a known copy, or the generic lookup.
#[derive(Clone, Copy)]
enum Target {
    Copy(usize),
    Default,
}

impl Target {
    /// The real function `f` of this target.
    #[inline]
    fn real(self, f: usize) -> &'static dyn Resolved {
        match self {
            Target::Copy(i) => &COPIES[i].fns[f],
            Target::Default => &DEFAULT[f],
        }
    }

    fn queries(self) -> &'static SessionQueries {
        match self {
            Target::Copy(i) => &COPY_QUERIES[i],
            Target::Default => &INTERPOSED,
        }
    }
}

/// The target for a call returning to `ra` (0: unknown caller, the generic lookup).
#[inline]
fn target(ra: usize) -> Target {
    if ra == 0 {
        return Target::Default;
    }
    for (site, copy) in &CALLERS {
        match site.load(Ordering::Acquire) {
            0 => break,
            a if a == ra => match copy.load(Ordering::Acquire) {
                0 => break, // being filled in by another thread
                USE_DEFAULT => return Target::Default,
                i => return Target::Copy(i - 1),
            },
            _ => {}
        }
    }
    let target = resolve_target(ra);
    let value = match target {
        Target::Copy(i) => i + 1,
        Target::Default => USE_DEFAULT,
    };
    for (site, copy) in &CALLERS {
        if site
            .compare_exchange(0, ra, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            copy.store(value, Ordering::Release);
            break;
        }
    }
    target
}

/// First call from `ra`: which libssl would the calling object bind `SSL_write` to?
/// Ask `dlsym` within that object's own scope; take that libssl's functions.
fn resolve_target(ra: usize) -> Target {
    let Some((_, caller)) = resolve::object_of(ra) else {
        return Target::Default;
    };
    let Some(write) = resolve::lookup_in_object(caller, NAMES[F_WRITE]) else {
        return Target::Default;
    };
    let Some((base, path)) = resolve::object_of(write) else {
        return Target::Default;
    };
    copy_for(base, path).map_or(Target::Default, Target::Copy)
}

/// The table entry of the libssl loaded at `base` (file `path`), filled on first use.
fn copy_for(base: usize, path: &CStr) -> Option<usize> {
    for (i, c) in COPIES.iter().enumerate() {
        let b = c.base.load(Ordering::Acquire);
        if b == base {
            // Being filled by another thread right now? Wait a bounded moment.
            for _ in 0..100_000 {
                if c.ready.load(Ordering::Acquire) {
                    return Some(i);
                }
                core::hint::spin_loop();
            }
            return None;
        }
        if b == 0
            && c.base
                .compare_exchange(0, base, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            for (f, name) in NAMES.iter().enumerate() {
                let addr = resolve::lookup_in_object(path, name).unwrap_or(0);
                c.fns[f].0.store(addr, Ordering::Release);
            }
            c.ready.store(true, Ordering::Release);
            return Some(i);
        }
    }
    None
}

// The exported symbols. On x86-64 and AArch64 each is a two-instruction trampoline
// that passes its return address (which object called us) as one more argument to the
// Rust function that does the work; elsewhere the generic lookup serves every caller.

#[cfg(target_arch = "x86_64")]
mod entry {
    use super::*;

    #[unsafe(naked)]
    #[no_mangle]
    pub unsafe extern "C" fn SSL_write(_: *mut c_void, _: *const c_void, _: c_int) -> c_int {
        core::arch::naked_asm!("mov rcx, [rsp]", "jmp {}", sym ssl_write)
    }

    #[unsafe(naked)]
    #[no_mangle]
    pub unsafe extern "C" fn SSL_write_ex(
        _: *mut c_void,
        _: *const c_void,
        _: size_t,
        _: *mut size_t,
    ) -> c_int {
        core::arch::naked_asm!("mov r8, [rsp]", "jmp {}", sym ssl_write_ex)
    }

    #[unsafe(naked)]
    #[no_mangle]
    pub unsafe extern "C" fn SSL_read(_: *mut c_void, _: *mut c_void, _: c_int) -> c_int {
        core::arch::naked_asm!("mov rcx, [rsp]", "jmp {}", sym ssl_read)
    }

    #[unsafe(naked)]
    #[no_mangle]
    pub unsafe extern "C" fn SSL_read_ex(
        _: *mut c_void,
        _: *mut c_void,
        _: size_t,
        _: *mut size_t,
    ) -> c_int {
        core::arch::naked_asm!("mov r8, [rsp]", "jmp {}", sym ssl_read_ex)
    }

    #[unsafe(naked)]
    #[no_mangle]
    pub unsafe extern "C" fn SSL_free(_: *mut c_void) {
        core::arch::naked_asm!("mov rsi, [rsp]", "jmp {}", sym ssl_free)
    }
}

#[cfg(target_arch = "aarch64")]
mod entry {
    use super::*;

    #[unsafe(naked)]
    #[no_mangle]
    pub unsafe extern "C" fn SSL_write(_: *mut c_void, _: *const c_void, _: c_int) -> c_int {
        core::arch::naked_asm!("mov x3, x30", "b {}", sym ssl_write)
    }

    #[unsafe(naked)]
    #[no_mangle]
    pub unsafe extern "C" fn SSL_write_ex(
        _: *mut c_void,
        _: *const c_void,
        _: size_t,
        _: *mut size_t,
    ) -> c_int {
        core::arch::naked_asm!("mov x4, x30", "b {}", sym ssl_write_ex)
    }

    #[unsafe(naked)]
    #[no_mangle]
    pub unsafe extern "C" fn SSL_read(_: *mut c_void, _: *mut c_void, _: c_int) -> c_int {
        core::arch::naked_asm!("mov x3, x30", "b {}", sym ssl_read)
    }

    #[unsafe(naked)]
    #[no_mangle]
    pub unsafe extern "C" fn SSL_read_ex(
        _: *mut c_void,
        _: *mut c_void,
        _: size_t,
        _: *mut size_t,
    ) -> c_int {
        core::arch::naked_asm!("mov x4, x30", "b {}", sym ssl_read_ex)
    }

    #[unsafe(naked)]
    #[no_mangle]
    pub unsafe extern "C" fn SSL_free(_: *mut c_void) {
        core::arch::naked_asm!("mov x1, x30", "b {}", sym ssl_free)
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod entry {
    use super::*;

    #[no_mangle]
    pub unsafe extern "C" fn SSL_write(ssl: *mut c_void, buf: *const c_void, num: c_int) -> c_int {
        // SAFETY: the caller's arguments, passed on.
        unsafe { ssl_write(ssl, buf, num, 0) }
    }

    #[no_mangle]
    pub unsafe extern "C" fn SSL_write_ex(
        ssl: *mut c_void,
        buf: *const c_void,
        num: size_t,
        written: *mut size_t,
    ) -> c_int {
        // SAFETY: the caller's arguments, passed on.
        unsafe { ssl_write_ex(ssl, buf, num, written, 0) }
    }

    #[no_mangle]
    pub unsafe extern "C" fn SSL_read(ssl: *mut c_void, buf: *mut c_void, num: c_int) -> c_int {
        // SAFETY: the caller's arguments, passed on.
        unsafe { ssl_read(ssl, buf, num, 0) }
    }

    #[no_mangle]
    pub unsafe extern "C" fn SSL_read_ex(
        ssl: *mut c_void,
        buf: *mut c_void,
        num: size_t,
        readbytes: *mut size_t,
    ) -> c_int {
        // SAFETY: the caller's arguments, passed on.
        unsafe { ssl_read_ex(ssl, buf, num, readbytes, 0) }
    }

    #[no_mangle]
    pub unsafe extern "C" fn SSL_free(ssl: *mut c_void) {
        // SAFETY: the caller's argument, passed on.
        unsafe { ssl_free(ssl, 0) }
    }
}

unsafe extern "C" fn ssl_write(
    ssl: *mut c_void,
    buf: *const c_void,
    num: c_int,
    ra: usize,
) -> c_int {
    let t = target(ra);
    let prev = tls::enter(ssl as usize);
    let ret = call_real!(
        t.real(F_WRITE),
        fn(*mut c_void, *const c_void, c_int) -> c_int,
        (ssl, buf, num),
        NO_REAL_FUNCTION
    );
    tls::leave(prev);
    // SAFETY: `buf` is the caller's buffer that SSL_write just returned `ret` for.
    unsafe { after_write(t.queries(), ssl, buf, ret) };
    ret
}

unsafe extern "C" fn ssl_write_ex(
    ssl: *mut c_void,
    buf: *const c_void,
    num: size_t,
    written: *mut size_t,
    ra: usize,
) -> c_int {
    let t = target(ra);
    let prev = tls::enter(ssl as usize);
    let ret = call_real!(
        t.real(F_WRITE_EX),
        fn(*mut c_void, *const c_void, size_t, *mut size_t) -> c_int,
        (ssl, buf, num, written),
        0
    );
    tls::leave(prev);
    // SAFETY: the caller's arguments, which SSL_write_ex just returned `ret` for.
    unsafe { after_write_ex(t.queries(), ssl, buf, ret, written) };
    ret
}

unsafe extern "C" fn ssl_read(ssl: *mut c_void, buf: *mut c_void, num: c_int, ra: usize) -> c_int {
    let t = target(ra);
    let prev = tls::enter(ssl as usize);
    let ret = call_real!(
        t.real(F_READ),
        fn(*mut c_void, *mut c_void, c_int) -> c_int,
        (ssl, buf, num),
        NO_REAL_FUNCTION
    );
    tls::leave(prev);
    // SAFETY: `buf` is the caller's buffer that SSL_read just returned `ret` for.
    unsafe { after_read(t.queries(), ssl, buf, ret) };
    ret
}

unsafe extern "C" fn ssl_read_ex(
    ssl: *mut c_void,
    buf: *mut c_void,
    num: size_t,
    readbytes: *mut size_t,
    ra: usize,
) -> c_int {
    let t = target(ra);
    let prev = tls::enter(ssl as usize);
    let ret = call_real!(
        t.real(F_READ_EX),
        fn(*mut c_void, *mut c_void, size_t, *mut size_t) -> c_int,
        (ssl, buf, num, readbytes),
        0
    );
    tls::leave(prev);
    // SAFETY: the caller's arguments, which SSL_read_ex just returned `ret` for.
    unsafe { after_read_ex(t.queries(), ssl, buf, ret, readbytes) };
    ret
}

unsafe extern "C" fn ssl_free(ssl: *mut c_void, ra: usize) {
    let t = target(ra);
    call_real!(t.real(F_FREE), fn(*mut c_void) -> (), (ssl), ());
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
            library: TlsLibrary::OpenSsl,
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
