//! The command line: `tapline run`, `tapline show`, `tapline extension`.
//!
//! Why `run` is careful the way it is: tapline wraps someone else's program and must be
//! invisible to it and to whoever called it. The program gets our stdin/stdout/stderr
//! untouched; the report goes to stderr (or a file); Ctrl-C and Ctrl-\ reach the
//! program from the terminal, so tapline survives them while the program runs and then
//! reports what it did; and tapline exits with the program's status (128+N for a
//! signal N, as shells do), so scripts behave the same with and without it.
//!
//! Errors are one enum per concern: [`UsageError`] (exit 2) for what the user typed,
//! [`RunError`] for what went wrong around the program.

mod args;
mod child;
mod error;
mod live;
mod output;
mod spool_dir;

pub use args::{parse, Invocation, UsageError, USAGE};
pub(crate) use args::{RunOptions, ShowOptions};
pub use child::preload_without_tapline;
pub use error::EXIT_USAGE;
pub(crate) use error::{RunError, EXIT_FAILURE};

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::assemble::Assembly;
use crate::exchange::Exchange;
use crate::lambda::feed::ExchangeFeed;
use crate::pipeline::Pipeline;
use crate::report;
use crate::spool::{Spool, SpoolError, SpoolTail};

use args::ReportOptions;
use child::{find_library, run_child};
use live::{LiveReport, OtlpBatches, POLL_BUDGET};
use output::{export_otlp, open_report_output, write_records, write_report};
use spool_dir::SpoolDir;

/// Runs a parsed command line; returns the process exit status.
pub fn execute(inv: Invocation) -> i32 {
    match inv {
        Invocation::Help => {
            print!("{USAGE}");
            0
        }
        Invocation::Version => {
            println!("tapline {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Invocation::Extension => crate::lambda::run(),
        Invocation::Show(o) => match show(&o) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("tapline: {e}");
                EXIT_FAILURE
            }
        },
        Invocation::Records(o) => match write_records(&o) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("tapline: {e}");
                EXIT_FAILURE
            }
        },
        Invocation::Run(o) => run(&o),
    }
}

/// `tapline show DIR` (`--follow`: tail it until Ctrl-C or SIGTERM).
pub(crate) fn show(o: &ShowOptions) -> Result<(), RunError> {
    if o.follow {
        return follow(o);
    }
    let spool = Spool::read_dir(&o.dir).map_err(RunError::Spool)?;
    let assembly = prepare(&spool)?;
    // What the Lambda extension reported from this spool before it consumed the
    // records (already masked): drawn with what the spool still holds.
    let (exported, unreadable) = crate::lambda::journal::read_journal(&o.dir);
    if unreadable > 0 {
        eprintln!("tapline: {unreadable} unreadable line(s) in the exported journal skipped");
    }
    write_report(&o.report, &spool, &assembly, &exported)
}

/// Reassembles the spool through the one [`Pipeline`]: nothing below this point
/// (reports, exports) ever sees an unmasked secret.
fn prepare(spool: &Spool) -> Result<Assembly, RunError> {
    let pipeline = Pipeline::from_env().map_err(RunError::Mask)?;
    Ok(pipeline.run(spool))
}

/// How often a followed spool is looked at.
const FOLLOW_POLL: Duration = Duration::from_millis(50);

/// `tapline show --follow DIR`: like `tail -f`, a spool that processes started
/// elsewhere write. Each exchange is printed when it completes; finished segments are
/// handed back (and record files of processes that are gone deleted), so the spool
/// stays bounded; Ctrl-C or SIGTERM ends it, with what was pending printed in its state.
fn follow(o: &ShowOptions) -> Result<(), RunError> {
    if !o.dir.is_dir() {
        return Err(RunError::Spool(SpoolError::ReadDir {
            dir: o.dir.clone(),
            source: io::Error::new(io::ErrorKind::NotFound, "not a directory"),
        }));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(RunError::Signals)?;
    }
    let pipeline = Pipeline::from_env().map_err(RunError::Mask)?;
    let (out, style) = open_report_output(&o.report)?;
    let sink = report::sink::open(o.report.format, out, style, None);
    let tail = SpoolTail::new(&o.dir).with_poll_budget(POLL_BUDGET);
    let mut live = LiveReport::new(ExchangeFeed::with_tail(tail), pipeline, sink, true, None);
    while !stop.load(Ordering::SeqCst) {
        live.poll();
        std::thread::sleep(FOLLOW_POLL);
    }
    finish_live(&o.report, live)
}

/// Closes a live report: the summary line and what was lost, on stderr.
fn finish_live(r: &ReportOptions, live: LiveReport<'_>) -> Result<(), RunError> {
    let outcome = live.finish();
    // With the report on stderr, it ends with the summary line; with `--output`, stderr
    // stays the program's own (nothing is added unless something was lost).
    if r.output.is_none() {
        eprintln!("{}", outcome.summary.line());
    }
    // What was lost in detail; not into a machine-readable stream that is on stderr
    // too (the summary line counts the dropped records either way).
    if r.format == report::Format::Table || r.output.is_some() {
        if let Some(line) = report::footer(&outcome.totals) {
            eprintln!("{line}");
        }
    }
    match outcome.write_error {
        Some(source) => Err(RunError::Output {
            path: r.output.clone(),
            source,
        }),
        None => Ok(()),
    }
}

/// `tapline run`: returns CMD's exit status (or ours when CMD could not run).
pub(crate) fn run(o: &RunOptions) -> i32 {
    let lib = match find_library() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tapline: {e}");
            return EXIT_FAILURE;
        }
    };
    let spool = match SpoolDir::create(o.spool_dir.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tapline: {e}");
            return EXIT_FAILURE;
        }
    };
    // A report that cannot be made (a bad mask pattern, an output that cannot be
    // created) does not stop the program: it runs as it would without tapline.
    let live = match live_report(o, &spool.path) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("tapline: {e}");
            None
        }
    };
    let (status, live) = match run_child(o, &lib, &spool.path, live) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tapline: {e}");
            let code = match &e {
                RunError::Spawn { source, .. } if source.kind() == io::ErrorKind::NotFound => 127,
                RunError::Spawn { .. } => 126,
                _ => EXIT_FAILURE,
            };
            if !o.keep_spool {
                spool.remove();
            }
            return code;
        }
    };
    if let Some(live) = live {
        // The program's status still wins: tapline must not change what a script sees.
        if let Err(e) = finish_live(&o.report, live) {
            eprintln!("tapline: {e}");
        }
    }
    if o.keep_spool {
        eprintln!("tapline: spool kept in {}", spool.path.display());
    } else {
        spool.remove();
    }
    status
}

/// The report of `tapline run`, written while the program runs. With `--keep-spool`
/// the spool is read without handing anything back (it stays as written).
fn live_report(o: &RunOptions, spool_dir: &Path) -> Result<LiveReport<'static>, RunError> {
    let pipeline = Pipeline::from_env().map_err(RunError::Mask)?;
    let (out, style) = open_report_output(&o.report)?;
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let sink = report::sink::open(o.report.format, out, style, Some(started));
    let feed = if o.keep_spool {
        ExchangeFeed::with_tail(SpoolTail::keeping(spool_dir).with_poll_budget(POLL_BUDGET))
    } else {
        ExchangeFeed::with_tail(SpoolTail::new(spool_dir).with_poll_budget(POLL_BUDGET))
    };
    let otlp = o.otlp.clone().map(|endpoint| {
        OtlpBatches::new(Box::new(move |batch: &[Exchange]| {
            if let Err(e) = export_otlp(endpoint.as_deref(), batch) {
                eprintln!("tapline: otlp: {e}");
            }
        }))
    });
    Ok(LiveReport::new(feed, pipeline, sink, !o.keep_spool, otlp))
}
