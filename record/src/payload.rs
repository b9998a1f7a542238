//! Fixed payload layouts, one per [`RecordType`](crate::RecordType). All integers are
//! little-endian; offsets are documented in `include/tapline.h`.
//!
//! `encode` returns the fixed part as an array (no allocation: the writer calls it on
//! the hook path); variable bytes, where a type has them, follow the fixed part and are
//! passed to [`Header::seal`](crate::Header::seal) as further parts. `decode` returns
//! `None` when the payload is too short for its type.

use crate::enums::{
    CloseReason, Direction, FailureStage, LifecycleEvent, NoticeKind, Part, Protocol, TlsLibrary,
};
use crate::le::{le16, le32, le64};

/// A socket address as it is stored: family (`AF_INET` = 2, `AF_INET6` = 10), port, and
/// 16 address bytes (an IPv4 address in the first 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireAddr {
    pub family: u16,
    pub port: u16,
    pub addr: [u8; 16],
}

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// `ProcStart`: fixed 16 bytes, then the command line (argv joined by NUL, cut at
/// `cmdline_len`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStart {
    pub ppid: u32,
    pub cmdline_len: u32,
    /// Spool file sequence number within this process (0 for the first file).
    pub file_seq: u32,
    pub flags: u32,
}

impl ProcStart {
    pub const LEN: usize = 16;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..4].copy_from_slice(&self.ppid.to_le_bytes());
        b[4..8].copy_from_slice(&self.cmdline_len.to_le_bytes());
        b[8..12].copy_from_slice(&self.file_seq.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b
    }
    pub fn decode(p: &[u8]) -> Option<(Self, &[u8])> {
        if p.len() < Self::LEN {
            return None;
        }
        let s = ProcStart {
            ppid: le32(p, 0),
            cmdline_len: le32(p, 4),
            file_seq: le32(p, 8),
            flags: le32(p, 12),
        };
        let rest = p.get(Self::LEN..Self::LEN + s.cmdline_len as usize)?;
        Some((s, rest))
    }
}

/// `ConnOpen`: 72 bytes (64 from writers before `established_wall_ns`). Written when the sniffer first classifies a connection (not at
/// `connect`, so that connections that never carry HTTP or TLS leave no trace).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnOpen {
    /// The socket fd, or -1 for a connection known only by its TLS object.
    pub fd: i32,
    pub protocol: Protocol,
    /// [`crate::conn_flags`] bits.
    pub flags: u8,
    /// `connect()` time (wall clock), or the first write's when connect was not seen.
    pub connect_wall_ns: u64,
    pub connect_mono_ns: u64,
    pub peer: WireAddr,
    pub local: WireAddr,
    /// With `CONNECT_STARTED`: when `getsockopt(SO_ERROR)` answered 0 (the connection
    /// was established), wall clock; 0 when not seen.
    pub established_wall_ns: u64,
}

impl ConnOpen {
    pub const LEN: usize = 72;
    /// What writers before `established_wall_ns` wrote.
    pub const LEN_V0: usize = 64;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..4].copy_from_slice(&self.fd.to_le_bytes());
        b[4] = self.protocol.into();
        b[5] = self.flags;
        b[6..8].copy_from_slice(&self.peer.family.to_le_bytes());
        b[8..16].copy_from_slice(&self.connect_wall_ns.to_le_bytes());
        b[16..24].copy_from_slice(&self.connect_mono_ns.to_le_bytes());
        b[24..40].copy_from_slice(&self.peer.addr);
        b[40..42].copy_from_slice(&self.peer.port.to_le_bytes());
        b[42..44].copy_from_slice(&self.local.port.to_le_bytes());
        b[44..46].copy_from_slice(&self.local.family.to_le_bytes());
        b[48..64].copy_from_slice(&self.local.addr);
        b[64..72].copy_from_slice(&self.established_wall_ns.to_le_bytes());
        b
    }
    pub fn decode(p: &[u8]) -> Option<Self> {
        if p.len() < Self::LEN_V0 {
            return None;
        }
        let mut peer = [0u8; 16];
        peer.copy_from_slice(&p[24..40]);
        let mut local = [0u8; 16];
        local.copy_from_slice(&p[48..64]);
        Some(ConnOpen {
            fd: le32(p, 0) as i32,
            protocol: p[4].into(),
            flags: p[5],
            connect_wall_ns: le64(p, 8),
            connect_mono_ns: le64(p, 16),
            peer: WireAddr {
                family: le16(p, 6),
                port: le16(p, 40),
                addr: peer,
            },
            local: WireAddr {
                family: le16(p, 44),
                port: le16(p, 42),
                addr: local,
            },
            established_wall_ns: if p.len() >= Self::LEN { le64(p, 64) } else { 0 },
        })
    }
}

/// `Data`: fixed 24 bytes, then `len` captured bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Data {
    pub dir: Direction,
    pub part: Part,
    pub flags: u16,
    /// Index of the message in its direction on this connection (0, 1, 2, ...).
    pub msg_seq: u32,
    /// Offset of the first captured byte within the message part (head, or decoded body).
    pub offset: u64,
    pub len: u32,
}

impl Data {
    pub const LEN: usize = 24;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.dir.into();
        b[1] = self.part.into();
        b[2..4].copy_from_slice(&self.flags.to_le_bytes());
        b[4..8].copy_from_slice(&self.msg_seq.to_le_bytes());
        b[8..16].copy_from_slice(&self.offset.to_le_bytes());
        b[16..20].copy_from_slice(&self.len.to_le_bytes());
        b
    }
    pub fn decode(p: &[u8]) -> Option<(Self, &[u8])> {
        let d = Self::decode_fixed(p)?;
        let bytes = p.get(Self::LEN..Self::LEN + d.len as usize)?;
        Some((d, bytes))
    }
    /// The fixed 24 bytes alone (the captured bytes are wherever the record puts them).
    fn decode_fixed(p: &[u8]) -> Option<Self> {
        if p.len() < Self::LEN {
            return None;
        }
        Some(Data {
            dir: p[0].into(),
            part: p[1].into(),
            flags: le16(p, 2),
            msg_seq: le32(p, 4),
            offset: le64(p, 8),
            len: le32(p, 16),
        })
    }
}

/// `DataEnd`: a [`Data`] record and the [`MsgEnd`] record right after it, written as
/// one (same header: time, thread, connection). Fixed 80 bytes — the `Data` fixed part
/// (24), the `MsgEnd` (56) — then `Data.len` captured bytes. It means exactly the
/// `Data` record (with those bytes), then the `MsgEnd` record.
pub struct DataEnd;

impl DataEnd {
    pub const LEN: usize = Data::LEN + MsgEnd::LEN;
    /// The two records: the `Data` with its bytes, and the `MsgEnd`.
    pub fn decode(p: &[u8]) -> Option<(Data, &[u8], MsgEnd)> {
        let d = Data::decode_fixed(p)?;
        let end = MsgEnd::decode(p.get(Data::LEN..Self::LEN)?)?;
        let bytes = p.get(Self::LEN..Self::LEN + d.len as usize)?;
        Some((d, bytes, end))
    }
}

/// `MsgEnd`: 56 bytes. The header's timestamps are those of the call that read or wrote
/// the message's last byte; `start_*` those of the call that carried its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgEnd {
    pub dir: Direction,
    /// [`msg_flags`](crate::msg_flags) bits.
    pub flags: u16,
    pub msg_seq: u32,
    /// Bytes of the head on the wire (start line to blank line).
    pub head_len: u64,
    /// Body bytes after transfer decoding.
    pub body_len: u64,
    /// All bytes of the message on the wire (head, chunk framing, body, trailers).
    pub wire_len: u64,
    pub start_wall_ns: u64,
    pub start_mono_ns: u64,
    /// Response status code as the framer read it; 0 for requests.
    pub status: u16,
}

impl MsgEnd {
    pub const LEN: usize = 56;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.dir.into();
        b[2..4].copy_from_slice(&self.flags.to_le_bytes());
        b[4..8].copy_from_slice(&self.msg_seq.to_le_bytes());
        b[8..16].copy_from_slice(&self.head_len.to_le_bytes());
        b[16..24].copy_from_slice(&self.body_len.to_le_bytes());
        b[24..32].copy_from_slice(&self.wire_len.to_le_bytes());
        b[32..40].copy_from_slice(&self.start_wall_ns.to_le_bytes());
        b[40..48].copy_from_slice(&self.start_mono_ns.to_le_bytes());
        b[48..50].copy_from_slice(&self.status.to_le_bytes());
        b
    }
    pub fn decode(p: &[u8]) -> Option<Self> {
        if p.len() < Self::LEN {
            return None;
        }
        Some(MsgEnd {
            dir: p[0].into(),
            flags: le16(p, 2),
            msg_seq: le32(p, 4),
            head_len: le64(p, 8),
            body_len: le64(p, 16),
            wire_len: le64(p, 24),
            start_wall_ns: le64(p, 32),
            start_mono_ns: le64(p, 40),
            status: le16(p, 48),
        })
    }
    /// Whether a [`msg_flags`](crate::msg_flags) bit is set.
    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

/// `ConnClose`: 40 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnClose {
    pub reason: CloseReason,
    pub protocol: Protocol,
    /// errno of the failed call when `reason` is `Error`.
    pub errno: i32,
    /// Bytes written and read on the socket (ciphertext on TLS sockets).
    pub bytes_out: u64,
    pub bytes_in: u64,
    /// Time of the first byte written and of the last byte read (0 if none).
    pub first_out_wall_ns: u64,
    pub last_in_wall_ns: u64,
}

impl ConnClose {
    pub const LEN: usize = 40;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.reason.into();
        b[1] = self.protocol.into();
        b[4..8].copy_from_slice(&self.errno.to_le_bytes());
        b[8..16].copy_from_slice(&self.bytes_out.to_le_bytes());
        b[16..24].copy_from_slice(&self.bytes_in.to_le_bytes());
        b[24..32].copy_from_slice(&self.first_out_wall_ns.to_le_bytes());
        b[32..40].copy_from_slice(&self.last_in_wall_ns.to_le_bytes());
        b
    }
    pub fn decode(p: &[u8]) -> Option<Self> {
        if p.len() < Self::LEN {
            return None;
        }
        Some(ConnClose {
            reason: p[0].into(),
            protocol: p[1].into(),
            errno: le32(p, 4) as i32,
            bytes_out: le64(p, 8),
            bytes_in: le64(p, 16),
            first_out_wall_ns: le64(p, 24),
            last_in_wall_ns: le64(p, 32),
        })
    }
}

/// `TlsInfo`: fixed 24 bytes, then `sni_len` bytes of server name and `alpn_len` bytes
/// of the selected ALPN protocol. Written once per plaintext TLS connection, right
/// after its `ConnOpen`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    pub library: TlsLibrary,
    pub flags: u8,
    pub sni_len: u16,
    pub alpn_len: u16,
    /// The socket fd the TLS object writes to, or -1 when unknown (custom or memory BIO).
    pub fd: i32,
    /// The conn id of that socket's own (ciphertext) connection, 0 when unknown. A
    /// reader reports the plaintext and drops the opaque twin.
    pub socket_conn_id: u64,
}

impl TlsInfo {
    pub const LEN: usize = 24;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.library.into();
        b[1] = self.flags;
        b[2..4].copy_from_slice(&self.sni_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.alpn_len.to_le_bytes());
        b[8..12].copy_from_slice(&self.fd.to_le_bytes());
        b[16..24].copy_from_slice(&self.socket_conn_id.to_le_bytes());
        b
    }
    /// Returns the fixed part, the server name and the ALPN bytes.
    pub fn decode(p: &[u8]) -> Option<(Self, &[u8], &[u8])> {
        if p.len() < Self::LEN {
            return None;
        }
        let t = TlsInfo {
            library: p[0].into(),
            flags: p[1],
            sni_len: le16(p, 2),
            alpn_len: le16(p, 4),
            fd: le32(p, 8) as i32,
            socket_conn_id: le64(p, 16),
        };
        let sni_end = Self::LEN + t.sni_len as usize;
        let sni = p.get(Self::LEN..sni_end)?;
        let alpn = p.get(sni_end..sni_end + t.alpn_len as usize)?;
        Some((t, sni, alpn))
    }
}

/// `Drops`: 16 bytes. Counts since the last `Drops` record this process wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drops {
    pub records: u64,
    pub bytes: u64,
}

impl Drops {
    pub const LEN: usize = 16;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..8].copy_from_slice(&self.records.to_le_bytes());
        b[8..16].copy_from_slice(&self.bytes.to_le_bytes());
        b
    }
    pub fn decode(p: &[u8]) -> Option<Self> {
        if p.len() < Self::LEN {
            return None;
        }
        Some(Drops {
            records: le64(p, 0),
            bytes: le64(p, 8),
        })
    }
}

/// `Lifecycle`: fixed 8 bytes, then the invocation's request id (`id_len` bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifecycle {
    pub event: LifecycleEvent,
    pub id_len: u16,
}

impl Lifecycle {
    pub const LEN: usize = 8;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.event.into();
        b[2..4].copy_from_slice(&self.id_len.to_le_bytes());
        b
    }
    pub fn decode(p: &[u8]) -> Option<(Self, &[u8])> {
        if p.len() < Self::LEN {
            return None;
        }
        let l = Lifecycle {
            event: p[0].into(),
            id_len: le16(p, 2),
        };
        let id = p.get(Self::LEN..Self::LEN + l.id_len as usize)?;
        Some((l, id))
    }
}

/// `NameLookup`: fixed 8 bytes, the host name (`name_len` bytes, padded to 8), then
/// `count` addresses of 20 bytes each (family u16, port u16 = 0, 16 address bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameLookup {
    pub name_len: u16,
    pub count: u16,
}

impl NameLookup {
    pub const LEN: usize = 8;
    pub const ADDR_LEN: usize = 20;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..2].copy_from_slice(&self.name_len.to_le_bytes());
        b[2..4].copy_from_slice(&self.count.to_le_bytes());
        b
    }
    pub fn encode_addr(a: &WireAddr) -> [u8; Self::ADDR_LEN] {
        let mut b = [0u8; Self::ADDR_LEN];
        b[0..2].copy_from_slice(&a.family.to_le_bytes());
        b[2..4].copy_from_slice(&a.port.to_le_bytes());
        b[4..20].copy_from_slice(&a.addr);
        b
    }
    /// Returns the fixed part, the name, and the raw address table.
    pub fn decode(p: &[u8]) -> Option<(Self, &[u8], &[u8])> {
        if p.len() < Self::LEN {
            return None;
        }
        let n = NameLookup {
            name_len: le16(p, 0),
            count: le16(p, 2),
        };
        let name_end = Self::LEN + n.name_len as usize;
        let name = p.get(Self::LEN..name_end)?;
        let addrs_start = (name_end + 7) & !7;
        let addrs = p.get(addrs_start..addrs_start + n.count as usize * Self::ADDR_LEN)?;
        Some((n, name, addrs))
    }
    pub fn decode_addr(b: &[u8]) -> Option<WireAddr> {
        if b.len() < Self::ADDR_LEN {
            return None;
        }
        let mut addr = [0u8; 16];
        addr.copy_from_slice(&b[4..20]);
        Some(WireAddr {
            family: le16(b, 0),
            port: le16(b, 2),
            addr,
        })
    }
}

/// `Notice`: fixed 8 bytes, then the path of the program or object (`path_len` bytes).
/// The header's pid is the writer; `pid` is the process the notice is about (the
/// same process after `execve`, the child after `posix_spawn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub flags: u8,
    pub path_len: u16,
    pub pid: u32,
}

impl Notice {
    pub const LEN: usize = 8;
    /// Longest path a notice carries; longer ones are cut.
    pub const MAX_PATH: usize = 4096;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.kind.into();
        b[1] = self.flags;
        b[2..4].copy_from_slice(&self.path_len.to_le_bytes());
        b[4..8].copy_from_slice(&self.pid.to_le_bytes());
        b
    }
    /// Returns the fixed part and the path.
    pub fn decode(p: &[u8]) -> Option<(Self, &[u8])> {
        if p.len() < Self::LEN {
            return None;
        }
        let n = Notice {
            kind: p[0].into(),
            flags: p[1],
            path_len: le16(p, 2),
            pid: le32(p, 4),
        };
        let path = p.get(Self::LEN..Self::LEN + n.path_len as usize)?;
        Some((n, path))
    }
}

/// `Failure`: fixed 32 bytes, then the name (`name_len` bytes: the host looked up, or
/// the name the peer was resolved from) and the reason (`reason_len` bytes of text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    pub stage: FailureStage,
    pub flags: u8,
    pub name_len: u16,
    /// `EAI_*` for `Dns`, the errno for `Connect`, the library's code for `Tls`.
    pub code: i32,
    /// The address connected to (family 0 for a name lookup).
    pub peer: WireAddr,
    pub reason_len: u16,
}

impl Failure {
    pub const LEN: usize = 32;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.stage.into();
        b[1] = self.flags;
        b[2..4].copy_from_slice(&self.name_len.to_le_bytes());
        b[4..8].copy_from_slice(&self.code.to_le_bytes());
        b[8..28].copy_from_slice(&NameLookup::encode_addr(&self.peer));
        b[28..30].copy_from_slice(&self.reason_len.to_le_bytes());
        b
    }
    /// Returns the fixed part, the name and the reason.
    pub fn decode(p: &[u8]) -> Option<(Self, &[u8], &[u8])> {
        if p.len() < Self::LEN {
            return None;
        }
        let f = Failure {
            stage: p[0].into(),
            flags: p[1],
            name_len: le16(p, 2),
            code: le32(p, 4) as i32,
            peer: NameLookup::decode_addr(&p[8..28])?,
            reason_len: le16(p, 28),
        };
        let name_end = Self::LEN + f.name_len as usize;
        let name = p.get(Self::LEN..name_end)?;
        let reason = p.get(name_end..name_end + f.reason_len as usize)?;
        Some((f, name, reason))
    }
}
