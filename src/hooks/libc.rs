//! libc calls made once per connection or name, not per byte: `connect` starts what we
//! follow, `getaddrinfo` names it, `close_range` and `syscall(SYS_close)` end it. The
//! calls that carry bytes, and `close`, are the hot hooks of [`super::io`].
//!
//! Each shim: real call first (exactly once), then capture through [`super::after`].
//!
//! The shims' safety contract is libc's own for the function of the same name, so
//! they carry no `# Safety` sections of their own.
#![allow(clippy::missing_safety_doc)]

use libc::{c_int, c_uint, c_void, sockaddr, socklen_t};

use super::{after, call_real};
use crate::capture;
use crate::sys::raw;
use crate::sys::resolve::RealFn;

pub static REAL_CONNECT: RealFn = RealFn::new(c"connect");
pub static REAL_CLOSE_RANGE: RealFn = RealFn::new(c"close_range");
pub static REAL_GETADDRINFO: RealFn = RealFn::new(c"getaddrinfo");
pub static REAL_SYSCALL: RealFn = RealFn::new(c"syscall");
pub static REAL_GETSOCKOPT: RealFn = RealFn::new(c"getsockopt");

/// Resolves every libc function now, in the constructor, while the process is young.
pub fn resolve_all() {
    for f in [
        &REAL_CONNECT,
        &REAL_CLOSE_RANGE,
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
        let in_progress = ret != 0;
        // SAFETY: `addr` was valid for `len` bytes for the real connect.
        after(|| unsafe { capture::on_connect(fd, addr, len, in_progress) });
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

/// `getsockopt`: only `SOL_SOCKET`/`SO_ERROR` matters — how node, asyncio and curl
/// learn that a non-blocking connect failed (non-zero) or is established (zero).
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
        match err {
            Some(0) if capture::interesting(fd) => after(|| capture::on_so_error_none(fd)),
            Some(err) if err != 0 && capture::interesting(fd) => {
                after(|| capture::on_so_error(fd, err));
            }
            _ => {}
        }
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
