//! What triggered a Lambda invocation, read from the event the runtime fetched (the
//! Runtime API `next` response the library captured): API Gateway REST and HTTP APIs,
//! Function URLs, ALB, SQS, SNS, S3, EventBridge, DynamoDB and Kinesis streams.
//!
//! Only identifiers are read — route, queue, topic, bucket and key, stream, message ids,
//! the `AWSTraceHeader` — never headers, query strings or bodies of the event, which
//! can carry the caller's secrets. A captured prefix (the event was cut at
//! `TAPLINE_MAX_BODY`) does not parse: then the type is told from telltale keys and the
//! message ids are scanned for, so links still work for large batches.

use serde_json::Value;

use super::fields::scan_json;

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

fn from_value(v: &Value) -> Trigger {
    let mut t = Trigger {
        kind: TriggerKind::Other,
        attributes: Vec::new(),
        batch_size: None,
        messages: Vec::new(),
    };
    let attr = |t: &mut Trigger, k: &'static str, v: Option<&str>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            t.attributes.push((k, v.to_string()));
        }
    };
    if let Some(ctx) = v.get("requestContext") {
        if let Some(tg) = s(ctx, &["elb", "targetGroupArn"]) {
            t.kind = TriggerKind::Alb;
            attr(&mut t, "http.request.method", s(v, &["httpMethod"]));
            attr(&mut t, "url.path", s(v, &["path"]));
            attr(&mut t, "aws.elb.target_group.arn", Some(tg));
        } else if ctx.get("http").is_some() {
            let domain = s(ctx, &["domainName"]).unwrap_or("");
            t.kind = if domain.contains(".lambda-url.") {
                TriggerKind::FunctionUrl
            } else {
                TriggerKind::ApiGatewayHttp
            };
            attr(&mut t, "http.request.method", s(ctx, &["http", "method"]));
            let route = s(v, &["routeKey"])
                .filter(|r| *r != "$default")
                .map(|r| r.split_once(' ').map_or(r, |(_, p)| p));
            attr(&mut t, "http.route", route);
            attr(&mut t, "url.path", s(v, &["rawPath"]));
            attr(&mut t, "server.address", Some(domain));
            if t.kind == TriggerKind::ApiGatewayHttp {
                attr(&mut t, "aws.api_gateway.api_id", s(ctx, &["apiId"]));
                attr(&mut t, "aws.api_gateway.stage", s(ctx, &["stage"]));
            }
            attr(&mut t, "aws.api_gateway.request_id", s(ctx, &["requestId"]));
        } else if v.get("httpMethod").is_some() {
            t.kind = TriggerKind::ApiGatewayRest;
            attr(&mut t, "http.request.method", s(v, &["httpMethod"]));
            attr(&mut t, "http.route", s(v, &["resource"]));
            attr(&mut t, "url.path", s(v, &["path"]));
            attr(&mut t, "server.address", s(ctx, &["domainName"]));
            attr(&mut t, "aws.api_gateway.api_id", s(ctx, &["apiId"]));
            attr(&mut t, "aws.api_gateway.stage", s(ctx, &["stage"]));
            attr(&mut t, "aws.api_gateway.request_id", s(ctx, &["requestId"]));
        }
        return t;
    }
    if let Some(records) = v.get("Records").and_then(Value::as_array) {
        t.batch_size = Some(records.len());
        let Some(first) = records.first() else {
            return t;
        };
        let source = s(first, &["eventSource"]).or(s(first, &["EventSource"]));
        match source.unwrap_or("") {
            "aws:sqs" => {
                t.kind = TriggerKind::Sqs;
                let arn = s(first, &["eventSourceARN"]);
                attr(&mut t, "messaging.system", Some("aws_sqs"));
                attr(&mut t, "messaging.destination.name", arn.map(arn_name));
                attr(&mut t, "aws.lambda.event_source.arn", arn);
                for r in records {
                    if let Some(id) = s(r, &["messageId"]) {
                        t.messages.push(InboundMessage {
                            service: "SQS",
                            id: id.to_string(),
                            trace_header: s(r, &["attributes", "AWSTraceHeader"])
                                .map(str::to_string),
                        });
                    }
                }
            }
            "aws:sns" => {
                t.kind = TriggerKind::Sns;
                let arn = s(first, &["Sns", "TopicArn"]);
                attr(&mut t, "messaging.system", Some("aws_sns"));
                attr(&mut t, "messaging.destination.name", arn.map(arn_name));
                attr(&mut t, "aws.sns.topic.arn", arn);
                for r in records {
                    if let Some(id) = s(r, &["Sns", "MessageId"]) {
                        t.messages.push(InboundMessage {
                            service: "SNS",
                            id: id.to_string(),
                            trace_header: None,
                        });
                    }
                }
            }
            "aws:s3" => {
                t.kind = TriggerKind::S3;
                let bucket = s(first, &["s3", "bucket", "name"]);
                // S3 event keys are URL-encoded with '+' for spaces.
                let key = s(first, &["s3", "object", "key"])
                    .map(|k| crate::text::percent_decode(k, true));
                let event = s(first, &["eventName"]).unwrap_or("");
                attr(&mut t, "aws.s3.bucket", bucket);
                attr(&mut t, "aws.s3.key", key.as_deref());
                attr(&mut t, "faas.document.collection", bucket);
                attr(&mut t, "faas.document.name", key.as_deref());
                attr(&mut t, "faas.document.operation", document_operation(event));
                attr(&mut t, "faas.document.time", s(first, &["eventTime"]));
                attr(&mut t, "aws.s3.event_name", Some(event));
            }
            "aws:dynamodb" => {
                t.kind = TriggerKind::DynamoDbStream;
                let arn = s(first, &["eventSourceARN"]);
                // arn:aws:dynamodb:region:account:table/NAME/stream/LABEL
                let table = arn
                    .and_then(|a| a.split_once(":table/"))
                    .map(|(_, rest)| rest.split('/').next().unwrap_or(rest));
                attr(&mut t, "aws.dynamodb.table_names", table);
                attr(&mut t, "faas.document.collection", table);
                attr(
                    &mut t,
                    "faas.document.operation",
                    document_operation(s(first, &["eventName"]).unwrap_or("")),
                );
                attr(&mut t, "aws.lambda.event_source.arn", arn);
            }
            "aws:kinesis" => {
                t.kind = TriggerKind::Kinesis;
                let arn = s(first, &["eventSourceARN"]);
                attr(&mut t, "messaging.system", Some("aws_kinesis"));
                let stream = arn.map(|a| a.rsplit('/').next().unwrap_or(a));
                attr(&mut t, "aws.kinesis.stream_name", stream);
                attr(&mut t, "messaging.destination.name", stream);
                attr(&mut t, "aws.lambda.event_source.arn", arn);
                for r in records {
                    if let Some(id) = s(r, &["kinesis", "sequenceNumber"]) {
                        t.messages.push(InboundMessage {
                            service: "Kinesis",
                            id: id.to_string(),
                            trace_header: None,
                        });
                    }
                }
            }
            _ => t.batch_size = None,
        }
        return t;
    }
    if let (Some(source), Some(detail_type)) = (s(v, &["source"]), s(v, &["detail-type"])) {
        t.kind = if detail_type == "Scheduled Event" {
            TriggerKind::Schedule
        } else {
            TriggerKind::EventBridge
        };
        attr(&mut t, "aws.eventbridge.source", Some(source));
        attr(&mut t, "aws.eventbridge.detail_type", Some(detail_type));
        let rule = v
            .get("resources")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .and_then(Value::as_str);
        if t.kind == TriggerKind::Schedule {
            attr(&mut t, "aws.eventbridge.rule.arn", rule);
            attr(&mut t, "faas.time", s(v, &["time"]));
        }
        if let Some(id) = s(v, &["id"]) {
            t.messages.push(InboundMessage {
                service: "EventBridge",
                id: id.to_string(),
                trace_header: None,
            });
        }
    }
    t
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

/// A cut event: its kind from telltale keys, its message ids by scanning.
fn from_prefix(event: &[u8]) -> Trigger {
    let text = String::from_utf8_lossy(event);
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let has = |needle: &str| compact.contains(needle);
    let source = |name: &str| {
        has(&format!("\"eventSource\":\"aws:{name}\""))
            || has(&format!("\"EventSource\":\"aws:{name}\""))
    };
    let kind = if has("\"requestContext\"") && has("\"elb\"") {
        TriggerKind::Alb
    } else if has("\"requestContext\"") && has(".lambda-url.") {
        TriggerKind::FunctionUrl
    } else if has("\"requestContext\"") && has("\"routeKey\"") {
        TriggerKind::ApiGatewayHttp
    } else if has("\"requestContext\"") && has("\"httpMethod\"") {
        TriggerKind::ApiGatewayRest
    } else if source("sqs") {
        TriggerKind::Sqs
    } else if source("sns") {
        TriggerKind::Sns
    } else if source("s3") {
        TriggerKind::S3
    } else if source("dynamodb") {
        TriggerKind::DynamoDbStream
    } else if source("kinesis") {
        TriggerKind::Kinesis
    } else if has("\"detail-type\":\"ScheduledEvent\"") || has("\"ScheduledEvent\"") {
        TriggerKind::Schedule
    } else if has("\"detail-type\"") && has("\"source\":") {
        TriggerKind::EventBridge
    } else {
        TriggerKind::Other
    };
    let (service, key) = match kind {
        TriggerKind::Sqs => ("SQS", "messageId"),
        TriggerKind::Sns => ("SNS", "MessageId"),
        TriggerKind::Kinesis => ("Kinesis", "sequenceNumber"),
        _ => ("", ""),
    };
    let mut messages: Vec<InboundMessage> = Vec::new();
    if !key.is_empty() {
        let traces = if kind == TriggerKind::Sqs {
            scan_json(&text, "AWSTraceHeader")
        } else {
            Vec::new()
        };
        let ids = scan_json(&text, key);
        // Trace headers pair with ids only when every record has one.
        let paired = traces.len() == ids.len();
        for (i, id) in ids.into_iter().enumerate() {
            messages.push(InboundMessage {
                service,
                id,
                trace_header: paired.then(|| traces[i].clone()),
            });
        }
    }
    Trigger {
        kind,
        attributes: Vec::new(),
        batch_size: None,
        messages,
    }
}
