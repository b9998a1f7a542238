//! Flows across functions: the invocation span of a consumer links to the spans of the
//! calls that produced its messages, so one trace view joins producer and consumer.
//!
//! Two ways to find the producer's span, both keyed by the message id the event
//! carries (SQS `messageId`, SNS `MessageId`, Kinesis sequence number, EventBridge `id`):
//! - the producer ran in this execution environment: its span was recorded in
//!   [`ProducedMessages`] when it was exported;
//! - the event carries the producer's trace (`AWSTraceHeader`): the producer's span id
//!   is [`message_span_id`] of the message id — tapline gives every produced message's
//!   span that id, in whichever function it ran.

use std::collections::{HashMap, VecDeque};

use crate::aws::trigger::Trigger;
use crate::export::span::{message_span_id, KeyValue, Link};
use crate::export::{SpanId, TraceId};

/// Messages remembered for links (producer and consumer in one environment).
const REMEMBERED_MESSAGES: usize = 4096;
/// Links on one invocation span at most (a batch of 10,000 Kinesis records would
/// otherwise make a span nobody can read).
const MAX_LINKS: usize = 128;

/// Message → the span that produced it, for the messages this environment produced.
#[derive(Debug, Default)]
pub(crate) struct ProducedMessages {
    spans: HashMap<(String, String), (TraceId, SpanId)>,
    order: VecDeque<(String, String)>,
}

impl ProducedMessages {
    /// Remembers that `service` message `id` was produced in `trace`.
    pub(crate) fn record(&mut self, service: &str, id: &str, trace: TraceId) {
        let key = (service.to_string(), id.to_string());
        let span = message_span_id(service, id);
        if self.spans.insert(key.clone(), (trace, span)).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > REMEMBERED_MESSAGES {
            if let Some(old) = self.order.pop_front() {
                self.spans.remove(&old);
            }
        }
    }

    pub(crate) fn get(&self, service: &str, id: &str) -> Option<(TraceId, SpanId)> {
        self.spans
            .get(&(service.to_string(), id.to_string()))
            .copied()
    }
}

/// The links of a consumer invocation to its messages' producers.
pub(crate) fn links(trigger: &Trigger, produced: &ProducedMessages) -> Vec<Link> {
    let mut out: Vec<Link> = Vec::new();
    for m in &trigger.messages {
        if out.len() >= MAX_LINKS {
            break;
        }
        let (target, via) = match produced.get(m.service, &m.id) {
            Some(t) => (t, "message_id"),
            None => match m.trace_header.as_deref().and_then(TraceId::from_xray) {
                Some(p) => (
                    (p.trace_id, message_span_id(m.service, &m.id)),
                    "AWSTraceHeader",
                ),
                None => continue,
            },
        };
        if out
            .iter()
            .any(|l| (l.trace_id, l.span_id) == (target.0, target.1))
        {
            continue;
        }
        out.push(Link {
            trace_id: target.0,
            span_id: target.1,
            attributes: vec![
                KeyValue::string("messaging.message.id", m.id.clone()),
                KeyValue::string("rpc.service", m.service),
                KeyValue::string("tapline.link.via", via),
            ],
        });
    }
    out
}

/// The invocation span's trigger attributes.
pub(crate) fn trigger_attributes(trigger: &Trigger) -> Vec<KeyValue> {
    let mut attrs = vec![KeyValue::string(
        "faas.trigger",
        trigger.kind.faas_trigger(),
    )];
    if let Some(s) = trigger.kind.event_source() {
        attrs.push(KeyValue::string("aws.lambda.event_source", s));
    }
    for (k, v) in &trigger.attributes {
        attrs.push(KeyValue::string(k, v.clone()));
    }
    if let Some(n) = trigger.batch_size {
        attrs.push(KeyValue::int(
            "messaging.batch.message_count",
            i64::try_from(n).unwrap_or(i64::MAX),
        ));
    }
    match trigger.messages.as_slice() {
        [] => {}
        [one] => attrs.push(KeyValue::string("messaging.message.id", one.id.clone())),
        many => attrs.push(KeyValue::strings(
            "aws.message_ids",
            many.iter().take(MAX_LINKS).map(|m| m.id.clone()),
        )),
    }
    attrs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::trigger::parse;

    #[test]
    fn links_by_memory_then_by_trace_header() {
        let event = br#"{"Records":[
            {"messageId":"m-1","eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:1:q","attributes":{}},
            {"messageId":"m-2","eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:1:q",
             "attributes":{"AWSTraceHeader":"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}},
            {"messageId":"m-3","eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:1:q","attributes":{}}]}"#;
        let t = parse(event);
        let mut produced = ProducedMessages::default();
        produced.record("SQS", "m-1", TraceId([7; 16]));
        let l = links(&t, &produced);
        assert_eq!(l.len(), 2);
        assert_eq!(
            (l[0].trace_id, l[0].span_id),
            (TraceId([7; 16]), message_span_id("SQS", "m-1"))
        );
        assert_eq!(l[1].trace_id.to_hex(), "5759e988bd862e3fe1be46a994272793");
        assert_eq!(l[1].span_id, message_span_id("SQS", "m-2"));
        let attrs = trigger_attributes(&t);
        assert!(attrs.contains(&KeyValue::string("messaging.destination.name", "q")));
        assert!(attrs.contains(&KeyValue::int("messaging.batch.message_count", 3)));
    }

    #[test]
    fn memory_is_bounded() {
        let mut p = ProducedMessages::default();
        for i in 0..REMEMBERED_MESSAGES + 10 {
            p.record("SQS", &i.to_string(), TraceId([1; 16]));
        }
        assert!(p.get("SQS", "0").is_none());
        assert!(p
            .get("SQS", &(REMEMBERED_MESSAGES + 9).to_string())
            .is_some());
        assert_eq!(p.spans.len(), REMEMBERED_MESSAGES);
    }
}
