//! `SpoolWriter`: builds spool files with the real `tapline-record` encoders, so that
//! tests exercise the reader on exactly the bytes the library would write.
#![allow(dead_code)]

pub mod h2;
pub mod preload;

use std::net::SocketAddr;

use tapline_record::{
    msg_flags, CloseReason, ConnClose, ConnOpen, Data, Direction, Drops, Header, MsgEnd, Part,
    ProcStart, Protocol, RecordType, TlsInfo, TlsLibrary, WireAddr, AF_INET, AF_INET6,
};

/// Start of test time: 2024-01-01T00:00:00Z.
pub const T0_WALL: u64 = 1_704_067_200_000_000_000;
pub const MS: u64 = 1_000_000;

pub struct SpoolWriter {
    pub bytes: Vec<u8>,
    pub pid: u32,
    /// Offset of the clocks from T0, advanced by `tick`.
    pub now: u64,
}

pub fn wire_addr(a: SocketAddr) -> WireAddr {
    let mut w = WireAddr {
        family: 0,
        port: a.port(),
        addr: [0; 16],
    };
    match a {
        SocketAddr::V4(v4) => {
            w.family = AF_INET;
            w.addr[..4].copy_from_slice(&v4.ip().octets());
        }
        SocketAddr::V6(v6) => {
            w.family = AF_INET6;
            w.addr = v6.ip().octets();
        }
    }
    w
}

impl SpoolWriter {
    /// A file that starts with the `ProcStart` record, as the library's do.
    pub fn new(pid: u32) -> Self {
        let mut w = SpoolWriter {
            bytes: Vec::new(),
            pid,
            now: 0,
        };
        let cmd = b"curl\0-s\0http://x/";
        let ps = ProcStart {
            ppid: 1,
            cmdline_len: cmd.len() as u32,
            file_seq: 0,
            flags: 0,
        };
        w.record(RecordType::ProcStart, 0, &[&ps.encode(), cmd]);
        w
    }

    /// A file without a `ProcStart` (a second file of the same process, say).
    pub fn bare(pid: u32, now: u64) -> Self {
        SpoolWriter {
            bytes: Vec::new(),
            pid,
            now,
        }
    }

    pub fn wall(&self) -> u64 {
        T0_WALL + self.now
    }

    pub fn tick(&mut self, ns: u64) -> &mut Self {
        self.now += ns;
        self
    }

    pub fn record(&mut self, rtype: RecordType, conn_id: u64, parts: &[&[u8]]) -> &mut Self {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut h = Header::new(rtype, len, self.wall(), 1_000_000_000 + self.now);
        h.pid = self.pid;
        h.tid = self.pid;
        h.conn_id = conn_id;
        let (head, pad) = h.seal(parts);
        self.bytes.extend_from_slice(&head);
        for p in parts {
            self.bytes.extend_from_slice(p);
        }
        self.bytes.extend_from_slice(Header::padding(pad));
        self
    }

    pub fn conn_id(&self, n: u32) -> u64 {
        (u64::from(self.pid) << 32) | u64::from(n)
    }

    pub fn open(&mut self, conn: u64, protocol: Protocol, fd: i32, peer: &str) -> &mut Self {
        let o = ConnOpen {
            fd,
            protocol,
            flags: 0,
            connect_wall_ns: self.wall(),
            connect_mono_ns: 1_000_000_000 + self.now,
            peer: wire_addr(peer.parse().expect("test peer address")),
            local: wire_addr("127.0.0.1:40000".parse().expect("local")),
            established_wall_ns: 0,
        };
        self.record(RecordType::ConnOpen, conn, &[&o.encode()])
    }

    /// A `ConnOpen` of a non-blocking connect (`CONNECT_STARTED`) that started
    /// `connect_ago` ns before this record (the socket's first write), and that
    /// `SO_ERROR` said established `established_ago` ns before it (0: not seen).
    pub fn open_started(
        &mut self,
        conn: u64,
        protocol: Protocol,
        fd: i32,
        peer: &str,
        connect_ago: u64,
        established_ago: u64,
    ) -> &mut Self {
        let o = ConnOpen {
            fd,
            protocol,
            flags: tapline_record::conn_flags::CONNECT_STARTED,
            connect_wall_ns: self.wall() - connect_ago,
            connect_mono_ns: 1_000_000_000 + self.now - connect_ago,
            peer: wire_addr(peer.parse().expect("test peer address")),
            local: wire_addr("127.0.0.1:40000".parse().expect("local")),
            established_wall_ns: if established_ago == 0 {
                0
            } else {
                self.wall() - established_ago
            },
        };
        self.record(RecordType::ConnOpen, conn, &[&o.encode()])
    }

    pub fn data(
        &mut self,
        conn: u64,
        dir: Direction,
        part: Part,
        seq: u32,
        offset: u64,
        bytes: &[u8],
    ) -> &mut Self {
        let d = Data {
            dir,
            part,
            flags: 0,
            msg_seq: seq,
            offset,
            len: bytes.len() as u32,
        };
        self.record(RecordType::Data, conn, &[&d.encode(), bytes])
    }

    #[allow(clippy::too_many_arguments)]
    pub fn end(
        &mut self,
        conn: u64,
        dir: Direction,
        seq: u32,
        head_len: u64,
        body_len: u64,
        wire_len: u64,
        flags: u16,
        status: u16,
        start_now: u64,
    ) -> &mut Self {
        let m = MsgEnd {
            dir,
            flags,
            msg_seq: seq,
            head_len,
            body_len,
            wire_len,
            start_wall_ns: T0_WALL + start_now,
            start_mono_ns: 1_000_000_000 + start_now,
            status,
        };
        self.record(RecordType::MsgEnd, conn, &[&m.encode()])
    }

    /// A whole message as the library writes it: head, body, `MsgEnd` (1 ms apart).
    /// The status is read from the head of a response.
    pub fn message(
        &mut self,
        conn: u64,
        dir: Direction,
        seq: u32,
        head: &str,
        body: &[u8],
        flags: u16,
    ) -> &mut Self {
        let start = self.now;
        self.data(conn, dir, Part::Head, seq, 0, head.as_bytes());
        if !body.is_empty() {
            self.tick(MS).data(conn, dir, Part::Body, seq, 0, body);
        }
        let status = match dir {
            Direction::Ingress => head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0),
            Direction::Egress | Direction::Unknown(_) => 0,
        };
        let len = (head.len() + body.len()) as u64;
        self.tick(MS).end(
            conn,
            dir,
            seq,
            head.len() as u64,
            body.len() as u64,
            len,
            flags,
            status,
            start,
        )
    }

    pub fn request(&mut self, conn: u64, seq: u32, head: &str, body: &[u8]) -> &mut Self {
        let flags = if body.is_empty() {
            msg_flags::NO_BODY
        } else {
            0
        };
        self.message(conn, Direction::Egress, seq, head, body, flags)
    }

    pub fn response(&mut self, conn: u64, seq: u32, head: &str, body: &[u8]) -> &mut Self {
        self.message(conn, Direction::Ingress, seq, head, body, 0)
    }

    pub fn close(
        &mut self,
        conn: u64,
        reason: CloseReason,
        errno: i32,
        out: u64,
        inn: u64,
    ) -> &mut Self {
        let c = ConnClose {
            reason,
            protocol: 0.into(),
            errno,
            bytes_out: out,
            bytes_in: inn,
            first_out_wall_ns: T0_WALL + 1,
            last_in_wall_ns: self.wall(),
        };
        self.record(RecordType::ConnClose, conn, &[&c.encode()])
    }

    pub fn closed(&mut self, conn: u64) -> &mut Self {
        self.close(conn, CloseReason::Closed, 0, 0, 0)
    }

    pub fn tls_info(
        &mut self,
        conn: u64,
        library: TlsLibrary,
        sni: &str,
        alpn: &str,
        fd: i32,
    ) -> &mut Self {
        let t = TlsInfo {
            library,
            flags: 0,
            sni_len: sni.len() as u16,
            alpn_len: alpn.len() as u16,
            fd,
            socket_conn_id: 0,
        };
        self.record(
            RecordType::TlsInfo,
            conn,
            &[&t.encode(), sni.as_bytes(), alpn.as_bytes()],
        )
    }

    pub fn drops(&mut self, records: u64, bytes: u64) -> &mut Self {
        self.record(RecordType::Drops, 0, &[&Drops { records, bytes }.encode()])
    }
}
