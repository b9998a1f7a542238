//! Exchanges become OpenTelemetry spans here: one CLIENT span per exchange, following
//! the HTTP semantic conventions (the AWS SDK ones for a recognised AWS call, the RPC ones for gRPC), and one
//! per opaque TLS connection (`TLS {sni}`). Exchanges must be masked before they are
//! added: `url.full` is taken as it stands.

use super::attributes::KeyValue;
use super::ids::{message_span_id, SpanId, TraceId};
use super::span::{Span, SpanBatch, SpanKind, StatusCode};
use crate::exchange::{AwsCall, Exchange, GrpcCall, Service, TlsKind};

const HTTP_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY",
];

impl SpanBatch {
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
        let (trace_id, parent_span_id) = match self.parent() {
            Some(p) => (p.trace_id, p.span_id),
            None => (self.new_trace_id(), None),
        };
        let ids = ex.aws.as_ref().map_or(&[][..], |a| &a.message_ids[..]);
        let span_id = match (ex.aws.as_ref(), ids) {
            (Some(a), [one]) => message_span_id(a.service.name(), one),
            _ => self.new_span_id(),
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
                    events: Vec::new(),
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
pub(crate) fn exchange_span(
    ex: &Exchange,
    trace_id: TraceId,
    span_id: SpanId,
    parent_span_id: Option<SpanId>,
) -> Span {
    let mut attrs = Vec::with_capacity(16);
    let opaque = ex.tls == TlsKind::Opaque || ex.method.is_none();
    let name = span_name(ex, opaque);
    http_attributes(ex, opaque, &mut attrs);
    if let Some(a) = &ex.aws {
        aws_attributes(a, &mut attrs);
    }
    if let Some(g) = &ex.grpc {
        grpc_attributes(g, &mut attrs);
    }
    let (status, status_message) = error_status(ex, opaque, &mut attrs);
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
        events: Vec::new(),
    }
}

/// The AWS call's name, the gRPC call's `pkg.Service/Method`, the method, `HTTP` for
/// an unknown method, or `TLS {host}`.
fn span_name(ex: &Exchange, opaque: bool) -> String {
    match (&ex.method, opaque) {
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
    }
}

/// The HTTP, network and TLS attributes, and tapline's own.
fn http_attributes(ex: &Exchange, opaque: bool, attrs: &mut Vec<KeyValue>) {
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
    // Phases the records tell (the connection's set-up came before the span's start).
    for (name, ns) in ex.timings.phases() {
        if let Some(ns) = ns {
            attrs.push(KeyValue::int(
                &format!("tapline.timing.{name}_ns"),
                clamp_i64(ns),
            ));
        }
    }
    attrs.push(KeyValue::string("tapline.tls", ex.tls.as_str()));
    attrs.push(KeyValue::int("process.pid", i64::from(ex.pid)));
    if ex.truncated {
        attrs.push(KeyValue::bool("tapline.truncated", true));
    }
}

/// The span status and `error.type`: a gRPC status other than OK, the exchange's
/// error, an HTTP status of 400 or more, or a missing response.
fn error_status(ex: &Exchange, opaque: bool, attrs: &mut Vec<KeyValue>) -> (StatusCode, String) {
    // A gRPC call fails by its status code (the HTTP status is 200): `error.type` is
    // the code's name, the span status message the error.
    let grpc_error = ex
        .grpc
        .as_ref()
        .and_then(|g| g.status.filter(|&c| c != 0))
        .map(crate::exchange::grpc_status_name);
    let error_type = match (&ex.error, ex.status) {
        _ if grpc_error.is_some() => grpc_error.map(str::to_string),
        (Some(e), _) => Some(e.clone()),
        (None, Some(s)) if s >= 400 => Some(s.to_string()),
        (None, None) if !opaque => Some("no response".to_string()),
        _ => None,
    };
    match &error_type {
        Some(e) => {
            attrs.push(KeyValue::string("error.type", e.clone()));
            // The error says what the status code cannot (a body cut short, an
            // upload cut by an early answer); a bare HTTP error status has no message.
            let msg = if let Some(err) = &ex.error {
                err.clone()
            } else if ex.status.is_some() {
                String::new()
            } else {
                e.clone()
            };
            (StatusCode::Error, msg)
        }
        None => (StatusCode::Unset, String::new()),
    }
}

/// The OpenTelemetry AWS SDK attributes of a recognised call.
fn aws_attributes(a: &AwsCall, attrs: &mut Vec<KeyValue>) {
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
        Service::Sqs => Some("aws_sqs"),
        Service::Sns => Some("aws_sns"),
        Service::Kinesis => Some("aws_kinesis"),
        Service::EventBridge => Some("aws_eventbridge"),
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

/// The OpenTelemetry RPC attributes of a gRPC call.
fn grpc_attributes(g: &GrpcCall, attrs: &mut Vec<KeyValue>) {
    attrs.push(KeyValue::string("rpc.system", "grpc"));
    attrs.push(KeyValue::string("rpc.service", g.service.clone()));
    attrs.push(KeyValue::string("rpc.method", g.method.clone()));
    if let Some(code) = g.status {
        attrs.push(KeyValue::int("rpc.grpc.status_code", i64::from(code)));
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::sample as exchange;
    use crate::exchange::Body;
    use crate::export::{attributes::AnyValue, ids::IdGenerator, Resource};

    fn attr<'a>(s: &'a Span, key: &str) -> Option<&'a AnyValue> {
        s.attributes
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| &kv.value)
    }

    #[test]
    fn known_phases_are_attributes_unknown_ones_absent() {
        let mut ex = exchange();
        ex.timings.tls_ns = Some(7_000);
        ex.timings.wait_ns = Some(4_000_000);
        let s = exchange_span(&ex, TraceId([1; 16]), SpanId([2; 8]), None);
        assert_eq!(
            attr(&s, "tapline.timing.tls_ns"),
            Some(&AnyValue::Int(7_000))
        );
        assert_eq!(
            attr(&s, "tapline.timing.wait_ns"),
            Some(&AnyValue::Int(4_000_000))
        );
        for absent in ["connect", "send", "receive"] {
            assert_eq!(attr(&s, &format!("tapline.timing.{absent}_ns")), None);
        }
    }

    #[test]
    fn grpc_span_follows_the_rpc_conventions() {
        let mut ex = exchange();
        ex.path = Some("/helloworld.Greeter/SayHello".into());
        ex.http_version = Some("2".into());
        ex.error = Some("grpc NOT_FOUND: no such thing".into());
        ex.grpc = Some(GrpcCall {
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
}
