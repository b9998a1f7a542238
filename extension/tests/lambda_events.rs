//! Lambda triggers, table-driven over real event payloads (`tests/payloads/events/`,
//! shaped like AWS's documented sample events): the trigger type, its key attributes
//! and the message ids a consumer invocation links by.

use tapline::{parse_trigger, TriggerKind};

struct Case {
    file: &'static str,
    kind: TriggerKind,
    faas_trigger: &'static str,
    attributes: &'static [(&'static str, &'static str)],
    messages: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        file: "apigateway-rest.json",
        kind: TriggerKind::ApiGatewayRest,
        faas_trigger: "http",
        attributes: &[
            ("http.request.method", "GET"),
            ("http.route", "/orders/{id}"),
            ("url.path", "/orders/42"),
            ("aws.api_gateway.api_id", "abc123"),
            ("aws.api_gateway.stage", "prod"),
        ],
        messages: &[],
    },
    Case {
        file: "apigateway-http.json",
        kind: TriggerKind::ApiGatewayHttp,
        faas_trigger: "http",
        attributes: &[
            ("http.request.method", "POST"),
            ("http.route", "/carts/{cartId}"),
            ("url.path", "/carts/7"),
            ("aws.api_gateway.api_id", "r3pmxmplak"),
        ],
        messages: &[],
    },
    Case {
        file: "function-url.json",
        kind: TriggerKind::FunctionUrl,
        faas_trigger: "http",
        attributes: &[
            ("http.request.method", "POST"),
            ("url.path", "/my/path"),
            ("server.address", "a1b2c3d4e5f6.lambda-url.us-east-2.on.aws"),
        ],
        messages: &[],
    },
    Case {
        file: "alb.json",
        kind: TriggerKind::Alb,
        faas_trigger: "http",
        attributes: &[
            ("http.request.method", "GET"),
            ("url.path", "/lambda"),
            (
                "aws.elb.target_group.arn",
                "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/lambda-279XGJDqGZ5rsrHC2Fjr/49e9d65c45c6791a",
            ),
        ],
        messages: &[],
    },
    Case {
        file: "sqs.json",
        kind: TriggerKind::Sqs,
        faas_trigger: "pubsub",
        attributes: &[
            ("messaging.system", "aws_sqs"),
            ("messaging.destination.name", "my-queue"),
            (
                "aws.lambda.event_source.arn",
                "arn:aws:sqs:us-east-2:123456789012:my-queue",
            ),
        ],
        messages: &[
            "059f36b4-87a3-44ab-83d2-661975830a7d",
            "2e1424d4-f796-459a-8184-9c92662be6da",
        ],
    },
    Case {
        file: "sns.json",
        kind: TriggerKind::Sns,
        faas_trigger: "pubsub",
        attributes: &[
            ("messaging.system", "aws_sns"),
            ("messaging.destination.name", "sns-lambda"),
            (
                "aws.sns.topic.arn",
                "arn:aws:sns:us-east-1:123456789012:sns-lambda",
            ),
        ],
        messages: &["95df01b4-ee98-5cb9-9903-4c221d41eb5e"],
    },
    Case {
        file: "s3.json",
        kind: TriggerKind::S3,
        faas_trigger: "datasource",
        attributes: &[
            ("aws.s3.bucket", "DOC-EXAMPLE-BUCKET"),
            ("aws.s3.key", "uploads/my photo.jpg"),
            ("faas.document.collection", "DOC-EXAMPLE-BUCKET"),
            ("faas.document.operation", "insert"),
            ("faas.document.time", "2019-09-03T19:37:27.192Z"),
        ],
        messages: &[],
    },
    Case {
        file: "eventbridge.json",
        kind: TriggerKind::EventBridge,
        faas_trigger: "pubsub",
        attributes: &[
            ("aws.eventbridge.source", "com.example.orders"),
            ("aws.eventbridge.detail_type", "OrderPlaced"),
        ],
        messages: &["fe8d3c65-xmpl-c5c3-2c87-81584709a377"],
    },
    Case {
        file: "schedule.json",
        kind: TriggerKind::Schedule,
        faas_trigger: "timer",
        attributes: &[(
            "aws.eventbridge.rule.arn",
            "arn:aws:events:us-east-2:123456789012:rule/my-schedule",
        )],
        messages: &["cdc73f9d-aea9-11e3-9d5a-835b769c0d9c"],
    },
    Case {
        file: "dynamodb-stream.json",
        kind: TriggerKind::DynamoDbStream,
        faas_trigger: "datasource",
        attributes: &[
            ("aws.dynamodb.table_names", "ExampleTableWithStream"),
            ("faas.document.collection", "ExampleTableWithStream"),
            ("faas.document.operation", "insert"),
        ],
        messages: &[],
    },
    Case {
        file: "kinesis.json",
        kind: TriggerKind::Kinesis,
        faas_trigger: "pubsub",
        attributes: &[
            ("messaging.system", "aws_kinesis"),
            ("aws.kinesis.stream_name", "lambda-stream"),
        ],
        messages: &["49590338271490256608559692538361571095921575989136588898"],
    },
    Case {
        file: "direct.json",
        kind: TriggerKind::Other,
        faas_trigger: "other",
        attributes: &[],
        messages: &[],
    },
];

fn payload(file: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/payloads/events/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_trigger_type() {
    for c in CASES {
        let t = parse_trigger(&payload(c.file));
        assert_eq!(t.kind, c.kind, "{}", c.file);
        assert_eq!(t.kind.faas_trigger(), c.faas_trigger, "{}", c.file);
        for (k, v) in c.attributes {
            assert!(
                t.attributes.iter().any(|(k2, v2)| k2 == k && v2 == v),
                "{}: want {k}={v} in {:?}",
                c.file,
                t.attributes
            );
        }
        let ids: Vec<&str> = t.messages.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, c.messages, "{}", c.file);
        // What the trigger keeps is identifiers: no event headers, query or body.
        let all = format!("{:?}", t.attributes);
        for leak in ["curl/", "203.0.113.10", "Hello from", "1234ABCD", "value1"] {
            assert!(!all.contains(leak), "{}: {leak} in {all}", c.file);
        }
    }
}

#[test]
fn sqs_trace_header_is_kept_per_message() {
    let t = parse_trigger(&payload("sqs.json"));
    assert_eq!(
        t.messages[0].trace_header.as_deref(),
        Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    );
    assert_eq!(t.messages[1].trace_header, None);
    assert_eq!(t.batch_size, Some(2));
}

#[test]
fn cut_events_keep_their_kind_and_message_ids() {
    for c in CASES {
        let full = payload(c.file);
        let cut = &full[..full.len() * 2 / 3];
        let t = parse_trigger(cut);
        if serde_json::from_slice::<serde_json::Value>(cut).is_ok() {
            continue;
        }
        assert_eq!(t.kind.faas_trigger(), c.faas_trigger, "{} (cut)", c.file);
        let ids: Vec<&str> = t.messages.iter().map(|m| m.id.as_str()).collect();
        assert!(
            c.messages.starts_with(&ids) || ids.is_empty(),
            "{}: {ids:?}",
            c.file
        );
    }
    let sqs = payload("sqs.json");
    let t = parse_trigger(&sqs[..sqs.len() / 2]);
    assert_eq!(t.kind, TriggerKind::Sqs);
    assert_eq!(t.messages[0].id, "059f36b4-87a3-44ab-83d2-661975830a7d");
}
