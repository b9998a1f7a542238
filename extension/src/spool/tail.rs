//! The incremental reader: what a spool directory gained since the last look.
//!
//! Why it differs from the batch reader: the writers still run. A record file is read
//! from a byte cursor and a record still being appended (a short frame, or zeros where
//! its bytes will be) is left for the next read; shared segments are followed by a
//! [`SegmentFollower`], which returns records as they are committed and hands finished
//! segments back for reuse (or deletes them), so a long run stays within a few segments.
//! Every record is decoded by the same [`FileStats::decoded`] as in the batch reader.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tapline_record::{Item, ParseError, RecordIter, MAGIC};

use super::batch::{FileStats, SpoolEntry};
use super::files::{file_names, SpoolError};
use super::segment::{SegmentFollower, SegmentStats};

/// Most bytes read from one file in one round (the rest waits for the next round).
const MAX_READ: u64 = 64 << 20;

/// Where the reader is in one record file.
struct FileCursor {
    /// Bytes consumed (whole records, or skipped garbage).
    offset: u64,
    /// Index into [`SpoolTail::files`].
    file: usize,
}

/// Incremental reader of a spool directory: record files and shared segments.
pub(crate) struct SpoolTail {
    dir: PathBuf,
    cursors: BTreeMap<String, FileCursor>,
    segments: SegmentFollower,
    /// Segment name → index into `files`.
    segment_files: HashMap<String, usize>,
    /// Every file read so far, in the order first read; [`super::RecordMeta::file`]
    /// indexes this.
    files: Vec<FileStats>,
    /// Bytes skipped (garbage, torn writes, holes of dead writers), over the life of
    /// the tail.
    pub skipped_bytes: u64,
}

impl SpoolTail {
    /// Follows the record files and segments of `dir`, handing finished segments back.
    pub(crate) fn new(dir: &Path) -> Self {
        SpoolTail {
            dir: dir.to_path_buf(),
            cursors: BTreeMap::new(),
            segments: SegmentFollower::new(dir, true),
            segment_files: HashMap::new(),
            files: Vec::new(),
            skipped_bytes: 0,
        }
    }

    /// Follows the record files and segments of `dir` and leaves them as written
    /// (`tapline run --keep-spool`: nothing is handed back or deleted).
    pub(crate) fn keeping(dir: &Path) -> Self {
        let mut tail = Self::new(dir);
        tail.segments = SegmentFollower::new(dir, false);
        tail
    }

    /// Each read returns about `bytes` of segment records at most (whole segments, in
    /// fill order: see [`SegmentFollower::set_poll_budget`]); [`SpoolTail::more_waiting`]
    /// says when a read stopped there.
    pub(crate) fn with_poll_budget(mut self, bytes: u64) -> Self {
        self.segments.set_poll_budget(bytes);
        self
    }

    /// The last read stopped at its budget: more is waiting.
    pub(crate) fn more_waiting(&self) -> bool {
        self.segments.budget_reached()
    }

    /// Appends to `out` the records written since the last call; returns how many.
    pub(crate) fn read_new(&mut self, out: &mut Vec<SpoolEntry>) -> Result<usize, SpoolError> {
        let before = out.len();
        for name in file_names(&self.dir, false)? {
            self.read_file(&name, out);
        }
        self.read_segments(out);
        Ok(out.len() - before)
    }

    /// The files read so far.
    pub(crate) fn files(&self) -> &[FileStats] {
        &self.files
    }

    /// What reading the shared segments met so far (records, holes, segments handed
    /// back for reuse or deleted).
    pub(crate) fn segment_stats(&self) -> SegmentStats {
        self.segments.stats
    }

    /// Records committed to shared segments since the last call.
    fn read_segments(&mut self, out: &mut Vec<SpoolEntry>) {
        let files = &mut self.files;
        let indexes = &mut self.segment_files;
        let skipped_before = self.segments.stats.garbage_bytes + self.segments.stats.hole_bytes;
        let polled = self.segments.poll(&mut |name, record| {
            let file = *indexes.entry(name.to_string()).or_insert_with(|| {
                files.push(FileStats::named(name));
                files.len() - 1
            });
            out.extend(files[file].decoded(&record.header, record.payload, file));
        });
        if polled.is_ok() {
            self.skipped_bytes +=
                self.segments.stats.garbage_bytes + self.segments.stats.hole_bytes - skipped_before;
        }
    }

    /// Records appended to one record file since the last call.
    fn read_file(&mut self, name: &str, out: &mut Vec<SpoolEntry>) {
        let Ok(mut f) = std::fs::File::open(self.dir.join(name)) else {
            return;
        };
        let len = f.metadata().map_or(0, |m| m.len());
        let files = &mut self.files;
        let cursor = self.cursors.entry(name.to_string()).or_insert_with(|| {
            files.push(FileStats::named(name));
            FileCursor {
                offset: 0,
                file: files.len() - 1,
            }
        });
        if len <= cursor.offset {
            return;
        }
        let want = (len - cursor.offset).min(MAX_READ);
        let mut buf = Vec::with_capacity(want as usize);
        if f.seek(SeekFrom::Start(cursor.offset)).is_err()
            || f.take(want).read_to_end(&mut buf).is_err()
        {
            return;
        }
        let stats = &mut files[cursor.file];
        let mut it = RecordIter::new(&buf);
        let mut skipped = 0u64;
        for item in it.by_ref() {
            match item {
                Item::Record { record, .. } => {
                    out.extend(stats.decoded(&record.header, record.payload, cursor.file));
                }
                Item::Skipped { len, .. } => {
                    stats.skipped_stretches += 1;
                    skipped += len as u64;
                }
            }
        }
        let mut consumed = it.position() as u64;
        if let Some((at, ParseError::Uncommitted)) = it.stopped_at() {
            // Zero bytes in a plain file: a torn write. Skip to the next record start.
            let rest = &buf[at..];
            let next = rest
                .windows(4)
                .position(|w| w == MAGIC.to_le_bytes())
                .unwrap_or(rest.len().saturating_sub(3));
            skipped += next as u64;
            consumed = (at + next) as u64;
        }
        stats.skipped_bytes += skipped;
        self.skipped_bytes += skipped;
        cursor.offset += consumed;
    }

    /// Deletes record files that are read to the end and will not grow: the same
    /// process has moved on to a later file, or the process is gone. Their records
    /// live on with whoever took them.
    pub(crate) fn delete_consumed(&mut self) {
        let mut latest: HashMap<&str, u64> = HashMap::new();
        for name in self.cursors.keys() {
            if let Some((pid, seq)) = pid_seq(name) {
                let s = latest.entry(pid).or_insert(seq);
                *s = (*s).max(seq);
            }
        }
        let mut gone = Vec::new();
        for (name, c) in &self.cursors {
            let path = self.dir.join(name);
            let Ok(meta) = std::fs::metadata(&path) else {
                gone.push(name.clone());
                continue;
            };
            if meta.len() != c.offset {
                continue;
            }
            let finished = match pid_seq(name) {
                Some((pid, seq)) => {
                    latest.get(pid).is_some_and(|&l| l > seq)
                        || !Path::new("/proc").join(pid).exists()
                }
                None => false,
            };
            if finished && std::fs::remove_file(&path).is_ok() {
                gone.push(name.clone());
            }
        }
        for name in gone {
            self.cursors.remove(&name);
        }
    }
}

fn pid_seq(name: &str) -> Option<(&str, u64)> {
    let (pid, seq) = name.strip_suffix(".tlr")?.split_once('-')?;
    pid.parse::<u32>().ok()?;
    Some((pid, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::SpoolRecord;
    use tapline_record::{Drops, Header, RecordType};

    /// One framed `Drops` record counting `n`.
    fn drops(n: u64) -> Vec<u8> {
        let payload = Drops {
            records: n,
            bytes: 0,
        }
        .encode();
        let mut h = Header::new(RecordType::Drops, payload.len(), n, n);
        h.pid = std::process::id();
        let (head, pad) = h.seal(&[&payload]);
        let mut out = head.to_vec();
        out.extend_from_slice(&payload);
        out.resize(out.len() + pad, 0);
        out
    }

    fn counts(entries: &[SpoolEntry]) -> Vec<u64> {
        entries
            .iter()
            .map(|e| match &e.record {
                SpoolRecord::Drops(d) => d.records,
                other => panic!("not a Drops record: {other:?}"),
            })
            .collect()
    }

    fn tempdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tapline-tail-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn a_record_being_appended_is_read_once_it_is_whole() {
        let dir = tempdir("append");
        let path = dir.join("1-0.tlr");
        let (a, b) = (drops(1), drops(2));
        let mut bytes = a.clone();
        bytes.extend_from_slice(&b[..20]);
        std::fs::write(&path, &bytes).expect("write");
        let mut tail = SpoolTail::new(&dir);
        let mut out = Vec::new();
        assert_eq!(tail.read_new(&mut out).expect("read"), 1);
        assert_eq!(counts(&out), [1]);
        bytes.extend_from_slice(&b[20..]);
        bytes.extend_from_slice(&drops(3));
        std::fs::write(&path, &bytes).expect("write");
        assert_eq!(tail.read_new(&mut out).expect("read"), 2);
        assert_eq!(counts(&out), [1, 2, 3]);
        assert_eq!(tail.read_new(&mut out).expect("read"), 0);
        let indexes: Vec<usize> = out.iter().map(|e| e.meta.index).collect();
        assert_eq!(indexes, [0, 1, 2]);
        assert_eq!(tail.files()[0].records, 3);
        assert_eq!(tail.skipped_bytes, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn zeros_in_a_record_file_are_skipped_to_the_next_record() {
        let dir = tempdir("zeros");
        let mut bytes = drops(1);
        bytes.extend_from_slice(&[0u8; 64]);
        bytes.extend_from_slice(&drops(2));
        std::fs::write(dir.join("1-0.tlr"), &bytes).expect("write");
        let mut tail = SpoolTail::new(&dir);
        let mut out = Vec::new();
        while tail.read_new(&mut out).expect("read") > 0 {}
        assert_eq!(counts(&out), [1, 2]);
        assert_eq!(tail.skipped_bytes, 64);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
