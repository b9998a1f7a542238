//! The reading edge: the one place where spool bytes become typed records.
//!
//! Why a module of its own: spool bytes are untrusted input (a process may have been
//! killed mid-write, a disk may have filled up, anyone who can write the directory can
//! put anything there). Frames are checked by [`tapline_record::RecordIter`] (plain
//! `*.tlr` files) or walked by [`segment`] (shared `*.tls` segments), which skip torn or
//! corrupt stretches; each payload is then decoded once ([`SpoolEntry::decode`]) into a
//! [`SpoolRecord`]. A record that does not decode is counted and left out; nothing
//! downstream ever sees raw bytes it would have to re-check.
//!
//! Three ways in, one decoding:
//! - [`Spool::read_dir`], the batch reader: every file read whole, after the writers
//!   are gone (`tapline show`; `tapline run` for its record files). Zero words are
//!   garbage to skip (`RecordIter::skipping_zeros`), not "end of committed data".
//! - [`SpoolTail`], the incremental reader: each file from where it stopped, segments
//!   as their records are committed (`tapline run` while the program runs, the Lambda
//!   extension between invocations).
//! - [`records`]: the records themselves as JSON lines (`tapline show --records`).

mod record;
pub mod records;
pub mod segment;
mod tail;

use std::io;
use std::path::{Path, PathBuf};

use tapline_record::{Header, Item, RecordIter};

pub use record::{decode, socket_addr, SpoolRecord};
pub use tail::SpoolTail;

/// Why a spool directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The directory itself could not be listed.
    #[error("cannot read spool directory {}: {source}", dir.display())]
    ReadDir { dir: PathBuf, source: io::Error },
}

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
    fn named(name: &str) -> FileStats {
        FileStats {
            name: name.to_owned(),
            ..FileStats::default()
        }
    }

    /// Counts one framed record; returns its entry when it decoded.
    fn decoded(&mut self, h: &Header, payload: &[u8], file: usize) -> Option<SpoolEntry> {
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

/// Is `name` a plain record file (`*.tlr`)?
pub fn is_record_file_name(name: &str) -> bool {
    name.ends_with(".tlr")
}

/// The spool files of `dir` in reading order: record files, and claimed segments when
/// `segments` (regular files only; other names and subdirectories are ignored).
pub fn file_names(dir: &Path, segments: bool) -> Result<Vec<String>, SpoolError> {
    let err = |source| SpoolError::ReadDir {
        dir: dir.to_owned(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let wanted = is_record_file_name(&name) || (segments && segment::is_segment_name(&name));
        if wanted && entry.file_type().is_ok_and(|t| t.is_file()) {
            names.push(name);
        }
    }
    names.sort_by_key(|n| file_order(n));
    Ok(names)
}

/// Sort key for spool file names: `<pid>-<seq>.tlr` numerically, anything else after,
/// by name. Reading order matters only as a tie-break after monotonic time.
fn file_order(name: &str) -> (u8, u64, u64, String) {
    let stem = name.strip_suffix(".tlr").unwrap_or(name);
    let stem = stem.strip_suffix(".tls").unwrap_or(stem);
    if let Some((pid, seq)) = stem.split_once('-') {
        if let (Ok(pid), Ok(seq)) = (pid.parse::<u64>(), seq.parse::<u64>()) {
            return (0, pid, seq, String::new());
        }
    }
    (1, 0, 0, name.to_owned())
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
                Ok(bytes) if segment::is_segment_name(&name) => spool.add_segment(&name, &bytes),
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

    #[test]
    fn spool_file_names_sort_by_pid_then_seq() {
        let mut names = vec!["20-1.tlr", "3-10.tlr", "3-2.tlr", "junk.tlr", "100-0.tlr"];
        names.sort_by_key(|n| file_order(n));
        assert_eq!(
            names,
            vec!["3-2.tlr", "3-10.tlr", "20-1.tlr", "100-0.tlr", "junk.tlr"]
        );
    }
}
