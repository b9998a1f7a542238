//! The reading edge: the one place where spool bytes become typed records.
//!
//! Why a module of its own: spool bytes are untrusted input (a process may have been
//! killed mid-write, a disk may have filled up, anyone who can write the directory can
//! put anything there). Frames are checked by [`tapline_record::RecordIter`] (plain
//! `*.tlr` files) or walked by [`segment`] (shared `*.tls` segments), which skip torn or
//! corrupt stretches; each payload is then decoded once ([`SpoolEntry::decode`]) into a
//! [`SpoolRecord`]. A record that does not decode is counted and left out; nothing
//! downstream ever sees raw bytes it would have to re-check.
//!
//! Three ways in, one decoding:
//! - [`Spool::read_dir`], the batch reader: every file read whole, after the writers
//!   are gone (`tapline show`; `tapline run` for its record files). Zero words are
//!   garbage to skip (`RecordIter::skipping_zeros`), not "end of committed data".
//! - [`SpoolTail`], the incremental reader: each file from where it stopped, segments
//!   as their records are committed (`tapline run` while the program runs, the Lambda
//!   extension between invocations).
//! - [`records`]: the records themselves as JSON lines (`tapline show --records`).

mod batch;
mod files;
mod h2;
mod record;
pub(crate) mod records;
pub(crate) mod segment;
mod tail;

pub use batch::Spool;
pub(crate) use batch::SpoolEntry;
pub(crate) use files::file_names;
pub use files::SpoolError;
pub(crate) use h2::{H2Event, HeaderBlock, StreamEnd};
pub(crate) use record::{socket_addr, SpoolRecord};
pub(crate) use tail::SpoolTail;
