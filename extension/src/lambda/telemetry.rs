//! The Telemetry API fallback: `platform.runtimeDone` says an invocation's runtime phase
//! is over when no `Lifecycle` record will (a runtime that does not load libtapline, such
//! as a static Go bootstrap, or a library too old to write one).
//!
//! Lambda POSTs batches of events to an HTTP listener we run inside the sandbox. The
//! destination host must be `sandbox.localdomain`; we listen on the address that name
//! resolves to, and on 127.0.0.1 (with 127.0.0.1 in the URI) where it does not resolve,
//! as in local emulators. Never on all interfaces. Each `runtimeDone` request id is
//! remembered and the extension woken through the wake FIFO, so it waits on one thing.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::api::{call_error, ApiError, ExtensionsClient};
use super::wake::Waker;

const SANDBOX_HOST: &str = "sandbox.localdomain";
/// Request ids remembered (more than enough for the invocations not yet processed).
const REMEMBERED: usize = 256;
/// Largest batch body read.
const MAX_BODY: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub(crate) enum TelemetryError {
    #[error("telemetry listener: {0}")]
    Listen(io::Error),
    #[error("telemetry subscription: {0}")]
    Subscribe(#[from] ApiError),
}

/// Request ids whose runtime phase is over, as the Telemetry API reported them, each
/// with whether its status was `success`.
#[derive(Clone, Default)]
pub(crate) struct RuntimeDone(Arc<Mutex<VecDeque<(String, bool)>>>);

impl RuntimeDone {
    /// `Some(status == "success")` once the invocation's runtimeDone arrived.
    pub(crate) fn succeeded(&self, request_id: &str) -> Option<bool> {
        self.0
            .lock()
            .ok()
            .and_then(|q| q.iter().find(|(id, _)| id == request_id).map(|&(_, ok)| ok))
    }

    fn insert(&self, request_id: (String, bool)) {
        if let Ok(mut q) = self.0.lock() {
            if q.len() >= REMEMBERED {
                q.pop_front();
            }
            q.push_back(request_id);
        }
    }
}

/// The running listener.
pub(crate) struct TelemetryListener {
    pub uri: String,
    pub done: RuntimeDone,
}

impl TelemetryListener {
    /// Binds (port chosen by the system; 9001 is Lambda's) and serves in a thread.
    pub(crate) fn start(waker: Waker) -> Result<Self, TelemetryError> {
        let (listener, host) = bind().map_err(TelemetryError::Listen)?;
        let port = listener
            .local_addr()
            .map_err(TelemetryError::Listen)?
            .port();
        let done = RuntimeDone::default();
        let shared = (done.clone(), Arc::new(waker));
        std::thread::Builder::new()
            .name("tapline-telemetry".into())
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    let (done, waker) = (shared.0.clone(), shared.1.clone());
                    let _ = std::thread::Builder::new()
                        .name("tapline-telemetry-conn".into())
                        .spawn(move || serve(conn, &done, &waker));
                }
            })
            .map_err(TelemetryError::Listen)?;
        Ok(TelemetryListener {
            uri: format!("http://{host}:{port}/"),
            done,
        })
    }

    /// `PUT /2022-07-01/telemetry` for platform events, small buffering so that
    /// `runtimeDone` arrives promptly.
    pub(crate) fn subscribe(&self, client: &ExtensionsClient) -> Result<(), TelemetryError> {
        let body = serde_json::json!({
            "schemaVersion": "2022-07-01",
            "types": ["platform"],
            "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
            "destination": {"protocol": "HTTP", "URI": self.uri},
        });
        client
            .agent()
            .put(&format!(
                "http://{}/2022-07-01/telemetry",
                client.runtime_api()
            ))
            .set(
                "Lambda-Extension-Identifier",
                client.identifier().unwrap_or(""),
            )
            .set("Content-Type", "application/json")
            .timeout(Duration::from_secs(2))
            .send_string(&body.to_string())
            .map_err(|e| TelemetryError::Subscribe(call_error("telemetry subscribe", e)))?;
        Ok(())
    }
}

/// The `sandbox.localdomain` address when it resolves, else 127.0.0.1.
fn bind() -> io::Result<(TcpListener, String)> {
    let sandbox: Option<IpAddr> = (SANDBOX_HOST, 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(|a| a.ip());
    if let Some(ip) = sandbox {
        if let Ok(l) = TcpListener::bind(SocketAddr::new(ip, 0)) {
            return Ok((l, SANDBOX_HOST.to_string()));
        }
    }
    let l = TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))?;
    Ok((l, "127.0.0.1".to_string()))
}

/// HTTP/1.1 requests on one connection (keep-alive), each answered 200.
fn serve(conn: TcpStream, done: &RuntimeDone, waker: &Waker) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(300)));
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut input = BufReader::new(conn);
    while let Some(body) = read_request(&mut input) {
        let ids = runtime_done_ids(&body);
        let woke = !ids.is_empty();
        for id in ids {
            done.insert(id);
        }
        if woke {
            waker.wake();
        }
        if out
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

/// Reads one request's body (`Content-Length` or chunked); `None` at EOF or on garbage.
fn read_request(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut line = String::new();
    let (mut len, mut chunked) = (0usize, false);
    let mut first = true;
    loop {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if first {
            first = false;
            continue;
        }
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("content-length") {
                len = v.parse().ok()?;
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.to_ascii_lowercase().contains("chunked");
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).ok()?;
            let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
            if size == 0 {
                line.clear();
                r.read_line(&mut line).ok()?;
                break;
            }
            if body.len() + size > MAX_BODY {
                return None;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..]).ok()?;
            line.clear();
            r.read_line(&mut line).ok()?;
        }
    } else {
        if len > MAX_BODY {
            return None;
        }
        body.resize(len, 0);
        r.read_exact(&mut body).ok()?;
    }
    Some(body)
}

/// The request ids of the `platform.runtimeDone` events of one batch, each with whether
/// its status was `success`.
pub(crate) fn runtime_done_ids(body: &[u8]) -> Vec<(String, bool)> {
    let Ok(Value::Array(events)) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    events
        .iter()
        .filter(|e| e.get("type").and_then(Value::as_str) == Some("platform.runtimeDone"))
        .filter_map(|e| {
            let id = e.pointer("/record/requestId").and_then(Value::as_str)?;
            let ok = e.pointer("/record/status").and_then(Value::as_str) == Some("success");
            Some((id.to_string(), ok))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_done_from_a_batch() {
        let batch = br#"[
          {"time":"2022-10-12T00:00:15.064Z","type":"platform.start","record":{"requestId":"a","version":"$LATEST"}},
          {"time":"2022-10-12T00:00:15.120Z","type":"platform.runtimeDone","record":{"requestId":"a","status":"success","metrics":{"durationMs":56.0}}},
          {"time":"2022-10-12T00:00:16.000Z","type":"platform.runtimeDone","record":{"requestId":"b","status":"timeout"}}
        ]"#;
        assert_eq!(
            runtime_done_ids(batch),
            vec![("a".to_string(), true), ("b".to_string(), false)]
        );
        assert!(runtime_done_ids(b"{}").is_empty());
        assert!(runtime_done_ids(b"not json").is_empty());
    }

    #[test]
    fn reads_content_length_and_chunked_requests() {
        let wire = b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n";
        let mut r = BufReader::new(&wire[..]);
        assert_eq!(read_request(&mut r).unwrap(), b"[]");
        assert_eq!(read_request(&mut r).unwrap(), b"[1,2]");
        assert!(read_request(&mut r).is_none());
    }
}
