//! The Lambda extension's spool tail over a long-lived environment: keep-alive
//! connections that span every invocation (the runtime's own to the Runtime API, an
//! SDK's pool) must not make it grow, and every exchange is handed out exactly once.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use common::h2::{block, F, H2, IN, OUT};
use common::{SpoolWriter, MS};
use tapline::{Exchange, ExchangeFeed};
use tapline_record::{h2_block_flags, h2_stream_flags, msg_flags, Direction, Protocol};

const INVOCATIONS: u32 = 1000;
/// Most records the tail may hold between rounds, whatever the number of invocations:
/// the connections' own records plus the runtime's pending `GET next` plus a user
/// response still arriving.
const BOUND: usize = 16;

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(tag: &str) -> Dir {
    let d = std::env::temp_dir().join(format!("tapline-window-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    Dir(d)
}

fn next_response(id: &str, i: u32) -> (String, Vec<u8>) {
    let body = format!("{{\"i\":{i}}}").into_bytes();
    let head = format!(
        "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: {id}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    (head, body)
}

#[test]
fn keep_alive_connections_stay_bounded_over_many_invocations() {
    let dir = temp_dir("keepalive");
    let path = dir.0.join("4242-0.tlr");
    let mut file = std::fs::File::create(&path).expect("spool file");
    let mut w = SpoolWriter::new(4242);
    let runtime = w.conn_id(1);
    let user = w.conn_id(2);
    let api = "127.0.0.1:9001";
    let get_next =
        "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n\r\n";

    // Init: the runtime opens its connection and long-polls for the first event; the
    // user code opens a pooled connection.
    w.open(runtime, Protocol::Http1, 3, api);
    w.request(runtime, 0, get_next, b"");
    w.open(user, Protocol::Http1, 4, "127.0.0.1:8080");

    let mut tail = ExchangeFeed::new(&dir.0);
    let mut got: Vec<Exchange> = Vec::new();
    let mut max_retained = 0;
    let mut pooled = PooledCalls {
        user,
        resp_seq: 0,
        late_end: None,
    };
    let mut fresh_conns = 0u32;
    for i in 0..INVOCATIONS {
        let id = format!("req-{i:04}");
        pooled.finish_late_end(&mut w);
        let (head, body) = next_response(&id, i);
        w.tick(MS).response(runtime, 2 * i, &head, &body);

        // The function: one call on the pooled connection, and every tenth invocation a
        // call on a new connection.
        pooled.call(&mut w, i);
        if i % 10 == 0 {
            fresh_conns += 1;
            fresh_call(&mut w, fresh_conns, i);
        }

        // The runtime posts the result and long-polls again.
        let post = format!(
            "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nHost: {api}\r\nContent-Length: 2\r\n\r\n"
        );
        w.tick(MS).request(runtime, 2 * i + 1, &post, b"ok");
        w.response(
            runtime,
            2 * i + 1,
            "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
            b"",
        );
        w.tick(MS).request(runtime, 2 * i + 2, get_next, b"");

        // The extension's round for this invocation.
        file.write_all(&w.bytes).expect("append");
        w.bytes.clear();
        assert!(tail.read_new().expect("read") > 0);
        got.extend(tail.take_final(false));
        // A second look with nothing new changes nothing.
        assert!(tail.take_final(false).is_empty());
        max_retained = max_retained.max(tail.retained_records());
        assert!(
            tail.retained_records() <= BOUND,
            "invocation {i}: {} records retained",
            tail.retained_records()
        );
    }
    assert!(tail.retained_connections() <= 2);
    // Shutdown: the pending long poll is final now.
    got.extend(tail.take_final(true));
    assert_eq!(tail.retained_records(), 0);
    assert_eq!(tail.retained_connections(), 0);
    eprintln!("most records retained between rounds: {max_retained}");

    let by_conn = by_connection(&got);
    let rt = &by_conn[&runtime];
    check_runtime_exchanges(rt);
    let us = &by_conn[&user];
    check_user_exchanges(us);

    let fresh: Vec<&&Exchange> = by_conn
        .iter()
        .filter(|(c, _)| **c != runtime && **c != user)
        .flat_map(|(_, xs)| xs)
        .collect();
    assert_eq!(fresh.len(), fresh_conns as usize);
    assert!(fresh.iter().all(|x| x.status == Some(204)));
    assert_eq!(
        got.len(),
        rt.len() + us.len() + fresh.len(),
        "nothing else handed out"
    );
}

/// The function's calls on its pooled connection `user`: `resp_seq` is the next
/// response's position on it; `late_end` a response whose end record is written only
/// in the next round (its position, start time and length).
struct PooledCalls {
    user: u64,
    resp_seq: u32,
    late_end: Option<(u32, u64, u64)>,
}

impl PooledCalls {
    /// A response from the last round whose end is read only now.
    fn finish_late_end(&mut self, w: &mut SpoolWriter) {
        if let Some((seq, start, len)) = self.late_end.take() {
            w.tick(MS).end(
                self.user,
                Direction::Ingress,
                seq,
                len - 3,
                3,
                len,
                0,
                200,
                start,
            );
        }
    }

    /// Invocation `i`'s call (every other one with a `100 Continue` first; every
    /// seventh one's end left to the next round).
    fn call(&mut self, w: &mut SpoolWriter, i: u32) {
        let user = self.user;
        let uhead = format!("POST /u?i={i} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
        w.tick(MS).request(user, i, &uhead, b"{}");
        if i.is_multiple_of(2) {
            w.message(
                user,
                Direction::Ingress,
                self.resp_seq,
                "HTTP/1.1 100 Continue\r\n\r\n",
                b"",
                msg_flags::NO_BODY,
            );
            self.resp_seq += 1;
        }
        let rhead = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
        let rbody = format!("{:03}", i % 1000);
        if i % 7 == 3 {
            // Head and body now, the end in the next round (after the runtime posted).
            let start = w.now;
            w.data(
                user,
                Direction::Ingress,
                tapline_record::Part::Head,
                self.resp_seq,
                0,
                rhead.as_bytes(),
            );
            w.data(
                user,
                Direction::Ingress,
                tapline_record::Part::Body,
                self.resp_seq,
                0,
                rbody.as_bytes(),
            );
            self.late_end = Some((self.resp_seq, start, (rhead.len() + 3) as u64));
        } else {
            w.response(user, self.resp_seq, rhead, rbody.as_bytes());
        }
        self.resp_seq += 1;
    }
}

/// Invocation `i`'s call on a new connection (the `n`th), closed after its response.
fn fresh_call(w: &mut SpoolWriter, n: u32, i: u32) {
    let c = w.conn_id(100 + n);
    w.open(c, Protocol::Http1, 5, "127.0.0.1:8081");
    w.request(
        c,
        0,
        &format!("GET /fresh?i={i} HTTP/1.1\r\nHost: 127.0.0.1:8081\r\n\r\n"),
        b"",
    );
    w.response(c, 0, "HTTP/1.1 204 No Content\r\n\r\n", b"");
    w.closed(c);
}

/// The exchanges by connection, in order; each exchange once: positions 0..n on each
/// connection, no gaps, no repeats.
fn by_connection(got: &[Exchange]) -> BTreeMap<u64, Vec<&Exchange>> {
    let mut by_conn: BTreeMap<u64, Vec<&Exchange>> = BTreeMap::new();
    for x in got {
        by_conn.entry(x.conn_id).or_default().push(x);
    }
    for (conn, xs) in &mut by_conn {
        xs.sort_by_key(|x| x.seq);
        let seqs: Vec<u32> = xs.iter().map(|x| x.seq).collect();
        let want: Vec<u32> = (0..xs.len() as u32).collect();
        assert_eq!(seqs, want, "connection {conn:#x}");
    }
    by_conn
}

/// The runtime's connection: per invocation its `GET next` (with the event) and its
/// `POST response`, then the pending long poll, which never got a response.
fn check_runtime_exchanges(rt: &[&Exchange]) {
    assert_eq!(rt.len(), 2 * INVOCATIONS as usize + 1);
    for i in 0..INVOCATIONS {
        let id = format!("req-{i:04}");
        let next = rt[2 * i as usize];
        assert_eq!(
            next.path.as_deref(),
            Some("/2018-06-01/runtime/invocation/next")
        );
        assert_eq!(
            next.response_header("Lambda-Runtime-Aws-Request-Id"),
            Some(id.as_str())
        );
        let body = next.response_body.as_ref().expect("event");
        assert_eq!(body.bytes, format!("{{\"i\":{i}}}").into_bytes());
        assert_eq!(next.error, None);
        let post = rt[2 * i as usize + 1];
        assert_eq!(
            post.path.as_deref(),
            Some(format!("/2018-06-01/runtime/invocation/{id}/response").as_str())
        );
        assert_eq!(post.status, Some(202));
    }
    let last = rt.last().expect("last");
    assert_eq!(last.status, None);
    assert_eq!(last.error.as_deref(), Some("no response (process killed)"));
}

/// The pooled connection: one complete exchange per invocation.
fn check_user_exchanges(us: &[&Exchange]) {
    assert_eq!(us.len(), INVOCATIONS as usize);
    for (i, x) in us.iter().enumerate() {
        assert_eq!(x.query.as_deref(), Some(format!("i={i}").as_str()));
        assert_eq!(x.status, Some(200), "user exchange {i}");
        let body = x.response_body.as_ref().expect("body");
        assert_eq!(body.bytes, format!("{:03}", i % 1000).into_bytes());
        assert_eq!(x.error, None);
    }
}

/// One HTTP/2 connection that lives through every round (a pooled SDK connection): its
/// streams are handed out one by one, each once, in the round it becomes final, while
/// the HPACK state goes on from the connection's first header block. Request headers
/// and the response `server` field are sent once as literals that enter the dynamic
/// table and referred to by index from then on, so a stream decodes right only if every
/// earlier block was decoded in order, even after its records were dropped. Some
/// responses end a round later; every tenth stream is reset, and the server's response
/// headers for it arrive after the reset (the stream is handed out already), adding an
/// entry that moves the later indexes: that block must still be decoded.
#[test]
fn a_long_lived_h2_connection_hands_out_each_stream_once_with_its_hpack_state() {
    const ROUNDS: u32 = 300;
    let dir = temp_dir("h2");
    let mut file = std::fs::File::create(dir.0.join("42-0.tlr")).expect("spool file");
    let mut c = H2::new(Protocol::H2c);
    let mut feed = ExchangeFeed::new(&dir.0);
    let mut got: Vec<Exchange> = Vec::new();
    let mut rounds = H2Rounds::new();
    let mut max_retained = 0;
    for i in 0..ROUNDS {
        let mut expect_now = rounds.write(&mut c, i);
        file.write_all(&c.w.bytes).expect("append");
        c.w.bytes.clear();
        assert!(feed.read_new().expect("read") > 0);
        let round = feed.take_final(false);
        let mut ids: Vec<u32> = round.iter().map(|x| x.seq).collect();
        ids.sort_unstable();
        expect_now.sort_unstable();
        assert_eq!(ids, expect_now, "round {i}: the streams that became final");
        assert!(feed.take_final(false).is_empty());
        got.extend(round);
        max_retained = max_retained.max(feed.retained_records());
        assert!(
            feed.retained_records() <= 12 && feed.retained_h2_blocks() <= 4,
            "round {i}: {} records, {} decoded blocks retained",
            feed.retained_records(),
            feed.retained_h2_blocks()
        );
    }
    assert_eq!(feed.retained_connections(), 1);
    got.extend(feed.take_final(true));
    assert_eq!(feed.retained_records(), 0);
    eprintln!("most records retained between rounds: {max_retained}");

    got.sort_by_key(|x| x.seq);
    let ids: Vec<u32> = got.iter().map(|x| x.seq).collect();
    assert_eq!(ids, (0..ROUNDS).map(|i| 2 * i + 1).collect::<Vec<_>>());
    check_h2_exchanges(&got);
}

/// What the long-lived HTTP/2 connection's rounds carry from one round to the next.
struct H2Rounds {
    /// Dynamic table index of `server: h2-test` in the ingress direction (62 when it is
    /// the newest entry).
    server_idx: usize,
    late_end: Option<u32>,
    late_block: Option<u32>,
}

impl H2Rounds {
    fn new() -> Self {
        H2Rounds {
            server_idx: 62,
            late_end: None,
            late_block: None,
        }
    }

    /// Writes round `i`'s records to `c`; returns the streams that become final in it.
    fn write(&mut self, c: &mut H2, i: u32) -> Vec<u32> {
        let id = 2 * i + 1;
        let path = format!("/r/{i}");
        let mut req = vec![
            F::Idx(2),
            F::Idx(7),
            F::Lit(":path", &path),
            F::Lit(":authority", "api.example.com"),
        ];
        if i == 0 {
            req.extend([F::Add("user-agent", "sdk/1"), F::Add("x-tenant", "acme")]);
        } else {
            req.extend([F::Idx(63), F::Idx(62)]);
        }
        c.headers(OUT, id, h2_block_flags::END_STREAM, &block(&req));
        c.end(OUT, id, 0, h2_stream_flags::END_STREAM, 0);
        let mut expect_now = vec![];
        // Ends of the previous round's stream, and headers after a reset.
        if let Some(prev) = self.late_end.take() {
            c.end(IN, prev, 2, h2_stream_flags::END_STREAM, 0);
            expect_now.push(prev);
        }
        if let Some(prev) = self.late_block.take() {
            let b = block(&[F::Idx(8), F::Add("x-late", "1")]);
            c.headers(IN, prev, 0, &b);
            self.server_idx += 1;
        }
        if i % 10 == 9 {
            c.reset(IN, id, 8);
            c.end(IN, id, 0, h2_stream_flags::RESET, 8);
            self.late_block = Some(id);
            expect_now.push(id);
        } else {
            let server = if i == 0 {
                F::Add("server", "h2-test")
            } else {
                F::Idx(self.server_idx)
            };
            c.headers(IN, id, 0, &block(&[F::Idx(8), server]));
            c.data(IN, id, 0, b"ok");
            if i % 3 == 1 {
                self.late_end = Some(id);
            } else {
                c.end(IN, id, 2, h2_stream_flags::END_STREAM, 0);
                expect_now.push(id);
            }
        }
        expect_now
    }
}

/// Every stream of the long-lived connection, sorted by stream id, decoded in full.
fn check_h2_exchanges(got: &[Exchange]) {
    for (i, x) in got.iter().enumerate() {
        assert_eq!(x.http_version.as_deref(), Some("2"));
        assert_eq!(x.method.as_deref(), Some("GET"), "stream {}", x.seq);
        assert_eq!(x.path, Some(format!("/r/{i}")));
        assert_eq!(
            x.request_header("x-tenant"),
            Some("acme"),
            "stream {}",
            x.seq
        );
        assert_eq!(x.request_header("user-agent"), Some("sdk/1"));
        if i % 10 == 9 {
            assert_eq!(x.error.as_deref(), Some("stream reset: CANCEL"));
            assert_eq!(x.status, None);
        } else {
            assert_eq!(x.error, None, "stream {}", x.seq);
            assert_eq!(x.status, Some(200));
            assert_eq!(
                x.response_header("server"),
                Some("h2-test"),
                "stream {}",
                x.seq
            );
            let body = x.response_body.as_ref().expect("body");
            assert_eq!(body.bytes, b"ok");
        }
    }
}

/// Regression: a keep-alive connection whose first exchange has no captured request
/// head (its response came, its request did not) never lets the connection's start
/// move; without the feed's de-duplication its next exchange was handed out again at
/// every later poll (four times over four invocations).
#[test]
fn an_exchange_after_one_without_a_request_head_is_handed_out_once() {
    let dir = temp_dir("nohead");
    let path = dir.0.join("4243-0.tlr");
    let mut file = std::fs::File::create(&path).expect("spool file");
    let mut w = SpoolWriter::new(4243);
    let conn = w.conn_id(1);
    w.open(conn, Protocol::Http1, 3, "127.0.0.1:8080");
    // Exchange 0: only its response was captured.
    w.tick(MS).response(
        conn,
        0,
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
        b"ok",
    );
    // Exchange 1: whole.
    w.tick(MS).request(
        conn,
        1,
        "GET /second HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
        b"",
    );
    w.tick(MS).response(
        conn,
        1,
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
        b"ok",
    );
    let mut tail = ExchangeFeed::new(&dir.0);
    let mut got: Vec<Exchange> = Vec::new();
    for i in 0..4u32 {
        // Every poll brings something new (a call on a fresh connection), so the
        // feed reassembles what it still holds each time.
        fresh_call(&mut w, i + 1, i);
        file.write_all(&w.bytes).expect("append");
        w.bytes.clear();
        assert!(tail.read_new().expect("read") > 0);
        got.extend(tail.take_final(false));
    }
    got.extend(tail.take_final(true));
    let second: Vec<&Exchange> = got
        .iter()
        .filter(|x| x.path.as_deref() == Some("/second"))
        .collect();
    assert_eq!(second.len(), 1, "{second:#?}");
    let fresh = got
        .iter()
        .filter(|x| x.path.as_deref() == Some("/fresh"))
        .count();
    assert_eq!(fresh, 4);
}
