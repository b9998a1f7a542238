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
    /// does not decode (the caller counts it in [`FileStats::undecodable`]).
    pub fn decode(h: &Header, payload: &[u8], file: usize, index: usize) -> Option<SpoolEntry> {
        Some(SpoolEntry {
            meta: RecordMeta::new(h, file, index),
            record: decode(h.rtype, payload)?,
        })
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

    /// Counts one framed record; returns its entry when it decoded.
    pub(super) fn decoded(
        &mut self,
        h: &Header,
        payload: &[u8],
        file: usize,
    ) -> Option<SpoolEntry> {
        let index = (self.records + self.undecodable) as usize;
        let entry = SpoolEntry::decode(h, payload, file, index);
        match entry {
            Some(_) => self.records += 1,
            None => self.undecodable += 1,
        }
        entry
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
