//! What triggered a Lambda invocation, read from the event the runtime fetched (the
//! Runtime API `next` response the library captured): API Gateway REST and HTTP APIs,
//! Function URLs, ALB, SQS, SNS, S3, EventBridge, DynamoDB and Kinesis streams.
//!
//! Only identifiers are read — route, queue, topic, bucket and key, stream, message ids,
//! the `AWSTraceHeader` — never headers, query strings or bodies of the event, which
//! can carry the caller's secrets. A captured prefix (the event was cut at
//! `TAPLINE_MAX_BODY`) does not parse: then the type is told from telltale keys and the
//! message ids are scanned for, so links still work for large batches.
//!
//! One function per trigger type, found through small tables: [`HTTP_TRIGGERS`] (by the
//! shape of `requestContext`), [`RECORD_TRIGGERS`] (by a batch's `eventSource`), then
//! EventBridge; [`TELLTALES`] for a cut event. A new type is a function and a row.

use serde_json::Value;

use super::fields::scan_json;
use crate::text::percent_decode;

/// The event source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerKind {
    ApiGatewayRest,
    ApiGatewayHttp,
    FunctionUrl,
    Alb,
    Sqs,
    Sns,
    S3,
    EventBridge,
    /// An EventBridge (or CloudWatch Events) schedule.
    Schedule,
    DynamoDbStream,
    Kinesis,
    Other,
}

impl TriggerKind {
    /// OpenTelemetry's `faas.trigger`.
    pub fn faas_trigger(self) -> &'static str {
        match self {
            TriggerKind::ApiGatewayRest
            | TriggerKind::ApiGatewayHttp
            | TriggerKind::FunctionUrl
            | TriggerKind::Alb => "http",
            TriggerKind::Sqs | TriggerKind::Sns | TriggerKind::Kinesis => "pubsub",
            TriggerKind::EventBridge => "pubsub",
            TriggerKind::S3 | TriggerKind::DynamoDbStream => "datasource",
            TriggerKind::Schedule => "timer",
            TriggerKind::Other => "other",
        }
    }

    /// `aws.lambda.event_source`: which AWS source it was.
    pub fn event_source(self) -> Option<&'static str> {
        Some(match self {
            TriggerKind::ApiGatewayRest => "aws:apigateway:rest",
            TriggerKind::ApiGatewayHttp => "aws:apigateway:http",
            TriggerKind::FunctionUrl => "aws:lambda:url",
            TriggerKind::Alb => "aws:elb",
            TriggerKind::Sqs => "aws:sqs",
            TriggerKind::Sns => "aws:sns",
            TriggerKind::S3 => "aws:s3",
            TriggerKind::EventBridge | TriggerKind::Schedule => "aws:events",
            TriggerKind::DynamoDbStream => "aws:dynamodb",
            TriggerKind::Kinesis => "aws:kinesis",
            TriggerKind::Other => return None,
        })
    }
}

/// A message the invocation consumes, by the id its producer was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundMessage {
    /// The producing service (`SQS`, `SNS`, `Kinesis`, `EventBridge`), as
    /// [`super::Service::name`] spells it.
    pub service: &'static str,
    pub id: String,
    /// `AWSTraceHeader` (SQS system attribute), when the producer was traced.
    pub trace_header: Option<String>,
}

/// An invocation's trigger: its kind, attributes for the invocation span, and the
/// messages it consumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    pub kind: TriggerKind,
    pub attributes: Vec<(&'static str, String)>,
    /// Records in a batch event (SQS, SNS, S3, Kinesis, DynamoDB).
    pub batch_size: Option<usize>,
    pub messages: Vec<InboundMessage>,
}

/// Reads the trigger from an event (possibly a prefix).
pub fn parse(event: &[u8]) -> Trigger {
    match serde_json::from_slice::<Value>(event) {
        Ok(v) => from_value(&v),
        Err(_) => from_prefix(event),
    }
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = v;
    for k in path {
        v = v.get(k)?;
    }
    v.as_str()
}

/// The last `:`-separated part of an ARN (`arn:aws:sqs:us-east-1:1234:orders` → `orders`).
fn arn_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

impl Trigger {
    fn new(kind: TriggerKind) -> Self {
        Trigger {
            kind,
            attributes: Vec::new(),
            batch_size: None,
            messages: Vec::new(),
        }
    }

    /// Adds an attribute when the value is there and not empty.
    fn attr(&mut self, key: &'static str, value: Option<&str>) {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            self.attributes.push((key, v.to_string()));
        }
    }

    /// One inbound message per record that has an id at `id_path`.
    fn messages_from(&mut self, records: &[Value], service: &'static str, id_path: &[&str]) {
        for r in records {
            if let Some(id) = s(r, id_path) {
                self.messages.push(InboundMessage {
                    service,
                    id: id.to_string(),
                    trace_header: None,
                });
            }
        }
    }
}

/// An HTTP trigger, told from the event and its `requestContext`; `None`: not this type.
type HttpReader = fn(&Value, &Value) -> Option<Trigger>;

/// The HTTP triggers, in the order they are tried (an ALB event has no `http` object; an
/// HTTP API and a Function URL event have no top-level `httpMethod`).
const HTTP_TRIGGERS: &[HttpReader] = &[alb, http_api_or_function_url, rest_api];

/// A batch trigger, read from its `Records`.
type RecordsReader = fn(&[Value]) -> Trigger;

/// The batch triggers by the first record's `eventSource` (`EventSource` for SNS).
const RECORD_TRIGGERS: &[(&str, RecordsReader)] = &[
    ("aws:sqs", sqs),
    ("aws:sns", sns),
    ("aws:s3", s3),
    ("aws:dynamodb", dynamodb_stream),
    ("aws:kinesis", kinesis),
];

fn from_value(v: &Value) -> Trigger {
    if let Some(ctx) = v.get("requestContext") {
        return HTTP_TRIGGERS
            .iter()
            .find_map(|read| read(v, ctx))
            .unwrap_or_else(|| Trigger::new(TriggerKind::Other));
    }
    if let Some(records) = v.get("Records").and_then(Value::as_array) {
        let Some(first) = records.first() else {
            let mut t = Trigger::new(TriggerKind::Other);
            t.batch_size = Some(0);
            return t;
        };
        let source = s(first, &["eventSource"]).or(s(first, &["EventSource"]));
        return match RECORD_TRIGGERS
            .iter()
            .find(|(name, _)| Some(*name) == source)
        {
            Some((_, read)) => {
                let mut t = read(records);
                t.batch_size = Some(records.len());
                t
            }
            None => Trigger::new(TriggerKind::Other),
        };
    }
    eventbridge(v).unwrap_or_else(|| Trigger::new(TriggerKind::Other))
}

fn alb(v: &Value, ctx: &Value) -> Option<Trigger> {
    let tg = s(ctx, &["elb", "targetGroupArn"])?;
    let mut t = Trigger::new(TriggerKind::Alb);
    t.attr("http.request.method", s(v, &["httpMethod"]));
    t.attr("url.path", s(v, &["path"]));
    t.attr("aws.elb.target_group.arn", Some(tg));
    Some(t)
}

/// Payload format 2.0: an HTTP API, or a Function URL (told by its domain).
fn http_api_or_function_url(v: &Value, ctx: &Value) -> Option<Trigger> {
    ctx.get("http")?;
    let domain = s(ctx, &["domainName"]).unwrap_or("");
    let mut t = Trigger::new(if domain.contains(".lambda-url.") {
        TriggerKind::FunctionUrl
    } else {
        TriggerKind::ApiGatewayHttp
    });
    t.attr("http.request.method", s(ctx, &["http", "method"]));
    let route = s(v, &["routeKey"])
        .filter(|r| *r != "$default")
        .map(|r| r.split_once(' ').map_or(r, |(_, p)| p));
    t.attr("http.route", route);
    t.attr("url.path", s(v, &["rawPath"]));
    t.attr("server.address", Some(domain));
    if t.kind == TriggerKind::ApiGatewayHttp {
        t.attr("aws.api_gateway.api_id", s(ctx, &["apiId"]));
        t.attr("aws.api_gateway.stage", s(ctx, &["stage"]));
    }
    t.attr("aws.api_gateway.request_id", s(ctx, &["requestId"]));
    Some(t)
}

/// Payload format 1.0: a REST API.
fn rest_api(v: &Value, ctx: &Value) -> Option<Trigger> {
    v.get("httpMethod")?;
    let mut t = Trigger::new(TriggerKind::ApiGatewayRest);
    t.attr("http.request.method", s(v, &["httpMethod"]));
    t.attr("http.route", s(v, &["resource"]));
    t.attr("url.path", s(v, &["path"]));
    t.attr("server.address", s(ctx, &["domainName"]));
    t.attr("aws.api_gateway.api_id", s(ctx, &["apiId"]));
    t.attr("aws.api_gateway.stage", s(ctx, &["stage"]));
    t.attr("aws.api_gateway.request_id", s(ctx, &["requestId"]));
    Some(t)
}

fn sqs(records: &[Value]) -> Trigger {
    let mut t = Trigger::new(TriggerKind::Sqs);
    let arn = s(&records[0], &["eventSourceARN"]);
    t.attr("messaging.system", Some("aws_sqs"));
    t.attr("messaging.destination.name", arn.map(arn_name));
    t.attr("aws.lambda.event_source.arn", arn);
    for r in records {
        if let Some(id) = s(r, &["messageId"]) {
            t.messages.push(InboundMessage {
                service: "SQS",
                id: id.to_string(),
                trace_header: s(r, &["attributes", "AWSTraceHeader"]).map(str::to_string),
            });
        }
    }
    t
}

fn sns(records: &[Value]) -> Trigger {
    let mut t = Trigger::new(TriggerKind::Sns);
    let arn = s(&records[0], &["Sns", "TopicArn"]);
    t.attr("messaging.system", Some("aws_sns"));
    t.attr("messaging.destination.name", arn.map(arn_name));
    t.attr("aws.sns.topic.arn", arn);
    t.messages_from(records, "SNS", &["Sns", "MessageId"]);
    t
}

fn s3(records: &[Value]) -> Trigger {
    let first = &records[0];
    let mut t = Trigger::new(TriggerKind::S3);
    let bucket = s(first, &["s3", "bucket", "name"]);
    // S3 event keys are URL-encoded with '+' for spaces.
    let key = s(first, &["s3", "object", "key"]).map(|k| percent_decode(k, true));
    let event = s(first, &["eventName"]).unwrap_or("");
    t.attr("aws.s3.bucket", bucket);
    t.attr("aws.s3.key", key.as_deref());
    t.attr("faas.document.collection", bucket);
    t.attr("faas.document.name", key.as_deref());
    t.attr("faas.document.operation", document_operation(event));
    t.attr("faas.document.time", s(first, &["eventTime"]));
    t.attr("aws.s3.event_name", Some(event));
    t
}

fn dynamodb_stream(records: &[Value]) -> Trigger {
    let first = &records[0];
    let mut t = Trigger::new(TriggerKind::DynamoDbStream);
    let arn = s(first, &["eventSourceARN"]);
    // arn:aws:dynamodb:region:account:table/NAME/stream/LABEL
    let table = arn
        .and_then(|a| a.split_once(":table/"))
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest));
    t.attr("aws.dynamodb.table_names", table);
    t.attr("faas.document.collection", table);
    let operation = document_operation(s(first, &["eventName"]).unwrap_or(""));
    t.attr("faas.document.operation", operation);
    t.attr("aws.lambda.event_source.arn", arn);
    t
}

fn kinesis(records: &[Value]) -> Trigger {
    let mut t = Trigger::new(TriggerKind::Kinesis);
    let arn = s(&records[0], &["eventSourceARN"]);
    t.attr("messaging.system", Some("aws_kinesis"));
    let stream = arn.map(|a| a.rsplit('/').next().unwrap_or(a));
    t.attr("aws.kinesis.stream_name", stream);
    t.attr("messaging.destination.name", stream);
    t.attr("aws.lambda.event_source.arn", arn);
    t.messages_from(records, "Kinesis", &["kinesis", "sequenceNumber"]);
    t
}

/// An EventBridge event (a schedule is one with `detail-type: Scheduled Event`).
fn eventbridge(v: &Value) -> Option<Trigger> {
    let (source, detail_type) = (s(v, &["source"])?, s(v, &["detail-type"])?);
    let mut t = Trigger::new(if detail_type == "Scheduled Event" {
        TriggerKind::Schedule
    } else {
        TriggerKind::EventBridge
    });
    t.attr("aws.eventbridge.source", Some(source));
    t.attr("aws.eventbridge.detail_type", Some(detail_type));
    if t.kind == TriggerKind::Schedule {
        let rule = v
            .get("resources")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .and_then(Value::as_str);
        t.attr("aws.eventbridge.rule.arn", rule);
        t.attr("faas.time", s(v, &["time"]));
    }
    if let Some(id) = s(v, &["id"]) {
        t.messages.push(InboundMessage {
            service: "EventBridge",
            id: id.to_string(),
            trace_header: None,
        });
    }
    Some(t)
}

/// `faas.document.operation` from an S3 or DynamoDB event name.
fn document_operation(event_name: &str) -> Option<&'static str> {
    if event_name.starts_with("ObjectCreated") || event_name == "INSERT" {
        Some("insert")
    } else if event_name.starts_with("ObjectRemoved") || event_name == "REMOVE" {
        Some("delete")
    } else if event_name == "MODIFY" || event_name.starts_with("ObjectRestore") {
        Some("edit")
    } else {
        None
    }
}

/// How a cut event shows its type: every needle of a row is in the event (whitespace
/// removed); the first row that matches wins.
const TELLTALES: &[(TriggerKind, &[&str])] = &[
    (TriggerKind::Alb, &["\"requestContext\"", "\"elb\""]),
    (
        TriggerKind::FunctionUrl,
        &["\"requestContext\"", ".lambda-url."],
    ),
    (
        TriggerKind::ApiGatewayHttp,
        &["\"requestContext\"", "\"routeKey\""],
    ),
    (
        TriggerKind::ApiGatewayRest,
        &["\"requestContext\"", "\"httpMethod\""],
    ),
    (TriggerKind::Sqs, &["\"eventSource\":\"aws:sqs\""]),
    (TriggerKind::Sqs, &["\"EventSource\":\"aws:sqs\""]),
    (TriggerKind::Sns, &["\"eventSource\":\"aws:sns\""]),
    (TriggerKind::Sns, &["\"EventSource\":\"aws:sns\""]),
    (TriggerKind::S3, &["\"eventSource\":\"aws:s3\""]),
    (TriggerKind::S3, &["\"EventSource\":\"aws:s3\""]),
    (
        TriggerKind::DynamoDbStream,
        &["\"eventSource\":\"aws:dynamodb\""],
    ),
    (
        TriggerKind::DynamoDbStream,
        &["\"EventSource\":\"aws:dynamodb\""],
    ),
    (TriggerKind::Kinesis, &["\"eventSource\":\"aws:kinesis\""]),
    (TriggerKind::Kinesis, &["\"EventSource\":\"aws:kinesis\""]),
    (TriggerKind::Schedule, &["\"ScheduledEvent\""]),
    (
        TriggerKind::EventBridge,
        &["\"detail-type\"", "\"source\":"],
    ),
];

/// The producing service and the id key of the messages a batch event consumes.
fn message_key(kind: TriggerKind) -> Option<(&'static str, &'static str)> {
    match kind {
        TriggerKind::Sqs => Some(("SQS", "messageId")),
        TriggerKind::Sns => Some(("SNS", "MessageId")),
        TriggerKind::Kinesis => Some(("Kinesis", "sequenceNumber")),
        _ => None,
    }
}

/// A cut event: its kind from telltale keys, its message ids by scanning.
fn from_prefix(event: &[u8]) -> Trigger {
    let text = String::from_utf8_lossy(event);
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let kind = TELLTALES
        .iter()
        .find(|(_, needles)| needles.iter().all(|n| compact.contains(n)))
        .map_or(TriggerKind::Other, |(kind, _)| *kind);
    let mut t = Trigger::new(kind);
    if let Some((service, key)) = message_key(kind) {
        let traces = if kind == TriggerKind::Sqs {
            scan_json(&text, "AWSTraceHeader")
        } else {
            Vec::new()
        };
        let ids = scan_json(&text, key);
        // Trace headers pair with ids only when every record has one.
        let paired = traces.len() == ids.len();
        for (i, id) in ids.into_iter().enumerate() {
            t.messages.push(InboundMessage {
                service,
                id,
                trace_header: paired.then(|| traces[i].clone()),
            });
        }
    }
    t
}
