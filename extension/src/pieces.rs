//! [`Pieces`]: bytes captured in pieces at offsets (an HTTP/1 message's head or body,
//! an HTTP/2 stream's data), joined up to the first gap. The record format allows
//! pieces in any order, overlapping or missing; the offsets are untrusted. Imports
//! nothing of the crate.

/// Pieces of one byte stream, placed by offset.
#[derive(Default)]
pub(crate) struct Pieces(Vec<(u64, Vec<u8>)>);

impl Pieces {
    pub(crate) fn push(&mut self, offset: u64, bytes: &[u8]) {
        self.0.push((offset, bytes.to_vec()));
    }

    pub(crate) fn push_owned(&mut self, offset: u64, bytes: Vec<u8>) {
        self.0.push((offset, bytes));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes captured, gaps and overlaps aside.
    pub(crate) fn captured_len(&self) -> usize {
        self.0.iter().map(|(_, b)| b.len()).sum()
    }

    /// The bytes from offset 0 up to the first gap, and whether a gap cut them short.
    /// Overlaps keep the bytes placed first. Never allocates more than was captured,
    /// whatever the (untrusted) offsets say.
    pub(crate) fn joined(&self) -> (Vec<u8>, bool) {
        // One piece (a head or body written in one call, the common case): no sorting.
        if let [(off, bytes)] = self.0.as_slice() {
            return if *off > 0 {
                (Vec::new(), true)
            } else {
                (bytes.clone(), false)
            };
        }
        let mut pieces: Vec<&(u64, Vec<u8>)> = self.0.iter().collect();
        pieces.sort_by_key(|(off, _)| *off);
        let mut out = Vec::new();
        for (off, bytes) in pieces {
            let have = out.len() as u64;
            if *off > have {
                return (out, true);
            }
            let skip = have - off;
            if let Some(rest) = usize::try_from(skip).ok().and_then(|s| bytes.get(s..)) {
                out.extend_from_slice(rest);
            }
        }
        (out, false)
    }

    /// The length [`Pieces::joined`] would return, and whether a gap cut it short,
    /// without copying the bytes.
    pub(crate) fn joined_len(&self) -> (usize, bool) {
        let mut pieces: Vec<(u64, usize)> = self.0.iter().map(|(o, b)| (*o, b.len())).collect();
        pieces.sort_by_key(|(off, _)| *off);
        let mut have = 0usize;
        for (off, len) in pieces {
            if off > have as u64 {
                return (have, true);
            }
            // off <= have, so it fits in usize.
            let skip = (have as u64 - off) as usize;
            have += len.saturating_sub(skip);
        }
        (have, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_join_by_offset_and_stop_at_gaps() {
        let mut f = Pieces::default();
        f.push(5, b"56789");
        f.push(0, b"01234");
        f.push(3, b"34567"); // overlap
        assert_eq!(f.joined(), (b"0123456789".to_vec(), false));
        f.push(20, b"x");
        assert_eq!(f.joined(), (b"0123456789".to_vec(), true));
        let mut huge = Pieces::default();
        huge.push(u64::MAX, b"x");
        assert_eq!(huge.joined(), (Vec::new(), true));
    }

    /// `joined_len` is the length and gap of `joined`, for one piece and many, in any
    /// order, overlapping, with gaps and with offsets past the end.
    #[test]
    fn joined_len_is_the_length_of_joined() {
        let cases: &[&[(u64, &[u8])]] = &[
            &[],
            &[(0, b"abc")],
            &[(2, b"abc")],
            &[(0, b"")],
            &[(5, b"56789"), (0, b"01234"), (3, b"34567")],
            &[(0, b"0123"), (1, b"1")],
            &[(0, b"01"), (2, b"23"), (9, b"9")],
            &[(u64::MAX, b"x"), (0, b"ab")],
            &[(1, b"bc"), (0, b"a"), (0, b"abcd"), (6, b"g")],
        ];
        for case in cases {
            let mut p = Pieces::default();
            for (off, bytes) in *case {
                p.push(*off, bytes);
            }
            let (bytes, gap) = p.joined();
            assert_eq!(p.joined_len(), (bytes.len(), gap), "{case:?}");
        }
    }
}
