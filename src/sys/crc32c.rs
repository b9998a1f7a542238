//! A record's CRC-32C with the CPU's own instruction: SSE4.2 `crc32` on x86-64,
//! `crc32cx` (the CRC extension) on AArch64, 8 bytes per instruction; the record
//! crate's portable table code (`tapline_record::crc32c`) where the CPU has neither.
//!
//! Why here and not in `record/`: the record crate forbids `unsafe`, and using an
//! instruction the baseline target does not promise needs a `#[target_feature]`
//! function, which is unsafe to call. The choice is made once, in the constructor
//! ([`init`]); until then (and on another CPU) the portable code runs. Both compute the
//! same function of the same bytes fed in the same order: the tests below hold them
//! equal, cut at every place.
//!
//! A record is fed as [`tapline_record::Header::covered_words`] (five words straight
//! from the header's fields), then its payload parts, then its zero padding. Bytes are
//! gathered into whole words across parts, so a part that does not end on a word (a
//! name, a body) costs no byte-at-a-time steps unless the record ends mid-word, and a
//! record's last partial word and its padding are one zero-extended word.

use core::sync::atomic::{AtomicBool, Ordering};
use tapline_record::crc32c as portable;

/// The CPU computes CRC-32C (set once by [`init`]).
static HW: AtomicBool = AtomicBool::new(false);

/// Chooses the instruction if the CPU has it (constructor; cheap, no allocation).
pub fn init() {
    HW.store(detect(), Ordering::Relaxed);
}

#[cfg(target_arch = "x86_64")]
fn detect() -> bool {
    std::is_x86_feature_detected!("sse4.2")
}

#[cfg(target_arch = "aarch64")]
fn detect() -> bool {
    std::arch::is_aarch64_feature_detected!("crc")
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detect() -> bool {
    false
}

/// The CRC-32C of a record: `head` (its covered header words), its payload `parts`,
/// then `pad` zero bytes.
#[inline]
pub fn record_crc(head: &[u64; 5], parts: &[&[u8]], pad: usize) -> u32 {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    if HW.load(Ordering::Relaxed) {
        // SAFETY: HW is set only when the CPU has the instruction `hw::record_crc` is
        // compiled for.
        return unsafe { hw::record_crc(head, parts, pad) };
    }
    portable_record_crc(head, parts, pad)
}

/// The check of a version-3 record from its covered header words and its payload's
/// word sum ([`tapline_record::word_sum`]; the padding's zeros add nothing).
#[inline]
pub fn summed_check(head: &[u64; 5], sum: u64) -> u32 {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    if HW.load(Ordering::Relaxed) {
        // SAFETY: HW is set only when the CPU has the instruction.
        return unsafe { hw::words6(head, sum) };
    }
    let mut c = portable::Crc32c::new();
    for &w in head {
        c.word(w);
    }
    c.word(sum);
    c.finalize()
}

/// [`record_crc`] with the record crate's table code (any CPU).
pub fn portable_record_crc(head: &[u64; 5], parts: &[&[u8]], pad: usize) -> u32 {
    let mut c = portable::Crc32c::new();
    for &w in head {
        c.word(w);
    }
    for p in parts {
        c.update(p);
    }
    c.zeros(pad);
    c.finalize()
}

/// Lane lengths, in words: blocks of three lanes of `BIG` words while there are enough,
/// then of `MID`, then a last block whose first lane takes what two lanes of `SMALL`
/// leave.
const BIG: usize = 64;
const MID: usize = 16;
const SMALL: usize = 12;

/// A linear map on raw CRC-32C states: what feeding some number of zero bytes does,
/// one table per state byte.
struct ZeroFeed([[u32; 256]; 4]);

impl ZeroFeed {
    #[inline(always)]
    fn apply(&self, x: u32) -> u32 {
        let t = &self.0;
        t[0][(x & 0xff) as usize]
            ^ t[1][((x >> 8) & 0xff) as usize]
            ^ t[2][((x >> 16) & 0xff) as usize]
            ^ t[3][(x >> 24) as usize]
    }
}

/// Joining three lanes of `l` words: the state after lane A, then `l` and `2l` words
/// more. (The raw state is linear: the state after `X‖Y` from `s` is `Y`'s state from
/// zero, xor `s` fed `|Y|` zero bytes.)
struct Shift {
    once: ZeroFeed,
    twice: ZeroFeed,
}

const POLY: u32 = 0x82F6_3B78;

/// Where each state bit goes after `words` zero words (bit by bit: compile time only).
const fn zero_basis(words: usize) -> [u32; 32] {
    let mut out = [0u32; 32];
    let mut b = 0;
    while b < 32 {
        let mut s = 1u32 << b;
        let mut k = 0;
        while k < words * 64 {
            s = if s & 1 != 0 { (s >> 1) ^ POLY } else { s >> 1 };
            k += 1;
        }
        out[b] = s;
        b += 1;
    }
    out
}

const fn apply_basis(basis: &[u32; 32], x: u32) -> u32 {
    let mut out = 0;
    let mut b = 0;
    while b < 32 {
        if x >> b & 1 != 0 {
            out ^= basis[b];
        }
        b += 1;
    }
    out
}

const fn feed_table(basis: &[u32; 32]) -> ZeroFeed {
    let mut t = [[0u32; 256]; 4];
    let mut i = 0;
    while i < 4 {
        let mut v = 0;
        while v < 256 {
            t[i][v] = apply_basis(basis, (v as u32) << (8 * i));
            v += 1;
        }
        i += 1;
    }
    ZeroFeed(t)
}

const fn shift(words: usize) -> Shift {
    let once = zero_basis(words);
    let mut twice = [0u32; 32];
    let mut b = 0;
    while b < 32 {
        twice[b] = apply_basis(&once, once[b]);
        b += 1;
    }
    Shift {
        once: feed_table(&once),
        twice: feed_table(&twice),
    }
}

static SHIFT_BIG: Shift = shift(BIG);
static SHIFT_MID: Shift = shift(MID);
static SHIFT_SMALL: Shift = shift(SMALL);

/// The instruction-level walk: words gathered across parts, the CRC state in a register.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod hw {
    use super::{Shift, BIG, MID, SHIFT_BIG, SHIFT_MID, SHIFT_SMALL, SMALL};

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse4.2")]
    #[inline]
    fn step64(state: u32, word: u64) -> u32 {
        core::arch::x86_64::_mm_crc32_u64(u64::from(state), word) as u32
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse4.2")]
    #[inline]
    fn step8(state: u32, byte: u8) -> u32 {
        core::arch::x86_64::_mm_crc32_u8(state, byte)
    }

    #[cfg(target_arch = "aarch64")]
    #[target_feature(enable = "crc")]
    #[inline]
    fn step64(state: u32, word: u64) -> u32 {
        core::arch::aarch64::__crc32cd(state, word)
    }

    #[cfg(target_arch = "aarch64")]
    #[target_feature(enable = "crc")]
    #[inline]
    fn step8(state: u32, byte: u8) -> u32 {
        core::arch::aarch64::__crc32cb(state, byte)
    }

    /// The CRC-32C of five header words and a sum word.
    ///
    /// # Safety
    /// The CPU has the CRC-32C instruction.
    #[cfg_attr(target_arch = "x86_64", target_feature(enable = "sse4.2"))]
    #[cfg_attr(target_arch = "aarch64", target_feature(enable = "crc"))]
    #[inline]
    pub unsafe fn words6(head: &[u64; 5], sum: u64) -> u32 {
        let mut s = !0u32;
        for &w in head {
            s = step64(s, w);
        }
        !step64(s, sum)
    }

    /// Loads 1..=7 bytes as the low bytes of a little-endian word.
    #[inline(always)]
    fn partial(bytes: &[u8]) -> u64 {
        let mut a = [0u8; 8];
        a[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(a)
    }

    /// Reads the `i`th little-endian word at `p` (no alignment needed).
    ///
    /// # Safety
    /// `p` is readable for `8 * (i + 1)` bytes.
    #[inline(always)]
    unsafe fn word(p: *const u8, i: usize) -> u64 {
        // SAFETY: the caller's range.
        u64::from_le(unsafe { (p.add(8 * i) as *const u64).read_unaligned() })
    }

    /// Three lanes of `l` words each from `p`: the first continues state `s`, the
    /// others start from zero; the result is the state after all `3 * l` words.
    ///
    /// # Safety
    /// The CPU has the instruction; `p` is readable for `24 * l` bytes.
    #[cfg_attr(target_arch = "x86_64", target_feature(enable = "sse4.2"))]
    #[cfg_attr(target_arch = "aarch64", target_feature(enable = "crc"))]
    #[inline]
    unsafe fn lanes(s: u32, p: *const u8, l: usize, shift: &Shift) -> u32 {
        let (mut a, mut b, mut c) = (s, 0u32, 0u32);
        for i in 0..l {
            // SAFETY: `i + 2l < 3l`: within the caller's range.
            unsafe {
                a = step64(a, word(p, i));
                b = step64(b, word(p, l + i));
                c = step64(c, word(p, 2 * l + i));
            }
        }
        shift.twice.apply(a) ^ shift.once.apply(b) ^ c
    }

    /// The raw state after `n` words at `p`, from state `s`: in three independent
    /// lanes where there are enough words (the instruction's latency is three times
    /// its throughput, so one chain would leave it two thirds idle), the lanes joined
    /// with [`Shift`] tables.
    ///
    /// # Safety
    /// The CPU has the instruction; `p` is readable for `8 * n` bytes.
    #[cfg_attr(target_arch = "x86_64", target_feature(enable = "sse4.2"))]
    #[cfg_attr(target_arch = "aarch64", target_feature(enable = "crc"))]
    unsafe fn run(mut s: u32, mut p: *const u8, mut n: usize) -> u32 {
        while n >= 3 * BIG {
            // SAFETY: `3 * BIG <= n` words left at `p`: the block reads only those.
            s = unsafe { lanes(s, p, BIG, &SHIFT_BIG) };
            // SAFETY: still within the caller's range (n counts what is left).
            p = unsafe { p.add(24 * BIG) };
            n -= 3 * BIG;
        }
        while n >= 3 * MID {
            // SAFETY: as above.
            s = unsafe { lanes(s, p, MID, &SHIFT_MID) };
            // SAFETY: as above.
            p = unsafe { p.add(24 * MID) };
            n -= 3 * MID;
        }
        if n >= 2 * SMALL {
            // The first lane takes what the other two leave; they start at once.
            let front = n - 2 * SMALL;
            let (mut a, mut b, mut c) = (s, 0u32, 0u32);
            for i in 0..front {
                // SAFETY: `i < front <= n`.
                a = step64(a, unsafe { word(p, i) });
            }
            for i in 0..SMALL {
                // SAFETY: `front + SMALL + i < n`.
                unsafe {
                    b = step64(b, word(p, front + i));
                    c = step64(c, word(p, front + SMALL + i));
                }
            }
            return SHIFT_SMALL.twice.apply(a) ^ SHIFT_SMALL.once.apply(b) ^ c;
        }
        for i in 0..n {
            // SAFETY: `i < n`.
            s = step64(s, unsafe { word(p, i) });
        }
        s
    }

    /// # Safety
    /// The CPU has the CRC-32C instruction (SSE4.2 / the AArch64 CRC extension).
    #[cfg_attr(target_arch = "x86_64", target_feature(enable = "sse4.2"))]
    #[cfg_attr(target_arch = "aarch64", target_feature(enable = "crc"))]
    pub unsafe fn record_crc(head: &[u64; 5], parts: &[&[u8]], pad: usize) -> u32 {
        let mut s = !0u32;
        for &w in head {
            s = step64(s, w);
        }
        // Bytes not yet fed, gathered into `carry` (its low `have` bytes).
        let mut carry = 0u64;
        let mut have = 0usize;
        for p in parts {
            let mut p: &[u8] = p;
            if have != 0 {
                let take = (8 - have).min(p.len());
                carry |= partial(&p[..take]) << (8 * have);
                have += take;
                p = &p[take..];
                if have < 8 {
                    continue;
                }
                s = step64(s, carry);
                carry = 0;
                have = 0;
            }
            let whole = p.len() / 8;
            // SAFETY: `p` is readable for `8 * whole` bytes.
            s = unsafe { run(s, p.as_ptr(), whole) };
            let rest = &p[8 * whole..];
            if !rest.is_empty() {
                carry = partial(rest);
                have = rest.len();
            }
        }
        // The last partial word and the padding: zeros complete it.
        let mut pad = pad;
        if have != 0 {
            if have + pad >= 8 {
                s = step64(s, carry);
                pad -= 8 - have;
            } else {
                for i in 0..have {
                    s = step8(s, (carry >> (8 * i)) as u8);
                }
            }
        }
        while pad >= 8 {
            s = step64(s, 0);
            pad -= 8;
        }
        for _ in 0..pad {
            s = step8(s, 0);
        }
        !s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> [u64; 5] {
        [0x0123_4567_0003_0002, 11, 22, 7 | 8 << 32, 9]
    }

    #[test]
    fn instruction_and_table_agree_at_every_cut() {
        init();
        let data: [u8; 83] = core::array::from_fn(|i| (i * 131 + 7) as u8);
        let long: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        for cut in [0, 1, 8, 13, 600, 1536, 1537, 4999] {
            let parts: [&[u8]; 2] = [&long[..cut], &long[cut..]];
            assert_eq!(
                record_crc(&head(), &parts, 3),
                portable_record_crc(&head(), &parts, 3)
            );
        }
        for a in 0..data.len() {
            for b in a..data.len() {
                let parts: [&[u8]; 3] = [&data[..a], &data[a..b], &data[b..]];
                for pad in 0..16 {
                    let want = portable_record_crc(&head(), &parts, pad);
                    assert_eq!(record_crc(&head(), &parts, pad), want, "{a} {b} {pad}");
                }
            }
        }
    }

    #[test]
    fn summed_check_matches_the_record_crates_seal() {
        init();
        let words: Vec<u64> = (0..300u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i << 61))
            .collect();
        let all: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        for n in 0..all.len().min(900) {
            let bytes = &all[..n];
            let mut h = tapline_record::Header::new(tapline_record::RecordType::Data, n, 5, 6);
            h.version = tapline_record::VERSION_SUM;
            h.pid = 1;
            h.tid = 2;
            h.conn_id = 3;
            let want = portable_summed(&h.covered_words(), bytes);
            let got = summed_check(&h.covered_words(), tapline_record::word_sum(bytes));
            assert_eq!(got, want, "{n}");
            h.seal(&[bytes]);
            assert_eq!(got, h.crc32, "{n}");
        }
    }

    fn portable_summed(head: &[u64; 5], payload: &[u8]) -> u32 {
        let mut c = portable::Crc32c::new();
        for &w in head {
            c.word(w);
        }
        c.word(tapline_record::word_sum(payload));
        c.finalize()
    }

    #[test]
    fn matches_the_record_crates_seal() {
        init();
        let body = [0x5au8; 37];
        let mut h = tapline_record::Header::new(tapline_record::RecordType::Data, 24 + 37, 5, 6);
        h.pid = 1;
        h.tid = 2;
        h.conn_id = 3;
        let fixed = [1u8; 24];
        let parts: [&[u8]; 2] = [&fixed, &body];
        let pad = h.pad_for(61);
        let crc = record_crc(&h.covered_words(), &parts, pad);
        h.seal(&parts);
        assert_eq!(crc, h.crc32);
    }
}
