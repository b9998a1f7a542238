//! The JSON contract, both ways: `docs/spec.md` lists every field `--format json` writes,
//! and every field it lists is written.
//!
//! The built `tapline show --format json` runs over a spool (written with the real
//! record encoders) whose exchanges exercise every field: plain and TLS, binary and
//! content-coded bodies, an exchange without a response, one AWS API call per
//! service tapline names resources for, and an HTTP/2 connection (a gRPC call with its
//! status in the trailers, a pushed stream, trailers on a plain stream). Every key path of the output (`aws.operation`,
//! `aws.resource["aws.s3.bucket"]`) must be a row of the spec's field tables; every row
//! must be emitted with a value other than `null` by some exchange; every value must have
//! a type the row allows. A failure names the field: add it to `docs/spec.md` (or stop
//! writing it), never to this file.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::h2::{block, F, H2, IN, OUT};
use common::{SpoolWriter, MS};
use serde_json::Value;
use tapline_record as rec;
use tapline_record::{CloseReason, Protocol, TlsLibrary};

/// Header of the spec tables this test reads: first column the key path in backticks,
/// second column the JSON types it may have.
const TABLE_HEADER: &str = "| key path | type | meaning |";

fn spec_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/spec.md")
}

/// A field row of the spec: key path → allowed JSON types (`string`, `integer`,
/// `boolean`, `array`, `object`, `null`).
fn spec_fields(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    const TYPES: [&str; 7] = [
        "string", "integer", "number", "boolean", "array", "object", "null",
    ];
    let mut fields = BTreeMap::new();
    let mut in_table = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line == TABLE_HEADER {
            in_table = true;
            continue;
        }
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        if !in_table || line.starts_with("|--") || line.starts_with("| --") {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // cells[0] is the empty string before the first '|'.
        let (path, types) = (cells[1], cells.get(2).copied().unwrap_or(""));
        let path = path
            .strip_prefix('`')
            .and_then(|p| p.strip_suffix('`'))
            .unwrap_or_else(|| panic!("docs/spec.md:{}: key path not in backticks", n + 1));
        let types: BTreeSet<String> = types.split(" or ").map(|t| t.trim().to_string()).collect();
        for t in &types {
            assert!(
                TYPES.contains(&t.as_str()),
                "docs/spec.md:{}: type {t:?} of `{path}` is none of {TYPES:?}",
                n + 1
            );
        }
        assert!(
            fields.insert(path.to_string(), types).is_none(),
            "docs/spec.md:{}: `{path}` listed twice",
            n + 1
        );
    }
    fields
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// What one key path was seen holding across all exchanges.
#[derive(Default)]
struct Seen {
    types: BTreeSet<&'static str>,
    /// Some exchange gave it a value other than `null`.
    valued: bool,
}

/// Every key path of `v` (objects are descended into; arrays are values), with the
/// types seen. A key that holds a dot itself is written `parent["a.b"]`.
fn collect(prefix: &str, v: &Value, seen: &mut BTreeMap<String, Seen>) {
    let Value::Object(map) = v else { return };
    for (k, child) in map {
        let path = match (prefix.is_empty(), k.contains('.')) {
            (true, false) => k.clone(),
            (true, true) => format!("[{k:?}]"),
            (false, false) => format!("{prefix}.{k}"),
            (false, true) => format!("{prefix}[{k:?}]"),
        };
        let s = seen.entry(path.clone()).or_default();
        s.types.insert(json_type(child));
        s.valued |= !child.is_null();
        collect(&path, child, seen);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip into memory");
    e.finish().expect("gzip into memory")
}

const OK_JSON: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n";

/// One AWS API call on a connection of its own: `X-Amz-Target` (JSON protocol) or
/// `Action=` (query protocol) requests, as the SDKs send them, with request ids in the
/// response.
fn aws_call(w: &mut SpoolWriter, n: u32, host: &str, target: Option<&str>, body: &str, resp: &str) {
    let c = w.conn_id(n);
    let (content_type, target) = match target {
        Some(t) => (
            "application/x-amz-json-1.0",
            format!("X-Amz-Target: {t}\r\n"),
        ),
        None => ("application/x-www-form-urlencoded", String::new()),
    };
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\n{target}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let resp_head = format!(
        "{OK_JSON}x-amzn-RequestId: req-{n}\r\nContent-Length: {}\r\n\r\n",
        resp.len()
    );
    w.tick(MS)
        .open(c, Protocol::Http1, 10 + n as i32, "127.0.0.1:4566")
        .request(c, 0, &head, body.as_bytes())
        .response(c, 0, &resp_head, resp.as_bytes())
        .closed(c);
}

/// One gRPC message: uncompressed, length-prefixed.
fn grpc_message(msg: &[u8]) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    v.extend_from_slice(msg);
    v
}

/// One HTTP/2 connection over TLS (ALPN `h2`), in its own spool file: a gRPC call that
/// ends `NOT_FOUND` in its trailers (`grpc`, `http_version` `"2"`, `response_trailers`,
/// `*_body_decoded` `"grpc"`), a page with trailers of its own, and a stream the
/// server pushed beside it (`pushed`).
fn h2_spool(dir: &Path) {
    const END: u16 = rec::h2_stream_flags::END_STREAM;
    const HEND: u16 = rec::h2_block_flags::END_STREAM;
    let mut c = H2::new(Protocol::TlsPlaintext);
    c.w.tls_info(c.conn, TlsLibrary::OpenSsl, "api.example.com", "h2", 5);
    // One protobuf message: field 1, the string "world".
    let req = grpc_message(b"\x0a\x05world");
    let call = block(&[
        F::Idx(3), // POST
        F::Idx(7), // https
        F::Lit(":path", "/helloworld.Greeter/SayHello"),
        F::Lit(":authority", "api.example.com"),
        F::Lit("content-type", "application/grpc"),
        F::Lit("te", "trailers"),
    ]);
    c.headers(OUT, 1, 0, &call)
        .data(OUT, 1, 0, &req)
        .end(OUT, 1, req.len() as u64, END, 0)
        .headers(
            IN,
            1,
            0,
            &block(&[F::Idx(8), F::Lit("content-type", "application/grpc")]),
        )
        .headers(
            IN,
            1,
            HEND,
            &block(&[
                F::Lit("grpc-status", "5"),
                F::Lit("grpc-message", "no%20such%20thing"),
            ]),
        )
        .end(IN, 1, 0, END, 0);
    let page = |path: &str| {
        block(&[
            F::Idx(2), // GET
            F::Idx(7),
            F::Lit(":path", path),
            F::Lit(":authority", "api.example.com"),
        ])
    };
    c.headers(OUT, 3, HEND, &page("/index.html"))
        .push_promise(3, 2, &page("/style.css"))
        .headers(IN, 3, 0, &block(&[F::Idx(8)]))
        .headers(
            IN,
            2,
            0,
            &block(&[F::Idx(8), F::Lit("content-type", "text/css")]),
        )
        .data(IN, 2, 0, b"p{}")
        .end(IN, 2, 3, END, 0)
        .data(IN, 3, 0, b"<p>")
        .headers(IN, 3, HEND, &block(&[F::Lit("x-checksum", "abc")]))
        .end(IN, 3, 3, END, 0);
    let conn = c.conn;
    c.w.close(conn, CloseReason::Closed, 0, 1000, 1000);
    std::fs::write(dir.join("42-0.tlr"), &c.w.bytes).expect("write spool file");
}

/// A spool whose exchanges, together, give every field of the contract a value.
fn contract_spool(dir: &Path) {
    h2_spool(dir);
    let mut w = SpoolWriter::new(4242);

    // Plain HTTP, binary bodies both ways: `*_body_encoding: "base64"`.
    let c = w.conn_id(1);
    w.open(c, Protocol::Http1, 5, "127.0.0.1:8080")
        .request(
            c,
            0,
            "POST /v1/items?x=1 HTTP/1.1\r\nHost: localhost:8080\r\nContent-Type: application/octet-stream\r\nContent-Length: 4\r\n\r\n",
            b"\xff\x00ab",
        )
        .response(
            c,
            0,
            "HTTP/1.1 201 Created\r\nContent-Type: application/octet-stream\r\nContent-Length: 3\r\n\r\n",
            b"\xfe\x01z",
        )
        .closed(c);

    // TLS read through OpenSSL (`tls`, `sni`, `alpn`), gzip bodies both ways
    // (`*_body_decoded`).
    let sock = w.conn_id(2);
    let plain = w.conn_id(3);
    let req = gzip(br#"{"name":"widget"}"#);
    let resp = gzip(br#"{"id":7}"#);
    // A non-blocking connect 2 ms before the ClientHello, the handshake 3 ms
    // (`timings.connect`, `timings.tls`).
    w.tick(3 * MS)
        .open_started(sock, Protocol::Tls, 7, "127.0.0.1:8443", 2 * MS, 0)
        .tick(3 * MS)
        .open(plain, Protocol::TlsPlaintext, 7, "127.0.0.1:8443")
        .tls_info(
            plain,
            TlsLibrary::OpenSsl,
            "api.example.com",
            "http/1.1",
            7,
        )
        .request(
            plain,
            0,
            &format!(
                "POST /things HTTP/1.1\r\nHost: api.example.com:8443\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                req.len()
            ),
            &req,
        )
        .response(
            plain,
            0,
            &format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                resp.len()
            ),
            &resp,
        )
        .closed(plain)
        .close(sock, CloseReason::Closed, 0, 400, 300);

    // A request that never got its response: `error`.
    let c = w.conn_id(4);
    w.tick(MS)
        .open(c, Protocol::Http1, 6, "127.0.0.1:8080")
        .request(
            c,
            0,
            "GET /slow HTTP/1.1\r\nHost: localhost:8080\r\n\r\n",
            b"",
        )
        .tick(MS)
        .close(c, CloseReason::Error, 104, 50, 0);

    aws_rest_calls(&mut w);

    // The JSON and query protocols, one call per service with resource names. The SQS
    // call produces a message (`message_ids`).
    for (i, (host, target, body, resp)) in AWS_CALLS.iter().enumerate() {
        aws_call(&mut w, 10 + i as u32, host, *target, body, resp);
    }
    std::fs::write(dir.join("4242-0.tlr"), &w.bytes).expect("write spool file");
}

/// The JSON and query protocol calls of [`contract_spool`]: (host, `X-Amz-Target`,
/// request body, response body).
const AWS_CALLS: [(&str, Option<&str>, &str, &str); 9] = [
    (
        "dynamodb.us-east-1.amazonaws.com",
        Some("DynamoDB_20120810.PutItem"),
        r#"{"TableName":"orders","Item":{}}"#,
        "{}",
    ),
    (
        "sqs.us-east-1.amazonaws.com",
        Some("AmazonSQS.SendMessage"),
        r#"{"QueueUrl":"https://sqs.us-east-1.amazonaws.com/123456789012/jobs","QueueName":"jobs","MessageBody":"hi"}"#,
        r#"{"MessageId":"5fea7756-0ea4-451a-a703-a558b933e274"}"#,
    ),
    (
        "sns.us-east-1.amazonaws.com",
        None,
        "Action=CreateTopic&Name=alerts&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Aalerts&TargetArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Aendpoint%2FAPNS%2Fapp%2F1",
        "<CreateTopicResponse/>",
    ),
    (
        "kinesis.us-east-1.amazonaws.com",
        Some("Kinesis_20131202.PutRecord"),
        r#"{"StreamName":"clicks","StreamARN":"arn:aws:kinesis:us-east-1:123456789012:stream/clicks","Data":"eA=="}"#,
        "{}",
    ),
    (
        "events.us-east-1.amazonaws.com",
        Some("AWSEvents.PutEvents"),
        r#"{"Entries":[{"EventBusName":"orders-bus","Source":"app","DetailType":"t","Detail":"{}"}]}"#,
        "{}",
    ),
    (
        "states.us-east-1.amazonaws.com",
        Some("AWSStepFunctions.DescribeExecution"),
        r#"{"stateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:flow","executionArn":"arn:aws:states:us-east-1:123456789012:execution:flow:run-1","activityArn":"arn:aws:states:us-east-1:123456789012:activity:step"}"#,
        "{}",
    ),
    (
        "secretsmanager.us-east-1.amazonaws.com",
        Some("secretsmanager.DescribeSecret"),
        r#"{"SecretId":"app/db"}"#,
        "{}",
    ),
    (
        "ssm.us-east-1.amazonaws.com",
        Some("AmazonSSM.GetParametersByPath"),
        r#"{"Name":"/app/flag","Path":"/app"}"#,
        "{}",
    ),
    (
        "sts.amazonaws.com",
        None,
        "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdeployer",
        "<AssumeRoleResponse/>",
    ),
];

/// The REST calls of [`contract_spool`]. S3: bucket and key from the host and path;
/// `extended_request_id`. Lambda: the function name from the path.
fn aws_rest_calls(w: &mut SpoolWriter) {
    let c = w.conn_id(5);
    w.tick(MS)
        .open(c, Protocol::Http1, 8, "127.0.0.1:4566")
        .request(
            c,
            0,
            "PUT /reports/2024.csv HTTP/1.1\r\nHost: my-bucket.s3.us-east-1.amazonaws.com\r\nContent-Length: 3\r\n\r\n",
            b"a,b",
        )
        .response(
            c,
            0,
            "HTTP/1.1 200 OK\r\nx-amz-request-id: s3-req\r\nx-amz-id-2: s3-ext-id\r\nContent-Length: 0\r\n\r\n",
            b"",
        )
        .closed(c);

    let c = w.conn_id(6);
    w.tick(MS)
        .open(c, Protocol::Http1, 9, "127.0.0.1:4566")
        .request(
            c,
            0,
            "POST /2015-03-31/functions/my-fn/invocations HTTP/1.1\r\nHost: lambda.us-east-1.amazonaws.com\r\nContent-Length: 2\r\n\r\n",
            b"{}",
        )
        .response(
            c,
            0,
            "HTTP/1.1 200 OK\r\nx-amzn-RequestId: lambda-req\r\nContent-Length: 2\r\n\r\n",
            b"{}",
        )
        .closed(c);
}

/// `tapline show --format json` over the contract spool, with the default settings.
fn emitted() -> Vec<Value> {
    let dir = std::env::temp_dir().join(format!("tapline-contract-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    contract_spool(&dir);
    let report = dir.join("report.jsonl");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tapline"));
    cmd.env_remove("LD_PRELOAD");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TAPLINE_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .args(["show", "--format", "json", "--output"])
        .arg(&report)
        .arg(&dir)
        .output()
        .expect("run tapline show");
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
    assert!(
        out.status.success(),
        "tapline show failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn json_fields_are_exactly_the_contract() {
    let spec_text = std::fs::read_to_string(spec_path()).expect("docs/spec.md");
    let spec = spec_fields(&spec_text);
    assert!(
        spec.len() > 20,
        "docs/spec.md: no field tables found (a table starts with `{TABLE_HEADER}`)"
    );
    let lines = emitted();
    assert_eq!(
        lines.len(),
        17,
        "one line per exchange of the contract spool"
    );
    // The HTTP/2 connection's exchanges are there as such (a field valued only by
    // `false` or `[]` elsewhere would pass the checks below without them).
    let h2: Vec<&Value> = lines.iter().filter(|v| v["http_version"] == "2").collect();
    assert_eq!(h2.len(), 3, "{h2:#?}");
    assert!(h2.iter().any(|v| v["pushed"] == true), "{h2:#?}");
    assert!(
        h2.iter()
            .any(|v| v["response_trailers"] == serde_json::json!([["x-checksum", "abc"]])),
        "{h2:#?}"
    );
    let grpc: Vec<&Value> = lines.iter().filter(|v| !v["grpc"].is_null()).collect();
    assert_eq!(grpc.len(), 1, "one gRPC call: {grpc:#?}");
    assert_eq!(
        grpc[0]["grpc"],
        serde_json::json!({"service": "helloworld.Greeter", "method": "SayHello",
            "status": 5, "message": "no such thing", "request_messages": 1,
            "response_messages": 0})
    );
    assert_eq!(grpc[0]["request_body"], "[{\"1\":\"world\"}]");
    assert_eq!(grpc[0]["request_body_decoded"], "grpc");
    let mut seen = BTreeMap::new();
    for v in &lines {
        assert!(v.is_object(), "not an object: {v}");
        collect("", v, &mut seen);
    }

    let undocumented: Vec<&String> = seen.keys().filter(|k| !spec.contains_key(*k)).collect();
    assert!(
        undocumented.is_empty(),
        "the JSON writer emits fields docs/spec.md does not list: {undocumented:?}"
    );
    let never: Vec<&String> = spec
        .keys()
        .filter(|k| !seen.get(*k).is_some_and(|s| s.valued))
        .collect();
    assert!(
        never.is_empty(),
        "docs/spec.md lists fields no exchange of this test gave a value \
         (exercise them here, or drop them from the spec): {never:?}"
    );
    for (path, s) in &seen {
        let allowed = &spec[path];
        let wrong: Vec<&&str> = s.types.iter().filter(|t| !allowed.contains(**t)).collect();
        assert!(
            wrong.is_empty(),
            "`{path}` was written as {wrong:?}; docs/spec.md allows {allowed:?}"
        );
    }
}

/// The parser itself: rows only from the field tables, types checked.
#[test]
fn spec_table_format() {
    let text = "\
intro | not a table

| key path | type | meaning |
|---|---|---|
| `a` | string or null | A |
| `b.c` | integer | B |

| variable | default | meaning |
|---|---|---|
| `X` | 1 | not a field |
";
    let f = spec_fields(text);
    assert_eq!(f.keys().collect::<Vec<_>>(), ["a", "b.c"]);
    assert!(f["a"].contains("null") && f["a"].contains("string"));
    let mut seen = BTreeMap::new();
    collect(
        "",
        &serde_json::json!({"a": null, "r": {"x.y": [1]}}),
        &mut seen,
    );
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        ["a", "r", "r[\"x.y\"]"],
        "dotted keys are bracketed"
    );
    assert!(!seen["a"].valued && seen["r[\"x.y\"]"].valued);
}
