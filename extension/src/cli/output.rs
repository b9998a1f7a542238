//! Where results go: the report (stderr or a file, its footer on stderr), the OTLP
//! export of `--otlp`, and the records of `show --records`.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use crate::assemble::Assembly;
use crate::exchange::Exchange;
use crate::export::{OtlpExporter, Outbox, Resource};
use crate::report::sink::RunSummary;
use crate::report::table::TableStyle;
use crate::report::{self, Format};
use crate::spool::Spool;

use super::args::{RecordsOptions, ReportOptions};
use super::error::RunError;

/// `--otlp [ENDPOINT]`: one batch of CLIENT spans; a batch that cannot be sent is kept in
/// the outbox of the default spool directory (the run's own spool is removed) and sent
/// first next time.
pub(super) fn export_otlp(endpoint: Option<&str>, exchanges: &[Exchange]) -> Result<(), RunError> {
    let outbox_home = std::env::var_os(tapline_record::settings::SPOOL_DIR.name())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(tapline_record::settings::DEFAULT_SPOOL_DIR));
    let exporter = OtlpExporter::from_env(endpoint)
        .map_err(RunError::Export)?
        .with_outbox(Outbox::new(&outbox_home));
    let resource = Resource::from_env("tapline");
    let outcome = exporter
        .export(exchanges, &resource)
        .map_err(RunError::Export)?;
    eprintln!(
        "tapline: exported {} span(s) to {}{}",
        outcome.spans,
        exporter.config().endpoint,
        if outcome.outbox_sent > 0 {
            format!(
                " (and {} kept batch(es) from the outbox)",
                outcome.outbox_sent
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

/// Where a report written as exchanges complete goes (`--output`, else stderr), and
/// how its table is laid out there: fitted to the terminal and coloured when stderr is
/// one (no colours with `NO_COLOR` set, or `TERM=dumb`), else full URLs, no colours.
pub(super) fn open_report_output(
    r: &ReportOptions,
) -> Result<(Box<dyn Write + Send>, TableStyle), RunError> {
    match &r.output {
        Some(path) => {
            let f = File::create(path).map_err(|source| RunError::Output {
                path: r.output.clone(),
                source,
            })?;
            Ok((Box::new(io::BufWriter::new(f)), TableStyle::piped()))
        }
        None => {
            let stderr = io::stderr();
            let style = if stderr.is_terminal() {
                let width = terminal_size::terminal_size_of(&stderr)
                    .map(|(w, _)| usize::from(w.0))
                    .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
                    .filter(|&w| w > 0)
                    .unwrap_or(80);
                let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
                let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
                TableStyle::terminal(width, !no_color && !dumb)
            } else {
                TableStyle::piped()
            };
            Ok((Box::new(io::BufWriter::new(stderr)), style))
        }
    }
}

/// `tapline show DIR`: the whole report at once, through the same sinks as a live one
/// (so the table fits a terminal the same way).
pub(super) fn write_report(
    r: &ReportOptions,
    spool: &Spool,
    assembly: &Assembly,
    exported: &[serde_json::Map<String, serde_json::Value>],
) -> Result<(), RunError> {
    let out_err = |source| RunError::Output {
        path: r.output.clone(),
        source,
    };
    let (out, style) = open_report_output(r)?;
    let mut sink = report::sink::open(r.format, out, style, None);
    let mut shown = 0usize;
    for line in exported {
        shown += usize::from(sink.push_exported(line).map_err(out_err)?);
    }
    if shown < exported.len() {
        eprintln!(
            "tapline: {} line(s) of the Lambda extension's exported journal not shown \
             (--format html draws them)",
            exported.len() - shown
        );
    }
    // The extension reported everything it read up to the journal's newest moment; what
    // the spool still holds from before then is either in the journal already (records
    // read from a segment not handed back yet) or a fragment of a connection whose other
    // records it consumed (a TLS socket without the facts that named its twin). Only
    // what started later, not reported yet, comes from the spool — and not the rest of a
    // connection opened before (its opening record consumed: no peer; the runtime's
    // Runtime API connection is one), nor the runtime's own calls (the journal's
    // invocation lines stand for them).
    let horizon = if shown > 0 {
        journal_horizon(exported)
    } else {
        None
    };
    for x in &assembly.exchanges {
        if let Some(h) = horizon {
            let lookup_failed = x.error.as_deref().is_some_and(|e| e.starts_with("dns:"));
            let opened_before = x.peer.is_none() && !lookup_failed;
            if x.start_unix_ns <= h || opened_before || x.runtime_api {
                continue;
            }
        }
        sink.push(x).map_err(out_err)?;
    }
    let summary = RunSummary {
        notices: assembly.notices.clone(),
        ..RunSummary::default()
    };
    sink.finish(&summary).map_err(out_err)?;
    drop(sink);
    // The footer is about the spool, not the exchanges: stderr, and not into a
    // machine-readable stream that is itself on stderr.
    if r.format == Format::Table || r.output.is_some() {
        if let Some(line) = report::footer(&assembly.totals) {
            eprintln!("{line}");
        }
    }
    for f in spool.files.iter().filter(|f| f.error.is_some()) {
        eprintln!(
            "tapline: spool file {} unreadable: {}",
            f.name,
            f.error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

/// The newest moment the exported journal speaks of: the latest end of an exchange or
/// an invocation in it.
fn journal_horizon(lines: &[serde_json::Map<String, serde_json::Value>]) -> Option<u64> {
    let num = |v: Option<&serde_json::Value>| v.and_then(serde_json::Value::as_u64);
    lines
        .iter()
        .filter_map(|l| match l.get("invocation") {
            Some(inv) => num(inv.get("end_unix_ns")),
            None => Some(
                num(l.get("start_unix_ns"))?.saturating_add(num(l.get("duration_ns")).unwrap_or(0)),
            ),
        })
        .max()
}

/// `tapline show --records DIR`: the records as JSON lines, to stdout or `--output`.
pub(super) fn write_records(o: &RecordsOptions) -> Result<(), RunError> {
    let out_err = |source| RunError::Output {
        path: o.output.clone(),
        source,
    };
    let mut out: Box<dyn Write> = match &o.output {
        Some(path) => Box::new(File::create(path).map_err(out_err)?),
        None => Box::new(io::stdout().lock()),
    };
    let mut out = io::BufWriter::new(&mut out);
    crate::spool::records::write_dir(&o.dir, &mut out).map_err(|e| match e {
        crate::spool::records::RecordsError::Spool(e) => RunError::Spool(e),
        crate::spool::records::RecordsError::Write(source) => out_err(source),
    })?;
    out.flush().map_err(out_err)
}
