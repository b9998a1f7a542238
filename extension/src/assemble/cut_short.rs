//! Why an HTTP/1 exchange stopped short, said with the counts: no response (and after
//! how long the client gave up), a response body cut off (got N of M bytes, by whom),
//! a request body the client stopped sending after an early answer.
//!
//! Why here and not in the library: the library writes what it saw (a message's end or
//! its counts so far, and how the connection ended); the words, and the sizes the heads
//! declared, are the reader's. A process killed mid-transfer writes no end at all, so
//! the reader finishes such an exchange from its furthest `MsgProgress` record.

use tapline_record::{msg_flags, CloseReason};

use super::connection::{Connection, Message, ECONNRESET};
use super::failure::errno_text;
use super::http_head::header;

/// The error of an exchange cut short because its writer dropped some of its records
/// (the spool was full: `TAPLINE_SPOOL_MAX_BYTES`, `TAPLINE_SPOOL_MAX_SEGMENTS`, the
/// disk): a hole in one of its messages, an end that never came while later messages
/// on the connection did, or nothing left of it at all.
pub(crate) const RECORDS_LOST: &str = "records lost (spool full)";

/// How the connection that carried an exchange ended.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ending {
    /// The process closed it (`close`, `SSL_free`): the client gave up. Wall time.
    ClientClosed(u64),
    /// Still open when the process exited (the exit handler wrote its end). Wall time.
    ProcessExited(u64),
    /// No end record at all: the process died without its exit handler (a signal,
    /// `_exit`) — or, for `tapline show` on a spool still being written, still runs.
    ProcessKilled,
    /// The peer closed its side (a read returned 0).
    ServerClosed,
    /// A read or write failed with `ECONNRESET`.
    Reset,
    /// Another connection-ending errno (`EPIPE`, `ETIMEDOUT`, ...).
    Error(i32),
    /// Capture stopped following the connection (framing lost, protocol switched).
    Untracked,
}

/// What a head declared about its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Declared {
    Length(u64),
    Chunked,
    Unknown,
}

impl Declared {
    pub(super) fn of(headers: &[(String, String)]) -> Declared {
        let chunked = header(headers, "transfer-encoding").is_some_and(|te| {
            te.rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
        });
        if chunked {
            return Declared::Chunked;
        }
        match header(headers, "content-length").and_then(|v| v.parse::<u64>().ok()) {
            Some(n) => Declared::Length(n),
            None => Declared::Unknown,
        }
    }

    /// `got N of M bytes`, `got N bytes, chunked body not terminated`, `got N bytes`.
    fn got(self, n: u64, at_least: bool) -> String {
        let n = if at_least {
            format!("at least {n}")
        } else {
            n.to_string()
        };
        match self {
            Declared::Length(m) => format!("got {n} of {m} bytes"),
            Declared::Chunked => format!("got {n} bytes, chunked body not terminated"),
            Declared::Unknown => format!("got {n} bytes"),
        }
    }
}

/// Body bytes of a message so far: its end's count, else its furthest progress
/// record's, else what was captured. True when the count is a lower bound (no end).
pub(super) fn body_so_far(m: &Message) -> (u64, bool) {
    let captured = {
        let (b, _) = m.body.joined();
        b.len() as u64
    };
    match (m.end, m.progress) {
        (Some(e), _) => (e.body_len.max(captured), false),
        (None, Some(p)) => (p.body_len.max(captured), true),
        (None, None) => (captured, true),
    }
}

/// The captured head ends with its blank line.
fn head_complete(m: &Message) -> bool {
    let (head, _) = m.head.joined();
    head.ends_with(b"\n\r\n") || head.ends_with(b"\n\n") || !m.body.is_empty()
}

fn seconds(from_ns: u64, to_ns: u64) -> String {
    format!("{:.1} s", to_ns.saturating_sub(from_ns) as f64 / 1e9)
}

impl Connection {
    fn ending(&self) -> Ending {
        let Some(close) = self.close else {
            return Ending::ProcessKilled;
        };
        let at = self.close_wall_ns.unwrap_or(self.last_wall_ns);
        match (close.reason, close.errno) {
            (CloseReason::Error, ECONNRESET) => Ending::Reset,
            (CloseReason::Error, e) => Ending::Error(e),
            (CloseReason::PeerEof, _) => Ending::ServerClosed,
            (CloseReason::Closed, _) => Ending::ClientClosed(at),
            (CloseReason::AtExit, _) => Ending::ProcessExited(at),
            _ => Ending::Untracked,
        }
    }

    /// A request with no response: why, and after how long the client gave up.
    pub(super) fn no_response(&self, req: &Message) -> String {
        let sent = req.end_wall_ns();
        match self.ending() {
            Ending::Reset => "connection reset".into(),
            Ending::ServerClosed => "connection closed".into(),
            Ending::ClientClosed(at) => {
                format!("no response (client closed after {})", seconds(sent, at))
            }
            Ending::ProcessExited(at) => {
                format!("no response (process exited after {})", seconds(sent, at))
            }
            Ending::ProcessKilled => "no response (process killed)".into(),
            Ending::Error(e) => format!("no response ({})", errno_text(e)),
            Ending::Untracked => "no response".into(),
        }
    }

    /// A response that did not end: cut mid-body (with the counts) or mid-head.
    pub(super) fn response_cut(&self, resp: &Message, declared: Declared) -> String {
        let ending = self.ending();
        if !head_complete(resp) {
            return match ending {
                Ending::Reset => "connection reset".into(),
                _ => "incomplete response".into(),
            };
        }
        let (n, at_least) = body_so_far(resp);
        let declared = match resp.end {
            Some(e) if e.has(msg_flags::CHUNKED) => Declared::Chunked,
            _ => declared,
        };
        let got = declared.got(n, at_least && ending == Ending::ProcessKilled);
        let who = match ending {
            Ending::Reset => "connection reset".to_owned(),
            Ending::ServerClosed => "connection closed".to_owned(),
            Ending::ClientClosed(_) => "client closed".to_owned(),
            Ending::ProcessExited(_) => "process exited".to_owned(),
            Ending::ProcessKilled => "process killed".to_owned(),
            Ending::Error(e) => errno_text(e),
            Ending::Untracked => return "incomplete response".into(),
        };
        format!("{who} mid-body ({got})")
    }

    /// A request whose body did not end although it was answered (an early response:
    /// 413, 401, 417, a server that answers without reading the upload): how much of
    /// the body the client sent before it stopped. `None` when the request ended.
    pub(super) fn request_cut(&self, req: &Message, declared: Declared) -> Option<String> {
        let ended = req
            .end
            .is_some_and(|e| !e.has(msg_flags::INCOMPLETE) && !e.has(msg_flags::MALFORMED));
        if ended {
            return None;
        }
        if !head_complete(req) {
            return Some("request head cut off".into());
        }
        let (n, at_least) = body_so_far(req);
        let n = if at_least && self.ending() == Ending::ProcessKilled {
            format!("at least {n}")
        } else {
            n.to_string()
        };
        let why = match self.ending() {
            Ending::Reset => " (connection reset)".to_owned(),
            Ending::Error(e) => format!(" ({})", errno_text(e)),
            _ => String::new(),
        };
        Some(match declared {
            Declared::Length(m) => format!("request body cut at {n} of {m} bytes{why}"),
            Declared::Chunked => {
                format!("request body cut at {n} bytes, chunked body not terminated{why}")
            }
            Declared::Unknown => format!("request body cut at {n} bytes{why}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn declared_body_from_the_head() {
        assert_eq!(
            Declared::of(&h(&[("Content-Length", " 100 ")])),
            Declared::Length(100)
        );
        assert_eq!(
            Declared::of(&h(&[
                ("Transfer-Encoding", "gzip, Chunked"),
                ("Content-Length", "5")
            ])),
            Declared::Chunked
        );
        assert_eq!(
            Declared::of(&h(&[("Content-Length", "x")])),
            Declared::Unknown
        );
        assert_eq!(Declared::of(&[]), Declared::Unknown);
    }

    #[test]
    fn counts_are_said_in_words() {
        assert_eq!(Declared::Length(9).got(3, false), "got 3 of 9 bytes");
        assert_eq!(
            Declared::Length(9).got(3, true),
            "got at least 3 of 9 bytes"
        );
        assert_eq!(
            Declared::Chunked.got(30000, false),
            "got 30000 bytes, chunked body not terminated"
        );
        assert_eq!(Declared::Unknown.got(0, false), "got 0 bytes");
        assert_eq!(seconds(1_000_000_000, 3_040_000_000), "2.0 s");
    }
}
