//! The Lambda emulator for tapline's end-to-end test (`tests/test_lambda_e2e.py`), the
//! demo (`scripts/demo-lambda`) and the benchmark (`bench/lambda_roundtrip`).
//!
//! Why a program and not a library call: the things under test are real processes — the
//! `tapline` extension and AWS's Python runtime client through `wrapper.sh` — started the
//! way Lambda starts them. This program only hosts `lambda-simulator` (Runtime,
//! Extensions and Telemetry APIs on 127.0.0.1) and plays the Lambda service: it enqueues
//! invocations and reports, as events on stdout, what a caller and the platform observe.
//!
//! It also fixes one incompatibility between the simulator and `awslambdaric`: the
//! simulator answers `invocation/next` with `Content-Type: text/plain`, and awslambdaric
//! crashes unless it reads `application/json`. A small proxy in front of the simulator
//! rewrites that header; everything else is forwarded byte for byte. Runtime and
//! extension both talk to the proxy (one `AWS_LAMBDA_RUNTIME_API`, as in Lambda).
//!
//! Streamed responses (`Lambda-Runtime-Function-Response-Mode: streaming`, a chunked
//! `POST .../response`) are Lambda's, not the simulator's: the proxy reads the chunks
//! as they come, and only when the streamed body has ended (the last chunk and its
//! trailers) hands the simulator the whole body (as a JSON string) — so the invocation
//! ends when the stream ends, not when its head was written. An error reported in the
//! trailers (`Lambda-Runtime-Function-Error-Type`) becomes the invocation's error.
//!
//! Protocol — stdin, one command per line:
//!
//! ```text
//! invoke <json>           enqueue an invocation; prints `enqueued <id> <unix_ns>`, then
//!                         `response <id> <status> <received_unix_ns> <payload json>` when
//!                         the runtime answers (what the caller sees), then
//!                         `ready <id> <unix_ns> <overhead_ms>` when every extension has
//!                         called Next again (the end of the invocation); a streamed
//!                         response first prints `stream <id> <first_chunk_unix_ns>
//!                         <end_unix_ns> <chunks> <bytes>` once its body has ended
//! wait-extensions <n>     prints `extensions <n>` once n extensions have registered
//! shutdown <reason>       spindown | timeout | failure; prints `shutdown <unix_ns>` when
//!                         every extension acknowledged it (or the deadline passed)
//! quit                    exits
//! ```
//!
//! At start it prints `api <host:port>` (the proxy's address).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_simulator::{InvocationStatus, ShutdownReason, Simulator};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

/// Set by `shutdown`: follower tasks drop their simulator handles.
static STOPPING: AtomicBool = AtomicBool::new(false);

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

type Out = Arc<Mutex<tokio::io::Stdout>>;

async fn say(out: &Out, line: String) {
    let mut o = out.lock().await;
    let _ = o.write_all(format!("{line}\n").as_bytes()).await;
    let _ = o.flush().await;
}

fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args();
    while let Some(a) = args.next() {
        if a == name {
            return args.next();
        }
    }
    None
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    lambda_simulator::ensure_default_crypto_provider();
    let timeout_ms: u64 = arg("--timeout-ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let function = arg("--function-name").unwrap_or_else(|| "tapline-e2e".into());
    let sim = Simulator::builder()
        .function_name(function)
        .function_version("$LATEST")
        .invocation_timeout(Duration::from_millis(timeout_ms))
        .shutdown_timeout(Duration::from_millis(2000))
        .extension_ready_timeout(Duration::from_secs(30))
        .build()
        .await
        .expect("simulator starts");
    let upstream = sim.addr();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
    let proxy = listener.local_addr().expect("proxy address");

    let out: Out = Arc::new(Mutex::new(tokio::io::stdout()));
    let proxy_out = out.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(proxy_connection(client, upstream, proxy_out.clone()));
        }
    });
    say(&out, format!("api {proxy}")).await;
    let sim = Arc::new(sim);
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let (cmd, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match cmd {
            "invoke" => {
                let payload: serde_json::Value =
                    serde_json::from_str(rest).unwrap_or(serde_json::Value::Null);
                let at = now_ns();
                let id = sim.enqueue_payload(payload).await;
                say(&out, format!("enqueued {id} {at}")).await;
                let (sim, out) = (sim.clone(), out.clone());
                tokio::spawn(async move { follow(sim, out, id).await });
            }
            "wait-extensions" => {
                let n: usize = rest.trim().parse().unwrap_or(1);
                let s = sim.clone();
                let ok = sim
                    .wait_for(
                        || {
                            let s = s.clone();
                            async move { s.extension_count().await >= n }
                        },
                        Duration::from_secs(30),
                    )
                    .await
                    .is_ok();
                say(
                    &out,
                    if ok {
                        format!("extensions {n}")
                    } else {
                        "error extensions did not register".into()
                    },
                )
                .await;
            }
            "shutdown" => {
                let reason = match rest.trim() {
                    "timeout" => ShutdownReason::Timeout,
                    "failure" => ShutdownReason::Failure,
                    _ => ShutdownReason::Spindown,
                };
                // `graceful_shutdown` takes the simulator by value: let the follower
                // tasks (which hold clones) notice and let go first.
                STOPPING.store(true, Ordering::SeqCst);
                let mut sim = sim;
                let sim = loop {
                    match Arc::try_unwrap(sim) {
                        Ok(s) => break s,
                        Err(s) => {
                            sim = s;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                };
                sim.graceful_shutdown(reason).await;
                say(&out, format!("shutdown {}", now_ns())).await;
                // Stay up (the proxy too) until told to quit: the SHUTDOWN event may
                // still be on its way to the extensions.
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.trim() == "quit" {
                        break;
                    }
                }
                return;
            }
            "quit" => return,
            _ => say(&out, format!("error unknown command {cmd:?}")).await,
        }
    }
}

/// Reports what the caller sees (the response) and when the invocation ends (every
/// extension called Next).
async fn follow(sim: Arc<Simulator>, out: Out, id: String) {
    // Short slices: `shutdown` needs the Arc back, see STOPPING.
    let state = {
        loop {
            match sim
                .wait_for_invocation_complete(&id, Duration::from_millis(200))
                .await
            {
                Ok(s) => break Some(s),
                Err(lambda_simulator::SimulatorError::Timeout(_))
                    if !STOPPING.load(Ordering::SeqCst) => {}
                Err(_) => break None,
            }
        }
    };
    let Some(state) = state else { return };
    let (status, at, payload) = match (&state.status, &state.response, &state.error) {
        (InvocationStatus::Success, Some(r), _) => (
            "success",
            r.received_at.timestamp_nanos_opt().unwrap_or(0),
            r.payload.to_string(),
        ),
        (_, _, Some(e)) => (
            "error",
            e.received_at.timestamp_nanos_opt().unwrap_or(0),
            serde_json::json!({"errorType": e.error_type, "errorMessage": e.error_message})
                .to_string(),
        ),
        _ => ("timeout", 0, "null".to_string()),
    };
    say(&out, format!("response {id} {status} {at} {payload}")).await;
    loop {
        match sim
            .wait_for_extensions_ready(&id, Duration::from_millis(200))
            .await
        {
            Ok(()) => {
                let overhead = sim.get_extension_overhead_ms(&id).await.unwrap_or(-1.0);
                say(&out, format!("ready {id} {} {overhead:.3}", now_ns())).await;
                return;
            }
            Err(_) if STOPPING.load(Ordering::SeqCst) => return,
            Err(_) => {}
        }
    }
}

/// Forwards one client connection to the simulator, rewriting the `Content-Type` of
/// `invocation/next` responses to `application/json`, and turning a streamed response
/// into a whole one once it has ended. Requests and responses are HTTP/1.1 with
/// `Content-Length` (chunked: only a streamed response); one exchange at a time.
async fn proxy_connection(client: TcpStream, upstream: std::net::SocketAddr, out: Out) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (mut client, mut server) = (BufReader::new(client), BufReader::new(server));
    loop {
        let Some((mut head, mut body)) = read_message(&mut client).await else {
            return;
        };
        if header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let Some(streamed) = read_chunked(&mut client).await else {
                return;
            };
            let Some((h, b, line)) = streamed.into_whole(&head) else {
                return;
            };
            say(&out, line).await;
            (head, body) = (h, b);
        }
        let is_next = head
            .lines()
            .next()
            .is_some_and(|l| l.contains("/runtime/invocation/next"));
        if server
            .get_mut()
            .write_all(&[head.as_bytes(), &body].concat())
            .await
            .is_err()
        {
            return;
        }
        let Some((mut rhead, rbody)) = read_message(&mut server).await else {
            return;
        };
        if is_next {
            rhead = rhead
                .split("\r\n")
                .map(|l| {
                    if l.to_ascii_lowercase().starts_with("content-type:") {
                        "content-type: application/json".to_string()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\r\n");
        }
        if client
            .get_mut()
            .write_all(&[rhead.as_bytes(), &rbody].concat())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// The value of header `name` in a message head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// A chunked request body as it arrived.
struct Streamed {
    body: Vec<u8>,
    chunks: usize,
    first_chunk_ns: u128,
    end_ns: u128,
    trailers: Vec<(String, String)>,
}

impl Streamed {
    /// The request the simulator understands: the whole body as a JSON string, with a
    /// `Content-Length`, to `.../response` — or, with an error in the trailers, the
    /// error to `.../error` — and the `stream` line to print.
    fn into_whole(self, head: &str) -> Option<(String, Vec<u8>, String)> {
        let mut lines = head.split("\r\n");
        let mut parts = lines.next()?.splitn(3, ' ');
        let (method, path, version) = (parts.next()?, parts.next()?, parts.next()?);
        let id = path
            .strip_prefix("/2018-06-01/runtime/invocation/")
            .and_then(|r| r.split('/').next())
            .unwrap_or("-")
            .to_string();
        let trailer = |name: &str| {
            self.trailers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let text = String::from_utf8_lossy(&self.body).into_owned();
        let (path, body) = match trailer("Lambda-Runtime-Function-Error-Type") {
            Some(kind) => (
                path.replace("/response", "/error"),
                serde_json::json!({
                    "errorType": kind,
                    "errorMessage": trailer("Lambda-Runtime-Function-Error-Body")
                        .unwrap_or_default(),
                })
                .to_string(),
            ),
            None => (
                path.to_string(),
                serde_json::Value::String(text).to_string(),
            ),
        };
        let mut new_head = format!("{method} {path} {version}\r\n");
        for l in lines.filter(|l| !l.is_empty()) {
            let name = l
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if !matches!(
                name.as_str(),
                "transfer-encoding" | "content-length" | "content-type" | "trailer"
            ) {
                new_head.push_str(l);
                new_head.push_str("\r\n");
            }
        }
        new_head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ));
        let line = format!(
            "stream {id} {} {} {} {}",
            self.first_chunk_ns,
            self.end_ns,
            self.chunks,
            self.body.len()
        );
        Some((new_head, body.into_bytes(), line))
    }
}

/// A chunked body, read chunk by chunk as the client sends it, and its trailers.
async fn read_chunked(s: &mut BufReader<TcpStream>) -> Option<Streamed> {
    let mut st = Streamed {
        body: Vec::new(),
        chunks: 0,
        first_chunk_ns: 0,
        end_ns: 0,
        trailers: Vec::new(),
    };
    loop {
        let mut size_line = String::new();
        if s.read_line(&mut size_line).await.ok()? == 0 {
            return None;
        }
        let hex = size_line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(hex, 16).ok()?;
        if size == 0 {
            break;
        }
        if st.chunks == 0 {
            st.first_chunk_ns = now_ns();
        }
        st.chunks += 1;
        // Lambda's limit for a streamed response is 20 MB.
        if st.body.len() + size > 20 << 20 {
            return None;
        }
        let at = st.body.len();
        st.body.resize(at + size, 0);
        s.read_exact(&mut st.body[at..]).await.ok()?;
        let mut crlf = [0u8; 2];
        s.read_exact(&mut crlf).await.ok()?;
    }
    loop {
        let mut line = String::new();
        if s.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            st.trailers
                .push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    st.end_ns = now_ns();
    Some(st)
}

/// One HTTP/1.1 message: head (with its blank line) and a `Content-Length` body.
async fn read_message(s: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read_until(b'\n', &mut buf).await.ok()? == 0 || buf.len() > 64 * 1024 {
            return None;
        }
    }
    let head = String::from_utf8(buf).ok()?;
    let len = head
        .split("\r\n")
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.ok()?;
    Some((head, body))
}
