//! What went wrong around the traced program, one variant per concern.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::export::ExportError;
use crate::mask::MaskError;
use crate::spool::SpoolError;

/// What went wrong around the traced program.
#[derive(Debug)]
pub enum RunError {
    /// `libtapline.so` is not where we looked.
    LibraryNotFound(PathBuf),
    /// Our own executable's path is unknown, so the library next to it cannot be found.
    NoExePath(io::Error),
    SpoolDir {
        dir: PathBuf,
        source: io::Error,
    },
    Spawn {
        program: OsString,
        source: io::Error,
    },
    Spool(SpoolError),
    Output {
        path: Option<PathBuf>,
        source: io::Error,
    },
    Signals(io::Error),
    /// `TAPLINE_MASK_REGEX` is not a valid pattern: nothing is printed unmasked.
    Mask(MaskError),
    Export(ExportError),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::LibraryNotFound(p) => write!(
                f,
                "capture library not found at {} (put libtapline.so next to the tapline binary, or set TAPLINE_LIB)",
                p.display()
            ),
            RunError::NoExePath(e) => write!(f, "cannot find the tapline executable's path: {e}"),
            RunError::SpoolDir { dir, source } => {
                write!(f, "cannot create spool directory {}: {source}", dir.display())
            }
            RunError::Spawn { program, source } => {
                write!(f, "cannot run {}: {source}", program.to_string_lossy())
            }
            RunError::Spool(e) => e.fmt(f),
            RunError::Mask(e) => write!(f, "masking is misconfigured, no report written: {e}"),
            RunError::Export(e) => e.fmt(f),
            RunError::Output { path: Some(p), source } => {
                write!(f, "cannot write the report to {}: {source}", p.display())
            }
            RunError::Output { path: None, source } => write!(f, "cannot write the report: {source}"),
            RunError::Signals(e) => write!(f, "cannot set up signal handling: {e}"),
        }
    }
}

impl std::error::Error for RunError {}
