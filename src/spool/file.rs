//! The file spool: each record appended to this process's spool file with one `writev`
//! on an `O_APPEND` descriptor, so records of different threads never interleave.
//!
//! Files are `<dir>/<pid>-<seq>.tlr`, mode 0600, in a directory of mode 0700 that must
//! belong to us (a directory another user planted in `/tmp` is refused). The file is
//! opened on the first record, not at load, so processes that never speak HTTP leave no
//! file. Past the per-file cap the writer moves to a new file by `dup3`-ing it over the
//! same descriptor number, so a thread that still holds the old number writes to one of
//! the two files, never to a closed or reused descriptor.
//!
//! Every failure (no directory, read-only, disk full, over the per-process cap) drops
//! the record and counts it; a `Drops` record says how many once writing works again.
//! Nothing here blocks except the write itself, and nothing here can fail the host call.

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use libc::c_int;
use tapline_record::{Header, HEADER_LEN};

use super::dir::{spool_dir_path, write_decimal};
use super::drops::DropCounter;
use super::process;
use crate::config;
use crate::sys::raw;

/// The open spool file, or -1.
static FD: AtomicI32 = AtomicI32::new(-1);
/// Next file sequence number for this process.
static FILE_SEQ: AtomicU32 = AtomicU32::new(0);
/// Bytes written to the current file.
static FILE_WRITTEN: AtomicU64 = AtomicU64::new(0);
/// Bytes written by this process in all.
static TOTAL_WRITTEN: AtomicU64 = AtomicU64::new(0);
/// Set while one thread moves to the next file.
static ROTATING: AtomicBool = AtomicBool::new(false);
/// After a failed open, no new attempt before this monotonic time (ns).
static RETRY_AFTER: AtomicU64 = AtomicU64::new(0);
static DROPS: DropCounter = DropCounter::new();

/// At exit: drops no later record reported go out as a `Drops` record now.
pub fn report_drops_at_exit(at: &Header) {
    DROPS.report(at, write_record);
}

/// Counts a record that was dropped before it reached this writer (too large to be a
/// record); reported with this writer's next `Drops` record.
pub fn count_drop(len: u64) {
    DROPS.count(1, len);
}

/// How long to wait after a failed open before trying again.
const RETRY_NS: u64 = 1_000_000_000;

/// In the child after `fork`: the inherited descriptor is the parent's file. Forget it
/// (closing our copy) so that the child opens files under its own pid.
pub fn after_fork_child() {
    let fd = FD.swap(-1, Ordering::AcqRel);
    if fd >= 0 {
        crate::conn::set_watch(fd, crate::conn::watch::SPOOL, false);
        raw::close(fd);
    }
    FILE_SEQ.store(0, Ordering::Relaxed);
    FILE_WRITTEN.store(0, Ordering::Relaxed);
    TOTAL_WRITTEN.store(0, Ordering::Relaxed);
    ROTATING.store(false, Ordering::Relaxed);
    RETRY_AFTER.store(0, Ordering::Relaxed);
    DROPS.reset();
}

/// The program closed a descriptor (or a range). If it was ours, forget it: the number
/// may be handed to the program's next `open`, and we must never write there.
pub fn descriptor_closed(lo: c_int, hi: c_int) {
    let fd = FD.load(Ordering::Acquire);
    if fd >= 0
        && fd >= lo
        && fd <= hi
        && FD
            .compare_exchange(fd, -1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        crate::conn::set_watch(fd, crate::conn::watch::SPOOL, false);
    }
}

/// True if `fd` is the spool file (the library's own writes must not be traced).
pub fn is_spool_fd(fd: c_int) -> bool {
    fd >= 0 && FD.load(Ordering::Relaxed) == fd
}

/// Appends one record. `parts` is the payload in pieces (fixed part, captured bytes);
/// the header's type, times, pid, tid and conn id are already set.
pub fn append(header: &mut Header, parts: &[&[u8]]) -> bool {
    let len = header.length as u64;
    if !write_record(header, parts) {
        DROPS.count(1, len);
        return false;
    }
    DROPS.report(header, write_record);
    true
}

/// Records and bytes dropped and not yet reported (for tests and benchmarks).
pub fn dropped() -> (u64, u64) {
    DROPS.get()
}

fn write_record(header: &mut Header, parts: &[&[u8]]) -> bool {
    let len = header.length as u64;
    if TOTAL_WRITTEN.load(Ordering::Relaxed) + len > config::process_bytes() {
        return false;
    }
    let Some(fd) = current_fd(header) else {
        return false;
    };
    if !writev_record(fd, header, parts) {
        return false;
    }
    TOTAL_WRITTEN.fetch_add(len, Ordering::Relaxed);
    let written = FILE_WRITTEN.fetch_add(len, Ordering::Relaxed) + len;
    if written > config::file_bytes() {
        rotate(fd, header);
    }
    true
}

/// Seals the header and writes header, payload parts and padding with one `writev`.
fn writev_record(fd: c_int, header: &mut Header, parts: &[&[u8]]) -> bool {
    const MAX_PARTS: usize = 4;
    if parts.len() > MAX_PARTS {
        return false;
    }
    let (head, pad) = crate::spool::process::seal(header, parts);
    let padding = Header::padding(pad);
    let empty = libc::iovec {
        iov_base: core::ptr::null_mut(),
        iov_len: 0,
    };
    let mut iov = [empty; MAX_PARTS + 2];
    iov[0] = libc::iovec {
        iov_base: head.as_ptr() as *mut _,
        iov_len: HEADER_LEN,
    };
    let mut n = 1;
    for p in parts.iter().chain(core::iter::once(&padding)) {
        if !p.is_empty() {
            iov[n] = libc::iovec {
                iov_base: p.as_ptr() as *mut _,
                iov_len: p.len(),
            };
            n += 1;
        }
    }
    let ret = raw::writev(fd, &iov[..n]);
    if ret == header.length as isize {
        return true;
    }
    if ret < 0 && raw::errno() == libc::EBADF {
        // Someone closed our descriptor behind our back: open a new file next time.
        if FD
            .compare_exchange(fd, -1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            crate::conn::set_watch(fd, crate::conn::watch::SPOOL, false);
        }
    }
    false
}

/// The open spool descriptor, opening the first file if needed.
fn current_fd(header: &Header) -> Option<c_int> {
    let fd = FD.load(Ordering::Acquire);
    if fd >= 0 {
        return Some(fd);
    }
    if header.mono_ns < RETRY_AFTER.load(Ordering::Relaxed) {
        return None;
    }
    let Some(new_fd) = open_file(header) else {
        RETRY_AFTER.store(header.mono_ns + RETRY_NS, Ordering::Relaxed);
        return None;
    };
    match FD.compare_exchange(-1, new_fd, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            crate::conn::set_watch(new_fd, crate::conn::watch::SPOOL, true);
            FILE_WRITTEN.store(0, Ordering::Relaxed);
            Some(new_fd)
        }
        Err(winner) => {
            // Another thread opened a file at the same moment: use theirs. Ours holds only
            // a ProcStart record; the reader tolerates such a file, but remove it anyway.
            raw::close(new_fd);
            Some(winner)
        }
    }
}

/// Moves to the next file once the current one is over its cap.
fn rotate(old_fd: c_int, header: &Header) {
    if ROTATING
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    if FD.load(Ordering::Acquire) == old_fd {
        if let Some(new_fd) = open_file(header) {
            // dup3 onto a descriptor we own atomically makes `old_fd` refer to the new
            // file; threads writing to `old_fd` meanwhile reach one of the two.
            let r = raw::dup3(new_fd, old_fd, libc::O_CLOEXEC);
            raw::close(new_fd);
            if r >= 0 {
                FILE_WRITTEN.store(0, Ordering::Relaxed);
            }
        }
    }
    ROTATING.store(false, Ordering::Release);
}

/// Creates the next spool file (and the directory if missing) and writes its
/// `ProcStart` record. Returns the descriptor, moved above the low numbers programs use.
fn open_file(header: &Header) -> Option<c_int> {
    let (mut path, dir_len) = spool_dir_path()?;
    let seq = FILE_SEQ.fetch_add(1, Ordering::Relaxed);
    let mut at = dir_len;
    path[at] = b'/';
    at += 1;
    at += write_decimal(&mut path[at..], u64::from(header.pid));
    path[at] = b'-';
    at += 1;
    at += write_decimal(&mut path[at..], u64::from(seq));
    path[at..at + 4].copy_from_slice(b".tlr");
    path[at + 4] = 0;
    let flags = libc::O_WRONLY
        | libc::O_CREAT
        | libc::O_EXCL
        | libc::O_APPEND
        | libc::O_NOFOLLOW
        | libc::O_CLOEXEC;
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr() as *const _, flags, 0o600 as libc::c_uint) };
    if fd < 0 {
        return None;
    }
    // Keep clear of the small numbers a program expects to get from its own opens.
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own.
    let high = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 512) };
    let fd = if high >= 0 {
        raw::close(fd);
        high
    } else {
        fd
    };
    let (mut h, start, cmd) = process::proc_start(header, seq);
    if !writev_record(fd, &mut h, &[&start, cmd]) {
        raw::close(fd);
        return None;
    }
    TOTAL_WRITTEN.fetch_add(h.length as u64, Ordering::Relaxed);
    Some(fd)
}
