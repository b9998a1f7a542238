//! Who writes: the process and thread ids every record carries, the clock, and the
//! `ProcStart` record that opens every spool file and segment.
//!
//! Both writers ([`super::file`], [`super::segment`]) use these; they live apart from
//! the writers' front (`spool/mod.rs`) so that no writer depends on it.

use core::sync::atomic::{AtomicU32, Ordering};
use tapline_record::{Header, ProcStart, RecordType, Stamp, HEADER_LEN, MAGIC};

use crate::sys::{crc32c, raw, thread};

static PID: AtomicU32 = AtomicU32::new(0);

/// Caches the pid (constructor, and the child after `fork`).
pub fn set_pid() {
    // SAFETY: getpid has no preconditions.
    PID.store(unsafe { libc::getpid() } as u32, Ordering::Relaxed);
}

/// In the child after `fork`: new pid, new thread id.
pub fn after_fork_child() {
    set_pid();
    let _ = thread::with(|t| t.tid.set(0));
}

pub fn pid() -> u32 {
    PID.load(Ordering::Relaxed)
}

fn tid() -> u32 {
    thread::with(|t| {
        let v = t.tid.get();
        if v != 0 {
            return v;
        }
        let v = raw::gettid();
        t.tid.set(v);
        v
    })
    .unwrap_or(0)
}

/// The current time, as records carry it: never before the last time this thread
/// stamped (a re-base of the counter clock, [`crate::sys::tsc`], may step its line back
/// by its error bound; the thread's times then stay put until the clock passes them).
#[inline]
pub fn now() -> Stamp {
    let (wall_ns, mono_ns) = raw::now();
    let mono = thread::with(|t| {
        let m = mono_ns.max(t.last_mono.get());
        t.last_mono.set(m);
        m
    })
    .unwrap_or(mono_ns);
    Stamp {
        wall_ns: wall_ns.wrapping_add(mono - mono_ns),
        mono_ns: mono,
    }
}

/// Seals a record: stores its CRC-32C (the CPU's instruction where it has one, see
/// [`crate::sys::crc32c`]) and returns the header bytes, with the magic, and the number
/// of zero bytes that pad the payload `parts`.
#[inline]
pub fn seal(h: &mut Header, parts: &[&[u8]]) -> ([u8; HEADER_LEN], usize) {
    let payload_len: usize = parts.iter().map(|p| p.len()).sum();
    let pad = h.pad_for(payload_len);
    h.crc32 = crc32c::record_crc(&h.covered_words(), parts, pad);
    (h.encode(MAGIC), pad)
}

/// A header for a record of this thread, stamped `at`.
pub fn header(rtype: RecordType, payload_len: usize, conn_id: u64, at: Stamp) -> Header {
    let mut h = Header::new(rtype, payload_len, at.wall_ns, at.mono_ns);
    h.pid = pid();
    h.tid = tid();
    h.conn_id = conn_id;
    h
}

const CMDLINE_CAP: usize = 1024;
struct Cmdline(core::cell::UnsafeCell<[u8; CMDLINE_CAP]>);
// SAFETY: written once in `init` (constructor, before any record), read-only after.
unsafe impl Sync for Cmdline {}
static CMDLINE: Cmdline = Cmdline(core::cell::UnsafeCell::new([0; CMDLINE_CAP]));
static CMDLINE_LEN: AtomicU32 = AtomicU32::new(0);

/// Reads what the `ProcStart` record will say about this process (constructor).
pub fn init() {
    // SAFETY: the path is NUL-terminated; open has no other preconditions.
    let fd = unsafe {
        libc::open(
            c"/proc/self/cmdline".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return;
    }
    // SAFETY: the constructor is the only writer, before any record is written.
    let buf = unsafe { &mut *CMDLINE.0.get() };
    let mut len = 0usize;
    while len < CMDLINE_CAP {
        let n = raw::read(fd, &mut buf[len..]);
        if n <= 0 {
            break;
        }
        len += n as usize;
    }
    raw::close(fd);
    // Drop the trailing NUL of the last argument.
    while len > 0 && buf[len - 1] == 0 {
        len -= 1;
    }
    CMDLINE_LEN.store(len as u32, Ordering::Release);
}

fn cmdline() -> &'static [u8] {
    let len = CMDLINE_LEN.load(Ordering::Acquire) as usize;
    // SAFETY: bytes up to `len` were written before the release store and never change.
    unsafe { &(&*CMDLINE.0.get())[..len] }
}

/// The `ProcStart` record that opens every spool file and segment (and a forked child's
/// first records in a segment it shares): its header, fixed part and command line.
pub fn proc_start(at: &Header, seq: u32) -> (Header, [u8; ProcStart::LEN], &'static [u8]) {
    let cmd = cmdline();
    let start = ProcStart {
        // SAFETY: getppid has no preconditions.
        ppid: unsafe { libc::getppid() } as u32,
        cmdline_len: cmd.len() as u32,
        file_seq: seq,
        flags: 0,
    }
    .encode();
    let mut h = Header::new(
        RecordType::ProcStart,
        start.len() + cmd.len(),
        at.wall_ns,
        at.mono_ns,
    );
    h.pid = at.pid;
    h.tid = at.tid;
    (h, start, cmd)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_threads_record_times_never_go_back_across_counter_rebases() {
        crate::sys::tsc::init();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    // 60 ms: the counter's calibration and several re-bases.
                    let end = crate::sys::tsc::real_mono() + 60_000_000;
                    let mut last = super::now();
                    while last.mono_ns < end {
                        let t = super::now();
                        assert!(t.mono_ns >= last.mono_ns, "{t:?} after {last:?}");
                        last = t;
                    }
                });
            }
        });
    }
}
