//! The AWS Lambda external extension (`tapline extension`, or `/opt/extensions/tapline`
//! started with no arguments).
//!
//! Why it is shaped like this: the caller gets its response when the runtime posts it,
//! but the invocation — and the bill — ends only when the runtime and every extension
//! have called Next. So on INVOKE the extension waits (on the wake FIFO, [`wake`]) until
//! the runtime has posted that request's outcome ([`window`]: a `Lifecycle` record or the
//! POST exchange itself; [`telemetry`]'s `platform.runtimeDone` when the runtime is not
//! traced; the deadline as the last resort), then reads the spool, builds the
//! invocation's spans, masks, budgets, and exports them with a short timeout — or, when
//! invocations come often ([`flush`]), keeps the batch and sends it while the next
//! invocation runs — and calls Next. Work never happens before the response, and nothing
//! waits on the collector longer than `TAPLINE_OTLP_MAX_ELAPSED_MS`: what is not
//! delivered stays in the outbox for the next invocation or for SHUTDOWN.
//!
//! Nothing goes to `init/error`: Lambda fails the environment's init on it, and a typo in
//! a tracing variable must not take the function down. A configuration mistake is
//! logged once and fails closed for the data instead (an invalid mask pattern: every
//! exchange scrubbed; an unusable OTLP endpoint or CA file: nothing exported; an unknown
//! OTLP protocol: the default, said so). Everything else — no spool directory, no FIFO,
//! no Telemetry API — is logged too, and the extension carries on doing what it still
//! can, always calling Next promptly: the function's responses never depend on us.

pub(crate) mod api;
pub(crate) mod feed;
pub(crate) mod flows;
pub(crate) mod flush;
pub(crate) mod journal;
pub(crate) mod sender;
pub(crate) mod telemetry;
pub(crate) mod wake;
pub(crate) mod window;

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::exchange::Exchange;
use crate::export::span::KeyValue;
use crate::export::{
    OtlpConfig, OtlpExporter, Outbox, ParentContext, Resource, Span, SpanBatch, SpanId, SpanKind,
    StatusCode, TraceId,
};
use crate::pipeline::Pipeline;

use api::{Event, ExtensionsClient, Invoke, Registration};
use feed::ExchangeFeed;
use flush::{FlushMode, FlushPolicy};
use telemetry::{RuntimeDone, TelemetryListener};
use wake::WakeFifo;
use window::{is_runtime_api, Attribution, Outcome, Windows};

/// Where the library writes and the extension reads, unless `TAPLINE_SPOOL_DIR` says.
pub(crate) use tapline_record::settings::DEFAULT_SPOOL_DIR;
/// Per-attempt OTLP timeout for the extension unless `OTEL_EXPORTER_OTLP_TIMEOUT` says:
/// every millisecond here is billed and delays the next invocation.
const DEFAULT_OTLP_TIMEOUT_MS: &str = "1000";
const DEFAULT_OTLP_MAX_ELAPSED_MS: &str = "1500";
/// How long one wait on the FIFO lasts before the spool is looked at anyway (a lost
/// wake-up costs at most this).
const RECHECK: Duration = Duration::from_millis(50);
/// Kept back from the SHUTDOWN deadline for exiting.
const SHUTDOWN_MARGIN: Duration = Duration::from_millis(200);
/// Invocations remembered for late exchanges.
const REMEMBERED: usize = 64;
/// The last export's exporter (its agent and TLS configuration, built from the CA files)
/// is reused by the next export within this long; each request still opens its own
/// connection (see `OtlpExporter::new`: pooled connections lose their timeouts).
const KEEP_ALIVE_IDLE: Duration = Duration::from_millis(2000);

/// Keeps two ready-made segments in the spool (after the invocation's work, before
/// Next: the function is not running then).
fn refill_segments(dir: &std::path::Path) {
    let size = std::env::var(tapline_record::settings::SEGMENT_BYTES.name())
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(crate::spool::segment::DEFAULT_SEGMENT_BYTES);
    if let Err(e) = crate::spool::segment::make_free_segments(dir, 2, size) {
        log(format_args!("cannot make spool segments ahead: {e}"));
    }
}

fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn log(msg: std::fmt::Arguments<'_>) {
    eprintln!("tapline: {msg}");
}

/// Runs the extension until SHUTDOWN; returns the exit status.
pub(crate) fn run() -> i32 {
    let started = Instant::now();
    let name = extension_name();
    let mut client = match ExtensionsClient::from_env() {
        Ok(c) => c,
        Err(e) => {
            log(format_args!("{e}"));
            return 2;
        }
    };
    let registration = match client.register(&name) {
        Ok(r) => r,
        Err(e) => {
            log(format_args!("cannot register with the Extensions API: {e}"));
            return 1;
        }
    };
    log(format_args!(
        "extension registered as {name} in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    ));
    let mut ext = Extension::new(&client, registration);
    loop {
        ext.calling_next();
        match client.next_event() {
            Ok(Event::Invoke(inv)) => ext.on_invoke(inv),
            Ok(Event::Shutdown {
                reason,
                deadline_ms,
            }) => {
                ext.on_shutdown(deadline_ms);
                log(format_args!(
                    "shutdown ({reason:?}) done at {} ms, deadline {deadline_ms} ms",
                    now_unix_ns() / 1_000_000
                ));
                return 0;
            }
            Err(e) => {
                // Next failing means the API is gone (the environment is going away) or
                // answered something we do not understand: neither gets better by
                // asking again at full speed.
                log(format_args!("event/next: {e}"));
                let _ = client.report_exit_error("Extension.NextFailed", &e.to_string());
                ext.on_shutdown(0);
                return 1;
            }
        }
    }
}

/// The name Lambda knows us by: our executable's file name.
fn extension_name() -> String {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "tapline".to_string())
}

/// An invocation we were told about (INVOKE), and what its span needs.
struct InvocationCtx {
    invoke: Invoke,
    trace: ParentContext,
    span_id: SpanId,
    coldstart: bool,
    received_unix_ns: u64,
    /// Its SERVER span has been exported (or handed to the outbox).
    span_sent: bool,
}

/// Where exchanges go once they are final.
enum Sink {
    Otlp(Box<OtlpConfig>, Option<Outbox>),
    /// No OTLP endpoint configured: JSON lines on stdout (CloudWatch Logs in Lambda).
    Stdout,
    /// An OTLP endpoint was configured but cannot be used (not an http(s) URL, an
    /// unreadable CA file): nothing is exported — not to another destination either —
    /// and what was withheld is counted.
    Withheld,
}

/// The sink the OTLP variables ask for; a mistake in them is logged once and fails
/// closed (see the module doc).
fn otlp_sink(env: &dyn Fn(&str) -> Option<String>) -> Sink {
    let with_defaults = |k: &str| {
        env(k).or_else(|| match k {
            "OTEL_EXPORTER_OTLP_TIMEOUT" => Some(DEFAULT_OTLP_TIMEOUT_MS.into()),
            "TAPLINE_OTLP_MAX_ELAPSED_MS" => Some(DEFAULT_OTLP_MAX_ELAPSED_MS.into()),
            _ => None,
        })
    };
    let config = match OtlpConfig::from_lookup(None, with_defaults) {
        Ok(c) => c,
        Err(e) => {
            // An unknown protocol protects nothing: the default encoding is as safe.
            let no_protocol = |k: &str| match k {
                "OTEL_EXPORTER_OTLP_PROTOCOL" | "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" => None,
                _ => with_defaults(k),
            };
            match OtlpConfig::from_lookup(None, no_protocol) {
                Ok(c) => {
                    log(format_args!(
                        "configuration error: {e}; exporting with the default protocol \
                         (http/json) instead"
                    ));
                    c
                }
                Err(_) => {
                    log(format_args!(
                        "configuration error: {e}; nothing will be exported until it is \
                         fixed (the function runs as usual)"
                    ));
                    return Sink::Withheld;
                }
            }
        }
    };
    // The TLS setup (CA files) is checked once, here, not at the first export.
    if let Err(e) = OtlpExporter::new(config.clone()) {
        log(format_args!(
            "configuration error: OTLP {e}; nothing will be exported until it is fixed \
             (the function runs as usual)"
        ));
        return Sink::Withheld;
    }
    Sink::Otlp(Box::new(config), None)
}

struct Extension {
    function_name: String,
    function_version: String,
    spool_dir: PathBuf,
    tail: Option<ExchangeFeed>,
    wake: Option<WakeFifo>,
    runtime_done: Option<RuntimeDone>,
    windows: Windows,
    invocations: VecDeque<InvocationCtx>,
    /// Final user exchanges not yet reported.
    unreported: Vec<Exchange>,
    /// Blind spots read and not yet put on an invocation span.
    notices: Vec<crate::notice::Notice>,
    pipeline: Pipeline,
    resource: Resource,
    sink: Sink,
    invoked: u64,
    /// Messages this environment produced, for links from its own consumers.
    produced: flows::ProducedMessages,
    /// Whether a batch goes out after the response or during the next invocation.
    flush: FlushPolicy,
    /// When we last called Next (the idle gap to the next INVOKE starts there).
    next_called: Option<Instant>,
    /// A built batch kept for the next invocation (or SHUTDOWN) to send.
    held: Option<SpanBatch>,
    /// The exporter of the last export and when it finished: its connection is kept
    /// alive for the next one.
    exporter: sender::Kept,
    /// The background sender of kept batches.
    sender: sender::Sender,
    /// Spans not exported because the OTLP setting is unusable ([`Sink::Withheld`]).
    withheld: usize,
    /// A masked copy of what was reported, for `tapline show --format html` of the
    /// spool directory once its records are consumed.
    journal: Option<journal::ExportedJournal>,
}

impl Extension {
    fn new(client: &ExtensionsClient, reg: Registration) -> Self {
        let pipeline = Pipeline::from_env().unwrap_or_else(|e| {
            log(format_args!(
                "configuration error: {e}; every exchange is exported without headers, \
                 query or bodies until it is fixed (the function runs as usual)"
            ));
            Pipeline::new(
                crate::mask::Masker::scrub_everything(),
                crate::budget::Budget::from_env(),
            )
        });
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let spool_dir = PathBuf::from(
            env(tapline_record::settings::SPOOL_DIR.name()).unwrap_or(DEFAULT_SPOOL_DIR.into()),
        );
        let sink = if env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
            || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
        {
            otlp_sink(&env)
        } else {
            Sink::Stdout
        };
        let function_name = reg
            .function_name
            .or_else(|| env("AWS_LAMBDA_FUNCTION_NAME"))
            .unwrap_or_else(|| "lambda".into());
        let function_version = reg
            .function_version
            .or_else(|| env("AWS_LAMBDA_FUNCTION_VERSION"))
            .unwrap_or_else(|| "$LATEST".into());
        let mut resource = Resource::from_env(&function_name);
        resource.attributes.extend([
            KeyValue::string("cloud.provider", "aws"),
            KeyValue::string("cloud.platform", "aws_lambda"),
            KeyValue::string("faas.name", function_name.clone()),
            KeyValue::string("faas.version", function_version.clone()),
        ]);
        if let Some(region) = env("AWS_REGION") {
            resource
                .attributes
                .push(KeyValue::string("cloud.region", region));
        }
        let mut ext = Extension {
            function_name,
            function_version,
            tail: None,
            wake: None,
            runtime_done: None,
            windows: Windows::default(),
            invocations: VecDeque::new(),
            unreported: Vec::new(),
            notices: Vec::new(),
            pipeline,
            resource,
            sink,
            invoked: 0,
            produced: flows::ProducedMessages::default(),
            flush: FlushPolicy::from_setting(env("TAPLINE_FLUSH_HOLD_MS").as_deref()),
            next_called: None,
            held: None,
            exporter: None,
            sender: sender::Sender::default(),
            withheld: 0,
            journal: None,
            spool_dir,
        };
        ext.journal = journal::ExportedJournal::new(
            &ext.spool_dir,
            journal::ExportedJournal::bound_from(env("TAPLINE_JOURNAL_BYTES").as_deref()),
        );
        ext.prepare_spool();
        if let Sink::Otlp(_, outbox) = &mut ext.sink {
            if ext.tail.is_some() {
                *outbox = Some(Outbox::new(&ext.spool_dir));
            }
        }
        ext.start_telemetry(client);
        ext
    }

    /// The spool directory (0700, so the function finds it) and the wake FIFO. Failing
    /// either leaves the extension running with less: no spool, nothing to report.
    fn prepare_spool(&mut self) {
        let dir = &self.spool_dir;
        if let Err(e) = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            log(format_args!(
                "cannot create spool directory {}: {e}; nothing will be captured",
                dir.display()
            ));
            return;
        }
        match WakeFifo::create(dir) {
            Ok(w) => self.wake = Some(w),
            Err(e) => log(format_args!("{e}; polling the spool instead")),
        }
        // Segments made ahead of need, so that the function's first record (and each
        // rotation) claims one with a rename instead of faulting in its own.
        refill_segments(dir);
        self.tail = Some(ExchangeFeed::new(dir));
    }

    fn start_telemetry(&mut self, client: &ExtensionsClient) {
        let Some(waker) = self.wake.as_ref().and_then(|w| w.waker().ok()) else {
            return;
        };
        match TelemetryListener::start(waker) {
            Ok(l) => match l.subscribe(client) {
                Ok(()) => self.runtime_done = Some(l.done),
                Err(e) => log(format_args!("{e}; no runtimeDone fallback")),
            },
            Err(e) => log(format_args!("{e}; no runtimeDone fallback")),
        }
    }

    /// Marks the start of an idle gap (between invocations: the wait for the first
    /// INVOKE is the init phase, not a gap).
    fn calling_next(&mut self) {
        // Never a send in flight while the sandbox may be frozen.
        self.settle_send();
        if self.invoked > 0 {
            self.next_called = Some(Instant::now());
        }
    }

    fn on_invoke(&mut self, invoke: Invoke) {
        self.invoked += 1;
        self.flush
            .observe(self.next_called.take().map(|t| t.elapsed()));
        // The previous invocation's batch, if kept: it goes out now, while the function
        // runs (the caller is not waiting on us, and neither is the bill).
        if let Some(held) = self.held.take() {
            self.send_in_background(held);
        }
        let mut ids = SpanBatch::new(Resource::default());
        let trace = invoke
            .xray
            .as_deref()
            .and_then(TraceId::from_xray)
            .unwrap_or_else(|| ParentContext {
                trace_id: ids.new_trace_id(),
                span_id: None,
            });
        let id = invoke.request_id.clone();
        let deadline_unix_ns = invoke.deadline_ms.saturating_mul(1_000_000);
        if self.invocations.len() >= REMEMBERED {
            self.invocations.pop_front();
        }
        self.invocations.push_back(InvocationCtx {
            invoke,
            trace,
            span_id: ids.new_span_id(),
            coldstart: self.invoked == 1,
            received_unix_ns: now_unix_ns(),
            span_sent: false,
        });
        if self.tail.is_none() {
            return; // nothing captured: call Next at once
        }
        let invoked_at = now_unix_ns();
        // Wait for the runtime to have posted this invocation's outcome.
        loop {
            self.ingest(false);
            if self.windows.is_closed(&id) {
                break;
            }
            if let Some(ok) = self.runtime_done.as_ref().and_then(|d| d.succeeded(&id)) {
                self.windows
                    .close_at_runtime_done(&id, invoked_at, now_unix_ns(), ok);
                break;
            }
            let now = now_unix_ns();
            if deadline_unix_ns != 0 && now >= deadline_unix_ns {
                log(format_args!("{id}: no response seen before the deadline"));
                break;
            }
            let left = Duration::from_nanos(deadline_unix_ns.saturating_sub(now));
            let wait = if deadline_unix_ns == 0 {
                RECHECK
            } else {
                RECHECK.min(left)
            };
            match &mut self.wake {
                Some(w) => {
                    if let Err(e) = w.wait(wait) {
                        log(format_args!("{e}"));
                        self.wake = None;
                    }
                }
                None => std::thread::sleep(wait),
            }
        }
        let work_start = now_unix_ns();
        self.ingest(false);
        let mode = self.flush.mode();
        let n = self.report(Some(&id), None, mode);
        // One line per invocation: what was reported, and when the work ran (the e2e
        // test checks it ran after the response and before Next).
        let when = match (mode, &self.sink) {
            (FlushMode::DuringNext, Sink::Otlp(..)) => "sent during the next invocation",
            _ => "sent",
        };
        log(format_args!(
            "invocation {id}: {n} exchange(s) reported, {when}; work {work_start}..{}",
            now_unix_ns()
        ));
        if let Some(tail) = &mut self.tail {
            tail.delete_consumed();
        }
        refill_segments(&self.spool_dir);
    }

    fn on_shutdown(&mut self, deadline_ms: u64) {
        // The runtime is gone: whatever is pending is final.
        self.ingest(true);
        let deadline = (deadline_ms != 0).then(|| {
            let left = Duration::from_nanos(
                deadline_ms
                    .saturating_mul(1_000_000)
                    .saturating_sub(now_unix_ns()),
            );
            left.saturating_sub(SHUTDOWN_MARGIN)
        });
        let n = self.report(
            None,
            deadline.or(Some(Duration::from_millis(1500))),
            FlushMode::AfterResponse,
        );
        log(format_args!("shutdown: {n} exchange(s) reported"));
        if let Some(j) = self.journal.as_ref().filter(|j| j.lost_lines > 0) {
            log(format_args!(
                "exported journal: {} line(s) could not be written",
                j.lost_lines
            ));
        }
        if matches!(self.sink, Sink::Withheld) {
            log(format_args!(
                "{} span(s) withheld: the OTLP configuration is unusable",
                self.withheld
            ));
        }
        if let Some(tail) = &mut self.tail {
            let s = tail.segment_stats();
            log(format_args!(
                "spool segments: {} records read, {} handed back for reuse, {} deleted, \
                 {} hole(s) skipped",
                s.records, s.recycled, s.deleted, s.holes
            ));
            tail.delete_consumed();
        }
    }

    /// Reads the spool: lifecycle marks and runtime exchanges feed the windows, user
    /// exchanges wait in `unreported`.
    fn ingest(&mut self, flush: bool) {
        let Some(tail) = &mut self.tail else { return };
        if let Err(e) = tail.read_new() {
            log(format_args!("{e}"));
        }
        for mark in tail.take_lifecycle() {
            self.windows.observe_lifecycle(&mark);
        }
        for n in tail.take_notices() {
            crate::notice::add(&mut self.notices, n);
        }
        let mut fresh = tail.take_final(flush);
        fresh.sort_by_key(|x| (x.start_unix_ns, x.pid, x.conn_id, x.seq));
        for ex in fresh {
            if is_runtime_api(&ex) {
                self.windows.observe_runtime(&ex);
            } else {
                self.unreported.push(ex);
            }
        }
    }

    /// Builds, masks, budgets and sends one report: the invocation spans that are due
    /// (`current`, or all at shutdown) and every final exchange not yet reported.
    /// `shutdown_budget` bounds the export at shutdown. With [`FlushMode::DuringNext`]
    /// an OTLP batch is kept for the next invocation instead of sent; a batch kept
    /// earlier goes out with this one.
    fn report(
        &mut self,
        current: Option<&str>,
        shutdown_budget: Option<Duration>,
        mode: FlushMode,
    ) -> usize {
        let mut exchanges = std::mem::take(&mut self.unreported);
        let outcome = self.pipeline.process(&mut exchanges);
        if outcome.bytes_after < outcome.bytes_before {
            log(format_args!(
                "size budget: {} -> {} bytes",
                outcome.bytes_before, outcome.bytes_after
            ));
        }
        let mut batch = SpanBatch::new(self.resource.clone());
        let mut lines = Vec::new();
        // The exchanges first: the messages they produced are remembered before the
        // invocation spans due now are built, so that a consumer's span links to a
        // producer call reported in the same batch (one that became final late — its
        // invocation passed its deadline, or it ran after the response).
        let mut exchange_lines = Vec::new();
        let mut exchange_journal = Vec::new();
        let mut produced = Vec::new();
        for ex in &exchanges {
            let (ctx, phase) = match self.windows.attribute(ex.start_unix_ns) {
                Attribution::During(id) => (self.ctx(id), "invocation"),
                Attribution::After(id) => (self.ctx(id), "after_response"),
                Attribution::Init => (None, "init"),
            };
            batch.set_parent(ctx.map(|c| ParentContext {
                trace_id: c.trace.trace_id,
                span_id: Some(c.span_id),
            }));
            let at = batch.spans.len();
            let trace_id = batch.add_exchange(ex).trace_id;
            if let Some(a) = &ex.aws {
                for id in &a.message_ids {
                    produced.push((a.service.name(), id.as_str(), trace_id));
                }
            }
            if let Some(last) = batch.spans.get_mut(at) {
                if let Some(c) = ctx {
                    last.attributes.push(KeyValue::string(
                        "faas.invocation_id",
                        c.invoke.request_id.clone(),
                    ));
                }
                last.attributes
                    .push(KeyValue::string("tapline.lambda.phase", phase));
            }
            if self.journal.is_some() {
                exchange_journal.push(journal::exchange_line(
                    crate::report::json::to_value(ex),
                    ex.seq,
                    ctx.map(|c| c.invoke.request_id.as_str()),
                    phase,
                ));
            }
            if matches!(self.sink, Sink::Stdout) {
                let mut v = crate::report::json::to_value(ex);
                if let (Some(c), Some(o)) = (ctx, v.as_object_mut()) {
                    o.insert(
                        "faas.invocation_id".into(),
                        c.invoke.request_id.clone().into(),
                    );
                }
                exchange_lines.push(v.to_string());
            }
        }
        for (service, id, trace) in produced {
            self.produced.record(service, id, trace);
        }
        // Invocation spans due now, ahead of the exchanges in the batch.
        let due: Vec<usize> = self
            .invocations
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.span_sent && current.is_none_or(|id| id == c.invoke.request_id))
            .map(|(i, _)| i)
            .collect();
        let notices = std::mem::take(&mut self.notices);
        let mut said = notices.is_empty();
        let mut journal_lines = Vec::new();
        let mut invocation_spans = Vec::with_capacity(due.len());
        for i in due {
            let mut span = self.invocation_span(&self.invocations[i]);
            if self.journal.is_some() {
                let c = &self.invocations[i];
                let w = self.windows.get(&c.invoke.request_id);
                let trigger = crate::aws::trigger::parse(w.map_or(&[][..], |w| &w.event));
                journal_lines.push(
                    journal::JournalInvocation {
                        request_id: &c.invoke.request_id,
                        start_unix_ns: span.start_unix_ns,
                        end_unix_ns: span.end_unix_ns,
                        outcome: match w.and_then(|w| w.outcome) {
                            Some(Outcome::Response) => Some("response"),
                            Some(Outcome::Error) => Some("error"),
                            None => None,
                        },
                        trigger: trigger.kind.faas_trigger(),
                    }
                    .to_line(),
                );
            }
            // Blind spots seen since the last report: events on the first span due.
            if !said {
                span.events = notices.iter().map(notice_event).collect();
                said = true;
            }
            invocation_spans.push(span);
            self.invocations[i].span_sent = true;
        }
        batch.spans.splice(0..0, invocation_spans);
        journal_lines.extend(exchange_journal);
        if matches!(self.sink, Sink::Stdout) {
            lines.extend(notices.iter().map(|n| n.to_json().to_string()));
        } else if !said {
            // No invocation span yet: keep them for the next one.
            self.notices = notices;
        }
        lines.extend(exchange_lines);
        if let Some(j) = self.journal.as_mut() {
            j.append(&journal_lines);
        }
        if let Some(held) = self.held.take() {
            batch.spans.splice(0..0, held.spans);
        }
        if matches!(self.sink, Sink::Withheld) {
            self.withheld += batch.spans.len();
        }
        if mode == FlushMode::DuringNext && matches!(self.sink, Sink::Otlp(..)) {
            if !batch.is_empty() {
                self.held = Some(batch);
            }
        } else {
            self.send(&batch, &lines, shutdown_budget);
        }
        exchanges.len()
    }

    fn ctx(&self, request_id: &str) -> Option<&InvocationCtx> {
        self.invocations
            .iter()
            .find(|c| c.invoke.request_id == request_id)
    }

    fn send(&mut self, batch: &SpanBatch, lines: &[String], budget: Option<Duration>) {
        self.settle_send();
        match &self.sink {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                for l in lines {
                    let _ = writeln!(out, "{l}");
                }
                let _ = out.flush();
            }
            Sink::Withheld => {}
            Sink::Otlp(config, outbox) => {
                let reuse = self.exporter.take();
                self.exporter = send_otlp(config, outbox.as_ref(), reuse, batch, budget);
            }
        }
    }

    /// Sends a kept batch in the background ([`sender`]), at the lowest CPU priority:
    /// the function is running.
    fn send_in_background(&mut self, batch: SpanBatch) {
        let Sink::Otlp(config, outbox) = &self.sink else {
            return;
        };
        let config = config.clone();
        let outbox = outbox.clone();
        let mut kept = self.exporter.take();
        let reuse = self.sender.settle().unwrap_or_else(|| kept.take());
        self.sender.start(
            move || send_otlp(&config, outbox.as_ref(), reuse, &batch, None),
            &mut kept,
        );
        self.exporter = kept;
    }

    /// Waits for a background send still in flight and takes its exporter back.
    fn settle_send(&mut self) {
        if let Some(kept) = self.sender.settle() {
            self.exporter = kept;
        }
    }

    /// The SERVER span of one invocation.
    fn invocation_span(&self, c: &InvocationCtx) -> Span {
        let w = self.windows.get(&c.invoke.request_id);
        let start = w
            .and_then(|w| w.opened_unix_ns)
            .unwrap_or(c.received_unix_ns)
            .min(c.received_unix_ns);
        let end = w
            .and_then(|w| w.closed_unix_ns)
            .unwrap_or_else(now_unix_ns)
            .max(start);
        let trigger = crate::aws::trigger::parse(w.map_or(&[][..], |w| &w.event));
        let links = flows::links(&trigger, &self.produced);
        let mut attrs = vec![KeyValue::string(
            "faas.invocation_id",
            c.invoke.request_id.clone(),
        )];
        attrs.extend(
            flows::trigger_attributes(&trigger)
                .into_iter()
                .map(|mut kv| {
                    // The event's own URL path can carry what the masker would hide.
                    if let crate::export::span::AnyValue::String(v) = &mut kv.value {
                        if kv.key == "url.path" {
                            if let Some(m) = self.pipeline.masker.mask_url(v) {
                                *v = m;
                            }
                        }
                    }
                    kv
                }),
        );
        attrs.extend([
            KeyValue::bool("faas.coldstart", c.coldstart),
            KeyValue::string("cloud.provider", "aws"),
            KeyValue::string("cloud.platform", "aws_lambda"),
            KeyValue::string("faas.name", self.function_name.clone()),
            KeyValue::string("faas.version", self.function_version.clone()),
        ]);
        if let Some(arn) = &c.invoke.invoked_function_arn {
            attrs.push(KeyValue::string("cloud.resource_id", arn.clone()));
            attrs.push(KeyValue::string("aws.lambda.invoked_arn", arn.clone()));
            if let Some(account) = arn.split(':').nth(4).filter(|a| !a.is_empty()) {
                attrs.push(KeyValue::string("cloud.account.id", account));
            }
        }
        let (status, message) = match w.and_then(|w| w.outcome) {
            Some(Outcome::Response) => (StatusCode::Unset, String::new()),
            Some(Outcome::Error) => (StatusCode::Error, "the function returned an error".into()),
            None => (StatusCode::Error, "no response from the runtime".into()),
        };
        Span {
            trace_id: c.trace.trace_id,
            span_id: c.span_id,
            parent_span_id: c.trace.span_id,
            name: self.function_name.clone(),
            kind: SpanKind::Server,
            start_unix_ns: start,
            end_unix_ns: end,
            attributes: attrs,
            status,
            status_message: message,
            links,
            events: Vec::new(),
        }
    }
}

/// One OTLP export: the exporter of the last export unless it has been idle too long or
/// this export has its own budget (shutdown). Returns the exporter to reuse next time.
fn send_otlp(
    config: &OtlpConfig,
    outbox: Option<&Outbox>,
    reuse: sender::Kept,
    batch: &SpanBatch,
    budget: Option<Duration>,
) -> sender::Kept {
    let reuse = reuse.filter(|(_, at)| budget.is_none() && at.elapsed() < KEEP_ALIVE_IDLE);
    let exporter = match reuse {
        Some((x, _)) => x,
        None => {
            let mut config = config.clone();
            if let Some(b) = budget {
                config.max_elapsed = config.max_elapsed.min(b);
                config.timeout = config.timeout.min(b.max(Duration::from_millis(1)));
            }
            let exporter = match OtlpExporter::new(config) {
                Ok(x) => x,
                Err(e) => {
                    log(format_args!("otlp: {e}"));
                    return None;
                }
            };
            match outbox {
                Some(o) => exporter.with_outbox(o.clone()),
                None => exporter,
            }
        }
    };
    let result = exporter.export_batch(batch);
    match result {
        Ok(o) if o.outbox_sent > 0 => log(format_args!(
            "otlp: sent {} spans and {} earlier batch(es)",
            o.spans, o.outbox_sent
        )),
        Ok(_) => {}
        Err(e) => log(format_args!("otlp: {e}")),
    }
    budget.is_none().then(|| (exporter, Instant::now()))
}

/// `faas.trigger` from the shape of the event (its captured prefix: the JSON may be cut,
/// so this looks for telltale keys rather than parsing). Only the tests ask for it alone.
#[cfg(test)]
fn trigger(event: &[u8]) -> &'static str {
    crate::aws::trigger::parse(event).kind.faas_trigger()
}

/// A blind spot as an event on the invocation span (`tapline.notice`).
fn notice_event(n: &crate::notice::Notice) -> crate::export::span::SpanEvent {
    crate::export::span::SpanEvent {
        time_unix_ns: n.unix_ns,
        name: "tapline.notice".into(),
        attributes: vec![
            KeyValue::string("tapline.notice.kind", n.kind_name()),
            KeyValue::string("tapline.notice.message", n.message()),
            KeyValue::string("process.executable.path", n.program.clone()),
            KeyValue::int("process.pid", i64::from(n.pid)),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_from_event_shapes() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"version":"2.0","routeKey":"GET /x","requestContext":{"http":{"method":"GET"}}}"#,
                "http",
            ),
            (
                r#"{"resource":"/","httpMethod":"GET","requestContext":{"stage":"p"}}"#,
                "http",
            ),
            (
                r#"{"Records":[{"messageId":"1","eventSource":"aws:sqs","body":"x"}]}"#,
                "pubsub",
            ),
            (
                r#"{"Records":[{"EventSource":"aws:sns","Sns":{}}]}"#,
                "pubsub",
            ),
            (
                r#"{"Records":[{"eventVersion":"2.1","eventSource": "aws:s3","s3":{}}]}"#,
                "datasource",
            ),
            (
                r#"{"Records":[{"eventSource":"aws:dynamodb"}]}"#,
                "datasource",
            ),
            (
                r#"{"source":"aws.events","detail-type":"Scheduled Event"}"#,
                "timer",
            ),
            (
                r#"{"source":"aws.ec2","detail-type":"EC2 Instance State-change"}"#,
                "pubsub",
            ),
            (r#"{"key":"value"}"#, "other"),
            ("", "other"),
        ];
        for (event, want) in cases {
            assert_eq!(trigger(event.as_bytes()), *want, "{event}");
        }
    }
}
