//! Exports a handful of exchanges with planted secrets through the whole pipeline
//! (recognise → mask → budget, then OTLP), for checking by hand against a collector such as
//! `tests/servers/otlp_receiver.py`:
//!
//! ```text
//! cargo run -p tapline --example otlp_export -- http://127.0.0.1:PORT [SPOOL_DIR]
//! ```
//!
//! The endpoint is a base URL (`/v1/traces` is appended); every `OTEL_*` variable
//! applies. Exit status 0 if the batch was delivered, 1 if not (kept in
//! `SPOOL_DIR/outbox` when given).

use std::net::SocketAddr;

use tapline::{Body, Exchange, OtlpExporter, Outbox, Pipeline, Resource, TlsKind};

fn exchange(method: &str, host: &str, path: &str, status: Option<u16>) -> Exchange {
    Exchange {
        pid: std::process::id(),
        conn_id: 1,
        seq: 0,
        start_unix_ns: 1_700_000_000_000_000_000,
        duration_ns: 12_345_678,
        timings: tapline::Timings::default(),
        method: Some(method.into()),
        scheme: "https",
        host: Some(host.into()),
        port: Some(443),
        path: Some(path.into()),
        query: None,
        http_version: Some("1.1".into()),
        status,
        request_headers: vec![],
        response_headers: vec![],
        response_trailers: Vec::new(),
        pushed: false,
        request_body: None,
        response_body: None,
        request_wire_bytes: 300,
        response_wire_bytes: 900,
        truncated: false,
        peer: "127.0.0.1:443".parse::<SocketAddr>().ok(),
        tls: TlsKind::OpenSsl,
        alpn: None,
        sni: Some(host.into()),
        error: None,
        aws: None,
        grpc: None,
        runtime_api: false,
    }
}

fn body(text: &str, size: u64) -> Option<Body> {
    Some(Body {
        bytes: text.as_bytes().to_vec(),
        size,
        truncated: size as usize > text.len(),
        decoded: None,
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let endpoint = args.next();
    let spool = args.next();

    let mut a = exchange("POST", "api.example.com", "/v1/login", Some(200));
    a.query = Some("api_key=PLANTED-QUERY-KEY&page=2".into());
    a.request_headers = vec![
        ("Authorization".into(), "Bearer PLANTED-BEARER-TOKEN".into()),
        (
            "Cookie".into(),
            "session=PLANTED-SESSION-COOKIE; theme=dark".into(),
        ),
        ("Content-Type".into(), "application/json".into()),
    ];
    a.request_body = body(
        r#"{"user":{"profile":{"password":"PLANTED-DEEP-PASSWORD"}},"n":1}"#,
        64,
    );
    a.response_headers = vec![("Content-Type".into(), "application/json".into())];
    // cut at the size limit in the middle of the secret
    a.response_body = body(r#"{"ok":true,"access_token":"PLANTED-TRUNC"#, 4096);

    let mut b = exchange("GET", "bucket.s3.amazonaws.com", "/key.txt", Some(403));
    b.request_headers = vec![(
        "Authorization".into(),
        "AWS4-HMAC-SHA256 Credential=AKIAPLANTEDKEYID/20240101/us-east-1/s3/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature=PLANTEDSIGV4SIGNATURE"
            .into(),
    )];

    let mut c = exchange("POST", "sts.amazonaws.com", "/", Some(200));
    c.request_body = body("Action=AssumeRole&PLANTED-STS-BODY=1", 36);

    let mut d = exchange("GET", "api.example.com", "/slow", None);
    d.error = Some("no response".into());

    let mut e = exchange("GET", "opaque.example.com", "/", None);
    (e.method, e.path, e.http_version, e.tls) = (None, None, None, TlsKind::Opaque);

    let mut exchanges = vec![a, b, c, d, e];
    let pipeline = Pipeline::from_env().expect("mask config");
    let outcome = pipeline.process(&mut exchanges);
    eprintln!("budget: {outcome:?}");
    let mut dump = format!("{exchanges:?}");
    for ex in &exchanges {
        for b in [&ex.request_body, &ex.response_body].into_iter().flatten() {
            dump.push_str(&String::from_utf8_lossy(&b.bytes));
        }
    }
    let left = dump.matches("PLANTED").count() + dump.matches("AKIA").count();
    eprintln!("planted secrets left after masking: {left}");
    if left > 0 {
        eprintln!("{dump}");
        std::process::exit(2);
    }

    let mut exporter = OtlpExporter::from_env(endpoint.as_deref()).expect("otlp config");
    if let Some(dir) = spool {
        exporter = exporter.with_outbox(Outbox::new(std::path::Path::new(&dir)));
    }
    eprintln!(
        "exporting {} spans to {} ({:?})",
        exchanges.len(),
        exporter.config().endpoint,
        exporter.config().encoding
    );
    match exporter.export(&exchanges, &Resource::from_env("otlp_export")) {
        Ok(o) => println!("{o:?}"),
        Err(e) => {
            println!("error: {e}");
            std::process::exit(1);
        }
    }
}
