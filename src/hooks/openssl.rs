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

use core::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void, CStr};
use libc::size_t;

use super::{after, call_real, transferred, ReasonText};
use crate::capture::{self, Bytes};
use crate::conn::origin;
use crate::sys::resolve::{self, RealFn};
use crate::{conn, spool, tls};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tapline_record::{failure_flags, TlsLibrary};

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
const F_CONNECT: usize = 9;
const F_DO_HANDSHAKE: usize = 10;
const F_IS_INIT_FINISHED: usize = 11;
const F_GET_VERIFY_RESULT: usize = 12;
const F_VERIFY_ERROR_STRING: usize = 13;
const F_PEEK_ERROR: usize = 14;
const F_REASON_ERROR_STRING: usize = 15;
const FNS: usize = 16;
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
    c"SSL_connect",
    c"SSL_do_handshake",
    c"SSL_is_init_finished",
    c"SSL_get_verify_result",
    // libcrypto's, found through libssl's own scope (its dependency).
    c"X509_verify_cert_error_string",
    c"ERR_peek_error",
    c"ERR_reason_error_string",
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
    RealFn::new(NAMES[9]),
    RealFn::new(NAMES[10]),
    RealFn::new(NAMES[11]),
    RealFn::new(NAMES[12]),
    RealFn::new(NAMES[13]),
    RealFn::new(NAMES[14]),
    RealFn::new(NAMES[15]),
];

/// `SSL_get_error` says the peer closed the TLS connection cleanly.
const SSL_ERROR_ZERO_RETURN: c_int = 6;
/// `SSL_get_error` says the call failed in the TLS protocol (the error queue says why).
const SSL_ERROR_SSL: c_int = 1;
/// `SSL_get_verify_result`: the peer's certificate verified (or none was checked).
const X509_V_OK: c_long = 0;
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
    /// Why a handshake failed: these five (any may be missing: the reason is then
    /// shorter, never a failed call).
    pub is_init_finished: &'static dyn Resolved,
    pub get_verify_result: &'static dyn Resolved,
    pub verify_error_string: &'static dyn Resolved,
    pub peek_error: &'static dyn Resolved,
    pub reason_error_string: &'static dyn Resolved,
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
    is_init_finished: &DEFAULT[F_IS_INIT_FINISHED],
    get_verify_result: &DEFAULT[F_GET_VERIFY_RESULT],
    verify_error_string: &DEFAULT[F_VERIFY_ERROR_STRING],
    peek_error: &DEFAULT[F_PEEK_ERROR],
    reason_error_string: &DEFAULT[F_REASON_ERROR_STRING],
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
            is_init_finished: &COPIES[$i].fns[F_IS_INIT_FINISHED],
            get_verify_result: &COPIES[$i].fns[F_GET_VERIFY_RESULT],
            verify_error_string: &COPIES[$i].fns[F_VERIFY_ERROR_STRING],
            peek_error: &COPIES[$i].fns[F_PEEK_ERROR],
            reason_error_string: &COPIES[$i].fns[F_REASON_ERROR_STRING],
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

    #[unsafe(naked)]
    #[no_mangle]
    pub unsafe extern "C" fn SSL_connect(_: *mut c_void) -> c_int {
        core::arch::naked_asm!("mov rsi, [rsp]", "jmp {}", sym ssl_connect)
    }

    #[unsafe(naked)]
    #[no_mangle]
    pub unsafe extern "C" fn SSL_do_handshake(_: *mut c_void) -> c_int {
        core::arch::naked_asm!("mov rsi, [rsp]", "jmp {}", sym ssl_do_handshake)
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

    #[unsafe(naked)]
    #[no_mangle]
    pub unsafe extern "C" fn SSL_connect(_: *mut c_void) -> c_int {
        core::arch::naked_asm!("mov x1, x30", "b {}", sym ssl_connect)
    }

    #[unsafe(naked)]
    #[no_mangle]
    pub unsafe extern "C" fn SSL_do_handshake(_: *mut c_void) -> c_int {
        core::arch::naked_asm!("mov x1, x30", "b {}", sym ssl_do_handshake)
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

    #[no_mangle]
    pub unsafe extern "C" fn SSL_connect(ssl: *mut c_void) -> c_int {
        // SAFETY: the caller's argument, passed on.
        unsafe { ssl_connect(ssl, 0) }
    }

    #[no_mangle]
    pub unsafe extern "C" fn SSL_do_handshake(ssl: *mut c_void) -> c_int {
        // SAFETY: the caller's argument, passed on.
        unsafe { ssl_do_handshake(ssl, 0) }
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

unsafe extern "C" fn ssl_connect(ssl: *mut c_void, ra: usize) -> c_int {
    // SAFETY: our caller's arguments, passed on as they came.
    unsafe { handshake(F_CONNECT, ssl, ra) }
}

unsafe extern "C" fn ssl_do_handshake(ssl: *mut c_void, ra: usize) -> c_int {
    // SAFETY: our caller's arguments, passed on as they came.
    unsafe { handshake(F_DO_HANDSHAKE, ssl, ra) }
}

/// `SSL_connect` and `SSL_do_handshake` (`f`): the same shape, `int f(SSL *)`.
unsafe fn handshake(f: usize, ssl: *mut c_void, ra: usize) -> c_int {
    let t = target(ra);
    let prev = tls::enter(ssl as usize);
    let ret = call_real!(t.real(f), fn(*mut c_void) -> c_int, (ssl), NO_REAL_FUNCTION);
    tls::leave(prev);
    after_handshake(t.queries(), ssl, ret);
    ret
}

/// `SSL_connect` or `SSL_do_handshake` on `ssl` returned `ret` (1: done).
pub(crate) fn after_handshake(q: &SessionQueries, ssl: *mut c_void, ret: c_int) {
    if ret != 1 {
        after(|| on_call_failed(q, ssl, ret));
    }
}

/// A call on `ssl` returned `ret`, not success: when it is the handshake that failed
/// (an SSL error while the handshake is not finished), say why, once per session.
/// What is asked of OpenSSL only looks: `SSL_get_error` and `ERR_peek_error` leave the
/// error queue to the caller, who reads it next.
fn on_call_failed(q: &SessionQueries, ssl: *mut c_void, ret: c_int) {
    if ssl_error(q, ssl, ret) != SSL_ERROR_SSL
        || call_real!(q.is_init_finished, fn(*mut c_void) -> c_int, (ssl), 1) != 0
        || !tls::first_failure(ssl as usize)
    {
        return;
    }
    let code: c_ulong = call_real!(q.peek_error, fn() -> c_ulong, (), 0);
    let mut text = ReasonText::new();
    let reason = static_text(call_real!(
        q.reason_error_string,
        fn(c_ulong) -> *const c_char,
        (code),
        core::ptr::null()
    ));
    let verify: c_long = call_real!(
        q.get_verify_result,
        fn(*mut c_void) -> c_long,
        (ssl),
        X509_V_OK
    );
    const VERIFY_FAILED: &[u8] = b"certificate verify failed";
    if verify != X509_V_OK && (reason.is_empty() || reason == VERIFY_FAILED) {
        text.push(VERIFY_FAILED);
        let why = static_text(call_real!(
            q.verify_error_string,
            fn(c_long) -> *const c_char,
            (verify),
            core::ptr::null()
        ));
        if !why.is_empty() {
            text.push(b": ");
            text.push(why);
        }
    } else if reason.is_empty() {
        text.push(b"handshake failed");
    } else {
        text.push(reason);
    }
    tls_failure(q, ssl, 0, code as i32, text.as_bytes());
}

/// The handshake on `ssl` finished, but the peer's certificate did not verify: the
/// program may go on (`curl -k`) or give up (node checks after the handshake). Written
/// with [`failure_flags::TLS_VERIFY_ONLY`]: the reader makes it the error of a
/// connection that then carried no response.
fn on_unverified(q: &SessionQueries, ssl: *mut c_void) {
    let verify: c_long = call_real!(
        q.get_verify_result,
        fn(*mut c_void) -> c_long,
        (ssl),
        X509_V_OK
    );
    if verify == X509_V_OK || !tls::first_failure(ssl as usize) {
        return;
    }
    let mut text = ReasonText::new();
    text.push(b"certificate verify failed");
    let why = static_text(call_real!(
        q.verify_error_string,
        fn(c_long) -> *const c_char,
        (verify),
        core::ptr::null()
    ));
    if !why.is_empty() {
        text.push(b": ");
        text.push(why);
    }
    tls_failure(
        q,
        ssl,
        failure_flags::TLS_VERIFY_ONLY,
        verify as i32,
        text.as_bytes(),
    );
}

/// Writes a TLS `Failure` for `ssl`: on its socket's connection when the socket is
/// followed (the reader makes it that connection's error), else on its plaintext
/// connection, else on a connection of its own.
fn tls_failure(q: &SessionQueries, ssl: *mut c_void, flags: u8, code: i32, reason: &[u8]) {
    let fd = match ssl_get_fd(q, ssl) {
        fd if fd >= 0 => fd,
        _ => tls::inner_socket().unwrap_or(-1),
    };
    let facts = tls::socket_facts(fd);
    let conn_id = match (facts.socket_conn_id, tls::find(ssl as usize)) {
        (0, Some(s)) => s.slot.conn_id.load(Ordering::Acquire),
        (0, None) => conn::new_conn_id(spool::pid()),
        (socket, _) => socket,
    };
    let sni = servername(q, ssl);
    capture::tls_failed(conn_id, &facts.info.peer, flags, code, sni, reason);
}

/// A C string the library owns for the process's life (an error table entry), capped.
fn static_text<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        return &[];
    }
    // SAFETY: OpenSSL's error and verify strings are NUL-terminated and static.
    let s = unsafe { CStr::from_ptr(p) }.to_bytes();
    &s[..s.len().min(200)]
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
        let n = ret as usize;
        // SAFETY: SSL_write consumed `ret` bytes of `buf`.
        after(|| on_plaintext(q, ssl, 0, unsafe { transferred(buf, n) }, n));
    } else {
        after(|| on_call_failed(q, ssl, ret));
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
        after(|| on_plaintext(q, ssl, 0, unsafe { transferred(buf, n) }, n));
    } else if ret != 1 {
        after(|| on_call_failed(q, ssl, ret));
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
        let n = ret as usize;
        // SAFETY: SSL_read wrote `ret` bytes into `buf`.
        after(|| on_plaintext(q, ssl, 1, unsafe { transferred(buf, n) }, n));
    } else if ret == 0 {
        after(|| {
            on_peer_closed(ssl);
            on_call_failed(q, ssl, ret);
        });
    } else {
        after(|| on_call_failed(q, ssl, ret));
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
        after(|| on_plaintext(q, ssl, 1, unsafe { transferred(buf, n) }, n));
    } else if ret == 0 {
        after(|| {
            if tls::find(ssl as usize).is_some() && ssl_error(q, ssl, ret) == SSL_ERROR_ZERO_RETURN
            {
                on_peer_closed(ssl)
            }
            on_call_failed(q, ssl, ret);
        });
    }
}

/// `SSL_free(ssl)` returned: the session ends.
pub(crate) fn after_free(ssl: *mut c_void) {
    after(|| end_session(ssl as usize));
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
        let sni = servername(q, ssl);
        let alpn = alpn_selected(q, ssl);
        tls::write_info(&s.slot, conn_id, TlsLibrary::OpenSsl, sni, alpn, now);
        on_unverified(q, ssl);
    });
}

fn on_peer_closed(ssl: *mut c_void) {
    if let Some(s) = tls::find(ssl as usize) {
        capture::eof(&s.slot);
    }
}

fn end_session(key: usize) {
    tls::forget_failure(key);
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
