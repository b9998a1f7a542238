//! The spool record format, shared by the writer (`libtapline.so`, in the traced
//! process) and the reader (`tapline`, the extension and CLI).
//!
//! `include/tapline.h` documents the same layout for C writers and readers; a test
//! (`tests/header_matches.rs`) fails when the two disagree.
//!
//! Why a hand-rolled, fixed layout: the writer runs inside hooked libc calls, where it may
//! not allocate and must not block. Every record is a 48-byte header followed by a
//! payload, padded to 8 bytes, so that it can be written with one `writev` (file spool)
//! or one reservation + `memcpy` (shared segments). The first word is the magic and is
//! written last in segment mode: it is the record's commit word, and a zero word means
//! "nothing committed here (yet)".
//!
//! The reader treats spool bytes as untrusted: [`RecordIter`] checks magic, version,
//! length and CRC, skips what is torn or corrupt, and resynchronises on the next magic.
//!
//! Versions, all one layout, differing in what the header's `crc32` covers:
//! - 3 ([`VERSION_SUM`], what the library writes into shared segments): CRC-32C over
//!   the header and the 64-bit sum of the payload's words ([`word_sum`]). In a segment
//!   a record is never torn by its writer (its magic is stored last), so the check's
//!   one job for the payload is to catch a reader's snapshot that met the record
//!   between two copies (a `pread` is not ordered with the writer's stores): bytes the
//!   writer had not stored yet read as the zeros the segment was filled with, and any
//!   one nonzero word among them changes the sum (several can cancel, see
//!   [`word_sum`]). The sum is a few vector adds where a
//!   CRC over the payload is one dependent step per 8 bytes.
//! - 2 ([`VERSION`], record files and any writer): CRC-32C over the header and the
//!   payload (see [`crc32c`]), for spools where a failed `write` can tear a record and
//!   leave arbitrary bytes behind it.
//! - 1 ([`VERSION_CRC32`]): the same as 2 with zlib's CRC-32; still read, so that a
//!   spool written by an older library reads as before.
#![no_std]
#![forbid(unsafe_code)]

use le::{le16, le32, le64};

/// `"TLR1"` read as a little-endian `u32`: the first four bytes of every record.
pub const MAGIC: u32 = u32::from_le_bytes(*b"TLR1");
/// Format version in every header (what this crate writes). A reader skips records of
/// versions it does not know.
pub const VERSION: u16 = 2;
/// The previous version: the same layout, its CRC zlib's CRC-32 instead of CRC-32C.
/// Still read (a spool written by an older library), never written.
pub const VERSION_CRC32: u16 = 1;
/// The segment version: the same layout, the CRC-32C taken over the header and the
/// payload's [`word_sum`] instead of the payload itself. Written only where a commit
/// word proves the record complete (shared segments), never into record files.
pub const VERSION_SUM: u16 = 3;
/// Size of the fixed header that starts every record.
pub const HEADER_LEN: usize = 48;
/// Every record's total length is a multiple of this.
pub const ALIGN: usize = 8;
/// Largest record a reader accepts; writers never produce more.
pub const MAX_RECORD_LEN: usize = 1 << 20;

/// What a record describes. Numbers are stable: a new type gets a new number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum RecordType {
    /// First record of every spool file: who is writing (ppid, command line).
    ProcStart = 1,
    /// A traced connection: fd, peer and local address, what the sniffer saw.
    ConnOpen = 2,
    /// Captured bytes of one HTTP message part (head or decoded body), or raw bytes.
    Data = 3,
    /// One HTTP message is complete (or was cut off): its sizes and first-byte time.
    MsgEnd = 4,
    /// The connection ended: why, and the bytes each way.
    ConnClose = 5,
    /// TLS facts from a TLS library hook: library, server name, ALPN.
    TlsInfo = 6,
    /// Records this process could not write since the last record that was written.
    Drops = 7,
    /// Lambda Runtime API lifecycle: the runtime fetched or answered an invocation.
    Lifecycle = 8,
    /// A name lookup (`getaddrinfo`) and the addresses it returned.
    NameLookup = 9,
    /// The connection carries HTTP/2 from here on: the `H2*` records below follow.
    H2Start = 10,
    /// One complete HTTP/2 header block (HEADERS or PUSH_PROMISE + CONTINUATIONs).
    H2Headers = 11,
    /// A prefix of one HTTP/2 stream's DATA payload.
    H2Data = 12,
    /// One HTTP/2 stream ended in one direction (END_STREAM, reset, or cut off).
    H2StreamEnd = 13,
    /// An HTTP/2 RST_STREAM frame.
    H2Reset = 14,
    /// An HTTP/2 GOAWAY frame.
    H2GoAway = 15,
    /// An HTTP/2 SETTINGS frame (not an ACK): the values a reader needs.
    H2Settings = 16,
    /// A blind spot said out loud: a program or object the library will not see into
    /// (a static or Go executable, a set-id one), named by path and pid.
    Notice = 17,
    /// A call that failed before any HTTP: a name lookup, a TCP connect (the stage
    /// says which), with the resolver's or the kernel's reason.
    Failure = 18,
    /// A message still in progress: its counts so far (the [`MsgEnd`] layout, not an
    /// end). Written while a body runs past the captured prefix, at most every 100 ms
    /// or 1 MiB, so a reader can tell how far a message got when the process is killed.
    MsgProgress = 19,
    /// A [`Data`] record and the [`MsgEnd`] that follows it, in one: the message's
    /// last captured bytes and its end, written by the same call (same header).
    /// Payload: the `Data` fixed part, the `MsgEnd`, then the captured bytes
    /// ([`DataEnd`]). Means exactly the two records, `Data` first.
    DataEnd = 20,
}

impl RecordType {
    pub fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            1 => Self::ProcStart,
            2 => Self::ConnOpen,
            3 => Self::Data,
            4 => Self::MsgEnd,
            5 => Self::ConnClose,
            6 => Self::TlsInfo,
            7 => Self::Drops,
            8 => Self::Lifecycle,
            9 => Self::NameLookup,
            10 => Self::H2Start,
            11 => Self::H2Headers,
            12 => Self::H2Data,
            13 => Self::H2StreamEnd,
            14 => Self::H2Reset,
            15 => Self::H2GoAway,
            16 => Self::H2Settings,
            17 => Self::Notice,
            18 => Self::Failure,
            19 => Self::MsgProgress,
            20 => Self::DataEnd,
            _ => return None,
        })
    }
}

/// `ConnOpen.flags` bits.
pub mod conn_flags {
    /// The connection goes to the Lambda Runtime API named by the traced process's own
    /// `AWS_LAMBDA_RUNTIME_API`: the runtime's lifecycle calls, not user traffic.
    pub const RUNTIME_API: u8 = 1;
    /// `connect` returned `EINPROGRESS` (a non-blocking connect): `connect_*` is when
    /// the connect started, and the connection was established at
    /// `established_wall_ns` (`SO_ERROR` answered 0) when not 0, else by this record's
    /// time (the first write). Without it, `connect_*` is when a blocking `connect`
    /// returned (its start is not known).
    pub const CONNECT_STARTED: u8 = 2;
}

/// `Failure.flags` bits (stage `Tls`).
pub mod failure_flags {
    /// `code` is a TLS alert description read from the wire (a plaintext alert record,
    /// content type 21, on a connection classified TLS); `reason` is empty.
    pub const TLS_ALERT: u8 = 1;
    /// With [`TLS_ALERT`]: the peer sent the alert (else the traced process did).
    pub const TLS_ALERT_FROM_PEER: u8 = 2;
    /// The handshake finished but the peer's certificate did not verify, and the
    /// program may have chosen to go on (`curl -k`, `--no-check-certificate`): a
    /// failure only for a connection that then carried no response.
    pub const TLS_VERIFY_ONLY: u8 = 4;
    /// With [`TLS_ALERT`]: an alert the traced process sent encrypted (TLS 1.3: a
    /// first encrypted record of alert size); which alert cannot be read.
    pub const TLS_ALERT_ENCRYPTED: u8 = 8;
}

/// `MsgEnd.flags` bits.
pub mod msg_flags {
    /// The head was longer than the head limit; only its prefix was captured.
    pub const HEAD_TRUNCATED: u16 = 1;
    /// The body was longer than `TAPLINE_MAX_BODY`; only its prefix was captured.
    pub const BODY_TRUNCATED: u16 = 2;
    /// `Transfer-Encoding: chunked`.
    pub const CHUNKED: u16 = 4;
    /// Body delimited by the connection closing (HTTP/1.0 style).
    pub const UNTIL_CLOSE: u16 = 8;
    /// The connection ended (or framing was lost) before the message was complete.
    pub const INCOMPLETE: u16 = 16;
    /// The message has no body by rule (HEAD response, 1xx, 204, 304, no length on a request).
    pub const NO_BODY: u16 = 32;
    /// The framer could not parse the message; the connection is no longer followed.
    pub const MALFORMED: u16 = 64;
}

/// `H2Headers.flags` bits.
pub mod h2_block_flags {
    /// The HEADERS frame carried END_STREAM: no DATA follows on this stream and direction.
    pub const END_STREAM: u16 = 1;
    /// The block was longer than the head limit: only its prefix was captured, and the
    /// connection's HPACK state is unknown from here on in this direction.
    pub const TRUNCATED: u16 = 2;
    /// A PUSH_PROMISE block: `promised_stream_id` is the pushed stream.
    pub const PUSH_PROMISE: u16 = 4;
    /// The connection ended before the block's END_HEADERS.
    pub const INCOMPLETE: u16 = 8;
}

/// `H2StreamEnd.flags` bits.
pub mod h2_stream_flags {
    /// A frame with END_STREAM ended the stream in this direction.
    pub const END_STREAM: u16 = 1;
    /// RST_STREAM (either direction) ended it; `error_code` says why.
    pub const RESET: u16 = 2;
    /// The connection ended (or framing was lost) first.
    pub const INCOMPLETE: u16 = 4;
    /// DATA was longer than `TAPLINE_MAX_BODY`: only its prefix was captured.
    pub const BODY_TRUNCATED: u16 = 8;
    /// The stream table was full when the stream started: no DATA was captured, and
    /// `data_len`/`wire_len`/times cover only the frame that ended it.
    pub const UNTRACKED: u16 = 16;
}

/// `H2Settings.flags` bits: which values the frame carried.
pub mod h2_settings_flags {
    pub const HEADER_TABLE_SIZE: u16 = 1;
    pub const MAX_FRAME_SIZE: u16 = 2;
}

/// Why a record could not be read at some offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer bytes than the header or the length announces: maybe still being written.
    Incomplete,
    /// The commit word is zero: nothing was committed at this offset (yet).
    Uncommitted,
    /// Not a record start (wrong magic), or a length that cannot be right.
    BadFrame,
    /// The CRC does not match: torn or corrupted.
    BadChecksum,
    /// A valid frame of a version this reader does not know.
    UnknownVersion,
}

/// When something happened, as records carry it: `CLOCK_REALTIME` and `CLOCK_MONOTONIC`
/// read together, in ns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    pub wall_ns: u64,
    pub mono_ns: u64,
}

impl Stamp {
    /// No time: the zero stamp (usable in `const` initialisers).
    pub const ZERO: Stamp = Stamp {
        wall_ns: 0,
        mono_ns: 0,
    };
}

/// The fixed header that starts every record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u16,
    pub rtype: u16,
    /// Total record length, header and padding included; a multiple of [`ALIGN`].
    pub length: u32,
    pub crc32: u32,
    /// `CLOCK_REALTIME` when the record was made, in ns since the Unix epoch.
    pub wall_ns: u64,
    /// `CLOCK_MONOTONIC` at the same moment (orders records across threads).
    pub mono_ns: u64,
    pub pid: u32,
    pub tid: u32,
    /// The connection this record belongs to; 0 for records about the process.
    pub conn_id: u64,
}

/// Rounds a payload length up so that header + payload is a multiple of [`ALIGN`].
pub const fn padded_len(payload_len: usize) -> usize {
    (HEADER_LEN + payload_len + ALIGN - 1) & !(ALIGN - 1)
}

const ZERO_PAD: [u8; ALIGN] = [0; ALIGN];

impl Header {
    /// A header for a payload of `payload_len` bytes (CRC filled in by [`Header::seal`]).
    pub fn new(rtype: RecordType, payload_len: usize, wall_ns: u64, mono_ns: u64) -> Self {
        Header {
            version: VERSION,
            rtype: rtype as u16,
            length: padded_len(payload_len) as u32,
            crc32: 0,
            wall_ns,
            mono_ns,
            pid: 0,
            tid: 0,
            conn_id: 0,
        }
    }

    /// Encodes the header with the given magic word (the real [`MAGIC`], or 0 while a
    /// segment writer has not committed yet).
    pub fn encode(&self, magic: u32) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&magic.to_le_bytes());
        b[4..6].copy_from_slice(&self.version.to_le_bytes());
        b[6..8].copy_from_slice(&self.rtype.to_le_bytes());
        b[8..12].copy_from_slice(&self.length.to_le_bytes());
        b[12..16].copy_from_slice(&self.crc32.to_le_bytes());
        b[16..24].copy_from_slice(&self.wall_ns.to_le_bytes());
        b[24..32].copy_from_slice(&self.mono_ns.to_le_bytes());
        b[32..36].copy_from_slice(&self.pid.to_le_bytes());
        b[36..40].copy_from_slice(&self.tid.to_le_bytes());
        b[40..48].copy_from_slice(&self.conn_id.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Header {
        Header {
            version: le16(b, 4),
            rtype: le16(b, 6),
            length: le32(b, 8),
            crc32: le32(b, 12),
            wall_ns: le64(b, 16),
            mono_ns: le64(b, 24),
            pid: le32(b, 32),
            tid: le32(b, 36),
            conn_id: le64(b, 40),
        }
    }

    /// The header bytes the CRC covers (4..12 and 16..48) as the five little-endian
    /// words they are: version, type and length; wall; mono; pid and tid; conn id. A
    /// writer feeds these to the CRC straight from the fields, without encoding.
    pub fn covered_words(&self) -> [u64; 5] {
        [
            u64::from(self.version) | u64::from(self.rtype) << 16 | u64::from(self.length) << 32,
            self.wall_ns,
            self.mono_ns,
            u64::from(self.pid) | u64::from(self.tid) << 32,
            self.conn_id,
        ]
    }

    /// Zero bytes that follow a payload of `payload_len` bytes in this record.
    pub fn pad_for(&self, payload_len: usize) -> usize {
        self.length as usize - HEADER_LEN - payload_len
    }

    /// Computes the check for this header's `version` — for [`VERSION`], the CRC-32C
    /// over the covered header bytes (4..12 and 16..48), the payload parts in order and
    /// the zero padding; for [`VERSION_SUM`], over the covered header bytes and the
    /// parts' [`word_sum`] — stores it and returns the sealed header bytes (with
    /// [`MAGIC`]) and the number of padding bytes to append.
    ///
    /// The payload parts must add up to the `payload_len` given to [`Header::new`].
    /// (The library computes the same values with the CPU's CRC-32C instruction where
    /// it has one, and stores them in `crc32` itself.)
    pub fn seal(&mut self, parts: &[&[u8]]) -> ([u8; HEADER_LEN], usize) {
        let payload_len: usize = parts.iter().map(|p| p.len()).sum();
        let pad = self.pad_for(payload_len);
        let mut c = crc32c::Crc32c::new();
        for w in self.covered_words() {
            c.word(w);
        }
        if self.version == VERSION_SUM {
            let mut sum = WordSum::new();
            for p in parts {
                sum.update(p);
            }
            c.word(sum.finish());
        } else {
            for p in parts {
                c.update(p);
            }
            c.zeros(pad);
        }
        self.crc32 = c.finalize();
        (self.encode(MAGIC), pad)
    }

    /// The zero bytes that pad a record's payload to [`ALIGN`].
    pub fn padding(pad: usize) -> &'static [u8] {
        &ZERO_PAD[..pad]
    }
}

/// One record read from a spool: its header and its payload (padding included; the
/// payload decoders read only what they need).
#[derive(Clone, Copy, Debug)]
pub struct RawRecord<'a> {
    pub header: Header,
    pub payload: &'a [u8],
}

/// Reads the record that starts at `buf[0]`.
///
/// Returns the record and its total length, or why none could be read there.
pub fn parse_record(buf: &[u8]) -> Result<(RawRecord<'_>, usize), ParseError> {
    if buf.len() < 4 {
        return Err(if buf.iter().all(|&b| b == 0) {
            ParseError::Uncommitted
        } else {
            ParseError::Incomplete
        });
    }
    let magic = le32(buf, 0);
    if magic == 0 {
        return Err(ParseError::Uncommitted);
    }
    if magic != MAGIC {
        return Err(ParseError::BadFrame);
    }
    if buf.len() < HEADER_LEN {
        return Err(ParseError::Incomplete);
    }
    let header = Header::decode(buf);
    let len = header.length as usize;
    if len < HEADER_LEN || len & (ALIGN - 1) != 0 || len > MAX_RECORD_LEN {
        return Err(ParseError::BadFrame);
    }
    if buf.len() < len {
        return Err(ParseError::Incomplete);
    }
    let crc = match header.version {
        VERSION_SUM => {
            let mut covered = [0u8; HEADER_LEN];
            covered[..8].copy_from_slice(&buf[4..12]);
            covered[8..40].copy_from_slice(&buf[16..HEADER_LEN]);
            covered[40..].copy_from_slice(&word_sum(&buf[HEADER_LEN..len]).to_le_bytes());
            crc32c_of(&covered, &[])
        }
        VERSION => crc32c_of(&buf[4..12], &buf[16..len]),
        VERSION_CRC32 => {
            let mut h = crc32fast::Hasher::new();
            h.update(&buf[4..12]);
            h.update(&buf[16..len]);
            h.finalize()
        }
        _ => return Err(ParseError::UnknownVersion),
    };
    if crc != header.crc32 {
        return Err(ParseError::BadChecksum);
    }
    Ok((
        RawRecord {
            header,
            payload: &buf[HEADER_LEN..len],
        },
        len,
    ))
}

/// The 64-bit sum (wrapping) of `bytes` read as little-endian words, a last partial
/// word zero-extended: what a [`VERSION_SUM`] record's check covers of its payload
/// (payload and padding, a whole number of words). Bytes of a record a reader's
/// snapshot caught before its writer stored them read as zeros; any such word that
/// is not zero changes the sum (unless the missing words sum to a multiple of
/// 2^64 — impossible for one or two words of text, whose bytes are below 0x80).
pub fn word_sum(bytes: &[u8]) -> u64 {
    let mut s = WordSum::new();
    s.update(bytes);
    s.finish()
}

/// [`word_sum`] fed in pieces that need not end on word boundaries: the bytes are
/// summed as one stream, by their position in it.
#[derive(Clone, Copy, Debug, Default)]
pub struct WordSum {
    sum: u64,
    /// Bytes of the current partial word (its low `have` bytes).
    carry: u64,
    have: u32,
}

impl WordSum {
    pub const fn new() -> Self {
        WordSum {
            sum: 0,
            carry: 0,
            have: 0,
        }
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        while self.have != 0 {
            let Some((&b, rest)) = bytes.split_first() else {
                return;
            };
            self.carry |= u64::from(b) << (8 * self.have);
            self.have += 1;
            bytes = rest;
            if self.have == 8 {
                self.sum = self.sum.wrapping_add(self.carry);
                self.carry = 0;
                self.have = 0;
            }
        }
        // Four lanes of independent adds (the compiler keeps them in vector registers).
        let mut blocks = bytes.chunks_exact(32);
        let (mut a, mut b, mut c, mut d) = (0u64, 0u64, 0u64, 0u64);
        for blk in &mut blocks {
            a = a.wrapping_add(le64(blk, 0));
            b = b.wrapping_add(le64(blk, 8));
            c = c.wrapping_add(le64(blk, 16));
            d = d.wrapping_add(le64(blk, 24));
        }
        let mut sum = self
            .sum
            .wrapping_add(a.wrapping_add(b))
            .wrapping_add(c.wrapping_add(d));
        let mut words = blocks.remainder().chunks_exact(8);
        for w in &mut words {
            sum = sum.wrapping_add(le64(w, 0));
        }
        self.sum = sum;
        for &byte in words.remainder() {
            self.carry |= u64::from(byte) << (8 * self.have);
            self.have += 1;
        }
    }

    /// The sum, a partial last word zero-extended.
    pub fn finish(self) -> u64 {
        self.sum.wrapping_add(self.carry)
    }
}

/// The CRC-32C of `a` then `b`: with the CPU's instruction where the `std` feature
/// lets the `crc32c` crate detect it, else with the portable tables.
fn crc32c_of(a: &[u8], b: &[u8]) -> u32 {
    #[cfg(feature = "std")]
    {
        ::crc32c::crc32c_append(::crc32c::crc32c(a), b)
    }
    #[cfg(not(feature = "std"))]
    {
        let mut c = crc32c::Crc32c::new();
        c.update(a);
        c.update(b);
        c.finalize()
    }
}

/// What [`RecordIter`] met while walking a buffer.
#[derive(Clone, Copy, Debug)]
pub enum Item<'a> {
    Record {
        offset: usize,
        record: RawRecord<'a>,
    },
    /// `len` bytes at `offset` were not a readable record and were skipped.
    Skipped { offset: usize, len: usize },
}

/// Walks a buffer of concatenated records, skipping torn or corrupt stretches.
///
/// At a zero commit word it stops (see [`RecordIter::stopped_at`]) unless constructed
/// with `skip_zeros`, because in a shared segment that is where committed data ends. A
/// trailing record that is only partly there stops the walk too: the writer may still be
/// appending it.
pub struct RecordIter<'a> {
    buf: &'a [u8],
    pos: usize,
    skip_zeros: bool,
    stop: Option<(usize, ParseError)>,
}

impl<'a> RecordIter<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        RecordIter {
            buf,
            pos: 0,
            skip_zeros: false,
            stop: None,
        }
    }

    /// A walker that treats zero words as garbage to skip (a plain spool file, read
    /// after every writer is gone).
    pub fn skipping_zeros(buf: &'a [u8]) -> Self {
        RecordIter {
            skip_zeros: true,
            ..Self::new(buf)
        }
    }

    /// Where the walk stopped and why, once it returned `None` before the end.
    pub fn stopped_at(&self) -> Option<(usize, ParseError)> {
        self.stop
    }

    /// The offset of the next byte not yet consumed.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Offset of the next candidate record start after `from`: the next magic, or the
    /// end of the buffer.
    fn resync(&self, from: usize) -> usize {
        let magic = MAGIC.to_le_bytes();
        let mut i = from;
        while i + 4 <= self.buf.len() {
            if self.buf[i] == magic[0] && self.buf[i + 1..i + 4] == magic[1..] {
                return i;
            }
            i += 1;
        }
        self.buf.len()
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        if self.stop.is_some() || self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        match parse_record(&self.buf[start..]) {
            Ok((record, len)) => {
                self.pos = start + len;
                Some(Item::Record {
                    offset: start,
                    record,
                })
            }
            Err(ParseError::Uncommitted) if !self.skip_zeros => {
                self.stop = Some((start, ParseError::Uncommitted));
                None
            }
            Err(ParseError::Incomplete) if !self.skip_zeros => {
                self.stop = Some((start, ParseError::Incomplete));
                None
            }
            Err(_) => {
                let next = self.resync(start + 1);
                self.pos = next;
                Some(Item::Skipped {
                    offset: start,
                    len: next - start,
                })
            }
        }
    }
}

pub mod crc32c;
mod enums;
pub mod h2;
mod le;
pub mod payload;
pub mod program;
pub mod segment;
pub mod settings;
pub use enums::*;
pub use h2::*;
pub use payload::*;

#[cfg(test)]
mod tests;
