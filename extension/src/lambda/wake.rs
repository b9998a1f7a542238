//! The wake FIFO: how the traced runtime tells the extension "the response is out" without
//! ever waiting for it.
//!
//! The library pokes `<spool>/wake` with a non-blocking one-byte write after it has
//! written the `Lifecycle` record of a response POST; with no reader or a full pipe the
//! byte is simply lost. So the extension creates the FIFO (0600) at startup, holds it
//! open for reading (`O_NONBLOCK`), and also holds a writer of its own: without one, a
//! read would see end-of-file every time the runtime's writer closes, and `poll` would
//! spin. A lost or coalesced byte is harmless: a wake-up only means "look at the spool
//! again", never "exactly one thing happened". The telemetry listener pokes the same
//! FIFO, so the extension waits on one descriptor.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

/// The FIFO's name inside the spool directory (the library writes to this name).
pub(crate) const WAKE_NAME: &str = "wake";

#[derive(Debug, thiserror::Error)]
pub(crate) enum WakeError {
    #[error("cannot create FIFO {}: {source}", path.display())]
    Create { path: PathBuf, source: nix::Error },
    #[error("cannot open FIFO {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("{} exists and is not a FIFO", path.display())]
    NotAFifo { path: PathBuf },
    #[error("poll: {0}")]
    Poll(nix::Error),
}

/// The reading end of `<spool>/wake`, plus the writer that keeps it from reading EOF.
pub(crate) struct WakeFifo {
    reader: File,
    writer: File,
}

/// A handle that wakes the waiting extension (used by the telemetry listener).
pub(crate) struct Waker(File);

impl Waker {
    /// One byte, never blocking; a full pipe already holds a wake-up.
    pub(crate) fn wake(&self) {
        let _ = (&self.0).write(&[1]);
    }
}

impl WakeFifo {
    /// Creates (or reuses) `<dir>/wake` with mode 0600 and opens both ends.
    pub(crate) fn create(dir: &Path) -> Result<Self, WakeError> {
        let path = dir.join(WAKE_NAME);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_fifo() => {}
            Ok(_) => return Err(WakeError::NotAFifo { path }),
            Err(_) => {
                nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR).map_err(|source| {
                    WakeError::Create {
                        path: path.clone(),
                        source,
                    }
                })?;
            }
        }
        let open = |write: bool| {
            OpenOptions::new()
                .read(!write)
                .write(write)
                .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
                .open(&path)
                .map_err(|source| WakeError::Open {
                    path: path.clone(),
                    source,
                })
        };
        // The reader first: a non-blocking open for writing fails (ENXIO) without one.
        let reader = open(false)?;
        let writer = open(true)?;
        Ok(WakeFifo { reader, writer })
    }

    /// A second writer for another thread.
    pub(crate) fn waker(&self) -> io::Result<Waker> {
        self.writer.try_clone().map(Waker)
    }

    /// Waits until something pokes the FIFO or `timeout` passes; drains what is there.
    /// `true` if woken.
    pub(crate) fn wait(&mut self, timeout: Duration) -> Result<bool, WakeError> {
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let ready = {
            let mut fds = [PollFd::new(self.reader.as_fd(), PollFlags::POLLIN)];
            match poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(n) => n > 0,
                Err(nix::Error::EINTR) => false,
                Err(e) => return Err(WakeError::Poll(e)),
            }
        };
        if ready {
            self.drain();
        }
        Ok(ready)
    }

    /// Empties the pipe (a burst of pokes is one wake-up).
    pub(crate) fn drain(&mut self) {
        let mut buf = [0u8; 256];
        while let Ok(n) = self.reader.read(&mut buf) {
            if n < buf.len() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poke_wakes_and_silence_times_out() {
        let dir = std::env::temp_dir().join(format!("tapline-wake-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut fifo = WakeFifo::create(&dir).unwrap();
        assert!(!fifo.wait(Duration::from_millis(1)).unwrap());
        // A writer that opens, pokes and closes, like the library.
        let mut w = OpenOptions::new()
            .write(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(dir.join(WAKE_NAME))
            .unwrap();
        w.write_all(&[1, 1, 1]).unwrap();
        drop(w);
        assert!(fifo.wait(Duration::from_secs(5)).unwrap());
        // Drained, and the closed writer does not make it readable (EOF) again.
        assert!(!fifo.wait(Duration::from_millis(20)).unwrap());
        fifo.waker().unwrap().wake();
        assert!(fifo.wait(Duration::from_secs(5)).unwrap());
        // Reused when it already exists.
        drop(fifo);
        WakeFifo::create(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
