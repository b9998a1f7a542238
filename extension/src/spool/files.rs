//! Spool file names: which files are records (`*.tlr`) or claimed segments (`*.tls`),
//! and the order they are read in. A leaf: every reader of the spool asks it.

use std::io;
use std::path::{Path, PathBuf};

use tapline_record::segment::SUFFIX;

/// Why a spool directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The directory itself could not be listed.
    #[error("cannot read spool directory {}: {source}", dir.display())]
    ReadDir { dir: PathBuf, source: io::Error },
}

/// Is `name` a claimed segment (not a ready-made one, not one being set up)?
pub fn is_segment_name(name: &str) -> bool {
    name.ends_with(SUFFIX) && name.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

/// Is `name` a ready-made segment's (`free-*.tls`)?
pub(crate) fn is_free_name(name: &str) -> bool {
    name.starts_with(tapline_record::segment::FREE_PREFIX) && name.ends_with(SUFFIX)
}

/// Is `name` a plain record file (`*.tlr`)?
pub(crate) fn is_record_file_name(name: &str) -> bool {
    name.ends_with(".tlr")
}

/// The spool files of `dir` in reading order: record files, and claimed segments when
/// `segments` (regular files only; other names and subdirectories are ignored).
pub(crate) fn file_names(dir: &Path, segments: bool) -> Result<Vec<String>, SpoolError> {
    let err = |source| SpoolError::ReadDir {
        dir: dir.to_owned(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // (A ready-made segment a writer claimed where it is holds records until a
        // follower gives it its claimed name; one nobody claimed reads as nothing.)
        let wanted = is_record_file_name(&name)
            || (segments && (is_segment_name(&name) || is_free_name(&name)));
        if wanted && entry.file_type().is_ok_and(|t| t.is_file()) {
            names.push(name);
        }
    }
    names.sort_by_key(|n| file_order(n));
    Ok(names)
}

/// Sort key for spool file names: `<pid>-<seq>.tlr` numerically, anything else after,
/// by name. Reading order matters only as a tie-break after monotonic time.
pub(super) fn file_order(name: &str) -> (u8, u64, u64, String) {
    let stem = name.strip_suffix(".tlr").unwrap_or(name);
    let stem = stem.strip_suffix(".tls").unwrap_or(stem);
    if let Some((pid, seq)) = stem.split_once('-') {
        if let (Ok(pid), Ok(seq)) = (pid.parse::<u64>(), seq.parse::<u64>()) {
            return (0, pid, seq, String::new());
        }
    }
    (1, 0, 0, name.to_owned())
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
