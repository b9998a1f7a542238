//! HTTP/2 reassembly: spool files written with the real `H2*` record encoders (as the
//! library writes them), header blocks made with a small HPACK encoder; each case
//! states the exchanges a user should see.

mod common;

use common::{SpoolWriter, MS};
use tapline::assemble::assemble;
use tapline::exchange::Exchange;
use tapline::spool::Spool;
use tapline_record as rec;
use tapline_record::{close_reason, tls_library, Direction, Protocol, RecordType};

const OUT: Direction = Direction::Egress;
const IN: Direction = Direction::Ingress;

/// An HPACK integer with an `n`-bit prefix, its first byte or'ed with `flags`.
fn int(out: &mut Vec<u8>, flags: u8, n: u32, v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut v = v - max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

fn string(out: &mut Vec<u8>, s: &str) {
    int(out, 0, 7, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// How a field is put in a block.
enum F<'a> {
    /// Literal with incremental indexing, new name (added to the dynamic table).
    Add(&'a str, &'a str),
    /// Literal without indexing, new name.
    Lit(&'a str, &'a str),
    /// Indexed field (static 1..=61, dynamic 62..).
    Idx(usize),
}

fn block(fields: &[F<'_>]) -> Vec<u8> {
    let mut b = Vec::new();
    for f in fields {
        match f {
            F::Add(n, v) => {
                b.push(0x40);
                string(&mut b, n);
                string(&mut b, v);
            }
            F::Lit(n, v) => {
                b.push(0x00);
                string(&mut b, n);
                string(&mut b, v);
            }
            F::Idx(i) => int(&mut b, 0x80, 7, *i),
        }
    }
    b
}

/// One HTTP/2 connection being written.
struct H2 {
    w: SpoolWriter,
    conn: u64,
    seq: [u32; 2],
}

impl H2 {
    fn new(protocol: Protocol) -> Self {
        let mut w = SpoolWriter::new(42);
        let conn = w.conn_id(1);
        w.open(conn, protocol, 5, "127.0.0.1:8443");
        // TLS plaintext with ALPN h2 is announced as H2c too, with a TlsInfo.
        let protocol = match protocol {
            Protocol::TlsPlaintext => Protocol::H2c,
            p => p,
        };
        let how = if protocol == Protocol::H2c {
            rec::h2_start::PRIOR_KNOWLEDGE
        } else {
            rec::h2_start::TLS
        };
        let s = rec::H2Start {
            how,
            flags: 0,
            upgrade_msg_seq: 0,
        };
        w.record(RecordType::H2Start, conn, &[&s.encode()]);
        H2 {
            w,
            conn,
            seq: [0, 0],
        }
    }

    fn headers(&mut self, dir: Direction, stream: u32, flags: u16, b: &[u8]) -> &mut Self {
        self.headers_cut(dir, stream, flags, b, b.len())
    }

    fn headers_cut(
        &mut self,
        dir: Direction,
        stream: u32,
        flags: u16,
        b: &[u8],
        whole: usize,
    ) -> &mut Self {
        let seq = &mut self.seq[dir as usize];
        let h = rec::H2Headers {
            dir: dir as u8,
            flags,
            stream_id: stream,
            promised_stream_id: 0,
            block_seq: *seq,
            len: b.len() as u32,
            block_len: whole as u32,
        };
        *seq += 1;
        self.w.tick(MS);
        self.w
            .record(RecordType::H2Headers, self.conn, &[&h.encode(), b]);
        self
    }

    fn push_promise(&mut self, stream: u32, promised: u32, b: &[u8]) -> &mut Self {
        let seq = &mut self.seq[IN as usize];
        let h = rec::H2Headers {
            dir: IN as u8,
            flags: rec::h2_block_flags::PUSH_PROMISE,
            stream_id: stream,
            promised_stream_id: promised,
            block_seq: *seq,
            len: b.len() as u32,
            block_len: b.len() as u32,
        };
        *seq += 1;
        self.w.tick(MS);
        self.w
            .record(RecordType::H2Headers, self.conn, &[&h.encode(), b]);
        self
    }

    fn data(&mut self, dir: Direction, stream: u32, offset: u64, b: &[u8]) -> &mut Self {
        let d = rec::H2Data {
            dir: dir as u8,
            flags: 0,
            stream_id: stream,
            offset,
            len: b.len() as u32,
        };
        self.w.tick(MS);
        self.w
            .record(RecordType::H2Data, self.conn, &[&d.encode(), b]);
        self
    }

    fn end(
        &mut self,
        dir: Direction,
        stream: u32,
        data_len: u64,
        flags: u16,
        code: u32,
    ) -> &mut Self {
        self.w.tick(MS);
        let e = rec::H2StreamEnd {
            dir: dir as u8,
            flags,
            stream_id: stream,
            data_len,
            wire_len: data_len + 9,
            first_wall_ns: self.w.wall() - MS,
            first_mono_ns: 0,
            last_wall_ns: self.w.wall(),
            last_mono_ns: 0,
            error_code: code,
        };
        self.w
            .record(RecordType::H2StreamEnd, self.conn, &[&e.encode()]);
        self
    }

    fn reset(&mut self, dir: Direction, stream: u32, code: u32) -> &mut Self {
        let r = rec::H2Reset {
            dir: dir as u8,
            stream_id: stream,
            error_code: code,
        };
        self.w.tick(MS);
        self.w
            .record(RecordType::H2Reset, self.conn, &[&r.encode()]);
        self
    }

    fn goaway(&mut self, dir: Direction, last: u32, code: u32) -> &mut Self {
        let g = rec::H2GoAway {
            dir: dir as u8,
            last_stream_id: last,
            error_code: code,
        };
        self.w.tick(MS);
        self.w
            .record(RecordType::H2GoAway, self.conn, &[&g.encode()]);
        self
    }

    fn settings(&mut self, dir: Direction, table: u32) -> &mut Self {
        let s = rec::H2Settings {
            dir: dir as u8,
            flags: rec::h2_settings_flags::HEADER_TABLE_SIZE,
            header_table_size: table,
            max_frame_size: 0,
        };
        self.w
            .record(RecordType::H2Settings, self.conn, &[&s.encode()]);
        self
    }

    fn exchanges(&mut self) -> Vec<Exchange> {
        let conn = self.conn;
        self.w.close(conn, close_reason::CLOSED, 0, 1000, 1000);
        let spool = Spool::from_files([("42-0.tlr", self.w.bytes.as_slice())]);
        let mut x = assemble(&spool).exchanges;
        x.sort_by_key(|x| x.seq);
        x
    }
}

const END: u16 = rec::h2_stream_flags::END_STREAM;
const HEND: u16 = rec::h2_block_flags::END_STREAM;

fn get(path: &str) -> Vec<u8> {
    block(&[
        F::Idx(2),
        F::Idx(7),
        F::Lit(":path", path),
        F::Lit(":authority", "api.example.com"),
    ])
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn a_stream_is_an_exchange_with_interim_headers_trailers_and_cookie_crumbs() {
    let mut c = H2::new(Protocol::H2c);
    let req = block(&[
        F::Idx(3), // POST
        F::Idx(6), // http
        F::Lit(":path", "/v1/items?limit=2"),
        F::Lit(":authority", "api.example.com:8080"),
        F::Lit("cookie", "a=1"),
        F::Lit("content-type", "application/json"),
        F::Lit("cookie", "b=2"),
    ]);
    c.headers(OUT, 1, 0, &req)
        .data(OUT, 1, 0, b"{\"x\":")
        .data(OUT, 1, 5, b"1}")
        .end(OUT, 1, 7, END, 0)
        .headers(IN, 1, 0, &block(&[F::Lit(":status", "100")]))
        .headers(IN, 1, 0, &block(&[F::Idx(8), F::Lit("server", "s")]))
        .data(IN, 1, 0, b"ok")
        .headers(IN, 1, HEND, &block(&[F::Lit("grpc-status", "0")]))
        .end(IN, 1, 2, END, 0);
    let x = c.exchanges();
    assert_eq!(x.len(), 1, "{x:#?}");
    let x = &x[0];
    assert_eq!(x.method.as_deref(), Some("POST"));
    assert_eq!(
        x.url().as_deref(),
        Some("http://api.example.com:8080/v1/items?limit=2")
    );
    assert_eq!(x.http_version.as_deref(), Some("2"));
    assert_eq!(x.status, Some(200));
    assert_eq!(
        x.request_headers,
        pairs(&[("cookie", "a=1; b=2"), ("content-type", "application/json")])
    );
    assert_eq!(x.response_headers, pairs(&[("server", "s")]));
    assert_eq!(x.response_trailers, pairs(&[("grpc-status", "0")]));
    assert_eq!(x.request_body.as_ref().unwrap().bytes, b"{\"x\":1}");
    assert_eq!(x.response_body.as_ref().unwrap().bytes, b"ok");
    assert_eq!((x.request_wire_bytes, x.response_wire_bytes), (16, 11));
    assert_eq!(x.error, None);
    assert!(!x.truncated && !x.pushed);
    assert!(x.duration_ns > 0);
}

#[test]
fn interleaved_streams_pair_by_id_and_share_the_dynamic_table() {
    let mut c = H2::new(Protocol::TlsPlaintext);
    c.w.tls_info(c.conn, tls_library::OPENSSL, "api.example.com", "h2", 5);
    // Stream 1 adds `authorization` to the egress table; streams 3..=9 reuse it by
    // index (62), as clients do for repeated headers.
    let first = block(&[
        F::Idx(2),
        F::Idx(7),
        F::Lit(":path", "/1"),
        F::Add(":authority", "api.example.com"),
        F::Add("authorization", "Bearer t0k3n"),
    ]);
    c.headers(OUT, 1, HEND, &first);
    for id in [3u32, 5, 7, 9] {
        let again = block(&[
            F::Idx(2),
            F::Idx(7),
            F::Lit(":path", &format!("/{id}")),
            F::Idx(63), // :authority, now second newest
            F::Idx(62), // authorization
        ]);
        c.headers(OUT, id, HEND, &again);
    }
    // Responses in reverse order, one with a body.
    for id in [9u32, 7, 5, 3, 1] {
        let status = if id == 5 { F::Idx(13) } else { F::Idx(8) };
        c.headers(IN, id, 0, &block(&[status]));
        c.data(IN, id, 0, format!("body {id}").as_bytes());
        c.end(IN, id, 6, END, 0);
    }
    let x = c.exchanges();
    assert_eq!(x.len(), 5, "{x:#?}");
    for (x, id) in x.iter().zip([1u32, 3, 5, 7, 9]) {
        assert_eq!(x.seq, id);
        assert_eq!(x.path.as_deref(), Some(format!("/{id}").as_str()));
        assert_eq!(x.host.as_deref(), Some("api.example.com"));
        assert_eq!(x.scheme, "https");
        assert_eq!(x.tls.as_str(), "openssl");
        assert_eq!(x.request_header("authorization"), Some("Bearer t0k3n"));
        assert_eq!(x.status, Some(if id == 5 { 404 } else { 200 }));
        assert_eq!(
            x.response_body.as_ref().unwrap().bytes,
            format!("body {id}").as_bytes()
        );
        assert_eq!(x.error, None, "stream {id}");
    }
}

#[test]
fn a_lost_block_loses_the_hpack_state_from_there_on() {
    let mut c = H2::new(Protocol::H2c);
    c.headers(OUT, 1, HEND, &get("/a"));
    c.headers(IN, 1, HEND, &block(&[F::Idx(8)]));
    c.seq[0] += 1; // block 1 (stream 3's request) lost to a drop
    c.headers(OUT, 5, HEND, &get("/c"));
    c.headers(IN, 5, HEND, &block(&[F::Idx(8)]));
    let x = c.exchanges();
    assert_eq!(x.len(), 2);
    assert_eq!(
        (x[0].path.as_deref(), x[0].error.as_deref()),
        (Some("/a"), None)
    );
    assert_eq!(x[1].seq, 5);
    assert_eq!(x[1].path, None);
    assert_eq!(x[1].error.as_deref(), Some("HPACK state lost"));
}

#[test]
fn a_cut_block_keeps_its_first_fields_and_loses_later_streams() {
    let mut c = H2::new(Protocol::H2c);
    let req = get("/big");
    let cut = &req[..req.len() - 4];
    c.headers_cut(OUT, 1, HEND, cut, req.len() + 40_000);
    c.headers(IN, 1, HEND, &block(&[F::Idx(8)]));
    c.headers(OUT, 3, HEND, &get("/next"));
    c.headers(IN, 3, HEND, &block(&[F::Idx(8)]));
    let x = c.exchanges();
    assert_eq!(x[0].method.as_deref(), Some("GET"));
    assert_eq!(x[0].path.as_deref(), Some("/big"));
    assert_eq!(x[0].status, Some(200));
    assert!(x[0].truncated);
    assert_eq!(x[1].error.as_deref(), Some("HPACK state lost"));
    assert_eq!(x[1].path, None);
}

#[test]
fn resets_goaway_and_a_connection_that_ended_mid_stream() {
    let mut c = H2::new(Protocol::H2c);
    for id in [1u32, 3, 5, 7] {
        c.headers(OUT, id, HEND, &get(&format!("/{id}")));
    }
    // 1: answered. 3: cancelled by the client. 5: not processed (GOAWAY last=3).
    // 7: headers came, then the connection ended.
    c.headers(IN, 1, HEND, &block(&[F::Idx(8)]));
    c.reset(OUT, 3, 0x8)
        .end(IN, 3, 0, rec::h2_stream_flags::RESET, 0x8);
    c.goaway(IN, 3, 0);
    c.headers(IN, 7, 0, &block(&[F::Idx(8)]));
    c.data(IN, 7, 0, b"par");
    c.end(IN, 7, 3, rec::h2_stream_flags::INCOMPLETE, 0);
    let x = c.exchanges();
    let errors: Vec<Option<&str>> = x.iter().map(|x| x.error.as_deref()).collect();
    assert_eq!(
        errors,
        [
            None,
            Some("stream reset: CANCEL"),
            Some("connection going away: NO_ERROR"),
            Some("connection going away: NO_ERROR"),
        ]
    );
    assert_eq!(x[3].status, Some(200));
}

#[test]
fn incomplete_response_without_goaway() {
    let mut c = H2::new(Protocol::H2c);
    c.headers(OUT, 1, HEND, &get("/slow"));
    c.headers(IN, 1, 0, &block(&[F::Idx(8)]));
    c.data(IN, 1, 0, b"par");
    c.end(IN, 1, 3, rec::h2_stream_flags::INCOMPLETE, 0);
    c.headers(OUT, 3, HEND, &get("/never"));
    let x = c.exchanges();
    assert_eq!(x[0].error.as_deref(), Some("incomplete response"));
    assert_eq!(x[1].error.as_deref(), Some("no response"));
}

#[test]
fn pushed_streams_are_exchanges() {
    let mut c = H2::new(Protocol::H2c);
    c.headers(OUT, 1, HEND, &get("/index.html"));
    c.push_promise(1, 2, &get("/style.css"));
    c.headers(IN, 1, 0, &block(&[F::Idx(8)]));
    c.headers(
        IN,
        2,
        0,
        &block(&[F::Idx(8), F::Lit("content-type", "text/css")]),
    );
    c.data(IN, 2, 0, b"p{}").end(IN, 2, 3, END, 0);
    c.data(IN, 1, 0, b"<p>").end(IN, 1, 3, END, 0);
    let x = c.exchanges();
    assert_eq!(x.len(), 2);
    assert!(!x[0].pushed);
    assert!(x[1].pushed);
    assert_eq!(x[1].path.as_deref(), Some("/style.css"));
    assert_eq!(x[1].status, Some(200));
    assert_eq!(x[1].response_body.as_ref().unwrap().bytes, b"p{}");
    assert_eq!(x[1].error, None);
}

#[test]
fn the_peers_table_size_setting_is_honoured() {
    // The client allows 8192: the server's size update to 8192 is fine and its
    // response decodes; without the setting it would not.
    for (setting, ok) in [(Some(8192u32), true), (None, false)] {
        let mut c = H2::new(Protocol::H2c);
        if let Some(s) = setting {
            c.settings(OUT, s);
        }
        c.headers(OUT, 1, HEND, &get("/"));
        let mut resp = Vec::new();
        int(&mut resp, 0x20, 5, 8192);
        resp.extend(block(&[F::Idx(8)]));
        c.headers(IN, 1, HEND, &resp);
        let x = c.exchanges();
        assert_eq!(x[0].status.is_some(), ok, "{setting:?}");
        assert_eq!(x[0].error.is_none(), ok, "{:?}", x[0].error);
    }
}

#[test]
fn a_connection_without_streams_is_counted() {
    let mut c = H2::new(Protocol::H2c);
    c.settings(OUT, 4096);
    let x = c.exchanges();
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].http_version.as_deref(), Some("2"));
    assert_eq!(x[0].method, None);
    assert_eq!(x[0].request_wire_bytes, 1000);
}

#[test]
fn h2c_upgrade_stream_1_answers_the_http1_request() {
    let mut w = SpoolWriter::new(42);
    let conn = w.conn_id(1);
    w.open(conn, Protocol::Http1, 5, "127.0.0.1:8080");
    w.request(
        conn,
        0,
        "GET /up HTTP/1.1\r\nHost: localhost:8080\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n",
        b"",
    );
    w.response(
        conn,
        0,
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
        b"",
    );
    let s = rec::H2Start {
        how: rec::h2_start::H2C_UPGRADE,
        flags: 0,
        upgrade_msg_seq: 0,
    };
    w.record(RecordType::H2Start, conn, &[&s.encode()]);
    let mut c = H2 {
        w,
        conn,
        seq: [0, 0],
    };
    c.headers(IN, 1, 0, &block(&[F::Idx(8)]));
    c.data(IN, 1, 0, b"upgraded").end(IN, 1, 8, END, 0);
    c.headers(OUT, 3, HEND, &get("/after"));
    c.headers(IN, 3, HEND, &block(&[F::Idx(13)]));
    let x = c.exchanges();
    assert_eq!(x.len(), 2, "{x:#?}");
    assert_eq!(x[0].method.as_deref(), Some("GET"));
    assert_eq!(x[0].path.as_deref(), Some("/up"));
    assert_eq!(x[0].status, Some(200));
    assert_eq!(x[0].http_version.as_deref(), Some("2"));
    assert_eq!(x[0].response_body.as_ref().unwrap().bytes, b"upgraded");
    assert_eq!(x[0].error, None);
    assert_eq!(
        (x[1].path.as_deref(), x[1].status),
        (Some("/after"), Some(404))
    );
}
