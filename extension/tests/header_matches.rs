//! `include/tapline.h` is the record format's contract for C writers and readers;
//! `tapline-record` is the Rust one. This test parses the header (its `#define`s, enum
//! values, struct layouts and "N bytes" comments) and fails on any difference: constant
//! values, struct sizes, and the offset of every field, checked by encoding a Rust value
//! with distinct field values and reading each field back at the C offset.

use std::collections::BTreeMap;

use tapline_record as rec;

const HEADER: &str = include_str!("../../include/tapline.h");

/// One parsed C struct: fields with (offset, size), and total size, laid out by the C
/// rules for these fixed-width types (natural alignment).
#[derive(Debug, Default)]
struct CStruct {
    fields: BTreeMap<String, (usize, usize)>,
    size: usize,
}

#[derive(Debug, Default)]
struct CHeader {
    defines: BTreeMap<String, u64>,
    enums: BTreeMap<String, u64>,
    structs: BTreeMap<String, CStruct>,
    /// `TL_DATA: 24 bytes` style comments: record name → documented payload size.
    documented_sizes: BTreeMap<String, usize>,
    problems: Vec<String>,
}

fn strip_block_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        match rest[i..].find("*/") {
            Some(j) => rest = &rest[i + j + 2..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

fn parse_int(v: &str) -> Option<u64> {
    let v = v
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim();
    if let Some((a, b)) = v.split_once("<<") {
        return Some(parse_int(a)? << parse_int(b)?);
    }
    let v = v.trim_end_matches(['u', 'U', 'l', 'L']);
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn c_type_size(t: &str) -> Option<usize> {
    Some(match t {
        "uint8_t" | "int8_t" => 1,
        "uint16_t" | "int16_t" => 2,
        "uint32_t" | "int32_t" => 4,
        "uint64_t" | "int64_t" => 8,
        _ => return None,
    })
}

fn parse_header(text: &str) -> CHeader {
    let mut h = CHeader::default();
    // Documented payload sizes, from the comments.
    for line in text.lines() {
        let l = line.trim().trim_start_matches("/*").trim();
        if let Some((name, rest)) = l.split_once(':') {
            if name.starts_with("TL_") && !name.contains(' ') {
                if let Some(n) = rest.trim().split(' ').next().and_then(|n| n.parse().ok()) {
                    if rest
                        .trim()
                        .split(' ')
                        .nth(1)
                        .is_some_and(|w| w.starts_with("byte"))
                    {
                        h.documented_sizes.insert(name.to_owned(), n);
                    }
                }
            }
        }
    }
    let code = strip_block_comments(text);
    for line in code.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("#define") {
            if let (Some(name), Some(value)) = (words.next(), words.next()) {
                let value = std::iter::once(value)
                    .chain(words)
                    .collect::<Vec<_>>()
                    .join(" ");
                match parse_int(&value) {
                    Some(v) => {
                        h.defines.insert(name.to_owned(), v);
                    }
                    None if name == "TAPLINE_H" => {}
                    None => h
                        .problems
                        .push(format!("cannot read #define {name} {value}")),
                }
            }
        }
    }
    // enum bodies
    let mut rest = code.as_str();
    while let Some(i) = rest.find("enum ") {
        rest = &rest[i + 5..];
        let (Some(open), Some(close)) = (rest.find('{'), rest.find('}')) else {
            break;
        };
        for entry in rest[open + 1..close].split(',') {
            if let Some((name, value)) = entry.split_once('=') {
                match parse_int(value) {
                    Some(v) => {
                        h.enums.insert(name.trim().to_owned(), v);
                    }
                    None => h.problems.push(format!("cannot read enum entry {entry:?}")),
                }
            }
        }
        rest = &rest[close..];
    }
    read_structs(&code, &mut h);
    h
}

/// Lays out the header's struct bodies by the C rules into `h.structs`; what it cannot
/// read, and implicit padding, goes to `h.problems`.
fn read_structs(code: &str, h: &mut CHeader) {
    let mut rest = code;
    while let Some(i) = rest.find("struct ") {
        rest = &rest[i + 7..];
        let Some(open) = rest.find('{') else { break };
        let name = rest[..open].trim().to_owned();
        let Some(close) = rest.find("};") else { break };
        let mut s = CStruct::default();
        let mut max_align = 1;
        for decl in rest[open + 1..close].split(';') {
            let decl = decl.trim();
            if decl.is_empty() {
                continue;
            }
            let mut parts = decl.split_whitespace();
            let (Some(ty), Some(field)) = (parts.next(), parts.next()) else {
                h.problems
                    .push(format!("struct {name}: cannot read {decl:?}"));
                continue;
            };
            let Some(elem) = c_type_size(ty) else {
                h.problems.push(format!("struct {name}: unknown type {ty}"));
                continue;
            };
            let (field, count) = match field.split_once('[') {
                Some((f, n)) => (f, parse_int(n.trim_end_matches(']')).unwrap_or(0) as usize),
                None => (field, 1),
            };
            max_align = max_align.max(elem);
            let offset = s.size.div_ceil(elem) * elem;
            if offset != s.size {
                h.problems
                    .push(format!("struct {name}: implicit padding before {field}"));
            }
            s.fields.insert(field.to_owned(), (offset, elem * count));
            s.size = offset + elem * count;
        }
        s.size = s.size.div_ceil(max_align) * max_align;
        h.structs.insert(name, s);
        rest = &rest[close..];
    }
}

/// Encoded Rust values with distinct field values, and what each C field must read.
/// A C struct name, a Rust encoding of it, and (C field, value it must hold).
type Layout = (&'static str, Vec<u8>, Vec<(&'static str, u64)>);

fn layouts() -> Vec<Layout> {
    let mut all = opening_layouts();
    all.extend(traffic_layouts());
    all.extend(process_layouts());
    all.extend(h2_stream_layouts());
    all.extend(h2_control_layouts());
    all
}

/// The record header, process start and connection open.
fn opening_layouts() -> Vec<Layout> {
    let mut peer = [0u8; 16];
    peer[0] = 0xA1;
    let mut local = [0u8; 16];
    local[0] = 0xB2;
    let mut header = rec::Header::new(
        rec::RecordType::Data,
        0,
        0x1111_2222_3333_4444,
        0x5555_6666_7777_8888,
    );
    header.pid = 0x0102_0304;
    header.tid = 0x0506_0708;
    header.conn_id = 0x0A0B_0C0D_0E0F_1011;
    header.crc32 = 0xDEAD_BEEF;
    vec![
        (
            "tl_header",
            header.encode(rec::MAGIC).to_vec(),
            vec![
                ("magic", u64::from(rec::MAGIC)),
                ("version", u64::from(rec::VERSION)),
                ("type", rec::RecordType::Data as u64),
                ("length", rec::padded_len(0) as u64),
                ("crc32", 0xDEAD_BEEF),
                ("wall_ns", 0x1111_2222_3333_4444),
                ("mono_ns", 0x5555_6666_7777_8888),
                ("pid", 0x0102_0304),
                ("tid", 0x0506_0708),
                ("conn_id", 0x0A0B_0C0D_0E0F_1011),
            ],
        ),
        (
            "tl_proc_start",
            rec::ProcStart {
                ppid: 11,
                cmdline_len: 22,
                file_seq: 33,
                flags: 44,
            }
            .encode()
            .to_vec(),
            vec![
                ("ppid", 11),
                ("cmdline_len", 22),
                ("file_seq", 33),
                ("flags", 44),
            ],
        ),
        (
            "tl_conn_open",
            rec::ConnOpen {
                fd: 0x0123_4567,
                protocol: 0x89.into(),
                flags: 0xAB,
                connect_wall_ns: 0x1000_2000_3000_4000,
                connect_mono_ns: 0x5000_6000_7000_8000,
                peer: rec::WireAddr {
                    family: 0x0C0D,
                    port: 0x0E0F,
                    addr: peer,
                },
                local: rec::WireAddr {
                    family: 0x1213,
                    port: 0x1415,
                    addr: local,
                },
                established_wall_ns: 0x1617_1819_1A1B_1C1D,
            }
            .encode()
            .to_vec(),
            vec![
                ("fd", 0x0123_4567),
                ("protocol", 0x89),
                ("flags", 0xAB),
                ("peer_family", 0x0C0D),
                ("connect_wall_ns", 0x1000_2000_3000_4000),
                ("connect_mono_ns", 0x5000_6000_7000_8000),
                ("peer_addr", 0xA1),
                ("peer_port", 0x0E0F),
                ("local_port", 0x1415),
                ("local_family", 0x1213),
                ("local_addr", 0xB2),
                ("established_wall_ns", 0x1617_1819_1A1B_1C1D),
            ],
        ),
    ]
}

/// Data, message end, connection close and TLS info records.
fn traffic_layouts() -> Vec<Layout> {
    vec![
        (
            "tl_data",
            rec::Data {
                dir: 1.into(),
                part: 2.into(),
                flags: 0x0304,
                msg_seq: 0x0506_0708,
                offset: 0x0102_0304_0506_0708,
                len: 0x0A0B_0C0D,
            }
            .encode()
            .to_vec(),
            vec![
                ("dir", 1),
                ("part", 2),
                ("flags", 0x0304),
                ("msg_seq", 0x0506_0708),
                ("offset", 0x0102_0304_0506_0708),
                ("len", 0x0A0B_0C0D),
            ],
        ),
        (
            "tl_msg_end",
            rec::MsgEnd {
                dir: 1.into(),
                flags: 0x0203,
                msg_seq: 0x0405_0607,
                head_len: 0x11,
                body_len: 0x22,
                wire_len: 0x33,
                start_wall_ns: 0x44,
                start_mono_ns: 0x55,
                status: 0x0666,
            }
            .encode()
            .to_vec(),
            vec![
                ("dir", 1),
                ("flags", 0x0203),
                ("msg_seq", 0x0405_0607),
                ("head_len", 0x11),
                ("body_len", 0x22),
                ("wire_len", 0x33),
                ("start_wall_ns", 0x44),
                ("start_mono_ns", 0x55),
                ("status", 0x0666),
            ],
        ),
        (
            "tl_conn_close",
            rec::ConnClose {
                reason: 3.into(),
                protocol: 4.into(),
                errno: 0x0102_0304,
                bytes_out: 0x55,
                bytes_in: 0x66,
                first_out_wall_ns: 0x77,
                last_in_wall_ns: 0x88,
            }
            .encode()
            .to_vec(),
            vec![
                ("reason", 3),
                ("protocol", 4),
                ("errno_value", 0x0102_0304),
                ("bytes_out", 0x55),
                ("bytes_in", 0x66),
                ("first_out_wall_ns", 0x77),
                ("last_in_wall_ns", 0x88),
            ],
        ),
        (
            "tl_tls_info",
            rec::TlsInfo {
                library: 2.into(),
                flags: 3,
                sni_len: 0x0405,
                alpn_len: 0x0607,
                fd: 0x0809_0A0B,
                socket_conn_id: 0x1112_1314_1516_1718,
            }
            .encode()
            .to_vec(),
            vec![
                ("library", 2),
                ("flags", 3),
                ("sni_len", 0x0405),
                ("alpn_len", 0x0607),
                ("fd", 0x0809_0A0B),
                ("socket_conn_id", 0x1112_1314_1516_1718),
            ],
        ),
    ]
}

/// Drops, lifecycle, name lookup and address records.
fn process_layouts() -> Vec<Layout> {
    let mut peer = [0u8; 16];
    peer[0] = 0xA1;
    vec![
        (
            "tl_drops",
            rec::Drops {
                records: 0x1234,
                bytes: 0x5678,
            }
            .encode()
            .to_vec(),
            vec![("records", 0x1234), ("bytes", 0x5678)],
        ),
        (
            "tl_lifecycle",
            rec::Lifecycle {
                event: 3.into(),
                id_len: 0x0405,
            }
            .encode()
            .to_vec(),
            vec![("event", 3), ("id_len", 0x0405)],
        ),
        (
            "tl_name_lookup",
            rec::NameLookup {
                name_len: 0x0102,
                count: 0x0304,
            }
            .encode()
            .to_vec(),
            vec![("name_len", 0x0102), ("count", 0x0304)],
        ),
        (
            "tl_notice",
            rec::Notice {
                kind: 2.into(),
                flags: 0x05,
                path_len: 0x0607,
                pid: 0x0809_0A0B,
            }
            .encode()
            .to_vec(),
            vec![
                ("kind", 2),
                ("flags", 0x05),
                ("path_len", 0x0607),
                ("pid", 0x0809_0A0B),
            ],
        ),
        (
            "tl_failure",
            rec::Failure {
                stage: 2.into(),
                flags: 0x03,
                name_len: 0x0405,
                code: 0x0607_0809,
                peer: rec::WireAddr {
                    family: 0x0A0B,
                    port: 0x0C0D,
                    addr: peer,
                },
                reason_len: 0x0E0F,
            }
            .encode()
            .to_vec(),
            vec![
                ("stage", 2),
                ("flags", 0x03),
                ("name_len", 0x0405),
                ("code", 0x0607_0809),
                ("peer_family", 0x0A0B),
                ("peer_port", 0x0C0D),
                ("peer_addr", 0xA1),
                ("reason_len", 0x0E0F),
            ],
        ),
        (
            "tl_addr",
            rec::NameLookup::encode_addr(&rec::WireAddr {
                family: 0x0A0B,
                port: 0x0C0D,
                addr: peer,
            })
            .to_vec(),
            vec![("family", 0x0A0B), ("port", 0x0C0D), ("addr", 0xA1)],
        ),
    ]
}

/// HTTP/2 start, header block and data records.
fn h2_stream_layouts() -> Vec<Layout> {
    vec![
        (
            "tl_h2_start",
            rec::H2Start {
                how: rec::H2StartHow::H2cUpgrade,
                flags: 0x45,
                upgrade_msg_seq: 0x0102_0304,
            }
            .encode()
            .to_vec(),
            vec![
                ("how", 3),
                ("flags", 0x45),
                ("upgrade_msg_seq", 0x0102_0304),
            ],
        ),
        (
            "tl_h2_headers",
            rec::H2Headers {
                dir: rec::Direction::Ingress,
                flags: 0x0203,
                stream_id: 0x0405_0607,
                promised_stream_id: 0x0809_0A0B,
                block_seq: 0x0C0D_0E0F,
                len: 0x1011_1213,
                block_len: 0x1415_1617,
            }
            .encode()
            .to_vec(),
            vec![
                ("dir", 1),
                ("flags", 0x0203),
                ("stream_id", 0x0405_0607),
                ("promised_stream_id", 0x0809_0A0B),
                ("block_seq", 0x0C0D_0E0F),
                ("len", 0x1011_1213),
                ("block_len", 0x1415_1617),
            ],
        ),
        (
            "tl_h2_data",
            rec::H2Data {
                dir: rec::Direction::Ingress,
                flags: 0x0203,
                stream_id: 0x0405_0607,
                offset: 0x1112_1314_1516_1718,
                len: 0x2122_2324,
            }
            .encode()
            .to_vec(),
            vec![
                ("dir", 1),
                ("flags", 0x0203),
                ("stream_id", 0x0405_0607),
                ("offset", 0x1112_1314_1516_1718),
                ("len", 0x2122_2324),
            ],
        ),
    ]
}

/// HTTP/2 stream end, reset, GOAWAY and settings records.
fn h2_control_layouts() -> Vec<Layout> {
    vec![
        (
            "tl_h2_stream_end",
            rec::H2StreamEnd {
                dir: rec::Direction::Ingress,
                flags: 0x0203,
                stream_id: 0x0405_0607,
                data_len: 0x11,
                wire_len: 0x22,
                first_wall_ns: 0x33,
                first_mono_ns: 0x44,
                last_wall_ns: 0x55,
                last_mono_ns: 0x66,
                error_code: 0x7788_99AA,
            }
            .encode()
            .to_vec(),
            vec![
                ("dir", 1),
                ("flags", 0x0203),
                ("stream_id", 0x0405_0607),
                ("data_len", 0x11),
                ("wire_len", 0x22),
                ("first_wall_ns", 0x33),
                ("first_mono_ns", 0x44),
                ("last_wall_ns", 0x55),
                ("last_mono_ns", 0x66),
                ("error_code", 0x7788_99AA),
            ],
        ),
        (
            "tl_h2_reset",
            rec::H2Reset {
                dir: rec::Direction::Ingress,
                stream_id: 0x0405_0607,
                error_code: 0x0809_0A0B,
            }
            .encode()
            .to_vec(),
            vec![
                ("dir", 1),
                ("stream_id", 0x0405_0607),
                ("error_code", 0x0809_0A0B),
            ],
        ),
        (
            "tl_h2_goaway",
            rec::H2GoAway {
                dir: rec::Direction::Ingress,
                last_stream_id: 0x0405_0607,
                error_code: 0x0809_0A0B,
            }
            .encode()
            .to_vec(),
            vec![
                ("dir", 1),
                ("last_stream_id", 0x0405_0607),
                ("error_code", 0x0809_0A0B),
            ],
        ),
        (
            "tl_h2_settings",
            rec::H2Settings {
                dir: rec::Direction::Ingress,
                flags: 0x0203,
                header_table_size: 0x0405_0607,
                max_frame_size: 0x0809_0A0B,
            }
            .encode()
            .to_vec(),
            vec![
                ("dir", 1),
                ("flags", 0x0203),
                ("header_table_size", 0x0405_0607),
                ("max_frame_size", 0x0809_0A0B),
            ],
        ),
    ]
}

fn mismatches(text: &str) -> Vec<String> {
    let h = parse_header(text);
    let mut bad = h.problems.clone();
    constant_mismatches(&h, &mut bad);
    size_mismatches(&h, &mut bad);
    field_mismatches(&h, &mut bad);
    bad
}

/// The header's `#define`s and enum values against the Rust constants.
fn constant_mismatches(h: &CHeader, bad: &mut Vec<String>) {
    let mut expect = |map: &BTreeMap<String, u64>, name: &str, rust: u64| match map.get(name) {
        Some(&c) if c == rust => {}
        Some(&c) => bad.push(format!("{name}: header says {c}, Rust says {rust}")),
        None => bad.push(format!("{name}: missing from the header")),
    };
    for (name, v) in expected_defines() {
        expect(&h.defines, name, v);
    }
    for (name, v) in expected_enums() {
        expect(&h.enums, name, v);
    }
    // Every TL_ enum value in the header is one the Rust side knows.
    for (name, v) in &h.enums {
        let known = match name.as_str() {
            n if n.starts_with("TL_PROTO_") => rec::Protocol::from(*v as u8).known().is_some(),
            n if n.starts_with("TL_PART_") => rec::Part::from(*v as u8).known().is_some(),
            "TL_EGRESS" | "TL_INGRESS" => rec::Direction::from(*v as u8).known().is_some(),
            _ => rec::RecordType::from_u16(*v as u16).is_some(),
        };
        if !known {
            bad.push(format!("{name} = {v}: unknown to tapline-record"));
        }
    }
}

/// A one-byte wire enum's value.
fn b(v: impl Into<u8>) -> u64 {
    u64::from(v.into())
}

/// The `#define`s the header must hold, with the Rust values.
fn expected_defines() -> Vec<(&'static str, u64)> {
    use rec::{
        h2_block_flags as hb, h2_settings_flags as hs, h2_stream_flags as hf, H2StartHow as Hs,
    };
    use rec::{msg_flags as mf, CloseReason as Cr, LifecycleEvent as Le, TlsLibrary as Tl};
    use rec::{FailureStage as Fs, NoticeKind as Nk};
    vec![
        ("TL_MAGIC", u64::from(rec::MAGIC)),
        ("TL_SEG_MAGIC", rec::segment::SEGMENT_MAGIC),
        ("TL_SEG_VERSION", u64::from(rec::segment::SEGMENT_VERSION)),
        ("TL_SEG_DATA_START", rec::segment::DATA_START),
        ("TL_SEG_MAX_WRITERS", rec::segment::MAX_WRITERS as u64),
        ("TL_FREE_SLOTS", u64::from(rec::segment::FREE_SLOTS)),
        ("TL_SEG_FRESH", rec::segment::State::Fresh as u64),
        ("TL_SEG_CLAIMED", rec::segment::State::Claimed as u64),
        ("TL_SEG_FULL", rec::segment::State::Full as u64),
        ("TL_VERSION", u64::from(rec::VERSION)),
        ("TL_VERSION_CRC32", u64::from(rec::VERSION_CRC32)),
        ("TL_VERSION_SUM", u64::from(rec::VERSION_SUM)),
        ("TL_HEADER_LEN", rec::HEADER_LEN as u64),
        ("TL_ALIGN", rec::ALIGN as u64),
        ("TL_MAX_RECORD_LEN", rec::MAX_RECORD_LEN as u64),
        (
            "TL_CONN_RUNTIME_API",
            u64::from(rec::conn_flags::RUNTIME_API),
        ),
        (
            "TL_CONN_CONNECT_STARTED",
            u64::from(rec::conn_flags::CONNECT_STARTED),
        ),
        ("TL_MSG_HEAD_TRUNCATED", u64::from(mf::HEAD_TRUNCATED)),
        ("TL_MSG_BODY_TRUNCATED", u64::from(mf::BODY_TRUNCATED)),
        ("TL_MSG_CHUNKED", u64::from(mf::CHUNKED)),
        ("TL_MSG_UNTIL_CLOSE", u64::from(mf::UNTIL_CLOSE)),
        ("TL_MSG_INCOMPLETE", u64::from(mf::INCOMPLETE)),
        ("TL_MSG_NO_BODY", u64::from(mf::NO_BODY)),
        ("TL_MSG_MALFORMED", u64::from(mf::MALFORMED)),
        ("TL_CLOSE_CLOSED", b(Cr::Closed)),
        ("TL_CLOSE_PEER_EOF", b(Cr::PeerEof)),
        ("TL_CLOSE_ERROR", b(Cr::Error)),
        ("TL_CLOSE_UNTRACKED", b(Cr::Untracked)),
        ("TL_CLOSE_UPGRADED", b(Cr::Upgraded)),
        ("TL_CLOSE_AT_EXIT", b(Cr::AtExit)),
        ("TL_TLS_OPENSSL", b(Tl::OpenSsl)),
        ("TL_TLS_GNUTLS", b(Tl::GnuTls)),
        ("TL_TLS_JSSE", b(Tl::Jsse)),
        ("TL_LIFECYCLE_INVOCATION_NEXT", b(Le::InvocationNext)),
        (
            "TL_LIFECYCLE_INVOCATION_RESPONSE",
            b(Le::InvocationResponse),
        ),
        ("TL_LIFECYCLE_INVOCATION_ERROR", b(Le::InvocationError)),
        ("TL_FAILURE_DNS", b(Fs::Dns)),
        ("TL_FAILURE_CONNECT", b(Fs::Connect)),
        ("TL_FAILURE_TLS", b(Fs::Tls)),
        (
            "TL_FAILURE_TLS_ALERT",
            u64::from(rec::failure_flags::TLS_ALERT),
        ),
        (
            "TL_FAILURE_TLS_ALERT_FROM_PEER",
            u64::from(rec::failure_flags::TLS_ALERT_FROM_PEER),
        ),
        (
            "TL_FAILURE_TLS_VERIFY_ONLY",
            u64::from(rec::failure_flags::TLS_VERIFY_ONLY),
        ),
        (
            "TL_FAILURE_TLS_ALERT_ENCRYPTED",
            u64::from(rec::failure_flags::TLS_ALERT_ENCRYPTED),
        ),
        ("TL_NOTICE_STATIC_EXECUTABLE", b(Nk::StaticExecutable)),
        ("TL_NOTICE_GO_PROGRAM", b(Nk::GoProgram)),
        ("TL_NOTICE_SET_ID", b(Nk::SetId)),
        ("TL_NOTICE_OBJECT_UNTOUCHED", b(Nk::ObjectUntouched)),
        ("TL_NOTICE_JAVA_CLASS_UNTOUCHED", b(Nk::JavaClassUntouched)),
        ("TL_H2_START_PRIOR_KNOWLEDGE", b(Hs::PriorKnowledge)),
        ("TL_H2_START_TLS", b(Hs::Tls)),
        ("TL_H2_START_H2C_UPGRADE", b(Hs::H2cUpgrade)),
        ("TL_H2_BLOCK_END_STREAM", u64::from(hb::END_STREAM)),
        ("TL_H2_BLOCK_TRUNCATED", u64::from(hb::TRUNCATED)),
        ("TL_H2_BLOCK_PUSH_PROMISE", u64::from(hb::PUSH_PROMISE)),
        ("TL_H2_BLOCK_INCOMPLETE", u64::from(hb::INCOMPLETE)),
        ("TL_H2_STREAM_END_STREAM", u64::from(hf::END_STREAM)),
        ("TL_H2_STREAM_RESET", u64::from(hf::RESET)),
        ("TL_H2_STREAM_INCOMPLETE", u64::from(hf::INCOMPLETE)),
        ("TL_H2_STREAM_BODY_TRUNCATED", u64::from(hf::BODY_TRUNCATED)),
        ("TL_H2_STREAM_UNTRACKED", u64::from(hf::UNTRACKED)),
        (
            "TL_H2_SETTINGS_HEADER_TABLE_SIZE",
            u64::from(hs::HEADER_TABLE_SIZE),
        ),
        (
            "TL_H2_SETTINGS_MAX_FRAME_SIZE",
            u64::from(hs::MAX_FRAME_SIZE),
        ),
    ]
}

/// The enum values the header must hold, with the Rust values.
fn expected_enums() -> Vec<(&'static str, u64)> {
    use rec::RecordType as T;
    vec![
        ("TL_PROC_START", T::ProcStart as u64),
        ("TL_CONN_OPEN", T::ConnOpen as u64),
        ("TL_DATA", T::Data as u64),
        ("TL_MSG_END", T::MsgEnd as u64),
        ("TL_CONN_CLOSE", T::ConnClose as u64),
        ("TL_TLS_INFO", T::TlsInfo as u64),
        ("TL_DROPS", T::Drops as u64),
        ("TL_LIFECYCLE", T::Lifecycle as u64),
        ("TL_NAME_LOOKUP", T::NameLookup as u64),
        ("TL_H2_START", T::H2Start as u64),
        ("TL_H2_HEADERS", T::H2Headers as u64),
        ("TL_H2_DATA", T::H2Data as u64),
        ("TL_H2_STREAM_END", T::H2StreamEnd as u64),
        ("TL_H2_RESET", T::H2Reset as u64),
        ("TL_H2_GOAWAY", T::H2GoAway as u64),
        ("TL_H2_SETTINGS", T::H2Settings as u64),
        ("TL_NOTICE", T::Notice as u64),
        ("TL_FAILURE", T::Failure as u64),
        ("TL_MSG_PROGRESS", T::MsgProgress as u64),
        ("TL_DATA_END", T::DataEnd as u64),
        ("TL_EGRESS", b(rec::Direction::Egress)),
        ("TL_INGRESS", b(rec::Direction::Ingress)),
        ("TL_PROTO_HTTP1", b(rec::Protocol::Http1)),
        ("TL_PROTO_TLS", b(rec::Protocol::Tls)),
        ("TL_PROTO_H2C", b(rec::Protocol::H2c)),
        ("TL_PROTO_TLS_PLAINTEXT", b(rec::Protocol::TlsPlaintext)),
        ("TL_PART_HEAD", b(rec::Part::Head)),
        ("TL_PART_BODY", b(rec::Part::Body)),
        ("TL_PART_RAW", b(rec::Part::Raw)),
    ]
}

/// The C structs' sizes (and the sizes the comments state) against the Rust lengths.
fn size_mismatches(h: &CHeader, bad: &mut Vec<String>) {
    for (name, rust_len) in [
        ("tl_header", rec::HEADER_LEN),
        ("tl_proc_start", rec::ProcStart::LEN),
        ("tl_conn_open", rec::ConnOpen::LEN),
        ("tl_data", rec::Data::LEN),
        ("tl_msg_end", rec::MsgEnd::LEN),
        ("tl_conn_close", rec::ConnClose::LEN),
        ("tl_tls_info", rec::TlsInfo::LEN),
        ("tl_drops", rec::Drops::LEN),
        ("tl_lifecycle", rec::Lifecycle::LEN),
        ("tl_name_lookup", rec::NameLookup::LEN),
        ("tl_addr", rec::NameLookup::ADDR_LEN),
        ("tl_notice", rec::Notice::LEN),
        ("tl_failure", rec::Failure::LEN),
        ("tl_h2_start", rec::H2Start::LEN),
        ("tl_h2_headers", rec::H2Headers::LEN),
        ("tl_h2_data", rec::H2Data::LEN),
        ("tl_h2_stream_end", rec::H2StreamEnd::LEN),
        ("tl_h2_reset", rec::H2Reset::LEN),
        ("tl_h2_goaway", rec::H2GoAway::LEN),
        ("tl_h2_settings", rec::H2Settings::LEN),
    ] {
        match h.structs.get(name) {
            Some(s) if s.size == rust_len => {}
            Some(s) => bad.push(format!(
                "struct {name}: {} bytes in C, {rust_len} in Rust",
                s.size
            )),
            None => bad.push(format!("struct {name}: missing from the header")),
        }
        let record_name = name.to_ascii_uppercase();
        if let Some(&doc) = h.documented_sizes.get(&record_name) {
            if doc != rust_len {
                bad.push(format!(
                    "{record_name}: comment says {doc} bytes, Rust says {rust_len}"
                ));
            }
        }
    }
    // TL_DATA_END has no struct of its own: a tl_data then a tl_msg_end.
    match h.documented_sizes.get("TL_DATA_END") {
        Some(&doc) if doc == rec::DataEnd::LEN => {}
        Some(&doc) => bad.push(format!(
            "TL_DATA_END: comment says {doc} bytes, Rust says {}",
            rec::DataEnd::LEN
        )),
        None => bad.push("TL_DATA_END: payload size not documented".into()),
    }
}

/// Each C field's offset against where the Rust encoding writes that field.
fn field_mismatches(h: &CHeader, bad: &mut Vec<String>) {
    for (name, bytes, fields) in layouts() {
        let Some(s) = h.structs.get(name) else {
            continue;
        };
        if s.fields.len() > fields.len() + 3 {
            bad.push(format!(
                "struct {name}: fields not checked: {:?}",
                s.fields.keys()
            ));
        }
        for (field, want) in fields {
            let Some(&(off, size)) = s.fields.get(field) else {
                bad.push(format!("struct {name}: no field {field}"));
                continue;
            };
            let width = size.min(8);
            let Some(slice) = bytes.get(off..off + width) else {
                bad.push(format!(
                    "struct {name}.{field}: offset {off} beyond the Rust encoding"
                ));
                continue;
            };
            let mut le = [0u8; 8];
            le[..width].copy_from_slice(slice);
            let got = u64::from_le_bytes(le);
            // Arrays: compare the first byte only.
            let got = if size > 8 { got & 0xFF } else { got };
            if got != want {
                bad.push(format!("struct {name}.{field} at offset {off}: Rust wrote {got:#x}, expected {want:#x}"));
            }
        }
    }
}

/// The segment header's field offsets in C against `tapline_record::segment::field`.
fn segment_mismatches(text: &str) -> Vec<String> {
    use rec::segment::field as f;
    let h = parse_header(text);
    let Some(s) = h.structs.get("tl_segment_header") else {
        return vec!["struct tl_segment_header: missing from the header".into()];
    };
    let mut bad = Vec::new();
    for (name, off, size) in [
        ("magic", f::MAGIC, 8),
        ("version", f::VERSION, 4),
        ("data_start", f::DATA_START, 4),
        ("size", f::SIZE, 8),
        ("reserve", f::RESERVE, 8),
        ("state", f::STATE, 4),
        ("creator", f::CREATOR, 4),
        ("data_end", f::DATA_END, 8),
        ("seq", f::SEQ, 4),
        ("epoch", f::EPOCH, 4),
        ("consumed", f::CONSUMED, 4),
        ("keeper", f::KEEPER, 4),
        ("writers", f::WRITERS, 4 * rec::segment::MAX_WRITERS),
    ] {
        match s.fields.get(name) {
            Some(&(o, n)) if (o, n) == (off, size) => {}
            got => bad.push(format!(
                "tl_segment_header.{name}: C {got:?}, Rust ({off}, {size})"
            )),
        }
    }
    if s.size != f::END {
        bad.push(format!(
            "tl_segment_header: {} bytes in C, {} in Rust",
            s.size,
            f::END
        ));
    }
    bad
}

#[test]
fn segment_header_matches_the_rust_definitions() {
    let bad = segment_mismatches(HEADER);
    assert!(
        bad.is_empty(),
        "segment header disagrees:\n{}",
        bad.join("\n")
    );
}

#[test]
fn header_matches_the_rust_definitions() {
    let bad = mismatches(HEADER);
    assert!(
        bad.is_empty(),
        "include/tapline.h and tapline-record disagree:\n{}",
        bad.join("\n")
    );
    // The parser found what it should (a parser that finds nothing would pass).
    let h = parse_header(HEADER);
    assert!(
        h.defines.len() >= 36 && h.enums.len() >= 25 && h.structs.len() >= 18,
        "{h:?}"
    );
}

#[test]
fn the_check_catches_drift() {
    for (from, to) in [
        ("TL_DATA        = 3", "TL_DATA        = 33"),
        ("#define TL_MSG_CHUNKED        0x04", "#define TL_MSG_CHUNKED        0x40"),
        ("    uint64_t head_len;      /*  8", "    uint32_t head_len;      /*  8"),
        // Two fields swapped.
        ("    uint32_t pid;      /* 32: writing process                                  */\n    uint32_t tid;", "    uint32_t tid;      /* 32 */\n    uint32_t pid;"),
        ("TL_PROTO_H2C           = 3", "TL_PROTO_H2C           = 9"),
        ("/* TL_DATA: 24 bytes", "/* TL_DATA: 28 bytes"),
        ("TL_H2_STREAM_END = 13", "TL_H2_STREAM_END = 14"),
        ("    uint32_t block_seq;          /* 12", "    uint32_t block_len;          /* 12"),
        ("#define TL_H2_STREAM_RESET          0x02", "#define TL_H2_STREAM_RESET          0x20"),
        ("/* TL_H2_STREAM_END: 64 bytes", "/* TL_H2_STREAM_END: 60 bytes"),
        ("TL_DATA_END      = 20", "TL_DATA_END      = 21"),
        ("/* TL_DATA_END: 80 bytes", "/* TL_DATA_END: 88 bytes"),
    ] {
        assert!(HEADER.contains(from), "fixture text {from:?} no longer in the header");
        let changed = HEADER.replacen(from, to, 1);
        assert!(!mismatches(&changed).is_empty(), "changing {from:?} → {to:?} went unnoticed");
    }
}

#[test]
fn header_states_the_shared_defaults() {
    use rec::settings;
    let dir = format!(
        "${} (default {})",
        settings::SPOOL_DIR.name(),
        settings::DEFAULT_SPOOL_DIR
    );
    assert!(HEADER.contains(&dir), "tapline.h should say {dir}");
    let segment = format!(
        "({}, {} MiB by",
        settings::SEGMENT_BYTES.name(),
        settings::DEFAULT_SEGMENT_BYTES >> 20
    );
    assert!(HEADER.contains(&segment), "tapline.h should say {segment}");
}
