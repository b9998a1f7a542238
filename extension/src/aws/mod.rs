//! AWS API calls, recognised from the wire: an exchange with
//! `dynamodb.us-east-1.amazonaws.com` becomes `DynamoDB.PutItem` on table `orders`.
//!
//! Why here and once: language tracers each carry one parser per SDK; tapline sees the
//! requests every SDK sends, whatever the runtime, so one recogniser covers them all —
//! and it works against local and VPC endpoints too, because it reads the request's
//! shape (`X-Amz-Target`, the SigV4 credential scope, `Action=`, REST paths), not only
//! the host name.
//!
//! Invariant: recognition reads the raw (unmasked) exchange, but an [`AwsCall`] only
//! ever holds names — service, operation, region, resource identifiers, request and
//! message ids. Of the `Authorization` header only the credential scope's region and
//! service are read; key ids, signatures, session tokens and message or secret payloads
//! are never copied. The pipeline is: [`recognise_all`], then masking (which also runs
//! the resource values through the URL masker), then budgets and reports.

pub(crate) mod fields;
pub(crate) mod trigger;

pub(crate) use crate::exchange::{AwsCall, Service};

use crate::exchange::Exchange;
use crate::text::{form_pairs, pair_value, percent_decode};
use fields::{xml_texts, JsonBody};

/// Recognises every exchange of a batch, in place (before masking).
pub(crate) fn recognise_all(exchanges: &mut [Exchange]) {
    for ex in exchanges {
        if ex.aws.is_none() {
            ex.aws = recognise(ex);
        }
    }
}

/// The SigV4 credential scope's region and service: from `Authorization:
/// AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/dynamodb/aws4_request, ...` or a
/// presigned URL's `X-Amz-Credential`. The key id and the date are skipped.
pub(crate) fn credential_scope(ex: &Exchange) -> Option<(String, String)> {
    let from_header = ex.request_header("authorization").and_then(|a| {
        let a = a.trim_start();
        if !a.starts_with("AWS4-") {
            return None;
        }
        let at = a.find("Credential=")? + "Credential=".len();
        let cred = a[at..].split([',', ' ']).next()?;
        Some(cred.to_string())
    });
    let cred = from_header.or_else(|| {
        let pairs = form_pairs(ex.query.as_deref()?);
        pair_value(&pairs, "X-Amz-Credential").map(str::to_string)
    })?;
    // key-id / date / region / service / aws4_request: count from the end, since only
    // the key id could hold a '/' (it never does, but a scope is what we trust).
    let mut parts = cred.rsplit('/');
    if parts.next()? != "aws4_request" {
        return None;
    }
    let service = parts.next()?.to_string();
    let region = parts.next()?.to_string();
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() < 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (valid(&service) && valid(&region)).then_some((region, service))
}

/// What the host name says, for `*.amazonaws.com` (and `.com.cn`) hosts, VPC endpoints
/// and `bucket.s3.*` hosts.
#[derive(Debug, Default, PartialEq, Eq)]
struct HostInfo {
    service: Option<Service>,
    region: Option<String>,
    /// Virtual-hosted S3: the bucket from the host.
    bucket: Option<String>,
}

fn host_info(host: &str) -> HostInfo {
    let host = host.to_ascii_lowercase();
    let host = strip_port(&host);
    let labels: Vec<&str> = host.split('.').collect();
    let aws = host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn");
    let mut info = HostInfo::default();
    // S3 first: `bucket.s3.region.amazonaws.com`, `bucket.s3-us-west-2.amazonaws.com`,
    // `bucket.vpce-1a2b.s3.us-east-1.vpce.amazonaws.com`, `bucket.s3.localhost...`.
    if let Some(i) = labels
        .iter()
        .position(|l| *l == "s3" || l.starts_with("s3-") || *l == "s3-accelerate")
    {
        if aws || i > 0 {
            info.service = Some(Service::S3);
            let before: Vec<&str> = labels[..i]
                .iter()
                .copied()
                .take_while(|l| !l.starts_with("vpce-"))
                .collect();
            if !before.is_empty() {
                info.bucket = Some(before.join("."));
            }
            let region = labels[i]
                .strip_prefix("s3-")
                .filter(|r| is_region(r))
                .or_else(|| labels.get(i + 1).copied().filter(|r| is_region(r)));
            info.region = region.map(str::to_string);
            return info;
        }
    }
    if !aws {
        return info;
    }
    // `dynamodb.us-east-1.amazonaws.com`, `sqs.eu-west-1.amazonaws.com`,
    // `vpce-0a1b-2c3d.sqs.us-east-1.vpce.amazonaws.com`, `sts.amazonaws.com`.
    for (i, l) in labels.iter().enumerate() {
        if let Some(s) = Service::from_endpoint_prefix(l) {
            info.service = Some(s);
            info.region = labels
                .get(i + 1)
                .copied()
                .filter(|r| is_region(r))
                .map(str::to_string);
            break;
        }
    }
    info
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host;
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`.
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Could the request have an AWS shape (below: a SigV4 scope, an `x-amz-*` header, an
/// `Action` parameter) at all? `false` only when none of them can be there: no
/// `Authorization` and no `x-amz-*` header, and a query (and form body) that holds
/// neither `Action` nor `X-Amz-Credential` nor a `%` escape that could spell them. A
/// request to a host that is not AWS's is then not an AWS call, and most exchanges
/// skip the parameter decoding.
fn may_name_aws(ex: &Exchange) -> bool {
    let names_aws = |raw: &[u8]| {
        raw.contains(&b'%')
            || raw.windows(6).any(|w| w == b"Action")
            || raw.windows(16).any(|w| w == b"X-Amz-Credential")
    };
    let form_body = ex.request_header("content-type").is_some_and(|t| {
        t.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    ex.request_header("authorization").is_some()
        || ex
            .request_headers
            .iter()
            .any(|(n, _)| n.len() > 6 && n.as_bytes()[..6].eq_ignore_ascii_case(b"x-amz-"))
        || ex.query.as_deref().is_some_and(|q| names_aws(q.as_bytes()))
        || (form_body
            && ex
                .request_body
                .as_ref()
                .is_some_and(|b| names_aws(&b.bytes)))
}

/// Recognises one exchange as an AWS API call.
pub(crate) fn recognise(ex: &Exchange) -> Option<AwsCall> {
    let method = ex.method.as_deref()?;
    let path = ex.path.as_deref()?;
    let host = host_info(ex.host.as_deref().unwrap_or(""));
    if host.service.is_none() && !may_name_aws(ex) {
        return None;
    }
    let scope = credential_scope(ex);
    let target = ex
        .request_header("x-amz-target")
        .and_then(|t| t.trim().rsplit_once('.'))
        .map(|(p, op)| (p.to_string(), op.to_string()));
    let req_body: &[u8] = ex.request_body.as_ref().map_or(&[], |b| &b.bytes);
    let req_type = ex
        .request_header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut params = ex.query.as_deref().map(form_pairs).unwrap_or_default();
    if req_type.starts_with("application/x-www-form-urlencoded") {
        params.extend(form_pairs(&String::from_utf8_lossy(req_body)));
    }
    let action = pair_value(&params, "Action").map(str::to_string);
    let amz_shaped = scope.is_some()
        || target.is_some()
        || ex
            .request_headers
            .iter()
            .any(|(n, _)| n.len() > 6 && n[..6].eq_ignore_ascii_case("x-amz-"));

    let service = target
        .as_ref()
        .and_then(|(p, _)| Service::from_target_prefix(p))
        .or_else(|| {
            scope
                .as_ref()
                .and_then(|(_, s)| Service::from_signing_name(s))
        })
        .or_else(|| host.service.clone())
        .or_else(|| {
            (amz_shaped && path.starts_with("/2015-03-31/functions/")).then_some(Service::Lambda)
        })?;
    // A plain request to a host that merely looks like AWS (a test double answering
    // `/health`) is named only if it has some AWS shape or an AWS host.
    if !amz_shaped && host.service.is_none() && action.is_none() {
        return None;
    }
    let region = scope
        .as_ref()
        .map(|(r, _)| r.clone())
        .or(host.region.clone());

    let json = JsonBody::new(req_body);
    let mut call = AwsCall {
        service: service.clone(),
        operation: String::new(),
        region,
        resource: Vec::new(),
        request_id: None,
        extended_request_id: None,
        message_ids: Vec::new(),
    };
    let operation = match (&target, &action) {
        (Some((_, op)), _) => Some(op.clone()),
        (None, Some(a)) => Some(a.clone()),
        _ => None,
    };
    match service {
        Service::S3 => s3(ex, method, path, &host, &mut call),
        Service::Lambda => lambda(method, path, &mut call),
        _ => {}
    }
    if call.operation.is_empty() {
        call.operation = operation.unwrap_or_else(|| method.to_string());
    }
    resources(ex, &json, &params, &mut call);
    responses(ex, &mut call);
    Some(call)
}

/// S3's REST operations from method, path and sub-resources.
fn s3(ex: &Exchange, method: &str, path: &str, host: &HostInfo, call: &mut AwsCall) {
    let path = path.strip_prefix('/').unwrap_or(path);
    let (bucket, key) = match &host.bucket {
        Some(b) => (Some(b.clone()), path.to_string()),
        None => match path.split_once('/') {
            Some((b, k)) => (Some(b.to_string()), k.to_string()),
            None if !path.is_empty() => (Some(path.to_string()), String::new()),
            None => (None, String::new()),
        },
    };
    let q = ex.query.as_deref().map(form_pairs).unwrap_or_default();
    let has = |name: &str| q.iter().any(|(k, _)| k == name);
    let copy = ex.request_header("x-amz-copy-source").is_some();
    let on_key = !key.is_empty();
    let op = match (method, bucket.is_some(), on_key) {
        ("GET", false, _) => "ListBuckets",
        ("GET", true, false) if has("list-type") => "ListObjectsV2",
        ("GET", true, false) if has("uploads") => "ListMultipartUploads",
        ("GET", true, false) if has("versions") => "ListObjectVersions",
        ("GET", true, false) if has("location") => "GetBucketLocation",
        ("GET", true, false) if has("tagging") => "GetBucketTagging",
        ("GET", true, false) if has("policy") => "GetBucketPolicy",
        ("GET", true, false) if has("versioning") => "GetBucketVersioning",
        ("GET", true, false) if has("acl") => "GetBucketAcl",
        ("GET", true, false) => "ListObjects",
        ("GET", true, true) if has("uploadId") => "ListParts",
        ("GET", true, true) if has("tagging") => "GetObjectTagging",
        ("GET", true, true) if has("acl") => "GetObjectAcl",
        ("GET", true, true) => "GetObject",
        ("HEAD", true, true) => "HeadObject",
        ("HEAD", true, false) => "HeadBucket",
        ("PUT", true, false) if has("tagging") => "PutBucketTagging",
        ("PUT", true, false) if has("policy") => "PutBucketPolicy",
        ("PUT", true, false) if has("versioning") => "PutBucketVersioning",
        ("PUT", true, false) if has("notification") => "PutBucketNotificationConfiguration",
        ("PUT", true, false) if has("acl") => "PutBucketAcl",
        ("PUT", true, false) => "CreateBucket",
        ("PUT", true, true) if has("uploadId") && copy => "UploadPartCopy",
        ("PUT", true, true) if has("uploadId") => "UploadPart",
        ("PUT", true, true) if has("tagging") => "PutObjectTagging",
        ("PUT", true, true) if has("acl") => "PutObjectAcl",
        ("PUT", true, true) if copy => "CopyObject",
        ("PUT", true, true) => "PutObject",
        ("DELETE", true, true) if has("uploadId") => "AbortMultipartUpload",
        ("DELETE", true, true) if has("tagging") => "DeleteObjectTagging",
        ("DELETE", true, true) => "DeleteObject",
        ("DELETE", true, false) if has("tagging") => "DeleteBucketTagging",
        ("DELETE", true, false) if has("policy") => "DeleteBucketPolicy",
        ("DELETE", true, false) => "DeleteBucket",
        ("POST", true, true) if has("uploads") => "CreateMultipartUpload",
        ("POST", true, true) if has("uploadId") => "CompleteMultipartUpload",
        ("POST", true, false) if has("delete") => "DeleteObjects",
        ("POST", true, _) => "PostObject",
        _ => "",
    };
    call.operation = op.to_string();
    if let Some(b) = bucket {
        call.resource
            .push(("aws.s3.bucket", percent_decode(&b, false)));
    }
    if on_key {
        call.resource
            .push(("aws.s3.key", percent_decode(&key, false)));
    }
}

/// Lambda's REST operations: `POST /2015-03-31/functions/{name}/invocations` is Invoke.
fn lambda(method: &str, path: &str, call: &mut AwsCall) {
    let mut segs = path.trim_start_matches('/').split('/');
    let (version, functions, name, what) = (segs.next(), segs.next(), segs.next(), segs.next());
    if functions != Some("functions") {
        return;
    }
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        call.operation = match method {
            "GET" => "ListFunctions",
            "POST" => "CreateFunction",
            _ => "",
        }
        .to_string();
        return;
    };
    call.resource
        .push(("aws.lambda.function.name", percent_decode(name, false)));
    call.operation = match (method, version, what) {
        ("POST", _, Some("invocations")) => "Invoke",
        ("POST", Some("2014-11-13"), Some("invoke-async")) => "InvokeAsync",
        ("GET", _, None) => "GetFunction",
        ("GET", _, Some("configuration")) => "GetFunctionConfiguration",
        ("DELETE", _, None) => "DeleteFunction",
        _ => "",
    }
    .to_string();
}

/// The resource names of the request, per service (OpenTelemetry's attribute names
/// where it has them).
fn resources(ex: &Exchange, json: &JsonBody<'_>, params: &[(String, String)], call: &mut AwsCall) {
    // One lookup: a JSON field, else the same-named query/form parameter.
    let field = |name: &str| -> Option<String> {
        json.string(&[name])
            .or_else(|| pair_value(params, name).map(str::to_string))
    };
    let op = call.operation.as_str();
    let mut found: Vec<(&'static str, String)> = Vec::new();
    let mut push = |key: &'static str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            found.push((key, v));
        }
    };
    match call.service {
        Service::DynamoDb => {
            let mut tables: Vec<String> = field("TableName").into_iter().collect();
            tables.extend(json.keys(&["RequestItems"]));
            for kind in ["Put", "Update", "Delete", "ConditionCheck", "Get"] {
                tables.extend(json.strings(&["TransactItems", "*", kind, "TableName"]));
            }
            for t in tables {
                push("aws.dynamodb.table_names", Some(t));
            }
        }
        Service::Sqs => {
            let url = field("QueueUrl").or_else(|| {
                // The query protocol's older form: the queue URL is the request URL.
                let p = ex.path.as_deref()?;
                (p.len() > 1 && p.matches('/').count() == 2)
                    .then(|| format!("{}://{}{p}", ex.scheme, ex.host.as_deref().unwrap_or("")))
            });
            push("aws.sqs.queue_url", url);
            push("aws.sqs.queue_name", field("QueueName"));
        }
        Service::Sns => {
            push("aws.sns.topic.arn", field("TopicArn"));
            push("aws.sns.target.arn", field("TargetArn"));
            if op == "CreateTopic" {
                push("aws.sns.topic.name", field("Name"));
            }
        }
        Service::Kinesis => {
            push("aws.kinesis.stream_name", field("StreamName"));
            push("aws.kinesis.stream_arn", field("StreamARN"));
        }
        Service::EventBridge => {
            let mut buses = json.strings(&["Entries", "*", "EventBusName"]);
            if buses.is_empty() && op == "PutEvents" {
                buses.push("default".into());
            }
            buses.extend(field("EventBusName"));
            for b in buses {
                push("aws.eventbridge.event_bus.name", Some(b));
            }
            if op.ends_with("EventBus") {
                push("aws.eventbridge.event_bus.name", field("Name"));
            }
        }
        Service::StepFunctions => {
            push(
                "aws.step_functions.state_machine.arn",
                field("stateMachineArn"),
            );
            push("aws.step_functions.execution.arn", field("executionArn"));
            push("aws.step_functions.activity.arn", field("activityArn"));
        }
        Service::SecretsManager => {
            // The secret's name or ARN — never SecretString / SecretBinary.
            push("aws.secretsmanager.secret.id", field("SecretId"));
            if op == "CreateSecret" {
                push("aws.secretsmanager.secret.id", field("Name"));
            }
        }
        Service::Ssm => {
            push("aws.ssm.parameter.name", field("Name"));
            for n in json.strings(&["Names", "*"]) {
                push("aws.ssm.parameter.name", Some(n));
            }
            push("aws.ssm.parameter.path", field("Path"));
        }
        Service::Sts => push("aws.sts.role_arn", field("RoleArn")),
        Service::S3 | Service::Lambda | Service::Other(_) => {}
    }
    for (k, v) in found {
        if !call.resource.iter().any(|(k2, v2)| *k2 == k && *v2 == v) {
            call.resource.push((k, v));
        }
    }
}

/// Request ids and produced message ids from the response.
fn responses(ex: &Exchange, call: &mut AwsCall) {
    call.request_id = ["x-amzn-requestid", "x-amz-request-id", "x-amzn-request-id"]
        .iter()
        .find_map(|h| ex.response_header(h))
        .map(|v| v.trim().to_string());
    call.extended_request_id = ex
        .response_header("x-amz-id-2")
        .map(|v| v.trim().to_string());
    let body: &[u8] = ex.response_body.as_ref().map_or(&[], |b| &b.bytes);
    let xml = body.trim_ascii_start().starts_with(b"<");
    if call.request_id.is_none() && xml {
        call.request_id = xml_texts(body, "RequestId").into_iter().next();
    }
    let key = match (&call.service, call.operation.as_str()) {
        (Service::Sqs, "SendMessage" | "SendMessageBatch") => "MessageId",
        (Service::Sns, "Publish" | "PublishBatch") => "MessageId",
        (Service::Kinesis, "PutRecord" | "PutRecords") => "SequenceNumber",
        (Service::EventBridge, "PutEvents") => "EventId",
        _ => return,
    };
    if !ex.status.is_some_and(|s| (200..300).contains(&s)) {
        return;
    }
    call.message_ids = if xml {
        xml_texts(body, key)
    } else {
        let json = JsonBody::new(body);
        let mut ids = json.strings(&[key]);
        for list in ["Successful", "Records", "Entries"] {
            ids.extend(json.strings(&[list, "*", key]));
        }
        ids
    };
    let mut seen = std::collections::HashSet::new();
    call.message_ids.retain(|id| seen.insert(id.clone()));
}

#[cfg(test)]
mod tests;
