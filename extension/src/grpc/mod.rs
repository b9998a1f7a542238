//! gRPC on top of HTTP/2 exchanges (`content-type: application/grpc`, `+proto`,
//! `+json`): which call it was (`/pkg.Service/Method`), how it ended (`grpc-status` and
//! `grpc-message`, from the trailers or a trailers-only response), and its messages.
//!
//! The bodies are rewritten into what a person can read: the length-prefixed messages
//! are split ([`frame`]), a compressed one (`grpc-encoding: gzip`, `deflate`) is
//! decompressed, and each is decoded without a schema ([`protobuf`]) — or, for `+json`,
//! kept as its JSON text. The body becomes a JSON array with one element per message
//! (`decoded: "grpc"`). This is the pipeline's `RecogniseGrpc` stage, before `Mask`:
//! the masker then sees JSON text, and its value-shape rules (`mask/shapes.rs`) cover
//! the field-numbered values that no key rule can.

mod frame;
mod protobuf;

use std::io::Read;

use serde_json::Value;

use crate::exchange::{grpc_status_name, Body, Exchange, GrpcCall};
use crate::mask::shapes;
use crate::text::{header, percent_decode};

/// Most bytes one body's messages are decompressed to, all messages together.
const DECOMPRESSED_MAX: usize = 1 << 20;

/// How a gRPC content type says messages are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Codec {
    Proto,
    Json,
}

/// `application/grpc`, `application/grpc+proto`, `application/grpc+json` (any
/// parameters); not `application/grpc-web`, whose framing differs.
fn codec(content_type: &str) -> Option<Codec> {
    let ct = content_type.trim().to_ascii_lowercase();
    let ct = ct.split(';').next().unwrap_or("").trim();
    match ct.strip_prefix("application/grpc")? {
        "" | "+proto" => Some(Codec::Proto),
        "+json" => Some(Codec::Json),
        // Other `+subtype`s are opaque to us, but still gRPC calls.
        s if s.starts_with('+') => Some(Codec::Proto),
        _ => None,
    }
}

/// The pipeline stage: [`recognise`] over a batch.
pub(crate) fn recognise_all(exchanges: &mut [Exchange]) {
    for ex in exchanges {
        recognise(ex);
    }
}

/// Recognises a gRPC call and fills `ex.grpc`; rewrites its bodies into decoded
/// messages; a status other than 0 becomes `ex.error` (unless the exchange already has
/// one: a reset stream says more). Does nothing to other exchanges, nor twice.
pub(crate) fn recognise(ex: &mut Exchange) {
    if ex.grpc.is_some() {
        return;
    }
    let ct = header(&ex.request_headers, "content-type")
        .or_else(|| header(&ex.response_headers, "content-type"));
    let Some(codec) = ct.and_then(codec) else {
        return;
    };
    let path = ex.path.as_deref().unwrap_or("");
    let trimmed = path.trim_start_matches('/');
    let (service, method) = match trimmed.rsplit_once('/') {
        Some((s, m)) => (s.to_string(), m.to_string()),
        None => (trimmed.to_string(), String::new()),
    };
    // Trailers, or a trailers-only response (status in the one header block).
    let status_header = |name: &str| {
        header(&ex.response_trailers, name).or_else(|| header(&ex.response_headers, name))
    };
    let status = status_header("grpc-status").and_then(|s| s.trim().parse::<u32>().ok());
    // An empty `grpc-message` (grpcio sends one with every status) is no message.
    let message = status_header("grpc-message")
        .filter(|m| !m.is_empty())
        .map(|m| {
            let m = percent_decode(m, false);
            shapes::mask_str(&m).unwrap_or(m)
        });
    let req_coding = header(&ex.request_headers, "grpc-encoding").map(str::to_ascii_lowercase);
    let resp_coding = header(&ex.response_headers, "grpc-encoding").map(str::to_ascii_lowercase);
    let request_messages = ex
        .request_body
        .as_mut()
        .map_or(0, |b| render_body(b, codec, req_coding.as_deref()));
    let response_messages = ex
        .response_body
        .as_mut()
        .map_or(0, |b| render_body(b, codec, resp_coding.as_deref()));
    if let (Some(code), None) = (status.filter(|&c| c != 0), &ex.error) {
        ex.error = Some(match message.as_deref().filter(|m| !m.is_empty()) {
            Some(m) => format!("grpc {}: {m}", grpc_status_name(code)),
            None => format!("grpc {}", grpc_status_name(code)),
        });
    }
    ex.grpc = Some(GrpcCall {
        service,
        method,
        status,
        message,
        request_messages,
        response_messages,
    });
}

/// Rewrites a body of length-prefixed messages into a JSON array of decoded messages;
/// returns how many messages it held. A body that is not framed as gRPC stays as it is.
fn render_body(body: &mut Body, codec: Codec, coding: Option<&str>) -> u64 {
    if body.decoded.is_some() || body.bytes.is_empty() {
        return 0;
    }
    let Ok(messages) = frame::split(&body.bytes) else {
        return 0;
    };
    let mut budget = DECOMPRESSED_MAX;
    let mut rendered: Vec<Value> = Vec::with_capacity(messages.len());
    let mut cut = false;
    for m in &messages {
        let (bytes, complete) = if m.compressed {
            match decompress(m.bytes, coding, budget) {
                Some((b, complete)) => (b, complete && !m.cut),
                None => {
                    // A coding we cannot read: the message is not shown (masking the
                    // coded bytes would let their secrets through).
                    rendered.push(Value::Null);
                    cut = true;
                    continue;
                }
            }
        } else {
            (m.bytes.to_vec(), !m.cut)
        };
        budget = budget.saturating_sub(bytes.len());
        cut |= !complete;
        rendered.push(match codec {
            Codec::Proto => protobuf::to_json(&bytes, !complete),
            Codec::Json => match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) => v,
                // Cut or not JSON: the text as a string (the masker's JSON scanner
                // follows JSON held in strings).
                Err(_) => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
            },
        });
    }
    let count = messages.len() as u64;
    body.bytes = serde_json::to_vec(&Value::Array(rendered)).unwrap_or_default();
    body.decoded = Some("grpc");
    body.truncated |= cut;
    count
}

/// A compressed message decoded with `coding`, as far as it goes: (bytes, complete).
fn decompress(b: &[u8], coding: Option<&str>, max: usize) -> Option<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let r: Box<dyn Read + '_> = match coding? {
        "gzip" => Box::new(flate2::read::MultiGzDecoder::new(b)),
        "deflate" => Box::new(flate2::read::ZlibDecoder::new(b)),
        "identity" => Box::new(b),
        _ => return None,
    };
    let mut r = r.take(max as u64 + 1);
    match r.read_to_end(&mut out) {
        Ok(_) if out.len() > max => {
            out.truncate(max);
            Some((out, false))
        }
        Ok(_) => Some((out, true)),
        Err(_) if !out.is_empty() => Some((out, false)),
        Err(_) => None,
    }
}

/// Runs arbitrary bytes through everything this module does to a body — split, gzip,
/// protobuf and JSON decoding, then masking (the pipeline's `RecogniseGrpc` and `Mask`
/// stages) — as request and response, whole and cut. The fuzz target
/// (`fuzz/fuzz_targets/grpc_messages.rs`, through `crate::check_grpc_body_bytes`) and
/// the garbage test call this:
/// whatever the bytes, it must not panic. Returns the first rendering of the body
/// (`application/grpc`, gzip, whole).
pub(crate) fn check_body_bytes(data: &[u8]) -> Vec<u8> {
    static MASKER: std::sync::OnceLock<crate::mask::Masker> = std::sync::OnceLock::new();
    let masker = MASKER.get_or_init(|| {
        crate::mask::Masker::new(crate::mask::DEFAULT_KEY_PATTERN, &[] as &[&str])
            .unwrap_or_else(|_| unreachable!("the default pattern compiles"))
    });
    let mut first = None;
    for (ct, coding, truncated) in [
        ("application/grpc", "gzip", false),
        ("application/grpc+json", "identity", true),
        ("application/grpc+proto", "deflate", true),
    ] {
        let body = Body {
            bytes: data.to_vec(),
            size: data.len() as u64 + u64::from(truncated),
            truncated,
            decoded: None,
        };
        let headers = vec![
            ("content-type".to_string(), ct.to_string()),
            ("grpc-encoding".to_string(), coding.to_string()),
        ];
        let mut ex = Exchange {
            pid: 1,
            conn_id: 1,
            seq: 1,
            start_unix_ns: 0,
            duration_ns: 0,
            timings: crate::exchange::Timings::default(),
            method: Some("POST".into()),
            scheme: "http",
            host: Some("127.0.0.1".into()),
            port: Some(50051),
            path: Some("/pkg.Service/Method".into()),
            query: None,
            http_version: Some("2".into()),
            status: Some(200),
            request_headers: headers.clone(),
            response_headers: headers,
            response_trailers: vec![("grpc-status".into(), "0".into())],
            pushed: false,
            request_body: Some(body.clone()),
            response_body: Some(body),
            request_wire_bytes: 0,
            response_wire_bytes: 0,
            truncated: false,
            peer: None,
            tls: crate::exchange::TlsKind::None,
            sni: None,
            alpn: None,
            error: None,
            aws: None,
            grpc: None,
            runtime_api: false,
        };
        recognise(&mut ex);
        masker.mask(&mut ex);
        let _ = protobuf::decode(data, truncated);
        first.get_or_insert(ex.response_body.map(|b| b.bytes).unwrap_or_default());
    }
    first.unwrap_or_default()
}

#[cfg(test)]
mod tests;
