//! Reassembly: spool records → [`Exchange`]s.
//!
//! Why it is shaped like this: the library writes what it saw, as it saw it, in
//! several files per process, and may die at any moment (a killed process leaves Data
//! records without their `MsgEnd` or `ConnClose`). So every step here builds from
//! whatever is present instead of expecting a complete sequence:
//!
//! 1. records are grouped by `conn_id` (unique across processes) and ordered by
//!    monotonic time, then file order, then position in the file;
//! 2. each message (direction, `msg_seq`) gets its head and body back by joining Data
//!    fragments by offset (a gap ends what can be used, and marks it truncated);
//! 3. heads are parsed with `httparse` (a head cut at the capture limit is parsed up
//!    to its last complete line);
//! 4. the k-th final response (not 1xx, except 101) answers the k-th request, as
//!    `include/tapline.h` defines;
//! 5. sizes come from `MsgEnd` (full sizes, not captured ones), times from `MsgEnd`'s
//!    start and end stamps, errors from the absence of a response and from why the
//!    connection closed.
//!
//! An HTTP/2 connection's `H2*` records go to [`crate::http2`] (HPACK in wire order,
//! one exchange per stream); after an h2c upgrade its HTTP/1.1 request is stream 1's.
//!
//! A TLS socket whose plaintext was also seen through a TLS library hook (same pid, same
//! fd, overlapping lifetime) is reported once, as the plaintext; only the others are
//! "opaque" exchanges (SNI and ALPN from the captured ClientHello, sizes and times from
//! the connection).

mod connection;
mod cut_short;
mod failure;
mod h2;
mod http_head;
mod opaque;
mod pairing;

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::exchange::Exchange;
use crate::http2::HpackResume;
use crate::spool::{Spool, SpoolEntry, SpoolRecord};

pub(crate) use connection::ConnStart;
use connection::{link_tls_sockets, Connection};
pub(crate) use cut_short::RECORDS_LOST;

/// Counts for the footer of a report: what could not be read or was lost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Spool files read.
    pub files: u64,
    /// Files that could not be read at all.
    pub unreadable_files: u64,
    /// Records decoded.
    pub records: u64,
    /// Bytes skipped as torn, corrupt or garbage, and in how many stretches.
    pub skipped_bytes: u64,
    pub skipped_stretches: u64,
    /// Well-framed records that did not decode.
    pub undecodable_records: u64,
    /// Records (and their bytes) the writers reported lost in `Drops` records.
    pub dropped_records: u64,
    pub dropped_bytes: u64,
    /// Exchanges of which the writers' drops left no record at all, known to have been
    /// there because later ones on their connection were read (the live reader counts
    /// them; a whole-spool reading does not).
    pub lost_exchanges: u64,
}

impl Totals {
    /// True when something was lost or skipped, i.e. a report should say so.
    pub fn anything_lost(&self) -> bool {
        self.unreadable_files + self.skipped_bytes + self.undecodable_records + self.dropped_records
            > 0
    }
}

/// What a `ProcStart` record said about a process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    pub ppid: u32,
    pub argv: Vec<String>,
}

/// The result of reassembly.
#[derive(Clone, Debug, Default)]
pub struct Assembly {
    /// Sorted by start time (then pid, connection, position on the connection).
    pub exchanges: Vec<Exchange>,
    pub processes: BTreeMap<u32, ProcessInfo>,
    pub totals: Totals,
    /// Blind spots the spool names (`Notice` records), each once, in time order.
    pub notices: Vec<crate::notice::Notice>,
    /// TLS sockets married to a plaintext connection (their opaque twins left out): the
    /// Lambda feed remembers them, since a socket's opaque exchange may become final in
    /// a later reading, after the plaintext connection's records are gone.
    pub linked_sockets: Vec<u64>,
}

/// The exchange of one `Failure` record (the Lambda feed hands these out at once: no
/// other record belongs to them).
pub(crate) fn failed_exchange(e: &SpoolEntry) -> Option<Exchange> {
    failure::FailedCall::of(e).map(|f| f.exchange())
}

/// True for a TLS `Failure` that names a connection of its own records (its socket or
/// plaintext): it is that connection's error, not an exchange of its own.
pub(crate) fn is_connection_failure(e: &SpoolEntry) -> bool {
    matches!(
        &e.record,
        SpoolRecord::Failure {
            stage: tapline_record::FailureStage::Tls,
            ..
        }
    ) && e.meta.conn_id != 0
}

/// Builds every exchange the spool holds.
pub fn assemble(spool: &Spool) -> Assembly {
    assemble_from(spool, &HashMap::new())
}

/// Like [`assemble`], but each connection named in `starts` is reassembled from that
/// point on: its records of earlier messages are ignored (whether or not they are still
/// there), and its exchanges keep their position numbers (`seq`) on the connection.
pub(crate) fn assemble_from(spool: &Spool, starts: &HashMap<u64, ConnStart>) -> Assembly {
    assemble_resuming(spool, starts, &mut HashMap::new(), &HashSet::new())
}

/// Like [`assemble_from`], for a spool read a little at a time: the HTTP/2 connections
/// named in `hpack` decode their header blocks from the HPACK state earlier readings
/// left there (a connection not named starts afresh, and is added). The processes in
/// `lossy_pids` (and those whose `Drops` records are in `spool`) reported records lost:
/// an exchange of theirs with a hole in its messages says so in its error.
pub(crate) fn assemble_resuming(
    spool: &Spool,
    starts: &HashMap<u64, ConnStart>,
    hpack: &mut HashMap<u64, HpackResume>,
    lossy_pids: &HashSet<u32>,
) -> Assembly {
    let mut lossy_pids = lossy_pids.clone();
    let mut totals = Totals {
        files: spool.files.len() as u64,
        ..Totals::default()
    };
    for f in &spool.files {
        totals.unreadable_files += u64::from(f.error.is_some());
        totals.records += f.records;
        totals.skipped_bytes += f.skipped_bytes;
        totals.skipped_stretches += f.skipped_stretches;
        totals.undecodable_records += f.undecodable;
    }

    let mut processes = BTreeMap::new();
    let mut notices = Vec::new();
    let mut failed = Vec::new();
    let mut tls_failed = Vec::new();
    let mut by_conn: BTreeMap<u64, Vec<&SpoolEntry>> = BTreeMap::new();
    for e in &spool.entries {
        match &e.record {
            SpoolRecord::Drops(d) => {
                totals.dropped_records = totals.dropped_records.saturating_add(d.records);
                totals.dropped_bytes = totals.dropped_bytes.saturating_add(d.bytes);
                if d.records > 0 {
                    lossy_pids.insert(e.meta.pid);
                }
            }
            SpoolRecord::ProcStart { ppid, argv, .. } => {
                processes.entry(e.meta.pid).or_insert_with(|| ProcessInfo {
                    ppid: *ppid,
                    argv: argv.clone(),
                });
            }
            SpoolRecord::Failure { .. } if is_connection_failure(e) => tls_failed.push(e),
            SpoolRecord::Failure { .. } => failed.extend(failure::FailedCall::of(e)),
            SpoolRecord::Notice { kind, pid, program } => crate::notice::add(
                &mut notices,
                crate::notice::Notice {
                    unix_ns: e.meta.wall_ns,
                    pid: *pid,
                    kind: *kind,
                    program: program.clone(),
                },
            ),
            _ if e.meta.conn_id != 0 => by_conn.entry(e.meta.conn_id).or_default().push(e),
            _ => {}
        }
    }

    // A TLS failure belongs to its connection when that connection left records (the
    // reader makes it the connection's error); else it is a call of its own.
    for e in tls_failed {
        match by_conn.get_mut(&e.meta.conn_id) {
            Some(records) => records.push(e),
            None => failed.extend(failure::FailedCall::of(e)),
        }
    }

    let mut conns: Vec<Connection> = by_conn
        .into_iter()
        .map(|(conn_id, mut entries)| {
            entries.sort_by_key(|e| (e.meta.mono_ns, e.meta.file, e.meta.index));
            let start = starts.get(&conn_id).copied().unwrap_or_default();
            let mut c = Connection::build(conn_id, start, &entries);
            c.records_lost = lossy_pids.contains(&c.pid);
            c
        })
        .collect();
    link_tls_sockets(&mut conns);
    let linked_sockets = conns
        .iter()
        .filter(|c| c.has_plaintext)
        .map(|c| c.conn_id)
        .collect();

    let mut exchanges = Vec::new();
    for conn in &conns {
        let resume = (!conn.h2.is_empty()).then(|| hpack.entry(conn.conn_id).or_default());
        conn.exchanges(&mut exchanges, resume);
    }
    exchanges.extend(failed.iter().map(failure::FailedCall::exchange));
    exchanges.sort_by_key(|x| (x.start_unix_ns, x.pid, x.conn_id, x.seq));
    Assembly {
        exchanges,
        processes,
        totals,
        notices,
        linked_sockets,
    }
}
