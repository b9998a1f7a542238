//! OTLP wire encodings of a [`SpanBatch`]: `http/json` and `http/protobuf`.
//!
//! Both are written by hand for the handful of messages a trace export needs
//! (`ExportTraceServiceRequest` → `ResourceSpans` → `ScopeSpans` → `Span`, `KeyValue`,
//! `AnyValue`, `Status`), which keeps the extension free of a protobuf toolchain. The JSON
//! mapping follows the OTLP specification, not protobuf's canonical one: ids are hex,
//! enums are integers, 64-bit integers are strings. Field numbers are those of
//! opentelemetry-proto v1 (`trace.proto`, `common.proto`, `resource.proto`,
//! `trace_service.proto`); the tests and `tests/servers/otlp_receiver.py` check the
//! output against the official definitions.

use serde_json::{json, Value};

use super::attributes::{AnyValue, KeyValue};
use super::span::{Span, SpanBatch};

/// The instrumentation scope tapline reports.
const SCOPE_NAME: &str = "tapline";

/// OTLP/HTTP payload encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Protobuf,
}

impl Encoding {
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/json",
            Encoding::Protobuf => "application/x-protobuf",
        }
    }

    /// File extension used in the outbox.
    pub fn extension(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Protobuf => "pb",
        }
    }

    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "json" => Some(Encoding::Json),
            "pb" => Some(Encoding::Protobuf),
            _ => None,
        }
    }
}

impl SpanBatch {
    /// The request body in `encoding`.
    pub fn encode(&self, encoding: Encoding) -> Vec<u8> {
        match encoding {
            Encoding::Json => self.to_json().to_string().into_bytes(),
            Encoding::Protobuf => self.to_protobuf(),
        }
    }

    /// `ExportTraceServiceRequest` in OTLP/JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "resourceSpans": [{
                "resource": { "attributes": attrs_json(&self.resource.attributes) },
                "scopeSpans": [{
                    "scope": { "name": SCOPE_NAME, "version": env!("CARGO_PKG_VERSION") },
                    "spans": self.spans.iter().map(span_json).collect::<Vec<_>>(),
                }],
            }]
        })
    }

    /// `ExportTraceServiceRequest` in protobuf binary.
    pub fn to_protobuf(&self) -> Vec<u8> {
        let mut resource = Vec::new();
        for kv in &self.resource.attributes {
            put_message(&mut resource, 1, &key_value_pb(kv));
        }
        let mut scope = Vec::new();
        put_string(&mut scope, 1, SCOPE_NAME);
        put_string(&mut scope, 2, env!("CARGO_PKG_VERSION"));
        let mut scope_spans = Vec::new();
        put_message(&mut scope_spans, 1, &scope);
        for s in &self.spans {
            put_message(&mut scope_spans, 2, &span_pb(s));
        }
        let mut resource_spans = Vec::new();
        put_message(&mut resource_spans, 1, &resource);
        put_message(&mut resource_spans, 2, &scope_spans);
        let mut req = Vec::new();
        put_message(&mut req, 1, &resource_spans);
        req
    }
}

fn span_json(s: &Span) -> Value {
    let mut v = json!({
        "traceId": s.trace_id.to_hex(),
        "spanId": s.span_id.to_hex(),
        "name": s.name,
        "kind": s.kind as i32,
        "startTimeUnixNano": s.start_unix_ns.to_string(),
        "endTimeUnixNano": s.end_unix_ns.to_string(),
        "attributes": attrs_json(&s.attributes),
        "status": { "code": s.status as i32 },
    });
    if let Some(p) = s.parent_span_id {
        v["parentSpanId"] = Value::String(p.to_hex());
    }
    if !s.status_message.is_empty() {
        v["status"]["message"] = Value::String(s.status_message.clone());
    }
    if !s.events.is_empty() {
        v["events"] = Value::Array(
            s.events
                .iter()
                .map(|e| {
                    json!({
                        "timeUnixNano": e.time_unix_ns.to_string(),
                        "name": e.name,
                        "attributes": attrs_json(&e.attributes),
                    })
                })
                .collect(),
        );
    }
    if !s.links.is_empty() {
        v["links"] = Value::Array(
            s.links
                .iter()
                .map(|l| {
                    json!({
                        "traceId": l.trace_id.to_hex(),
                        "spanId": l.span_id.to_hex(),
                        "attributes": attrs_json(&l.attributes),
                    })
                })
                .collect(),
        );
    }
    v
}

fn attrs_json(attrs: &[KeyValue]) -> Vec<Value> {
    attrs
        .iter()
        .map(|kv| json!({ "key": kv.key, "value": any_json(&kv.value) }))
        .collect()
}

fn any_json(v: &AnyValue) -> Value {
    match v {
        AnyValue::String(s) => json!({ "stringValue": s }),
        AnyValue::Bool(b) => json!({ "boolValue": b }),
        AnyValue::Int(i) => json!({ "intValue": i.to_string() }),
        // JSON has no NaN/Infinity: OTLP/JSON writes them as strings.
        AnyValue::Double(d) if d.is_finite() => json!({ "doubleValue": d }),
        AnyValue::Double(d) => {
            json!({ "doubleValue": if d.is_nan() { "NaN" } else if *d > 0.0 { "Infinity" } else { "-Infinity" } })
        }
        AnyValue::Array(a) => {
            json!({ "arrayValue": { "values": a.iter().map(any_json).collect::<Vec<_>>() } })
        }
    }
}

// --- protobuf -----------------------------------------------------------------------

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_tag(out: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(out, u64::from(field << 3 | wire));
}

fn put_bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    put_tag(out, field, LEN);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_string(out: &mut Vec<u8>, field: u32, s: &str) {
    put_bytes(out, field, s.as_bytes());
}

/// Embedded messages are always written, even empty (an empty `Status` still says
/// "present").
fn put_message(out: &mut Vec<u8>, field: u32, msg: &[u8]) {
    put_bytes(out, field, msg);
}

fn put_fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    put_tag(out, field, FIXED64);
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_uint(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_tag(out, field, VARINT);
        put_varint(out, v);
    }
}

fn span_pb(s: &Span) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    put_bytes(&mut out, 1, &s.trace_id.0);
    put_bytes(&mut out, 2, &s.span_id.0);
    if let Some(p) = s.parent_span_id {
        put_bytes(&mut out, 4, &p.0);
    }
    put_string(&mut out, 5, &s.name);
    put_uint(&mut out, 6, s.kind as u64);
    put_fixed64(&mut out, 7, s.start_unix_ns);
    put_fixed64(&mut out, 8, s.end_unix_ns);
    for kv in &s.attributes {
        put_message(&mut out, 9, &key_value_pb(kv));
    }
    for e in &s.events {
        let mut event = Vec::new();
        put_fixed64(&mut event, 1, e.time_unix_ns);
        put_string(&mut event, 2, &e.name);
        for kv in &e.attributes {
            put_message(&mut event, 3, &key_value_pb(kv));
        }
        put_message(&mut out, 11, &event);
    }
    for l in &s.links {
        let mut link = Vec::new();
        put_bytes(&mut link, 1, &l.trace_id.0);
        put_bytes(&mut link, 2, &l.span_id.0);
        for kv in &l.attributes {
            put_message(&mut link, 4, &key_value_pb(kv));
        }
        put_message(&mut out, 13, &link);
    }
    let mut status = Vec::new();
    if !s.status_message.is_empty() {
        put_string(&mut status, 2, &s.status_message);
    }
    put_uint(&mut status, 3, s.status as u64);
    put_message(&mut out, 15, &status);
    out
}

fn key_value_pb(kv: &KeyValue) -> Vec<u8> {
    let mut out = Vec::new();
    put_string(&mut out, 1, &kv.key);
    put_message(&mut out, 2, &any_pb(&kv.value));
    out
}

fn any_pb(v: &AnyValue) -> Vec<u8> {
    let mut out = Vec::new();
    match v {
        AnyValue::String(s) => put_string(&mut out, 1, s),
        AnyValue::Bool(b) => {
            put_tag(&mut out, 2, VARINT);
            put_varint(&mut out, u64::from(*b));
        }
        AnyValue::Int(i) => {
            put_tag(&mut out, 3, VARINT);
            put_varint(&mut out, *i as u64);
        }
        AnyValue::Double(d) => {
            put_tag(&mut out, 4, FIXED64);
            out.extend_from_slice(&d.to_le_bytes());
        }
        AnyValue::Array(a) => {
            let mut arr = Vec::new();
            for x in a {
                put_message(&mut arr, 1, &any_pb(x));
            }
            put_message(&mut out, 5, &arr);
        }
    }
    out
}

/// `ExportTracePartialSuccess` of a response body: `(rejected_spans, error_message)`.
/// An empty or absent partial success is `None`.
pub(crate) fn parse_partial_success(body: &[u8], encoding: Encoding) -> Option<(i64, String)> {
    let (rejected, msg) = match encoding {
        Encoding::Json => {
            let v: Value = serde_json::from_slice(body).ok()?;
            let ps = v
                .get("partialSuccess")
                .or_else(|| v.get("partial_success"))?;
            let rejected = ps
                .get("rejectedSpans")
                .or_else(|| ps.get("rejected_spans"))
                .and_then(|r| match r {
                    Value::String(s) => s.parse().ok(),
                    other => other.as_i64(),
                })
                .unwrap_or(0);
            let msg = ps
                .get("errorMessage")
                .or_else(|| ps.get("error_message"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            (rejected, msg)
        }
        Encoding::Protobuf => {
            let ps = fields(body)
                .find(|(f, _)| *f == 1)
                .and_then(|(_, v)| v.bytes())?;
            let mut rejected = 0;
            let mut msg = String::new();
            for (f, v) in fields(ps) {
                match (f, v) {
                    (1, Field::Varint(n)) => rejected = n as i64,
                    (2, Field::Bytes(b)) => msg = String::from_utf8_lossy(b).into_owned(),
                    _ => {}
                }
            }
            (rejected, msg)
        }
    };
    (rejected != 0 || !msg.is_empty()).then_some((rejected, msg))
}

/// A decoded protobuf field value (only what responses and tests need).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl<'a> Field<'a> {
    pub(crate) fn bytes(self) -> Option<&'a [u8]> {
        match self {
            Field::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

/// Iterates over the fields of a protobuf message; stops at the first malformed one.
pub(crate) fn fields(mut buf: &[u8]) -> impl Iterator<Item = (u32, Field<'_>)> {
    std::iter::from_fn(move || {
        let (tag, n) = varint(buf)?;
        buf = &buf[n..];
        let field = u32::try_from(tag >> 3).ok()?;
        let value = match tag & 7 {
            0 => {
                let (v, n) = varint(buf)?;
                buf = &buf[n..];
                Field::Varint(v)
            }
            1 => {
                let b: [u8; 8] = buf.get(..8)?.try_into().ok()?;
                buf = &buf[8..];
                Field::Fixed64(u64::from_le_bytes(b))
            }
            2 => {
                let (len, n) = varint(buf)?;
                let len = usize::try_from(len).ok()?;
                let b = buf.get(n..n.checked_add(len)?)?;
                buf = &buf[n + len..];
                Field::Bytes(b)
            }
            5 => {
                let b: [u8; 4] = buf.get(..4)?.try_into().ok()?;
                buf = &buf[4..];
                Field::Fixed32(u32::from_le_bytes(b))
            }
            _ => return None,
        };
        Some((field, value))
    })
}

fn varint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::sample as exchange;
    use crate::export::{ids::IdGenerator, Resource};

    fn batch() -> SpanBatch {
        let mut b = SpanBatch::new(Resource::from_lookup("svc", |_| None))
            .with_ids(IdGenerator::seeded(42));
        let mut ex = exchange();
        ex.status = Some(404);
        b.add_exchange(&ex);
        b
    }

    #[test]
    fn json_follows_otlp_mapping() {
        let v = batch().to_json();
        let rs = &v["resourceSpans"][0];
        assert_eq!(rs["resource"]["attributes"][0]["key"], "service.name");
        let span = &rs["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"].as_str().unwrap().len(), 32);
        assert_eq!(span["spanId"].as_str().unwrap().len(), 16);
        assert_eq!(span["kind"], 3);
        assert_eq!(span["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(span["endTimeUnixNano"], "1700000000005000000");
        assert_eq!(span["status"]["code"], 2);
        let status = span["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == "http.response.status_code")
            .unwrap();
        assert_eq!(status["value"]["intValue"], "404");
        assert!(span.get("parentSpanId").is_none());
    }

    #[test]
    fn protobuf_structure() {
        let b = batch();
        let pb = b.to_protobuf();
        let rs = fields(&pb).next().unwrap();
        assert_eq!(rs.0, 1);
        let rs = rs.1.bytes().unwrap();
        let span = first_span(rs);
        let span: Vec<_> = fields(span).collect();
        let get = |n| span.iter().find(|(f, _)| *f == n).map(|(_, v)| *v);
        assert_eq!(get(1).unwrap().bytes().unwrap(), &b.spans[0].trace_id.0);
        assert_eq!(get(5).unwrap().bytes().unwrap(), b"POST");
        assert_eq!(get(6), Some(Field::Varint(3)));
        assert_eq!(get(7), Some(Field::Fixed64(1_700_000_000_000_000_000)));
        let status: Vec<_> = fields(get(15).unwrap().bytes().unwrap()).collect();
        assert_eq!(status, vec![(3, Field::Varint(2))]);
        // every byte was consumed by well-formed fields
        assert_eq!(fields(&pb).count(), 1);
    }

    /// The first span of a protobuf `ResourceSpans` (scope spans, field 2; spans, field 2).
    fn first_span(rs: &[u8]) -> &[u8] {
        let field2 = |b| fields(b).find(|(f, _)| *f == 2).unwrap().1.bytes().unwrap();
        field2(field2(rs))
    }

    #[test]
    fn span_events_in_both_encodings() {
        let mut b = batch();
        b.spans[0].events.push(crate::export::span::SpanEvent {
            time_unix_ns: 1_700_000_000_001_000_000,
            name: "tapline.notice".into(),
            attributes: vec![KeyValue::string("tapline.notice.kind", "go_program")],
        });
        let v = b.to_json();
        let ev = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["events"][0];
        assert_eq!(ev["name"], "tapline.notice");
        assert_eq!(ev["timeUnixNano"], "1700000000001000000");
        assert_eq!(ev["attributes"][0]["value"]["stringValue"], "go_program");
        let pb = b.to_protobuf();
        let rs = fields(&pb).next().unwrap().1.bytes().unwrap();
        let span = first_span(rs);
        let event = fields(span)
            .find(|(f, _)| *f == 11)
            .unwrap()
            .1
            .bytes()
            .unwrap();
        let event: Vec<_> = fields(event).collect();
        assert_eq!(event[0], (1, Field::Fixed64(1_700_000_000_001_000_000)));
        assert_eq!(event[1].1.bytes().unwrap(), b"tapline.notice");
        assert_eq!(event[2].0, 3);
    }

    #[test]
    fn negative_int_is_ten_byte_varint() {
        let mut out = Vec::new();
        let v = any_pb(&AnyValue::Int(-1));
        out.extend_from_slice(&v);
        assert_eq!(out.len(), 11);
        assert_eq!(fields(&out).next(), Some((3, Field::Varint(u64::MAX))));
    }

    #[test]
    fn partial_success_both_encodings() {
        let j = br#"{"partialSuccess":{"rejectedSpans":"2","errorMessage":"bad attr"}}"#;
        assert_eq!(
            parse_partial_success(j, Encoding::Json),
            Some((2, "bad attr".into()))
        );
        assert_eq!(parse_partial_success(b"{}", Encoding::Json), None);
        assert_eq!(
            parse_partial_success(br#"{"partialSuccess":{}}"#, Encoding::Json),
            None
        );
        let mut ps = Vec::new();
        put_uint(&mut ps, 1, 3);
        put_string(&mut ps, 2, "nope");
        let mut resp = Vec::new();
        put_message(&mut resp, 1, &ps);
        assert_eq!(
            parse_partial_success(&resp, Encoding::Protobuf),
            Some((3, "nope".into()))
        );
        assert_eq!(parse_partial_success(b"", Encoding::Protobuf), None);
        assert_eq!(parse_partial_success(b"\xff", Encoding::Protobuf), None);
    }
}
