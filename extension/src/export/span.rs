//! Exchanges become OpenTelemetry spans here: one CLIENT span per exchange, following
//! the HTTP semantic conventions, and one per opaque TLS connection (`TLS {sni}`).
//!
//! [`SpanBatch`] is the unit of export. It owns the trace context: without a parent every
//! exchange starts its own trace; with one (the Lambda extension's invocation span, a
//! trace id from an X-Ray header) every exchange becomes its child. Exchanges must be
//! masked before they are added: `url.full` is taken as it stands.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::exchange::{Exchange, TlsKind};

/// A 16-byte trace id (never all zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id (never all zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanId(pub [u8; 8]);

impl TraceId {
    /// Lower-case hex, as OTLP/JSON writes it.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// The trace id and parent span id of an X-Ray trace header
    /// (`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`):
    /// the root's epoch and random parts, concatenated, are the W3C trace id.
    pub fn from_xray(header: &str) -> Option<ParentContext> {
        let mut trace_id = None;
        let mut span_id = None;
        for part in header.split(';') {
            let (k, v) = part.trim().split_once('=')?;
            match k.trim() {
                "Root" => {
                    let mut it = v.trim().split('-');
                    let (ver, epoch, rand) = (it.next()?, it.next()?, it.next()?);
                    if ver != "1" || epoch.len() != 8 || rand.len() != 24 {
                        return None;
                    }
                    trace_id = Some(TraceId(parse_hex::<16>(&format!("{epoch}{rand}"))?));
                }
                "Parent" => span_id = parse_hex::<8>(v.trim()).map(SpanId),
                _ => {}
            }
        }
        let trace_id = trace_id.filter(|t| t.0 != [0; 16])?;
        Some(ParentContext {
            trace_id,
            span_id: span_id.filter(|s| s.0 != [0; 8]),
        })
    }
}

impl SpanId {
    /// Lower-case hex, as OTLP/JSON writes it.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The trace every span of a batch joins, and the span they are children of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParentContext {
    pub trace_id: TraceId,
    pub span_id: Option<SpanId>,
}

/// An attribute value (the subset of OTLP `AnyValue` tapline writes).
#[derive(Clone, Debug, PartialEq)]
pub enum AnyValue {
    String(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Array(Vec<AnyValue>),
}

/// One attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyValue {
    pub key: String,
    pub value: AnyValue,
}

impl KeyValue {
    pub fn strings(key: &str, values: impl IntoIterator<Item = String>) -> Self {
        KeyValue {
            key: key.to_string(),
            value: AnyValue::Array(values.into_iter().map(AnyValue::String).collect()),
        }
    }
    pub fn string(key: &str, value: impl Into<String>) -> Self {
        KeyValue {
            key: key.to_string(),
            value: AnyValue::String(value.into()),
        }
    }
    pub fn int(key: &str, value: i64) -> Self {
        KeyValue {
            key: key.to_string(),
            value: AnyValue::Int(value),
        }
    }
    pub fn bool(key: &str, value: bool) -> Self {
        KeyValue {
            key: key.to_string(),
            value: AnyValue::Bool(value),
        }
    }
}

/// OTLP `Span.SpanKind` (the integers are the protocol's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

/// OTLP `Status.StatusCode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusCode {
    Unset = 0,
    Ok = 1,
    Error = 2,
}

/// A link from a span to another (a consumer's invocation to the producer's call).
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub attributes: Vec<KeyValue>,
}

/// The span id a produced message's span gets: derived from the message id, so that a
/// consumer — in another process, another function — can link to it knowing only the
/// message id and the producer's trace (`AWSTraceHeader`). FNV-1a over
/// `"{service}/{id}"`, then the splitmix64 finaliser; never zero.
pub fn message_span_id(service: &str, id: &str) -> SpanId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in service
        .bytes()
        .chain(std::iter::once(b'/'))
        .chain(id.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = h;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    SpanId((if z == 0 { 1 } else { z }).to_be_bytes())
}

/// One span, ready to encode.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub name: String,
    pub kind: SpanKind,
    pub start_unix_ns: u64,
    pub end_unix_ns: u64,
    pub attributes: Vec<KeyValue>,
    pub status: StatusCode,
    pub status_message: String,
    pub links: Vec<Link>,
}

/// The resource every span of a batch shares (`service.name`, ...).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resource {
    pub attributes: Vec<KeyValue>,
}

impl Resource {
    /// `OTEL_RESOURCE_ATTRIBUTES` (`k=v,k2=v2`, values percent-decoded), then
    /// `OTEL_SERVICE_NAME` over `service.name`, else `default_service`; plus the
    /// `telemetry.sdk.*` attributes naming tapline.
    pub fn from_env(default_service: &str) -> Self {
        Self::from_lookup(default_service, |k| std::env::var(k).ok())
    }

    /// Like [`Resource::from_env`], reading variables through `lookup`.
    pub fn from_lookup(default_service: &str, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut attributes: Vec<KeyValue> = lookup("OTEL_RESOURCE_ATTRIBUTES")
            .map(|s| {
                super::otlp::parse_key_values(&s)
                    .into_iter()
                    .map(|(k, v)| KeyValue::string(&k, v))
                    .collect()
            })
            .unwrap_or_default();
        let service = lookup("OTEL_SERVICE_NAME").filter(|s| !s.is_empty());
        attributes.retain(|kv| !(kv.key == "service.name" && service.is_some()));
        if let Some(s) = service {
            attributes.insert(0, KeyValue::string("service.name", s));
        } else if !attributes.iter().any(|kv| kv.key == "service.name") {
            attributes.insert(0, KeyValue::string("service.name", default_service));
        }
        attributes.push(KeyValue::string("telemetry.sdk.name", "tapline"));
        attributes.push(KeyValue::string(
            "telemetry.sdk.version",
            env!("CARGO_PKG_VERSION"),
        ));
        Resource { attributes }
    }

    /// The value of a string attribute.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find_map(|kv| match &kv.value {
            AnyValue::String(s) if kv.key == key => Some(s.as_str()),
            _ => None,
        })
    }
}

/// A small non-cryptographic id source (splitmix64), seeded from the clock, the pid and
/// a process-wide counter — ids need to be unique, not secret.
#[derive(Clone, Debug)]
pub struct IdGenerator(u64);

impl IdGenerator {
    pub fn from_time() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        static MADE: AtomicU64 = AtomicU64::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        IdGenerator(
            now ^ u64::from(std::process::id()).rotate_left(32)
                ^ n.wrapping_mul(0xA24B_AED4_963E_E407),
        )
    }

    /// Deterministic ids, for tests.
    pub fn seeded(seed: u64) -> Self {
        IdGenerator(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn span_id(&mut self) -> SpanId {
        loop {
            let id = self.next_u64();
            if id != 0 {
                return SpanId(id.to_be_bytes());
            }
        }
    }

    pub fn trace_id(&mut self) -> TraceId {
        let mut t = [0u8; 16];
        t[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        t[8..].copy_from_slice(&self.next_u64().to_be_bytes());
        if t == [0; 16] {
            t[15] = 1;
        }
        TraceId(t)
    }
}

/// Spans that are exported together, with their resource and trace context.
#[derive(Clone, Debug)]
pub struct SpanBatch {
    pub resource: Resource,
    pub spans: Vec<Span>,
    parent: Option<ParentContext>,
    ids: IdGenerator,
}

const HTTP_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY",
];

impl SpanBatch {
    pub fn new(resource: Resource) -> Self {
        SpanBatch {
            resource,
            spans: Vec::new(),
            parent: None,
            ids: IdGenerator::from_time(),
        }
    }

    /// Spans added from now on join `parent`'s trace, as children of its span (if any).
    pub fn with_parent(mut self, parent: ParentContext) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Changes the parent for spans added from now on (e.g. to a SERVER span just pushed).
    pub fn set_parent(&mut self, parent: Option<ParentContext>) {
        self.parent = parent;
    }

    pub fn parent(&self) -> Option<ParentContext> {
        self.parent
    }

    /// Uses `ids` for every id this batch makes (deterministic tests).
    pub fn with_ids(mut self, ids: IdGenerator) -> Self {
        self.ids = ids;
        self
    }

    /// A fresh span id, for a span the caller builds (the invocation span).
    pub fn new_span_id(&mut self) -> SpanId {
        self.ids.span_id()
    }

    /// A fresh trace id.
    pub fn new_trace_id(&mut self) -> TraceId {
        self.ids.trace_id()
    }

    /// Adds a span the caller built.
    pub fn push(&mut self, span: Span) {
        self.spans.push(span);
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Adds one CLIENT span per exchange.
    pub fn add_exchanges(&mut self, exchanges: &[Exchange]) {
        for ex in exchanges {
            self.add_exchange(ex);
        }
    }

    /// Adds the CLIENT span of one (already masked) exchange. An AWS call that
    /// produced one message gets the message's span id ([`message_span_id`]); one that
    /// produced several gets a PRODUCER child span per message, each with its
    /// message's span id. Returns the exchange's span (the last one pushed is a child
    /// when there are several messages).
    pub fn add_exchange(&mut self, ex: &Exchange) -> &Span {
        let (trace_id, parent_span_id) = match self.parent {
            Some(p) => (p.trace_id, p.span_id),
            None => (self.ids.trace_id(), None),
        };
        let ids = ex.aws.as_ref().map_or(&[][..], |a| &a.message_ids[..]);
        let span_id = match (ex.aws.as_ref(), ids) {
            (Some(a), [one]) => message_span_id(a.service.name(), one),
            _ => self.ids.span_id(),
        };
        let span = exchange_span(ex, trace_id, span_id, parent_span_id);
        let at = self.spans.len();
        if let (Some(a), true) = (ex.aws.as_ref(), ids.len() > 1) {
            let children: Vec<Span> = ids
                .iter()
                .map(|id| Span {
                    trace_id,
                    span_id: message_span_id(a.service.name(), id),
                    parent_span_id: Some(span_id),
                    name: format!("{} message", a.name()),
                    kind: SpanKind::Producer,
                    start_unix_ns: span.start_unix_ns,
                    end_unix_ns: span.end_unix_ns,
                    attributes: vec![
                        KeyValue::string("rpc.system", "aws-api"),
                        KeyValue::string("rpc.service", a.service.name()),
                        KeyValue::string("messaging.message.id", id.clone()),
                    ],
                    status: StatusCode::Unset,
                    status_message: String::new(),
                    links: Vec::new(),
                })
                .collect();
            self.spans.push(span);
            self.spans.extend(children);
        } else {
            self.spans.push(span);
        }
        &self.spans[at]
    }
}

/// The span of one exchange, per the HTTP client semantic conventions.
pub fn exchange_span(
    ex: &Exchange,
    trace_id: TraceId,
    span_id: SpanId,
    parent_span_id: Option<SpanId>,
) -> Span {
    let mut attrs = Vec::with_capacity(16);
    let opaque = ex.tls == TlsKind::Opaque || ex.method.is_none();
    let name = match (&ex.method, opaque) {
        (Some(_), false) if ex.aws.is_some() => {
            ex.aws.as_ref().map_or_else(String::new, |a| a.name())
        }
        (Some(_), false) if ex.grpc.is_some() => {
            ex.grpc.as_ref().map_or_else(String::new, |g| g.name())
        }
        (Some(m), false) if HTTP_METHODS.contains(&m.as_str()) => m.clone(),
        (Some(_), false) => "HTTP".to_string(),
        _ => match ex.sni.as_deref().or(ex.host.as_deref()) {
            Some(h) => format!("TLS {h}"),
            None => "TLS".to_string(),
        },
    };
    if let Some(m) = &ex.method {
        if HTTP_METHODS.contains(&m.as_str()) {
            attrs.push(KeyValue::string("http.request.method", m.clone()));
        } else {
            attrs.push(KeyValue::string("http.request.method", "_OTHER"));
            attrs.push(KeyValue::string("http.request.method_original", m.clone()));
        }
    }
    if let Some(url) = ex.url() {
        attrs.push(KeyValue::string("url.full", url));
        attrs.push(KeyValue::string("url.scheme", ex.scheme));
    }
    let host = ex
        .host
        .as_deref()
        .or(ex.sni.as_deref())
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'));
    if let Some(h) = host {
        attrs.push(KeyValue::string("server.address", h));
    }
    let port = ex
        .port
        .or_else(|| ex.peer.map(|p| p.port()))
        .or(match ex.scheme {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        });
    if let Some(p) = port {
        attrs.push(KeyValue::int("server.port", i64::from(p)));
    }
    if let Some(s) = ex.status {
        attrs.push(KeyValue::int("http.response.status_code", i64::from(s)));
    }
    if let Some(peer) = ex.peer {
        attrs.push(KeyValue::string(
            "network.peer.address",
            peer.ip().to_string(),
        ));
        attrs.push(KeyValue::int("network.peer.port", i64::from(peer.port())));
    }
    if let Some(v) = &ex.http_version {
        attrs.push(KeyValue::string("network.protocol.name", "http"));
        attrs.push(KeyValue::string("network.protocol.version", v.clone()));
    }
    if let Some(sni) = &ex.sni {
        attrs.push(KeyValue::string("tls.server.name", sni.clone()));
    }
    for (key, body) in [
        ("http.request.body.size", &ex.request_body),
        ("http.response.body.size", &ex.response_body),
    ] {
        if let Some(b) = body {
            attrs.push(KeyValue::int(key, clamp_i64(b.size)));
        }
    }
    if opaque {
        attrs.push(KeyValue::int(
            "tapline.request.wire_bytes",
            clamp_i64(ex.request_wire_bytes),
        ));
        attrs.push(KeyValue::int(
            "tapline.response.wire_bytes",
            clamp_i64(ex.response_wire_bytes),
        ));
    }
    attrs.push(KeyValue::string("tapline.tls", ex.tls.as_str()));
    attrs.push(KeyValue::int("process.pid", i64::from(ex.pid)));
    if ex.truncated {
        attrs.push(KeyValue::bool("tapline.truncated", true));
    }
    if let Some(a) = &ex.aws {
        aws_attributes(a, &mut attrs);
    }
    // OpenTelemetry RPC conventions for gRPC.
    if let Some(g) = &ex.grpc {
        attrs.push(KeyValue::string("rpc.system", "grpc"));
        attrs.push(KeyValue::string("rpc.service", g.service.clone()));
        attrs.push(KeyValue::string("rpc.method", g.method.clone()));
        if let Some(code) = g.status {
            attrs.push(KeyValue::int("rpc.grpc.status_code", i64::from(code)));
        }
    }

    // A gRPC call fails by its status code (the HTTP status is 200): `error.type` is
    // the code's name, the span status message the error.
    let grpc_error = ex
        .grpc
        .as_ref()
        .and_then(|g| g.status.filter(|&c| c != 0))
        .map(crate::grpc::status_name);
    let error_type = match (&ex.error, ex.status) {
        _ if grpc_error.is_some() => grpc_error.map(str::to_string),
        (Some(e), _) => Some(e.clone()),
        (None, Some(s)) if s >= 400 => Some(s.to_string()),
        (None, None) if !opaque => Some("no response".to_string()),
        _ => None,
    };
    let (status, status_message) = match &error_type {
        Some(e) => {
            attrs.push(KeyValue::string("error.type", e.clone()));
            let msg = if let (Some(err), Some(_)) = (&ex.error, grpc_error) {
                err.clone()
            } else if ex.status.is_some() {
                String::new()
            } else {
                e.clone()
            };
            (StatusCode::Error, msg)
        }
        None => (StatusCode::Unset, String::new()),
    };
    let kind = match &ex.aws {
        Some(a) if !a.message_ids.is_empty() => SpanKind::Producer,
        _ => SpanKind::Client,
    };
    Span {
        trace_id,
        span_id,
        parent_span_id,
        name,
        kind,
        start_unix_ns: ex.start_unix_ns,
        end_unix_ns: ex.start_unix_ns.saturating_add(ex.duration_ns),
        attributes: attrs,
        status,
        status_message,
        links: Vec::new(),
    }
}

/// The OpenTelemetry AWS SDK attributes of a recognised call.
fn aws_attributes(a: &crate::aws::AwsCall, attrs: &mut Vec<KeyValue>) {
    attrs.push(KeyValue::string("rpc.system", "aws-api"));
    attrs.push(KeyValue::string("rpc.service", a.service.name()));
    attrs.push(KeyValue::string("rpc.method", a.operation.clone()));
    if let Some(r) = &a.region {
        attrs.push(KeyValue::string("cloud.region", r.clone()));
    }
    if let Some(id) = &a.request_id {
        attrs.push(KeyValue::string("aws.request_id", id.clone()));
    }
    if let Some(id) = &a.extended_request_id {
        attrs.push(KeyValue::string("aws.extended_request_id", id.clone()));
    }
    let mut keys: Vec<&str> = Vec::new();
    for (k, _) in &a.resource {
        if !keys.contains(k) {
            keys.push(k);
        }
    }
    for k in keys {
        let values: Vec<String> = a.resource_values(k).map(str::to_string).collect();
        // Table names are an array by convention; anything else is a string unless it
        // repeats.
        if k == "aws.dynamodb.table_names" || values.len() > 1 {
            attrs.push(KeyValue::strings(k, values));
        } else if let Some(v) = values.into_iter().next() {
            attrs.push(KeyValue::string(k, v));
        }
    }
    match a.message_ids.as_slice() {
        [] => {}
        [one] => attrs.push(KeyValue::string("messaging.message.id", one.clone())),
        many => attrs.push(KeyValue::strings("aws.message_ids", many.to_vec())),
    }
    let system = match a.service {
        crate::aws::Service::Sqs => Some("aws_sqs"),
        crate::aws::Service::Sns => Some("aws_sns"),
        crate::aws::Service::Kinesis => Some("aws_kinesis"),
        crate::aws::Service::EventBridge => Some("aws_eventbridge"),
        _ => None,
    };
    if let (Some(s), false) = (system, a.message_ids.is_empty()) {
        attrs.push(KeyValue::string("messaging.system", s));
        attrs.push(KeyValue::string("messaging.operation.type", "send"));
        if a.message_ids.len() > 1 {
            attrs.push(KeyValue::int(
                "messaging.batch.message_count",
                clamp_i64(a.message_ids.len() as u64),
            ));
        }
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::Body;
    use crate::mask::tests::exchange;

    fn attr<'a>(s: &'a Span, key: &str) -> Option<&'a AnyValue> {
        s.attributes
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| &kv.value)
    }

    #[test]
    fn grpc_span_follows_the_rpc_conventions() {
        let mut ex = exchange();
        ex.path = Some("/helloworld.Greeter/SayHello".into());
        ex.http_version = Some("2".into());
        ex.error = Some("grpc NOT_FOUND: no such thing".into());
        ex.grpc = Some(crate::grpc::GrpcCall {
            service: "helloworld.Greeter".into(),
            method: "SayHello".into(),
            status: Some(5),
            message: Some("no such thing".into()),
            request_messages: 1,
            response_messages: 0,
        });
        let s = exchange_span(&ex, TraceId([1; 16]), SpanId([2; 8]), None);
        assert_eq!(s.name, "helloworld.Greeter/SayHello");
        let string = |v: &str| Some(AnyValue::String(v.into()));
        assert_eq!(attr(&s, "rpc.system").cloned(), string("grpc"));
        assert_eq!(
            attr(&s, "rpc.service").cloned(),
            string("helloworld.Greeter")
        );
        assert_eq!(attr(&s, "rpc.method").cloned(), string("SayHello"));
        assert_eq!(attr(&s, "rpc.grpc.status_code"), Some(&AnyValue::Int(5)));
        assert_eq!(attr(&s, "error.type").cloned(), string("NOT_FOUND"));
        assert_eq!(s.status, StatusCode::Error);
        assert_eq!(s.status_message, "grpc NOT_FOUND: no such thing");
        // Status 0: no error.
        ex.error = None;
        if let Some(g) = &mut ex.grpc {
            g.status = Some(0);
        }
        let s = exchange_span(&ex, TraceId([1; 16]), SpanId([2; 8]), None);
        assert_eq!(s.status, StatusCode::Unset);
        assert_eq!(attr(&s, "rpc.grpc.status_code"), Some(&AnyValue::Int(0)));
    }

    #[test]
    fn http_exchange_span() {
        let mut ex = exchange();
        ex.query = Some("a=1".into());
        ex.port = Some(8443);
        ex.status = Some(503);
        ex.request_body = Some(Body {
            bytes: vec![],
            size: 12,
            truncated: true,
            decoded: None,
        });
        let mut batch = SpanBatch::new(Resource::default()).with_ids(IdGenerator::seeded(1));
        let s = batch.add_exchange(&ex).clone();
        assert_eq!(s.name, "POST");
        assert_eq!(s.kind, SpanKind::Client);
        assert_eq!(s.end_unix_ns - s.start_unix_ns, 5_000_000);
        assert_eq!(
            attr(&s, "url.full"),
            Some(&AnyValue::String(
                "https://api.example.com:8443/v1/items?a=1".into()
            ))
        );
        assert_eq!(
            attr(&s, "server.address"),
            Some(&AnyValue::String("api.example.com".into()))
        );
        assert_eq!(attr(&s, "server.port"), Some(&AnyValue::Int(8443)));
        assert_eq!(
            attr(&s, "http.response.status_code"),
            Some(&AnyValue::Int(503))
        );
        assert_eq!(
            attr(&s, "network.peer.address"),
            Some(&AnyValue::String("127.0.0.1".into()))
        );
        assert_eq!(
            attr(&s, "error.type"),
            Some(&AnyValue::String("503".into()))
        );
        assert_eq!(attr(&s, "http.request.body.size"), Some(&AnyValue::Int(12)));
        assert_eq!(s.status, StatusCode::Error);
        assert_eq!(s.parent_span_id, None);
    }

    #[test]
    fn no_response_and_opaque() {
        let mut ex = exchange();
        ex.status = None;
        ex.error = Some("connection reset".into());
        let s = exchange_span(&ex, TraceId([1; 16]), SpanId([2; 8]), None);
        assert_eq!(
            (s.status, s.status_message.as_str()),
            (StatusCode::Error, "connection reset")
        );

        let mut ex = exchange();
        ex.tls = TlsKind::Opaque;
        (ex.method, ex.path, ex.status) = (None, None, None);
        ex.sni = Some("s3.amazonaws.com".into());
        let s = exchange_span(&ex, TraceId([1; 16]), SpanId([2; 8]), None);
        assert_eq!(s.name, "TLS s3.amazonaws.com");
        assert_eq!(s.status, StatusCode::Unset);
        assert_eq!(
            attr(&s, "tls.server.name"),
            Some(&AnyValue::String("s3.amazonaws.com".into()))
        );
        assert_eq!(
            attr(&s, "tapline.response.wire_bytes"),
            Some(&AnyValue::Int(200))
        );
        assert!(attr(&s, "url.full").is_none() && attr(&s, "http.request.method").is_none());
    }

    #[test]
    fn parent_from_xray() {
        let p = TraceId::from_xray(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .unwrap();
        assert_eq!(p.trace_id.to_hex(), "5759e988bd862e3fe1be46a994272793");
        assert_eq!(p.span_id.unwrap().to_hex(), "53995c3f42cd8ad8");
        assert!(TraceId::from_xray("Root=1-5759e988-bd86;Sampled=1").is_none());
        assert!(
            TraceId::from_xray("Root=1-5759e988-bd862e3fe1be46a994272793")
                .unwrap()
                .span_id
                .is_none()
        );

        let mut batch = SpanBatch::new(Resource::default()).with_parent(p);
        let inv = batch.new_span_id();
        batch.set_parent(Some(ParentContext {
            trace_id: p.trace_id,
            span_id: Some(inv),
        }));
        let s = batch.add_exchange(&exchange()).clone();
        assert_eq!((s.trace_id, s.parent_span_id), (p.trace_id, Some(inv)));
    }

    #[test]
    fn ids_unique_and_nonzero() {
        let mut ids = IdGenerator::seeded(0);
        let a: Vec<SpanId> = (0..1000).map(|_| ids.span_id()).collect();
        let set: std::collections::HashSet<_> = a.iter().collect();
        assert_eq!(set.len(), 1000);
        assert!(a.iter().all(|s| s.0 != [0; 8]));
    }

    #[test]
    fn resource_from_lookup() {
        let r = Resource::from_lookup("tapline", |k| match k {
            "OTEL_RESOURCE_ATTRIBUTES" => {
                Some("service.name=a,deployment.environment=pr%20od".into())
            }
            "OTEL_SERVICE_NAME" => Some("svc".into()),
            _ => None,
        });
        assert_eq!(r.get("service.name"), Some("svc"));
        assert_eq!(r.get("deployment.environment"), Some("pr od"));
        assert_eq!(
            Resource::from_lookup("cmd", |_| None).get("service.name"),
            Some("cmd")
        );
    }
}
