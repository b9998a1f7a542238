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
mod output;
mod spool_dir;

pub use args::{parse, Invocation, UsageError, USAGE};
pub(crate) use args::{RunOptions, ShowOptions};
pub use child::preload_without_tapline;
pub use error::EXIT_USAGE;
pub(crate) use error::{RunError, EXIT_FAILURE};

use std::io;

use crate::assemble::Assembly;
use crate::pipeline::Pipeline;
use crate::spool::Spool;

use child::{find_library, run_child};
use output::{export_otlp, write_records, write_report};
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

/// `tapline show DIR`.
pub(crate) fn show(o: &ShowOptions) -> Result<(), RunError> {
    let spool = Spool::read_dir(&o.dir).map_err(RunError::Spool)?;
    let assembly = prepare(&spool)?;
    write_report(&o.report, &spool, &assembly)
}

/// Reassembles the spool through the one [`Pipeline`]: nothing below this point
/// (reports, exports) ever sees an unmasked secret.
fn prepare(spool: &Spool) -> Result<Assembly, RunError> {
    let pipeline = Pipeline::from_env().map_err(RunError::Mask)?;
    Ok(pipeline.run(spool))
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
    let (status, followed) = match run_child(o, &lib, &spool.path) {
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
    let read = match followed {
        Some(f) => f.into_spool(&spool.path),
        None => Spool::read_dir(&spool.path),
    };
    let report = read.map_err(RunError::Spool).and_then(|s| {
        let assembly = prepare(&s)?;
        write_report(&o.report, &s, &assembly)?;
        Ok(assembly)
    });
    match report {
        Ok(assembly) => {
            if let Some(endpoint) = &o.otlp {
                if let Err(e) = export_otlp(endpoint.as_deref(), &assembly.exchanges) {
                    eprintln!("tapline: otlp: {e}");
                }
            }
        }
        // The program's status still wins: tapline must not change what a script sees.
        Err(e) => eprintln!("tapline: {e}"),
    }
    if o.keep_spool {
        eprintln!("tapline: spool kept in {}", spool.path.display());
    } else {
        spool.remove();
    }
    status
}
