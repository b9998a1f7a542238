//! libc socket calls: `connect` and `close` open and end what we follow; the send and
//! receive families carry the bytes. Runtimes differ in which they call (curl
//! `send`/`recv`, Python `write`/`read`/`send`/`recv`, Node `write`/`writev`/`read`,
//! Java `writev`...); the rest are hooked because other programs use them.
//!
//! Each shim: real call first (exactly once), then the fast check "is this fd one we
//! follow?" (one table lookup), then capture through [`super::after`].
//!
//! The shims' safety contract is libc's own for the function of the same name, so
//! they carry no `# Safety` sections of their own.
#![allow(clippy::missing_safety_doc)]

use libc::{c_int, c_uint, c_void, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};

use super::{after, call_real, transferred};
use crate::capture::{self, Bytes};
use crate::sys::raw;
use crate::sys::resolve::RealFn;

pub static REAL_CONNECT: RealFn = RealFn::new(c"connect");
pub static REAL_CLOSE: RealFn = RealFn::new(c"close");
pub static REAL_CLOSE_RANGE: RealFn = RealFn::new(c"close_range");
pub static REAL_WRITE: RealFn = RealFn::new(c"write");
pub static REAL_WRITEV: RealFn = RealFn::new(c"writev");
pub static REAL_SEND: RealFn = RealFn::new(c"send");
pub static REAL_SENDTO: RealFn = RealFn::new(c"sendto");
pub static REAL_SENDMSG: RealFn = RealFn::new(c"sendmsg");
pub static REAL_READ: RealFn = RealFn::new(c"read");
pub static REAL_READV: RealFn = RealFn::new(c"readv");
pub static REAL_RECV: RealFn = RealFn::new(c"recv");
pub static REAL_RECVFROM: RealFn = RealFn::new(c"recvfrom");
pub static REAL_RECVMSG: RealFn = RealFn::new(c"recvmsg");
pub static REAL_READ_CHK: RealFn = RealFn::new(c"__read_chk");
pub static REAL_RECV_CHK: RealFn = RealFn::new(c"__recv_chk");
pub static REAL_RECVFROM_CHK: RealFn = RealFn::new(c"__recvfrom_chk");
pub static REAL_GETADDRINFO: RealFn = RealFn::new(c"getaddrinfo");
pub static REAL_SYSCALL: RealFn = RealFn::new(c"syscall");
pub static REAL_GETSOCKOPT: RealFn = RealFn::new(c"getsockopt");

/// Resolves every libc function now, in the constructor, while the process is young.
pub fn resolve_all() {
    for f in [
        &REAL_CONNECT,
        &REAL_CLOSE,
        &REAL_CLOSE_RANGE,
        &REAL_WRITE,
        &REAL_WRITEV,
        &REAL_SEND,
        &REAL_SENDTO,
        &REAL_SENDMSG,
        &REAL_READ,
        &REAL_READV,
        &REAL_RECV,
        &REAL_RECVFROM,
        &REAL_RECVMSG,
        &REAL_READ_CHK,
        &REAL_RECV_CHK,
        &REAL_RECVFROM_CHK,
        &REAL_GETADDRINFO,
        &REAL_SYSCALL,
        &REAL_GETSOCKOPT,
    ] {
        f.resolve();
    }
}

fn sys(nr: libc::c_long, a: [usize; 6]) -> isize {
    raw::syscall6(nr, a)
}

/// After a call that wrote `ret` bytes (or failed). `bytes` describes the caller's
/// buffers; it is only called when `ret > 0`, i.e. when the kernel found them valid.
#[inline]
fn sent<'a>(fd: c_int, ret: ssize_t, bytes: impl FnOnce() -> Bytes<'a>) {
    if !capture::interesting(fd) {
        return;
    }
    let errno = raw::errno();
    after(|| {
        if ret > 0 {
            capture::on_egress(fd, bytes(), ret as usize)
        } else if ret < 0 {
            capture::on_error(fd, errno)
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
    let errno = raw::errno();
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

#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let ret = call_real!(
        REAL_CONNECT,
        fn(c_int, *const sockaddr, socklen_t) -> c_int,
        (fd, addr, len),
        sys(
            libc::SYS_connect,
            [fd as usize, addr as usize, len as usize, 0, 0, 0]
        ) as c_int
    );
    let errno = raw::errno();
    if ret == 0 || errno == libc::EINPROGRESS {
        // SAFETY: `addr` was valid for `len` bytes for the real connect.
        after(|| unsafe { capture::on_connect(fd, addr, len) });
    } else if matches!(
        errno,
        libc::ECONNREFUSED
            | libc::ETIMEDOUT
            | libc::ENETUNREACH
            | libc::EHOSTUNREACH
            | libc::ECONNRESET
            | libc::EACCES
            | libc::EPERM
            | libc::EADDRNOTAVAIL
    ) {
        // SAFETY: as above.
        after(|| unsafe { capture::on_connect_failed(fd, addr, len, errno) });
    }
    ret
}

/// `getsockopt`: only `SOL_SOCKET`/`SO_ERROR` with a non-zero answer matters — how
/// node, asyncio and curl learn that a non-blocking connect failed.
#[no_mangle]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    let ret = call_real!(
        REAL_GETSOCKOPT,
        fn(c_int, c_int, c_int, *mut c_void, *mut socklen_t) -> c_int,
        (fd, level, name, value, len),
        sys(
            libc::SYS_getsockopt,
            [
                fd as usize,
                level as usize,
                name as usize,
                value as usize,
                len as usize,
                0
            ]
        ) as c_int
    );
    if ret == 0
        && level == libc::SOL_SOCKET
        && name == libc::SO_ERROR
        && !value.is_null()
        && !len.is_null()
    {
        // SAFETY: on success the kernel wrote `*len` bytes of the int at `value`.
        let err = unsafe { (*len as usize >= 4).then(|| *(value as *const c_int)) };
        if let Some(err) = err.filter(|&e| e != 0) {
            if capture::interesting(fd) {
                after(|| capture::on_so_error(fd, err));
            }
        }
    }
    ret
}

#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    let ours = crate::spool::file::is_spool_fd(fd);
    let detached = if capture::known(fd) {
        capture::detach(fd)
    } else {
        None
    };
    let mut unfinished = None;
    if detached.is_some() {
        after(|| unfinished = capture::connect_unfinished(fd, detached));
    }
    let ret = call_real!(
        REAL_CLOSE,
        fn(c_int) -> c_int,
        (fd),
        sys(libc::SYS_close, [fd as usize, 0, 0, 0, 0, 0]) as c_int
    );
    if detached.is_some() || ours {
        after(|| {
            if let Some(peer) = &unfinished {
                capture::on_connect_abandoned(peer);
            }
            capture::on_close(fd, detached)
        });
    }
    ret
}

#[no_mangle]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    let ret = call_real!(
        REAL_CLOSE_RANGE,
        fn(c_uint, c_uint, c_int) -> c_int,
        (first, last, flags),
        sys(
            libc::SYS_close_range,
            [first as usize, last as usize, flags as usize, 0, 0, 0]
        ) as c_int
    );
    const CLOSE_RANGE_CLOEXEC: c_int = 4;
    if ret == 0 && flags & CLOSE_RANGE_CLOEXEC == 0 {
        after(|| capture::on_close_range(first, last));
    }
    ret
}

#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t {
    let ret = call_real!(
        REAL_WRITE,
        fn(c_int, *const c_void, size_t) -> ssize_t,
        (fd, buf, count),
        sys(libc::SYS_write, [fd as usize, buf as usize, count, 0, 0, 0])
    );
    // SAFETY: the real write read `ret` bytes of `buf`.
    sent(fd, ret, || unsafe { transferred(buf, ret as usize) });
    ret
}

#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    let ret = call_real!(
        REAL_WRITEV,
        fn(c_int, *const iovec, c_int) -> ssize_t,
        (fd, iov, cnt),
        sys(
            libc::SYS_writev,
            [fd as usize, iov as usize, cnt as usize, 0, 0, 0]
        )
    );
    // SAFETY: the real writev accepted `iov` and `cnt`.
    sent(fd, ret, || unsafe { vectored(iov, cnt) });
    ret
}

#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t {
    let ret = call_real!(
        REAL_SEND,
        fn(c_int, *const c_void, size_t, c_int) -> ssize_t,
        (fd, buf, len, flags),
        sys(
            libc::SYS_sendto,
            [fd as usize, buf as usize, len, flags as usize, 0, 0]
        )
    );
    // SAFETY: the real send read `ret` bytes of `buf`.
    sent(fd, ret, || unsafe { transferred(buf, ret as usize) });
    ret
}

#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const sockaddr,
    alen: socklen_t,
) -> ssize_t {
    let ret = call_real!(
        REAL_SENDTO,
        fn(c_int, *const c_void, size_t, c_int, *const sockaddr, socklen_t) -> ssize_t,
        (fd, buf, len, flags, addr, alen),
        sys(
            libc::SYS_sendto,
            [
                fd as usize,
                buf as usize,
                len,
                flags as usize,
                addr as usize,
                alen as usize
            ]
        )
    );
    // SAFETY: the real sendto read `ret` bytes of `buf`.
    sent(fd, ret, || unsafe { transferred(buf, ret as usize) });
    ret
}

#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    let ret = call_real!(
        REAL_SENDMSG,
        fn(c_int, *const msghdr, c_int) -> ssize_t,
        (fd, msg, flags),
        sys(
            libc::SYS_sendmsg,
            [fd as usize, msg as usize, flags as usize, 0, 0, 0]
        )
    );
    // SAFETY: the real sendmsg accepted `msg`.
    sent(fd, ret, || unsafe { message(msg) });
    ret
}

#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t {
    let ret = call_real!(
        REAL_READ,
        fn(c_int, *mut c_void, size_t) -> ssize_t,
        (fd, buf, count),
        sys(libc::SYS_read, [fd as usize, buf as usize, count, 0, 0, 0])
    );
    // SAFETY: the real read wrote `ret` bytes into `buf`.
    received(fd, ret, 0, || unsafe { transferred(buf, ret as usize) });
    ret
}

#[no_mangle]
pub unsafe extern "C" fn __read_chk(
    fd: c_int,
    buf: *mut c_void,
    count: size_t,
    buflen: size_t,
) -> ssize_t {
    let ret = call_real!(
        REAL_READ_CHK,
        fn(c_int, *mut c_void, size_t, size_t) -> ssize_t,
        (fd, buf, count, buflen),
        sys(libc::SYS_read, [fd as usize, buf as usize, count, 0, 0, 0])
    );
    // SAFETY: the real call wrote `ret` bytes into `buf`.
    received(fd, ret, 0, || unsafe { transferred(buf, ret as usize) });
    ret
}

#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    let ret = call_real!(
        REAL_READV,
        fn(c_int, *const iovec, c_int) -> ssize_t,
        (fd, iov, cnt),
        sys(
            libc::SYS_readv,
            [fd as usize, iov as usize, cnt as usize, 0, 0, 0]
        )
    );
    // SAFETY: the real readv accepted `iov` and `cnt`.
    received(fd, ret, 0, || unsafe { vectored(iov, cnt) });
    ret
}

#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> ssize_t {
    let ret = call_real!(
        REAL_RECV,
        fn(c_int, *mut c_void, size_t, c_int) -> ssize_t,
        (fd, buf, len, flags),
        sys(
            libc::SYS_recvfrom,
            [fd as usize, buf as usize, len, flags as usize, 0, 0]
        )
    );
    // SAFETY: the real recv wrote `ret` bytes into `buf`.
    received(fd, ret, flags, || unsafe { transferred(buf, ret as usize) });
    ret
}

#[no_mangle]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    let ret = call_real!(
        REAL_RECV_CHK,
        fn(c_int, *mut c_void, size_t, size_t, c_int) -> ssize_t,
        (fd, buf, len, buflen, flags),
        sys(
            libc::SYS_recvfrom,
            [fd as usize, buf as usize, len, flags as usize, 0, 0]
        )
    );
    // SAFETY: the real call wrote `ret` bytes into `buf`.
    received(fd, ret, flags, || unsafe { transferred(buf, ret as usize) });
    ret
}

#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    let ret = call_real!(
        REAL_RECVFROM,
        fn(c_int, *mut c_void, size_t, c_int, *mut sockaddr, *mut socklen_t) -> ssize_t,
        (fd, buf, len, flags, addr, alen),
        sys(
            libc::SYS_recvfrom,
            [
                fd as usize,
                buf as usize,
                len,
                flags as usize,
                addr as usize,
                alen as usize
            ]
        )
    );
    // SAFETY: the real recvfrom wrote `ret` bytes into `buf`.
    received(fd, ret, flags, || unsafe { transferred(buf, ret as usize) });
    ret
}

#[no_mangle]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    let ret = call_real!(
        REAL_RECVFROM_CHK,
        fn(c_int, *mut c_void, size_t, size_t, c_int, *mut sockaddr, *mut socklen_t) -> ssize_t,
        (fd, buf, len, buflen, flags, addr, alen),
        sys(
            libc::SYS_recvfrom,
            [
                fd as usize,
                buf as usize,
                len,
                flags as usize,
                addr as usize,
                alen as usize
            ]
        )
    );
    // SAFETY: the real call wrote `ret` bytes into `buf`.
    received(fd, ret, flags, || unsafe { transferred(buf, ret as usize) });
    ret
}

#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    let ret = call_real!(
        REAL_RECVMSG,
        fn(c_int, *mut msghdr, c_int) -> ssize_t,
        (fd, msg, flags),
        sys(
            libc::SYS_recvmsg,
            [fd as usize, msg as usize, flags as usize, 0, 0, 0]
        )
    );
    // SAFETY: the real recvmsg accepted `msg` and filled `ret` bytes of its iovecs.
    received(fd, ret, flags, || unsafe { message(msg) });
    ret
}

/// Name lookups are remembered (in memory only) so that a connection to one of the
/// returned addresses can be named; see [`crate::names`].
#[no_mangle]
pub unsafe extern "C" fn getaddrinfo(
    node: *const libc::c_char,
    service: *const libc::c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
) -> c_int {
    let ret = call_real!(
        REAL_GETADDRINFO,
        fn(
            *const libc::c_char,
            *const libc::c_char,
            *const libc::addrinfo,
            *mut *mut libc::addrinfo,
        ) -> c_int,
        (node, service, hints, res),
        libc::EAI_SYSTEM
    );
    if ret == 0 && !node.is_null() && !res.is_null() {
        // SAFETY: on success `*res` is a valid addrinfo list and `node` a C string.
        after(|| unsafe { remember_lookup(node, *res) });
    } else if ret != 0 && !node.is_null() {
        // A lookup only meant to parse a numeric address is not a name that failed.
        // SAFETY: `hints` is NULL or a valid addrinfo (the real call read it).
        let numeric = !hints.is_null() && unsafe { (*hints).ai_flags } & libc::AI_NUMERICHOST != 0;
        if !numeric {
            // SAFETY: `node` is a C string.
            after(|| unsafe { lookup_failed(node, ret) });
        }
    }
    ret
}

/// A failed lookup of `node`: one `Failure` per name and process, with the resolver's
/// message (`gai_strerror` returns a static string).
///
/// # Safety
/// `node` is a NUL-terminated string.
unsafe fn lookup_failed(node: *const libc::c_char, code: c_int) {
    // SAFETY: the caller's contract.
    let name = unsafe { core::ffi::CStr::from_ptr(node) }.to_bytes();
    let name = &name[..name.len().min(255)];
    if name.is_empty() || !crate::names::first_failure(name) {
        return;
    }
    // SAFETY: gai_strerror takes any code and returns a static NUL-terminated string.
    let reason = unsafe { libc::gai_strerror(code) };
    let reason = if reason.is_null() {
        &[][..]
    } else {
        // SAFETY: as above.
        unsafe { core::ffi::CStr::from_ptr(reason) }.to_bytes()
    };
    let fixed = tapline_record::Failure {
        stage: tapline_record::FailureStage::Dns,
        flags: 0,
        name_len: name.len() as u16,
        code,
        peer: tapline_record::WireAddr::default(),
        reason_len: reason.len().min(512) as u16,
    };
    crate::spool::failure(
        0,
        &fixed,
        name,
        &reason[..fixed.reason_len as usize],
        crate::spool::now(),
    );
}

/// # Safety
/// `node` is a NUL-terminated string; `list` a valid addrinfo list (or NULL).
unsafe fn remember_lookup(node: *const libc::c_char, mut list: *const libc::addrinfo) {
    let mut addrs = [tapline_record::WireAddr::default(); 8];
    let mut n = 0;
    while !list.is_null() && n < addrs.len() {
        // SAFETY: a node of the list getaddrinfo returned.
        let ai = unsafe { &*list };
        if !ai.ai_addr.is_null() {
            // SAFETY: ai_addr is valid for ai_addrlen bytes.
            if let Some(a) = unsafe { capture::peer_of(ai.ai_addr, ai.ai_addrlen) } {
                if !addrs[..n]
                    .iter()
                    .any(|b| b.addr == a.addr && b.family == a.family)
                {
                    addrs[n] = a;
                    n += 1;
                }
            }
        }
        list = ai.ai_next;
    }
    // SAFETY: `node` is NUL-terminated.
    let name = unsafe { core::ffi::CStr::from_ptr(node) }.to_bytes();
    crate::names::remember(name, &addrs[..n]);
}

/// `syscall(SYS_close, fd)`: libuv (node) closes sockets this way, not with `close`.
/// Declared with six fixed arguments after the number: on x86-64 and AArch64 Linux a
/// variadic call passes them in the same registers, and glibc's `syscall` reads exactly
/// these. Every other system call passes straight through (one comparison).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[no_mangle]
pub unsafe extern "C" fn syscall(
    nr: libc::c_long,
    a1: libc::c_long,
    a2: libc::c_long,
    a3: libc::c_long,
    a4: libc::c_long,
    a5: libc::c_long,
    a6: libc::c_long,
) -> libc::c_long {
    let closing = nr == libc::SYS_close;
    let fd = a1 as c_int;
    let detached = if closing && capture::known(fd) {
        capture::detach(fd)
    } else {
        None
    };
    let ret = call_real!(
        REAL_SYSCALL,
        fn(
            libc::c_long,
            libc::c_long,
            libc::c_long,
            libc::c_long,
            libc::c_long,
            libc::c_long,
            libc::c_long,
        ) -> libc::c_long,
        (nr, a1, a2, a3, a4, a5, a6),
        sys(
            nr,
            [
                a1 as usize,
                a2 as usize,
                a3 as usize,
                a4 as usize,
                a5 as usize,
                a6 as usize
            ]
        ) as libc::c_long
    );
    if closing && (detached.is_some() || crate::spool::file::is_spool_fd(fd)) {
        after(|| capture::on_close(fd, detached));
    } else if nr == libc::SYS_close_range && ret == 0 && (a3 & 4) == 0 {
        after(|| capture::on_close_range(a1 as u32, a2 as u32));
    }
    ret
}
