//! The spool as the extension consumes it: final exchanges, each handed out once.
//!
//! A [`SpoolTail`] reads what the runtime wrote since the last look; this keeps the
//! records of connections that are not finished and hands out each exchange exactly
//! once, when it is final: its response has ended, or its connection closed — or at
//! shutdown, when whatever is left is final ("no response"). A keep-alive connection
//! that spans many invocations (the runtime's own, an SDK's pool) is therefore reported
//! exchange by exchange, never held back until it closes.
//!
//! Memory stays bounded by what is in flight, not by how long a connection lives: once
//! the first `n` exchanges of a connection are handed out, the records of their
//! messages are dropped and the connection is reassembled from message `n` on
//! ([`assemble_from`] with a [`ConnStart`]). Only the connection's own records (open,
//! TLS facts, ClientHello, close) stay with it. The runtime's keep-alive connection to
//! the Runtime API, which lives as long as the environment, thus costs the same after
//! the thousandth invocation as after the first.
//!
//! An HTTP/2 connection is handed out stream by stream: a stream goes out once, when it
//! is final ([`StreamProgress`]), and its records are dropped then. HPACK is stateful
//! across the whole connection, so the decoder state is kept per connection between
//! polls ([`HpackResume`], through [`assemble_resuming`]): each header block is decoded
//! once, in order, whatever poll it arrived in, and a header block that arrives for a
//! stream already handed out is still decoded (the table needs it) before it is dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use tapline_record::{Direction, LifecycleEvent, Part};

use crate::assemble::{assemble_resuming, ConnStart, Totals, RECORDS_LOST};
use crate::exchange::Exchange;
use crate::http2::{event_stream, HpackResume, StreamProgress};
use crate::spool::segment::SegmentStats;
use crate::spool::{Spool, SpoolEntry, SpoolError, SpoolRecord, SpoolTail};

/// A `Lifecycle` record: the runtime finished posting an invocation's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleMark {
    pub event: LifecycleEvent,
    pub request_id: String,
    pub wall_ns: u64,
}

#[derive(Default)]
struct ConnProgress {
    /// The process that wrote the connection's first record read.
    pid: u32,
    /// Responses at or after `start.response` whose `MsgEnd` was read, by `msg_seq`:
    /// true for a final one (not 1xx, or 101). The k-th final response answers the
    /// k-th request, counted on message numbers (a number whose records were all
    /// lost counts as a final response, as in `assemble/pairing.rs`).
    responses: BTreeMap<u32, bool>,
    /// Requests whose `MsgEnd` was read: requests `0..n` are complete (a request ends
    /// in order, each before the next begins). An exchange whose response came early,
    /// while its request body was still being sent, is final only once both ended, so
    /// that the rest of the request body is counted.
    ended_requests: u32,
    closed: bool,
    /// Monotonic time of the `ConnClose`.
    closed_mono_ns: u64,
    /// Closed, but its exchange waits (see [`ExchangeFeed::take_final`]): its records
    /// stay.
    deferred: bool,
    /// Exchanges `0..start.request` were handed out and their messages' records
    /// dropped; reassembly starts there.
    start: ConnStart,
    /// Exchanges at or after `start.request` already handed out (or counted lost).
    emitted: BTreeSet<u32>,
    /// For a connection that carries HTTP/2: its streams.
    h2: Option<StreamProgress>,
}

impl ConnProgress {
    /// Exchange number → `msg_seq` of the final response that answers it, for the
    /// responses whose `MsgEnd` was read. The numbers do not change when the start
    /// moves (see [`ConnProgress::advance`]).
    fn answers(&self) -> BTreeMap<u32, u32> {
        let mut out = BTreeMap::new();
        let mut interims = 0u32;
        for (&seq, &fin) in self.responses.range(self.start.response..) {
            if !fin {
                interims = interims.saturating_add(1);
                continue;
            }
            let at = (seq - self.start.response)
                .checked_sub(interims)
                .and_then(|d| d.checked_add(self.start.request));
            if let Some(at) = at {
                out.insert(at, seq);
            }
        }
        out
    }

    /// True for a message record whose exchange was handed out and pruned.
    fn pruned(&self, record: &SpoolRecord) -> bool {
        let (dir, seq) = match record {
            SpoolRecord::Data(f, _) if f.part != Part::Raw => (f.dir, f.msg_seq),
            SpoolRecord::MsgEnd(m) | SpoolRecord::MsgProgress(m) => (m.dir, m.msg_seq),
            SpoolRecord::H2(f) => {
                // Late records of a stream handed out, except header blocks: HPACK
                // needs every one of them.
                let late = event_stream(&f.event)
                    .is_some_and(|id| self.h2.as_ref().is_some_and(|h| h.was_handed_out(id)));
                return late && !matches!(f.event, crate::spool::H2Event::HeaderBlock(_));
            }
            _ => return false,
        };
        match dir {
            Direction::Egress => seq < self.start.request,
            Direction::Ingress | Direction::Unknown(_) => seq < self.start.response,
        }
    }

    /// Moves the start past the exchanges handed out in a row from it. Returns true
    /// when it moved (records can be dropped).
    fn advance(&mut self) -> bool {
        let mut moved = false;
        let answers = self.answers();
        while self.emitted.first() == Some(&self.start.request) {
            self.emitted.pop_first();
            // The exchange's final response, and the interim ones before it, are done.
            // An exchange handed out without its final response (its records were
            // lost) still took a response number: the responses after it answer the
            // exchanges after it. Either way every later response keeps its number.
            let next_response = match answers.get(&self.start.request) {
                Some(&seq) => seq.saturating_add(1),
                None => {
                    let mut seq = self.start.response;
                    while self.responses.get(&seq) == Some(&false) {
                        seq = seq.saturating_add(1);
                    }
                    seq.saturating_add(1)
                }
            };
            self.start.response = next_response;
            self.start.request = self.start.request.saturating_add(1);
            moved = true;
        }
        if moved {
            self.responses = self.responses.split_off(&self.start.response);
        }
        moved
    }
}

/// Final exchanges and lifecycle marks from a spool directory the runtime still writes.
pub struct ExchangeFeed {
    tail: SpoolTail,
    /// Records of connections with exchanges not yet handed out (minus the messages of
    /// the exchanges already handed out on them).
    pending: Spool,
    /// Records were added since the last [`ExchangeFeed::take_final`].
    dirty: bool,
    conns: HashMap<u64, ConnProgress>,
    /// HPACK state of the HTTP/2 connections, kept between polls.
    hpack: HashMap<u64, HpackResume>,
    /// TLS socket connections whose plaintext another connection reports.
    twins: HashSet<u64>,
    lifecycle: Vec<LifecycleMark>,
    /// Calls that failed before any HTTP, as exchanges: final as soon as read.
    failed: Vec<Exchange>,
    /// Blind spots read since the last [`ExchangeFeed::take_notices`].
    notices: Vec<crate::notice::Notice>,
    /// Records (and bytes) the writers reported lost in `Drops` records.
    dropped: (u64, u64),
    /// Processes that reported records lost: their connections may wait for
    /// messages that will never come (see [`ExchangeFeed::take_final`]).
    lossy_pids: HashSet<u32>,
    /// Exchanges of which no record was left (see [`ExchangeFeed::skip_lost`]).
    lost_exchanges: u64,
    /// Per process, the latest monotonic time of a record read.
    latest_mono_ns: HashMap<u32, u64>,
}

impl ExchangeFeed {
    pub fn new(dir: &Path) -> Self {
        Self::with_tail(SpoolTail::new(dir))
    }

    /// A feed over a tail made some other way (one that leaves the spool as written).
    pub(crate) fn with_tail(tail: SpoolTail) -> Self {
        ExchangeFeed {
            tail,
            pending: Spool::default(),
            dirty: false,
            conns: HashMap::new(),
            hpack: HashMap::new(),
            twins: HashSet::new(),
            lifecycle: Vec::new(),
            failed: Vec::new(),
            notices: Vec::new(),
            dropped: (0, 0),
            lossy_pids: HashSet::new(),
            lost_exchanges: 0,
            latest_mono_ns: HashMap::new(),
        }
    }

    /// What was read and lost so far: records, torn or corrupt stretches (the segments'
    /// holes and garbage included), records that did not decode, and the records the
    /// writers reported dropped.
    pub(crate) fn totals(&self) -> Totals {
        let s = self.tail.segment_stats();
        let mut t = Totals {
            files: self.tail.files().len() as u64,
            skipped_bytes: s.hole_bytes + s.garbage_bytes,
            skipped_stretches: s.holes + s.corrupt,
            dropped_records: self.dropped.0,
            dropped_bytes: self.dropped.1,
            lost_exchanges: self.lost_exchanges,
            ..Totals::default()
        };
        for f in self.tail.files() {
            t.unreadable_files += u64::from(f.error.is_some());
            t.records += f.records;
            t.skipped_bytes += f.skipped_bytes;
            t.skipped_stretches += f.skipped_stretches;
            t.undecodable_records += f.undecodable;
        }
        t
    }

    /// Reads what was written since the last call. Returns the number of new records.
    pub fn read_new(&mut self) -> Result<usize, SpoolError> {
        let mut fresh = Vec::new();
        let read = self.tail.read_new(&mut fresh);
        let n = fresh.len();
        for e in fresh {
            self.absorb(e);
        }
        read.map(|_| n)
    }

    fn absorb(&mut self, e: SpoolEntry) {
        let latest = self.latest_mono_ns.entry(e.meta.pid).or_default();
        *latest = (*latest).max(e.meta.mono_ns);
        match &e.record {
            // A TLS failure on a connection being followed is that connection's error
            // (it comes before the connection's close: the same thread wrote both).
            SpoolRecord::Failure { .. }
                if crate::assemble::is_connection_failure(&e)
                    && self.conns.contains_key(&e.meta.conn_id) => {}
            SpoolRecord::Failure { .. } => {
                self.failed.extend(crate::assemble::failed_exchange(&e));
                return;
            }
            SpoolRecord::Notice { kind, pid, program } => {
                crate::notice::add(
                    &mut self.notices,
                    crate::notice::Notice {
                        unix_ns: e.meta.wall_ns,
                        pid: *pid,
                        kind: *kind,
                        program: program.clone(),
                    },
                );
                return;
            }
            SpoolRecord::Lifecycle { event, request_id } => {
                self.lifecycle.push(LifecycleMark {
                    event: *event,
                    request_id: request_id.clone(),
                    wall_ns: e.meta.wall_ns,
                });
                return;
            }
            SpoolRecord::TlsInfo {
                socket_conn_id: Some(socket),
                ..
            } => {
                self.twins.insert(*socket);
            }
            SpoolRecord::Drops(d) => {
                self.dropped.0 = self.dropped.0.saturating_add(d.records);
                self.dropped.1 = self.dropped.1.saturating_add(d.bytes);
                if d.records > 0 {
                    self.lossy_pids.insert(e.meta.pid);
                }
            }
            _ => {}
        }
        if e.meta.conn_id == 0 {
            return;
        }
        let p = self
            .conns
            .entry(e.meta.conn_id)
            .or_insert_with(|| ConnProgress {
                pid: e.meta.pid,
                ..ConnProgress::default()
            });
        if p.pruned(&e.record) {
            // A straggler of an exchange already handed out: nothing would use it.
            return;
        }
        match &e.record {
            SpoolRecord::MsgEnd(m) if m.dir == Direction::Ingress => {
                let interim = (100..200).contains(&m.status) && m.status != 101;
                p.responses.insert(m.msg_seq, !interim);
            }
            SpoolRecord::MsgEnd(m) if m.dir == Direction::Egress => {
                p.ended_requests = p.ended_requests.max(m.msg_seq.saturating_add(1));
            }
            SpoolRecord::ConnClose(_) => {
                p.closed = true;
                p.closed_mono_ns = e.meta.mono_ns;
            }
            SpoolRecord::H2(f) => {
                p.h2.get_or_insert_with(StreamProgress::default)
                    .absorb(f.dir, &f.event)
            }
            _ => {}
        }
        self.pending.entries.push(e);
        self.dirty = true;
    }

    /// The last read stopped at the tail's budget: more is waiting to be read.
    pub(crate) fn more_waiting(&self) -> bool {
        self.tail.more_waiting()
    }

    /// What reading the shared segments met so far (records, holes, segments handed
    /// back for reuse or deleted).
    pub fn segment_stats(&self) -> SegmentStats {
        self.tail.segment_stats()
    }

    /// Deletes record files read to the end that will not grow.
    pub fn delete_consumed(&mut self) {
        self.tail.delete_consumed();
    }

    /// Records held in memory: connection records, and the messages of exchanges not
    /// yet handed out.
    pub fn retained_records(&self) -> usize {
        self.pending.entries.len()
    }

    /// Exchanges of which the writers' drops left no record, counted so far.
    pub fn lost_exchanges(&self) -> u64 {
        self.lost_exchanges
    }

    /// Connections with records held in memory.
    pub fn retained_connections(&self) -> usize {
        self.conns.len()
    }

    /// `Lifecycle` records read since the last call.
    pub fn take_lifecycle(&mut self) -> Vec<LifecycleMark> {
        std::mem::take(&mut self.lifecycle)
    }

    /// `Notice` records read since the last call.
    pub fn take_notices(&mut self) -> Vec<crate::notice::Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Exchanges that became final since the last call, each once. With `flush`, every
    /// exchange still pending is final (shutdown: the writers are gone).
    ///
    /// Nothing is reassembled when no record came in since the last call; the records
    /// of the exchanges handed out are dropped.
    pub fn take_final(&mut self, flush: bool) -> Vec<Exchange> {
        let failed = std::mem::take(&mut self.failed);
        if self.pending.entries.is_empty() || !(self.dirty || flush) {
            return failed;
        }
        self.dirty = false;
        let starts: HashMap<u64, ConnStart> = self
            .conns
            .iter()
            .filter(|(_, p)| p.start != ConnStart::default())
            .map(|(&c, p)| (c, p.start))
            .collect();
        let assembly = assemble_resuming(&self.pending, &starts, &mut self.hpack, &self.lossy_pids);
        for p in self.conns.values_mut() {
            p.deferred = false;
        }
        self.twins.extend(assembly.linked_sockets.iter().copied());
        let mut out = failed;
        let mut streams_out = false;
        // Exchanges reassembled that still wait, per connection of a process that lost
        // records.
        let mut waiting: HashSet<(u64, u32)> = HashSet::new();
        // Per connection met: exchange number → its final response (computed once).
        let mut answers: HashMap<u64, BTreeMap<u32, u32>> = HashMap::new();
        for ex in assembly.exchanges {
            let Some(p) = self.conns.get_mut(&ex.conn_id) else {
                continue;
            };
            let counted_only = ex.method.is_none() && ex.path.is_none();
            if counted_only && self.twins.contains(&ex.conn_id) {
                continue;
            }
            // A closed opaque TLS socket waits until a later record of its process was
            // read: a TLS library with memory BIOs (node) may write the plaintext of the
            // same call just after the socket closed (a request handed to `SSL_write`
            // while a failed handshake tears the connection down), and that plaintext
            // is this exchange, with its reason.
            if counted_only
                && ex.tls == crate::exchange::TlsKind::Opaque
                && p.closed
                && !flush
                && self
                    .latest_mono_ns
                    .get(&ex.pid)
                    .is_none_or(|&t| t <= p.closed_mono_ns)
            {
                p.deferred = true;
                continue;
            }
            let over = flush || p.closed;
            if let Some(h2) = p.h2.as_mut() {
                // An HTTP/2 stream (`seq` is its id; never 0).
                if ex.http_version.as_deref() == Some("2") && ex.seq != 0 {
                    if (over || h2.is_final(ex.seq)) && h2.hand_out(ex.seq) {
                        // The h2c upgrade request went out with stream 1.
                        if let Some(k) = h2.upgrade_msg_seq().filter(|_| ex.seq == 1) {
                            p.emitted.insert(k);
                        }
                        streams_out = true;
                        out.push(ex);
                    }
                    continue;
                }
                // The h2c upgrade request waits for stream 1, which it is part of; a
                // connection whose streams went out is not one "without a stream".
                let waits = h2.upgrade_msg_seq() == Some(ex.seq) && !over;
                if waits || (counted_only && h2.any_handed_out()) {
                    continue;
                }
            }
            let answers = answers.entry(ex.conn_id).or_insert_with(|| p.answers());
            let answered = answers.contains_key(&ex.seq) && ex.seq < p.ended_requests;
            let done = over || (!counted_only && answered);
            // Records of this process were lost (spool full): an exchange that is not
            // final while a later response on its connection ended (responses come in
            // order), or whose request head is missing although both messages ended,
            // lost records that will never come. It goes out now, said so, and its
            // records are freed; the pairing of the later ones does not depend on it.
            let lost = !done
                && self.lossy_pids.contains(&p.pid)
                && (answers
                    .last_key_value()
                    .is_some_and(|(&last, _)| last > ex.seq)
                    || (counted_only && answered));
            if (done || lost) && ex.seq >= p.start.request && p.emitted.insert(ex.seq) {
                let mut ex = ex;
                if lost {
                    ex.error = Some(RECORDS_LOST.into());
                }
                out.push(ex);
            } else if !(done || lost) && ex.seq >= p.start.request {
                waiting.insert((ex.conn_id, ex.seq));
            }
        }
        let skipped = self.skip_lost(&waiting);
        self.prune(flush, streams_out || skipped);
        out
    }

    /// Exchanges of which no record is left at all (a process that reported records
    /// lost, a later response on the connection ended, and nothing below it waits):
    /// nothing can be said of them but that they were there, so they are counted
    /// ([`Totals::lost_exchanges`]) and the connection's start moves past them at once,
    /// to the exchange its last response read answers — however many there are
    /// (`msg_seq` is untrusted: no loop or allocation per number).
    fn skip_lost(&mut self, waiting: &HashSet<(u64, u32)>) -> bool {
        let mut moved = false;
        for (&c, p) in &mut self.conns {
            if p.h2.is_some() || !self.lossy_pids.contains(&p.pid) {
                continue;
            }
            let answers = p.answers();
            let Some((&last, &last_seq)) = answers.last_key_value() else {
                continue;
            };
            if last <= p.start.request
                || waiting
                    .iter()
                    .any(|&(wc, k)| wc == c && (p.start.request..last).contains(&k))
            {
                continue;
            }
            let out = p.emitted.range(p.start.request..last).count() as u64;
            let gone = u64::from(last - p.start.request).saturating_sub(out);
            self.lost_exchanges = self.lost_exchanges.saturating_add(gone);
            p.emitted = p.emitted.split_off(&last);
            // Exchange `last` keeps its number: its response starts the rest.
            p.start = ConnStart {
                request: last,
                response: last_seq,
            };
            p.responses = p.responses.split_off(&last_seq);
            moved = true;
        }
        moved
    }

    /// Connections that are over have nothing more to give; the others drop the
    /// messages of the exchanges they handed out.
    fn prune(&mut self, flush: bool, moved_already: bool) {
        let mut over: HashSet<u64> = HashSet::new();
        let mut moved = false;
        for (&c, p) in &mut self.conns {
            if flush || (p.closed && !p.deferred) {
                over.insert(c);
            } else {
                moved |= p.advance();
            }
        }
        if !over.is_empty() || moved || moved_already {
            let conns = &self.conns;
            let hpack = &mut self.hpack;
            self.pending.entries.retain(|e| {
                let c = e.meta.conn_id;
                if over.contains(&c) {
                    return false;
                }
                let Some(p) = conns.get(&c) else {
                    return true;
                };
                let handed_out = match &e.record {
                    SpoolRecord::H2(f) => event_stream(&f.event)
                        .is_some_and(|id| p.h2.as_ref().is_some_and(|h| h.was_handed_out(id))),
                    record => p.pruned(record),
                };
                if handed_out {
                    // Its block was decoded (every block present is, at each poll).
                    if let SpoolRecord::H2(f) = &e.record {
                        if let crate::spool::H2Event::HeaderBlock(b) = &f.event {
                            if let Some(state) = hpack.get_mut(&c) {
                                state.forget(f.dir, b.seq);
                            }
                        }
                    }
                }
                !handed_out
            });
            self.conns.retain(|c, _| !over.contains(c));
            self.hpack.retain(|c, _| !over.contains(c));
            self.twins.retain(|c| !over.contains(c));
        }
    }

    /// Decoded HTTP/2 header blocks kept for streams not yet handed out.
    pub fn retained_h2_blocks(&self) -> usize {
        self.hpack.values().map(HpackResume::kept_blocks).sum()
    }
}
