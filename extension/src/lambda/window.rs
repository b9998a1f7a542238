//! Invocation windows: which exchanges belong to which invocation, read from the spool
//! while the runtime keeps writing it.
//!
//! [`SpoolTail`] reads each spool file from where it stopped last time (a byte cursor per
//! file; a record still being appended is left for the next read), keeps the records of
//! connections that are not finished, and hands out each exchange exactly once, when it
//! is final: its response has ended, or its connection closed — or at shutdown, when
//! whatever is left is final ("no response"). A keep-alive connection that spans many
//! invocations (the runtime's own, an SDK's pool) is therefore reported exchange by
//! exchange, never held back until it closes.
//!
//! Memory stays bounded by what is in flight, not by how long a connection lives: once
//! the first `n` exchanges of a connection are handed out, the records of their
//! messages are dropped and the connection is reassembled from message `n` on
//! ([`assemble_from`] with a [`ConnStart`]). Only the connection's own records (open,
//! TLS facts, ClientHello, close) stay with it. The runtime's keep-alive connection to
//! the Runtime API, which lives as long as the environment, thus costs the same after
//! the thousandth invocation as after the first.
//!
//! [`Windows`] turns the runtime's own Runtime API exchanges into windows: a window opens
//! when `GET /2018-06-01/runtime/invocation/next` returns request id X (its
//! `Lambda-Runtime-Aws-Request-Id` header; the body is the event) and closes when the
//! runtime starts `POST .../invocation/X/response` (or `/error`) — or at the library's
//! `Lifecycle` record, whichever is known. An exchange belongs to the window that
//! contains its start; one that starts after X's response and before the next window
//! (a background thread) is X's too, reported late rather than lost.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tapline_record::{Direction, Item, ParseError, Part, RecordIter, RecordType, TlsInfo};

use crate::assemble::{assemble_from, ConnStart};
use crate::exchange::Exchange;
use crate::spool::{self, FileStats, LifecycleEvent, RecordMeta, Spool, SpoolEntry, SpoolRecord};

/// Most bytes read from one file in one round (the rest waits for the next round).
const MAX_READ: u64 = 64 << 20;
/// Windows remembered (late exchanges of older invocations lose their parent).
const REMEMBERED_WINDOWS: usize = 64;
const RUNTIME_PREFIX: &str = "/2018-06-01/runtime/";
const INVOCATION_PREFIX: &str = "/2018-06-01/runtime/invocation/";

#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("cannot list spool directory {}: {source}", dir.display())]
    ReadDir { dir: PathBuf, source: io::Error },
}

/// A `Lifecycle` record: the runtime finished posting an invocation's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleMark {
    pub event: LifecycleEvent,
    pub request_id: String,
    pub wall_ns: u64,
}

struct FileCursor {
    /// Bytes consumed (whole records, or skipped garbage).
    offset: u64,
    /// Index into `pending.files`.
    file: usize,
    /// Records read so far (the `index` of [`RecordMeta`]).
    records: usize,
}

#[derive(Default)]
struct ConnProgress {
    /// Final (non-1xx, or 101) responses whose `MsgEnd` was read: exchanges `0..n` are
    /// complete.
    final_responses: u32,
    /// `msg_seq` of each final response read at or after `start.response`, in order:
    /// where the next pruning cuts the responses.
    final_seqs: VecDeque<u32>,
    closed: bool,
    /// Exchanges `0..start.request` were handed out and their messages' records
    /// dropped; reassembly starts there.
    start: ConnStart,
    /// Exchanges at or after `start.request` already handed out.
    emitted: BTreeSet<u32>,
}

impl ConnProgress {
    /// True for a message record whose exchange was handed out and pruned.
    fn pruned(&self, record: &SpoolRecord) -> bool {
        let (dir, seq) = match record {
            SpoolRecord::Data(f) if f.part != Part::Raw => (f.dir, f.msg_seq),
            SpoolRecord::MsgEnd(m) => (m.dir, m.msg_seq),
            _ => return false,
        };
        match dir {
            Direction::Egress => seq < self.start.request,
            Direction::Ingress => seq < self.start.response,
        }
    }

    /// Moves the start past the exchanges handed out in a row from it. Returns true
    /// when it moved (records can be dropped).
    fn advance(&mut self) -> bool {
        let mut moved = false;
        while self.emitted.first() == Some(&self.start.request) {
            self.emitted.pop_first();
            // The exchange's final response, and the interim ones before it, are done.
            // (An exchange handed out with no final response known leaves the
            // responses where they are.)
            if let Some(seq) = self.final_seqs.pop_front() {
                self.start.response = seq.saturating_add(1);
            }
            self.start.request = self.start.request.saturating_add(1);
            moved = true;
        }
        moved
    }
}

/// Incremental reader of a spool directory.
pub struct SpoolTail {
    dir: PathBuf,
    cursors: BTreeMap<String, FileCursor>,
    /// Records of connections with exchanges not yet handed out (minus the messages of
    /// the exchanges already handed out on them).
    pending: Spool,
    /// Records were added since the last [`SpoolTail::take_final`].
    dirty: bool,
    conns: HashMap<u64, ConnProgress>,
    /// TLS socket connections whose plaintext another connection reports.
    twins: HashSet<u64>,
    lifecycle: Vec<LifecycleMark>,
    /// Shared segments (`*.tls`): read as they are committed, deleted when finished.
    segments: crate::segment::SegmentFollower,
    /// Segment name → (index in `pending.files`, records read from it).
    segment_files: HashMap<String, (usize, usize)>,
    /// Stretches of garbage skipped, over the life of the tail.
    pub skipped_bytes: u64,
}

impl SpoolTail {
    pub fn new(dir: &Path) -> Self {
        SpoolTail {
            dir: dir.to_path_buf(),
            cursors: BTreeMap::new(),
            pending: Spool::default(),
            dirty: false,
            conns: HashMap::new(),
            twins: HashSet::new(),
            lifecycle: Vec::new(),
            segments: crate::segment::SegmentFollower::new(dir, true),
            segment_files: HashMap::new(),
            skipped_bytes: 0,
        }
    }

    /// Reads what was appended since the last call. Returns the number of new records.
    pub fn read_new(&mut self) -> Result<usize, WindowError> {
        let listing = std::fs::read_dir(&self.dir).map_err(|source| WindowError::ReadDir {
            dir: self.dir.clone(),
            source,
        })?;
        let mut names: Vec<String> = listing
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tlr"))
            .collect();
        names.sort();
        let mut new = 0;
        for name in names {
            new += self.read_file(&name);
        }
        new += self.read_segments();
        Ok(new)
    }

    /// Records committed to shared segments since the last call. Segments that are
    /// finished are deleted by the follower (their records live on in memory).
    fn read_segments(&mut self) -> usize {
        let mut entries = Vec::new();
        let pending = &mut self.pending;
        let files = &mut self.segment_files;
        let twins = &mut self.twins;
        let skipped_before = self.segments.stats.garbage_bytes + self.segments.stats.hole_bytes;
        let polled = self.segments.poll(&mut |name, record| {
            let (file, index) = files.entry(name.to_string()).or_insert_with(|| {
                pending.files.push(FileStats {
                    name: name.to_string(),
                    ..FileStats::default()
                });
                (pending.files.len() - 1, 0)
            });
            let h = record.header;
            let meta = RecordMeta {
                wall_ns: h.wall_ns,
                mono_ns: h.mono_ns,
                pid: h.pid,
                tid: h.tid,
                conn_id: h.conn_id,
                file: *file,
                index: *index,
            };
            *index += 1;
            if h.rtype == RecordType::TlsInfo as u16 {
                if let Some((info, _, _)) = TlsInfo::decode(record.payload) {
                    if info.socket_conn_id != 0 {
                        twins.insert(info.socket_conn_id);
                    }
                }
            }
            if let Some(rec) = spool::decode(h.rtype, record.payload) {
                entries.push(SpoolEntry { meta, record: rec });
            }
        });
        if polled.is_err() {
            return 0;
        }
        self.skipped_bytes +=
            self.segments.stats.garbage_bytes + self.segments.stats.hole_bytes - skipped_before;
        let n = entries.len();
        for e in entries {
            self.absorb(e);
        }
        n
    }

    fn read_file(&mut self, name: &str) -> usize {
        let path = self.dir.join(name);
        let Ok(mut f) = std::fs::File::open(&path) else {
            return 0;
        };
        let len = f.metadata().map_or(0, |m| m.len());
        let pending = &mut self.pending;
        let cursor = self.cursors.entry(name.to_string()).or_insert_with(|| {
            pending.files.push(FileStats {
                name: name.to_string(),
                ..FileStats::default()
            });
            FileCursor {
                offset: 0,
                file: pending.files.len() - 1,
                records: 0,
            }
        });
        if len <= cursor.offset {
            return 0;
        }
        let want = (len - cursor.offset).min(MAX_READ);
        let mut buf = Vec::with_capacity(want as usize);
        if f.seek(SeekFrom::Start(cursor.offset)).is_err()
            || f.take(want).read_to_end(&mut buf).is_err()
        {
            return 0;
        }
        let (file, mut index) = (cursor.file, cursor.records);
        let mut it = RecordIter::new(&buf);
        let mut records = Vec::new();
        let mut skipped = 0u64;
        for item in it.by_ref() {
            match item {
                Item::Record { record, .. } => {
                    let h = record.header;
                    let meta = RecordMeta::new(&h, file, index);
                    index += 1;
                    if h.rtype == RecordType::TlsInfo as u16 {
                        if let Some((info, _, _)) = TlsInfo::decode(record.payload) {
                            if info.socket_conn_id != 0 {
                                self.twins.insert(info.socket_conn_id);
                            }
                        }
                    }
                    if let Some(rec) = spool::decode(h.rtype, record.payload) {
                        records.push(SpoolEntry { meta, record: rec });
                    }
                }
                Item::Skipped { len, .. } => skipped += len as u64,
            }
        }
        let mut consumed = it.position() as u64;
        if let Some((at, ParseError::Uncommitted)) = it.stopped_at() {
            // Zero bytes in a plain file: a torn write. Skip to the next record start.
            let rest = &buf[at..];
            let next = rest
                .windows(4)
                .position(|w| w == tapline_record::MAGIC.to_le_bytes())
                .unwrap_or(rest.len().saturating_sub(3));
            skipped += next as u64;
            consumed = (at + next) as u64;
        }
        self.skipped_bytes += skipped;
        cursor.offset += consumed;
        cursor.records = index;
        let n = records.len();
        for e in records {
            self.absorb(e);
        }
        n
    }

    fn absorb(&mut self, e: SpoolEntry) {
        match &e.record {
            SpoolRecord::Lifecycle { event, request_id } => {
                self.lifecycle.push(LifecycleMark {
                    event: *event,
                    request_id: request_id.clone(),
                    wall_ns: e.meta.wall_ns,
                });
                return;
            }
            _ if e.meta.conn_id == 0 => return,
            _ => {}
        }
        let p = self.conns.entry(e.meta.conn_id).or_default();
        if p.pruned(&e.record) {
            // A straggler of an exchange already handed out: nothing would use it.
            return;
        }
        match &e.record {
            SpoolRecord::MsgEnd(m) if m.dir == Direction::Ingress => {
                let interim = (100..200).contains(&m.status) && m.status != 101;
                if !interim {
                    p.final_responses += 1;
                    let at = p.final_seqs.partition_point(|&s| s < m.msg_seq);
                    p.final_seqs.insert(at, m.msg_seq);
                }
            }
            SpoolRecord::ConnClose(_) => p.closed = true,
            _ => {}
        }
        self.pending.entries.push(e);
        self.dirty = true;
    }

    /// Records held in memory: connection records, and the messages of exchanges not
    /// yet handed out.
    /// What reading the shared segments met so far (records, holes, segments handed
    /// back for reuse or deleted).
    pub fn segment_stats(&self) -> crate::segment::SegmentStats {
        self.segments.stats
    }

    pub fn retained_records(&self) -> usize {
        self.pending.entries.len()
    }

    /// Connections with records held in memory.
    pub fn retained_connections(&self) -> usize {
        self.conns.len()
    }

    /// `Lifecycle` records read since the last call.
    pub fn take_lifecycle(&mut self) -> Vec<LifecycleMark> {
        std::mem::take(&mut self.lifecycle)
    }

    /// Exchanges that became final since the last call, each once. With `flush`, every
    /// exchange still pending is final (shutdown: the writers are gone).
    ///
    /// Nothing is reassembled when no record came in since the last call; the records
    /// of the exchanges handed out are dropped.
    pub fn take_final(&mut self, flush: bool) -> Vec<Exchange> {
        if self.pending.entries.is_empty() || !(self.dirty || flush) {
            return Vec::new();
        }
        self.dirty = false;
        let starts: HashMap<u64, ConnStart> = self
            .conns
            .iter()
            .filter(|(_, p)| p.start != ConnStart::default())
            .map(|(&c, p)| (c, p.start))
            .collect();
        let assembly = assemble_from(&self.pending, &starts);
        let mut out = Vec::new();
        for ex in assembly.exchanges {
            let Some(p) = self.conns.get_mut(&ex.conn_id) else {
                continue;
            };
            let counted_only = ex.method.is_none() && ex.path.is_none();
            if counted_only && self.twins.contains(&ex.conn_id) {
                continue;
            }
            let done = flush || p.closed || (!counted_only && ex.seq < p.final_responses);
            if done && ex.seq >= p.start.request && p.emitted.insert(ex.seq) {
                out.push(ex);
            }
        }
        // Connections that are over have nothing more to give; the others drop the
        // messages of the exchanges they handed out.
        let mut over: HashSet<u64> = HashSet::new();
        let mut moved = false;
        for (&c, p) in &mut self.conns {
            if flush || p.closed {
                over.insert(c);
            } else {
                moved |= p.advance();
            }
        }
        if !over.is_empty() || moved {
            let conns = &self.conns;
            self.pending.entries.retain(|e| {
                let c = e.meta.conn_id;
                !over.contains(&c) && !conns.get(&c).is_some_and(|p| p.pruned(&e.record))
            });
            self.conns.retain(|c, _| !over.contains(c));
            self.twins.retain(|c| !over.contains(c));
        }
        out
    }

    /// Deletes spool files that are read to the end and will not grow: the same process
    /// has moved on to a later file, or the process is gone. Their records live on in
    /// memory as long as they are needed.
    pub fn delete_consumed(&mut self) {
        let mut latest: HashMap<&str, u64> = HashMap::new();
        for name in self.cursors.keys() {
            if let Some((pid, seq)) = pid_seq(name) {
                let s = latest.entry(pid).or_insert(seq);
                *s = (*s).max(seq);
            }
        }
        let mut gone = Vec::new();
        for (name, c) in &self.cursors {
            let path = self.dir.join(name);
            let Ok(meta) = std::fs::metadata(&path) else {
                gone.push(name.clone());
                continue;
            };
            if meta.len() != c.offset {
                continue;
            }
            let finished = match pid_seq(name) {
                Some((pid, seq)) => {
                    latest.get(pid).is_some_and(|&l| l > seq)
                        || !Path::new("/proc").join(pid).exists()
                }
                None => false,
            };
            if finished && std::fs::remove_file(&path).is_ok() {
                gone.push(name.clone());
            }
        }
        for name in gone {
            self.cursors.remove(&name);
        }
    }
}

fn pid_seq(name: &str) -> Option<(&str, u64)> {
    let (pid, seq) = name.strip_suffix(".tlr")?.split_once('-')?;
    pid.parse::<u32>().ok()?;
    Some((pid, seq.parse().ok()?))
}

/// How an invocation ended, as the runtime told the Runtime API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Response,
    Error,
}

/// One invocation as the runtime lived it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvocationWindow {
    pub request_id: String,
    /// When `invocation/next` returned this id (last response byte read).
    pub opened_unix_ns: Option<u64>,
    /// When the runtime started posting the outcome.
    pub closed_unix_ns: Option<u64>,
    pub outcome: Option<Outcome>,
    /// The event (captured prefix of the `next` response body).
    pub event: Vec<u8>,
    /// `Lambda-Runtime-Trace-Id` of the `next` response.
    pub trace_header: Option<String>,
}

/// Where an exchange belongs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attribution<'a> {
    /// Started inside this invocation's window.
    During(&'a str),
    /// Started after this invocation's response, before the next window.
    After(&'a str),
    /// Started before any known window (the init phase).
    Init,
}

/// The windows seen so far (the most recent [`REMEMBERED_WINDOWS`]).
#[derive(Default)]
pub struct Windows {
    list: VecDeque<InvocationWindow>,
}

impl Windows {
    pub fn get(&self, request_id: &str) -> Option<&InvocationWindow> {
        self.list.iter().find(|w| w.request_id == request_id)
    }

    fn entry(&mut self, request_id: &str) -> &mut InvocationWindow {
        if let Some(i) = self.list.iter().position(|w| w.request_id == request_id) {
            return &mut self.list[i];
        }
        if self.list.len() >= REMEMBERED_WINDOWS {
            self.list.pop_front();
        }
        self.list.push_back(InvocationWindow {
            request_id: request_id.to_string(),
            ..Default::default()
        });
        let last = self.list.len() - 1;
        &mut self.list[last]
    }

    /// Learns from one Runtime API exchange of the runtime.
    pub fn observe_runtime(&mut self, ex: &Exchange) {
        let Some(path) = ex.path.as_deref() else {
            return;
        };
        let Some(rest) = path.strip_prefix(INVOCATION_PREFIX) else {
            return;
        };
        if rest == "next" {
            let Some(id) = ex.response_header("Lambda-Runtime-Aws-Request-Id") else {
                return;
            };
            let id = id.trim().to_string();
            let trace = ex
                .response_header("Lambda-Runtime-Trace-Id")
                .map(str::to_string);
            let event = ex
                .response_body
                .as_ref()
                .map(|b| b.bytes.clone())
                .unwrap_or_default();
            let w = self.entry(&id);
            w.opened_unix_ns = Some(ex.start_unix_ns + ex.duration_ns);
            w.trace_header = trace;
            w.event = event;
        } else if let Some((id, what)) = rest.split_once('/') {
            let outcome = match what {
                "response" => Outcome::Response,
                "error" => Outcome::Error,
                _ => return,
            };
            if ex.method.as_deref() != Some("POST") {
                return;
            }
            let w = self.entry(id);
            w.outcome = Some(outcome);
            w.closed_unix_ns = Some(match w.closed_unix_ns {
                Some(t) => t.min(ex.start_unix_ns),
                None => ex.start_unix_ns,
            });
        }
    }

    /// Learns from a `Lifecycle` record.
    pub fn observe_lifecycle(&mut self, mark: &LifecycleMark) {
        let outcome = match mark.event {
            LifecycleEvent::InvocationResponse => Outcome::Response,
            LifecycleEvent::InvocationError => Outcome::Error,
            LifecycleEvent::InvocationNext => return,
        };
        let w = self.entry(&mark.request_id);
        w.outcome.get_or_insert(outcome);
        // The record is written when the POST has been fully written; its start (from
        // the exchange) is earlier and wins when known.
        w.closed_unix_ns.get_or_insert(mark.wall_ns);
    }

    /// True once the runtime has posted this invocation's outcome.
    pub fn is_closed(&self, request_id: &str) -> bool {
        self.get(request_id)
            .is_some_and(|w| w.closed_unix_ns.is_some())
    }

    /// The window an exchange that started at `start_unix_ns` belongs to.
    pub fn attribute(&self, start_unix_ns: u64) -> Attribution<'_> {
        let mut best: Option<&InvocationWindow> = None;
        for w in &self.list {
            let Some(open) = w.opened_unix_ns else {
                continue;
            };
            if open <= start_unix_ns && best.is_none_or(|b| b.opened_unix_ns < Some(open)) {
                best = Some(w);
            }
        }
        match best {
            None => Attribution::Init,
            Some(w) => match w.closed_unix_ns {
                Some(close) if start_unix_ns >= close => Attribution::After(&w.request_id),
                _ => Attribution::During(&w.request_id),
            },
        }
    }
}

/// True for the runtime's own Runtime API calls (`runtime_api` is the
/// `AWS_LAMBDA_RUNTIME_API` value): lifecycle, not user traffic.
pub fn is_runtime_api(ex: &Exchange, runtime_api: &str) -> bool {
    if !ex
        .path
        .as_deref()
        .is_some_and(|p| p.starts_with(RUNTIME_PREFIX))
    {
        return false;
    }
    let Some((host, port)) = runtime_api.rsplit_once(':') else {
        return false;
    };
    let Ok(port) = port.parse::<u16>() else {
        return false;
    };
    let by_host = ex.port == Some(port)
        && ex
            .host
            .as_deref()
            .is_some_and(|h| h.eq_ignore_ascii_case(host));
    let by_peer = ex.peer.is_some_and(|p| {
        p.port() == port
            && (p.ip().to_string() == host || (host == "localhost" && p.ip().is_loopback()))
    });
    by_host || by_peer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Body, TlsKind};

    fn ex(method: &str, path: &str, start: u64, dur: u64) -> Exchange {
        Exchange {
            pid: 1,
            conn_id: 1,
            seq: 0,
            start_unix_ns: start,
            duration_ns: dur,
            method: Some(method.into()),
            scheme: "http",
            host: Some("127.0.0.1".into()),
            port: Some(9001),
            path: Some(path.into()),
            query: None,
            http_version: Some("1.1".into()),
            status: Some(200),
            request_headers: vec![],
            response_headers: vec![],
            response_trailers: Vec::new(),
            pushed: false,
            request_body: None,
            response_body: None,
            request_wire_bytes: 0,
            response_wire_bytes: 0,
            truncated: false,
            peer: "127.0.0.1:9001".parse().ok(),
            tls: TlsKind::None,
            sni: None,
            alpn: None,
            error: None,
            aws: None,
            grpc: None,
        }
    }

    fn next(id: &str, start: u64, dur: u64) -> Exchange {
        let mut e = ex("GET", "/2018-06-01/runtime/invocation/next", start, dur);
        e.response_headers = vec![
            ("Lambda-Runtime-Aws-Request-Id".into(), id.into()),
            (
                "Lambda-Runtime-Trace-Id".into(),
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8".into(),
            ),
        ];
        e.response_body = Some(Body {
            bytes: br#"{"k":1}"#.to_vec(),
            size: 7,
            truncated: false,
            decoded: None,
        });
        e
    }

    #[test]
    fn windows_from_runtime_exchanges() {
        let mut w = Windows::default();
        assert_eq!(w.attribute(5), Attribution::Init);
        w.observe_runtime(&next("a", 0, 100));
        assert!(!w.is_closed("a"));
        assert_eq!(w.attribute(150), Attribution::During("a"));
        w.observe_runtime(&ex(
            "POST",
            "/2018-06-01/runtime/invocation/a/response",
            200,
            5,
        ));
        assert!(w.is_closed("a"));
        assert_eq!(w.get("a").unwrap().outcome, Some(Outcome::Response));
        assert_eq!(w.get("a").unwrap().event, br#"{"k":1}"#);
        assert_eq!(w.attribute(50), Attribution::Init);
        assert_eq!(w.attribute(199), Attribution::During("a"));
        assert_eq!(w.attribute(250), Attribution::After("a"));
        // The next window: a long poll that returned at 1000.
        w.observe_runtime(&next("b", 205, 795));
        assert_eq!(w.attribute(999), Attribution::After("a"));
        assert_eq!(w.attribute(1000), Attribution::During("b"));
        w.observe_lifecycle(&LifecycleMark {
            event: LifecycleEvent::InvocationError,
            request_id: "b".into(),
            wall_ns: 2000,
        });
        assert!(w.is_closed("b"));
        assert_eq!(w.get("b").unwrap().outcome, Some(Outcome::Error));
        assert_eq!(w.attribute(2500), Attribution::After("b"));
    }

    #[test]
    fn runtime_api_exchanges_are_recognised() {
        let e = ex("GET", "/2018-06-01/runtime/invocation/next", 0, 1);
        assert!(is_runtime_api(&e, "127.0.0.1:9001"));
        assert!(!is_runtime_api(&e, "127.0.0.1:9002"));
        let mut other = ex("GET", "/2018-06-01/runtime/invocation/next", 0, 1);
        other.port = Some(8080);
        other.host = Some("example.com".into());
        other.peer = "10.0.0.1:8080".parse().ok();
        assert!(!is_runtime_api(&other, "127.0.0.1:9001"));
        let user = ex("GET", "/items", 0, 1);
        assert!(!is_runtime_api(&user, "127.0.0.1:9001"));
    }
}
