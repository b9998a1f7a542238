//! `tapline show --records DIR`: the spool's records as JSON lines, for reading what
//! the library wrote (when a test fails, when a program misbehaves under tapline).
//!
//! Why here and not in the reports: this is the reading edge's own view, before any
//! reassembly or masking — every framed record of every file, in reading order, every
//! field of its header and payload as `include/tapline.h` defines it. It is the only
//! output that can show a secret unmasked, so it is never part of a report or export;
//! it reads a spool the user already has.
//!
//! One object a line: `file`, `index` (position in the file), `type` (`proc_start`,
//! `conn_open`, `data`, `msg_end`, `data_end`, `conn_close`, `tls_info`, `drops`, `lifecycle`,
//! `name_lookup`, `h2_start`, `h2_headers`, `h2_data`, `h2_stream_end`, `h2_reset`,
//! `h2_goaway`, `h2_settings`, `notice`, `failure`, or the number of a type this reader does not know), the header fields
//! (`version`, `rtype`, `length`, `crc32`, `wall_ns`, `mono_ns`, `pid`, `tid`,
//! `conn_id`), then the payload's fields. Enum-like bytes are names when known, else
//! numbers; byte strings are text when they are UTF-8, else base64 with a
//! `<name>_encoding: "base64"` field beside them. A `data_end` has a `data`'s fields
//! and, under `end`, its `msg_end`'s. A payload that does not decode for
//! its type is `payload` (bytes) with `"undecodable": true`.

use std::io::{self, Write};
use std::path::Path;

use base64::Engine;
use serde_json::{Map, Value};
use tapline_record as rec;
use tapline_record::{
    CloseReason, Direction, FailureStage, H2StartHow, Header, Item, LifecycleEvent, NoticeKind,
    Part, Protocol, RecordIter, RecordType, TlsLibrary,
};

use super::{file_names, segment, SpoolError};

/// Why the records could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordsError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("cannot write the records: {0}")]
    Write(#[from] io::Error),
}

/// Writes every record of every record file and segment of `dir`, one JSON object a
/// line, in the order the batch reader reads them.
pub(crate) fn write_dir(dir: &Path, out: &mut dyn Write) -> Result<(), RecordsError> {
    for name in file_names(dir, true)? {
        let Ok(bytes) = std::fs::read(dir.join(&name)) else {
            continue;
        };
        let frames = if segment::is_segment_name(&name) || segment::is_free_name(&name) {
            segment::read_segment(&bytes).frames
        } else {
            bytes
        };
        let mut index = 0;
        for item in RecordIter::skipping_zeros(&frames) {
            if let Item::Record { record, .. } = item {
                let line = to_json(&name, index, &record.header, record.payload);
                serde_json::to_writer(&mut *out, &line).map_err(io::Error::from)?;
                out.write_all(b"\n")?;
                index += 1;
            }
        }
    }
    Ok(())
}

/// One record as a JSON object.
pub(crate) fn to_json(file: &str, index: usize, h: &Header, payload: &[u8]) -> Value {
    let mut o = Map::new();
    o.insert("file".into(), file.into());
    o.insert("index".into(), index.into());
    let kind = RecordType::from_u16(h.rtype);
    o.insert(
        "type".into(),
        kind.map_or_else(|| h.rtype.into(), |t| type_name(t).into()),
    );
    for (k, v) in [
        ("version", u64::from(h.version)),
        ("rtype", u64::from(h.rtype)),
        ("length", u64::from(h.length)),
        ("crc32", u64::from(h.crc32)),
        ("wall_ns", h.wall_ns),
        ("mono_ns", h.mono_ns),
        ("pid", u64::from(h.pid)),
        ("tid", u64::from(h.tid)),
        ("conn_id", h.conn_id),
    ] {
        o.insert(k.into(), v.into());
    }
    let decoded = kind.and_then(|t| payload_fields(t, payload, &mut o));
    if decoded.is_none() {
        o.insert("undecodable".into(), true.into());
        bytes_field(&mut o, "payload", payload);
    }
    Value::Object(o)
}

fn type_name(t: RecordType) -> &'static str {
    match t {
        RecordType::ProcStart => "proc_start",
        RecordType::ConnOpen => "conn_open",
        RecordType::Data => "data",
        RecordType::MsgEnd => "msg_end",
        RecordType::MsgProgress => "msg_progress",
        RecordType::DataEnd => "data_end",
        RecordType::ConnClose => "conn_close",
        RecordType::TlsInfo => "tls_info",
        RecordType::Drops => "drops",
        RecordType::Lifecycle => "lifecycle",
        RecordType::NameLookup => "name_lookup",
        RecordType::H2Start => "h2_start",
        RecordType::H2Headers => "h2_headers",
        RecordType::H2Data => "h2_data",
        RecordType::H2StreamEnd => "h2_stream_end",
        RecordType::H2Reset => "h2_reset",
        RecordType::H2GoAway => "h2_goaway",
        RecordType::H2Settings => "h2_settings",
        RecordType::Notice => "notice",
        RecordType::Failure => "failure",
    }
}

/// `name`: text when UTF-8, else base64 and `name_encoding`.
fn bytes_field(o: &mut Map<String, Value>, name: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            o.insert(name.into(), text.into());
        }
        Err(_) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            o.insert(name.into(), b64.into());
            o.insert(format!("{name}_encoding"), "base64".into());
        }
    }
}

/// A name for a known value, else the byte as a number.
fn named<E: Copy + Into<u8>>(v: E, name: Option<&'static str>) -> Value {
    name.map_or_else(|| v.into().into(), Value::from)
}

/// `fn $f(v: $Enum) -> Value`: the name of each known variant, else the byte.
macro_rules! wire_names {
    ($f:ident, $enum:ident { $($variant:ident => $name:literal),* $(,)? }) => {
        fn $f(v: $enum) -> Value {
            let name = match v {
                $($enum::$variant => Some($name),)*
                $enum::Unknown(_) => None,
            };
            named(v, name)
        }
    };
}

wire_names!(protocol, Protocol {
    Http1 => "http1",
    Tls => "tls",
    H2c => "h2c",
    TlsPlaintext => "tls-plaintext",
});
wire_names!(direction, Direction { Egress => "egress", Ingress => "ingress" });
wire_names!(part, Part { Head => "head", Body => "body", Raw => "raw" });
wire_names!(close_reason, CloseReason {
    Closed => "closed",
    PeerEof => "peer_eof",
    Error => "error",
    Untracked => "untracked",
    Upgraded => "upgraded",
    AtExit => "at_exit",
});
wire_names!(tls_library, TlsLibrary { OpenSsl => "openssl", GnuTls => "gnutls", Jsse => "jsse" });
wire_names!(lifecycle_event, LifecycleEvent {
    InvocationNext => "invocation_next",
    InvocationResponse => "invocation_response",
    InvocationError => "invocation_error",
});
wire_names!(notice_kind, NoticeKind {
    StaticExecutable => "static_executable",
    GoProgram => "go_program",
    SetId => "set_id",
    ObjectUntouched => "object_untouched",
    JavaClassUntouched => "java_class_untouched",
});
wire_names!(failure_stage, FailureStage {
    Dns => "dns",
    Connect => "connect",
    Tls => "tls",
});
wire_names!(h2_start_how, H2StartHow {
    PriorKnowledge => "prior_knowledge",
    Tls => "tls",
    H2cUpgrade => "h2c_upgrade",
});

/// A stored address: family, port and the address as text (`null` for family 0 or
/// one this reader does not know).
fn address(a: &rec::WireAddr) -> Value {
    let ip = super::record::socket_addr(a).map(|s| s.ip().to_string());
    serde_json::json!({ "family": a.family, "port": a.port, "addr": ip })
}

/// The fields of a `MsgEnd` (or `MsgProgress`) payload.
fn msg_end_fields(m: &rec::MsgEnd, o: &mut Map<String, Value>) {
    for (k, v) in [
        ("dir", direction(m.dir)),
        ("flags", m.flags.into()),
        ("msg_seq", m.msg_seq.into()),
        ("head_len", m.head_len.into()),
        ("body_len", m.body_len.into()),
        ("wire_len", m.wire_len.into()),
        ("start_wall_ns", m.start_wall_ns.into()),
        ("start_mono_ns", m.start_mono_ns.into()),
        ("status", m.status.into()),
    ] {
        o.insert(k.into(), v);
    }
}

/// The fields of a `Data` payload (or a `DataEnd`'s data half) and its bytes.
fn data_fields(d: &rec::Data, bytes: &[u8], o: &mut Map<String, Value>) {
    for (k, v) in [
        ("dir", direction(d.dir)),
        ("part", part(d.part)),
        ("flags", d.flags.into()),
        ("msg_seq", d.msg_seq.into()),
        ("offset", d.offset.into()),
        ("len", d.len.into()),
    ] {
        o.insert(k.into(), v);
    }
    bytes_field(o, "bytes", bytes);
}

/// Adds the fields of a payload of type `t`; `None` when it does not decode.
fn payload_fields(t: RecordType, p: &[u8], o: &mut Map<String, Value>) -> Option<()> {
    let mut put = |k: &str, v: Value| {
        o.insert(k.into(), v);
    };
    match t {
        RecordType::ProcStart => {
            let (s, cmdline) = rec::ProcStart::decode(p)?;
            put("ppid", s.ppid.into());
            put("cmdline_len", s.cmdline_len.into());
            put("file_seq", s.file_seq.into());
            put("flags", s.flags.into());
            let argv: Vec<Value> = cmdline
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned().into())
                .collect();
            put("argv", argv.into());
        }
        RecordType::ConnOpen => {
            let c = rec::ConnOpen::decode(p)?;
            put("fd", c.fd.into());
            put("protocol", protocol(c.protocol));
            put("flags", c.flags.into());
            put("connect_wall_ns", c.connect_wall_ns.into());
            put("connect_mono_ns", c.connect_mono_ns.into());
            put("peer", address(&c.peer));
            put("local", address(&c.local));
            put("established_wall_ns", c.established_wall_ns.into());
        }
        RecordType::Data => {
            let (d, bytes) = rec::Data::decode(p)?;
            data_fields(&d, bytes, o);
        }
        RecordType::MsgEnd | RecordType::MsgProgress => {
            msg_end_fields(&rec::MsgEnd::decode(p)?, o);
        }
        RecordType::DataEnd => {
            let (d, bytes, m) = rec::DataEnd::decode(p)?;
            data_fields(&d, bytes, o);
            let mut end = Map::new();
            msg_end_fields(&m, &mut end);
            o.insert("end".into(), end.into());
        }
        RecordType::ConnClose => {
            let c = rec::ConnClose::decode(p)?;
            put("reason", close_reason(c.reason));
            put("protocol", protocol(c.protocol));
            put("errno", c.errno.into());
            put("bytes_out", c.bytes_out.into());
            put("bytes_in", c.bytes_in.into());
            put("first_out_wall_ns", c.first_out_wall_ns.into());
            put("last_in_wall_ns", c.last_in_wall_ns.into());
        }
        RecordType::TlsInfo => {
            let (t, sni, alpn) = rec::TlsInfo::decode(p)?;
            put("library", tls_library(t.library));
            put("flags", t.flags.into());
            put("fd", t.fd.into());
            put("socket_conn_id", t.socket_conn_id.into());
            bytes_field(o, "sni", sni);
            bytes_field(o, "alpn", alpn);
        }
        RecordType::Drops => {
            let d = rec::Drops::decode(p)?;
            put("records", d.records.into());
            put("bytes", d.bytes.into());
        }
        RecordType::Lifecycle => {
            let (l, id) = rec::Lifecycle::decode(p)?;
            put("event", lifecycle_event(l.event));
            bytes_field(o, "request_id", id);
        }
        RecordType::NameLookup => {
            let (_, name, table) = rec::NameLookup::decode(p)?;
            let addrs: Vec<Value> = table
                .chunks_exact(rec::NameLookup::ADDR_LEN)
                .filter_map(rec::NameLookup::decode_addr)
                .map(|a| address(&a))
                .collect();
            bytes_field(o, "name", name);
            o.insert("addrs".into(), addrs.into());
        }
        RecordType::Failure => {
            let (f, name, reason) = rec::Failure::decode(p)?;
            put("stage", failure_stage(f.stage));
            put("flags", f.flags.into());
            put("code", f.code.into());
            put("peer", address(&f.peer));
            bytes_field(o, "name", name);
            bytes_field(o, "reason", reason);
        }
        RecordType::Notice => {
            let (n, path) = rec::Notice::decode(p)?;
            put("kind", notice_kind(n.kind));
            put("flags", n.flags.into());
            put("path_len", n.path_len.into());
            put("notice_pid", n.pid.into());
            bytes_field(o, "program", path);
        }
        _ => return h2_fields(t, p, o),
    }
    Some(())
}

/// Adds the fields of an HTTP/2 payload of type `t`; `None` when it does not decode
/// (or `t` is not an HTTP/2 type).
fn h2_fields(t: RecordType, p: &[u8], o: &mut Map<String, Value>) -> Option<()> {
    let mut put = |k: &str, v: Value| {
        o.insert(k.into(), v);
    };
    match t {
        RecordType::H2Start => {
            let s = rec::H2Start::decode(p)?;
            put("how", h2_start_how(s.how));
            put("flags", s.flags.into());
            put("upgrade_msg_seq", s.upgrade_msg_seq.into());
        }
        RecordType::H2Headers => {
            let (h, block) = rec::H2Headers::decode(p)?;
            put("dir", direction(h.dir));
            put("flags", h.flags.into());
            put("stream_id", h.stream_id.into());
            put("promised_stream_id", h.promised_stream_id.into());
            put("block_seq", h.block_seq.into());
            put("len", h.len.into());
            put("block_len", h.block_len.into());
            bytes_field(o, "block", block);
        }
        RecordType::H2Data => {
            let (d, bytes) = rec::H2Data::decode(p)?;
            put("dir", direction(d.dir));
            put("flags", d.flags.into());
            put("stream_id", d.stream_id.into());
            put("offset", d.offset.into());
            put("len", d.len.into());
            bytes_field(o, "bytes", bytes);
        }
        RecordType::H2StreamEnd => {
            let e = rec::H2StreamEnd::decode(p)?;
            put("dir", direction(e.dir));
            put("flags", e.flags.into());
            put("stream_id", e.stream_id.into());
            put("data_len", e.data_len.into());
            put("wire_len", e.wire_len.into());
            put("first_wall_ns", e.first_wall_ns.into());
            put("first_mono_ns", e.first_mono_ns.into());
            put("last_wall_ns", e.last_wall_ns.into());
            put("last_mono_ns", e.last_mono_ns.into());
            put("error_code", e.error_code.into());
        }
        RecordType::H2Reset => {
            let r = rec::H2Reset::decode(p)?;
            put("dir", direction(r.dir));
            put("stream_id", r.stream_id.into());
            put("error_code", r.error_code.into());
        }
        RecordType::H2GoAway => {
            let g = rec::H2GoAway::decode(p)?;
            put("dir", direction(g.dir));
            put("last_stream_id", g.last_stream_id.into());
            put("error_code", g.error_code.into());
        }
        RecordType::H2Settings => {
            let s = rec::H2Settings::decode(p)?;
            put("dir", direction(s.dir));
            put("flags", s.flags.into());
            put("header_table_size", s.header_table_size.into());
            put("max_frame_size", s.max_frame_size.into());
        }
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(t: RecordType, conn_id: u64, payload: &[u8]) -> (Header, Vec<u8>) {
        let mut h = Header::new(t, payload.len(), 7, 9);
        h.pid = 42;
        h.tid = 43;
        h.conn_id = conn_id;
        let _ = h.seal(&[payload]);
        (h, payload.to_vec())
    }

    #[test]
    fn data_end_shows_its_data_and_under_end_its_msg_end() {
        let d = rec::Data {
            dir: Direction::Egress,
            part: Part::Head,
            flags: 0,
            msg_seq: 3,
            offset: 0,
            len: 4,
        };
        let m = rec::MsgEnd {
            dir: Direction::Egress,
            flags: rec::msg_flags::NO_BODY,
            msg_seq: 3,
            head_len: 4,
            body_len: 0,
            wire_len: 4,
            start_wall_ns: 1,
            start_mono_ns: 2,
            status: 0,
        };
        let p = [&d.encode()[..], &m.encode(), b"GET "].concat();
        let (h, p) = framed(RecordType::DataEnd, 5, &p);
        let v = to_json("1-0.tls", 0, &h, &p);
        assert_eq!(v["type"], "data_end");
        assert_eq!(
            (v["part"].clone(), v["bytes"].clone()),
            ("head".into(), "GET ".into())
        );
        assert_eq!(v["end"]["msg_seq"], 3);
        assert_eq!(v["end"]["flags"], rec::msg_flags::NO_BODY);
        assert_eq!(v["end"]["wire_len"], 4);
        assert!(v.get("undecodable").is_none(), "{v}");
    }

    #[test]
    fn notice_shows_kind_program_and_pid() {
        let fixed = rec::Notice {
            kind: NoticeKind::SetId,
            flags: 0,
            path_len: 12,
            pid: 77,
        };
        let mut p = fixed.encode().to_vec();
        p.extend_from_slice(b"/usr/bin/su\xff");
        let (h, p) = framed(RecordType::Notice, 0, &p);
        let v = to_json("1-0.tls", 0, &h, &p);
        assert_eq!(v["type"], "notice");
        assert_eq!(v["kind"], "set_id");
        assert_eq!(v["notice_pid"], 77);
        assert_eq!(v["pid"], 42);
        assert_eq!(v["program_encoding"], "base64");
        let mut p = fixed.encode().to_vec();
        p[0] = 50;
        p.extend_from_slice(b"/usr/bin/sux");
        let (h, p) = framed(RecordType::Notice, 0, &p);
        let v = to_json("1-0.tls", 1, &h, &p);
        assert_eq!(v["kind"], 50);
        assert_eq!(v["program"], "/usr/bin/sux");
    }

    #[test]
    fn data_bytes_are_text_when_utf8_else_base64() {
        let d = rec::Data {
            dir: Direction::Ingress,
            part: Part::Body,
            flags: 0,
            msg_seq: 3,
            offset: 5,
            len: 2,
        };
        let mut p = d.encode().to_vec();
        p.extend_from_slice(b"hi");
        let (h, p) = framed(RecordType::Data, 11, &p);
        let v = to_json("1-0.tlr", 4, &h, &p);
        assert_eq!(v["type"], "data");
        assert_eq!(v["index"], 4);
        assert_eq!(v["conn_id"], 11);
        assert_eq!(v["pid"], 42);
        assert_eq!(v["dir"], "ingress");
        assert_eq!(v["part"], "body");
        assert_eq!(v["msg_seq"], 3);
        assert_eq!(v["offset"], 5);
        assert_eq!(v["bytes"], "hi");
        assert!(v.get("bytes_encoding").is_none());

        let mut p = d.encode().to_vec();
        p.extend_from_slice(&[0xff, 0x00]);
        let (h, p) = framed(RecordType::Data, 11, &p);
        let v = to_json("1-0.tlr", 0, &h, &p);
        assert_eq!(v["bytes"], "/wA=");
        assert_eq!(v["bytes_encoding"], "base64");
    }

    #[test]
    fn at_exit_closes_and_unknown_values_are_numbers() {
        let c = rec::ConnClose {
            reason: CloseReason::AtExit,
            protocol: Protocol::from(77),
            errno: 0,
            bytes_out: 1,
            bytes_in: 2,
            first_out_wall_ns: 3,
            last_in_wall_ns: 4,
        };
        let (h, p) = framed(RecordType::ConnClose, 1, &c.encode());
        let v = to_json("1-0.tlr", 0, &h, &p);
        assert_eq!(v["reason"], "at_exit");
        assert_eq!(v["protocol"], 77);
        assert_eq!(v["bytes_in"], 2);
    }

    #[test]
    fn h2_records_show_every_field() {
        let h = rec::H2Headers {
            dir: Direction::Egress,
            flags: rec::h2_block_flags::PUSH_PROMISE,
            stream_id: 3,
            promised_stream_id: 4,
            block_seq: 5,
            len: 2,
            block_len: 9,
        };
        let mut p = h.encode().to_vec();
        p.extend_from_slice(&[0x82, 0x86]);
        let (hd, p) = framed(RecordType::H2Headers, 8, &p);
        let v = to_json("1-0.tlr", 0, &hd, &p);
        assert_eq!(v["type"], "h2_headers");
        assert_eq!(v["dir"], "egress");
        assert_eq!(v["flags"], 4);
        assert_eq!(v["stream_id"], 3);
        assert_eq!(v["promised_stream_id"], 4);
        assert_eq!(v["block_seq"], 5);
        assert_eq!(v["len"], 2);
        assert_eq!(v["block_len"], 9);
        assert_eq!(v["block"], "goY=");
        assert_eq!(v["block_encoding"], "base64");

        let s = rec::H2Start {
            how: H2StartHow::H2cUpgrade,
            flags: 0,
            upgrade_msg_seq: 2,
        };
        let (hd, p) = framed(RecordType::H2Start, 8, &s.encode());
        let v = to_json("1-0.tlr", 1, &hd, &p);
        assert_eq!(
            (v["how"].clone(), v["upgrade_msg_seq"].clone()),
            ("h2c_upgrade".into(), 2.into())
        );

        let e = rec::H2StreamEnd {
            dir: Direction::Ingress,
            flags: rec::h2_stream_flags::RESET,
            stream_id: 7,
            data_len: 10,
            wire_len: 40,
            first_wall_ns: 1,
            first_mono_ns: 2,
            last_wall_ns: 3,
            last_mono_ns: 4,
            error_code: 8,
        };
        let (hd, p) = framed(RecordType::H2StreamEnd, 8, &e.encode());
        let v = to_json("1-0.tlr", 2, &hd, &p);
        assert_eq!(v["type"], "h2_stream_end");
        assert_eq!(v["dir"], "ingress");
        for (k, want) in [
            ("flags", 2),
            ("stream_id", 7),
            ("data_len", 10),
            ("wire_len", 40),
            ("first_wall_ns", 1),
            ("first_mono_ns", 2),
            ("last_wall_ns", 3),
            ("last_mono_ns", 4),
            ("error_code", 8),
        ] {
            assert_eq!(v[k], want, "{k}");
        }
        let g = rec::H2GoAway {
            dir: Direction::Ingress,
            last_stream_id: 11,
            error_code: 0,
        };
        let (hd, p) = framed(RecordType::H2GoAway, 8, &g.encode());
        let v = to_json("1-0.tlr", 3, &hd, &p);
        assert_eq!(
            (v["type"].clone(), v["last_stream_id"].clone()),
            ("h2_goaway".into(), 11.into())
        );
    }

    #[test]
    fn a_payload_too_short_for_its_type_is_shown_undecoded() {
        let (h, p) = framed(RecordType::MsgEnd, 1, &[0xff, 2, 3]);
        let v = to_json("1-0.tlr", 0, &h, &p);
        assert_eq!(v["type"], "msg_end");
        assert_eq!(v["undecodable"], true);
        assert_eq!(v["payload_encoding"], "base64");
    }
}
