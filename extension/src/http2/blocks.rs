//! HPACK over a connection's header blocks: per direction, in the order of their
//! sequence numbers, from the connection's first block.
//!
//! A connection may be read in one go ([`crate::assemble`] over a whole spool) or a
//! little at a time (the Lambda extension's feed, which drops the records of streams it
//! handed out). [`HpackResume`] is what carries over between the readings: each
//! direction's decoder, the next block number it expects, whether its state is lost,
//! and the decoded blocks of streams not yet handed out. A block is decoded once, when
//! its turn comes; a block numbered below the turn is one decoded before (its result is
//! kept until its stream is handed out) or one read twice (the first one counts).

use std::collections::{BTreeMap, BTreeSet};

use tapline_record::Direction;

use super::hpack::{Decoder, Field};
use super::record::H2Record;
use crate::spool::{H2Event, HeaderBlock};

/// A header block after HPACK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Decoded {
    /// Every field, decoded from a known table state.
    Whole(Vec<Field>),
    /// The block was cut by the head limit: the fields before the cut.
    Cut(Vec<Field>),
    /// The table state was unknown (a block before this one was cut, lost or broken),
    /// or this block did not decode.
    Lost,
}

impl Decoded {
    pub(super) fn fields(&self) -> &[Field] {
        match self {
            Decoded::Whole(f) | Decoded::Cut(f) => f,
            Decoded::Lost => &[],
        }
    }

    pub(super) fn pseudo(&self, name: &str) -> Option<String> {
        self.fields()
            .iter()
            .find(|f| f.name == name.as_bytes())
            .map(|f| String::from_utf8_lossy(&f.value).into_owned())
    }
}

/// One direction's HPACK state between readings.
#[derive(Clone, Debug, Default)]
struct DirState {
    decoder: Decoder,
    /// The block number whose turn it is.
    next: u32,
    /// A block was cut, lost (a gap) or did not decode: nothing after it decodes.
    lost: bool,
    /// Blocks decoded before, by number, still needed (their streams are not handed
    /// out yet).
    kept: BTreeMap<u32, Decoded>,
}

/// A connection's HPACK state carried from one reading to the next (see the module
/// docs). `Default` is a connection's first reading.
#[derive(Clone, Debug, Default)]
pub struct HpackResume {
    dirs: [DirState; 2],
}

impl HpackResume {
    /// The decoded block numbered `seq` in direction `dir` is no longer needed (its
    /// stream was handed out and its record dropped).
    pub fn forget(&mut self, dir: Direction, seq: u32) {
        self.dirs[slot(dir)].kept.remove(&seq);
    }

    /// Decoded blocks kept for later readings.
    pub fn kept_blocks(&self) -> usize {
        self.dirs.iter().map(|d| d.kept.len()).sum()
    }
}

pub(super) fn slot(dir: Direction) -> usize {
    match dir {
        Direction::Egress => 0,
        // Records with a direction this build does not know are never decoded.
        Direction::Ingress | Direction::Unknown(_) => 1,
    }
}

/// The other direction.
pub(super) fn other(dir: Direction) -> Direction {
    match dir {
        Direction::Egress => Direction::Ingress,
        Direction::Ingress | Direction::Unknown(_) => Direction::Egress,
    }
}

/// Decodes every header block of `records` whose turn it is, per direction in sequence
/// order, honouring the decoding peer's `SETTINGS_HEADER_TABLE_SIZE` as it was seen
/// before each block; blocks decoded by an earlier reading come from `resume`. Returns
/// the decoded block for each record index that holds one.
pub(super) fn decode_blocks(
    records: &[H2Record],
    resume: &mut HpackResume,
) -> BTreeMap<usize, Decoded> {
    let mut out = BTreeMap::new();
    for dir in [Direction::Egress, Direction::Ingress] {
        let state = &mut resume.dirs[slot(dir)];
        let mut blocks: Vec<(usize, &HeaderBlock)> = records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.dir == dir)
            .filter_map(|(i, r)| match &r.event {
                H2Event::HeaderBlock(b) => Some((i, b)),
                _ => None,
            })
            .collect();
        blocks.sort_by_key(|(i, b)| (b.seq, *i));
        // The peer that decodes `dir` announces its table size in the other direction.
        // (The allowed size only grows, so a SETTINGS applied again changes nothing.)
        let settings: Vec<(usize, u32)> = records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.dir != dir)
            .filter_map(|(i, r)| match r.event {
                H2Event::Settings {
                    header_table_size: Some(size),
                    ..
                } => Some((i, size)),
                _ => None,
            })
            .collect();
        let mut applied = 0;
        let mut placed = BTreeSet::new();
        for (i, block) in blocks {
            if !placed.insert(block.seq) {
                // The same block twice (a record read twice): the first one counts.
                continue;
            }
            if block.seq < state.next {
                if let Some(d) = state.kept.get(&block.seq) {
                    out.insert(i, d.clone());
                }
                continue;
            }
            while let Some(&(at, size)) = settings.get(applied) {
                if at > i {
                    break;
                }
                state.decoder.set_allowed_size(size);
                applied += 1;
            }
            let decoded = decode_one(state, block);
            state.kept.insert(block.seq, decoded.clone());
            out.insert(i, decoded);
        }
    }
    out
}

/// Decodes the block whose turn it is (or the first after a gap, which loses the state).
fn decode_one(state: &mut DirState, block: &HeaderBlock) -> Decoded {
    state.lost |= block.seq != state.next;
    state.next = block.seq.saturating_add(1);
    if state.lost {
        return Decoded::Lost;
    }
    let mut fields = Vec::new();
    let result = state.decoder.decode_into(&block.block, &mut fields);
    match (result, block.truncated) {
        (Ok(()), false) => Decoded::Whole(fields),
        // A cut block: what decoded before the cut is right; the table after it is not
        // known.
        (_, true) => {
            state.lost = true;
            Decoded::Cut(fields)
        }
        (Err(_), false) => {
            state.lost = true;
            Decoded::Lost
        }
    }
}
