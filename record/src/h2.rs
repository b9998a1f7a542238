//! HTTP/2 payloads: what the library's HTTP/2 framer writes for a connection that
//! carries HTTP/2 (`include/tapline.h` documents the same layouts for C).
//!
//! Why these records and not raw frames: the reader needs header blocks whole and in
//! wire order (HPACK is stateful per direction), and body prefixes per stream; it does
//! not need PING, PRIORITY or WINDOW_UPDATE. So the writer strips padding and priority
//! fields, joins CONTINUATIONs to their HEADERS or PUSH_PROMISE, numbers header blocks
//! per direction (a gap means a block was lost, and with it the HPACK state), copies
//! DATA up to `TAPLINE_MAX_BODY` per stream and counts the rest.
//!
//! All integers little-endian; `dir` is a [`Direction`](crate::Direction).

use crate::{le16, le32, le64, Direction};

/// `H2Start`: 8 bytes. Written once per connection before any other `H2*` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H2Start {
    /// One of [`h2_start`](crate::h2_start).
    pub how: u8,
    pub flags: u8,
    /// For an h2c upgrade: the HTTP/1 request (`msg_seq`) that stream 1 answers.
    pub upgrade_msg_seq: u32,
}

impl H2Start {
    pub const LEN: usize = 8;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.how;
        b[1] = self.flags;
        b[4..8].copy_from_slice(&self.upgrade_msg_seq.to_le_bytes());
        b
    }
    pub fn decode(p: &[u8]) -> Option<Self> {
        if p.len() < Self::LEN {
            return None;
        }
        Some(H2Start {
            how: p[0],
            flags: p[1],
            upgrade_msg_seq: le32(p, 4),
        })
    }
}

/// `H2Headers`: fixed 24 bytes, then `len` bytes of the header block fragment(s),
/// joined, padding and priority fields removed. The record header's time is when the
/// block's last frame (END_HEADERS) was read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H2Headers {
    pub dir: u8,
    /// [`h2_block_flags`](crate::h2_block_flags).
    pub flags: u16,
    pub stream_id: u32,
    /// PUSH_PROMISE: the promised stream; 0 otherwise.
    pub promised_stream_id: u32,
    /// Header blocks in this direction on this connection before this one: 0, 1, 2, ...
    pub block_seq: u32,
    /// Bytes of the block that follow.
    pub len: u32,
    /// Length of the whole block (more than `len` when truncated).
    pub block_len: u32,
}

impl H2Headers {
    pub const LEN: usize = 24;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.dir;
        b[2..4].copy_from_slice(&self.flags.to_le_bytes());
        b[4..8].copy_from_slice(&self.stream_id.to_le_bytes());
        b[8..12].copy_from_slice(&self.promised_stream_id.to_le_bytes());
        b[12..16].copy_from_slice(&self.block_seq.to_le_bytes());
        b[16..20].copy_from_slice(&self.len.to_le_bytes());
        b[20..24].copy_from_slice(&self.block_len.to_le_bytes());
        b
    }
    /// Returns the fixed part and the block bytes.
    pub fn decode(p: &[u8]) -> Option<(Self, &[u8])> {
        if p.len() < Self::LEN {
            return None;
        }
        let h = H2Headers {
            dir: p[0],
            flags: le16(p, 2),
            stream_id: le32(p, 4),
            promised_stream_id: le32(p, 8),
            block_seq: le32(p, 12),
            len: le32(p, 16),
            block_len: le32(p, 20),
        };
        let bytes = p.get(Self::LEN..Self::LEN + h.len as usize)?;
        Some((h, bytes))
    }
    pub fn direction(&self) -> Option<Direction> {
        Direction::from_u8(self.dir)
    }
}

/// `H2Data`: fixed 24 bytes, then `len` bytes of one stream's DATA payload (padding
/// removed) at `offset` within the stream's data in this direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H2Data {
    pub dir: u8,
    pub flags: u16,
    pub stream_id: u32,
    pub offset: u64,
    pub len: u32,
}

impl H2Data {
    pub const LEN: usize = 24;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.dir;
        b[2..4].copy_from_slice(&self.flags.to_le_bytes());
        b[4..8].copy_from_slice(&self.stream_id.to_le_bytes());
        b[8..16].copy_from_slice(&self.offset.to_le_bytes());
        b[16..20].copy_from_slice(&self.len.to_le_bytes());
        b
    }
    /// Returns the fixed part and the data bytes.
    pub fn decode(p: &[u8]) -> Option<(Self, &[u8])> {
        if p.len() < Self::LEN {
            return None;
        }
        let d = H2Data {
            dir: p[0],
            flags: le16(p, 2),
            stream_id: le32(p, 4),
            offset: le64(p, 8),
            len: le32(p, 16),
        };
        let bytes = p.get(Self::LEN..Self::LEN + d.len as usize)?;
        Some((d, bytes))
    }
    pub fn direction(&self) -> Option<Direction> {
        Direction::from_u8(self.dir)
    }
}

/// `H2StreamEnd`: 64 bytes. One per stream and direction that the framer followed (from
/// its first HEADERS in that direction), and one for each END_STREAM of a stream that
/// found the stream table full (flag `UNTRACKED`). The record header's time is when the
/// end was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H2StreamEnd {
    pub dir: u8,
    /// [`h2_stream_flags`](crate::h2_stream_flags).
    pub flags: u16,
    pub stream_id: u32,
    /// DATA payload bytes (padding excluded), captured or not.
    pub data_len: u64,
    /// All frame bytes of this stream in this direction, 9-byte frame headers included.
    pub wire_len: u64,
    /// When the stream's first and last frame in this direction were read or written.
    pub first_wall_ns: u64,
    pub first_mono_ns: u64,
    pub last_wall_ns: u64,
    pub last_mono_ns: u64,
    /// RST_STREAM's error code when `flags` has RESET.
    pub error_code: u32,
}

impl H2StreamEnd {
    pub const LEN: usize = 64;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.dir;
        b[2..4].copy_from_slice(&self.flags.to_le_bytes());
        b[4..8].copy_from_slice(&self.stream_id.to_le_bytes());
        b[8..16].copy_from_slice(&self.data_len.to_le_bytes());
        b[16..24].copy_from_slice(&self.wire_len.to_le_bytes());
        b[24..32].copy_from_slice(&self.first_wall_ns.to_le_bytes());
        b[32..40].copy_from_slice(&self.first_mono_ns.to_le_bytes());
        b[40..48].copy_from_slice(&self.last_wall_ns.to_le_bytes());
        b[48..56].copy_from_slice(&self.last_mono_ns.to_le_bytes());
        b[56..60].copy_from_slice(&self.error_code.to_le_bytes());
        b
    }
    pub fn decode(p: &[u8]) -> Option<Self> {
        if p.len() < Self::LEN {
            return None;
        }
        Some(H2StreamEnd {
            dir: p[0],
            flags: le16(p, 2),
            stream_id: le32(p, 4),
            data_len: le64(p, 8),
            wire_len: le64(p, 16),
            first_wall_ns: le64(p, 24),
            first_mono_ns: le64(p, 32),
            last_wall_ns: le64(p, 40),
            last_mono_ns: le64(p, 48),
            error_code: le32(p, 56),
        })
    }
    pub fn direction(&self) -> Option<Direction> {
        Direction::from_u8(self.dir)
    }
}

/// `H2Reset`: 16 bytes. `dir` is the direction of the RST_STREAM frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H2Reset {
    pub dir: u8,
    pub stream_id: u32,
    pub error_code: u32,
}

impl H2Reset {
    pub const LEN: usize = 16;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.dir;
        b[4..8].copy_from_slice(&self.stream_id.to_le_bytes());
        b[8..12].copy_from_slice(&self.error_code.to_le_bytes());
        b
    }
    pub fn decode(p: &[u8]) -> Option<Self> {
        if p.len() < Self::LEN {
            return None;
        }
        Some(H2Reset {
            dir: p[0],
            stream_id: le32(p, 4),
            error_code: le32(p, 8),
        })
    }
}

/// `H2GoAway`: 16 bytes. `dir` is the direction of the GOAWAY frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H2GoAway {
    pub dir: u8,
    pub last_stream_id: u32,
    pub error_code: u32,
}

impl H2GoAway {
    pub const LEN: usize = 16;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.dir;
        b[4..8].copy_from_slice(&self.last_stream_id.to_le_bytes());
        b[8..12].copy_from_slice(&self.error_code.to_le_bytes());
        b
    }
    pub fn decode(p: &[u8]) -> Option<Self> {
        if p.len() < Self::LEN {
            return None;
        }
        Some(H2GoAway {
            dir: p[0],
            last_stream_id: le32(p, 4),
            error_code: le32(p, 8),
        })
    }
}

/// `H2Settings`: 16 bytes. The sender's SETTINGS values a reader needs; `flags` says
/// which the frame carried (the last value wins when one repeats).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H2Settings {
    pub dir: u8,
    /// [`h2_settings_flags`](crate::h2_settings_flags).
    pub flags: u16,
    pub header_table_size: u32,
    pub max_frame_size: u32,
}

impl H2Settings {
    pub const LEN: usize = 16;
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.dir;
        b[2..4].copy_from_slice(&self.flags.to_le_bytes());
        b[4..8].copy_from_slice(&self.header_table_size.to_le_bytes());
        b[8..12].copy_from_slice(&self.max_frame_size.to_le_bytes());
        b
    }
    pub fn decode(p: &[u8]) -> Option<Self> {
        if p.len() < Self::LEN {
            return None;
        }
        Some(H2Settings {
            dir: p[0],
            flags: le16(p, 2),
            header_table_size: le32(p, 4),
            max_frame_size: le32(p, 8),
        })
    }
}
