//! CRC-32C (Castagnoli, the iSCSI/ext4 polynomial, reflected 0x82F63B78): the checksum
//! of version-2 records. Portable, table-driven (slice-by-8, tables built at compile
//! time), safe code.
//!
//! Why CRC-32C and not zlib's CRC-32: x86-64 (SSE4.2 `crc32`) and AArch64 (`crc32cx`)
//! compute it with one instruction per 8 bytes, so the writer in the traced process
//! checks a small record in a few dozen instructions instead of the ~400 a CRC-32 took.
//! The library uses those instructions (`src/sys/crc32c.rs`) and falls back to this
//! code on a CPU without them; the reader uses this code. Both feed the same bytes in
//! the same order ([`Crc32c`]): the library's tests hold the two equal.

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

const fn tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut s = 1;
    while s < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

static TABLES: [[u32; 256]; 8] = tables();

/// Advances a raw CRC-32C state (not inverted) over one little-endian 64-bit word:
/// what the `crc32` instruction with a 64-bit operand computes.
#[inline]
pub fn step_u64(state: u32, word: u64) -> u32 {
    let x = word ^ u64::from(state);
    let t = &TABLES;
    t[7][(x & 0xff) as usize]
        ^ t[6][((x >> 8) & 0xff) as usize]
        ^ t[5][((x >> 16) & 0xff) as usize]
        ^ t[4][((x >> 24) & 0xff) as usize]
        ^ t[3][((x >> 32) & 0xff) as usize]
        ^ t[2][((x >> 40) & 0xff) as usize]
        ^ t[1][((x >> 48) & 0xff) as usize]
        ^ t[0][(x >> 56) as usize]
}

/// Advances a raw CRC-32C state (not inverted) over one byte.
#[inline]
pub fn step_u8(state: u32, byte: u8) -> u32 {
    (state >> 8) ^ TABLES[0][((state ^ u32::from(byte)) & 0xff) as usize]
}

/// Advances a raw CRC-32C state (not inverted) over `bytes`.
pub fn update(mut state: u32, bytes: &[u8]) -> u32 {
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        state = step_u64(state, u64::from_le_bytes(a));
    }
    for &b in words.remainder() {
        state = step_u8(state, b);
    }
    state
}

/// The CRC-32C of `bytes` (initial value and final xor `0xFFFFFFFF`, as RFC 3720).
pub fn checksum(bytes: &[u8]) -> u32 {
    !update(!0, bytes)
}

/// A CRC-32C fed in pieces, the way a record is: whole words, then byte runs.
#[derive(Clone, Copy, Debug)]
pub struct Crc32c(u32);

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32c {
    pub const fn new() -> Self {
        Crc32c(!0)
    }
    pub fn word(&mut self, w: u64) {
        self.0 = step_u64(self.0, w);
    }
    pub fn update(&mut self, bytes: &[u8]) {
        self.0 = update(self.0, bytes);
    }
    /// `n` zero bytes (a record's padding).
    pub fn zeros(&mut self, n: usize) {
        for _ in 0..n {
            self.0 = step_u8(self.0, 0);
        }
    }
    pub fn finalize(self) -> u32 {
        !self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // RFC 3720 B.4 and the common check value.
        assert_eq!(checksum(b"123456789"), 0xE306_9283);
        assert_eq!(checksum(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(checksum(&[0xffu8; 32]), 0x62A8_AB43);
        let inc: [u8; 32] = core::array::from_fn(|i| i as u8);
        assert_eq!(checksum(&inc), 0x46DD_794E);
        assert_eq!(checksum(&[]), 0);
    }

    #[test]
    fn words_and_bytes_agree() {
        let data: [u8; 61] = core::array::from_fn(|i| (i * 37 + 11) as u8);
        for cut in 0..data.len() {
            let mut c = Crc32c::new();
            c.update(&data[..cut]);
            c.update(&data[cut..]);
            assert_eq!(c.finalize(), checksum(&data));
        }
        let mut c = Crc32c::new();
        c.word(u64::from_le_bytes(data[..8].try_into().unwrap()));
        c.update(&data[8..]);
        assert_eq!(c.finalize(), checksum(&data));
    }
}
