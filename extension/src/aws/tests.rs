//! Table-driven recognition tests: requests and responses shaped like what the SDKs
//! send and AWS (or moto) answers.

use super::*;
use crate::exchange::{Body, Exchange};

struct Case {
    method: &'static str,
    host: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    status: u16,
    response_headers: &'static [(&'static str, &'static str)],
    response: &'static str,
}

const AUTH_DDB: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=deadbeefcafe";

fn exchange(c: &Case) -> Exchange {
    let mut ex = crate::exchange::sample();
    ex.method = Some(c.method.into());
    ex.host = Some(c.host.into());
    ex.path = Some(c.path.into());
    ex.query = c.query.map(str::to_string);
    ex.request_headers = c
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    ex.response_headers = c
        .response_headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    ex.status = Some(c.status);
    let body = |s: &str| {
        (!s.is_empty()).then(|| Body {
            bytes: s.as_bytes().to_vec(),
            size: s.len() as u64,
            truncated: false,
            decoded: None,
        })
    };
    ex.request_body = body(c.body);
    ex.response_body = body(c.response);
    ex
}

const NONE: &[(&str, &str)] = &[];

fn case(c: Case) -> AwsCall {
    recognise(&exchange(&c)).expect("recognised")
}

#[test]
fn dynamodb_json_protocol() {
    let call = case(Case {
        method: "POST",
        host: "dynamodb.us-east-1.amazonaws.com",
        path: "/",
        query: None,
        headers: &[
            ("X-Amz-Target", "DynamoDB_20120810.PutItem"),
            ("Authorization", AUTH_DDB),
            ("Content-Type", "application/x-amz-json-1.0"),
        ],
        body: r#"{"TableName":"orders","Item":{"id":{"S":"1"}}}"#,
        status: 200,
        response_headers: &[("x-amzn-RequestId", "REQ123")],
        response: "{}",
    });
    assert_eq!(call.name(), "DynamoDB.PutItem");
    assert_eq!(call.region.as_deref(), Some("us-east-1"));
    assert_eq!(
        call.resource,
        [("aws.dynamodb.table_names", "orders".into())]
    );
    assert_eq!(call.request_id.as_deref(), Some("REQ123"));
    // Nothing of the credential but region and service.
    let dbg = format!("{call:?}");
    assert!(
        !dbg.contains("AKIDEXAMPLE") && !dbg.contains("deadbeef"),
        "{dbg}"
    );

    let batch = case(Case {
        method: "POST",
        host: "127.0.0.1:4566",
        path: "/",
        query: None,
        headers: &[("X-Amz-Target", "DynamoDB_20120810.BatchWriteItem")],
        body: r#"{"RequestItems":{"a":[],"b":[]}}"#,
        status: 200,
        response_headers: NONE,
        response: "{}",
    });
    assert_eq!(batch.name(), "DynamoDB.BatchWriteItem");
    assert_eq!(
        batch
            .resource_values("aws.dynamodb.table_names")
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
}

#[test]
fn sqs_json_and_query_protocols() {
    let json = case(Case {
        method: "POST",
        host: "localhost:9324",
        path: "/",
        query: None,
        headers: &[
            ("X-Amz-Target", "AmazonSQS.SendMessage"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AK/20240101/eu-west-1/sqs/aws4_request, SignedHeaders=host, Signature=00"),
        ],
        body: r#"{"QueueUrl":"http://localhost:9324/123456789012/jobs","MessageBody":"hi"}"#,
        status: 200,
        response_headers: &[("x-amzn-RequestId", "R1")],
        response: r#"{"MD5OfMessageBody":"x","MessageId":"5fea7756-0ea4-451a-a703-a558b933e274"}"#,
    });
    assert_eq!(json.name(), "SQS.SendMessage");
    assert_eq!(json.region.as_deref(), Some("eu-west-1"));
    assert_eq!(
        json.resource,
        [(
            "aws.sqs.queue_url",
            "http://localhost:9324/123456789012/jobs".into()
        )]
    );
    assert_eq!(json.message_ids, ["5fea7756-0ea4-451a-a703-a558b933e274"]);

    let query = case(Case {
        method: "POST",
        host: "sqs.us-west-2.amazonaws.com",
        path: "/",
        query: None,
        headers: &[("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
        body: "Action=SendMessageBatch&QueueUrl=https%3A%2F%2Fsqs.us-west-2.amazonaws.com%2F1%2Fq&SendMessageBatchRequestEntry.1.Id=a",
        status: 200,
        response_headers: NONE,
        response: "<SendMessageBatchResponse><SendMessageBatchResult><SendMessageBatchResultEntry><Id>a</Id><MessageId>m-1</MessageId></SendMessageBatchResultEntry><SendMessageBatchResultEntry><MessageId>m-2</MessageId></SendMessageBatchResultEntry></SendMessageBatchResult><ResponseMetadata><RequestId>RQ</RequestId></ResponseMetadata></SendMessageBatchResponse>",
    });
    assert_eq!(query.name(), "SQS.SendMessageBatch");
    assert_eq!(query.region.as_deref(), Some("us-west-2"));
    assert_eq!(
        query.resource_values("aws.sqs.queue_url").next(),
        Some("https://sqs.us-west-2.amazonaws.com/1/q")
    );
    assert_eq!(query.message_ids, ["m-1", "m-2"]);
    assert_eq!(query.request_id.as_deref(), Some("RQ"));
}

#[test]
fn sns_kinesis_eventbridge_sfn() {
    let sns = case(Case {
        method: "POST",
        host: "sns.us-east-1.amazonaws.com",
        path: "/",
        query: None,
        headers: &[("Content-Type", "application/x-www-form-urlencoded")],
        body: "Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A1%3Aalerts&Message=x",
        status: 200,
        response_headers: NONE,
        response: "<PublishResponse><PublishResult><MessageId>sns-1</MessageId></PublishResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishResponse>",
    });
    assert_eq!(sns.name(), "SNS.Publish");
    assert_eq!(
        sns.resource,
        [("aws.sns.topic.arn", "arn:aws:sns:us-east-1:1:alerts".into())]
    );
    assert_eq!(sns.message_ids, ["sns-1"]);

    let kin = case(Case {
        method: "POST",
        host: "kinesis.us-east-1.amazonaws.com",
        path: "/",
        query: None,
        headers: &[("X-Amz-Target", "Kinesis_20131202.PutRecords")],
        body: r#"{"StreamName":"clicks","Records":[]}"#,
        status: 200,
        response_headers: NONE,
        response: r#"{"FailedRecordCount":0,"Records":[{"SequenceNumber":"495","ShardId":"s"},{"SequenceNumber":"496","ShardId":"s"}]}"#,
    });
    assert_eq!(kin.name(), "Kinesis.PutRecords");
    assert_eq!(kin.resource, [("aws.kinesis.stream_name", "clicks".into())]);
    assert_eq!(kin.message_ids, ["495", "496"]);

    let ev = case(Case {
        method: "POST",
        host: "events.eu-west-1.amazonaws.com",
        path: "/",
        query: None,
        headers: &[("X-Amz-Target", "AWSEvents.PutEvents")],
        body: r#"{"Entries":[{"Source":"app","DetailType":"t","Detail":"{}","EventBusName":"orders-bus"}]}"#,
        status: 200,
        response_headers: NONE,
        response: r#"{"Entries":[{"EventId":"e-1"}],"FailedEntryCount":0}"#,
    });
    assert_eq!(ev.name(), "EventBridge.PutEvents");
    assert_eq!(ev.region.as_deref(), Some("eu-west-1"));
    assert_eq!(
        ev.resource,
        [("aws.eventbridge.event_bus.name", "orders-bus".into())]
    );
    assert_eq!(ev.message_ids, ["e-1"]);

    let sfn = case(Case {
        method: "POST",
        host: "vpce-0a1b-2c3d.states.us-east-1.vpce.amazonaws.com",
        path: "/",
        query: None,
        headers: &[("X-Amz-Target", "AWSStepFunctions.StartExecution")],
        body: r#"{"stateMachineArn":"arn:aws:states:us-east-1:1:stateMachine:m","input":"{}"}"#,
        status: 200,
        response_headers: NONE,
        response: "{}",
    });
    assert_eq!(sfn.name(), "SFN.StartExecution");
    assert_eq!(sfn.region.as_deref(), Some("us-east-1"));
}

/// method, host, path, query, operation, bucket, key
type S3Row = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
);
const S3_ROWS: &[S3Row] = &[
    // method, host, path, query, operation, bucket, key
    (
        "PUT",
        "s3.us-east-1.amazonaws.com",
        "/photos/a/b.jpg",
        None,
        "PutObject",
        "photos",
        "a/b.jpg",
    ),
    (
        "GET",
        "photos.s3.us-east-1.amazonaws.com",
        "/a%20b.jpg",
        None,
        "GetObject",
        "photos",
        "a b.jpg",
    ),
    (
        "GET",
        "photos.s3.amazonaws.com",
        "/",
        Some("list-type=2&prefix=a"),
        "ListObjectsV2",
        "photos",
        "",
    ),
    (
        "HEAD",
        "my.bucket.s3-us-west-2.amazonaws.com",
        "/k",
        None,
        "HeadObject",
        "my.bucket",
        "k",
    ),
    (
        "DELETE",
        "s3.amazonaws.com",
        "/photos/k",
        None,
        "DeleteObject",
        "photos",
        "k",
    ),
    (
        "POST",
        "s3.amazonaws.com",
        "/photos/k",
        Some("uploads"),
        "CreateMultipartUpload",
        "photos",
        "k",
    ),
    (
        "PUT",
        "bucket.vpce-1a2b.s3.us-east-1.vpce.amazonaws.com",
        "/k",
        None,
        "PutObject",
        "bucket",
        "k",
    ),
];

#[test]
fn s3_rest_both_styles() {
    for (method, host, path, query, op, bucket, key) in S3_ROWS {
        let call = case(Case {
            method,
            host,
            path,
            query: *query,
            headers: NONE,
            body: "",
            status: 200,
            response_headers: &[("x-amz-request-id", "S3REQ"), ("x-amz-id-2", "EXT/2=")],
            response: "",
        });
        assert_eq!(call.name(), format!("S3.{op}"), "{host}{path}");
        assert_eq!(
            call.resource_values("aws.s3.bucket").next(),
            Some(*bucket),
            "{host}{path}"
        );
        assert_eq!(
            call.resource_values("aws.s3.key").next().unwrap_or(""),
            *key,
            "{host}{path}"
        );
        assert_eq!(call.request_id.as_deref(), Some("S3REQ"));
        assert_eq!(call.extended_request_id.as_deref(), Some("EXT/2="));
    }
}

#[test]
fn s3_local_endpoint_known_by_its_signature() {
    // A local endpoint: known as S3 by its signature, path style.
    let local = case(Case {
        method: "GET",
        host: "127.0.0.1:5000",
        path: "/bucket/key.txt",
        query: None,
        headers: &[("Authorization", "AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"), ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")],
        body: "",
        status: 200,
        response_headers: NONE,
        response: "",
    });
    assert_eq!(local.name(), "S3.GetObject");
    assert_eq!(
        local.resource_values("aws.s3.bucket").next(),
        Some("bucket")
    );
}

#[test]
fn lambda_sts_secrets_ssm() {
    let inv = case(Case {
        method: "POST",
        host: "127.0.0.1:5000",
        path: "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Aworker/invocations",
        query: None,
        headers: &[("X-Amz-Invocation-Type", "Event")],
        body: "{}",
        status: 202,
        response_headers: &[("x-amzn-RequestId", "L1")],
        response: "",
    });
    assert_eq!(inv.name(), "Lambda.Invoke");
    assert_eq!(
        inv.resource,
        [(
            "aws.lambda.function.name",
            "arn:aws:lambda:us-east-1:1:function:worker".into()
        )]
    );
    let sts = case(Case {
        method: "POST",
        host: "sts.amazonaws.com",
        path: "/",
        query: None,
        headers: &[("Content-Type", "application/x-www-form-urlencoded")],
        body: "Action=GetCallerIdentity&Version=2011-06-15",
        status: 200,
        response_headers: NONE,
        response: "",
    });
    assert_eq!(sts.name(), "STS.GetCallerIdentity");
    let sec = case(Case {
        method: "POST",
        host: "localhost:4566",
        path: "/",
        query: None,
        headers: &[("X-Amz-Target", "secretsmanager.GetSecretValue")],
        body: r#"{"SecretId":"prod/db"}"#,
        status: 200,
        response_headers: NONE,
        response: r#"{"Name":"prod/db","SecretString":"PLANTED"}"#,
    });
    assert_eq!(sec.name(), "SecretsManager.GetSecretValue");
    assert!(!format!("{sec:?}").contains("PLANTED"));
    let ssm = case(Case {
        method: "POST",
        host: "ssm.us-east-1.amazonaws.com",
        path: "/",
        query: None,
        headers: &[("X-Amz-Target", "AmazonSSM.GetParameter")],
        body: r#"{"Name":"/app/db-url","WithDecryption":true}"#,
        status: 200,
        response_headers: NONE,
        response: r#"{"Parameter":{"Value":"PLANTED"}}"#,
    });
    assert_eq!(ssm.name(), "SSM.GetParameter");
    assert_eq!(
        ssm.resource,
        [("aws.ssm.parameter.name", "/app/db-url".into())]
    );
}

#[test]
fn not_aws() {
    for (host, path, headers) in [
        ("api.example.com", "/v1/items", NONE),
        (
            "127.0.0.1:8080",
            "/2015-03-31/functions/x/invocations",
            NONE,
        ),
        ("example.com", "/", &[("Authorization", "Bearer abc")][..]),
    ] {
        let ex = exchange(&Case {
            method: "POST",
            host,
            path,
            query: None,
            headers,
            body: "",
            status: 200,
            response_headers: NONE,
            response: "",
        });
        assert_eq!(recognise(&ex), None, "{host}{path}");
    }
}

#[test]
fn scope_parsing() {
    let mut ex = crate::exchange::sample();
    ex.request_headers = vec![("authorization".into(), AUTH_DDB.into())];
    assert_eq!(
        credential_scope(&ex),
        Some(("us-east-1".into(), "dynamodb".into()))
    );
    ex.request_headers = vec![];
    ex.query = Some("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20240101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Signature=ff".into());
    assert_eq!(
        credential_scope(&ex),
        Some(("eu-west-1".into(), "s3".into()))
    );
}

#[test]
fn cut_bodies_still_name_the_table() {
    let mut ex = exchange(&Case {
        method: "POST",
        host: "dynamodb.us-east-1.amazonaws.com",
        path: "/",
        query: None,
        headers: &[("X-Amz-Target", "DynamoDB_20120810.PutItem")],
        body: r#"{"TableName":"big","Item":{"blob":{"S":"aaaaaaaa"#,
        status: 200,
        response_headers: NONE,
        response: "",
    });
    if let Some(b) = &mut ex.request_body {
        b.truncated = true;
    }
    let call = recognise(&ex).unwrap();
    assert_eq!(call.resource, [("aws.dynamodb.table_names", "big".into())]);
}
