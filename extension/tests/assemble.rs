//! Reassembly, table-driven: each case writes spool files with the real record
//! encoders (as the library would) and states the exchanges a user should see.

mod common;

use common::{SpoolWriter, MS, T0_WALL};
use tapline::{assemble, Assembly, Spool};
use tapline_record::{
    msg_flags, CloseReason, Direction, MsgEnd, Part, Protocol, RecordType, TlsLibrary,
};

/// What a user sees of one exchange, in the order of the report.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    method: Option<String>,
    url: Option<String>,
    status: Option<u16>,
    request_body_size: u64,
    response_body_size: u64,
    tls: &'static str,
    error: Option<String>,
}

fn seen(
    method: Option<&str>,
    url: &str,
    status: Option<u16>,
    sizes: (u64, u64),
    tls: &'static str,
    error: Option<&str>,
) -> Seen {
    Seen {
        method: method.map(str::to_owned),
        url: Some(url.to_owned()),
        status,
        request_body_size: sizes.0,
        response_body_size: sizes.1,
        tls,
        error: error.map(str::to_owned),
    }
}

fn read(files: &[Vec<u8>]) -> Assembly {
    let names: Vec<String> = (0..files.len())
        .map(|i| format!("{}-0.tlr", 100 + i))
        .collect();
    let spool = Spool::from_files(
        names
            .iter()
            .map(String::as_str)
            .zip(files.iter().map(Vec::as_slice)),
    );
    assemble(&spool)
}

fn view(a: &Assembly) -> Vec<Seen> {
    a.exchanges
        .iter()
        .map(|x| Seen {
            method: x.method.clone(),
            url: x.url_or_origin(),
            status: x.status,
            request_body_size: x.request_body_size(),
            response_body_size: x.response_body_size(),
            tls: x.tls.as_str(),
            error: x.error.clone(),
        })
        .collect()
}

const GET: &str = "GET /items?id=7 HTTP/1.1\r\nHost: api.test:8080\r\nAccept: */*\r\n\r\n";
const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";

fn simple_get() -> Vec<Vec<u8>> {
    let mut w = SpoolWriter::new(100);
    let c = w.conn_id(1);
    w.open(c, Protocol::Http1, 5, "127.0.0.1:8080")
        .request(c, 0, GET, b"")
        .tick(10 * MS)
        .response(c, 0, OK, b"hello")
        .closed(c);
    vec![w.bytes]
}

fn keep_alive() -> Vec<Vec<u8>> {
    let mut w = SpoolWriter::new(100);
    let c = w.conn_id(1);
    w.open(c, Protocol::Http1, 5, "127.0.0.1:8080");
    for i in 0..3u32 {
        let head =
            format!("POST /n/{i} HTTP/1.1\r\nHost: api.test:8080\r\nContent-Length: 2\r\n\r\n");
        w.request(c, i, &head, b"{}").response(c, i, OK, b"hello");
    }
    w.closed(c);
    vec![w.bytes]
}

fn pipelined() -> Vec<Vec<u8>> {
    let mut w = SpoolWriter::new(100);
    let c = w.conn_id(1);
    w.open(c, Protocol::Http1, 5, "127.0.0.1:8080");
    for i in 0..3u32 {
        w.request(
            c,
            i,
            &format!("GET /p{i} HTTP/1.1\r\nHost: api.test:8080\r\n\r\n"),
            b"",
        );
    }
    for (i, body) in [&b"a"[..], b"bb", b"ccc"].iter().enumerate() {
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        w.response(c, i as u32, &head, body);
    }
    w.closed(c);
    vec![w.bytes]
}

fn continue_100() -> Vec<Vec<u8>> {
    let mut w = SpoolWriter::new(100);
    let c = w.conn_id(1);
    let post = "POST /up HTTP/1.1\r\nHost: api.test:8080\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    w.open(c, Protocol::Http1, 5, "127.0.0.1:8080")
        .message(
            c,
            Direction::Ingress,
            0,
            "HTTP/1.1 100 Continue\r\n\r\n",
            b"",
            msg_flags::NO_BODY,
        )
        .request(c, 0, post, b"data")
        .response(
            c,
            1,
            "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
            b"",
        )
        .request(
            c,
            1,
            "GET /after HTTP/1.1\r\nHost: api.test:8080\r\n\r\n",
            b"",
        )
        .response(c, 2, OK, b"hello")
        .closed(c);
    vec![w.bytes]
}

fn chunked() -> Vec<Vec<u8>> {
    let mut w = SpoolWriter::new(100);
    let c = w.conn_id(1);
    let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    w.open(c, Protocol::Http1, 5, "127.0.0.1:8080")
        .request(c, 0, GET, b"");
    let start = w.now;
    // 10000 decoded bytes, of which the first 8192 were captured, in two records.
    w.data(c, Direction::Ingress, Part::Head, 0, 0, head.as_bytes())
        .data(c, Direction::Ingress, Part::Body, 0, 4096, &[b'y'; 4096])
        .data(c, Direction::Ingress, Part::Body, 0, 0, &[b'x'; 4096])
        .tick(MS)
        .end(
            c,
            Direction::Ingress,
            0,
            head.len() as u64,
            10_000,
            head.len() as u64 + 10_000 + 40,
            msg_flags::CHUNKED | msg_flags::BODY_TRUNCATED,
            200,
            start,
        )
        .closed(c);
    vec![w.bytes]
}

fn head_request() -> Vec<Vec<u8>> {
    let mut w = SpoolWriter::new(100);
    let c = w.conn_id(1);
    w.open(c, Protocol::Http1, 5, "127.0.0.1:8080")
        .request(
            c,
            0,
            "HEAD /big HTTP/1.1\r\nHost: api.test:8080\r\n\r\n",
            b"",
        )
        .message(
            c,
            Direction::Ingress,
            0,
            "HTTP/1.1 200 OK\r\nContent-Length: 123456\r\n\r\n",
            b"",
            msg_flags::NO_BODY,
        )
        .closed(c);
    vec![w.bytes]
}

fn http10_until_close() -> Vec<Vec<u8>> {
    let mut w = SpoolWriter::new(100);
    let c = w.conn_id(1);
    w.open(c, Protocol::Http1, 5, "10.0.0.9:80")
        .request(c, 0, "GET /old HTTP/1.0\r\nHost: legacy.test\r\n\r\n", b"")
        .message(
            c,
            Direction::Ingress,
            0,
            "HTTP/1.0 200 OK\r\n\r\n",
            b"until the end",
            msg_flags::UNTIL_CLOSE,
        )
        .close(c, CloseReason::PeerEof, 0, 40, 60);
    vec![w.bytes]
}

fn no_response() -> Vec<Vec<u8>> {
    let mut w = SpoolWriter::new(100);
    let c = w.conn_id(1);
    w.open(c, Protocol::Http1, 5, "127.0.0.1:8080")
        .request(c, 0, GET, b"")
        .tick(5 * MS)
        .closed(c);
    vec![w.bytes]
}

fn peer_closed() -> Vec<Vec<u8>> {
    let mut w = SpoolWriter::new(100);
    let c = w.conn_id(1);
    w.open(c, Protocol::Http1, 5, "127.0.0.1:8080")
        .request(c, 0, GET, b"")
        .close(c, CloseReason::PeerEof, 0, 60, 0);
    vec![w.bytes]
}

fn reset() -> Vec<Vec<u8>> {
    let mut w = SpoolWriter::new(100);
    let c = w.conn_id(1);
    w.open(c, Protocol::Http1, 5, "127.0.0.1:8080")
        .request(c, 0, GET, b"")
        .close(c, CloseReason::Error, 104, 60, 0);
    vec![w.bytes]
}

const HELLO: &[u8] = include_bytes!("payloads/client_hello_openssl_sni_alpn.bin");

fn opaque_tls() -> Vec<Vec<u8>> {
    let mut w = SpoolWriter::new(100);
    let c = w.conn_id(1);
    w.open(c, Protocol::Tls, 7, "93.184.216.34:443")
        .data(c, Direction::Egress, Part::Raw, 0, 0, HELLO)
        .tick(40 * MS)
        .close(c, CloseReason::Closed, 0, 2_345, 6_789);
    vec![w.bytes]
}

/// A TLS socket whose plaintext a TLS hook also saw: reported once, as plaintext.
fn tls_hooked() -> Vec<Vec<u8>> {
    let mut w = SpoolWriter::new(100);
    let sock = w.conn_id(1);
    let plain = w.conn_id(2);
    w.open(sock, Protocol::Tls, 7, "93.184.216.34:443")
        .data(sock, Direction::Egress, Part::Raw, 0, 0, HELLO)
        .tick(MS)
        .open(plain, Protocol::TlsPlaintext, 7, "93.184.216.34:443")
        .tls_info(plain, TlsLibrary::OpenSsl, "api.example.com", "http/1.1", 7)
        .request(
            plain,
            0,
            "GET /secure HTTP/1.1\r\nHost: api.example.com\r\n\r\n",
            b"",
        )
        .response(plain, 0, OK, b"hello")
        .closed(plain)
        .close(sock, CloseReason::Closed, 0, 500, 900);
    vec![w.bytes]
}

/// The process was killed: no MsgEnd for the response, no ConnClose.
fn killed() -> Vec<Vec<u8>> {
    let mut w = SpoolWriter::new(100);
    let c = w.conn_id(1);
    w.open(c, Protocol::Http1, 5, "127.0.0.1:8080")
        .request(c, 0, GET, b"")
        .data(
            c,
            Direction::Ingress,
            Part::Head,
            0,
            0,
            &OK.as_bytes()[..20],
        )
        .data(
            c,
            Direction::Ingress,
            Part::Head,
            0,
            20,
            &OK.as_bytes()[20..],
        )
        .data(c, Direction::Ingress, Part::Body, 0, 0, b"hel");
    vec![w.bytes]
}

/// Killed while a long response body ran: the furthest `MsgProgress` says how far.
fn killed_with_progress() -> Vec<Vec<u8>> {
    let mut w = SpoolWriter::new(100);
    let c = w.conn_id(1);
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
    let progress = |body_len: u64| MsgEnd {
        dir: Direction::Ingress,
        flags: msg_flags::BODY_TRUNCATED,
        msg_seq: 0,
        head_len: head.len() as u64,
        body_len,
        wire_len: head.len() as u64 + body_len,
        start_wall_ns: 0,
        start_mono_ns: 0,
        status: 200,
    };
    w.open(c, Protocol::Http1, 5, "127.0.0.1:8080")
        .request(c, 0, GET, b"")
        .data(c, Direction::Ingress, Part::Head, 0, 0, head.as_bytes())
        .data(c, Direction::Ingress, Part::Body, 0, 0, b"abc")
        .tick(100 * MS)
        .record(RecordType::MsgProgress, c, &[&progress(60_000).encode()])
        .tick(100 * MS)
        .record(RecordType::MsgProgress, c, &[&progress(40_000).encode()]);
    vec![w.bytes]
}

/// An early answer: a 413 read while the 100-byte request body was being sent; the
/// client stopped after 40 bytes and closed.
fn early_answer() -> Vec<Vec<u8>> {
    let mut w = SpoolWriter::new(100);
    let c = w.conn_id(1);
    let post = "POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 100\r\n\r\n";
    let answer = "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n";
    w.open(c, Protocol::Http1, 5, "127.0.0.1:8080")
        .data(c, Direction::Egress, Part::Head, 0, 0, post.as_bytes())
        .data(c, Direction::Egress, Part::Body, 0, 0, &[b'x'; 40])
        .message(c, Direction::Ingress, 0, answer, b"", msg_flags::NO_BODY)
        .end(
            c,
            Direction::Egress,
            0,
            post.len() as u64,
            40,
            post.len() as u64 + 40,
            msg_flags::INCOMPLETE,
            0,
            0,
        )
        .closed(c);
    vec![w.bytes]
}

/// A response cut mid-body by the server (chunked), and one whose client gave up.
fn cut_mid_body() -> Vec<Vec<u8>> {
    let mut w = SpoolWriter::new(100);
    let a = w.conn_id(1);
    let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    w.open(a, Protocol::Http1, 5, "127.0.0.1:8080")
        .request(a, 0, GET, b"")
        .data(a, Direction::Ingress, Part::Head, 0, 0, chunked.as_bytes())
        .data(a, Direction::Ingress, Part::Body, 0, 0, b"hello")
        .end(
            a,
            Direction::Ingress,
            0,
            chunked.len() as u64,
            30_000,
            chunked.len() as u64 + 30_100,
            msg_flags::INCOMPLETE | msg_flags::CHUNKED | msg_flags::BODY_TRUNCATED,
            200,
            0,
        )
        .close(a, CloseReason::PeerEof, 0, 0, 0);
    let b = w.tick(MS).conn_id(2);
    w.open(b, Protocol::Http1, 6, "127.0.0.1:8080")
        .request(b, 0, GET, b"")
        .data(b, Direction::Ingress, Part::Head, 0, 0, OK.as_bytes())
        .data(b, Direction::Ingress, Part::Body, 0, 0, b"he")
        .end(
            b,
            Direction::Ingress,
            0,
            OK.len() as u64,
            2,
            OK.len() as u64 + 2,
            msg_flags::INCOMPLETE,
            200,
            0,
        )
        .closed(b);
    vec![w.bytes]
}

/// Two processes, the second with two files, records of one connection split over
/// both files.
fn two_processes() -> Vec<Vec<u8>> {
    let mut a = SpoolWriter::new(100);
    let ca = a.conn_id(1);
    a.open(ca, Protocol::Http1, 5, "127.0.0.1:8080")
        .request(ca, 0, GET, b"")
        .response(ca, 0, OK, b"hello")
        .closed(ca);
    let mut b1 = SpoolWriter::new(200);
    b1.tick(100 * MS);
    let cb = b1.conn_id(1);
    b1.open(cb, Protocol::Http1, 5, "[::1]:9000").request(
        cb,
        0,
        "DELETE /x HTTP/1.1\r\nHost: [::1]:9000\r\n\r\n",
        b"",
    );
    let mut b2 = SpoolWriter::bare(200, b1.now + MS);
    b2.response(cb, 0, "HTTP/1.1 204 No Content\r\n\r\n", b"")
        .closed(cb);
    vec![a.bytes, b1.bytes, b2.bytes]
}

type Case = (&'static str, fn() -> Vec<Vec<u8>>, Vec<Seen>);

fn cases() -> Vec<Case> {
    let mut all = message_cases();
    all.extend(connection_cases());
    all
}

/// What the usual one-GET spool is seen as: its status, response body size and error.
fn get(status: Option<u16>, resp: u64, error: Option<&str>) -> Seen {
    seen(
        Some("GET"),
        "http://api.test:8080/items?id=7",
        status,
        (0, resp),
        "none",
        error,
    )
}

/// How messages are framed on a connection: keep-alive, pipelining, interim
/// responses, chunked, bodiless and close-delimited messages.
fn message_cases() -> Vec<Case> {
    vec![
        ("simple GET", simple_get, vec![get(Some(200), 5, None)]),
        (
            "keep-alive with 3 exchanges",
            keep_alive,
            (0..3)
                .map(|i| {
                    seen(
                        Some("POST"),
                        &format!("http://api.test:8080/n/{i}"),
                        Some(200),
                        (2, 5),
                        "none",
                        None,
                    )
                })
                .collect(),
        ),
        (
            "pipelined requests",
            pipelined,
            (0..3u64)
                .map(|i| {
                    seen(
                        Some("GET"),
                        &format!("http://api.test:8080/p{i}"),
                        Some(200),
                        (0, i + 1),
                        "none",
                        None,
                    )
                })
                .collect(),
        ),
        (
            "100-continue is not the answer",
            continue_100,
            vec![
                seen(
                    Some("POST"),
                    "http://api.test:8080/up",
                    Some(201),
                    (4, 0),
                    "none",
                    None,
                ),
                seen(
                    Some("GET"),
                    "http://api.test:8080/after",
                    Some(200),
                    (0, 5),
                    "none",
                    None,
                ),
            ],
        ),
        (
            "chunked body sizes",
            chunked,
            vec![get(Some(200), 10_000, None)],
        ),
        (
            "HEAD has no body",
            head_request,
            vec![seen(
                Some("HEAD"),
                "http://api.test:8080/big",
                Some(200),
                (0, 0),
                "none",
                None,
            )],
        ),
        (
            "HTTP/1.0 close-delimited body",
            http10_until_close,
            vec![seen(
                Some("GET"),
                "http://legacy.test/old",
                Some(200),
                (0, 13),
                "none",
                None,
            )],
        ),
    ]
}

/// How connections end and what they carry: no response, closes, resets, TLS, killed
/// processes, several processes.
fn connection_cases() -> Vec<Case> {
    vec![
        (
            "no response",
            no_response,
            vec![get(
                None,
                0,
                Some("no response (client closed after 0.0 s)"),
            )],
        ),
        (
            "peer closed first",
            peer_closed,
            vec![get(None, 0, Some("connection closed"))],
        ),
        (
            "connection reset",
            reset,
            vec![get(None, 0, Some("connection reset"))],
        ),
        (
            "opaque TLS",
            opaque_tls,
            vec![Seen {
                method: None,
                url: Some("https://api.example.com".to_owned()),
                status: None,
                request_body_size: 2_345,
                response_body_size: 6_789,
                tls: "opaque",
                error: None,
            }],
        ),
        (
            "TLS socket with hooked plaintext is reported once",
            tls_hooked,
            vec![seen(
                Some("GET"),
                "https://api.example.com/secure",
                Some(200),
                (0, 5),
                "openssl",
                None,
            )],
        ),
        (
            "killed process",
            killed,
            vec![get(
                Some(200),
                3,
                Some("process killed mid-body (got at least 3 of 5 bytes)"),
            )],
        ),
        (
            "killed process, long body: the furthest progress counts",
            killed_with_progress,
            vec![get(
                Some(200),
                60_000,
                Some("process killed mid-body (got at least 60000 of 100000 bytes)"),
            )],
        ),
        (
            "early answer: the request body cut, the answer paired with it",
            early_answer,
            vec![seen(
                Some("POST"),
                "http://127.0.0.1:8080/upload",
                Some(413),
                (40, 0),
                "none",
                Some("request body cut at 40 of 100 bytes"),
            )],
        ),
        (
            "cut mid-body: by the server (chunked), by the client",
            cut_mid_body,
            vec![
                get(
                    Some(200),
                    30_000,
                    Some(
                        "connection closed mid-body (got 30000 bytes, chunked body not terminated)",
                    ),
                ),
                get(
                    Some(200),
                    2,
                    Some("client closed mid-body (got 2 of 5 bytes)"),
                ),
            ],
        ),
        (
            "two processes, three files",
            two_processes,
            vec![
                get(Some(200), 5, None),
                seen(
                    Some("DELETE"),
                    "http://[::1]:9000/x",
                    Some(204),
                    (0, 0),
                    "none",
                    None,
                ),
            ],
        ),
    ]
}

#[test]
fn assembly_cases() {
    let mut failures = Vec::new();
    for (name, build, expected) in cases() {
        let got = view(&read(&build()));
        if got != expected {
            failures.push(format!(
                "{name}:\n  got      {got:?}\n  expected {expected:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn simple_get_details() {
    let a = read(&simple_get());
    let x = &a.exchanges[0];
    assert_eq!(x.pid, 100);
    assert_eq!(x.path.as_deref(), Some("/items"));
    assert_eq!(x.query.as_deref(), Some("id=7"));
    assert_eq!(x.http_version.as_deref(), Some("1.1"));
    assert_eq!(
        x.request_headers,
        vec![
            ("Host".to_owned(), "api.test:8080".to_owned()),
            ("Accept".to_owned(), "*/*".to_owned())
        ]
    );
    assert_eq!(
        x.response_headers,
        vec![("Content-Length".to_owned(), "5".to_owned())]
    );
    assert_eq!(
        x.response_body.as_ref().map(|b| b.bytes.as_slice()),
        Some(&b"hello"[..])
    );
    assert_eq!(x.request_body, None);
    assert_eq!(x.peer, Some("127.0.0.1:8080".parse().unwrap()));
    assert_eq!(x.start_unix_ns, T0_WALL);
    // Request start (t=0) → response MsgEnd (request 1 ms + 10 ms + 2 ms of response).
    assert_eq!(x.duration_ns, 13 * MS);
    assert!(!x.truncated);
    assert_eq!(
        a.processes.get(&100).map(|p| p.argv.clone()),
        Some(vec!["curl".into(), "-s".into(), "http://x/".into()])
    );
}

#[test]
fn chunked_body_is_joined_by_offset_and_marked_truncated() {
    let a = read(&chunked());
    let x = &a.exchanges[0];
    let body = x.response_body.as_ref().expect("body");
    assert_eq!(body.size, 10_000);
    assert_eq!(body.bytes.len(), 8192);
    assert!(body.bytes[..4096].iter().all(|&b| b == b'x'));
    assert!(body.bytes[4096..].iter().all(|&b| b == b'y'));
    assert!(body.truncated && x.truncated);
}

#[test]
fn opaque_tls_details() {
    let x = &read(&opaque_tls()).exchanges[0];
    assert_eq!(x.sni.as_deref(), Some("api.example.com"));
    assert_eq!(x.alpn.as_deref(), Some("h2,http/1.1"));
    assert_eq!(x.scheme, "https");
    assert_eq!(
        (x.host.as_deref(), x.port),
        (Some("api.example.com"), Some(443))
    );
    assert_eq!(x.request_headers, vec![]);
    assert_eq!(x.duration_ns, 40 * MS - 1);
}

#[test]
fn hooked_plaintext_gets_sni_and_alpn_from_tls_info() {
    let x = &read(&tls_hooked()).exchanges[0];
    assert_eq!(x.sni.as_deref(), Some("api.example.com"));
    assert_eq!(x.alpn.as_deref(), Some("http/1.1"));
}

#[test]
fn drops_are_totalled() {
    let mut w = SpoolWriter::new(100);
    w.drops(3, 300).drops(2, 50);
    let a = read(&[w.bytes]);
    assert_eq!((a.totals.dropped_records, a.totals.dropped_bytes), (5, 350));
    assert!(a.totals.anything_lost());
}

#[test]
fn head_cut_at_the_limit_still_parses() {
    let mut w = SpoolWriter::new(100);
    let c = w.conn_id(1);
    let long = format!(
        "GET /x HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n",
        "z".repeat(100)
    );
    let captured = &long.as_bytes()[..40];
    w.open(c, Protocol::Http1, 5, "127.0.0.1:80")
        .data(c, Direction::Egress, Part::Head, 0, 0, captured)
        .end(
            c,
            Direction::Egress,
            0,
            long.len() as u64,
            0,
            long.len() as u64,
            msg_flags::HEAD_TRUNCATED | msg_flags::NO_BODY,
            0,
            0,
        )
        .response(c, 0, OK, b"hello");
    let x = &read(&[w.bytes]).exchanges[0];
    assert_eq!(x.method.as_deref(), Some("GET"));
    assert_eq!(x.host.as_deref(), Some("h"));
    assert!(x.truncated);
}

#[test]
fn spool_directory_reading_ignores_other_files() {
    let dir = std::env::temp_dir().join(format!("tapline-test-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub.tlr")).unwrap();
    let files = two_processes();
    for (i, f) in files.iter().enumerate() {
        std::fs::write(
            dir.join(format!("{}-{}.tlr", if i == 0 { 100 } else { 200 }, i)),
            f,
        )
        .unwrap();
    }
    std::fs::write(dir.join("notes.txt"), b"not a spool file").unwrap();
    let spool = Spool::read_dir(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(spool.files.len(), 3);
    assert_eq!(assemble(&spool).exchanges.len(), 2);
    assert!(Spool::read_dir(&dir).is_err());
}

/// A fresh TLS connection (non-blocking connect, then the handshake) carrying two
/// keep-alive exchanges: the set-up phases go to the first exchange only.
#[test]
fn phases_of_a_fresh_tls_connection_and_its_keep_alive_reuse() {
    let mut w = SpoolWriter::new(100);
    let sock = w.conn_id(1);
    let plain = w.conn_id(2);
    // SO_ERROR said established 3 ms before the ClientHello: connect took 2 ms.
    w.open_started(sock, Protocol::Tls, 7, "127.0.0.1:8443", 5 * MS, 3 * MS)
        .data(sock, Direction::Egress, Part::Raw, 0, 0, HELLO)
        .tick(7 * MS)
        .open(plain, Protocol::TlsPlaintext, 7, "127.0.0.1:8443")
        .tls_info(plain, TlsLibrary::OpenSsl, "api.example.com", "http/1.1", 7);
    for i in 0..2u32 {
        let head = format!("GET /n/{i} HTTP/1.1\r\nHost: api.example.com\r\n\r\n");
        w.request(plain, i, &head, b"")
            .tick(10 * MS)
            .response(plain, i, OK, b"hello");
    }
    w.closed(plain)
        .close(sock, CloseReason::Closed, 0, 500, 900);
    let a = read(&[w.bytes]);
    let [first, second] = &a.exchanges[..] else {
        panic!("two exchanges, got {}", a.exchanges.len());
    };
    let t = first.timings;
    assert_eq!(
        (t.connect_ns, t.tls_ns, t.send_ns, t.wait_ns, t.receive_ns),
        (
            Some(2 * MS),
            Some(7 * MS),
            Some(MS),
            Some(10 * MS),
            Some(2 * MS)
        )
    );
    let t = second.timings;
    assert_eq!(
        (t.connect_ns, t.tls_ns, t.send_ns, t.wait_ns, t.receive_ns),
        (None, None, Some(MS), Some(10 * MS), Some(2 * MS))
    );
}

/// A blocking connect is stamped when it returned: its start, and so the connect
/// phase, is unknown; a response cut off has no receive phase.
#[test]
fn phases_not_recorded_are_left_out() {
    let mut w = SpoolWriter::new(100);
    let c = w.conn_id(1);
    w.open(c, Protocol::Http1, 5, "127.0.0.1:8080")
        .request(c, 0, GET, b"")
        .tick(3 * MS)
        .data(c, Direction::Ingress, Part::Head, 0, 0, OK.as_bytes())
        .tick(MS)
        .close(c, CloseReason::Error, 104, 50, 10);
    let x = &read(&[w.bytes]).exchanges[0];
    let t = x.timings;
    assert_eq!(
        (t.connect_ns, t.tls_ns, t.send_ns, t.wait_ns, t.receive_ns),
        (None, None, Some(MS), Some(3 * MS), None)
    );
}

/// A non-blocking connect whose success was not asked with `SO_ERROR`: it ended by the
/// socket's first write.
#[test]
fn non_blocking_connect_without_so_error_ends_at_the_first_write() {
    let mut w = SpoolWriter::new(100);
    let c = w.conn_id(1);
    w.open_started(c, Protocol::Http1, 5, "127.0.0.1:8080", 4 * MS, 0)
        .request(c, 0, GET, b"")
        .tick(3 * MS)
        .response(c, 0, OK, b"hello")
        .closed(c);
    let t = read(&[w.bytes]).exchanges[0].timings;
    assert_eq!((t.connect_ns, t.tls_ns), (Some(4 * MS), None));
}
