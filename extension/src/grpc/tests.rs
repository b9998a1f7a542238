//! The gRPC stage on exchanges built as the HTTP/2 reader builds them: lower-case
//! header names, status in trailers or in a trailers-only response, framed bodies.

use std::io::Write;

use serde_json::{json, Value};

use super::*;
use crate::budget::Budget;
use crate::exchange::sample as exchange;
use crate::mask::Masker;
use crate::pipeline::Pipeline;

fn framed(flag: u8, msg: &[u8]) -> Vec<u8> {
    let mut v = vec![flag];
    v.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    v.extend_from_slice(msg);
    v
}

fn pb_string(field: u8, s: &[u8]) -> Vec<u8> {
    let mut v = vec![field << 3 | 2, s.len() as u8];
    v.extend_from_slice(s);
    v
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn body(bytes: Vec<u8>) -> Option<Body> {
    Some(Body {
        size: bytes.len() as u64,
        bytes,
        truncated: false,
        decoded: None,
    })
}

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn grpc_exchange(req: Vec<u8>, resp: Vec<u8>, trailers: &[(&str, &str)]) -> Exchange {
    let mut ex = exchange();
    ex.http_version = Some("2".into());
    ex.path = Some("/helloworld.Greeter/SayHello".into());
    ex.request_headers = h(&[
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("grpc-accept-encoding", "identity,deflate,gzip"),
    ]);
    ex.response_headers = h(&[("content-type", "application/grpc")]);
    ex.response_trailers = h(trailers);
    ex.request_body = body(req);
    ex.response_body = body(resp);
    ex
}

fn body_json(b: &Option<Body>) -> Value {
    serde_json::from_slice(&b.as_ref().unwrap().bytes).unwrap()
}

#[test]
fn a_unary_call() {
    let mut ex = grpc_exchange(
        framed(0, &pb_string(1, b"world")),
        framed(0, &pb_string(1, b"Hello world")),
        // grpcio sends an empty grpc-message with every status: no message.
        &[("grpc-status", "0"), ("grpc-message", "")],
    );
    recognise(&mut ex);
    let g = ex.grpc.clone().unwrap();
    assert_eq!(g.name(), "helloworld.Greeter/SayHello");
    assert_eq!((g.status, g.status_name()), (Some(0), Some("OK")));
    assert_eq!((g.request_messages, g.response_messages), (1, 1));
    assert_eq!(ex.error, None);
    assert_eq!(body_json(&ex.request_body), json!([{"1": "world"}]));
    assert_eq!(body_json(&ex.response_body), json!([{"1": "Hello world"}]));
    assert_eq!(ex.response_body.as_ref().unwrap().decoded, Some("grpc"));
    assert_eq!(
        crate::report::json::grpc_value(&g),
        json!({"service": "helloworld.Greeter", "method": "SayHello", "status": 0,
               "message": null, "request_messages": 1, "response_messages": 1})
    );
    // Twice is once.
    let before = ex.clone();
    recognise(&mut ex);
    assert_eq!(ex, before);
}

#[test]
fn a_trailers_only_error_sets_error_with_the_decoded_message() {
    let mut ex = grpc_exchange(framed(0, &pb_string(1, b"x")), vec![], &[]);
    ex.response_headers = h(&[
        ("content-type", "application/grpc"),
        ("grpc-status", "5"),
        ("grpc-message", "no%20such%20thing%3A%20%E2%98%83"),
    ]);
    ex.response_body = None;
    recognise(&mut ex);
    let g = ex.grpc.unwrap();
    assert_eq!(g.status, Some(5));
    assert_eq!(g.message.as_deref(), Some("no such thing: ☃"));
    assert_eq!(g.response_messages, 0);
    assert_eq!(
        ex.error.as_deref(),
        Some("grpc NOT_FOUND: no such thing: ☃")
    );
}

#[test]
fn an_error_without_a_message_and_an_earlier_error_kept() {
    let mut ex = grpc_exchange(vec![], vec![], &[("grpc-status", "14")]);
    recognise(&mut ex);
    assert_eq!(ex.error.as_deref(), Some("grpc UNAVAILABLE"));
    let mut reset = grpc_exchange(vec![], vec![], &[("grpc-status", "1")]);
    reset.error = Some("stream reset: CANCEL".into());
    recognise(&mut reset);
    assert_eq!(reset.error.as_deref(), Some("stream reset: CANCEL"));
    assert_eq!(reset.grpc.unwrap().status_name(), Some("CANCELLED"));
}

#[test]
fn server_streaming_and_a_cut_last_message() {
    let mut resp = Vec::new();
    for i in 0..5u8 {
        let mut m = pb_string(1, format!("item {i}").as_bytes());
        m.extend_from_slice(&[0x10, i]);
        resp.extend(framed(0, &m));
    }
    let whole = resp.len();
    let mut ex = grpc_exchange(framed(0, b""), resp.clone(), &[("grpc-status", "0")]);
    recognise(&mut ex);
    assert_eq!(ex.grpc.as_ref().unwrap().response_messages, 5);
    let v = body_json(&ex.response_body);
    assert_eq!(v[4], json!({"1": "item 4", "2": 4}));
    assert_eq!(body_json(&ex.request_body), json!([{}]));

    // The capture ended inside the last message's string.
    let mut ex = grpc_exchange(vec![], resp[..whole - 4].to_vec(), &[]);
    ex.response_body.as_mut().unwrap().truncated = true;
    ex.response_body.as_mut().unwrap().size = whole as u64;
    recognise(&mut ex);
    let v = body_json(&ex.response_body);
    assert_eq!(v.as_array().unwrap().len(), 5);
    assert_eq!(v[4], json!({}), "a cut field is left out");
    assert!(ex.response_body.as_ref().unwrap().truncated);
    assert_eq!(ex.grpc.unwrap().status, None);
}

#[test]
fn gzip_messages_are_decompressed() {
    let m = pb_string(2, b"compressed hello");
    let mut resp = framed(1, &gzip(&m));
    resp.extend(framed(0, &pb_string(2, b"plain")));
    let mut ex = grpc_exchange(vec![], resp, &[("grpc-status", "0")]);
    ex.response_headers
        .push(("grpc-encoding".into(), "gzip".into()));
    recognise(&mut ex);
    assert_eq!(
        body_json(&ex.response_body),
        json!([{"2": "compressed hello"}, {"2": "plain"}])
    );
    // An unknown coding: the message is not shown.
    let mut ex = grpc_exchange(vec![], framed(1, b"\x00snappy?"), &[]);
    ex.response_headers
        .push(("grpc-encoding".into(), "snappy".into()));
    recognise(&mut ex);
    assert_eq!(body_json(&ex.response_body), json!([null]));
    assert!(ex.response_body.unwrap().truncated);
}

#[test]
fn grpc_json_messages_stay_json() {
    let mut ex = grpc_exchange(framed(0, br#"{"name":"a"}"#), vec![], &[]);
    ex.request_headers[0].1 = "application/grpc+json".into();
    recognise(&mut ex);
    assert_eq!(body_json(&ex.request_body), json!([{"name": "a"}]));
}

#[test]
fn not_grpc_is_left_alone() {
    for ct in [
        "application/json",
        "application/grpc-web+proto",
        "text/plain",
    ] {
        let mut ex = grpc_exchange(framed(0, b"\x0a\x01a"), vec![], &[("grpc-status", "3")]);
        ex.request_headers[0].1 = ct.into();
        ex.response_headers[0].1 = ct.into();
        let before = ex.clone();
        recognise(&mut ex);
        assert_eq!(ex, before, "{ct}");
    }
    // gRPC by content type, but a body that is not framed: kept as it is.
    let mut ex = grpc_exchange(b"\x07junk".to_vec(), vec![], &[]);
    recognise(&mut ex);
    assert_eq!(ex.request_body.unwrap().bytes, b"\x07junk");
    assert_eq!(ex.grpc.unwrap().request_messages, 0);
}

/// A secret in a protobuf string field (whose key is only a number) leaves through no
/// report: the pipeline's gRPC stage decodes the messages first, then the masker masks
/// their values by shape.
#[test]
fn a_secret_in_a_protobuf_field_is_masked_in_every_report() {
    let token = "ghp_R2d2C3poR2d2C3poR2d2C3poR2d2C3po1234";
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg";
    let mut inner = pb_string(1, b"bob");
    inner.extend(pb_string(2, jwt.as_bytes()));
    let mut req = pb_string(1, token.as_bytes());
    req.extend(pb_string(3, &inner));
    let mut ex = grpc_exchange(
        framed(1, &gzip(&req)),
        framed(0, &pb_string(1, b"ok")),
        &[
            ("grpc-status", "16"),
            ("grpc-message", &format!("bad token {token}")),
        ],
    );
    ex.request_headers
        .push(("grpc-encoding".into(), "gzip".into()));
    let masker = Masker::new(crate::mask::DEFAULT_KEY_PATTERN, &[] as &[&str]).unwrap();
    Pipeline::new(masker, Budget::default()).process(std::slice::from_mut(&mut ex));
    assert_eq!(
        body_json(&ex.request_body),
        json!([{"1": "****", "3": {"1": "bob", "2": "****"}}])
    );
    let mut out = Vec::new();
    for format in [
        crate::report::Format::Table,
        crate::report::Format::Json,
        crate::report::Format::Har,
    ] {
        crate::report::write(format, std::slice::from_ref(&ex), &mut out).unwrap();
    }
    let out = String::from_utf8(out).unwrap();
    assert!(
        !out.contains("R2d2C3po") && !out.contains("c2lnbmF0"),
        "{out}"
    );
    assert!(out.contains("helloworld.Greeter/SayHello") && out.contains("UNAUTHENTICATED"));
    assert_eq!(
        ex.error.as_deref(),
        Some("grpc UNAUTHENTICATED: bad token ****")
    );
}

/// Garbage, and gRPC bodies damaged anywhere, through the whole body path: no panic.
/// (`fuzz/fuzz_targets/grpc_messages.rs` explores the same entry with coverage.)
#[test]
fn garbage_and_damaged_bodies_never_panic() {
    let mut state = 0x9E37_79B9_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut good = framed(0, &pb_string(1, b"hello"));
    good.extend(framed(1, &gzip(&pb_string(2, b"zipped"))));
    good.extend(framed(
        0,
        br#"{"a": [1, {"b": "eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.c2ln"}]}"#,
    ));
    for round in 0..1500 {
        let mut data = good.clone();
        match round % 3 {
            0 => {
                let n = (next() % 64) as usize;
                data = (0..n).map(|_| next() as u8).collect();
            }
            1 => {
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % data.len();
                    data[at] = next() as u8;
                }
            }
            _ => data.truncate((next() as usize) % (data.len() + 1)),
        }
        let _ = check_body_bytes(&data);
    }
    // The undamaged body renders (and masks) as expected.
    let out: Value = serde_json::from_slice(&check_body_bytes(&good)).unwrap();
    assert_eq!(out[0], json!({"1": "hello"}));
    assert_eq!(out[1], json!({"2": "zipped"}));
    assert_eq!(out[2], json!("{\"a\": [1, {\"b\": \"****\"}]}"));
}
