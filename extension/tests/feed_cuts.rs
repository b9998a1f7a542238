//! The incremental reader cut at every record boundary of a real spool.
//!
//! `tapline run` reads a lagging writer's backlog a bounded amount at a time, so a
//! connection's records reach the [`ExchangeFeed`] split across reads at any point: a
//! response's head in one read and its end in the next, a request alone, a close
//! after the last exchange went out. Whatever the cut, every exchange must come out
//! once, and exactly as the whole spool read at once builds it (complete, never
//! `incomplete response` for an exchange whose records are all there).
//!
//! The spool is real: curl (keep-alive, several requests on one connection, then a
//! second connection) under `libtapline.so` against a server on 127.0.0.1 that answers
//! with bodies large enough to arrive in several reads, chunked bodies, a 204 and a
//! `Connection: close`.

mod common;

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};

use common::preload::{curl_records, library, read_request, temp_dir};
use tapline::{assemble, Exchange, ExchangeFeed, Spool};

/// Answers each request on a connection by its path: `/big/N` N bytes in 4 KiB writes,
/// `/chunked/N` N chunks, `/empty` a 204, `/close` a body and `Connection: close`.
fn serve(conn: TcpStream) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut out = conn;
    loop {
        let Some((path, length)) = read_request(&mut reader) else {
            return;
        };
        let arg = |p: &str| path.strip_prefix(p).and_then(|n| n.parse::<usize>().ok());
        let written = if let Some(n) = arg("/big/") {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {n}\r\n\r\n"
            );
            let body: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            out.write_all(head.as_bytes()).and_then(|()| {
                body.chunks(4096).try_for_each(|c| {
                    out.write_all(c)?;
                    out.flush()
                })
            })
        } else if let Some(n) = arg("/chunked/") {
            let mut r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_string();
            for i in 0..n {
                let chunk = format!("{{\"chunk\":{i}}}\n");
                r.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
            }
            r.push_str("0\r\n\r\n");
            out.write_all(r.as_bytes())
        } else if path == "/empty" {
            out.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
        } else if path == "/close" {
            let r = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye";
            let _ = out.write_all(r.as_bytes());
            return;
        } else {
            let r = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"got\":{length}}}",
                format!("{{\"got\":{length}}}").len()
            );
            out.write_all(r.as_bytes())
        };
        if written.is_err() {
            return;
        }
    }
}

/// The records of a real run, in the order the writer committed them (one process:
/// its segments in sequence), as framed records.
fn real_records() -> Vec<Vec<u8>> {
    let lib = library();
    let dir = temp_dir("cuts", "spool");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve(conn));
        }
    });
    let base = format!("http://127.0.0.1:{port}");
    let mut args: Vec<String> = vec!["-sS".into()];
    for path in [
        "/small",
        "/big/30000",
        "/chunked/40",
        "/empty",
        "/big/9000",
        "/small?second",
    ] {
        args.push(format!("{base}{path}"));
    }
    // A POST with a body on the same connection, then one that the server closes.
    args.extend(["--next", "-sS", "-d", "{\"name\":\"x\"}"].map(String::from));
    args.push(format!("{base}/post"));
    args.push(format!("{base}/close"));
    curl_records(&lib, &dir, &args, "65536")
}

/// Which exchange it is.
fn key(x: &Exchange) -> (u64, u32) {
    (x.conn_id, x.seq)
}

/// The exchanges of the whole spool read at once.
fn whole(records: &[Vec<u8>]) -> BTreeMap<(u64, u32), String> {
    let bytes = records.concat();
    let spool = Spool::from_files([("1-0.tlr", bytes.as_slice())]);
    assemble(&spool)
        .exchanges
        .iter()
        .map(|x| (key(x), format!("{x:?}")))
        .collect()
}

/// Feeds `records` to a fresh feed in reads that end at each of `cuts`, taking the
/// final exchanges after every read (as `tapline run` does), then flushes. Returns every
/// exchange handed out, in order.
fn fed(records: &[Vec<u8>], cuts: &[usize], tag: &str) -> Vec<Exchange> {
    let dir = temp_dir("cuts", tag);
    let path = dir.join("1-0.tlr");
    std::fs::write(&path, b"").expect("file");
    let mut feed = ExchangeFeed::new(&dir);
    let mut out = Vec::new();
    let mut from = 0;
    for &to in cuts.iter().chain(std::iter::once(&records.len())) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("append");
        f.write_all(&records[from..to].concat()).expect("write");
        drop(f);
        feed.read_new().expect("read");
        out.extend(feed.take_final(false));
        from = to;
    }
    out.extend(feed.take_final(true));
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn check(
    records: &[Vec<u8>],
    expected: &BTreeMap<(u64, u32), String>,
    got: &[Exchange],
    how: &str,
) {
    let mut seen = BTreeMap::new();
    for x in got {
        assert!(
            seen.insert(key(x), format!("{x:?}")).is_none(),
            "{how}: exchange {:?} handed out twice",
            key(x)
        );
    }
    for (k, want) in expected {
        let Some(have) = seen.get(k) else {
            panic!("{how}: exchange {k:?} never handed out");
        };
        assert_eq!(
            have, want,
            "{how}: exchange {k:?} differs from the whole read"
        );
    }
    assert_eq!(seen.len(), expected.len(), "{how}: extra exchanges");
    assert!(records.len() > 1);
}

#[test]
fn every_exchange_comes_out_complete_and_once_whatever_the_cut() {
    let records = real_records();
    let expected = whole(&records);
    let complete = expected
        .values()
        .filter(|x| x.contains("error: None"))
        .count();
    // 8 requests (curl keeps its connection across --next), all complete.
    assert_eq!(
        expected.len(),
        8,
        "exchanges in the real spool: {expected:#?}"
    );
    assert_eq!(complete, 8, "the whole read has errors: {expected:#?}");
    for k in 0..=records.len() {
        let got = fed(&records, &[k], &format!("cut{k}"));
        check(&records, &expected, &got, &format!("cut at record {k}"));
    }
    let every: Vec<usize> = (1..records.len()).collect();
    let got = fed(&records, &every, "each");
    check(&records, &expected, &got, "one record per read");
}
