//! What went wrong around the traced program, one variant per concern.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use crate::export::ExportError;
use crate::mask::MaskError;
use crate::spool::SpoolError;

/// Exit status for a command line that could not be understood.
pub const EXIT_USAGE: i32 = 2;
/// Exit status when tapline itself failed (no library, unreadable spool...).
pub(crate) const EXIT_FAILURE: i32 = 1;

/// What went wrong around the traced program.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// `libtapline.so` is not where we looked.
    #[error(
        "capture library not found at {} (put libtapline.so next to the tapline binary, or set TAPLINE_LIB)",
        .0.display()
    )]
    LibraryNotFound(PathBuf),
    /// Our own executable's path is unknown, so the library next to it cannot be found.
    #[error("cannot find the tapline executable's path: {0}")]
    NoExePath(io::Error),
    #[error("cannot create spool directory {}: {source}", dir.display())]
    SpoolDir { dir: PathBuf, source: io::Error },
    #[error("cannot run {}: {source}", program.to_string_lossy())]
    Spawn {
        program: OsString,
        source: io::Error,
    },
    #[error(transparent)]
    Spool(SpoolError),
    #[error("cannot write the report{}: {source}", to_path(path.as_deref()))]
    Output {
        path: Option<PathBuf>,
        source: io::Error,
    },
    #[error("cannot set up signal handling: {0}")]
    Signals(io::Error),
    /// `TAPLINE_MASK_REGEX` is not a valid pattern: nothing is printed unmasked.
    #[error("masking is misconfigured, no report written: {0}")]
    Mask(MaskError),
    #[error(transparent)]
    Export(ExportError),
}

/// ` to PATH`, or nothing for the default output.
fn to_path(path: Option<&Path>) -> String {
    path.map_or_else(String::new, |p| format!(" to {}", p.display()))
}
