//! The AWS API call an exchange was recognised as: names only, never payloads.

use super::aws_service::Service;

/// One recognised AWS API call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsCall {
    pub service: Service,
    /// The API operation (`PutItem`); the HTTP method when it cannot be told.
    pub operation: String,
    pub region: Option<String>,
    /// The resources the call names, as OpenTelemetry attribute names and values, in
    /// request order; a key may repeat (`aws.dynamodb.table_names`).
    pub resource: Vec<(&'static str, String)>,
    /// `x-amzn-RequestId` / `x-amz-request-id` (or `<RequestId>` in a query response).
    pub request_id: Option<String>,
    /// `x-amz-id-2` (S3).
    pub extended_request_id: Option<String>,
    /// Ids of the messages the call produced: SQS and SNS `MessageId`, Kinesis
    /// `SequenceNumber`, EventBridge `EventId`.
    pub message_ids: Vec<String>,
}

impl AwsCall {
    /// `DynamoDB.PutItem`: the span name.
    pub fn name(&self) -> String {
        format!("{}.{}", self.service.name(), self.operation)
    }

    /// The values of one resource key.
    pub fn resource_values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.resource
            .iter()
            .filter(move |(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}
