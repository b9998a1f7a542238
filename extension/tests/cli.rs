//! The `tapline` binary end to end, without the capture library: `show` on spool
//! files written by `SpoolWriter`, and `run` with a harmless stand-in library (libc)
//! and a "program" that drops a spool file into `$TAPLINE_SPOOL_DIR` itself.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::SpoolWriter;
use serde_json::Value;
use tapline_record::Protocol;

fn tapline() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tapline"));
    c.env_remove("LD_PRELOAD");
    c
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tapline-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sample_spool(dir: &Path) {
    let mut w = SpoolWriter::new(4242);
    let c = w.conn_id(1);
    w.open(c, Protocol::Http1, 5, "127.0.0.1:8080")
        .request(
            c,
            0,
            "POST /v1/items?x=1 HTTP/1.1\r\nHost: localhost:8080\r\nContent-Length: 4\r\n\r\n",
            b"\xff\x00ab",
        )
        .response(
            c,
            0,
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n",
            b"{\"id\":1}",
        )
        .closed(c)
        .drops(2, 100);
    std::fs::write(dir.join("4242-0.tlr"), &w.bytes).unwrap();
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn show_json_has_exactly_the_spec_fields() {
    let dir = temp_dir("json");
    sample_spool(&dir);
    let out = tapline()
        .args(["show", "--format", "json"])
        .arg(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stderr(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let spec = [
        "pid",
        "start_unix_ns",
        "duration_ns",
        "method",
        "url",
        "scheme",
        "host",
        "port",
        "path",
        "http_version",
        "status",
        "request_headers",
        "response_headers",
        "request_body",
        "request_body_encoding",
        "response_body",
        "response_body_encoding",
        "request_body_size",
        "response_body_size",
        "truncated",
        "peer",
        "tls",
        "sni",
        "error",
    ];
    for k in spec {
        assert!(keys.contains(&k), "missing {k} in {keys:?}");
    }
    for k in &keys {
        assert!(
            spec.contains(k)
                || [
                    "conn_id",
                    "alpn",
                    "aws",
                    "request_body_decoded",
                    "response_body_decoded",
                    "response_trailers",
                    "pushed",
                    "grpc",
                    "timings"
                ]
                .contains(k),
            "unexpected field {k}"
        );
    }
    assert_eq!(v["pid"], 4242);
    assert_eq!(v["method"], "POST");
    assert_eq!(v["url"], "http://localhost:8080/v1/items?x=1");
    assert_eq!(v["path"], "/v1/items");
    assert_eq!(v["port"], 8080);
    assert_eq!(v["http_version"], "1.1");
    assert_eq!(v["status"], 201);
    assert_eq!(
        v["request_headers"][0],
        serde_json::json!(["Host", "localhost:8080"])
    );
    assert_eq!(v["request_body"], "/wBhYg==");
    assert_eq!(v["request_body_encoding"], "base64");
    assert_eq!(v["response_body"], "{\"id\":1}");
    assert_eq!(v["response_body_encoding"], Value::Null);
    assert_eq!(
        (
            v["request_body_size"].as_u64(),
            v["response_body_size"].as_u64()
        ),
        (Some(4), Some(8))
    );
    assert_eq!(v["peer"], "127.0.0.1:8080");
    assert_eq!(v["tls"], "none");
    assert_eq!(v["error"], Value::Null);
    assert_eq!(v["truncated"], false);
}

#[test]
fn show_har_is_har_1_2() {
    let dir = temp_dir("har");
    sample_spool(&dir);
    let har_path = dir.join("out.har");
    let out = tapline()
        .args(["show", "-f", "har", "-o"])
        .arg(&har_path)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let har: Value = serde_json::from_slice(&std::fs::read(&har_path).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    // The footer (drops) goes to stderr, not into the file.
    assert!(
        stderr(&out).contains("2 records (100 bytes) dropped"),
        "{}",
        stderr(&out)
    );
    assert_eq!(har["log"]["version"], "1.2");
    assert_eq!(har["log"]["creator"]["name"], "tapline");
    let e = &har["log"]["entries"][0];
    assert_eq!(e["startedDateTime"], "2024-01-01T00:00:00.000Z");
    assert_eq!(e["request"]["method"], "POST");
    assert_eq!(e["request"]["httpVersion"], "HTTP/1.1");
    assert_eq!(e["request"]["queryString"][0]["name"], "x");
    assert_eq!(e["request"]["bodySize"], 4);
    assert!(e["request"]["postData"]["text"].is_string());
    assert_eq!(e["response"]["status"], 201);
    assert_eq!(e["response"]["statusText"], "Created");
    assert_eq!(e["response"]["content"]["mimeType"], "application/json");
    assert_eq!(e["response"]["content"]["size"], 8);
    assert_eq!(e["serverIPAddress"], "127.0.0.1");
    for t in ["send", "wait", "receive"] {
        assert!(e["timings"][t].as_f64().unwrap() >= 0.0);
    }
    for k in ["cookies", "headers"] {
        assert!(e["request"][k].is_array() && e["response"][k].is_array());
    }
    assert!(e["cache"].is_object());
    assert!(e["response"]["redirectURL"].is_string());
}

#[test]
fn show_table_one_line_per_exchange_and_footer() {
    let dir = temp_dir("table");
    sample_spool(&dir);
    let out = tapline().arg("show").arg(&dir).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let text = stderr(&out);
    assert!(out.status.success(), "{text}");
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("http://")).collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert!(
        rows[0].contains("POST") && rows[0].contains("201") && rows[0].contains("4242"),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("tapline: 2 records"),
        "{text}"
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["run"][..],
        &["run", "--nope", "--", "true"],
        &["show"],
        &["bogus"],
        &[],
    ] {
        let out = tapline()
            .args(args)
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let out = tapline()
        .arg("extension")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("AWS_LAMBDA_RUNTIME_API is not set"));
    assert!(tapline()
        .arg("--version")
        .output()
        .unwrap()
        .status
        .success());
    assert!(tapline().arg("-h").output().unwrap().status.success());
}

/// A library that is safe to preload into anything: the C library itself.
fn stand_in_library() -> Option<PathBuf> {
    [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/aarch64-linux-gnu/libc.so.6",
        "/usr/lib64/libc.so.6",
        "/lib64/libc.so.6",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

#[test]
fn run_passes_status_output_and_environment_through() {
    let Some(lib) = stand_in_library() else {
        eprintln!("no libc found to stand in for libtapline.so; skipping");
        return;
    };
    let dir = temp_dir("run");
    sample_spool(&dir);
    let spool_file = dir.join("4242-0.tlr");
    let script = format!(
        "echo \"out:$LD_PRELOAD\"; cp {} \"$TAPLINE_SPOOL_DIR/\"; echo err >&2; exit 7",
        spool_file.display()
    );
    // The collector is a closed loopback port: the export fails, is reported, and the
    // batch is kept in the outbox of the spool directory named here.
    let outbox_home = temp_dir("outbox");
    let out = tapline()
        .env("TAPLINE_LIB", &lib)
        .env("LD_PRELOAD", "/nonexistent/other.so")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        .env("TAPLINE_SPOOL_DIR", &outbox_home)
        .args([
            "run", "--format", "json", "--otlp", "--", "sh", "-c", &script,
        ])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lib = std::fs::canonicalize(&lib).unwrap();
    assert_eq!(
        stdout.trim(),
        format!("out:{}:/nonexistent/other.so", lib.display())
    );
    let err = stderr(&out);
    assert!(err.contains("\"method\":\"POST\""), "{err}");
    assert!(err.contains("tapline: otlp:"), "{err}");
    let kept = std::fs::read_dir(outbox_home.join("outbox"))
        .map(|d| d.count())
        .unwrap_or(0);
    std::fs::remove_dir_all(&outbox_home).unwrap();
    assert!(kept >= 1, "the failed batch was not kept: {err}");

    let killed = tapline()
        .env("TAPLINE_LIB", stand_in_library().unwrap())
        .args(["run", "--", "sh", "-c", "kill -9 $$"])
        .output()
        .unwrap();
    assert_eq!(killed.status.code(), Some(128 + 9));
}

#[test]
fn run_without_library_says_where_it_looked() {
    let out = tapline()
        .env("TAPLINE_LIB", "/nonexistent/libtapline.so")
        .args(["run", "--", "true"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("/nonexistent/libtapline.so"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn tapline_drops_itself_from_ld_preload() {
    // With libtapline in LD_PRELOAD (here a name that does not exist: ld.so warns and
    // goes on), tapline re-executes itself without it; the run's child then sees only
    // the library tapline adds itself.
    let Some(lib) = stand_in_library() else {
        return;
    };
    let out = tapline()
        .env(
            "LD_PRELOAD",
            "/nonexistent/libtapline.so:/nonexistent/keep.so",
        )
        .env("TAPLINE_LIB", &lib)
        .args(["run", "--", "sh", "-c", "echo \"$LD_PRELOAD\""])
        .output()
        .unwrap();
    let lib = std::fs::canonicalize(&lib).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{}:/nonexistent/keep.so", lib.display())
    );
}

/// `show --records`: every record of the spool, in file order, every field; bytes as
/// text or base64; a connection still open at exit (AT_EXIT, which the old Python
/// dumper did not know) by name.
#[test]
fn show_records_prints_every_record_as_json_lines() {
    let dir = temp_dir("records");
    sample_spool(&dir);
    let mut w = SpoolWriter::new(4243);
    let c = w.conn_id(1);
    w.open(c, Protocol::Http1, 6, "127.0.0.1:8081").close(
        c,
        tapline_record::CloseReason::AtExit,
        0,
        10,
        0,
    );
    std::fs::write(dir.join("4243-0.tlr"), &w.bytes).unwrap();
    let out = tapline()
        .args(["show", "--records"])
        .arg(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let types: Vec<&str> = lines.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "proc_start",
            "conn_open",
            "data",
            "data",
            "msg_end",
            "data",
            "data",
            "msg_end",
            "conn_close",
            "drops",
            "proc_start",
            "conn_open",
            "conn_close"
        ]
    );
    assert!(lines[..10]
        .iter()
        .all(|v| v["file"] == "4242-0.tlr" && v["pid"] == 4242));
    assert_eq!(lines[10]["file"], "4243-0.tlr");
    assert_eq!(lines[10]["index"], 0);
    assert_eq!(lines[12]["index"], 2);
    assert_eq!(lines[1]["protocol"], "http1");
    assert_eq!(lines[1]["peer"]["addr"], "127.0.0.1");
    assert_eq!(lines[1]["peer"]["port"], 8080);
    assert_eq!(lines[2]["dir"], "egress");
    assert_eq!(lines[2]["part"], "head");
    assert!(lines[2]["bytes"]
        .as_str()
        .unwrap()
        .starts_with("POST /v1/items?x=1 "));
    // The request body is not UTF-8: base64, said so.
    assert_eq!(lines[3]["part"], "body");
    assert_eq!(lines[3]["bytes"], "/wBhYg==");
    assert_eq!(lines[3]["bytes_encoding"], "base64");
    assert_eq!(lines[7]["dir"], "ingress");
    assert_eq!(lines[9]["records"], 2);
    assert_eq!(lines[9]["bytes"], 100);
    assert_eq!(lines[12]["reason"], "at_exit");
    assert_eq!(lines[12]["bytes_out"], 10);
    assert!(lines.iter().all(|v| v.get("undecodable").is_none()));
}
