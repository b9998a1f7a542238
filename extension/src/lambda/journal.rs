//! The exported journal: a bounded, masked copy of what the extension reported, kept in
//! the spool directory so that `tapline show --format html DIR` can draw a spool the
//! extension consumed.
//!
//! Why a journal and not the spool: the extension hands every segment back (zeroed,
//! reused in place) and deletes record files once it has read them — that is what
//! keeps `/tmp` bounded over a sandbox's life — so after it ran, the records are gone.
//! What it reported is not: each report appends one JSON line per exchange (the
//! `--format json` object after the pipeline, so already masked and cut to budget,
//! plus `seq`, `faas.invocation_id` and `tapline.lambda.phase`) and one line per
//! invocation (`{"invocation": {...}}`: request id, start and end, outcome, trigger
//! kind — nothing from the event itself). Rule 6 holds because nothing unmasked is
//! ever written.
//!
//! Bounded on disk: `exported.ndjson` is moved to `exported.1.ndjson` (replacing the
//! previous one) once it passes the bound, so the journal holds the last one to two
//! bounds' worth ([`DEFAULT_JOURNAL_BYTES`] each, `TAPLINE_JOURNAL_BYTES` to change,
//! `0` to turn it off). A write that fails is counted and the extension goes on.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

/// The journal being written.
pub(crate) const JOURNAL: &str = "exported.ndjson";
/// The journal before the last rotation.
pub(crate) const JOURNAL_OLD: &str = "exported.1.ndjson";

/// Bytes one journal file holds before it is rotated: two files of this at most.
pub(crate) const DEFAULT_JOURNAL_BYTES: u64 = 8 << 20;

/// Appends masked report lines to the journal of a spool directory.
pub(crate) struct ExportedJournal {
    dir: PathBuf,
    max_bytes: u64,
    /// Lines that could not be written (a full or read-only `/tmp`).
    pub lost_lines: u64,
}

/// One invocation as the journal says it: what the page draws as its top bar.
pub(crate) struct JournalInvocation<'a> {
    pub request_id: &'a str,
    pub start_unix_ns: u64,
    pub end_unix_ns: u64,
    /// `response`, `error`, or `None` when the runtime's outcome was not seen.
    pub outcome: Option<&'static str>,
    /// `faas.trigger` (`http`, `pubsub`, `datasource`, `timer`, `other`).
    pub trigger: &'static str,
}

impl JournalInvocation<'_> {
    pub(crate) fn to_line(&self) -> String {
        json!({ "invocation": {
            "id": self.request_id,
            "start_unix_ns": self.start_unix_ns,
            "end_unix_ns": self.end_unix_ns,
            "outcome": self.outcome,
            "trigger": self.trigger,
        }})
        .to_string()
    }
}

impl ExportedJournal {
    /// A journal in `dir` holding about `max_bytes` per file; `None` when `max_bytes`
    /// is 0 (turned off).
    pub(crate) fn new(dir: &Path, max_bytes: u64) -> Option<Self> {
        (max_bytes > 0).then(|| ExportedJournal {
            dir: dir.to_path_buf(),
            max_bytes,
            lost_lines: 0,
        })
    }

    /// The bound from `TAPLINE_JOURNAL_BYTES` (a byte count; `0` turns the journal
    /// off), else [`DEFAULT_JOURNAL_BYTES`].
    pub(crate) fn bound_from(setting: Option<&str>) -> u64 {
        setting
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(DEFAULT_JOURNAL_BYTES)
    }

    /// Appends `lines` (each one JSON object, already masked).
    pub(crate) fn append(&mut self, lines: &[String]) {
        if lines.is_empty() {
            return;
        }
        if self.write(lines).is_err() {
            self.lost_lines += lines.len() as u64;
        }
    }

    fn write(&mut self, lines: &[String]) -> io::Result<()> {
        let path = self.dir.join(JOURNAL);
        let len = fs::symlink_metadata(&path).map_or(0, |m| m.len());
        if len >= self.max_bytes {
            fs::rename(&path, self.dir.join(JOURNAL_OLD))?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&path)?;
        let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for l in lines {
            buf.extend_from_slice(l.as_bytes());
            buf.push(b'\n');
        }
        f.write_all(&buf)
    }
}

/// An exchange's journal line: its report object plus the invocation it ran in.
pub(crate) fn exchange_line(
    mut value: Value,
    seq: u32,
    invocation: Option<&str>,
    phase: &str,
) -> String {
    if let Value::Object(map) = &mut value {
        map.insert("seq".into(), seq.into());
        if let Some(id) = invocation {
            map.insert("faas.invocation_id".into(), id.into());
        }
        map.insert("tapline.lambda.phase".into(), phase.into());
    }
    value.to_string()
}

/// The journal of `dir`, oldest line first: every line that is a JSON object (the
/// files are read as untrusted: other lines are counted, not shown). Empty when there
/// is none.
pub(crate) fn read_journal(dir: &Path) -> (Vec<Map<String, Value>>, u64) {
    let mut out = Vec::new();
    let mut unreadable = 0;
    for name in [JOURNAL_OLD, JOURNAL] {
        let Ok(f) = File::open(dir.join(name)) else {
            continue;
        };
        for line in BufReader::new(f).split(b'\n') {
            let Ok(line) = line else {
                unreadable += 1;
                break;
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Value>(&line) {
                Ok(Value::Object(map)) => out.push(map),
                _ => unreadable += 1,
            }
        }
    }
    (out, unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tapline-journal-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn lines_come_back_in_order_across_a_rotation_and_the_bound_holds() {
        let dir = tempdir("rotate");
        let mut j = ExportedJournal::new(&dir, 100).expect("on");
        for i in 0..30 {
            j.append(&[json!({ "n": i, "pad": "xxxxxxxxxxxxxxxxxxxx" }).to_string()]);
        }
        let (lines, bad) = read_journal(&dir);
        assert_eq!(bad, 0);
        let ns: Vec<u64> = lines.iter().map(|m| m["n"].as_u64().expect("n")).collect();
        // The newest lines, in order, and no more than two files' worth.
        assert_eq!(ns.last(), Some(&29));
        assert!(ns.windows(2).all(|w| w[1] == w[0] + 1), "{ns:?}");
        assert!(ns.len() < 30, "older lines rotated out: {ns:?}");
        let on_disk: u64 = [JOURNAL, JOURNAL_OLD]
            .iter()
            .map(|n| fs::metadata(dir.join(n)).map_or(0, |m| m.len()))
            .sum();
        assert!(on_disk <= 2 * (100 + 60), "{on_disk} bytes on disk");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn garbage_lines_are_counted_not_returned() {
        let dir = tempdir("garbage");
        fs::write(
            dir.join(JOURNAL),
            b"{\"a\":1}\nnot json\n[1,2]\n\n{\"b\":2}\n",
        )
        .expect("w");
        let (lines, bad) = read_journal(&dir);
        assert_eq!(lines.len(), 2);
        assert_eq!(bad, 2);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn zero_turns_it_off() {
        assert!(ExportedJournal::new(Path::new("/nonexistent"), 0).is_none());
        assert_eq!(ExportedJournal::bound_from(Some("0")), 0);
        assert_eq!(
            ExportedJournal::bound_from(Some("junk")),
            DEFAULT_JOURNAL_BYTES
        );
        assert_eq!(ExportedJournal::bound_from(None), DEFAULT_JOURNAL_BYTES);
    }
}
