//! What the tests that run real programs under the library share: the library built in
//! the test's own profile, a fresh directory per test, and the request side of the
//! small HTTP/1.1 servers they answer with.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds libtapline.so (same profile as this test) and returns its path.
pub fn library() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-q", "-p", "libtapline", "--lib"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("cargo build libtapline");
    assert!(status.success(), "building libtapline.so failed");
    let lib = profile_dir.join("libtapline.so");
    assert!(lib.exists(), "{} missing", lib.display());
    lib
}

/// An empty directory `tapline-<suite>-<tag>-<pid>` under the system's temporary one.
pub fn temp_dir(suite: &str, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tapline-{suite}-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

/// Reads one request (request line, headers, a `Content-Length` body): its path and
/// body length; `None` once the connection ends.
pub fn read_request(reader: &mut impl BufRead) -> Option<(String, usize)> {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return None;
        }
        if h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some((path, length))
}

/// Runs curl with `args` under the library at `lib`, spooling to `dir` (captured bodies
/// up to `max_body` bytes), and returns every record of its segments in order, encoded
/// as written; `dir` is removed.
pub fn curl_records(lib: &Path, dir: &Path, args: &[String], max_body: &str) -> Vec<Vec<u8>> {
    let status = Command::new("curl")
        .args(args)
        .env("LD_PRELOAD", lib)
        .env("TAPLINE_SPOOL_DIR", dir)
        .env("TAPLINE_MAX_BODY", max_body)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("curl must be installed (scripts/setup)");
    assert!(status.success(), "curl failed: {status}");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("spool dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| tapline::is_segment_name(n))
        .collect();
    names.sort_by_key(|n| {
        let seq = n.trim_end_matches(".tls").rsplit('-').next().unwrap_or("0");
        seq.parse::<u64>().unwrap_or(0)
    });
    assert!(!names.is_empty(), "no segment written");
    let mut records = Vec::new();
    for name in names {
        let seg = tapline::read_segment(&std::fs::read(dir.join(&name)).expect("segment"));
        let mut at = 0;
        while let Ok((_, len)) = tapline_record::parse_record(&seg.frames[at..]) {
            records.push(seg.frames[at..at + len].to_vec());
            at += len;
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    records
}
