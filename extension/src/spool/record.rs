//! Record payloads as the reader keeps them: the record crate's typed payloads
//! (`tapline_record::{ConnOpen, Data, MsgEnd, ConnClose}`), checked once, here, for the
//! values this reader must know (a connection's protocol, a fragment's direction and
//! part, a close's reason...), with their variable parts (bytes, names, addresses)
//! owned. A payload that does not decode, or carries an enum value this build does not
//! know, is `None` and is counted by the caller, never handed on. HTTP/2 records
//! become [`super::h2::H2Frame`]s ([`super::h2`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tapline_record as rec;
use tapline_record::{FailureStage, LifecycleEvent, NoticeKind, RecordType, TlsLibrary};

/// One decoded record payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpoolRecord {
    ProcStart {
        ppid: u32,
        file_seq: u32,
        argv: Vec<String>,
    },
    /// Its protocol is a known one.
    ConnOpen(rec::ConnOpen),
    /// Captured bytes of one message part (direction and part known).
    Data(rec::Data, Vec<u8>),
    /// One HTTP message is complete or was cut off (direction known).
    MsgEnd(rec::MsgEnd),
    /// A message's counts so far (`MsgProgress`: the `MsgEnd` layout, not an end).
    MsgProgress(rec::MsgEnd),
    /// Its reason is a known one (`errno` says more for `CloseReason::Error`).
    ConnClose(rec::ConnClose),
    TlsInfo {
        library: Option<TlsLibrary>,
        sni: Option<String>,
        alpn: Option<String>,
        fd: i32,
        /// The conn id of the socket's own (ciphertext) connection, when the library
        /// knew it.
        socket_conn_id: Option<u64>,
    },
    Drops(rec::Drops),
    /// Its event is a known one.
    Lifecycle {
        event: LifecycleEvent,
        request_id: String,
    },
    NameLookup {
        name: String,
        addrs: Vec<IpAddr>,
    },
    /// A blind spot: `program` runs (or is loaded) in process `pid` where the library
    /// cannot see it. Its kind is a known one.
    Notice {
        kind: NoticeKind,
        pid: u32,
        program: String,
    },
    /// A call that failed before any HTTP (its stage a known one): `name` the host
    /// looked up or the peer's name, `peer` the address connected to, `code` the
    /// `EAI_*` value or errno, `reason` the library's text.
    Failure {
        stage: FailureStage,
        /// `tapline_record::failure_flags` (TLS: an alert from the wire, verify only).
        flags: u8,
        code: i32,
        peer: Option<SocketAddr>,
        name: Option<String>,
        reason: String,
    },
    /// One HTTP/2 record (`H2*`): an event of an HTTP/2 connection (its direction
    /// known), for [`crate::http2`].
    H2(super::h2::H2Frame),
}

/// What one framed record stands for: one record, or two — a `DataEnd` is its `Data`
/// then its `MsgEnd`, split here so that no reader past this point sees the difference.
pub(crate) type Decoded = (SpoolRecord, Option<SpoolRecord>);

/// Decodes one payload; `None` when the type is unknown or the payload does not fit it.
pub(crate) fn decode(rtype: u16, p: &[u8]) -> Option<Decoded> {
    let one = match RecordType::from_u16(rtype)? {
        RecordType::ProcStart => proc_start(p)?,
        RecordType::ConnOpen => {
            let o = rec::ConnOpen::decode(p)?;
            o.protocol.known()?;
            SpoolRecord::ConnOpen(o)
        }
        RecordType::Data => {
            let (d, bytes) = rec::Data::decode(p)?;
            d.dir.known()?;
            d.part.known()?;
            SpoolRecord::Data(d, bytes.to_vec())
        }
        RecordType::MsgEnd => {
            let m = rec::MsgEnd::decode(p)?;
            m.dir.known()?;
            SpoolRecord::MsgEnd(m)
        }
        RecordType::MsgProgress => {
            let m = rec::MsgEnd::decode(p)?;
            m.dir.known()?;
            SpoolRecord::MsgProgress(m)
        }
        RecordType::DataEnd => {
            let (d, bytes, m) = rec::DataEnd::decode(p)?;
            d.dir.known()?;
            d.part.known()?;
            m.dir.known()?;
            let data = SpoolRecord::Data(d, bytes.to_vec());
            return Some((data, Some(SpoolRecord::MsgEnd(m))));
        }
        RecordType::ConnClose => {
            let c = rec::ConnClose::decode(p)?;
            c.reason.known()?;
            SpoolRecord::ConnClose(c)
        }
        RecordType::TlsInfo => tls_info(p)?,
        RecordType::Drops => SpoolRecord::Drops(rec::Drops::decode(p)?),
        RecordType::Lifecycle => {
            let (l, id) = rec::Lifecycle::decode(p)?;
            SpoolRecord::Lifecycle {
                event: l.event.known()?,
                request_id: String::from_utf8_lossy(id).into_owned(),
            }
        }
        RecordType::NameLookup => name_lookup(p)?,
        RecordType::Failure => {
            let (f, name, reason) = rec::Failure::decode(p)?;
            SpoolRecord::Failure {
                stage: f.stage.known()?,
                flags: f.flags,
                code: f.code,
                peer: socket_addr(&f.peer),
                name: (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned()),
                reason: String::from_utf8_lossy(reason).into_owned(),
            }
        }
        RecordType::Notice => {
            let (n, path) = rec::Notice::decode(p)?;
            SpoolRecord::Notice {
                kind: n.kind.known()?,
                pid: n.pid,
                program: String::from_utf8_lossy(path).into_owned(),
            }
        }
        t @ (RecordType::H2Start
        | RecordType::H2Headers
        | RecordType::H2Data
        | RecordType::H2StreamEnd
        | RecordType::H2Reset
        | RecordType::H2GoAway
        | RecordType::H2Settings) => SpoolRecord::H2(super::h2::decode(t, p)?),
    };
    Some((one, None))
}

fn proc_start(p: &[u8]) -> Option<SpoolRecord> {
    let (s, cmdline) = rec::ProcStart::decode(p)?;
    let argv = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(SpoolRecord::ProcStart {
        ppid: s.ppid,
        file_seq: s.file_seq,
        argv,
    })
}

fn tls_info(p: &[u8]) -> Option<SpoolRecord> {
    let (t, sni, alpn) = rec::TlsInfo::decode(p)?;
    let text = |b: &[u8]| (!b.is_empty()).then(|| String::from_utf8_lossy(b).into_owned());
    Some(SpoolRecord::TlsInfo {
        library: t.library.known(),
        sni: text(sni),
        alpn: text(alpn),
        fd: t.fd,
        socket_conn_id: (t.socket_conn_id != 0).then_some(t.socket_conn_id),
    })
}

fn name_lookup(p: &[u8]) -> Option<SpoolRecord> {
    let (_, name, table) = rec::NameLookup::decode(p)?;
    let addrs = table
        .chunks_exact(rec::NameLookup::ADDR_LEN)
        .filter_map(rec::NameLookup::decode_addr)
        .filter_map(|a| socket_addr(&a).map(|s| s.ip()))
        .collect();
    Some(SpoolRecord::NameLookup {
        name: String::from_utf8_lossy(name).into_owned(),
        addrs,
    })
}

/// A stored address as a socket address; `None` for family 0 (unknown) or one we do
/// not know.
pub(crate) fn socket_addr(a: &rec::WireAddr) -> Option<SocketAddr> {
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
    fn notices_decode_with_their_program_and_pid() {
        let path = b"/usr/bin/busybox";
        let fixed = rec::Notice {
            kind: NoticeKind::StaticExecutable,
            flags: 0,
            path_len: path.len() as u16,
            pid: 31337,
        };
        let mut p = fixed.encode().to_vec();
        p.extend_from_slice(path);
        p.extend_from_slice(&[0; 8]); // padding, as read from a spool
        assert_eq!(
            decode(RecordType::Notice as u16, &p),
            Some((
                SpoolRecord::Notice {
                    kind: NoticeKind::StaticExecutable,
                    pid: 31337,
                    program: "/usr/bin/busybox".into(),
                },
                None
            ))
        );
        // A kind this build does not know is left out; so is a path past the payload.
        p[0] = 99;
        assert_eq!(decode(RecordType::Notice as u16, &p), None);
        p[0] = 1;
        assert_eq!(decode(RecordType::Notice as u16, &p[..12]), None);
    }

    #[test]
    fn unknown_enum_values_do_not_decode() {
        let d = rec::Data {
            dir: 9.into(),
            part: 1.into(),
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
