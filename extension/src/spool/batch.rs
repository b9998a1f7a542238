//! The batch reader: every file of a spool read whole, after the writers are gone,
//! each record decoded once into a [`SpoolRecord`].

use std::path::Path;

use tapline_record::{Header, Item, RecordIter};

use super::files::{file_names, SpoolError};
use super::record::{decode, SpoolRecord};
use super::segment;

/// The header fields every record carries, minus the framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordMeta {
    pub wall_ns: u64,
    pub mono_ns: u64,
    pub pid: u32,
    pub tid: u32,
    /// 0 for records about the process rather than a connection.
    pub conn_id: u64,
    /// Index of the file in [`Spool::files`].
    pub file: usize,
    /// Position of the record within its file (0 for the first readable record).
    pub index: usize,
}

impl RecordMeta {
    /// The metadata of a record with this header, at `index` in file `file`.
    pub fn new(h: &Header, file: usize, index: usize) -> Self {
        RecordMeta {
            wall_ns: h.wall_ns,
            mono_ns: h.mono_ns,
            pid: h.pid,
            tid: h.tid,
            conn_id: h.conn_id,
            file,
            index,
        }
    }
}

/// A record and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolEntry {
    pub meta: RecordMeta,
    pub record: SpoolRecord,
}

impl SpoolEntry {
    /// The one decoding of a framed record, by every reader: `None` when its payload
    /// does not decode (the caller counts it in [`FileStats::undecodable`]). A `DataEnd`
    /// is two entries, its `Data` then its `MsgEnd`, with the one record's meta.
    pub fn decode(
        h: &Header,
        payload: &[u8],
        file: usize,
        index: usize,
    ) -> Option<(SpoolEntry, Option<SpoolEntry>)> {
        let meta = RecordMeta::new(h, file, index);
        let (first, second) = decode(h.rtype, payload)?;
        Some((
            SpoolEntry {
                meta,
                record: first,
            },
            second.map(|record| SpoolEntry { meta, record }),
        ))
    }
}

/// What reading one file met.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    /// File name within the spool directory.
    pub name: String,
    /// Records decoded.
    pub records: u64,
    /// Stretches of bytes that were not a readable record (torn, corrupt, garbage).
    pub skipped_stretches: u64,
    pub skipped_bytes: u64,
    /// Well-framed records whose payload did not decode (unknown type or enum value,
    /// payload too short for its type).
    pub undecodable: u64,
    /// The file could not be read at all.
    pub error: Option<String>,
}

impl FileStats {
    pub(super) fn named(name: &str) -> FileStats {
        FileStats {
            name: name.to_owned(),
            ..FileStats::default()
        }
    }

    /// Counts one framed record; returns its entries (none when it did not decode).
    pub(super) fn decoded(
        &mut self,
        h: &Header,
        payload: &[u8],
        file: usize,
    ) -> impl Iterator<Item = SpoolEntry> {
        let index = (self.records + self.undecodable) as usize;
        let entry = SpoolEntry::decode(h, payload, file, index);
        match entry {
            Some(_) => self.records += 1,
            None => self.undecodable += 1,
        }
        entry
            .into_iter()
            .flat_map(|(first, second)| std::iter::once(first).chain(second))
    }
}

/// All records of a spool, in file order then record order.
#[derive(Clone, Debug, Default)]
pub struct Spool {
    pub files: Vec<FileStats>,
    pub entries: Vec<SpoolEntry>,
}

impl Spool {
    /// Reads every `*.tlr` file and every claimed segment (`<pid>-<seq>.tls`) of `dir`
    /// (other files and subdirectories are ignored). A segment contributes its
    /// committed records; what dead writers left uncommitted is counted as skipped.
    ///
    /// Only failing to list the directory is an error; a file that cannot be read is
    /// reported in its [`FileStats::error`] and the others are still read.
    pub fn read_dir(dir: &Path) -> Result<Spool, SpoolError> {
        Self::read_dir_with(dir, true)
    }

    /// [`Spool::read_dir`] without the segments (their records were read as they were
    /// written, by a [`SpoolTail`]).
    pub fn read_dir_files(dir: &Path) -> Result<Spool, SpoolError> {
        Self::read_dir_with(dir, false)
    }

    fn read_dir_with(dir: &Path, segments: bool) -> Result<Spool, SpoolError> {
        let mut spool = Spool::default();
        for name in file_names(dir, segments)? {
            match std::fs::read(dir.join(&name)) {
                Ok(bytes) if segment::is_segment_name(&name) || segment::is_free_name(&name) => {
                    spool.add_segment(&name, &bytes)
                }
                Ok(bytes) => spool.add_file(&name, &bytes),
                Err(e) => spool.files.push(FileStats {
                    error: Some(e.to_string()),
                    ..FileStats::named(&name)
                }),
            }
        }
        Ok(spool)
    }

    /// Reads in-memory files, in the order given (tests and fuzzing use this).
    pub fn from_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Spool {
        let mut spool = Spool::default();
        for (name, bytes) in files {
            spool.add_file(name, bytes);
        }
        spool
    }

    /// Appends the committed records of one segment file's bytes.
    pub fn add_segment(&mut self, name: &str, bytes: &[u8]) {
        let contents = segment::read_segment(bytes);
        if contents.unwritten {
            // Ready-made and not claimed, or claimed and not set up yet: no record, no
            // damage.
            return;
        }
        self.add_file(name, &contents.frames);
        if let Some(stats) = self.files.last_mut() {
            let s = contents.stats;
            stats.skipped_stretches += s.holes + u64::from(s.garbage_bytes > 0) + s.corrupt;
            stats.skipped_bytes += s.hole_bytes + s.garbage_bytes;
            if !contents.valid {
                stats.error = Some("not a tapline segment".into());
            }
        }
    }

    /// Appends the records of one file.
    pub fn add_file(&mut self, name: &str, bytes: &[u8]) {
        let file = self.files.len();
        let mut stats = FileStats::named(name);
        for item in RecordIter::skipping_zeros(bytes) {
            match item {
                Item::Skipped { len, .. } => {
                    stats.skipped_stretches += 1;
                    stats.skipped_bytes += len as u64;
                }
                Item::Record { record, .. } => {
                    let decoded = stats.decoded(&record.header, record.payload, file);
                    self.entries.extend(decoded);
                }
            }
        }
        self.files.push(stats);
    }

    /// Appends another spool's files and records after this one's (its file indexes
    /// shifted to follow).
    pub fn append(&mut self, other: Spool) {
        let base = self.files.len();
        self.files.extend(other.files);
        self.entries.extend(other.entries.into_iter().map(|mut e| {
            e.meta.file += base;
            e
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapline_record as rec;
    use tapline_record::{Direction, Part, RecordType};

    /// One framed record (version 2, as a record file holds it).
    fn framed(t: RecordType, parts: &[&[u8]]) -> Vec<u8> {
        let len = parts.iter().map(|p| p.len()).sum();
        let mut h = Header::new(t, len, 11, 22);
        h.pid = 7;
        h.tid = 8;
        h.conn_id = 9;
        let (head, pad) = h.seal(parts);
        let mut out = head.to_vec();
        for p in parts {
            out.extend_from_slice(p);
        }
        out.extend_from_slice(Header::padding(pad));
        out
    }

    #[test]
    fn a_data_end_reads_as_its_data_then_its_end() {
        let d = rec::Data {
            dir: Direction::Ingress,
            part: Part::Body,
            flags: 0,
            msg_seq: 2,
            offset: 0,
            len: 5,
        };
        let e = rec::MsgEnd {
            dir: Direction::Ingress,
            flags: 0,
            msg_seq: 2,
            head_len: 38,
            body_len: 5,
            wire_len: 43,
            start_wall_ns: 10,
            start_mono_ns: 20,
            status: 200,
        };
        let mut pair = framed(RecordType::Data, &[&d.encode(), b"hello"]);
        pair.extend(framed(RecordType::MsgEnd, &[&e.encode()]));
        let one = framed(RecordType::DataEnd, &[&d.encode(), &e.encode(), b"hello"]);
        let pair = Spool::from_files([("1-0.tlr", &pair[..])]);
        let one = Spool::from_files([("1-0.tlr", &one[..])]);
        let records = |s: &Spool| -> Vec<(SpoolRecord, u64, u32, u64)> {
            let e = s.entries.iter();
            e.map(|e| (e.record.clone(), e.meta.mono_ns, e.meta.tid, e.meta.conn_id))
                .collect()
        };
        assert_eq!(records(&one), records(&pair));
        assert_eq!(
            records(&one).iter().map(|r| &r.0).collect::<Vec<_>>(),
            [
                &SpoolRecord::Data(d, b"hello".to_vec()),
                &SpoolRecord::MsgEnd(e)
            ]
        );
        // One record read, counted once; its two entries share its place in the file.
        assert_eq!((one.files[0].records, one.files[0].undecodable), (1, 0));
        assert!(one.entries.iter().all(|e| e.meta.index == 0));
        // A direction this build does not know: the record is left out whole.
        let mut bad = e;
        bad.dir = 7.into();
        let bad = framed(RecordType::DataEnd, &[&d.encode(), &bad.encode(), b"hello"]);
        let bad = Spool::from_files([("1-0.tlr", &bad[..])]);
        assert!(bad.entries.is_empty());
        assert_eq!(bad.files[0].undecodable, 1);
    }
}
