//! Writing one HTTP/2 connection's records with the real `H2*` encoders, header blocks
//! made with a small HPACK encoder (literals, indexing, the dynamic table).

use tapline::assemble;
use tapline::Exchange;
use tapline::Spool;
use tapline_record as rec;
use tapline_record::{CloseReason, Direction, H2StartHow, Protocol, RecordType};

use super::{SpoolWriter, MS};

pub const OUT: Direction = Direction::Egress;
pub const IN: Direction = Direction::Ingress;

/// An HPACK integer with an `n`-bit prefix, its first byte or'ed with `flags`.
pub fn int(out: &mut Vec<u8>, flags: u8, n: u32, v: usize) {
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

pub fn string(out: &mut Vec<u8>, s: &str) {
    int(out, 0, 7, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// How a field is put in a block.
pub enum F<'a> {
    /// Literal with incremental indexing, new name (added to the dynamic table).
    Add(&'a str, &'a str),
    /// Literal without indexing, new name.
    Lit(&'a str, &'a str),
    /// Indexed field (static 1..=61, dynamic 62..).
    Idx(usize),
}

pub fn block(fields: &[F<'_>]) -> Vec<u8> {
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
pub struct H2 {
    pub w: SpoolWriter,
    pub conn: u64,
    pub seq: [u32; 2],
}

impl H2 {
    pub fn new(protocol: Protocol) -> Self {
        let mut w = SpoolWriter::new(42);
        let conn = w.conn_id(1);
        w.open(conn, protocol, 5, "127.0.0.1:8443");
        // TLS plaintext with ALPN h2 is announced as H2c too, with a TlsInfo.
        let protocol = match protocol {
            Protocol::TlsPlaintext => Protocol::H2c,
            p => p,
        };
        let how = if protocol == Protocol::H2c {
            H2StartHow::PriorKnowledge
        } else {
            H2StartHow::Tls
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

    pub fn headers(&mut self, dir: Direction, stream: u32, flags: u16, b: &[u8]) -> &mut Self {
        self.headers_cut(dir, stream, flags, b, b.len())
    }

    pub fn headers_cut(
        &mut self,
        dir: Direction,
        stream: u32,
        flags: u16,
        b: &[u8],
        whole: usize,
    ) -> &mut Self {
        let seq = &mut self.seq[usize::from(u8::from(dir))];
        let h = rec::H2Headers {
            dir,
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

    pub fn push_promise(&mut self, stream: u32, promised: u32, b: &[u8]) -> &mut Self {
        let seq = &mut self.seq[usize::from(u8::from(IN))];
        let h = rec::H2Headers {
            dir: IN,
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

    pub fn data(&mut self, dir: Direction, stream: u32, offset: u64, b: &[u8]) -> &mut Self {
        let d = rec::H2Data {
            dir,
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

    pub fn end(
        &mut self,
        dir: Direction,
        stream: u32,
        data_len: u64,
        flags: u16,
        code: u32,
    ) -> &mut Self {
        self.w.tick(MS);
        let e = rec::H2StreamEnd {
            dir,
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

    pub fn reset(&mut self, dir: Direction, stream: u32, code: u32) -> &mut Self {
        let r = rec::H2Reset {
            dir,
            stream_id: stream,
            error_code: code,
        };
        self.w.tick(MS);
        self.w
            .record(RecordType::H2Reset, self.conn, &[&r.encode()]);
        self
    }

    pub fn goaway(&mut self, dir: Direction, last: u32, code: u32) -> &mut Self {
        let g = rec::H2GoAway {
            dir,
            last_stream_id: last,
            error_code: code,
        };
        self.w.tick(MS);
        self.w
            .record(RecordType::H2GoAway, self.conn, &[&g.encode()]);
        self
    }

    pub fn settings(&mut self, dir: Direction, table: u32) -> &mut Self {
        let s = rec::H2Settings {
            dir,
            flags: rec::h2_settings_flags::HEADER_TABLE_SIZE,
            header_table_size: table,
            max_frame_size: 0,
        };
        self.w
            .record(RecordType::H2Settings, self.conn, &[&s.encode()]);
        self
    }

    pub fn exchanges(&mut self) -> Vec<Exchange> {
        let conn = self.conn;
        self.w.close(conn, CloseReason::Closed, 0, 1000, 1000);
        let spool = Spool::from_files([("42-0.tlr", self.w.bytes.as_slice())]);
        let mut x = assemble(&spool).exchanges;
        x.sort_by_key(|x| x.seq);
        x
    }
}
