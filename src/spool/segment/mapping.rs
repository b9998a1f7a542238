//! One segment mapped into this process: the one place where a segment mapping's bytes
//! are reached through raw pointers.
//!
//! # The contract of every `unsafe fn` here
//! The mapping is still mapped for the whole call and for as long as a returned
//! reference is used: the caller is counted in its slot's `inflight`, or holds
//! `SWITCHING` for a parked or standby slot, or is the mapping's only user (the claim
//! that made it, the child after `fork`). Offsets lie within the mapping; the words read
//! as atomics are naturally aligned (header words by their `field` offsets, record words
//! because every record starts 8-aligned) and only ever accessed atomically.

use core::ptr;
use core::sync::atomic::{AtomicU32, AtomicU64};
use libc::c_int;

use crate::sys::raw;

/// A `MAP_SHARED` mapping of a whole segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    base: *mut u8,
    size: u64,
}

impl Mapping {
    /// A mapping of `size` bytes at `base`, as a slot keeps it.
    pub fn new(base: *mut u8, size: u64) -> Mapping {
        Mapping { base, size }
    }

    /// Maps `size` bytes of the segment file `fd`, shared, for reading and writing.
    /// Returns the `errno` of a failed `mmap`.
    pub fn map_shared(fd: c_int, size: u64) -> Result<Mapping, c_int> {
        // SAFETY: a new mapping of a descriptor the caller owns; nothing else is touched.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(raw::errno());
        }
        Ok(Mapping::new(base as *mut u8, size))
    }

    pub fn base(self) -> *mut u8 {
        self.base
    }

    pub fn size(self) -> u64 {
        self.size
    }

    /// The aligned 8-byte word at `at`, as an atomic.
    ///
    /// # Safety
    /// The module contract; `at` is 8-aligned and `at + 8 <= size`.
    pub unsafe fn u64_at<'a>(self, at: usize) -> &'a AtomicU64 {
        debug_assert!(at.is_multiple_of(8) && at as u64 + 8 <= self.size);
        // SAFETY: mapped, in range and aligned (the caller's contract).
        unsafe { AtomicU64::from_ptr(self.base.add(at) as *mut u64) }
    }

    /// The aligned 4-byte word at `at`, as an atomic.
    ///
    /// # Safety
    /// The module contract; `at` is 4-aligned and `at + 4 <= size`.
    pub unsafe fn u32_at<'a>(self, at: usize) -> &'a AtomicU32 {
        debug_assert!(at.is_multiple_of(4) && at as u64 + 4 <= self.size);
        // SAFETY: mapped, in range and aligned (the caller's contract).
        unsafe { AtomicU32::from_ptr(self.base.add(at) as *mut u32) }
    }

    /// Copies `src` to `at` with ordinary stores.
    ///
    /// # Safety
    /// The module contract; `[at, at + src.len())` is within the mapping and reserved for
    /// the caller alone.
    pub unsafe fn copy_in(self, at: usize, src: &[u8]) {
        debug_assert!((at + src.len()) as u64 <= self.size);
        // SAFETY: the caller's range; `src` is a distinct Rust slice.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), self.base.add(at), src.len()) };
    }

    /// Copies `src` to `at` with non-temporal stores (see [`copy_stream`]); the caller
    /// issues [`store_fence`] before publishing what was copied.
    ///
    /// # Safety
    /// As for [`Mapping::copy_in`].
    pub unsafe fn stream_in(self, at: usize, src: &[u8]) {
        debug_assert!((at + src.len()) as u64 <= self.size);
        // SAFETY: as in `copy_in`.
        unsafe { copy_stream(self.base.add(at), src.as_ptr(), src.len()) };
    }

    /// Write-faults the pages of `[from, to)` (`MADV_POPULATE_WRITE`; older kernels
    /// lack it: then the first writes fault, nothing worse).
    ///
    /// # Safety
    /// The module contract; `from` and `to` are page multiples within the mapping.
    pub unsafe fn populate_write(self, from: u64, to: u64) {
        debug_assert!(from <= to && to <= self.size);
        // SAFETY: the caller's range, inside the mapping.
        unsafe {
            libc::madvise(
                self.base.add(from as usize) as *mut libc::c_void,
                (to - from) as usize,
                libc::MADV_POPULATE_WRITE,
            )
        };
    }

    /// Unmaps the segment.
    ///
    /// # Safety
    /// No thread of this process touches the mapping any more, and nobody uses this
    /// value (or a copy) afterwards.
    pub unsafe fn unmap(self) {
        // SAFETY: the caller guarantees nobody uses the mapping.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.size as usize) };
    }
}

/// Copies `n` bytes with non-temporal stores for every whole 64-byte line of `dst`.
///
/// Why: a spool never rewrites what it wrote, so large records land in lines that are
/// not in any cache. An ordinary store first reads each such line from memory (read
/// for ownership) and later writes it back; a streaming store writes the line once.
/// The caller issues [`store_fence`] before publishing what was copied.
///
/// # Safety
/// `src` is readable and `dst` writable for `n` bytes; they do not overlap.
#[cfg(target_arch = "x86_64")]
unsafe fn copy_stream(dst: *mut u8, src: *const u8, n: usize) {
    use core::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
    let head = dst.align_offset(64).min(n);
    // SAFETY: within the caller's ranges; the streamed stores go to 16-aligned
    // addresses (`dst + i` is 64-aligned for every `i` past `head`). SSE2 is part of
    // the x86_64 baseline.
    unsafe {
        ptr::copy_nonoverlapping(src, dst, head);
        let mut i = head;
        while i + 64 <= n {
            let s = src.add(i) as *const __m128i;
            let d = dst.add(i) as *mut __m128i;
            let a = _mm_loadu_si128(s);
            let b = _mm_loadu_si128(s.add(1));
            let c = _mm_loadu_si128(s.add(2));
            let e = _mm_loadu_si128(s.add(3));
            _mm_stream_si128(d, a);
            _mm_stream_si128(d.add(1), b);
            _mm_stream_si128(d.add(2), c);
            _mm_stream_si128(d.add(3), e);
            i += 64;
        }
        ptr::copy_nonoverlapping(src.add(i), dst.add(i), n - i);
    }
}

/// The AArch64 version: `stnp` (store pair, non-temporal hint) of two 128-bit registers
/// twice per 64-byte line of `dst`. The hint lets the core write the lines without
/// allocating them in its caches; [`store_fence`] (`dmb ish`) orders them before the
/// magic, as `sfence` does on x86-64.
///
/// # Safety
/// As for the x86_64 version.
#[cfg(target_arch = "aarch64")]
unsafe fn copy_stream(dst: *mut u8, src: *const u8, n: usize) {
    let head = dst.align_offset(64).min(n);
    // SAFETY: within the caller's ranges: each iteration reads `src[i..i + 64]` and
    // writes `dst[i..i + 64]` with `i + 64 <= n`. NEON is part of the AArch64 baseline;
    // `ldp` of q registers needs no alignment on normal memory, and `dst + i` is
    // 64-aligned past `head`. The asm touches only the registers it declares.
    unsafe {
        ptr::copy_nonoverlapping(src, dst, head);
        let mut i = head;
        while i + 64 <= n {
            core::arch::asm!(
                "ldp {a:q}, {b:q}, [{src}]",
                "ldp {c:q}, {e:q}, [{src}, #32]",
                "stnp {a:q}, {b:q}, [{dst}]",
                "stnp {c:q}, {e:q}, [{dst}, #32]",
                src = in(reg) src.add(i),
                dst = in(reg) dst.add(i),
                a = out(vreg) _,
                b = out(vreg) _,
                c = out(vreg) _,
                e = out(vreg) _,
                options(nostack, preserves_flags),
            );
            i += 64;
        }
        ptr::copy_nonoverlapping(src.add(i), dst.add(i), n - i);
    }
}

/// See the x86_64 version; elsewhere an ordinary copy.
///
/// # Safety
/// As for the x86_64 version.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn copy_stream(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller guarantees both ranges.
    unsafe { ptr::copy_nonoverlapping(src, dst, n) };
}

/// Orders the non-temporal stores of [`Mapping::stream_in`] before later stores.
pub fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_sfence()
    };
    #[cfg(not(target_arch = "x86_64"))]
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}
