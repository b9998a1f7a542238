//! Settings read once, in the constructor, from the environment.
//!
//! The hook path reads them through atomics; the spool directory path lives in a fixed
//! buffer written before `READY` is published and never again (except after `fork`,
//! when only one thread exists).

use core::cell::UnsafeCell;
use core::ffi::CStr;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tapline_record::settings::{self, EnvVar, DEFAULT_MAX_BODY, DEFAULT_SEGMENT_BYTES};

/// Default for `TAPLINE_SPOOL_DIR`, as bytes.
const DEFAULT_SPOOL_DIR: &[u8] = settings::DEFAULT_SPOOL_DIR.as_bytes();
/// Default for `TAPLINE_SPOOL_FILE_BYTES`: a new spool file is started past this size.
pub const DEFAULT_FILE_BYTES: u64 = 64 << 20;
/// Default for `TAPLINE_SPOOL_MAX_BYTES`: the bytes of segments one process may hold in
/// the spool directory at once (file spool: what it may write in all); past it, records
/// are dropped and counted (the disk must never fill because of us).
pub const DEFAULT_PROCESS_BYTES: u64 = 1 << 30;
/// Default for `TAPLINE_SPOOL_MAX_SEGMENTS`: claimed segments the whole spool directory
/// may hold (all processes together); past it, records are dropped and counted.
pub const DEFAULT_MAX_SEGMENTS: u64 = 64;

/// How records reach the spool (`TAPLINE_SPOOL_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpoolMode {
    /// One `writev` per record into `<pid>-<seq>.tlr` (`spool/file.rs`).
    File,
    /// Reservation + `memcpy` into shared segments `<pid>-<seq>.tls` (`spool/segment/`),
    /// falling back to `File` where segments cannot be mapped. The default.
    Segment,
}

const DIR_CAP: usize = 512;

struct DirBuf(UnsafeCell<[u8; DIR_CAP]>);
// SAFETY: written only by `init` before READY is released; read only after READY is
// acquired.
unsafe impl Sync for DirBuf {}

static SPOOL_DIR: DirBuf = DirBuf(UnsafeCell::new([0; DIR_CAP]));
static SPOOL_DIR_LEN: AtomicU64 = AtomicU64::new(0);
static READY: AtomicBool = AtomicBool::new(false);
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// `TAPLINE_INLINE=0` turns the inline hooks off (node then shows opaque TLS).
static INLINE: AtomicBool = AtomicBool::new(true);
/// `TAPLINE_JAVA=0` turns the JVMTI agent off (Java's TLS then shows opaque).
static JAVA: AtomicBool = AtomicBool::new(true);
static MAX_BODY: AtomicU64 = AtomicU64::new(DEFAULT_MAX_BODY);
static FILE_BYTES: AtomicU64 = AtomicU64::new(DEFAULT_FILE_BYTES);
static PROCESS_BYTES: AtomicU64 = AtomicU64::new(DEFAULT_PROCESS_BYTES);
static SEGMENT_BYTES: AtomicU64 = AtomicU64::new(DEFAULT_SEGMENT_BYTES);
static MAX_SEGMENTS: AtomicU64 = AtomicU64::new(DEFAULT_MAX_SEGMENTS);
static FILE_MODE: AtomicBool = AtomicBool::new(false);

/// Reads the environment. `inert` is true in processes that must never be captured
/// (the tapline binary itself).
pub fn init(inert: bool) {
    let disabled = env(settings::DISABLE).is_some_and(|v| !v.is_empty() && v != b"0");
    INLINE.store(env(settings::INLINE) != Some(b"0"), Ordering::Relaxed);
    JAVA.store(env(settings::JAVA) != Some(b"0"), Ordering::Relaxed);
    if let Some(n) = env(settings::MAX_BODY).and_then(parse_u64) {
        MAX_BODY.store(n, Ordering::Relaxed);
    }
    if let Some(n) = env(settings::SPOOL_FILE_BYTES).and_then(parse_u64) {
        FILE_BYTES.store(n.max(4096), Ordering::Relaxed);
    }
    if let Some(n) = env(settings::SPOOL_MAX_BYTES).and_then(parse_u64) {
        PROCESS_BYTES.store(n, Ordering::Relaxed);
    }
    if let Some(n) = env(settings::SEGMENT_BYTES).and_then(parse_u64) {
        let n = n.clamp(
            tapline_record::segment::MIN_SEGMENT_BYTES,
            tapline_record::segment::MAX_SEGMENT_BYTES,
        );
        SEGMENT_BYTES.store(n & !4095, Ordering::Relaxed);
    }
    if let Some(n) = env(settings::SPOOL_MAX_SEGMENTS).and_then(parse_u64) {
        MAX_SEGMENTS.store(n, Ordering::Relaxed);
    }
    FILE_MODE.store(
        env(settings::SPOOL_MODE) == Some(b"file"),
        Ordering::Relaxed,
    );
    let dir = env(settings::SPOOL_DIR)
        .filter(|d| !d.is_empty() && d.len() < DIR_CAP - 64)
        .unwrap_or(DEFAULT_SPOOL_DIR);
    // SAFETY: READY is not yet published, so no reader looks at the buffer now.
    unsafe { (&mut *SPOOL_DIR.0.get())[..dir.len()].copy_from_slice(dir) };
    SPOOL_DIR_LEN.store(dir.len() as u64, Ordering::Relaxed);
    ACTIVE.store(!disabled && !inert, Ordering::Relaxed);
    READY.store(true, Ordering::Release);
}

/// True when hooks should capture (configured, not disabled, not inert).
#[inline]
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed) && READY.load(Ordering::Acquire)
}

/// Whether inline hooks may be installed (`TAPLINE_INLINE`, default on).
pub fn inline_hooks() -> bool {
    INLINE.load(Ordering::Relaxed)
}

/// Whether the JVMTI agent may instrument a JVM (`TAPLINE_JAVA`, default on).
pub fn java() -> bool {
    JAVA.load(Ordering::Relaxed)
}

pub fn max_body() -> u64 {
    MAX_BODY.load(Ordering::Relaxed)
}

pub fn file_bytes() -> u64 {
    FILE_BYTES.load(Ordering::Relaxed)
}

pub fn segment_bytes() -> u64 {
    SEGMENT_BYTES.load(Ordering::Relaxed)
}

pub fn max_segments() -> u64 {
    MAX_SEGMENTS.load(Ordering::Relaxed)
}

pub fn spool_mode() -> SpoolMode {
    if FILE_MODE.load(Ordering::Relaxed) {
        SpoolMode::File
    } else {
        SpoolMode::Segment
    }
}

pub fn process_bytes() -> u64 {
    PROCESS_BYTES.load(Ordering::Relaxed)
}

/// The spool directory, without a trailing NUL.
pub fn spool_dir() -> &'static [u8] {
    if !READY.load(Ordering::Acquire) {
        return DEFAULT_SPOOL_DIR;
    }
    let len = SPOOL_DIR_LEN.load(Ordering::Relaxed) as usize;
    // SAFETY: READY was acquired: the buffer is fully written and never changes again.
    unsafe { &(&*SPOOL_DIR.0.get())[..len] }
}

/// The value of an environment variable, read in the constructor.
pub fn env(var: EnvVar) -> Option<&'static [u8]> {
    // SAFETY: getenv with a NUL-terminated name; the constructor runs before the program
    // can call setenv from other threads.
    let p = unsafe { libc::getenv(var.c_name().as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: getenv returned a NUL-terminated string that lives in the environment.
    Some(unsafe { CStr::from_ptr(p) }.to_bytes())
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_u64_accepts_digits_only() {
        assert_eq!(super::parse_u64(b"8192"), Some(8192));
        assert_eq!(super::parse_u64(b""), None);
        assert_eq!(super::parse_u64(b"12k"), None);
        assert_eq!(super::parse_u64(b"99999999999999999999"), None);
    }
}
