//! Reports written as exchanges arrive: one [`ReportSink`] per format.
//!
//! Why a sink and not a function of all the exchanges: `tapline run` and
//! `tapline show --follow` print each exchange when it completes, while the program
//! runs, and must not keep what they printed (an hour of a busy service would otherwise
//! fill the machine). A sink is therefore handed exchanges one at a time, in the order
//! they completed, keeps only what its format needs between them (the table its column
//! origin, HAR whether an entry was written), and closes the report in
//! [`ReportSink::finish`], which also gets the run's [`RunSummary`] (its notices are
//! for formats that can carry them). A new format is a new sink and one arm in
//! [`open`].

use std::io::{self, Write};

use crate::exchange::Exchange;
use crate::notice::Notice;

use super::table::TableStyle;
use super::{har, json, table, Format};

/// A report written one exchange at a time.
pub(crate) trait ReportSink {
    /// Writes one exchange (already masked and cut to budget).
    fn push(&mut self, x: &Exchange) -> io::Result<()>;
    /// Writes one line of the Lambda extension's exported journal (masked when it was
    /// written); returns false for a format that does not show the journal (only the
    /// HTML page does).
    fn push_exported(
        &mut self,
        _line: &serde_json::Map<String, serde_json::Value>,
    ) -> io::Result<bool> {
        Ok(false)
    }
    /// Pushes what was written so far to its destination (once per batch, so that a
    /// reader of the report sees each exchange while the program runs).
    fn flush(&mut self) -> io::Result<()>;
    /// Closes the report (HAR's closing brackets; the table's "nothing captured").
    fn finish(&mut self, summary: &RunSummary) -> io::Result<()>;
}

/// What a run produced, counted as exchanges go by (nothing of them is kept).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RunSummary {
    pub exchanges: u64,
    /// Exchanges with an `error`.
    pub errors: u64,
    /// Bytes on the wire, request and response sides.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Records the capture library reported lost.
    pub dropped_records: u64,
    /// Exchanges of which those drops left nothing (counted, not reported).
    pub lost_exchanges: u64,
    /// The blind spots the spool named (programs the preload cannot see, objects left
    /// untouched): the table's footer lines, JSON `{"notice": ...}` lines, HAR's
    /// `log.comment`, the HTML page's head.
    pub notices: Vec<Notice>,
}

impl RunSummary {
    pub(crate) fn count(&mut self, x: &Exchange) {
        self.exchanges += 1;
        self.errors += u64::from(x.error.is_some());
        self.bytes_sent = self.bytes_sent.saturating_add(x.request_wire_bytes);
        self.bytes_received = self.bytes_received.saturating_add(x.response_wire_bytes);
    }

    /// `tapline: 3 exchanges, 1 error, 1.2 KiB sent, 4.0 KiB received, 0 notices,
    /// 0 records lost` (records the capture library dropped; when some exchanges had
    /// nothing left, `, 5 exchanges with no record left` follows).
    pub(crate) fn line(&self) -> String {
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let gone = match self.lost_exchanges {
            0 => String::new(),
            n => format!(
                ", {} with no record left",
                plural(n, "exchange", "exchanges")
            ),
        };
        format!(
            "tapline: {}, {}, {} sent, {} received, {}, {}",
            plural(self.exchanges, "exchange", "exchanges"),
            plural(self.errors, "error", "errors"),
            table::human_bytes(self.bytes_sent),
            table::human_bytes(self.bytes_received),
            plural(self.notices.len() as u64, "notice", "notices"),
            plural(self.dropped_records, "record lost", "records lost"),
        ) + &gone
    }
}

/// The sink for `format`, writing to `out`. `style` is how the table is laid out
/// (ignored by the other formats); `t0` the table's time origin (ns since the epoch),
/// or `None` for the first exchange's start.
pub(crate) fn open<'a>(
    format: Format,
    out: Box<dyn Write + Send + 'a>,
    style: TableStyle,
    t0: Option<u64>,
) -> Box<dyn ReportSink + Send + 'a> {
    match format {
        Format::Table => Box::new(table::TableSink::new(out, style, t0)),
        Format::Json => Box::new(JsonLinesSink {
            out,
            line: Vec::new(),
        }),
        Format::Har => Box::new(HarSink {
            out,
            entries: 0,
            entry: Vec::new(),
        }),
        Format::Html => Box::new(super::html::HtmlSink::new(out)),
    }
}

/// Bytes of a line buffer kept for the next line.
const LINE_KEPT: usize = 64 << 10;

/// `--format json`: one line per exchange, nothing kept.
struct JsonLinesSink<'a> {
    out: Box<dyn Write + Send + 'a>,
    /// The line being written, its allocation kept from one exchange to the next.
    line: Vec<u8>,
}

impl ReportSink for JsonLinesSink<'_> {
    fn push(&mut self, x: &Exchange) -> io::Result<()> {
        self.line.clear();
        json::write_line(x, &mut self.line)?;
        // One write per line: lines of the report never interleave with the program's
        // own stderr output mid-line.
        let written = self.out.write_all(&self.line);
        // A line that was exceptionally long does not stay in memory.
        if self.line.capacity() > LINE_KEPT {
            self.line = Vec::new();
        }
        written
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn finish(&mut self, summary: &RunSummary) -> io::Result<()> {
        for n in &summary.notices {
            let mut line = serde_json::to_vec(&n.to_json())?;
            line.push(b'\n');
            self.out.write_all(&line)?;
        }
        self.out.flush()
    }
}

/// `--format har`: the document's head, then each entry as it comes, then the closing
/// brackets; nothing kept but the count.
struct HarSink<'a> {
    out: Box<dyn Write + Send + 'a>,
    entries: u64,
    /// The entry being written, its allocation kept from one exchange to the next.
    entry: Vec<u8>,
}

impl HarSink<'_> {
    fn head(&mut self) -> io::Result<()> {
        self.out.write_all(har::DOCUMENT_HEAD.as_bytes())
    }
}

impl ReportSink for HarSink<'_> {
    fn push(&mut self, x: &Exchange) -> io::Result<()> {
        self.entry.clear();
        if self.entries == 0 {
            self.entry.extend_from_slice(har::DOCUMENT_HEAD.as_bytes());
        } else {
            self.entry.extend_from_slice(b",\n");
        }
        self.entries += 1;
        // The bytes `serde_json::to_writer_pretty(&har::entry(x))` writes.
        har::write_entry(x, 0, &mut self.entry)?;
        let written = self.out.write_all(&self.entry);
        // An entry that was exceptionally long does not stay in memory.
        if self.entry.capacity() > LINE_KEPT {
            self.entry = Vec::new();
        }
        written
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn finish(&mut self, summary: &RunSummary) -> io::Result<()> {
        if self.entries == 0 {
            self.head()?;
        }
        match har::notices_comment(&summary.notices) {
            // The entries' array closed, then the comment, then the document.
            Some(comment) => {
                self.out.write_all(b"\n    ],\n    \"comment\": ")?;
                serde_json::to_writer(&mut self.out, &comment)?;
                self.out.write_all(b"\n  }\n}\n")?;
            }
            None => self.out.write_all(har::DOCUMENT_TAIL.as_bytes())?,
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::sample;

    fn written(format: Format, exchanges: &[Exchange]) -> String {
        let mut buf = Vec::new();
        {
            let mut sink = open(format, Box::new(&mut buf), TableStyle::piped(), None);
            for x in exchanges {
                sink.push(x).unwrap();
            }
            sink.finish(&RunSummary::default()).unwrap();
        }
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn har_streamed_is_one_valid_document_whatever_the_count() {
        for n in [0, 1, 3] {
            let exchanges: Vec<Exchange> = (0..n)
                .map(|i| {
                    let mut x = sample();
                    x.seq = i;
                    x.path = Some(format!("/item/{i}"));
                    x
                })
                .collect();
            let text = written(Format::Har, &exchanges);
            let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
            assert_eq!(doc, har::to_value(&exchanges), "{n} entries");
        }
    }

    #[test]
    fn har_streamed_entries_are_the_pretty_entry_text() {
        let mut a = sample();
        a.request_headers = vec![("Cookie".into(), "a=\"1\"; b=\u{1}".into())];
        a.query = Some("x=1&y".into());
        let mut b = sample();
        b.error = Some("connection reset".into());
        b.method = None;
        let entries: Vec<String> = [&a, &b]
            .iter()
            .map(|x| serde_json::to_string_pretty(&har::entry(x)).unwrap())
            .collect();
        assert_eq!(
            written(Format::Har, &[a, b]),
            format!(
                "{}{}{}",
                har::DOCUMENT_HEAD,
                entries.join(",\n"),
                har::DOCUMENT_TAIL
            )
        );
    }

    #[test]
    fn json_lines_streamed_are_the_contract_objects() {
        let mut a = sample();
        a.error = Some("no response".into());
        let b = sample();
        let text = written(Format::Json, &[a.clone(), b.clone()]);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines, vec![json::to_value(&a), json::to_value(&b)]);
    }

    #[test]
    fn summary_line_counts_exchanges_errors_and_bytes() {
        let mut s = RunSummary::default();
        let mut a = sample();
        a.request_wire_bytes = 100;
        a.response_wire_bytes = 2048;
        let mut b = a.clone();
        b.error = Some("connection reset".into());
        s.count(&a);
        s.count(&b);
        s.dropped_records = 1;
        assert_eq!(
            s.line(),
            "tapline: 2 exchanges, 1 error, 200 B sent, 4.0 KiB received, 0 notices, \
             1 record lost"
        );
    }
}
