//! The incremental reader on a spool whose writer dropped records (spool full).
//!
//! When a writer cannot write (`TAPLINE_SPOOL_MAX_BYTES` reached, too many segments,
//! disk full) it drops records and says how many in a later `Drops` record. The feed
//! must then not wait forever for the messages that will never come: an exchange
//! whose records were lost goes out once, with the error `records lost (spool full)`
//! (one of which no record is left is counted), its records are freed, and the
//! exchanges after it on the same keep-alive connection still pair each response with
//! its own request (responses are counted on their message numbers, not on the
//! records present).
//!
//! The spool is real: curl on one keep-alive connection under `libtapline.so`
//! against a server on 127.0.0.1; records are then taken out of it (whole exchanges,
//! whole responses, a response's end, a fragment in the middle of a body, a request's
//! head, a request's end) with a `Drops` record where they were, as the library writes
//! one once it can write again. A `DataEnd` record of which one half is to go is
//! written as the half that stays (the reader makes the same two of it), so each
//! damage is the same whether the library combined the two or not.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};

use common::preload::{curl_records, library, read_request, temp_dir};
use tapline::{assemble, Exchange, ExchangeFeed, Spool};
use tapline_record::{
    parse_record, Data, DataEnd, Direction, Drops, Header, MsgEnd, Part, RecordType,
};

const LOST: &str = "records lost (spool full)";

/// The exchange of which every record is taken out.
const NOTHING_LEFT: u32 = 3;

/// Answers each request on a connection: `/big/N` N bytes in 4 KiB writes, anything
/// else a small JSON body naming the path (so that a response paired with the wrong
/// request shows).
fn serve(conn: TcpStream) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut out = conn;
    loop {
        let Some((path, _)) = read_request(&mut reader) else {
            return;
        };
        let written = if let Some(n) = path.strip_prefix("/big/").and_then(|n| n.parse().ok()) {
            let n: usize = n;
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n");
            let body: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            out.write_all(head.as_bytes()).and_then(|()| {
                body.chunks(4096).try_for_each(|c| {
                    out.write_all(c)?;
                    out.flush()
                })
            })
        } else {
            let body = format!("{{\"path\":\"{path}\"}}");
            let r = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            out.write_all(r.as_bytes())
        };
        if written.is_err() {
            return;
        }
    }
}

/// Requests made on the one connection; `/big/` ones arrive in several reads.
const REQUESTS: usize = 30;
const BIG: [usize; 3] = [11, 15, 27];

/// The records of a real run, in the order the writer committed them.
fn real_records(tag: &str) -> Vec<Vec<u8>> {
    let lib = library();
    let dir = temp_dir("losses", tag);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve(conn));
        }
    });
    let mut args: Vec<String> = vec!["-sS".into()];
    for k in 0..REQUESTS {
        if BIG.contains(&k) {
            args.push(format!("http://127.0.0.1:{port}/big/200000"));
        } else {
            args.push(format!("http://127.0.0.1:{port}/x/{k}"));
        }
    }
    curl_records(&lib, &dir, &args, "262144")
}

/// What one record is, as far as the damage is concerned.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Data(Direction, Part, u32),
    End(Direction, u32),
    /// A `Data` and the `MsgEnd` of the same message, in one record.
    DataEnd(Direction, Part, u32),
    ConnClose,
    Other,
}

fn kind(record: &[u8]) -> (Header, Kind) {
    let (raw, _) = parse_record(record).expect("a record");
    let h = raw.header;
    let k = match RecordType::from_u16(h.rtype) {
        Some(RecordType::Data) => {
            let (d, _) = Data::decode(raw.payload).expect("data");
            Kind::Data(d.dir, d.part, d.msg_seq)
        }
        Some(RecordType::MsgEnd) => {
            let m = MsgEnd::decode(raw.payload).expect("end");
            Kind::End(m.dir, m.msg_seq)
        }
        Some(RecordType::DataEnd) => {
            let (d, _, _) = DataEnd::decode(raw.payload).expect("data and end");
            Kind::DataEnd(d.dir, d.part, d.msg_seq)
        }
        Some(RecordType::ConnClose) => Kind::ConnClose,
        _ => Kind::Other,
    };
    (h, k)
}

/// A record with `at`'s header fields, of type `t`.
fn reframed(at: &Header, t: RecordType, parts: &[&[u8]]) -> Vec<u8> {
    let len = parts.iter().map(|p| p.len()).sum();
    let mut h = Header::new(t, len, at.wall_ns, at.mono_ns);
    (h.pid, h.tid, h.conn_id) = (at.pid, at.tid, at.conn_id);
    let (head, pad) = h.seal(parts);
    let mut out = head.to_vec();
    for p in parts {
        out.extend_from_slice(p);
    }
    out.extend_from_slice(Header::padding(pad));
    out
}

/// A `DataEnd` record as the two it stands for: its `Data`, then its `MsgEnd`.
fn split(record: &[u8]) -> [(Kind, Vec<u8>); 2] {
    let (raw, _) = parse_record(record).expect("a record");
    let (d, bytes, m) = DataEnd::decode(raw.payload).expect("data and end");
    let h = &raw.header;
    [
        (
            Kind::Data(d.dir, d.part, d.msg_seq),
            reframed(h, RecordType::Data, &[&d.encode(), bytes]),
        ),
        (
            Kind::End(m.dir, m.msg_seq),
            reframed(h, RecordType::MsgEnd, &[&m.encode()]),
        ),
    ]
}

fn drops_record(pid: u32, at: &Header, records: u64) -> Vec<u8> {
    let payload = Drops { records, bytes: 0 }.encode();
    let mut h = Header::new(RecordType::Drops, payload.len(), at.wall_ns, at.mono_ns);
    h.pid = pid;
    let (head, pad) = h.seal(&[&payload]);
    [&head[..], &payload[..], Header::padding(pad)].concat()
}

/// The exchanges (by `seq`) the damage touches, and the damaged spool: each stretch of
/// records taken out is replaced by a `Drops` record counting them.
fn damage(records: &[Vec<u8>]) -> (BTreeSet<u32>, Vec<Vec<u8>>) {
    use Direction::{Egress, Ingress};
    let kinds: Vec<(Header, Kind)> = records.iter().map(|r| kind(r)).collect();
    let pid = kinds
        .iter()
        .find(|(h, _)| h.conn_id != 0)
        .expect("a connection")
        .0
        .pid;
    let body = |k: Kind, seq: u32| {
        k == Kind::Data(Ingress, Part::Body, seq) || k == Kind::DataEnd(Ingress, Part::Body, seq)
    };
    // The body fragments of response 15: the middle one goes.
    let body15: Vec<usize> = (0..kinds.len()).filter(|&i| body(kinds[i].1, 15)).collect();
    assert!(
        body15.len() >= 3,
        "response 15 in {} body records",
        body15.len()
    );
    let body11: Vec<usize> = (0..kinds.len()).filter(|&i| body(kinds[i].1, 11)).collect();
    // Whether record `i` (or the half `k` of it) goes.
    let lose = |k: Kind, i: usize| -> bool {
        match k {
            // Exchange 3: everything of both messages.
            Kind::Data(_, _, 3) | Kind::End(_, 3) => true,
            // Exchange 7: its whole response.
            Kind::Data(Ingress, _, 7) | Kind::End(Ingress, 7) => true,
            // Exchange 11: the response's end and last fragment.
            Kind::End(Ingress, 11) => true,
            Kind::Data(Ingress, Part::Body, 11) => body11.last() == Some(&i),
            // Exchange 15: a fragment in the middle of the body.
            Kind::Data(Ingress, Part::Body, 15) => body15[body15.len() / 2] == i,
            // Exchange 19: the request's head.
            Kind::Data(Egress, Part::Head, 19) => true,
            // Exchange 23: the request's end.
            Kind::End(Egress, 23) => true,
            _ => false,
        }
    };
    let mut out = Vec::new();
    let mut lost_run = 0u64;
    for (i, r) in records.iter().enumerate() {
        let halves = match kinds[i].1 {
            Kind::DataEnd(..) => split(r).map(|(k, half)| (lose(k, i), half)),
            k => {
                let lost = lose(k, i);
                [(lost, Vec::new()), (lost, Vec::new())]
            }
        };
        if halves[0].0 && halves[1].0 {
            lost_run += 1;
            continue;
        }
        let kept: Vec<Vec<u8>> = if halves[0].0 == halves[1].0 {
            vec![r.clone()]
        } else {
            // One half goes: the other stays, as a record of its own.
            if halves[0].0 {
                lost_run += 1;
            }
            vec![halves.iter().find(|h| !h.0).expect("a half kept").1.clone()]
        };
        if lost_run > 0 {
            out.push(drops_record(pid, &kinds[i].0, lost_run));
            lost_run = 0;
        }
        out.extend(kept);
        if halves[1].0 {
            lost_run += 1;
        }
    }
    assert!(lost_run == 0, "the last record was lost");
    (BTreeSet::from([3, 7, 11, 15, 19, 23]), out)
}

/// The exchanges of a spool read at once.
fn whole(records: &[Vec<u8>]) -> BTreeMap<u32, Exchange> {
    let bytes = records.concat();
    let spool = Spool::from_files([("1-0.tlr", bytes.as_slice())]);
    assemble(&spool)
        .exchanges
        .into_iter()
        .map(|x| (x.seq, x))
        .collect()
}

/// Feeds `records` in reads that end at each of `cuts`, taking the final exchanges
/// after every read, then flushes. Returns every exchange handed out, and the records
/// the feed held just before the connection's close was read (its exchanges all
/// handed out by then).
fn fed(records: &[Vec<u8>], cuts: &[usize], tag: &str) -> (Vec<Exchange>, usize, u64) {
    let dir = temp_dir("losses", tag);
    let path = dir.join("1-0.tlr");
    std::fs::write(&path, b"").expect("file");
    let close = records
        .iter()
        .position(|r| kind(r).1 == Kind::ConnClose)
        .expect("the connection's close");
    let mut feed = ExchangeFeed::new(&dir);
    let mut out = Vec::new();
    let mut held = None;
    let mut from = 0;
    let mut ends: Vec<usize> = cuts.to_vec();
    ends.push(close);
    ends.push(records.len());
    ends.sort_unstable();
    ends.dedup();
    for to in ends {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("append");
        f.write_all(&records[from..to].concat()).expect("write");
        drop(f);
        feed.read_new().expect("read");
        out.extend(feed.take_final(false));
        if to == close {
            held = Some(feed.retained_records());
        }
        from = to;
    }
    out.extend(feed.take_final(true));
    let _ = std::fs::remove_dir_all(&dir);
    (
        out,
        held.expect("read up to the close"),
        feed.lost_exchanges(),
    )
}

/// Every exchange once; the undamaged ones exactly as the undamaged spool builds them,
/// the damaged ones with the lost-records error, the one with nothing left counted.
fn check(
    intact: &BTreeMap<u32, Exchange>,
    damaged: &BTreeSet<u32>,
    (got, held, counted): (Vec<Exchange>, usize, u64),
    how: &str,
) {
    assert_eq!(counted, 1, "{how}: exchanges with no record left");
    let mut seen: BTreeMap<u32, &Exchange> = BTreeMap::new();
    for x in &got {
        assert!(
            seen.insert(x.seq, x).is_none(),
            "{how}: exchange {} handed out twice",
            x.seq
        );
    }
    let numbers: Vec<u32> = seen.keys().copied().collect();
    let all: Vec<u32> = (0..REQUESTS as u32)
        .filter(|&k| k != NOTHING_LEFT)
        .collect();
    assert_eq!(numbers, all, "{how}: exchanges handed out");
    for (k, x) in &seen {
        if damaged.contains(k) {
            assert_eq!(
                x.error.as_deref(),
                Some(LOST),
                "{how}: exchange {k}: {x:#?}"
            );
        } else {
            assert_eq!(
                format!("{x:?}"),
                format!("{:?}", intact[k]),
                "{how}: exchange {k} differs from the undamaged spool's"
            );
        }
    }
    // Every exchange was out before the close was read: what is left is the
    // connection's own records (its open), not the messages of the lost exchanges.
    assert!(
        held <= 2,
        "{how}: {held} records held after the last exchange"
    );
}

#[test]
fn lost_records_cut_their_exchanges_short_and_free_them() {
    let records = real_records("spool-fed");
    let intact = whole(&records);
    assert_eq!(intact.len(), REQUESTS, "exchanges: {intact:#?}");
    assert!(
        intact.values().all(|x| x.error.is_none()),
        "the undamaged spool has errors: {intact:#?}"
    );
    let (damaged, lossy) = damage(&records);
    check(&intact, &damaged, fed(&lossy, &[], "once"), "one read");
    let every: Vec<usize> = (1..lossy.len()).collect();
    check(
        &intact,
        &damaged,
        fed(&lossy, &every, "each"),
        "one record per read",
    );
    for k in (0..lossy.len()).step_by(7) {
        let how = format!("cut at record {k}");
        check(
            &intact,
            &damaged,
            fed(&lossy, &[k], &format!("cut{k}")),
            &how,
        );
    }
}

/// `tapline show` reads a lossy spool at once: the responses after a lost one still
/// answer their own requests, and the exchanges with holes say why.
#[test]
fn a_lost_response_does_not_shift_the_pairing_of_the_next_ones() {
    let records = real_records("spool-whole");
    let intact = whole(&records);
    let (damaged, lossy) = damage(&records);
    let got = whole(&lossy);
    for (k, x) in &intact {
        if damaged.contains(k) {
            continue;
        }
        assert_eq!(
            format!("{:?}", got.get(k)),
            format!("{:?}", Some(x)),
            "exchange {k} differs from the undamaged spool's"
        );
    }
    for k in [15u32, 19, 23] {
        assert_eq!(got[&k].error.as_deref(), Some(LOST), "exchange {k}");
    }
}
