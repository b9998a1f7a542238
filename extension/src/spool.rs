//! The spool reader: every `*.tlr` file and every shared segment (`*.tls`, read through
//! [`crate::segment`]) of a spool directory, as typed records.
//!
//! Why a module of its own: spool bytes are untrusted input (a process may have been
//! killed mid-write, a disk may have filled up, anyone who can write the directory can
//! put anything there). This is the one place where those bytes become typed values
//! ("parse, don't validate"): frames are checked by [`tapline_record::RecordIter`], which
//! skips torn or corrupt stretches; here each payload is decoded once into a
//! [`SpoolRecord`], and every enum-like byte (direction, part, protocol, reason...)
//! becomes a Rust enum. A record that does not decode is counted and left out; nothing
//! downstream ever sees raw bytes it would have to re-check.
//!
//! Files are read whole, after the writers are gone, so zero words are garbage to skip
//! (`RecordIter::skipping_zeros`), not "end of committed data".

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use tapline_record as rec;
use tapline_record::{Direction, Item, Part, Protocol, RecordIter, RecordType};

/// Why a spool directory could not be read.
#[derive(Debug)]
pub enum SpoolError {
    /// The directory itself could not be listed.
    ReadDir { dir: PathBuf, source: io::Error },
}

impl fmt::Display for SpoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpoolError::ReadDir { dir, source } => {
                write!(f, "cannot read spool directory {}: {source}", dir.display())
            }
        }
    }
}

impl std::error::Error for SpoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpoolError::ReadDir { source, .. } => Some(source),
        }
    }
}

/// The header fields every record carries, minus the framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordMeta {
    pub wall_ns: u64,
    pub mono_ns: u64,
    pub pid: u32,
    pub tid: u32,
    /// 0 for records about the process rather than a connection.
    pub conn_id: u64,
    /// Index of the file in [`Spool::files`].
    pub file: usize,
    /// Position of the record within its file (0 for the first readable record).
    pub index: usize,
}

impl RecordMeta {
    /// The metadata of a record with this header, at `index` in file `file`.
    pub fn new(h: &tapline_record::Header, file: usize, index: usize) -> Self {
        RecordMeta {
            wall_ns: h.wall_ns,
            mono_ns: h.mono_ns,
            pid: h.pid,
            tid: h.tid,
            conn_id: h.conn_id,
            file,
            index,
        }
    }
}

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
    /// One HTTP/2 record (`H2*`), for [`crate::http2`].
    H2(crate::http2::H2Frame),
}

/// A record and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolEntry {
    pub meta: RecordMeta,
    pub record: SpoolRecord,
}

/// What reading one file met.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    /// File name within the spool directory.
    pub name: String,
    /// Records decoded.
    pub records: u64,
    /// Stretches of bytes that were not a readable record (torn, corrupt, garbage).
    pub skipped_stretches: u64,
    pub skipped_bytes: u64,
    /// Well-framed records whose payload did not decode (unknown type or enum value,
    /// payload too short for its type).
    pub undecodable: u64,
    /// The file could not be read at all.
    pub error: Option<String>,
}

/// All records of a spool, in file order then record order.
#[derive(Clone, Debug, Default)]
pub struct Spool {
    pub files: Vec<FileStats>,
    pub entries: Vec<SpoolEntry>,
}

/// Sort key for spool file names: `<pid>-<seq>.tlr` numerically, anything else after,
/// by name. Reading order matters only as a tie-break after monotonic time.
fn file_order(name: &str) -> (u8, u64, u64, String) {
    let stem = name.strip_suffix(".tlr").unwrap_or(name);
    let stem = stem.strip_suffix(".tls").unwrap_or(stem);
    if let Some((pid, seq)) = stem.split_once('-') {
        if let (Ok(pid), Ok(seq)) = (pid.parse::<u64>(), seq.parse::<u64>()) {
            return (0, pid, seq, String::new());
        }
    }
    (1, 0, 0, name.to_owned())
}

impl Spool {
    /// Reads every `*.tlr` file and every claimed segment (`<pid>-<seq>.tls`) of `dir`
    /// (other files and subdirectories are ignored). A segment contributes its
    /// committed records; what dead writers left uncommitted is counted as skipped.
    ///
    /// Only failing to list the directory is an error; a file that cannot be read is
    /// reported in its [`FileStats::error`] and the others are still read.
    pub fn read_dir(dir: &Path) -> Result<Spool, SpoolError> {
        Self::read_dir_with(dir, true)
    }

    /// [`Spool::read_dir`] without the segments (their records were read as they were
    /// written, by a [`crate::segment::SegmentFollower`]).
    pub fn read_dir_files(dir: &Path) -> Result<Spool, SpoolError> {
        Self::read_dir_with(dir, false)
    }

    fn read_dir_with(dir: &Path, segments: bool) -> Result<Spool, SpoolError> {
        let listing = std::fs::read_dir(dir).map_err(|source| SpoolError::ReadDir {
            dir: dir.to_owned(),
            source,
        })?;
        let mut names = Vec::new();
        for entry in listing {
            let entry = entry.map_err(|source| SpoolError::ReadDir {
                dir: dir.to_owned(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let wanted =
                name.ends_with(".tlr") || (segments && crate::segment::is_segment_name(&name));
            if !wanted {
                continue;
            }
            if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                names.push(name);
            }
        }
        names.sort_by_key(|n| file_order(n));
        let mut spool = Spool::default();
        for name in names {
            match std::fs::read(dir.join(&name)) {
                Ok(bytes) if crate::segment::is_segment_name(&name) => {
                    spool.add_segment(&name, &bytes)
                }
                Ok(bytes) => spool.add_file(&name, &bytes),
                Err(e) => spool.files.push(FileStats {
                    name,
                    error: Some(e.to_string()),
                    ..FileStats::default()
                }),
            }
        }
        Ok(spool)
    }

    /// Reads in-memory files, in the order given (tests and fuzzing use this; so could
    /// a reader of shared segments).
    pub fn from_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Spool {
        let mut spool = Spool::default();
        for (name, bytes) in files {
            spool.add_file(name, bytes);
        }
        spool
    }

    /// Appends the committed records of one segment file's bytes.
    pub fn add_segment(&mut self, name: &str, bytes: &[u8]) {
        let contents = crate::segment::read_segment(bytes);
        self.add_file(name, &contents.frames);
        if let Some(stats) = self.files.last_mut() {
            let s = contents.stats;
            stats.skipped_stretches += s.holes + u64::from(s.garbage_bytes > 0) + s.corrupt;
            stats.skipped_bytes += s.hole_bytes + s.garbage_bytes;
            if !contents.valid {
                stats.error = Some("not a tapline segment".into());
            }
        }
    }

    /// Appends the records of one file.
    pub fn add_file(&mut self, name: &str, bytes: &[u8]) {
        let file = self.files.len();
        let mut stats = FileStats {
            name: name.to_owned(),
            ..FileStats::default()
        };
        let mut index = 0;
        for item in RecordIter::skipping_zeros(bytes) {
            match item {
                Item::Skipped { len, .. } => {
                    stats.skipped_stretches += 1;
                    stats.skipped_bytes += len as u64;
                }
                Item::Record { record, .. } => {
                    let h = record.header;
                    let meta = RecordMeta::new(&h, file, index);
                    index += 1;
                    match decode(h.rtype, record.payload) {
                        Some(record) => {
                            stats.records += 1;
                            self.entries.push(SpoolEntry { meta, record });
                        }
                        None => stats.undecodable += 1,
                    }
                }
            }
        }
        self.files.push(stats);
    }
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
        RecordType::H2Start
        | RecordType::H2Headers
        | RecordType::H2Data
        | RecordType::H2StreamEnd
        | RecordType::H2Reset
        | RecordType::H2GoAway
        | RecordType::H2Settings => SpoolRecord::H2(crate::http2::decode_record(rtype, p)?),
    })
}

/// A stored address as a socket address; `None` for family 0 (unknown) or one we do
/// not know.
fn socket_addr(a: &rec::WireAddr) -> Option<SocketAddr> {
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
    fn spool_file_names_sort_by_pid_then_seq() {
        let mut names = vec!["20-1.tlr", "3-10.tlr", "3-2.tlr", "junk.tlr", "100-0.tlr"];
        names.sort_by_key(|n| file_order(n));
        assert_eq!(
            names,
            vec!["3-2.tlr", "3-10.tlr", "20-1.tlr", "100-0.tlr", "junk.tlr"]
        );
    }

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
