//! Reports: pure functions from exchanges to bytes on a writer, written all at once
//! ([`write`]) or one exchange at a time as they complete ([`sink::ReportSink`], what
//! `tapline run`, `tapline show` and `tapline show --follow` use; the HTML page is one
//! of them, `html::HtmlReport`).
//!
//! Why pure: masking and size budgets are stages of their own that run before any
//! report, so a report must not look anywhere but at the exchanges it is given (no
//! spool, no environment). The footer about lost records is separate for the same
//! reason: it is about the spool, not the exchanges, and goes to stderr.

use std::io::{self, Write};

use crate::assemble::Totals;
use crate::exchange::Exchange;

pub(crate) mod har;
pub(crate) mod html;
pub(crate) mod json;
pub(crate) mod sink;
pub(crate) mod table;

/// The `--format` choices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// One line per exchange, for people.
    #[default]
    Table,
    /// One JSON object per line, the fields of the JSON contract.
    Json,
    /// HAR 1.2, one JSON document.
    Har,
    /// One self-contained HTML page: a waterfall with details (`report/html/`).
    Html,
}

/// `--format` named something else.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {0:?} (expected table, json, har or html)")]
pub struct UnknownFormat(pub String);

impl std::str::FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(Format::Table),
            "json" | "jsonl" => Ok(Format::Json),
            "har" => Ok(Format::Har),
            "html" => Ok(Format::Html),
            other => Err(UnknownFormat(other.to_owned())),
        }
    }
}

/// Writes the exchanges in `format`.
pub(crate) fn write(format: Format, exchanges: &[Exchange], out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Table => table::write(exchanges, out),
        Format::Json => json::write(exchanges, out),
        Format::Har => har::write(exchanges, out),
        Format::Html => html::write(exchanges, out),
    }
}

/// One line saying what was lost or skipped while reading the spool, if anything was.
pub(crate) fn footer(totals: &Totals) -> Option<String> {
    if !totals.anything_lost() {
        return None;
    }
    let mut parts = Vec::new();
    if totals.dropped_records > 0 {
        parts.push(format!(
            "{} records ({} bytes) dropped by the capture library",
            totals.dropped_records, totals.dropped_bytes
        ));
    }
    if totals.skipped_bytes > 0 {
        parts.push(format!(
            "{} corrupt bytes skipped in {} places",
            totals.skipped_bytes, totals.skipped_stretches
        ));
    }
    if totals.undecodable_records > 0 {
        parts.push(format!(
            "{} records not understood",
            totals.undecodable_records
        ));
    }
    if totals.unreadable_files > 0 {
        parts.push(format!(
            "{} spool files unreadable",
            totals.unreadable_files
        ));
    }
    Some(format!("tapline: {}", parts.join("; ")))
}
