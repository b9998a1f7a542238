//! The services tapline names, and how each announces itself on the wire: its SigV4
//! signing name, its endpoint prefix in `*.amazonaws.com` hosts, its `X-Amz-Target`
//! prefix. One table, so adding a service is one line (plus its resource fields in
//! `mod.rs`).

/// An AWS service. `Other` holds the signing name of one that is not in [`SERVICES`]:
/// its calls are still named (`Other("kms")` → `kms.Decrypt`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    DynamoDb,
    Sqs,
    Sns,
    S3,
    Kinesis,
    Lambda,
    EventBridge,
    StepFunctions,
    Sts,
    SecretsManager,
    Ssm,
    Other(String),
}

/// How one service shows itself.
pub(crate) struct ServiceInfo {
    pub service: Service,
    /// `rpc.service` and the first half of the span name: the SDK service id.
    pub name: &'static str,
    /// The SigV4 signing name (credential scope), which is also the endpoint prefix.
    pub signing_name: &'static str,
    /// Other endpoint prefixes (`events` signs as `events`, ...).
    pub endpoint_prefixes: &'static [&'static str],
    /// `X-Amz-Target` prefixes (before the `.`), for the JSON protocol.
    pub target_prefixes: &'static [&'static str],
}

/// The services tapline recognises by name.
pub(crate) const SERVICES: &[ServiceInfo] = &[
    ServiceInfo {
        service: Service::DynamoDb,
        name: "DynamoDB",
        signing_name: "dynamodb",
        endpoint_prefixes: &["dynamodb"],
        target_prefixes: &["DynamoDB_20120810", "DynamoDB_20111205"],
    },
    ServiceInfo {
        service: Service::Sqs,
        name: "SQS",
        signing_name: "sqs",
        endpoint_prefixes: &["sqs"],
        target_prefixes: &["AmazonSQS"],
    },
    ServiceInfo {
        service: Service::Sns,
        name: "SNS",
        signing_name: "sns",
        endpoint_prefixes: &["sns"],
        target_prefixes: &["AmazonSimpleNotificationService"],
    },
    ServiceInfo {
        service: Service::S3,
        name: "S3",
        signing_name: "s3",
        endpoint_prefixes: &["s3", "s3-external-1", "s3-accelerate"],
        target_prefixes: &[],
    },
    ServiceInfo {
        service: Service::Kinesis,
        name: "Kinesis",
        signing_name: "kinesis",
        endpoint_prefixes: &["kinesis"],
        target_prefixes: &["Kinesis_20131202"],
    },
    ServiceInfo {
        service: Service::Lambda,
        name: "Lambda",
        signing_name: "lambda",
        endpoint_prefixes: &["lambda"],
        target_prefixes: &[],
    },
    ServiceInfo {
        service: Service::EventBridge,
        name: "EventBridge",
        signing_name: "events",
        endpoint_prefixes: &["events"],
        target_prefixes: &["AWSEvents"],
    },
    ServiceInfo {
        service: Service::StepFunctions,
        name: "SFN",
        signing_name: "states",
        endpoint_prefixes: &["states", "sync-states"],
        target_prefixes: &["AWSStepFunctions"],
    },
    ServiceInfo {
        service: Service::Sts,
        name: "STS",
        signing_name: "sts",
        endpoint_prefixes: &["sts"],
        target_prefixes: &["AWSSecurityTokenServiceV20110615"],
    },
    ServiceInfo {
        service: Service::SecretsManager,
        name: "SecretsManager",
        signing_name: "secretsmanager",
        endpoint_prefixes: &["secretsmanager"],
        target_prefixes: &["secretsmanager"],
    },
    ServiceInfo {
        service: Service::Ssm,
        name: "SSM",
        signing_name: "ssm",
        endpoint_prefixes: &["ssm"],
        target_prefixes: &["AmazonSSM"],
    },
];

impl Service {
    fn info(&self) -> Option<&'static ServiceInfo> {
        SERVICES.iter().find(|i| &i.service == self)
    }

    /// The SDK service id (`rpc.service`): `DynamoDB`, `SQS`, ...
    pub fn name(&self) -> &str {
        match self {
            Service::Other(s) => s,
            known => known.info().map_or("AWS", |i| i.name),
        }
    }

    /// The signing name / endpoint prefix (`dynamodb`, `secretsmanager`, ...): what
    /// `TAPLINE_SCRUB_DOMAINS` is compared with.
    pub fn signing_name(&self) -> &str {
        match self {
            Service::Other(s) => s,
            known => known.info().map_or("", |i| i.signing_name),
        }
    }

    /// From a SigV4 credential scope's service.
    pub fn from_signing_name(name: &str) -> Option<Service> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        Some(
            SERVICES
                .iter()
                .find(|i| i.signing_name.eq_ignore_ascii_case(name))
                .map_or_else(
                    || Service::Other(name.to_ascii_lowercase()),
                    |i| i.service.clone(),
                ),
        )
    }

    /// From an endpoint prefix (a host label); only the known services.
    pub fn from_endpoint_prefix(label: &str) -> Option<Service> {
        SERVICES
            .iter()
            .find(|i| {
                i.signing_name.eq_ignore_ascii_case(label)
                    || i.endpoint_prefixes
                        .iter()
                        .any(|p| p.eq_ignore_ascii_case(label))
            })
            .map(|i| i.service.clone())
    }

    /// From the part of `X-Amz-Target` before the `.`.
    pub fn from_target_prefix(prefix: &str) -> Option<Service> {
        SERVICES
            .iter()
            .find(|i| i.target_prefixes.contains(&prefix))
            .map(|i| i.service.clone())
    }
}
