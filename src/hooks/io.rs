//! The hot hooks: the calls that carry bytes (`write`/`writev`/`send`/`sendto`/`sendmsg`,
//! `read`/`readv`/`recv`/`recvfrom`/`recvmsg` and their `_chk` twins) and `close`. Every
//! program makes them on every file, pipe and socket, traced or not, so the path for a
//! descriptor we do not follow is cut to the floor: one byte of the watch map
//! ([`conn::watched`]) and a tail jump to the real function ([`HotFn`]: always callable,
//! no "resolved yet?" test). No errno save, no thread-local, no `config` read on that
//! path; all of it lives in the out-of-line `traced` half, which calls the real function
//! exactly once, first, as every shim does, then hands what happened to capture.
//!
//! Runtimes differ in which of these they call (curl `send`/`recv`, Python
//! `write`/`read`/`send`/`recv`, Node `write`/`writev`/`read`, Java `writev`...); the
//! rest are hooked because other programs use them.
//!
//! The shims' safety contract is libc's own for the function of the same name, so they
//! carry no `# Safety` sections of their own.
#![allow(clippy::missing_safety_doc)]

use libc::{c_int, c_void, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};

use super::{after, transferred};
use crate::capture::{self, Bytes};
use crate::conn;
use crate::sys::resolve::HotFn;

/// Resolves every hot function now, in the constructor, while the process is young.
pub fn resolve_all() {
    write::REAL.resolve();
    writev::REAL.resolve();
    send::REAL.resolve();
    sendto::REAL.resolve();
    sendmsg::REAL.resolve();
    read::REAL.resolve();
    __read_chk::REAL.resolve();
    readv::REAL.resolve();
    recv::REAL.resolve();
    __recv_chk::REAL.resolve();
    recvfrom::REAL.resolve();
    __recvfrom_chk::REAL.resolve();
    recvmsg::REAL.resolve();
    close::REAL.resolve();
}

/// Declares one hot hook: the exported shim of that name, and beside it a module of the
/// same name holding its real function (`REAL`), the first-call resolver, the
/// raw-syscall fallback for a symbol no object defines, and the out-of-line `traced`
/// half. `after |ret| expr` is the capture step, run (only on a watched fd) after the
/// real call with its result bound to `ret`.
macro_rules! hot_hook {
    (
        fn $name:ident($fd:ident: c_int $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;
        sys $nr:expr => [$($sys:expr),* $(,)?];
        $(before $b:ident = $before:expr;)?
        after |$r:ident| $capture:expr;
    ) => {
        #[allow(non_snake_case)]
        pub mod $name {
            use super::*;

            type Sig = unsafe extern "C" fn(c_int $(, $ty)*) -> $ret;

            const NAME: &core::ffi::CStr =
                match core::ffi::CStr::from_bytes_with_nul(concat!(stringify!($name), "\0").as_bytes()) {
                    Ok(n) => n,
                    Err(_) => panic!("symbol name"),
                };

            pub static REAL: HotFn<Sig> =
                HotFn::new(NAME, first as *mut (), fallback as *mut ());

            /// Before the constructor resolved `REAL` (another object's constructor
            /// calling in early): resolve, then call.
            unsafe extern "C" fn first($fd: c_int $(, $arg: $ty)*) -> $ret {
                // SAFETY: the caller's arguments, passed on unchanged.
                unsafe { REAL.resolve()($fd $(, $arg)*) }
            }

            /// No object defines the symbol: the system call it wraps.
            unsafe extern "C" fn fallback($fd: c_int $(, $arg: $ty)*) -> $ret {
                $(let _ = &$arg;)*
                crate::sys::raw::syscall6($nr, six([$($sys as usize),*])) as $ret
            }

            /// A watched fd: the real call, then capture.
            #[cold]
            #[inline(never)]
            pub unsafe extern "C" fn traced($fd: c_int $(, $arg: $ty)*) -> $ret {
                $(let $b = $before;)?
                // SAFETY: the caller's arguments, passed on unchanged.
                let $r = unsafe { REAL.f()($fd $(, $arg)*) };
                $capture;
                $r
            }
        }

        #[no_mangle]
        pub unsafe extern "C" fn $name($fd: c_int $(, $arg: $ty)*) -> $ret {
            if !conn::watched($fd) {
                // SAFETY: the caller's arguments, passed on unchanged (a tail jump).
                return unsafe { $name::REAL.f()($fd $(, $arg)*) };
            }
            // SAFETY: as above.
            unsafe { $name::traced($fd $(, $arg)*) }
        }
    };
}

/// A system call's arguments, padded to six.
fn six<const N: usize>(a: [usize; N]) -> [usize; 6] {
    let mut all = [0usize; 6];
    all[..N].copy_from_slice(&a);
    all
}

/// After a call that wrote `ret` bytes (or failed). `bytes` describes the caller's
/// buffers; it is only called when `ret > 0`, i.e. when the kernel found them valid.
#[inline]
fn sent<'a>(fd: c_int, ret: ssize_t, bytes: impl FnOnce() -> Bytes<'a>) {
    if !capture::interesting(fd) {
        return;
    }
    let errno = crate::sys::raw::errno();
    after(|| {
        if ret > 0 {
            capture::on_egress(fd, bytes(), ret as usize)
        } else if ret < 0 {
            capture::on_send_error(fd, errno)
        }
    });
}

/// After a call that read `ret` bytes (or hit EOF, or failed); `bytes` as for [`sent`].
/// Peeked bytes stay in the socket and will be read again: they are not captured.
#[inline]
fn received<'a>(fd: c_int, ret: ssize_t, flags: c_int, bytes: impl FnOnce() -> Bytes<'a>) {
    if flags & libc::MSG_PEEK != 0 || !capture::interesting(fd) {
        return;
    }
    let errno = crate::sys::raw::errno();
    after(|| {
        if ret > 0 {
            capture::on_ingress(fd, bytes(), ret as usize)
        } else if ret == 0 {
            capture::on_eof(fd)
        } else {
            capture::on_error(fd, errno)
        }
    });
}

/// # Safety
/// `iov` must point to `cnt` iovecs, as the real call required.
unsafe fn vectored<'a>(iov: *const iovec, cnt: c_int) -> Bytes<'a> {
    if iov.is_null() || cnt <= 0 {
        return Bytes::Vectored(&[]);
    }
    // SAFETY: as above.
    Bytes::Vectored(unsafe { core::slice::from_raw_parts(iov, cnt as usize) })
}

/// # Safety
/// `msg` must be a valid msghdr, as the real call required.
unsafe fn message<'a>(msg: *const msghdr) -> Bytes<'a> {
    if msg.is_null() {
        return Bytes::Vectored(&[]);
    }
    // SAFETY: a valid msghdr (see above).
    let m = unsafe { &*msg };
    // SAFETY: msg_iov points to msg_iovlen iovecs.
    unsafe { vectored(m.msg_iov, m.msg_iovlen as c_int) }
}

hot_hook! {
    fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t;
    sys libc::SYS_write => [fd, buf, count];
    // SAFETY: the real call reported `ret` bytes moved through the caller's buffers,
    // which are valid for at least that many (or `ret` <= 0 and they are not read).
    after |ret| sent(fd, ret, || unsafe { transferred(buf, ret as usize) });
}

hot_hook! {
    fn writev(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t;
    sys libc::SYS_writev => [fd, iov, cnt];
    // SAFETY: the real call reported `ret` bytes moved through the caller's buffers,
    // which are valid for at least that many (or `ret` <= 0 and they are not read).
    after |ret| sent(fd, ret, || unsafe { vectored(iov, cnt) });
}

hot_hook! {
    fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t;
    sys libc::SYS_sendto => [fd, buf, len, flags];
    // SAFETY: the real call reported `ret` bytes moved through the caller's buffers,
    // which are valid for at least that many (or `ret` <= 0 and they are not read).
    after |ret| sent(fd, ret, || unsafe { transferred(buf, ret as usize) });
}

hot_hook! {
    fn sendto(
        fd: c_int,
        buf: *const c_void,
        len: size_t,
        flags: c_int,
        addr: *const sockaddr,
        alen: socklen_t,
    ) -> ssize_t;
    sys libc::SYS_sendto => [fd, buf, len, flags, addr, alen];
    // SAFETY: the real call reported `ret` bytes moved through the caller's buffers,
    // which are valid for at least that many (or `ret` <= 0 and they are not read).
    after |ret| sent(fd, ret, || unsafe { transferred(buf, ret as usize) });
}

hot_hook! {
    fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t;
    sys libc::SYS_sendmsg => [fd, msg, flags];
    // SAFETY: the real call reported `ret` bytes moved through the caller's buffers,
    // which are valid for at least that many (or `ret` <= 0 and they are not read).
    after |ret| sent(fd, ret, || unsafe { message(msg) });
}

hot_hook! {
    fn read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t;
    sys libc::SYS_read => [fd, buf, count];
    // SAFETY: the real call reported `ret` bytes moved through the caller's buffers,
    // which are valid for at least that many (or `ret` <= 0 and they are not read).
    after |ret| received(fd, ret, 0, || unsafe { transferred(buf, ret as usize) });
}

hot_hook! {
    fn __read_chk(fd: c_int, buf: *mut c_void, count: size_t, buflen: size_t) -> ssize_t;
    sys libc::SYS_read => [fd, buf, count];
    // SAFETY: the real call reported `ret` bytes moved through the caller's buffers,
    // which are valid for at least that many (or `ret` <= 0 and they are not read).
    after |ret| received(fd, ret, 0, || unsafe { transferred(buf, ret as usize) });
}

hot_hook! {
    fn readv(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t;
    sys libc::SYS_readv => [fd, iov, cnt];
    // SAFETY: the real call reported `ret` bytes moved through the caller's buffers,
    // which are valid for at least that many (or `ret` <= 0 and they are not read).
    after |ret| received(fd, ret, 0, || unsafe { vectored(iov, cnt) });
}

hot_hook! {
    fn recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> ssize_t;
    sys libc::SYS_recvfrom => [fd, buf, len, flags];
    // SAFETY: the real call reported `ret` bytes moved through the caller's buffers,
    // which are valid for at least that many (or `ret` <= 0 and they are not read).
    after |ret| received(fd, ret, flags, || unsafe { transferred(buf, ret as usize) });
}

hot_hook! {
    fn __recv_chk(fd: c_int, buf: *mut c_void, len: size_t, buflen: size_t, flags: c_int) -> ssize_t;
    sys libc::SYS_recvfrom => [fd, buf, len, flags];
    // SAFETY: the real call reported `ret` bytes moved through the caller's buffers,
    // which are valid for at least that many (or `ret` <= 0 and they are not read).
    after |ret| received(fd, ret, flags, || unsafe { transferred(buf, ret as usize) });
}

hot_hook! {
    fn recvfrom(
        fd: c_int,
        buf: *mut c_void,
        len: size_t,
        flags: c_int,
        addr: *mut sockaddr,
        alen: *mut socklen_t,
    ) -> ssize_t;
    sys libc::SYS_recvfrom => [fd, buf, len, flags, addr, alen];
    // SAFETY: the real call reported `ret` bytes moved through the caller's buffers,
    // which are valid for at least that many (or `ret` <= 0 and they are not read).
    after |ret| received(fd, ret, flags, || unsafe { transferred(buf, ret as usize) });
}

hot_hook! {
    fn __recvfrom_chk(
        fd: c_int,
        buf: *mut c_void,
        len: size_t,
        buflen: size_t,
        flags: c_int,
        addr: *mut sockaddr,
        alen: *mut socklen_t,
    ) -> ssize_t;
    sys libc::SYS_recvfrom => [fd, buf, len, flags, addr, alen];
    // SAFETY: the real call reported `ret` bytes moved through the caller's buffers,
    // which are valid for at least that many (or `ret` <= 0 and they are not read).
    after |ret| received(fd, ret, flags, || unsafe { transferred(buf, ret as usize) });
}

hot_hook! {
    fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t;
    sys libc::SYS_recvmsg => [fd, msg, flags];
    // SAFETY: the real call reported `ret` bytes moved through the caller's buffers,
    // which are valid for at least that many (or `ret` <= 0 and they are not read).
    after |ret| received(fd, ret, flags, || unsafe { message(msg) });
}

hot_hook! {
    fn close(fd: c_int) -> c_int;
    sys libc::SYS_close => [fd];
    // The connection is detached before the call (only the state word changes: capture
    // is skipped, never added), so that a thread reusing the number at once starts clean.
    // A connect still unfinished (SYN sent, no answer) is learnt before the close too:
    // the program gave up on it.
    before detached = closing(fd);
    after |ret| closed(fd, ret, detached);
}

/// Before `close(fd)` on a watched fd: the connection detached, and the peer of a
/// connect the program is abandoning, if it is one.
fn closing(fd: c_int) -> (Option<capture::Detached>, Option<tapline_record::WireAddr>) {
    let detached = if capture::known(fd) {
        capture::detach(fd)
    } else {
        None
    };
    let mut unfinished = None;
    if detached.is_some() {
        after(|| unfinished = capture::connect_unfinished(fd, detached));
    }
    (detached, unfinished)
}

/// `close(fd)` on a watched fd returned; `before` is what [`closing`] learnt.
fn closed(
    fd: c_int,
    _ret: c_int,
    (detached, unfinished): (Option<capture::Detached>, Option<tapline_record::WireAddr>),
) {
    if detached.is_some() || crate::spool::file::is_spool_fd(fd) {
        after(|| {
            if let Some(peer) = &unfinished {
                capture::on_connect_abandoned(peer);
            }
            capture::on_close(fd, detached)
        });
    }
}
