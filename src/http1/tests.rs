use super::*;
use tapline_record::msg_flags as f;

#[derive(Default, Debug)]
struct Collect {
    heads: Vec<(u32, Vec<u8>)>,
    bodies: Vec<(u32, Vec<u8>)>,
    ends: Vec<MsgEnd>,
    progress: Vec<MsgEnd>,
}

impl FrameSink<'_> for Collect {
    fn head(&mut self, seq: u32, offset: u64, bytes: &[u8]) {
        match self.heads.iter_mut().find(|(s, _)| *s == seq) {
            Some((_, h)) => {
                assert_eq!(h.len() as u64, offset, "head fragments in order");
                h.extend_from_slice(bytes)
            }
            None => {
                assert_eq!(offset, 0);
                self.heads.push((seq, bytes.to_vec()))
            }
        }
    }
    fn body(&mut self, seq: u32, offset: u64, bytes: &[u8]) {
        match self.bodies.iter_mut().find(|(s, _)| *s == seq) {
            Some((_, b)) => {
                assert_eq!(b.len() as u64, offset, "body fragments in order");
                b.extend_from_slice(bytes)
            }
            None => {
                assert_eq!(offset, 0);
                self.bodies.push((seq, bytes.to_vec()))
            }
        }
    }
    fn end(&mut self, end: &MsgEnd) {
        self.ends.push(*end);
    }
    fn progress(&mut self, p: &MsgEnd) {
        self.progress.push(*p);
    }
}

struct Conn {
    req: Framer,
    resp: Framer,
    kinds: RequestKinds,
    max_body: u64,
}

impl Conn {
    fn new() -> Self {
        Conn {
            req: Framer::new(),
            resp: Framer::new(),
            kinds: RequestKinds::default(),
            max_body: 8192,
        }
    }
    /// Requests go to a sink of their own: message numbers are per direction.
    fn send(&mut self, data: &[u8], _responses: &mut Collect) -> Verdict {
        let mut requests = Collect::default();
        self.req.feed(
            Role::Request,
            data,
            Stamp::default(),
            self.max_body,
            &mut self.kinds,
            &mut requests,
        )
    }
    fn recv(&mut self, data: &[u8], out: &mut Collect) -> Verdict {
        self.resp.feed(
            Role::Response,
            data,
            Stamp::default(),
            self.max_body,
            &mut self.kinds,
            out,
        )
    }
}

/// Feeds `data` in pieces of every size from 1 to `data.len()` and checks each split
/// gives the same events as one call.
fn all_splits(role: Role, data: &[u8], kinds: RequestKinds, max_body: u64) -> Collect {
    let mut whole = Collect::default();
    let mut k = kinds;
    Framer::new().feed(role, data, Stamp::default(), max_body, &mut k, &mut whole);
    for step in 1..data.len() {
        let mut fr = Framer::new();
        let mut out = Collect::default();
        let mut k = kinds;
        for piece in data.chunks(step) {
            fr.feed(role, piece, Stamp::default(), max_body, &mut k, &mut out);
        }
        assert_eq!(out.heads, whole.heads, "heads differ at step {step}");
        assert_eq!(out.bodies, whole.bodies, "bodies differ at step {step}");
        assert_eq!(out.ends, whole.ends, "ends differ at step {step}");
    }
    whole
}

#[test]
fn get_request_has_no_body() {
    let req = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n";
    let out = all_splits(Role::Request, req, RequestKinds::default(), 8192);
    assert_eq!(out.heads, vec![(0, req.to_vec())]);
    assert_eq!(out.ends.len(), 1);
    assert_eq!(out.ends[0].head_len, req.len() as u64);
    assert_eq!(out.ends[0].flags, f::NO_BODY);
}

#[test]
fn content_length_body_and_pipelining() {
    let data = b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /y HTTP/1.1\r\n\r\n";
    let out = all_splits(Role::Request, data, RequestKinds::default(), 8192);
    assert_eq!(out.ends.len(), 2);
    assert_eq!(out.bodies, vec![(0, b"hello".to_vec())]);
    assert_eq!(out.ends[0].body_len, 5);
    assert_eq!(out.ends[1].msg_seq, 1);
    assert_eq!(out.heads[1], (1, b"GET /y HTTP/1.1\r\n\r\n".to_vec()));
}

#[test]
fn chunked_with_extensions_and_trailers() {
    let data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
    let out = all_splits(Role::Response, data, RequestKinds::default(), 8192);
    assert_eq!(out.ends.len(), 2);
    let body: Vec<u8> = out
        .bodies
        .iter()
        .filter(|(s, _)| *s == 0)
        .flat_map(|(_, b)| b.clone())
        .collect();
    assert_eq!(body, b"hello world");
    assert_eq!(out.ends[0].body_len, 11);
    assert_eq!(out.ends[0].flags & f::CHUNKED, f::CHUNKED);
    assert_eq!(out.ends[0].status, 200);
    let first_len = data.len() - b"HTTP/1.1 204 No Content\r\n\r\n".len();
    assert_eq!(out.ends[0].wire_len, first_len as u64);
    assert_eq!(out.ends[1].status, 204);
    assert_eq!(out.ends[1].flags, f::NO_BODY);
}

#[test]
fn body_capture_is_limited_and_counted() {
    let mut data = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec();
    data.extend(std::iter::repeat_n(b'z', 100));
    let out = all_splits(Role::Response, &data, RequestKinds::default(), 10);
    assert_eq!(out.bodies, vec![(0, vec![b'z'; 10])]);
    assert_eq!(out.ends[0].body_len, 100);
    assert_eq!(out.ends[0].flags & f::BODY_TRUNCATED, f::BODY_TRUNCATED);
}

#[test]
fn head_response_and_interim_continue() {
    let mut c = Conn::new();
    let mut out = Collect::default();
    c.send(b"HEAD / HTTP/1.1\r\n\r\nPOST /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", &mut out);
    c.send(b"abc", &mut out);
    // HEAD's response announces a length but has no body; then 100, then the final.
    c.recv(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n",
        &mut out,
    );
    c.recv(
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        &mut out,
    );
    let resp: Vec<_> = out.ends.iter().filter(|e| e.status != 0).collect();
    assert_eq!(resp.len(), 3);
    assert_eq!(
        (resp[0].status, resp[0].flags, resp[0].body_len),
        (200, f::NO_BODY, 0)
    );
    assert_eq!((resp[1].status, resp[1].flags), (100, f::NO_BODY));
    assert_eq!(
        (resp[2].status, resp[2].body_len, resp[2].msg_seq),
        (201, 2, 2)
    );
}

#[test]
fn close_delimited_response_ends_on_close() {
    let mut fr = Framer::new();
    let mut out = Collect::default();
    let mut k = RequestKinds::default();
    let v = fr.feed(
        Role::Response,
        b"HTTP/1.0 200 OK\r\n\r\nabcdef",
        Stamp::default(),
        8192,
        &mut k,
        &mut out,
    );
    assert_eq!(v, Verdict::Continue);
    assert!(out.ends.is_empty());
    fr.finish_on_close(&mut out);
    assert_eq!(out.ends[0].body_len, 6);
    assert_eq!(out.ends[0].flags, f::UNTIL_CLOSE);
}

#[test]
fn cut_off_message_is_incomplete() {
    let mut fr = Framer::new();
    let mut out = Collect::default();
    let mut k = RequestKinds::default();
    fr.feed(
        Role::Response,
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        Stamp::default(),
        8192,
        &mut k,
        &mut out,
    );
    fr.finish_on_close(&mut out);
    assert_eq!(out.ends[0].flags, f::INCOMPLETE);
    assert_eq!(out.ends[0].body_len, 3);
}

#[test]
fn not_http_is_malformed() {
    for bad in [
        &b"SSH-2.0-OpenSSH\r\n"[..],
        b"HTTP/2 200\r\n",
        b"\x16\x03\x01\x00",
    ] {
        let mut fr = Framer::new();
        let mut out = Collect::default();
        let mut k = RequestKinds::default();
        let v = fr.feed(
            Role::Response,
            bad,
            Stamp::default(),
            8192,
            &mut k,
            &mut out,
        );
        assert_eq!(v, Verdict::Malformed, "{bad:?}");
        assert!(fr.is_stopped());
    }
    let mut fr = Framer::new();
    let mut out = Collect::default();
    let mut k = RequestKinds::default();
    let v = fr.feed(
        Role::Request,
        b"get / HTTP/1.1\r\n\r\n",
        Stamp::default(),
        8192,
        &mut k,
        &mut out,
    );
    assert_eq!(v, Verdict::Malformed);
}

#[test]
fn bad_chunk_size_is_malformed() {
    let mut fr = Framer::new();
    let mut out = Collect::default();
    let mut k = RequestKinds::default();
    let v = fr.feed(
        Role::Response,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        Stamp::default(),
        8192,
        &mut k,
        &mut out,
    );
    assert_eq!(v, Verdict::Malformed);
    assert_eq!(out.ends[0].flags & f::MALFORMED, f::MALFORMED);
}

#[test]
fn switching_protocols_and_connect_stop_framing() {
    let mut c = Conn::new();
    let mut out = Collect::default();
    c.send(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", &mut out);
    assert_eq!(
        c.recv(
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x05hello",
            &mut out
        ),
        Verdict::Upgraded
    );

    let mut c = Conn::new();
    let mut out = Collect::default();
    c.send(b"CONNECT h:443 HTTP/1.1\r\n\r\n", &mut out);
    assert_eq!(
        c.recv(
            b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01",
            &mut out
        ),
        Verdict::Upgraded
    );
}

#[test]
fn long_head_is_truncated_but_framed() {
    let mut data = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    data.extend(std::iter::repeat_n(b'a', 40_000));
    data.extend_from_slice(b"\r\nContent-Length: 2\r\n\r\nhi");
    let mut fr = Framer::new();
    let mut out = Collect::default();
    let mut k = RequestKinds::default();
    fr.feed(
        Role::Request,
        &data,
        Stamp::default(),
        8192,
        &mut k,
        &mut out,
    );
    assert_eq!(out.heads[0].1.len() as u64, HEAD_CAPTURE_LIMIT);
    assert_eq!(out.ends[0].flags & f::HEAD_TRUNCATED, f::HEAD_TRUNCATED);
    assert_eq!(out.bodies, vec![(0, b"hi".to_vec())]);
}

#[test]
fn zero_state_is_new() {
    // The connection table keeps framers in zeroed memory.
    let f = Framer::new();
    assert!(f.is_idle());
    assert_eq!(f.messages(), 0);
    assert_eq!(Framer::default().phase, Phase::Idle);
}

/// Random bytes and random splits never panic (the hook must never panic).
#[test]
fn garbage_never_panics() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let seeds: [&[u8]; 3] = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n",
        b"",
    ];
    for round in 0..3000 {
        let mut data = seeds[round % 3].to_vec();
        let n = (next() % 200) as usize;
        for _ in 0..n {
            let r = next();
            data.push(match r % 5 {
                0 => b'\r',
                1 => b'\n',
                2 => b"0123456789abcdef;:"[(r >> 8) as usize % 18],
                _ => (r >> 16) as u8,
            });
        }
        let role = if round % 2 == 0 {
            Role::Response
        } else {
            Role::Request
        };
        let mut fr = Framer::new();
        let mut out = Collect::default();
        let mut k = RequestKinds {
            head_bits: next(),
            connect_bits: next(),
        };
        let mut i = 0;
        while i < data.len() {
            let step = 1 + (next() % 17) as usize;
            let end = (i + step).min(data.len());
            fr.feed(role, &data[i..end], Stamp::default(), 64, &mut k, &mut out);
            i = end;
        }
        fr.finish_on_close(&mut out);
    }
}

#[test]
fn message_ends_carry_the_direction_of_the_role() {
    let req = all_splits(
        Role::Request,
        b"GET / HTTP/1.1\r\n\r\n",
        RequestKinds::default(),
        8192,
    );
    assert_eq!(req.ends[0].dir, Direction::Egress);
    let resp = all_splits(
        Role::Response,
        b"HTTP/1.1 204 No Content\r\n\r\n",
        RequestKinds::default(),
        8192,
    );
    assert_eq!(resp.ends[0].dir, Direction::Ingress);
    // A message cut off at close keeps the role it began with.
    let mut fr = Framer::new();
    let mut out = Collect::default();
    let mut k = RequestKinds::default();
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc";
    fr.feed(Role::Response, head, Stamp::ZERO, 8192, &mut k, &mut out);
    fr.finish_on_close(&mut out);
    assert_eq!(out.ends[0].dir, Direction::Ingress);
    assert_ne!(out.ends[0].flags & f::INCOMPLETE, 0);
}

/// Feeds `data` cut at the given points; returns what came out, every verdict, and the
/// framer's state after each piece.
fn feed_cut(role: Role, data: &[u8], cuts: &[usize], skips: bool) -> (String, Vec<String>) {
    SKIPS.with(|s| s.set(skips));
    let mut fr = Framer::new();
    let mut out = Collect::default();
    let mut k = RequestKinds::default();
    let mut states = Vec::new();
    let mut at = 0;
    for &c in cuts.iter().chain(core::iter::once(&data.len())) {
        let c = c.clamp(at, data.len());
        let v = fr.feed(role, &data[at..c], Stamp::default(), 64, &mut k, &mut out);
        states.push(format!("{v:?} {fr:?}"));
        at = c;
    }
    fr.finish_on_close(&mut out);
    SKIPS.with(|s| s.set(true));
    (format!("{out:?}"), states)
}

#[test]
fn skipping_runs_is_exactly_the_byte_wise_scan() {
    // Heads built from pieces that exercise every run the scan skips (long request
    // targets, reason phrases, uninteresting and folded header lines, NULs, CRs, the
    // two headers it reads) and the byte-wise paths around them, cut anywhere.
    const STARTS: &[&[u8]] = &[
        b"GET /a/b?c=1&d=HTTP/1.9 HTTP/1.1",
        b"POST / HTTP/1.0",
        b"GET /\0x HTTP/1.1",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 404 Not \0Found",
        b"HTTP/1.0 100 Continue",
        b"HTTP/1.1 204",
        b"GET",
        b"",
        b"M-SEARCH * HTTP/1.1",
        b"VERY_LONG_METHOD_NAME_ABCDEFGHIJ / HTTP/1.1",
        b"VERY_LONG_METHOD_NAME_ABCDEFGHIJK / HTTP/1.1",
        b"get / HTTP/1.1",
        b" GET / HTTP/1.1",
        b"HTTP/1.1 2x0 Bad",
        b"HTTP/2.0 200 OK",
        b"HTTP/1.1 099",
        b"HTTP/1.1  200",
    ];
    const LINES: &[&[u8]] = &[
        b"Host: x",
        b"X-Trace: 12\r3",
        b" folded: value",
        b"\tfolded",
        b"Content-Length: 5",
        b"content-length: 12",
        b"Transfer-Encoding: chunked",
        b"transfer-encoding: gzip, chunked",
        b"te: x",
        b"Connection: close",
        b"\0",
        b"c",
        b"T",
        b":",
        b"Cookie: a=b",
        b"",
        b"Content-Length:\t7 ",
        b"Content-Length: 5, 5",
        b"Content-Length: 1\r2",
        b"CONTENT-LENGTH:99999999999999999999999",
        b"Content-Length:",
    ];
    const ENDS: &[&[u8]] = &[b"\r\n", b"\n", b"", b"\r"];
    const BODIES: &[&[u8]] = &[
        b"hello",
        b"5\r\nhello\r\n0\r\n\r\n",
        b"",
        b"GET / HTTP/1.1\r\n\r\n",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pick = |from: &[&'static [u8]], r: u64| from[(r % from.len() as u64) as usize];
    for _ in 0..20_000 {
        let mut data = Vec::new();
        data.extend_from_slice(pick(STARTS, next()));
        data.extend_from_slice(pick(ENDS, next()));
        for _ in 0..(next() % 6) {
            data.extend_from_slice(pick(LINES, next()));
            data.extend_from_slice(pick(ENDS, next() % 3));
        }
        data.extend_from_slice(pick(ENDS, next()));
        data.extend_from_slice(pick(BODIES, next()));
        let mut cuts: Vec<usize> = (0..(next() % 5))
            .map(|_| (next() % (data.len() as u64 + 1)) as usize)
            .collect();
        cuts.sort_unstable();
        for role in [Role::Request, Role::Response] {
            let bytewise = feed_cut(role, &data, &cuts, false);
            let skipping = feed_cut(role, &data, &cuts, true);
            assert_eq!(
                bytewise,
                skipping,
                "{role:?} {:?} cut at {cuts:?}",
                String::from_utf8_lossy(&data)
            );
        }
    }
}

/// A body past its captured prefix reports its counts every 100 ms or MiB, never for
/// the piece that ends it, and never within its captured prefix.
#[test]
fn long_body_reports_progress_past_the_captured_prefix() {
    let at = |ms: u64| Stamp {
        wall_ns: ms * 1_000_000,
        mono_ns: ms * 1_000_000,
    };
    let mut fr = Framer::new();
    let mut out = Collect::default();
    let mut k = RequestKinds::default();
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 3000000\r\n\r\n";
    let mut feed = |fr: &mut Framer, out: &mut Collect, bytes: &[u8], ms: u64| {
        fr.feed(Role::Response, bytes, at(ms), 10, &mut k, out)
    };
    feed(&mut fr, &mut out, head, 0);
    feed(&mut fr, &mut out, &[b'a'; 10], 50); // the captured prefix: no report
    feed(&mut fr, &mut out, &[b'b'; 100], 90); // past it, too soon
    assert!(out.progress.is_empty());
    feed(&mut fr, &mut out, &[b'c'; 100], 120); // 100 ms after the start
    assert_eq!(out.progress.len(), 1);
    assert_eq!(out.progress[0].body_len, 210);
    assert_eq!(out.progress[0].wire_len, head.len() as u64 + 210);
    assert_eq!(out.progress[0].msg_seq, 0);
    feed(&mut fr, &mut out, &vec![b'd'; 1 << 20], 130); // a MiB later
    assert_eq!(out.progress.len(), 2);
    assert_eq!(out.progress[1].body_len, 210 + (1 << 20));
    let rest = 3_000_000 - out.progress[1].body_len as usize;
    feed(&mut fr, &mut out, &vec![b'e'; rest], 900); // ends here: its end says it
    assert_eq!(out.progress.len(), 2);
    assert_eq!(out.ends.len(), 1);
    assert_eq!(out.ends[0].body_len, 3_000_000);
}
