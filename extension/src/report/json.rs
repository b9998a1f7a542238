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
    for x in exchanges {
        serde_json::to_writer(&mut *out, &to_value(x))?;
        out.write_all(b"\n")?;
    }
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
