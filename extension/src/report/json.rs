//! `--format json`: one JSON object per line, one line per exchange, with the fields
//! the README lists (the contract). Tools parse this, so every field is
//! always present (`null` when unknown) and names never change.

use std::io::{self, Write};

use base64::Engine;
use serde_json::{json, Value};

use crate::exchange::AwsCall;
use crate::exchange::{Body, Exchange, GrpcCall, Timings};

/// Writes one line per exchange.
pub(crate) fn write(exchanges: &[Exchange], out: &mut dyn Write) -> io::Result<()> {
    let mut line = Vec::new();
    for x in exchanges {
        line.clear();
        write_line(x, &mut line)?;
        out.write_all(&line)?;
    }
    Ok(())
}

/// Appends the line of one exchange to `out`: the text `serde_json` makes of
/// [`to_value`] and a newline, written field by field.
///
/// Why not `to_value`: the live report writes every exchange of a busy program, and
/// building the object first (a map entry, a `String` key and a `Value` per field) cost
/// more than reading the spool. The test `line_is_the_contract_object_text` holds the
/// two to the same bytes over varied exchanges; [`to_value`] stays the definition.
pub(crate) fn write_line(x: &Exchange, out: &mut Vec<u8>) -> io::Result<()> {
    let opaque = x.method.is_none();
    out.extend_from_slice(b"{\"pid\":");
    number(out, x.pid);
    out.extend_from_slice(b",\"start_unix_ns\":");
    number(out, x.start_unix_ns);
    out.extend_from_slice(b",\"duration_ns\":");
    number(out, x.duration_ns);
    out.extend_from_slice(b",\"timings\":{");
    let mut first = true;
    for (name, ns) in x.timings.phases() {
        if let Some(ns) = ns {
            if !first {
                out.push(b',');
            }
            first = false;
            string(out, name)?;
            out.push(b':');
            serde_json::to_writer(&mut *out, &ms(ns))?;
        }
    }
    out.extend_from_slice(b"},\"method\":");
    opt_string(out, x.method.as_deref())?;
    out.extend_from_slice(b",\"url\":");
    opt_string(out, x.url_or_origin().as_deref())?;
    out.extend_from_slice(b",\"scheme\":");
    string(out, x.scheme)?;
    out.extend_from_slice(b",\"host\":");
    opt_string(out, x.host.as_deref())?;
    out.extend_from_slice(b",\"port\":");
    opt_number(out, x.port);
    out.extend_from_slice(b",\"path\":");
    opt_string(out, x.path.as_deref())?;
    out.extend_from_slice(b",\"http_version\":");
    opt_string(out, x.http_version.as_deref())?;
    out.extend_from_slice(b",\"status\":");
    opt_number(out, x.status);
    out.extend_from_slice(b",\"request_headers\":");
    header_pairs(out, (!opaque).then_some(&x.request_headers))?;
    out.extend_from_slice(b",\"response_headers\":");
    header_pairs(out, (!opaque).then_some(&x.response_headers))?;
    for (side, body) in [
        ("request", x.request_body.as_ref()),
        ("response", x.response_body.as_ref()),
    ] {
        let (text, encoding) = match body {
            None => (None, None),
            Some(b) => match std::str::from_utf8(&b.bytes) {
                Ok(text) => (Some(std::borrow::Cow::Borrowed(text)), None),
                Err(_) => (
                    Some(std::borrow::Cow::Owned(
                        base64::engine::general_purpose::STANDARD.encode(&b.bytes),
                    )),
                    Some("base64"),
                ),
            },
        };
        out.extend_from_slice(b",\"");
        out.extend_from_slice(side.as_bytes());
        out.extend_from_slice(b"_body\":");
        opt_string(out, text.as_deref())?;
        out.extend_from_slice(b",\"");
        out.extend_from_slice(side.as_bytes());
        out.extend_from_slice(b"_body_encoding\":");
        opt_string(out, encoding)?;
    }
    out.extend_from_slice(b",\"request_body_decoded\":");
    opt_string(out, x.request_body.as_ref().and_then(|b| b.decoded))?;
    out.extend_from_slice(b",\"response_body_decoded\":");
    opt_string(out, x.response_body.as_ref().and_then(|b| b.decoded))?;
    out.extend_from_slice(b",\"request_body_size\":");
    number(out, x.request_body_size());
    out.extend_from_slice(b",\"response_body_size\":");
    number(out, x.response_body_size());
    out.extend_from_slice(b",\"truncated\":");
    boolean(out, x.truncated);
    out.extend_from_slice(b",\"peer\":");
    match x.peer {
        // An address's text (digits, `.`, `:`, `[`, `]`, `%`) needs no JSON escape.
        Some(p) => {
            out.push(b'"');
            write!(out, "{p}")?;
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"tls\":");
    string(out, x.tls.as_str())?;
    out.extend_from_slice(b",\"sni\":");
    opt_string(out, x.sni.as_deref())?;
    out.extend_from_slice(b",\"error\":");
    opt_string(out, x.error.as_deref())?;
    out.extend_from_slice(b",\"conn_id\":");
    number(out, x.conn_id);
    out.extend_from_slice(b",\"alpn\":");
    opt_string(out, x.alpn.as_deref())?;
    out.extend_from_slice(b",\"aws\":");
    match &x.aws {
        Some(a) => serde_json::to_writer(&mut *out, &aws_value(a))?,
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"response_trailers\":");
    header_pairs(out, (!opaque).then_some(&x.response_trailers))?;
    out.extend_from_slice(b",\"pushed\":");
    boolean(out, x.pushed);
    out.extend_from_slice(b",\"grpc\":");
    match &x.grpc {
        Some(g) => serde_json::to_writer(&mut *out, &grpc_value(g))?,
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// An integer as `serde_json` writes it (decimal, no sign for unsigned).
fn number(out: &mut Vec<u8>, n: impl Into<u64>) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{}", n.into());
}

fn opt_number(out: &mut Vec<u8>, n: Option<impl Into<u64>>) {
    match n {
        Some(n) => number(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

fn boolean(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// A JSON string, escaped by `serde_json`.
fn string(out: &mut Vec<u8>, s: &str) -> io::Result<()> {
    serde_json::to_writer(&mut *out, s)?;
    Ok(())
}

fn opt_string(out: &mut Vec<u8>, s: Option<&str>) -> io::Result<()> {
    match s {
        Some(s) => string(out, s),
        None => {
            out.extend_from_slice(b"null");
            Ok(())
        }
    }
}

/// `[[name, value], ...]`, or `null` (an opaque exchange has no headers).
fn header_pairs(out: &mut Vec<u8>, h: Option<&Vec<(String, String)>>) -> io::Result<()> {
    let Some(h) = h else {
        out.extend_from_slice(b"null");
        return Ok(());
    };
    out.push(b'[');
    for (i, (n, v)) in h.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        string(out, n)?;
        out.push(b',');
        string(out, v)?;
        out.push(b']');
    }
    out.push(b']');
    Ok(())
}

/// A body as the JSON contract has it: UTF-8 text, or base64 with an encoding marker.
pub(crate) fn body_text(body: Option<&Body>) -> (Value, Value) {
    match body {
        None => (Value::Null, Value::Null),
        Some(b) => match std::str::from_utf8(&b.bytes) {
            Ok(text) => (Value::from(text), Value::Null),
            Err(_) => (
                Value::from(base64::engine::general_purpose::STANDARD.encode(&b.bytes)),
                Value::from("base64"),
            ),
        },
    }
}

fn headers(h: &[(String, String)]) -> Value {
    Value::Array(h.iter().map(|(n, v)| json!([n, v])).collect())
}

/// The JSON object for one exchange.
pub(crate) fn to_value(x: &Exchange) -> Value {
    let (request_body, request_body_encoding) = body_text(x.request_body.as_ref());
    let (response_body, response_body_encoding) = body_text(x.response_body.as_ref());
    let opaque = x.method.is_none();
    json!({
        "pid": x.pid,
        "start_unix_ns": x.start_unix_ns,
        "duration_ns": x.duration_ns,
        // Phases in ms, each present only when the records tell it.
        "timings": timings_value(&x.timings),
        "method": x.method,
        "url": x.url_or_origin(),
        "scheme": x.scheme,
        "host": x.host,
        "port": x.port,
        "path": x.path,
        "http_version": x.http_version,
        "status": x.status,
        "request_headers": if opaque { Value::Null } else { headers(&x.request_headers) },
        "response_headers": if opaque { Value::Null } else { headers(&x.response_headers) },
        "request_body": request_body,
        "request_body_encoding": request_body_encoding,
        "response_body": response_body,
        "response_body_encoding": response_body_encoding,
        // The content coding a body was decoded from (it is shown, and was masked,
        // decoded): "gzip", "deflate", "br", or null.
        "request_body_decoded": x.request_body.as_ref().and_then(|b| b.decoded),
        "response_body_decoded": x.response_body.as_ref().and_then(|b| b.decoded),
        "request_body_size": x.request_body_size(),
        "response_body_size": x.response_body_size(),
        "truncated": x.truncated,
        "peer": x.peer.map(|p| p.to_string()),
        "tls": x.tls.as_str(),
        "sni": x.sni,
        "error": x.error,
        "conn_id": x.conn_id,
        "alpn": x.alpn,
        "aws": x.aws.as_ref().map(aws_value),
        // HTTP/2 trailers and HTTP/1.1 chunked trailers ([name, value] pairs), and
        // whether the stream was pushed by the server (HTTP/2 PUSH_PROMISE).
        "response_trailers": if opaque { Value::Null } else { headers(&x.response_trailers) },
        "pushed": x.pushed,
        "grpc": x.grpc.as_ref().map(grpc_value),
    })
}

/// ns as ms, to the microsecond.
pub(crate) fn ms(ns: u64) -> f64 {
    (ns / 1_000) as f64 / 1_000.0
}

/// The `timings` object: the phases the records tell, in ms (`{}` when none).
pub(crate) fn timings_value(t: &Timings) -> Value {
    let mut m = serde_json::Map::new();
    for (name, ns) in t.phases() {
        if let Some(ns) = ns {
            m.insert(name.to_owned(), Value::from(ms(ns)));
        }
    }
    Value::Object(m)
}

/// The `aws` object: what the exchange is as an AWS API call.
pub(crate) fn aws_value(a: &AwsCall) -> Value {
    let mut resource = serde_json::Map::new();
    for (k, v) in &a.resource {
        match resource.get_mut(*k) {
            Some(Value::Array(list)) => list.push(v.clone().into()),
            Some(one) => *one = json!([one.clone(), v]),
            None if *k == "aws.dynamodb.table_names" => {
                resource.insert((*k).to_string(), json!([v]));
            }
            None => {
                resource.insert((*k).to_string(), v.clone().into());
            }
        }
    }
    json!({
        "service": a.service.name(),
        "operation": a.operation,
        "region": a.region,
        "resource": resource,
        "request_id": a.request_id,
        "extended_request_id": a.extended_request_id,
        "message_ids": a.message_ids,
    })
}

/// The `grpc` object: what the exchange is as a gRPC call.
pub(crate) fn grpc_value(g: &GrpcCall) -> Value {
    json!({
        "service": g.service,
        "method": g.method,
        "status": g.status,
        "message": g.message,
        "request_messages": g.request_messages,
        "response_messages": g.response_messages,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::exchange::{sample, Service, TlsKind};

    /// Exchanges that differ in every field the line has: opaque and not, bodies of
    /// text, binary and nothing, escapes and non-ASCII text, every timing phase, IPv6
    /// peers, errors, AWS and gRPC objects.
    pub(crate) fn varied() -> Vec<Exchange> {
        let mut out = vec![sample()];
        let mut x = sample();
        x.request_headers = vec![
            ("Content-Type".into(), "application/json".into()),
            (
                "X-Quote".into(),
                "a \"quoted\" \\ value\twith\u{1} control".into(),
            ),
        ];
        x.response_headers = vec![("Set-Cookie".into(), "é=ü; 日本".into())];
        x.response_trailers = vec![("grpc-status".into(), "0".into())];
        x.request_body = Some(Body {
            bytes: b"{\"a\": 1}\n</script>".to_vec(),
            size: 18,
            truncated: false,
            decoded: None,
        });
        x.response_body = Some(Body {
            bytes: vec![0xff, 0x00, 0x80, b'a'],
            size: 1 << 40,
            truncated: true,
            decoded: Some("gzip"),
        });
        x.truncated = true;
        x.timings = Timings {
            connect_ns: Some(1_234_567),
            tls_ns: Some(999),
            send_ns: Some(0),
            wait_ns: Some(u64::MAX),
            receive_ns: Some(1_000_000_000_001),
        };
        x.peer = Some("[::1]:8443".parse().unwrap());
        x.error = Some("connection reset\n".into());
        x.alpn = Some("h2".into());
        x.http_version = Some("2".into());
        x.pushed = true;
        x.aws = Some(AwsCall {
            service: Service::DynamoDb,
            operation: "BatchGetItem".into(),
            region: Some("eu-west-1".into()),
            resource: vec![
                ("aws.dynamodb.table_names", "a".into()),
                ("aws.dynamodb.table_names", "b".into()),
                ("aws.s3.bucket", "c".into()),
            ],
            request_id: Some("r".into()),
            extended_request_id: None,
            message_ids: vec!["m1".into(), "m2".into()],
        });
        x.grpc = Some(GrpcCall {
            service: "pkg.Svc".into(),
            method: "Get".into(),
            status: Some(5),
            message: Some("not found".into()),
            request_messages: 1,
            response_messages: 0,
        });
        out.push(x.clone());
        let mut opaque = x.clone();
        opaque.method = None;
        opaque.path = None;
        opaque.status = None;
        opaque.tls = TlsKind::Opaque;
        opaque.request_body = None;
        opaque.response_body = None;
        opaque.aws = None;
        opaque.grpc = None;
        out.push(opaque.clone());
        opaque.host = None;
        opaque.port = None;
        opaque.peer = None;
        opaque.sni = None;
        out.push(opaque);
        let mut plain = sample();
        plain.scheme = "http";
        plain.port = Some(8080);
        plain.query = Some("a=1&b=%20".into());
        plain.tls = TlsKind::None;
        plain.status = None;
        plain.request_body = Some(Body::default());
        plain.timings.wait_ns = Some(1_500);
        plain.peer = Some(std::net::SocketAddr::V6(std::net::SocketAddrV6::new(
            "fe80::1".parse().unwrap(),
            80,
            0,
            2,
        )));
        out.push(plain);
        out
    }

    #[test]
    fn line_is_the_contract_object_text() {
        for x in varied() {
            let mut expected = serde_json::to_vec(&to_value(&x)).unwrap();
            expected.push(b'\n');
            let mut line = Vec::new();
            write_line(&x, &mut line).unwrap();
            assert_eq!(
                String::from_utf8(line).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }
}
