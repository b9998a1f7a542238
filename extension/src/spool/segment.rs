//! Shared spool segments (`<pid>-<seq>.tls`), read while their writers run.
//!
//! Why this is not the plain file reader: a segment is filled by reservation, so the
//! bytes below its `reserve` word can be a record still being copied (its writer lives:
//! come back later), a record whose writer was killed mid-copy (skip it), or a record
//! committed late, after records behind it (it must still be read, once). The walk over
//! those cases is pure and lives in [`tapline_record::segment`]; this module does the
//! I/O: positional reads (`pread`, so this crate stays free of `unsafe` — the page cache
//! makes the writers' stores visible to `read` just as to a mapping), liveness from
//! `/proc`, deleting segments that are finished, and making segments ahead of need so
//! that writers never pay for creating and faulting one on their hot path.
//!
//! A committed record is returned only after its CRC checked. A read that catches a
//! record between its commit word and the rest (possible: `read` copies in no
//! particular order) is retried on a later read before the record is called corrupt.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use tapline_record::segment::{
    field, header_unwritten, SegmentHeader, Step, Walk, DATA_START, FREE_PREFIX, FREE_SLOTS, SUFFIX,
};
use tapline_record::{parse_record, Header, RawRecord, MAGIC};

/// The library's default segment size (`TAPLINE_SEGMENT_BYTES`).
pub(crate) use tapline_record::settings::DEFAULT_SEGMENT_BYTES;

/// Is the process alive (and not a zombie)? From `/proc/<pid>/stat`.
pub(crate) fn process_alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    match stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].trim_start().chars().next())
    {
        Some('Z') | Some('X') | None => false,
        Some(_) => true,
    }
}

/// Liveness answers cached for one poll (a process does not come back to life).
#[derive(Default)]
struct AliveCache(HashMap<u32, bool>);

impl AliveCache {
    fn alive(&mut self, pid: u32) -> bool {
        *self.0.entry(pid).or_insert_with(|| process_alive(pid))
    }
}

/// Counts of what reading segments met.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentStats {
    /// Committed records returned.
    pub records: u64,
    /// Reservations abandoned by a writer that died before committing.
    pub holes: u64,
    pub hole_bytes: u64,
    /// Bytes that were not records (corrupt, or unknown-length holes of dead writers).
    pub garbage_bytes: u64,
    /// Committed records whose CRC failed on every read.
    pub corrupt: u64,
    /// Segments finished (fully read, no writer can add to them) and deleted.
    pub deleted: u64,
    /// Segments read to their end, zeroed and handed back to their keeper for reuse.
    pub recycled: u64,
    /// Ready-made segments claimed where they are by a writer that died before
    /// writing their header (no record in them): deleted.
    pub abandoned_claims: u64,
}

/// A reservation not committed yet when last seen.
#[derive(Clone, Copy, Debug)]
struct Pending {
    offset: u64,
    len: u32,
    pid: u32,
    /// Reads that saw its commit word but bytes that did not check.
    bad_reads: u8,
}

/// Where the reader is in one segment.
struct Cursor {
    file: File,
    /// Opened for writing too (needed to hand the segment back for reuse).
    writable: bool,
    /// The epoch being read (0 = not known yet).
    epoch: u32,
    /// This epoch was read to its end and handed back: wait for the next one.
    consumed: bool,
    pos: u64,
    pending: Vec<Pending>,
}

/// What one poll of a segment concluded.
enum Progress {
    /// More may come (or is still being written).
    Open,
    /// Read to its end; no writer can add to this epoch.
    Finished(SegmentHeader),
    /// Handed back earlier, and its keeper let it go (or died): nothing more will come.
    Released,
}

/// Follows every segment of a spool directory: each poll returns the records committed
/// since the previous one, and deletes segments that are finished.
pub struct SegmentFollower {
    dir: PathBuf,
    cursors: BTreeMap<String, Cursor>,
    finished: BTreeSet<String>,
    delete_finished: bool,
    /// Most record bytes one poll reads (see [`SegmentFollower::set_poll_budget`]);
    /// `None`: everything committed.
    poll_budget: Option<u64>,
    /// The last poll stopped at its budget: more is waiting.
    budget_reached: bool,
    pub stats: SegmentStats,
}

/// A record read from a segment and held until the poll returns it (a header and its
/// payload).
/// The records one poll took from one segment: their payloads in one buffer, and each
/// record's header and range in it.
struct SegmentRecords {
    payloads: Vec<u8>,
    frames: Vec<(Header, std::ops::Range<usize>)>,
}

/// What one poll knows of a segment before reading it: where its current epoch sits in
/// fill order, and how much of it is unread.
struct Unread {
    name: String,
    /// `CLOCK_MONOTONIC` of the epoch's first record (the `ProcStart` the writer commits
    /// when it switches to the segment, stamped with the record that caused the switch);
    /// `u64::MAX` when nothing of a new epoch is readable.
    opened: u64,
    bytes: u64,
    /// Most bytes this poll may walk in the segment (`None`: all of them).
    allowance: Option<u64>,
}

pub(crate) use super::files::is_free_name;
pub use super::files::is_segment_name;

impl SegmentFollower {
    /// `delete_finished`: once a segment is fully read and no writer can add to it,
    /// hand it back to the process that keeps it mapped (zeroed, for reuse in place:
    /// the writer then appends without a syscall or a page fault), or delete it if
    /// nobody keeps it. Either way the spool's disk use stays bounded. Without it the
    /// follower only reads (a second reader must never recycle what it did not own).
    pub fn new(dir: &Path, delete_finished: bool) -> Self {
        SegmentFollower {
            dir: dir.to_owned(),
            cursors: BTreeMap::new(),
            finished: BTreeSet::new(),
            delete_finished,
            poll_budget: None,
            budget_reached: false,
            stats: SegmentStats::default(),
        }
    }

    /// Bounds what one poll reads to about `bytes` of records, so that a reader that
    /// lags behind its writers holds a bounded amount in memory; the rest waits in the
    /// spool, under the writers' bounds. The poll reads whole segments in fill order
    /// (by when their current epoch opened, not by name: a segment reused in place keeps
    /// its name and holds the newest records) and stops in the segment that reaches the
    /// budget, at a record boundary (that segment is the newest of the poll's selection,
    /// and it is read from its cursor on), so that what it leaves unread is newer than
    /// everything it returned: a connection's records are never seen with a gap before a
    /// later record. One poll reads at most about `bytes` plus one record, whatever the
    /// segment size.
    pub fn set_poll_budget(&mut self, bytes: u64) {
        self.poll_budget = Some(bytes);
    }

    /// The last poll stopped at its budget (more is waiting to be read).
    pub fn budget_reached(&self) -> bool {
        self.budget_reached
    }

    /// Reads every record committed since the last poll and hands each to `sink`
    /// (segment name, record). Never blocks on a writer: what is not committed yet is
    /// looked at again on the next poll.
    pub fn poll(&mut self, sink: &mut dyn FnMut(&str, RawRecord<'_>)) -> io::Result<()> {
        self.stats.abandoned_claims += adopt_claimed_in_place(&self.dir)?;
        let mut names: Vec<String> = Vec::new();
        let mut listed_finished = BTreeSet::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            // Regular files only (the type from the directory entry: a symlink is not
            // followed).
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_segment_name(&name) {
                continue;
            }
            if self.finished.contains(&name) {
                listed_finished.insert(name);
            } else {
                names.push(name);
            }
        }
        // Finished names no longer listed were deleted: forgetting them keeps this set
        // as small as the directory (a spool without reuse makes a new name per segment).
        self.finished = listed_finished;
        names.sort_by_key(|n| super::files::file_order(n));
        for name in &names {
            if !self.cursors.contains_key(name) {
                let path = self.dir.join(name);
                // Writable only to hand segments back; read-only if that is refused.
                let rw = self.delete_finished.then(|| {
                    fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&path)
                        .ok()
                });
                let (file, writable) = match rw.flatten() {
                    Some(f) => (f, true),
                    None => match File::open(&path) {
                        Ok(f) => (f, false),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e),
                    },
                };
                let cursor = Cursor {
                    file,
                    writable,
                    epoch: 0,
                    consumed: false,
                    pos: DATA_START,
                    pending: Vec::new(),
                };
                self.cursors.insert(name.clone(), cursor);
            }
        }
        // Fill order: every segment's current epoch by when it opened. Read in that
        // order, a poll returns a connection's records oldest segment first; with a
        // budget it stops after the segment that reaches it.
        let mut order = Vec::with_capacity(names.len());
        for name in names {
            if let Some(cursor) = self.cursors.get(&name) {
                order.push(unread(cursor, name)?);
            }
        }
        order.sort_by_key(|u| u.opened);
        self.budget_reached = false;
        if let Some(budget) = self.poll_budget {
            let mut taken = 0u64;
            let mut cut = order.len();
            for (i, u) in order.iter_mut().enumerate() {
                // Every segment of the selection gets what is left of the budget; only
                // the last (newest) one can be cut by it.
                u.allowance = Some(budget - taken);
                taken = taken.saturating_add(u.bytes);
                if taken >= budget {
                    cut = i + 1;
                    break;
                }
            }
            if cut < order.len() {
                self.budget_reached = order[cut..].iter().any(|u| u.bytes > 0);
                order.truncate(cut);
            }
        }
        // Read newest first, returned oldest first. Why: a writer commits in program
        // order, so a record seen in a newer segment means the records its thread put
        // in older segments before it are committed too; read the other way round, a
        // writer switching segments between the two reads would let the newer record be
        // returned without the older one (a response's end without its last bytes).
        let mut alive = AliveCache::default();
        let mut read: Vec<(String, SegmentRecords)> = Vec::with_capacity(order.len());
        for Unread {
            name,
            bytes,
            allowance,
            ..
        } in order.into_iter().rev()
        {
            let cursor = self.cursors.get_mut(&name).expect("inserted above");
            // The segment's payloads copied into one buffer (not one allocation per
            // record): at most the bytes not read yet.
            let mut records = SegmentRecords {
                payloads: Vec::with_capacity(
                    usize::try_from(allowance.map_or(bytes, |a| a.min(bytes))).unwrap_or(0),
                ),
                frames: Vec::new(),
            };
            let mut keep = |_: &str, record: RawRecord<'_>| {
                let start = records.payloads.len();
                records.payloads.extend_from_slice(record.payload);
                records
                    .frames
                    .push((record.header, start..records.payloads.len()));
            };
            let mut read_cut = false;
            let progress = poll_segment(
                cursor,
                &name,
                allowance,
                &mut read_cut,
                &mut alive,
                &mut self.stats,
                &mut keep,
            );
            self.budget_reached |= read_cut;
            if !records.frames.is_empty() {
                read.push((name.clone(), records));
            }
            let release = match progress? {
                Progress::Open => false,
                Progress::Released => true,
                Progress::Finished(header) => {
                    let keeper_lives = header.reusable() && alive.alive(header.keeper);
                    if self.delete_finished && keeper_lives && cursor.writable {
                        match hand_back(&cursor.file, &header) {
                            Ok(true) => {
                                cursor.consumed = true;
                                self.stats.recycled += 1;
                                false
                            }
                            Ok(false) => false,
                            Err(_) => true,
                        }
                    } else {
                        true
                    }
                }
            };
            if release {
                self.cursors.remove(&name);
                self.finished.insert(name.clone());
                if self.delete_finished {
                    match fs::remove_file(self.dir.join(&name)) {
                        Ok(()) => self.stats.deleted += 1,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        for (name, records) in read.iter().rev() {
            for (header, range) in &records.frames {
                sink(
                    name,
                    RawRecord {
                        header: *header,
                        payload: &records.payloads[range.clone()],
                    },
                );
            }
        }
        Ok(())
    }

    /// Segments currently being followed (not finished).
    pub fn open_segments(&self) -> usize {
        self.cursors.len()
    }
}

/// Where a segment's current epoch sits in fill order, and its bytes not read yet.
fn unread(cursor: &Cursor, name: String) -> io::Result<Unread> {
    let Some(header) = read_header(&cursor.file)? else {
        return Ok(Unread {
            name,
            opened: u64::MAX,
            bytes: 0,
            allowance: None,
        });
    };
    let same_epoch = cursor.epoch == 0 || header.epoch == cursor.epoch;
    if cursor.consumed && header.epoch == cursor.epoch {
        // Handed back and not reused yet: nothing to read.
        return Ok(Unread {
            name,
            opened: u64::MAX,
            bytes: 0,
            allowance: None,
        });
    }
    let from = if same_epoch && !cursor.consumed {
        cursor.pos
    } else {
        DATA_START
    };
    let opened = match read_at(&cursor.file, DATA_START, tapline_record::HEADER_LEN)? {
        Some(b) if u32::from_le_bytes([b[0], b[1], b[2], b[3]]) == MAGIC => {
            u64::from_le_bytes(b[24..32].try_into().expect("8 bytes"))
        }
        _ => u64::MAX,
    };
    Ok(Unread {
        name,
        opened,
        bytes: header.limit().saturating_sub(from),
        allowance: None,
    })
}

/// Reads `len` bytes at `offset`; `None` if the file is shorter.
fn read_at(file: &File, offset: u64, len: usize) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; len];
    match file.read_exact_at(&mut buf, offset) {
        Ok(()) => Ok(Some(buf)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// A ready-made segment as it is now (from its header page).
enum FreeState {
    /// Nobody claimed it: all zeros.
    Free,
    /// Claimed where it is, header written: a segment like any other.
    Claimed(SegmentHeader),
    /// Claimed where it is (`creator` set), header not written yet.
    Claiming(u32),
    /// Anything else (not written by a tapline reader or writer).
    Other,
}

fn free_state(path: &Path) -> io::Result<FreeState> {
    let file = File::open(path)?;
    let Some(page) = read_at(&file, 0, field::END)? else {
        return Ok(FreeState::Other);
    };
    let creator = u32::from_le_bytes(
        page[field::CREATOR..field::CREATOR + 4]
            .try_into()
            .expect("4 bytes"),
    );
    Ok(if let Some(h) = SegmentHeader::parse(&page) {
        FreeState::Claimed(h)
    } else if !header_unwritten(&page) {
        FreeState::Other
    } else if creator == 0 {
        FreeState::Free
    } else {
        FreeState::Claiming(creator)
    })
}

/// Gives the ready-made segments a writer claimed where they are (a process's first
/// claim takes `free-<k>.tls` by a compare-and-swap of its `creator` word, without a
/// rename) their claimed names, `<creator>-<seq>.tls` (`<creator>-<seq>-<n>.tls` if
/// that is taken: the image before an `execve` had the same pid and numbers), so that
/// they are read, handed back and deleted like every other segment and their free
/// names can be made again. A hard link never replaces a name; the free name is
/// removed after. A claim whose writer died before writing the header holds no
/// record: deleted. Returns how many of those it deleted.
fn adopt_claimed_in_place(dir: &Path) -> io::Result<u64> {
    let mut abandoned = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_free_name(&name) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = dir.join(&name);
        let state = match free_state(&path) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        match state {
            FreeState::Claimed(h) => {
                // Linked under the first claimed name not taken, then unlinked. Where
                // hard links are refused, renamed if that name is not taken (only
                // readers name claimed-in-place segments). Gone already: another reader
                // adopted it.
                for n in 0..64u32 {
                    let to = dir.join(if n == 0 {
                        format!("{}-{}{SUFFIX}", h.creator, h.seq)
                    } else {
                        format!("{}-{}-{n}{SUFFIX}", h.creator, h.seq)
                    });
                    match fs::hard_link(&path, &to) {
                        Ok(()) => {
                            let _ = fs::remove_file(&path);
                            break;
                        }
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                        Err(_) => {
                            if !to.exists() {
                                let _ = fs::rename(&path, &to);
                                break;
                            }
                        }
                    }
                }
            }
            FreeState::Claiming(creator) if !process_alive(creator) => {
                abandoned += u64::from(fs::remove_file(&path).is_ok());
            }
            _ => {}
        }
    }
    Ok(abandoned)
}

/// The segment's header as it is now; `None` if it is not (yet) one this reader knows.
fn read_header(file: &File) -> io::Result<Option<SegmentHeader>> {
    Ok(read_at(file, 0, field::END)?.and_then(|page| SegmentHeader::parse(&page)))
}

/// Hands a consumed segment back to its keeper: zeroes the records of this epoch, then
/// says so in `CONSUMED` (the keeper reuses the segment only after it reads that).
/// Returns false if the header changed under the reader (then nothing was written).
fn hand_back(file: &File, seen: &SegmentHeader) -> io::Result<bool> {
    // A fresh look: still this epoch, still full, ending where it was read to.
    match read_header(file)? {
        Some(h) if h.epoch == seen.epoch && h.is_full() && h.data_end == seen.data_end => {}
        _ => return Ok(false),
    }
    const CHUNK: usize = 256 << 10;
    static ZEROS: [u8; CHUNK] = [0; CHUNK];
    let end = seen.limit();
    let mut at = seen.data_start;
    while at < end {
        let n = ((end - at) as usize).min(CHUNK);
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    file.write_all_at(&seen.epoch.to_le_bytes(), field::CONSUMED as u64)?;
    Ok(true)
}

/// One poll of one segment: at most `allowance` bytes of it are walked (see
/// [`read_committed`]); `cut` is set if that stopped the read before its end.
#[allow(clippy::too_many_arguments)]
fn poll_segment(
    cursor: &mut Cursor,
    name: &str,
    allowance: Option<u64>,
    cut: &mut bool,
    alive: &mut AliveCache,
    stats: &mut SegmentStats,
    sink: &mut dyn FnMut(&str, RawRecord<'_>),
) -> io::Result<Progress> {
    let Some(header) = read_header(&cursor.file)? else {
        // Not a segment (or not one this reader knows): leave it alone.
        return Ok(Progress::Open);
    };
    if cursor.consumed {
        if header.epoch == cursor.epoch {
            // Not reused yet. Its keeper may have let it go, or died.
            let kept = header.keeper != 0 && alive.alive(header.keeper);
            return Ok(if kept {
                Progress::Open
            } else {
                Progress::Released
            });
        }
        // Reused: read the new epoch from the start, from a fresh look at the header
        // (this snapshot may mix fields from before and after the reset).
        cursor.consumed = false;
        cursor.epoch = header.epoch;
        cursor.pos = DATA_START;
        cursor.pending.clear();
        return poll_segment(cursor, name, allowance, cut, alive, stats, sink);
    }
    if cursor.epoch == 0 {
        cursor.epoch = header.epoch;
    } else if header.epoch != cursor.epoch {
        // Reused behind this reader's back (another reader handed it back): what was
        // not read of the old epoch is gone. Start over on the next poll.
        cursor.epoch = header.epoch;
        cursor.pos = DATA_START;
        cursor.pending.clear();
        return Ok(Progress::Open);
    }
    let writers_alive = header.writer_pids().any(|p| alive.alive(p));
    let limit = header.limit();

    recheck_pending(cursor, name, alive, stats, sink)?;
    if cursor.pos < limit {
        *cut = read_committed(
            cursor,
            limit,
            allowance,
            writers_alive,
            name,
            alive,
            stats,
            sink,
        )?;
    }
    let closed = header.is_full() || !writers_alive;
    Ok(
        if closed && cursor.pos >= limit && cursor.pending.is_empty() {
            Progress::Finished(header)
        } else {
            Progress::Open
        },
    )
}

/// Reservations seen uncommitted before: committed now (returned), abandoned by a dead
/// writer (a hole), or still pending.
fn recheck_pending(
    cursor: &mut Cursor,
    name: &str,
    alive: &mut AliveCache,
    stats: &mut SegmentStats,
    sink: &mut dyn FnMut(&str, RawRecord<'_>),
) -> io::Result<()> {
    let mut still = Vec::new();
    for mut p in std::mem::take(&mut cursor.pending) {
        let Some(bytes) = read_at(&cursor.file, p.offset, p.len as usize)? else {
            still.push(p);
            continue;
        };
        let magic = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if magic == MAGIC {
            match parse_record(&bytes) {
                Ok((rec, _)) => {
                    stats.records += 1;
                    sink(name, rec);
                }
                Err(_) if p.bad_reads == 0 => {
                    p.bad_reads += 1;
                    still.push(p);
                }
                Err(_) => stats.corrupt += 1,
            }
        } else if alive.alive(p.pid) {
            still.push(p);
        } else {
            stats.holes += 1;
            stats.hole_bytes += u64::from(p.len);
        }
    }
    cursor.pending = still;
    Ok(())
}

/// Walks the bytes from the cursor to `limit`: committed records are returned, the
/// reservations of live writers remembered, what dead writers left skipped.
///
/// With an `allowance`, the walk stops at the first step (record, reservation, hole,
/// garbage) that starts `allowance` bytes or more past the cursor: the cursor stays at
/// that record boundary and the rest is read by a later poll, exactly as if the walk had
/// gone on (a walk keeps no state between steps). Only `allowance` plus one record's
/// largest length is read from the file: every step that starts before the cut lies
/// whole in that read, so it is seen as the whole-segment walk sees it; a record cut
/// by the read's end is never looked at. The one step whose extent depends on bytes
/// past the cut is garbage (its end is the next plausible record start): when it runs
/// past the cut in a shortened read, it is measured again on the rest of the segment.
/// Returns true if the allowance stopped the walk before `limit`.
#[allow(clippy::too_many_arguments)]
fn read_committed(
    cursor: &mut Cursor,
    limit: u64,
    allowance: Option<u64>,
    writers_alive: bool,
    name: &str,
    alive: &mut AliveCache,
    stats: &mut SegmentStats,
    sink: &mut dyn FnMut(&str, RawRecord<'_>),
) -> io::Result<bool> {
    let base = cursor.pos;
    let cut_at = allowance.map_or(limit, |a| base.saturating_add(a.max(1)).min(limit));
    let read_end = cut_at
        .saturating_add(tapline_record::MAX_RECORD_LEN as u64)
        .next_multiple_of(tapline_record::ALIGN as u64)
        .min(limit);
    let shortened = read_end < limit;
    let Some(bytes) = read_at(&cursor.file, base, (read_end - base) as usize)? else {
        return Ok(false);
    };
    let mut walk = Walk::new(&bytes, base, |pid| alive.alive(pid), writers_alive);
    let mut next_pos = base + bytes.len() as u64;
    let mut stopped = false;
    let mut garbage_from = None;
    for step in &mut walk {
        let offset = match step {
            Step::Record { offset, .. }
            | Step::Pending { offset, .. }
            | Step::Recheck { offset, .. }
            | Step::Hole { offset, .. }
            | Step::Garbage { offset, .. }
            | Step::Wait { offset } => offset,
        };
        if offset >= cut_at {
            // Not read yet: the next poll starts here.
            next_pos = offset;
            stopped = true;
            break;
        }
        match step {
            Step::Record { offset, len } => {
                let at = (offset - base) as usize;
                let (rec, _) = parse_record(&bytes[at..at + len as usize])
                    .expect("the walk checked this record");
                stats.records += 1;
                sink(name, rec);
            }
            Step::Pending { offset, len, pid } => cursor.pending.push(Pending {
                offset,
                len,
                pid,
                bad_reads: 0,
            }),
            Step::Recheck { offset, len } => {
                let at = (offset - base) as usize;
                let pid = u32::from_le_bytes(bytes[at + 32..at + 36].try_into().expect("4 bytes"));
                cursor.pending.push(Pending {
                    offset,
                    len,
                    pid,
                    bad_reads: 0,
                });
            }
            Step::Hole { len, .. } => {
                stats.holes += 1;
                stats.hole_bytes += u64::from(len);
            }
            Step::Garbage { offset, len } if shortened && offset + u64::from(len) > cut_at => {
                garbage_from = Some(offset);
                break;
            }
            Step::Garbage { len, .. } => stats.garbage_bytes += u64::from(len),
            Step::Wait { offset } => {
                next_pos = offset;
                break;
            }
        }
    }
    if let Some(offset) = garbage_from {
        // Garbage running past the cut of a shortened read: its end is the next
        // plausible record start, which may lie in bytes this read did not take.
        // Measured on the rest of the segment (rare: only corrupt bytes get here).
        drop(bytes);
        let Some(rest) = read_at(&cursor.file, offset, (limit - offset) as usize)? else {
            cursor.pos = offset;
            return Ok(false);
        };
        let mut walk = Walk::new(&rest, offset, |pid| alive.alive(pid), writers_alive);
        match walk.next() {
            Some(Step::Garbage { len, .. }) => {
                stats.garbage_bytes += u64::from(len);
                next_pos = offset + u64::from(len);
            }
            // Not expected: the step starts before the cut, so the shortened read held
            // all of it and judged it as this one does. Left to the next poll.
            _ => next_pos = offset,
        }
        stopped = next_pos < limit;
    } else if !stopped && shortened && next_pos == read_end {
        // The walk ended at the end of a shortened read, past the cut.
        stopped = true;
    }
    cursor.pos = next_pos;
    Ok(stopped)
}

/// What one segment file holds, read at once (the batch reader: `tapline run` after the
/// program exited, `tapline show`).
#[derive(Clone, Debug, Default)]
pub struct SegmentContents {
    /// The committed records, as concatenated frames (what a `.tlr` file would hold).
    pub frames: Vec<u8>,
    pub stats: SegmentStats,
    /// Reservations of writers that still live and have not committed yet.
    pub pending: u64,
    /// False if the bytes are not a segment this reader knows.
    pub valid: bool,
    /// The header page is all zeros: a ready-made segment a writer renamed to its
    /// claimed name and has not set up yet (or died before it did). Not valid, not an
    /// error: it holds no record.
    pub unwritten: bool,
}

/// Reads the committed records of a whole segment file's bytes, skipping what dead
/// writers left uncommitted.
pub fn read_segment(bytes: &[u8]) -> SegmentContents {
    let mut out = SegmentContents::default();
    let Some(header) = SegmentHeader::parse(bytes) else {
        out.unwritten = header_unwritten(bytes);
        return out;
    };
    out.valid = true;
    let mut alive = AliveCache::default();
    let writers_alive = header.writer_pids().any(|p| alive.alive(p));
    let limit = (header.limit() as usize).min(bytes.len());
    let start = DATA_START as usize;
    if limit <= start {
        return out;
    }
    let data = &bytes[start..limit];
    let walk = Walk::new(data, DATA_START, |pid| alive.alive(pid), writers_alive);
    for step in walk {
        match step {
            Step::Record { offset, len } => {
                let at = (offset - DATA_START) as usize;
                out.frames.extend_from_slice(&data[at..at + len as usize]);
                out.stats.records += 1;
            }
            Step::Pending { .. } => out.pending += 1,
            Step::Hole { len, .. } => {
                out.stats.holes += 1;
                out.stats.hole_bytes += u64::from(len);
            }
            Step::Garbage { len, .. } => out.stats.garbage_bytes += u64::from(len),
            Step::Recheck { .. } => out.stats.corrupt += 1,
            Step::Wait { .. } => break,
        }
    }
    out
}

/// Keeps `want` ready-made segments of `size` bytes in `dir`, so that writers claim one
/// with a rename instead of creating and faulting their own on their hot path.
///
/// Each is written full of zeros (its blocks are allocated and its pages are in the
/// page cache) under a name writers ignore, then published as `free-<k>.tls` (see
/// [`publish_free`]). Also removes set-up leftovers (`.claim-<pid>-*`) of processes that
/// died.
/// Returns how many it made.
pub fn make_free_segments(dir: &Path, want: usize, size: u64) -> io::Result<usize> {
    let mut have = 0;
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if is_free_name(&name) {
            // (One a writer claimed where it is is no longer free.)
            if matches!(free_state(&dir.join(&name)), Ok(FreeState::Free)) {
                have += 1;
            }
        } else if let Some(rest) = name.strip_prefix(".claim-") {
            let pid = rest.split('-').next().and_then(|p| p.parse().ok());
            if pid.is_some_and(|p| !process_alive(p)) {
                let _ = fs::remove_file(dir.join(&name));
            }
        }
    }
    // Written a slice at a time: a segment-sized buffer made on every call (after every
    // invocation, in the extension) cost the extension a 4 MiB peak each time and, once
    // glibc served it from the heap, resident memory that crept up with the invocations.
    let zeros = [0u8; 64 * 1024];
    let mut made = 0;
    let me = std::process::id();
    while have + made < want {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let tmp = dir.join(format!(".free-{me}-{stamp}.tmp"));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut left = size;
        let mut written = Ok(());
        while left > 0 && written.is_ok() {
            let n = left.min(zeros.len() as u64) as usize;
            written = io::Write::write_all(&mut file, &zeros[..n]);
            left -= n as u64;
        }
        drop(file);
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        publish_free(dir, &tmp, &format!("{me}-{stamp}"))?;
        made += 1;
    }
    Ok(made)
}

/// Publishes a ready-made segment under the lowest free name `free-<k>.tls` (the names
/// a writer's first claim tries in order, without listing the directory), or under
/// `free-<fallback>.tls` when all of those are taken (a writer finds it by a listing).
/// A hard link never replaces a name another reader just published; the set-up name
/// is removed after.
fn publish_free(dir: &Path, tmp: &Path, fallback: &str) -> io::Result<()> {
    for k in 0..FREE_SLOTS {
        match fs::hard_link(tmp, dir.join(format!("{FREE_PREFIX}{k}{SUFFIX}"))) {
            Ok(()) => return fs::remove_file(tmp),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            // A filesystem without hard links: the fallback name.
            Err(_) => break,
        }
    }
    fs::rename(tmp, dir.join(format!("{FREE_PREFIX}{fallback}{SUFFIX}")))
}

/// Removes what `make_free_segments` made and no writer claimed (at shutdown).
pub fn remove_free_segments(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        // Only those nobody claimed: one a writer claimed where it is holds records (a
        // poll gives it its claimed name).
        if is_free_name(&name) && matches!(free_state(&dir.join(&name)), Ok(FreeState::Free)) {
            let _ = fs::remove_file(dir.join(name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_record::segment::State;
    use tapline_record::{Header, RecordType};

    const SIZE: u64 = 64 << 10;

    /// A segment file written by hand, as a writer following tapline.h would.
    struct Seg {
        path: PathBuf,
        file: File,
        at: u64,
    }

    impl Seg {
        fn new(dir: &Path, keeper: u32) -> Seg {
            Seg::numbered(dir, keeper, 0)
        }
        fn numbered(dir: &Path, keeper: u32, seq: u32) -> Seg {
            Seg::sized(dir, keeper, seq, SIZE)
        }
        fn sized(dir: &Path, keeper: u32, seq: u32, size: u64) -> Seg {
            let path = dir.join(format!("{keeper}-{seq}.tls"));
            let file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .expect("create");
            file.set_len(size).expect("size");
            file.write_all_at(&SegmentHeader::claimed(size, keeper, seq), 0)
                .expect("header");
            Seg {
                path,
                file,
                at: DATA_START,
            }
        }
        fn u32_at(&self, at: usize, v: u32) {
            self.file
                .write_all_at(&v.to_le_bytes(), at as u64)
                .expect("write");
        }
        fn u64_at(&self, at: usize, v: u64) {
            self.file
                .write_all_at(&v.to_le_bytes(), at as u64)
                .expect("write");
        }
        fn header(&self) -> SegmentHeader {
            read_header(&self.file).expect("read").expect("a segment")
        }
        /// Appends a committed record whose payload is `tag` repeated.
        fn record(&mut self, tag: u8) {
            // Monotonic stamps, as a writer's clock gives them.
            static CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
            let mono = CLOCK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let payload = [tag; 40];
            let mut h = Header::new(RecordType::Drops, payload.len(), 1, mono);
            h.pid = std::process::id();
            let (head, pad) = h.seal(&[&payload]);
            let mut bytes = head.to_vec();
            bytes.extend_from_slice(&payload);
            bytes.resize(bytes.len() + pad, 0);
            self.file.write_all_at(&bytes, self.at).expect("record");
            self.at += bytes.len() as u64;
            self.u64_at(field::RESERVE, self.at);
        }
        fn fill(&self) {
            self.u64_at(field::DATA_END, self.at);
            self.u32_at(field::STATE, State::Full as u32);
            self.u32_at(field::WRITERS, 0);
        }
    }

    fn poll(f: &mut SegmentFollower) -> Vec<u8> {
        let mut tags = Vec::new();
        f.poll(&mut |_, rec| tags.push(rec.payload[0]))
            .expect("poll");
        tags
    }

    /// What a keeper does to reuse a segment handed back: reset, a new epoch.
    fn reuse(seg: &mut Seg, me: u32) {
        let h = seg.header();
        seg.at = DATA_START;
        seg.u64_at(field::RESERVE, DATA_START);
        seg.u64_at(field::DATA_END, 0);
        seg.u32_at(field::WRITERS, me);
        seg.u32_at(field::STATE, State::Claimed as u32);
        seg.u32_at(field::EPOCH, h.epoch + 1);
    }

    /// Regression: a budgeted poll that read segments by name returned a reused
    /// segment's new epoch (the newest records) before an older segment's, and the live
    /// report printed the exchange straddling them as `incomplete response`.
    #[test]
    fn a_budgeted_poll_reads_in_fill_order_not_name_order() {
        let dir = tempdir();
        let me = std::process::id();
        let mut a = Seg::numbered(&dir, me, 0);
        let mut b = Seg::numbered(&dir, me, 1);
        let mut f = SegmentFollower::new(&dir, true);
        f.set_poll_budget(1);
        a.record(1);
        a.record(2);
        a.fill();
        b.record(3);
        // One record per poll at this budget: A (opened first) first.
        assert_eq!(poll(&mut f), [1]);
        assert!(f.budget_reached());
        assert_eq!(f.stats.recycled, 0, "A not read to its end yet");
        assert_eq!(poll(&mut f), [2]);
        assert!(f.budget_reached());
        assert_eq!(f.stats.recycled, 1, "A handed back");
        assert_eq!(poll(&mut f), [3]);
        assert!(!f.budget_reached());
        // B fills up while A, reused, gets the newest records. A's name comes first,
        // but B's records are older: they come out first, and A's wait for the next poll.
        b.record(4);
        b.fill();
        reuse(&mut a, me);
        a.record(5);
        a.record(6);
        assert_eq!(poll(&mut f), [4]);
        assert!(f.budget_reached());
        assert_eq!(poll(&mut f), [5]);
        assert!(f.budget_reached());
        assert_eq!(poll(&mut f), [6]);
        assert!(!f.budget_reached());
        // Without a budget the same spool comes out in fill order in one poll.
        a.record(7);
        a.fill();
        let mut g = SegmentFollower::new(&dir, false);
        assert_eq!(poll(&mut g), [5, 6, 7]);
        let _ = fs::remove_dir_all(&dir);
    }

    /// A budget smaller than a segment cuts the read inside it, at a record boundary:
    /// each poll returns a prefix of whole records, the next one goes on from there,
    /// and nothing is lost or repeated, also when the segment fills while it is read
    /// in pieces (it is handed back only once read to its end) and across its reuse.
    #[test]
    fn a_budget_smaller_than_a_segment_reads_it_in_whole_records() {
        let dir = tempdir();
        let me = std::process::id();
        let mut a = Seg::numbered(&dir, me, 0);
        let mut b = Seg::numbered(&dir, me, 1);
        let mut f = SegmentFollower::new(&dir, true);
        let rec_len = {
            let at = a.at;
            a.record(0);
            a.at - at
        };
        // Two and a half records a poll: the third record starts before the cut, so it
        // is taken whole; the fourth starts past it and waits.
        f.set_poll_budget(rec_len * 5 / 2);
        for tag in 1..=7 {
            a.record(tag);
        }
        b.record(100);
        let mut seen = Vec::new();
        let first = poll(&mut f);
        assert_eq!(first, [0, 1, 2], "a prefix of whole records");
        assert!(f.budget_reached());
        seen.extend(first);
        // The segment fills while it is read in pieces.
        a.record(8);
        a.fill();
        let mut polls = 1;
        loop {
            let got = poll(&mut f);
            assert!(got.len() <= 3, "at most the budget and one record: {got:?}");
            seen.extend(got);
            polls += 1;
            if !f.budget_reached() {
                break;
            }
            assert!(polls < 20, "no progress: {seen:?}");
        }
        // A oldest first, in order, each once; B's record after every one of A's.
        assert_eq!(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 100]);
        assert_eq!(
            f.stats.recycled, 1,
            "A handed back once, after its last record"
        );
        assert_eq!(f.stats.garbage_bytes + f.stats.holes + f.stats.corrupt, 0);
        // Reused: its new epoch is read in pieces too, from its start.
        reuse(&mut a, me);
        for tag in 10..=14 {
            a.record(tag);
        }
        assert_eq!(poll(&mut f), [10, 11, 12]);
        assert!(f.budget_reached());
        assert_eq!(poll(&mut f), [13, 14]);
        assert!(!f.budget_reached());
        assert_eq!(poll(&mut f), Vec::<u8>::new());
        assert_eq!(f.stats.records, 15);
        let _ = fs::remove_dir_all(&dir);
    }

    /// A segment larger than what one budgeted read takes from the file (budget plus
    /// the largest record): the read is shortened, records that straddle its end are
    /// left for the next poll, never seen as garbage.
    #[test]
    fn a_shortened_read_leaves_a_straddling_record_unread_not_garbage() {
        let dir = tempdir();
        let me = std::process::id();
        let max = tapline_record::MAX_RECORD_LEN as u64;
        let mut a = Seg::sized(&dir, me, 0, 4 * max);
        let mut f = SegmentFollower::new(&dir, true);
        let budget = 100_003;
        f.set_poll_budget(budget);
        // Three largest records' worth of small records: the first polls read only the
        // budget plus one largest record of the segment.
        let mut n = 0usize;
        while a.at < DATA_START + 3 * max {
            a.record((n % 251) as u8);
            n += 1;
        }
        a.fill();
        let mut seen = Vec::new();
        let mut polls = 0;
        loop {
            let got = poll(&mut f);
            assert!(!got.is_empty(), "every poll makes progress");
            assert!(got.len() as u64 * 80 < budget + 80, "{} records", got.len());
            seen.extend(got);
            polls += 1;
            if !f.budget_reached() {
                break;
            }
            assert!(polls <= 100, "no end");
        }
        let want: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        assert_eq!(seen.len(), want.len());
        assert!(seen == want, "in order, each once");
        assert_eq!(f.stats.garbage_bytes, 0);
        assert_eq!(f.stats.records as usize, n);
        assert_eq!(f.stats.recycled, 1, "handed back once read to its end");
        let _ = fs::remove_dir_all(&dir);
    }

    /// Both segments have records: one unbudgeted poll returns them oldest segment
    /// first, whatever their names.
    #[test]
    fn one_poll_returns_segments_oldest_first() {
        let dir = tempdir();
        let me = std::process::id();
        let mut late = Seg::numbered(&dir, me, 0);
        let mut early = Seg::numbered(&dir, me, 1);
        early.record(1);
        late.record(2);
        early.record(3);
        let mut f = SegmentFollower::new(&dir, false);
        assert_eq!(poll(&mut f), [1, 3, 2]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_kept_segment_is_zeroed_handed_back_and_read_again_in_its_next_epoch() {
        let dir = tempdir();
        let me = std::process::id();
        let mut seg = Seg::new(&dir, me);
        let mut f = SegmentFollower::new(&dir, true);
        seg.record(1);
        seg.record(2);
        assert_eq!(poll(&mut f), [1, 2]);
        seg.fill();
        assert_eq!(poll(&mut f), Vec::<u8>::new());
        assert_eq!(f.stats.recycled, 1);
        let h = seg.header();
        assert_eq!(h.consumed, h.epoch, "handed back");
        let mut data = vec![0u8; (h.data_end - DATA_START) as usize];
        seg.file.read_exact_at(&mut data, DATA_START).expect("read");
        assert!(data.iter().all(|&b| b == 0), "records zeroed");
        // Nothing new while the keeper has not reused it.
        assert_eq!(poll(&mut f), Vec::<u8>::new());
        assert!(seg.path.exists());

        // The keeper reuses it: reset, then a new epoch, then new records.
        seg.at = DATA_START;
        seg.u64_at(field::RESERVE, DATA_START);
        seg.u64_at(field::DATA_END, 0);
        seg.u32_at(field::WRITERS, me);
        seg.u32_at(field::STATE, State::Claimed as u32);
        seg.u32_at(field::EPOCH, h.epoch + 1);
        seg.record(3);
        assert_eq!(poll(&mut f), [3]);
        seg.record(4);
        assert_eq!(poll(&mut f), [4]);

        // Full again, handed back again; then the keeper lets it go: deleted.
        seg.fill();
        assert_eq!(poll(&mut f), Vec::<u8>::new());
        assert_eq!(f.stats.recycled, 2);
        seg.u32_at(field::KEEPER, 0);
        assert_eq!(poll(&mut f), Vec::<u8>::new());
        assert!(!seg.path.exists(), "let go and read: deleted");
        assert_eq!(f.stats.deleted, 1);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_segment_nobody_keeps_is_deleted_and_a_read_only_follower_writes_nothing() {
        let dir = tempdir();
        let mut seg = Seg::new(&dir, std::process::id());
        seg.u32_at(field::KEEPER, 0);
        seg.record(7);
        seg.fill();
        let mut reader = SegmentFollower::new(&dir, false);
        assert_eq!(poll(&mut reader), [7]);
        assert_eq!(
            seg.header().consumed,
            0,
            "a read-only follower hands nothing back"
        );
        assert!(seg.path.exists());
        let mut f = SegmentFollower::new(&dir, true);
        assert_eq!(poll(&mut f), [7]);
        assert!(!seg.path.exists());
        assert_eq!((f.stats.deleted, f.stats.recycled), (1, 0));
        let _ = fs::remove_dir_all(&dir);
    }

    /// A pid nobody has now: a child that was reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let pid = child.id();
        child.wait().expect("wait");
        pid
    }

    /// What a writer's first claim does to `free-<k>.tls`: `creator` by compare-and-swap,
    /// then (unless it dies first) the header, magic last; records follow.
    fn claim_in_place(dir: &Path, k: u32, creator: u32, header: bool) -> Seg {
        let path = dir.join(format!("free-{k}.tls"));
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open");
        file.write_all_at(&creator.to_le_bytes(), field::CREATOR as u64)
            .expect("creator");
        if header {
            file.write_all_at(&SegmentHeader::claimed(SIZE, creator, 0), 0)
                .expect("header");
        }
        Seg {
            path,
            file,
            at: DATA_START,
        }
    }

    #[test]
    fn a_segment_claimed_where_it_is_gets_its_claimed_name_and_is_read() {
        let dir = tempdir();
        let me = std::process::id();
        assert_eq!(make_free_segments(&dir, 3, SIZE).expect("make"), 3);
        // free-0: claimed and written to; free-1: claim in progress by a live writer;
        // free-2: claim of a writer that died before its header.
        let mut seg = claim_in_place(&dir, 0, me, true);
        seg.record(3);
        claim_in_place(&dir, 1, me, false);
        claim_in_place(&dir, 2, dead_pid(), false);
        // Claimed ones are not free: the reader makes new ones under other names.
        assert_eq!(make_free_segments(&dir, 2, SIZE).expect("make"), 2);
        // The batch reader reads the claimed one under its free name, nothing else.
        let spool = crate::spool::Spool::read_dir(&dir).expect("read");
        assert_eq!(spool.files.len(), 1, "{:?}", spool.files);
        assert_eq!(spool.files[0].name, "free-0.tls");
        assert!(spool.files.iter().all(|f| f.error.is_none()));
        let mut garbage = crate::spool::Spool::from_files([]);
        garbage.add_segment("1-1.tls", &[1u8; SIZE as usize]);
        assert!(
            garbage.files[0].error.is_some(),
            "garbage is still reported"
        );
        let mut f = SegmentFollower::new(&dir, true);
        assert_eq!(poll(&mut f), [3]);
        assert_eq!(f.stats.abandoned_claims, 1);
        assert!(
            dir.join(format!("{me}-0.tls")).exists(),
            "given its claimed name"
        );
        assert!(!dir.join("free-0.tls").exists() && !dir.join("free-2.tls").exists());
        assert!(
            dir.join("free-1.tls").exists(),
            "a claim in progress is left alone"
        );
        // Records after the rename reach the reader (the writer keeps its mapping).
        seg.record(4);
        assert_eq!(poll(&mut f), [4]);
        // The same pid claims again after an execve (its numbers start over).
        let mut again = claim_in_place(&dir, 1, me, true);
        again.record(9);
        assert_eq!(poll(&mut f), [9]);
        assert!(dir.join(format!("{me}-0-1.tls")).exists());
        // At shutdown only unclaimed ready-made segments are removed.
        remove_free_segments(&dir).expect("remove");
        assert!(fs::read_dir(&dir).expect("dir").all(|e| !e
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .starts_with("free-")));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn ready_made_segments_take_the_lowest_free_names_first() {
        let dir = tempdir();
        assert_eq!(make_free_segments(&dir, 2, SIZE).expect("make"), 2);
        assert!(dir.join("free-0.tls").exists() && dir.join("free-1.tls").exists());
        // A writer took free-0: the next one made fills its name again.
        fs::rename(dir.join("free-0.tls"), dir.join("1-0.tls")).expect("take");
        assert_eq!(make_free_segments(&dir, 2, SIZE).expect("make"), 1);
        assert!(dir.join("free-0.tls").exists());
        // Every predictable name taken: still made, under another free name.
        for k in 2..FREE_SLOTS {
            fs::write(dir.join(format!("free-{k}.tls")), [0u8; 4096]).expect("placeholder");
        }
        assert_eq!(
            make_free_segments(&dir, FREE_SLOTS as usize + 1, SIZE).expect("make"),
            1
        );
        let names: Vec<String> = fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names.iter().filter(|n| n.starts_with("free-")).count(),
            FREE_SLOTS as usize + 1
        );
        assert!(!names.iter().any(|n| n.starts_with(".free-")), "{names:?}");
        let _ = fs::remove_dir_all(&dir);
    }

    fn tempdir() -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tapline-segment-unit-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("dir");
        dir
    }
}
