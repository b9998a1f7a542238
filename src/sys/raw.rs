//! Raw system calls for the library's own I/O.
//!
//! Why not `libc::write` and friends: this library exports `write`, `writev`, `read`,
//! `close`... so a call from inside it to those names binds to our own hooks. The spool
//! writer therefore issues `syscall(2)` directly. Each function returns the kernel's
//! result (`-1` and errno on failure, as libc does).

use libc::{c_int, c_long, c_void};

/// `writev(2)` without passing through our hook.
pub fn writev(fd: c_int, iov: &[libc::iovec]) -> isize {
    // SAFETY: the iovecs point into slices that the caller keeps alive for the call.
    unsafe { libc::syscall(libc::SYS_writev, fd, iov.as_ptr(), iov.len() as c_int) as isize }
}

/// `read(2)` without passing through our hook.
pub fn read(fd: c_int, buf: &mut [u8]) -> isize {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    unsafe {
        libc::syscall(
            libc::SYS_read,
            fd,
            buf.as_mut_ptr() as *mut c_void,
            buf.len(),
        ) as isize
    }
}

/// `close(2)` without passing through our hook.
pub fn close(fd: c_int) -> c_int {
    // SAFETY: closing a descriptor has no memory-safety preconditions.
    unsafe { libc::syscall(libc::SYS_close, fd) as c_int }
}

/// The calling thread's kernel id.
pub fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// Both clocks, in ns: (`CLOCK_REALTIME`, `CLOCK_MONOTONIC`). vDSO calls, no syscall.
pub fn now() -> (u64, u64) {
    (
        clock_ns(libc::CLOCK_REALTIME),
        clock_ns(libc::CLOCK_MONOTONIC),
    )
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// Reads errno.
pub fn errno() -> c_int {
    // SAFETY: __errno_location always returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// Restores errno.
pub fn set_errno(v: c_int) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = v }
}

/// The raw syscall a libc socket function wraps, for when the real libc function
/// cannot be found (never expected; the alternative would be to fail the caller).
pub fn syscall6(nr: c_long, a: [usize; 6]) -> isize {
    // SAFETY: the arguments are exactly those the caller passed to the libc wrapper of
    // the same system call; the kernel validates them.
    unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) as isize }
}
