//! Record payloads as typed values: every enum-like byte (direction, part, protocol,
//! reason...) becomes a Rust enum, once, here; a payload that does not decode is `None`
//! and is counted by the caller, never handed on.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tapline_record as rec;
use tapline_record::{Direction, Part, Protocol, RecordType};

/// Why a connection ended (`ConnClose.reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    Closed,
    PeerEof,
    /// A read or write failed with this errno.
    Error(i32),
    Untracked,
    Upgraded,
    /// Still open when the traced process exited.
    AtExit,
}

/// Which TLS library a `TlsInfo` record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsLibrary {
    OpenSsl,
    GnuTls,
}

/// Lambda Runtime API lifecycle events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifecycleEvent {
    InvocationNext,
    InvocationResponse,
    InvocationError,
}

/// A `Data` record: captured bytes of one message part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment {
    pub dir: Direction,
    pub part: Part,
    pub msg_seq: u32,
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// A `MsgEnd` record: one HTTP message is complete or was cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageEnd {
    pub dir: Direction,
    /// [`tapline_record::msg_flags`] bits.
    pub flags: u16,
    pub msg_seq: u32,
    pub head_len: u64,
    pub body_len: u64,
    pub wire_len: u64,
    pub start_wall_ns: u64,
    pub start_mono_ns: u64,
    /// 0 for requests (and for responses whose status line did not parse).
    pub status: u16,
}

impl MessageEnd {
    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

/// A `ConnOpen` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionOpen {
    pub fd: i32,
    pub protocol: Protocol,
    pub connect_wall_ns: u64,
    pub connect_mono_ns: u64,
    pub peer: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
}

/// A `ConnClose` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionClose {
    pub reason: CloseReason,
    pub protocol: Option<Protocol>,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub first_out_wall_ns: u64,
    pub last_in_wall_ns: u64,
}

/// One decoded record payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpoolRecord {
    ProcStart {
        ppid: u32,
        file_seq: u32,
        argv: Vec<String>,
    },
    ConnOpen(ConnectionOpen),
    Data(Fragment),
    MsgEnd(MessageEnd),
    ConnClose(ConnectionClose),
    TlsInfo {
        library: Option<TlsLibrary>,
        sni: Option<String>,
        alpn: Option<String>,
        fd: i32,
        /// The conn id of the socket's own (ciphertext) connection, when the library
        /// knew it.
        socket_conn_id: Option<u64>,
    },
    Drops {
        records: u64,
        bytes: u64,
    },
    Lifecycle {
        event: LifecycleEvent,
        request_id: String,
    },
    NameLookup {
        name: String,
        addrs: Vec<IpAddr>,
    },
}

/// Decodes one payload; `None` when the type is unknown or the payload does not fit it.
pub fn decode(rtype: u16, p: &[u8]) -> Option<SpoolRecord> {
    Some(match RecordType::from_u16(rtype)? {
        RecordType::ProcStart => {
            let (s, cmdline) = rec::ProcStart::decode(p)?;
            let argv = cmdline
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            SpoolRecord::ProcStart {
                ppid: s.ppid,
                file_seq: s.file_seq,
                argv,
            }
        }
        RecordType::ConnOpen => {
            let o = rec::ConnOpen::decode(p)?;
            SpoolRecord::ConnOpen(ConnectionOpen {
                fd: o.fd,
                protocol: o.protocol()?,
                connect_wall_ns: o.connect_wall_ns,
                connect_mono_ns: o.connect_mono_ns,
                peer: socket_addr(&o.peer),
                local: socket_addr(&o.local),
            })
        }
        RecordType::Data => {
            let (d, bytes) = rec::Data::decode(p)?;
            SpoolRecord::Data(Fragment {
                dir: d.direction()?,
                part: d.part()?,
                msg_seq: d.msg_seq,
                offset: d.offset,
                bytes: bytes.to_vec(),
            })
        }
        RecordType::MsgEnd => {
            let m = rec::MsgEnd::decode(p)?;
            SpoolRecord::MsgEnd(MessageEnd {
                dir: m.direction()?,
                flags: m.flags,
                msg_seq: m.msg_seq,
                head_len: m.head_len,
                body_len: m.body_len,
                wire_len: m.wire_len,
                start_wall_ns: m.start_wall_ns,
                start_mono_ns: m.start_mono_ns,
                status: m.status,
            })
        }
        RecordType::ConnClose => {
            let c = rec::ConnClose::decode(p)?;
            let reason = match c.reason {
                rec::close_reason::CLOSED => CloseReason::Closed,
                rec::close_reason::PEER_EOF => CloseReason::PeerEof,
                rec::close_reason::ERROR => CloseReason::Error(c.errno),
                rec::close_reason::UNTRACKED => CloseReason::Untracked,
                rec::close_reason::UPGRADED => CloseReason::Upgraded,
                rec::close_reason::AT_EXIT => CloseReason::AtExit,
                _ => return None,
            };
            SpoolRecord::ConnClose(ConnectionClose {
                reason,
                protocol: Protocol::from_u8(c.protocol),
                bytes_out: c.bytes_out,
                bytes_in: c.bytes_in,
                first_out_wall_ns: c.first_out_wall_ns,
                last_in_wall_ns: c.last_in_wall_ns,
            })
        }
        RecordType::TlsInfo => {
            let (t, sni, alpn) = rec::TlsInfo::decode(p)?;
            let library = match t.library {
                rec::tls_library::OPENSSL => Some(TlsLibrary::OpenSsl),
                rec::tls_library::GNUTLS => Some(TlsLibrary::GnuTls),
                _ => None,
            };
            let text = |b: &[u8]| (!b.is_empty()).then(|| String::from_utf8_lossy(b).into_owned());
            SpoolRecord::TlsInfo {
                library,
                sni: text(sni),
                alpn: text(alpn),
                fd: t.fd,
                socket_conn_id: (t.socket_conn_id != 0).then_some(t.socket_conn_id),
            }
        }
        RecordType::Drops => {
            let d = rec::Drops::decode(p)?;
            SpoolRecord::Drops {
                records: d.records,
                bytes: d.bytes,
            }
        }
        RecordType::Lifecycle => {
            let (l, id) = rec::Lifecycle::decode(p)?;
            let event = match l.event {
                rec::lifecycle_event::INVOCATION_NEXT => LifecycleEvent::InvocationNext,
                rec::lifecycle_event::INVOCATION_RESPONSE => LifecycleEvent::InvocationResponse,
                rec::lifecycle_event::INVOCATION_ERROR => LifecycleEvent::InvocationError,
                _ => return None,
            };
            SpoolRecord::Lifecycle {
                event,
                request_id: String::from_utf8_lossy(id).into_owned(),
            }
        }
        RecordType::NameLookup => {
            let (_, name, table) = rec::NameLookup::decode(p)?;
            let addrs = table
                .chunks_exact(rec::NameLookup::ADDR_LEN)
                .filter_map(rec::NameLookup::decode_addr)
                .filter_map(|a| socket_addr(&a).map(|s| s.ip()))
                .collect();
            SpoolRecord::NameLookup {
                name: String::from_utf8_lossy(name).into_owned(),
                addrs,
            }
        }
    })
}

/// A stored address as a socket address; `None` for family 0 (unknown) or one we do
/// not know.
pub(super) fn socket_addr(a: &rec::WireAddr) -> Option<SocketAddr> {
    let ip = match a.family {
        rec::AF_INET => IpAddr::V4(Ipv4Addr::new(a.addr[0], a.addr[1], a.addr[2], a.addr[3])),
        rec::AF_INET6 => IpAddr::V6(Ipv6Addr::from(a.addr)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, a.port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_decode_by_family() {
        let mut v4 = rec::WireAddr {
            family: rec::AF_INET,
            port: 8080,
            addr: [0; 16],
        };
        v4.addr[..4].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(socket_addr(&v4), Some("127.0.0.1:8080".parse().unwrap()));
        let mut v6 = v4;
        v6.family = rec::AF_INET6;
        v6.addr = Ipv6Addr::LOCALHOST.octets();
        assert_eq!(socket_addr(&v6), Some("[::1]:8080".parse().unwrap()));
        v6.family = 0;
        assert_eq!(socket_addr(&v6), None);
    }

    #[test]
    fn unknown_enum_values_do_not_decode() {
        let d = rec::Data {
            dir: 9,
            part: 1,
            flags: 0,
            msg_seq: 0,
            offset: 0,
            len: 0,
        };
        assert_eq!(decode(RecordType::Data as u16, &d.encode()), None);
        assert_eq!(decode(77, &[0; 64]), None);
        assert_eq!(decode(RecordType::MsgEnd as u16, &[0; 10]), None);
    }
}
