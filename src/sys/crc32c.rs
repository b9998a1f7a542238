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

/// The instruction-level walk: words gathered across parts, the CRC state in a register.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod hw {
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn step64(state: u32, word: u64) -> u32 {
        // SAFETY: only reached from `record_crc`, compiled with sse4.2 enabled.
        unsafe { core::arch::x86_64::_mm_crc32_u64(u64::from(state), word) as u32 }
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn step8(state: u32, byte: u8) -> u32 {
        // SAFETY: as above.
        unsafe { core::arch::x86_64::_mm_crc32_u8(state, byte) }
    }

    #[cfg(target_arch = "aarch64")]
    #[inline(always)]
    fn step64(state: u32, word: u64) -> u32 {
        // SAFETY: only reached from `record_crc`, compiled with the CRC extension.
        unsafe { core::arch::aarch64::__crc32cd(state, word) }
    }

    #[cfg(target_arch = "aarch64")]
    #[inline(always)]
    fn step8(state: u32, byte: u8) -> u32 {
        // SAFETY: as above.
        unsafe { core::arch::aarch64::__crc32cb(state, byte) }
    }

    /// Loads 1..=7 bytes as the low bytes of a little-endian word.
    #[inline(always)]
    fn partial(bytes: &[u8]) -> u64 {
        let mut a = [0u8; 8];
        a[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(a)
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
            let mut words = p.chunks_exact(8);
            for w in &mut words {
                let mut a = [0u8; 8];
                a.copy_from_slice(w);
                s = step64(s, u64::from_le_bytes(a));
            }
            let rest = words.remainder();
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
