//! The spool directory of one `tapline run`: private unless named, removed afterwards
//! unless kept.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::RunError;

/// The spool directory of one `run`, and whether we made it (and so may delete it).
pub(super) struct SpoolDir {
    pub(super) path: PathBuf,
    created: bool,
}

impl SpoolDir {
    pub(super) fn create(given: Option<&Path>) -> Result<SpoolDir, RunError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.mode(0o700);
        if let Some(dir) = given {
            let err = |source| RunError::SpoolDir {
                dir: dir.to_owned(),
                source,
            };
            return match builder.create(dir) {
                Ok(()) => Ok(SpoolDir {
                    path: dir.to_owned(),
                    created: true,
                }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {
                    Ok(SpoolDir {
                        path: dir.to_owned(),
                        created: false,
                    })
                }
                Err(e) => Err(err(e)),
            };
        }
        let base = std::env::var_os("TMPDIR")
            .filter(|t| !t.is_empty())
            .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut last = None;
        for attempt in 0..100u32 {
            let path = base.join(format!(
                "tapline-{}-{nanos:09}-{attempt}",
                std::process::id()
            ));
            // create (not create_all): fails if the name exists, so nobody can have
            // prepared it for us.
            match builder.create(&path) {
                Ok(()) => {
                    return Ok(SpoolDir {
                        path,
                        created: true,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => {
                    return Err(RunError::SpoolDir {
                        dir: path,
                        source: e,
                    })
                }
            }
        }
        Err(RunError::SpoolDir {
            dir: base,
            source: last.unwrap_or_else(|| io::Error::other("no free name")),
        })
    }

    /// Deletes the spool: all of it when we created the directory; only the spool
    /// files in a directory the user named (it may hold other things).
    pub(super) fn remove(&self) {
        if self.created {
            if let Err(e) = std::fs::remove_dir_all(&self.path) {
                eprintln!("tapline: cannot remove spool {}: {e}", self.path.display());
            }
            return;
        }
        if let Ok(listing) = std::fs::read_dir(&self.path) {
            for entry in listing.flatten() {
                let name = entry.file_name();
                let name = name.as_bytes();
                if name.ends_with(b".tlr") || name.ends_with(b".tls") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}
