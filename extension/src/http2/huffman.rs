//! The HPACK Huffman code (RFC 7541 Appendix B), decoding only.
//!
//! The code is canonical: codes of one length are consecutive, ordered by symbol, and
//! each length's first code follows the previous length's last. So the code lengths
//! alone define it, and a decoder needs no tree: per length, the first code and where
//! its symbols start in the list of symbols sorted by (length, symbol). The unit tests
//! check the codes this builds against RFC 7541's table for a few symbols, and the
//! decoder against the Appendix C examples.

/// Code length in bits of each symbol, 0..=255, then EOS (256), per RFC 7541 Appendix B.
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0x00
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 0x10
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // 0x20
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // 0x30
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // 0x40
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 0x50
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // 0x60
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 0x70
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 0x80
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 0x90
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 0xa0
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 0xb0
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 0xc0
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 0xd0
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 0xe0
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 0xf0
    30, // EOS
];

const EOS: u16 = 256;
const MAX_LEN: usize = 30;

/// The canonical decoding tables, built once from [`LENGTHS`].
struct Canonical {
    /// Symbols sorted by (code length, symbol).
    symbols: [u16; 257],
    /// Per length: the first code of that length.
    first_code: [u32; MAX_LEN + 1],
    /// Per length: index in `symbols` of the first symbol of that length.
    first_index: [u16; MAX_LEN + 1],
    /// Per length: how many symbols have it.
    count: [u16; MAX_LEN + 1],
}

const fn build() -> Canonical {
    let mut count = [0u16; MAX_LEN + 1];
    let mut i = 0;
    while i < 257 {
        count[LENGTHS[i] as usize] += 1;
        i += 1;
    }
    let mut first_code = [0u32; MAX_LEN + 1];
    let mut first_index = [0u16; MAX_LEN + 1];
    let mut code = 0u32;
    let mut index = 0u16;
    let mut len = 1;
    while len <= MAX_LEN {
        first_code[len] = code;
        first_index[len] = index;
        code = (code + count[len] as u32) << 1;
        index += count[len];
        len += 1;
    }
    let mut symbols = [0u16; 257];
    let mut next = first_index;
    let mut s = 0;
    while s < 257 {
        let l = LENGTHS[s] as usize;
        symbols[next[l] as usize] = s as u16;
        next[l] += 1;
        s += 1;
    }
    Canonical {
        symbols,
        first_code,
        first_index,
        count,
    }
}

static CODE: Canonical = build();

/// Why a Huffman string did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HuffmanError {
    /// The EOS symbol inside the string (RFC 7541 §5.2).
    EosInString,
    /// More than 7 padding bits, or padding that is not a prefix of EOS (all ones).
    BadPadding,
}

/// Decodes a Huffman-coded string literal, appending to `out`.
pub fn decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    out.reserve(input.len() * 8 / 5);
    let mut code: u32 = 0;
    let mut len: usize = 0;
    for &byte in input {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            // `len` never passes MAX_LEN: every 30-bit pattern is a code or a prefix
            // of none (the EOS code is all ones and is the last one).
            let offset = code.wrapping_sub(CODE.first_code[len]);
            if offset < u32::from(CODE.count[len]) {
                let sym = CODE.symbols[usize::from(CODE.first_index[len]) + offset as usize];
                if sym == EOS {
                    return Err(HuffmanError::EosInString);
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            } else if len == MAX_LEN {
                // Unreachable for a complete code; kept so that a table mistake can
                // never index past the end.
                return Err(HuffmanError::BadPadding);
            }
        }
    }
    // What is left must be padding: at most 7 bits, all ones.
    if len > 7 || code != (1u32 << len) - 1 {
        return Err(HuffmanError::BadPadding);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The code of one symbol, from the canonical tables.
    fn code_of(sym: u16) -> (u32, usize) {
        let len = LENGTHS[usize::from(sym)] as usize;
        let start = usize::from(CODE.first_index[len]);
        let pos = CODE.symbols[start..start + usize::from(CODE.count[len])]
            .iter()
            .position(|&s| s == sym)
            .expect("symbol has its length");
        (CODE.first_code[len] + pos as u32, len)
    }

    #[test]
    fn canonical_codes_match_rfc_7541_appendix_b() {
        // A few rows of the RFC's table, across lengths.
        for (sym, code, len) in [
            (b'0' as u16, 0x0, 5),
            (b'a' as u16, 0x3, 5),
            (b't' as u16, 0x9, 5),
            (b' ' as u16, 0x14, 6),
            (b':' as u16, 0x5c, 7),
            (b'&' as u16, 0xf8, 8),
            (b'!' as u16, 0x3f8, 10),
            (b'<' as u16, 0x7ffc, 15),
            (0, 0x1ff8, 13),
            (1, 0x7fffd8, 23),
            (10, 0x3ffffffc, 30),
            (255, 0x3ffffee, 26),
            (EOS, 0x3fffffff, 30),
        ] {
            assert_eq!(code_of(sym), (code, len), "symbol {sym}");
        }
    }

    #[test]
    fn rfc_7541_c_4_1_www_example_com() {
        let mut out = Vec::new();
        decode(
            &[
                0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
            ],
            &mut out,
        )
        .unwrap();
        assert_eq!(out, b"www.example.com");
    }

    #[test]
    fn padding_rules() {
        let mut out = Vec::new();
        // 'a' (00011) + 3 one bits: fine.
        assert_eq!(decode(&[0b0001_1111], &mut out), Ok(()));
        assert_eq!(out, b"a");
        // 'a' + zero padding: not a prefix of EOS.
        assert_eq!(
            decode(&[0b0001_1000], &mut Vec::new()),
            Err(HuffmanError::BadPadding)
        );
        // A whole byte of ones is more than 7 bits of padding.
        assert_eq!(
            decode(&[0b0001_1111, 0xff], &mut Vec::new()),
            Err(HuffmanError::BadPadding)
        );
        // EOS itself (30 ones) inside a string.
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff], &mut Vec::new()),
            Err(HuffmanError::EosInString)
        );
    }

    #[test]
    fn every_byte_round_trips() {
        // Encode each symbol with the canonical code, pad with ones, decode.
        for sym in 0u16..256 {
            let (code, len) = code_of(sym);
            let total = len.div_ceil(8) * 8;
            let padded = (u64::from(code) << (total - len)) | ((1u64 << (total - len)) - 1);
            let bytes: Vec<u8> = (0..total / 8)
                .rev()
                .map(|i| (padded >> (i * 8)) as u8)
                .collect();
            let mut out = Vec::new();
            decode(&bytes, &mut out).unwrap();
            assert_eq!(out, [sym as u8], "symbol {sym}");
        }
    }
}
