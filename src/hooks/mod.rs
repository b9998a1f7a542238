//! The `extern "C"` shims: the functions this library exports in place of libc's
//! ([`io`] for the calls that carry bytes, [`libc`] for the rest, [`exec`] for the
//! programs a traced process starts) and the TLS libraries' ([`openssl`], [`gnutls`];
//! [`inline`] patches OpenSSL linked into the executable itself; [`dlopen`] follows
//! loaded objects so that those bound past us are bound to us).
//!
//! Every shim follows one pattern: call the real function exactly once, first; keep its
//! return value and errno; then, unless we are already inside our own code on this
//! thread, hand what happened to [`crate::capture`] inside a panic boundary; restore
//! errno; return the real result. Capture may be skipped, never fail the call.

pub mod dlopen;
pub mod exec;
pub mod gnutls;
pub mod inline;
pub mod io;
pub mod libc;
pub mod openssl;

use core::ffi::c_void;
use core::panic::AssertUnwindSafe;

use crate::capture::Bytes;
use crate::sys::{raw, thread};

/// Runs a capture step after a real call: guarded against re-entry, with errno saved and
/// restored, and with any panic caught (a panic must never cross `extern "C"`).
#[inline]
pub fn after(step: impl FnOnce()) {
    if !crate::config::active() {
        return;
    }
    // "We are inside tapline on this thread: pass through" (the thread block's guard,
    // `sys::thread`): set around every capture step so that our own syscalls (the spool
    // write) and anything a capture step calls never re-enter capture.
    let entered = thread::with(|t| {
        if t.in_tapline.get() {
            false
        } else {
            t.in_tapline.set(true);
            true
        }
    })
    .unwrap_or(false);
    if !entered {
        return;
    }
    let saved = raw::errno();
    let _ = std::panic::catch_unwind(AssertUnwindSafe(step));
    raw::set_errno(saved);
    let _ = thread::with(|t| t.in_tapline.set(false));
}

/// The bytes a real call transferred, from the caller's buffer: the one place where a
/// shim's buffer pointer becomes a slice.
///
/// # Safety
/// `buf` is null, or valid for reads of `n` bytes for `'a`: call it with the buffer the
/// program passed and the count the real call reported as transferred (never the
/// requested length), while the shim still runs. A null `buf` or `n == 0` gives no
/// bytes.
pub(crate) unsafe fn transferred<'a>(buf: *const c_void, n: usize) -> Bytes<'a> {
    if buf.is_null() || n == 0 {
        return Bytes::One(&[]);
    }
    // SAFETY: the caller's contract above.
    Bytes::One(unsafe { core::slice::from_raw_parts(buf as *const u8, n) })
}

/// Calls the real function behind a [`RealFn`](crate::sys::resolve::RealFn) cast to its
/// C signature, or evaluates `$fallback` when no real function exists.
macro_rules! call_real {
    ($real:expr, fn($($ty:ty),* $(,)?) -> $ret:ty, ($($arg:expr),*), $fallback:expr) => {{
        match $real.get() {
            Some(addr) => {
                // SAFETY: `addr` is the address of the C function of this exact name in
                // another loaded object, whose signature is the one given here.
                let f: unsafe extern "C" fn($($ty),*) -> $ret = unsafe { core::mem::transmute(addr) };
                // SAFETY: the arguments are the caller's, passed on unchanged.
                unsafe { f($($arg),*) }
            }
            None => $fallback,
        }
    }};
}
pub(crate) use call_real;

/// A failure's reason put together on the stack (no allocation on the hook path),
/// cut at its capacity.
pub(crate) struct ReasonText {
    buf: [u8; 448],
    len: usize,
}

impl ReasonText {
    pub(crate) fn new() -> Self {
        ReasonText {
            buf: [0; 448],
            len: 0,
        }
    }
    pub(crate) fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}
