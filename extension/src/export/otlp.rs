//! The OTLP/HTTP trace exporter: configuration from the standard `OTEL_*` variables,
//! one blocking POST per batch over `ureq` + rustls, bounded retries, and the outbox
//! for what could not be sent.
//!
//! Why blocking and bounded: the CLI exports once at exit, the Lambda extension once per
//! invocation while the invocation is still billed; neither has work to overlap, and both
//! need a hard ceiling on the time an unreachable collector can cost
//! ([`OtlpConfig::max_elapsed`] covers the outbox and the new batch together). A batch
//! that is not delivered in that time goes to the [`Outbox`] and is retried first on the
//! next export.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::config::tls_config;
pub(crate) use super::config::OtlpConfig;
use super::encode::{parse_partial_success, Encoding};
pub(crate) use super::error::ExportError;
use super::outbox::Outbox;
use super::resource::Resource;
use super::span::SpanBatch;
use crate::exchange::Exchange;

/// How much of a response body is read (partial success, error text).
const MAX_RESPONSE: u64 = 64 * 1024;

/// What a successful [`OtlpExporter::export`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportOutcome {
    /// Spans in the batch just sent.
    pub spans: usize,
    /// HTTP attempts it took.
    pub attempts: u32,
    /// The collector's `partial_success`: spans it rejected, and why.
    pub rejected_spans: i64,
    pub partial_message: Option<String>,
    /// Earlier batches sent from the outbox first.
    pub outbox_sent: usize,
    /// Outbox batches the collector refused for good (400, 413, ...), now deleted.
    pub outbox_refused: usize,
}

/// What to do about a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Disposition {
    /// Try again now (after a pause): 429, 502–504, transport errors.
    Retry,
    /// Not now, but keep the batch: the configuration may be fixed (401, 403, 404).
    Keep,
    /// The collector will never take this payload (400, 413, 415, ...).
    Refused,
}

struct Failure {
    error: ExportError,
    disposition: Disposition,
}

struct Sent {
    attempts: u32,
    partial: Option<(i64, String)>,
}

/// Sends span batches to an OTLP/HTTP collector.
pub struct OtlpExporter {
    config: OtlpConfig,
    agent: ureq::Agent,
    outbox: Option<Outbox>,
}

impl OtlpExporter {
    /// [`OtlpConfig::from_env`] and [`OtlpExporter::new`].
    pub fn from_env(override_endpoint: Option<&str>) -> Result<Self, ExportError> {
        Self::new(OtlpConfig::from_env(override_endpoint)?)
    }

    pub fn new(config: OtlpConfig) -> Result<Self, ExportError> {
        // Per operation, not an overall deadline per request: ureq checks a request
        // deadline before every read, so a process stopped mid-export (a frozen Lambda
        // sandbox) would fail with a timeout after the thaw although the collector's
        // answer is waiting in the socket — and the batch, already delivered, would be
        // kept and sent again. A socket timeout only counts time spent waiting.
        //
        // No pooled connections: ureq (2.x) sets the socket timeouts when it connects
        // and clears them when a connection goes back to its pool, so a request on a
        // pooled connection would wait on a stalled collector for as long as it stalls
        // (seen: 5 s of a 5 s stall, with Next held that long). A fresh connection per
        // request always carries them.
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(config.timeout)
            .timeout_read(config.timeout)
            .timeout_write(config.timeout)
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .redirects(0)
            .user_agent(concat!("tapline/", env!("CARGO_PKG_VERSION")));
        if config.endpoint.starts_with("https://") {
            builder = builder.tls_config(Arc::new(tls_config(&config.ca_files)?));
        }
        Ok(OtlpExporter {
            agent: builder.build(),
            config,
            outbox: None,
        })
    }

    /// Keeps batches that cannot be sent in `outbox`, and sends its batches first.
    pub fn with_outbox(mut self, outbox: Outbox) -> Self {
        self.outbox = Some(outbox);
        self
    }

    pub fn config(&self) -> &OtlpConfig {
        &self.config
    }

    pub fn outbox(&self) -> Option<&Outbox> {
        self.outbox.as_ref()
    }

    /// Exports (already masked) exchanges as one batch of CLIENT spans, each its own trace.
    pub fn export(
        &self,
        exchanges: &[Exchange],
        resource: &Resource,
    ) -> Result<ExportOutcome, ExportError> {
        let mut batch = SpanBatch::new(resource.clone());
        batch.add_exchanges(exchanges);
        self.export_batch(&batch)
    }

    /// Sends the outbox's batches, oldest first, then `batch`. On failure the batch is
    /// kept in the outbox (when there is one) and the error says where:
    /// [`ExportError::Deferred`].
    pub fn export_batch(&self, batch: &SpanBatch) -> Result<ExportOutcome, ExportError> {
        let deadline = Instant::now() + self.config.max_elapsed;
        let mut outcome = ExportOutcome {
            spans: batch.len(),
            ..Default::default()
        };
        let down = self.flush_outbox_until(deadline, &mut outcome)?;
        if batch.is_empty() {
            // Nothing new, but kept batches that could not go out are worth saying.
            return match down {
                Some(f) => Err(f.error),
                None => Ok(outcome),
            };
        }
        let payload = batch.encode(self.config.encoding);
        let result = match down {
            Some(f) => Err(f),
            None => self.send(&payload, self.config.encoding, deadline),
        };
        match result {
            Ok(sent) => {
                outcome.attempts = sent.attempts;
                if let Some((n, msg)) = sent.partial {
                    log_partial(n, &msg);
                    outcome.rejected_spans = n;
                    outcome.partial_message = Some(msg).filter(|m| !m.is_empty());
                }
                Ok(outcome)
            }
            Err(f) => match (&self.outbox, f.disposition) {
                (Some(ob), Disposition::Retry | Disposition::Keep) => {
                    let kept = ob.put(&payload, self.config.encoding)?;
                    if kept.dropped > 0 {
                        eprintln!(
                            "tapline: otlp: outbox full, {} oldest batch(es) dropped",
                            kept.dropped
                        );
                    }
                    Err(ExportError::Deferred {
                        cause: Box::new(f.error),
                        path: kept.path,
                    })
                }
                _ => Err(f.error),
            },
        }
    }

    /// Sends what the outbox holds (e.g. at shutdown), within `max_elapsed`. Returns how
    /// many batches went out.
    pub fn flush_outbox(&self) -> Result<usize, ExportError> {
        let mut outcome = ExportOutcome::default();
        let deadline = Instant::now() + self.config.max_elapsed;
        match self.flush_outbox_until(deadline, &mut outcome)? {
            Some(f) => Err(f.error),
            None => Ok(outcome.outbox_sent),
        }
    }

    /// `Some(failure)` if the collector is not taking batches now.
    fn flush_outbox_until(
        &self,
        deadline: Instant,
        outcome: &mut ExportOutcome,
    ) -> Result<Option<Failure>, ExportError> {
        let Some(ob) = &self.outbox else {
            return Ok(None);
        };
        for entry in ob.pending()? {
            let payload = match ob.read(&entry) {
                Ok(p) => p,
                // Taken by a concurrent exporter, or unreadable: nothing to send.
                Err(_) => continue,
            };
            match self.send(&payload, entry.encoding, deadline) {
                Ok(sent) => {
                    ob.remove(&entry)?;
                    outcome.outbox_sent += 1;
                    if let Some((n, msg)) = sent.partial {
                        log_partial(n, &msg);
                    }
                }
                Err(f) if f.disposition == Disposition::Refused => {
                    eprintln!(
                        "tapline: otlp: collector refused kept batch {}: {}; deleted",
                        entry.path.display(),
                        f.error
                    );
                    ob.remove(&entry)?;
                    ob.count_dropped(1)?;
                    outcome.outbox_refused += 1;
                }
                Err(f) => return Ok(Some(f)),
            }
        }
        Ok(None)
    }

    /// One payload, with retries, until `deadline`.
    fn send(&self, payload: &[u8], encoding: Encoding, deadline: Instant) -> Result<Sent, Failure> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Failure {
                    error: ExportError::Transport {
                        message: "export deadline passed".into(),
                        attempts: attempts - 1,
                    },
                    disposition: Disposition::Retry,
                });
            }
            let mut req = self
                .agent
                .post(&self.config.endpoint)
                .set("Content-Type", encoding.content_type());
            for (k, v) in &self.config.headers {
                req = req.set(k, v);
            }
            let (failure, retry_after) = match req.send_bytes(payload) {
                Ok(resp) => {
                    let body = read_body(resp);
                    return Ok(Sent {
                        attempts,
                        partial: parse_partial_success(&body, encoding),
                    });
                }
                Err(ureq::Error::Status(status, resp)) => {
                    let retry_after = resp
                        .header("Retry-After")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = String::from_utf8_lossy(&read_body(resp)).into_owned();
                    let disposition = match status {
                        429 | 502 | 503 | 504 => Disposition::Retry,
                        401 | 403 | 404 | 407 | 408 => Disposition::Keep,
                        _ => Disposition::Refused,
                    };
                    let error = ExportError::Status {
                        status,
                        body: body.chars().take(512).collect(),
                        attempts,
                    };
                    (Failure { error, disposition }, retry_after)
                }
                Err(ureq::Error::Transport(t)) => {
                    let error = ExportError::Transport {
                        message: t.to_string(),
                        attempts,
                    };
                    let disposition = Disposition::Retry;
                    (Failure { error, disposition }, None)
                }
            };
            if failure.disposition != Disposition::Retry || attempts >= self.config.max_attempts {
                return Err(failure);
            }
            let wait = retry_after.unwrap_or_else(|| backoff(attempts));
            if Instant::now() + wait >= deadline {
                return Err(failure);
            }
            thread::sleep(wait);
        }
    }
}

/// 200 ms, 400 ms, 800 ms, ... (capped at 5 s), with up to 25 % jitter.
fn backoff(attempt: u32) -> Duration {
    let base = 200u64 << attempt.saturating_sub(1).min(5);
    let base = base.min(5000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_millis(base + u64::from(nanos) % (base / 4 + 1))
}

fn read_body(resp: ureq::Response) -> Vec<u8> {
    use std::io::Read;
    let mut body = Vec::new();
    // A body we cannot read is an empty one: the status already said what matters.
    let _ = resp.into_reader().take(MAX_RESPONSE).read_to_end(&mut body);
    body
}

fn log_partial(rejected: i64, message: &str) {
    eprintln!("tapline: otlp: collector rejected {rejected} span(s): {message}");
}

/// rustls with the platform's roots plus the configured CA files.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::sample as exchange;
    use crate::export::outbox::tests::TempDir;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::path::PathBuf;

    const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/export/testdata");

    struct Reply {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    }

    fn ok() -> Reply {
        Reply {
            status: 200,
            headers: vec![],
            body: b"{}".to_vec(),
        }
    }

    #[derive(Debug)]
    struct Received {
        path: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Received {
        fn header(&self, name: &str) -> Option<&str> {
            crate::text::header(&self.headers, name)
        }
    }

    /// A one-request-per-connection HTTP/1.1 server on 127.0.0.1 that answers with
    /// `replies` in order, then returns what it received.
    fn serve(
        replies: Vec<Reply>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> (u16, thread::JoinHandle<Vec<Received>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = thread::spawn(move || {
            let mut got = Vec::new();
            for reply in replies {
                let (tcp, _) = listener.accept().unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                match &tls {
                    Some(cfg) => {
                        let conn = rustls::ServerConnection::new(cfg.clone()).unwrap();
                        let mut s = rustls::StreamOwned::new(conn, tcp);
                        got.push(exchange_one(&mut s, &reply));
                        s.conn.send_close_notify();
                        let _ = s.flush();
                    }
                    None => {
                        let mut s = tcp;
                        got.push(exchange_one(&mut s, &reply));
                    }
                }
            }
            got
        });
        (port, handle)
    }

    fn exchange_one<S: Read + Write>(s: &mut S, reply: &Reply) -> Received {
        let mut r = BufReader::new(&mut *s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        drop(r);
        let mut resp = format!(
            "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
            reply.status,
            reply.body.len()
        );
        for (k, v) in &reply.headers {
            resp.push_str(&format!("{k}: {v}\r\n"));
        }
        resp.push_str("\r\n");
        s.write_all(resp.as_bytes()).unwrap();
        s.write_all(&reply.body).unwrap();
        s.flush().unwrap();
        Received {
            path,
            headers,
            body,
        }
    }

    fn config(endpoint: &str) -> OtlpConfig {
        let mut c = OtlpConfig::from_lookup(Some(endpoint), |_| None).unwrap();
        c.timeout = Duration::from_secs(5);
        c.max_elapsed = Duration::from_secs(8);
        c
    }

    fn resource() -> Resource {
        Resource::from_lookup("test-svc", |_| None)
    }

    fn spans_in(body: &[u8]) -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        v["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .unwrap()
            .clone()
    }

    #[test]
    fn success_json_with_headers_from_env() {
        let (port, server) = serve(vec![ok()], None);
        let mut c = OtlpConfig::from_lookup(Some(&format!("http://127.0.0.1:{port}")), |k| {
            (k == "OTEL_EXPORTER_OTLP_HEADERS")
                .then(|| "authorization=Bearer%20abc,x-tenant=t1".to_string())
        })
        .unwrap();
        c.max_elapsed = Duration::from_secs(8);
        let exporter = OtlpExporter::new(c).unwrap();
        let out = exporter
            .export(&[exchange(), exchange()], &resource())
            .unwrap();
        assert_eq!((out.spans, out.attempts, out.rejected_spans), (2, 1, 0));
        let got = server.join().unwrap();
        assert_eq!(got[0].path, "/v1/traces");
        assert_eq!(got[0].header("content-type"), Some("application/json"));
        assert_eq!(got[0].header("authorization"), Some("Bearer abc"));
        assert_eq!(got[0].header("x-tenant"), Some("t1"));
        let spans = spans_in(&got[0].body);
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0]["name"], "POST");
        assert_ne!(spans[0]["traceId"], spans[1]["traceId"]);
    }

    #[test]
    fn partial_success_is_read() {
        let reply = Reply {
            status: 200,
            headers: vec![("Content-Type", "application/json".into())],
            body: br#"{"partialSuccess":{"rejectedSpans":"1","errorMessage":"too old"}}"#.to_vec(),
        };
        let (port, server) = serve(vec![reply], None);
        let exporter = OtlpExporter::new(config(&format!("http://127.0.0.1:{port}"))).unwrap();
        let out = exporter.export(&[exchange()], &resource()).unwrap();
        assert_eq!(
            (out.rejected_spans, out.partial_message.as_deref()),
            (1, Some("too old"))
        );
        server.join().unwrap();
    }

    #[test]
    fn retry_after_503_then_success() {
        let busy = Reply {
            status: 503,
            headers: vec![("Retry-After", "1".into())],
            body: b"busy".to_vec(),
        };
        let (port, server) = serve(vec![busy, ok()], None);
        let exporter = OtlpExporter::new(config(&format!("http://127.0.0.1:{port}"))).unwrap();
        let t = Instant::now();
        let out = exporter.export(&[exchange()], &resource()).unwrap();
        assert_eq!(out.attempts, 2);
        assert!(
            t.elapsed() >= Duration::from_secs(1),
            "Retry-After honoured"
        );
        let got = server.join().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].body, got[1].body);
    }

    #[test]
    fn bad_request_not_retried_not_kept() {
        let bad = Reply {
            status: 400,
            headers: vec![],
            body: b"malformed".to_vec(),
        };
        let (port, server) = serve(vec![bad], None);
        let dir = TempDir::new("otlp-400");
        let exporter = OtlpExporter::new(config(&format!("http://127.0.0.1:{port}")))
            .unwrap()
            .with_outbox(Outbox::new(&dir.0));
        match exporter.export(&[exchange()], &resource()) {
            Err(ExportError::Status {
                status: 400,
                attempts: 1,
                body,
            }) => assert_eq!(body, "malformed"),
            other => panic!("{other:?}"),
        }
        assert_eq!(server.join().unwrap().len(), 1);
        assert!(exporter.outbox().unwrap().pending().unwrap().is_empty());
    }

    #[test]
    fn unreachable_collector_bounded_and_kept_then_sent_first() {
        // A port that was just free: nothing listens there.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = TempDir::new("otlp-down");
        let mut c = config(&format!("http://127.0.0.1:{port}"));
        c.max_elapsed = Duration::from_secs(3);
        let exporter = OtlpExporter::new(c)
            .unwrap()
            .with_outbox(Outbox::new(&dir.0));
        let t = Instant::now();
        let err = exporter.export(&[exchange()], &resource()).unwrap_err();
        // Bounded: within max_elapsed plus one attempt's slack (generous on a busy box).
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        let ExportError::Deferred { cause, path } = err else {
            panic!("{err:?}")
        };
        assert!(
            matches!(*cause, ExportError::Transport { attempts: 3, .. }),
            "{cause:?}"
        );
        assert!(path.starts_with(dir.0.join("outbox")) && path.exists());

        // The collector is back: the kept batch goes first, then the new one.
        let listener = TcpListener::bind(("127.0.0.1", port));
        let Ok(listener) = listener else { return }; // port taken meanwhile: nothing more to check
        drop(listener);
        let (port2, server) = serve(vec![ok(), ok()], None);
        let mut c = config(&format!("http://127.0.0.1:{port2}"));
        c.max_elapsed = Duration::from_secs(8);
        let exporter = OtlpExporter::new(c)
            .unwrap()
            .with_outbox(Outbox::new(&dir.0));
        let mut second = exchange();
        second.method = Some("GET".into());
        let out = exporter.export(&[second], &resource()).unwrap();
        assert_eq!(out.outbox_sent, 1);
        let got = server.join().unwrap();
        assert_eq!(spans_in(&got[0].body)[0]["name"], "POST");
        assert_eq!(spans_in(&got[1].body)[0]["name"], "GET");
        assert!(exporter.outbox().unwrap().pending().unwrap().is_empty());
    }

    #[test]
    fn silent_collector_costs_at_most_max_elapsed() {
        // Accepts connections (the kernel's backlog does) but never answers.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = TempDir::new("otlp-silent");
        let mut c = config(&format!("http://127.0.0.1:{port}"));
        c.timeout = Duration::from_millis(800);
        c.max_elapsed = Duration::from_millis(2000);
        let exporter = OtlpExporter::new(c)
            .unwrap()
            .with_outbox(Outbox::new(&dir.0));
        let t = Instant::now();
        let err = exporter.export(&[exchange()], &resource()).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
        assert!(matches!(err, ExportError::Deferred { .. }), "{err:?}");
        assert_eq!(exporter.outbox().unwrap().pending().unwrap().len(), 1);
        drop(listener);
    }

    fn tls_server_config() -> Arc<rustls::ServerConfig> {
        let certs = rustls_pemfile::certs(
            &mut &std::fs::read(format!("{TESTDATA}/server.pem")).unwrap()[..],
        )
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
        let key = rustls_pemfile::private_key(
            &mut &std::fs::read(format!("{TESTDATA}/server.key")).unwrap()[..],
        )
        .unwrap()
        .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        )
    }

    #[test]
    fn https_with_test_ca_and_protobuf() {
        let (port, server) = serve(vec![ok()], Some(tls_server_config()));
        let mut c = config(&format!("https://127.0.0.1:{port}"));
        c.ca_files = vec![PathBuf::from(format!("{TESTDATA}/ca.pem"))];
        c.encoding = Encoding::Protobuf;
        let exporter = OtlpExporter::new(c).unwrap();
        let out = exporter.export(&[exchange()], &resource()).unwrap();
        assert_eq!(out.attempts, 1);
        let got = server.join().unwrap();
        assert_eq!(
            got[0].header("content-type"),
            Some("application/x-protobuf")
        );
        assert!(!got[0].body.is_empty());
    }

    #[test]
    fn https_untrusted_certificate_fails() {
        let (port, server) = serve(vec![ok()], Some(tls_server_config()));
        let mut c = config(&format!("https://127.0.0.1:{port}"));
        c.max_attempts = 1;
        let exporter = OtlpExporter::new(c).unwrap();
        let err = exporter.export(&[exchange()], &resource()).unwrap_err();
        assert!(matches!(err, ExportError::Transport { .. }), "{err:?}");
        // the server thread saw a failed handshake; it may panic on read: ignore it
        let _ = server.join();
    }
}
