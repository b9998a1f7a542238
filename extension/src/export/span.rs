//! The spans tapline exports, as OTLP models them: [`Span`], its attributes
//! ([`KeyValue`], [`AnyValue`]), kind, status and links, and [`SpanBatch`], the unit of
//! export.
//!
//! [`SpanBatch`] owns the trace context: without a parent every exchange starts its own
//! trace; with one (the Lambda extension's invocation span, a trace id from an X-Ray
//! header) every exchange becomes its child. How an exchange becomes a span is
//! `exchange_span.rs`'s work.

use super::ids::IdGenerator;

// The parts a span is made of, reachable where spans are (`export::span::KeyValue`).
pub(crate) use super::attributes::{AnyValue, KeyValue};
pub(crate) use super::ids::{message_span_id, ParentContext, SpanId, TraceId};
pub(crate) use super::resource::Resource;

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

/// A time-stamped event on a span (OTLP `Span.Event`): a blind spot on the invocation
/// span in Lambda.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanEvent {
    pub time_unix_ns: u64,
    pub name: String,
    pub attributes: Vec<KeyValue>,
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
    pub events: Vec<SpanEvent>,
}

/// Spans that are exported together, with their resource and trace context.
#[derive(Clone, Debug)]
pub struct SpanBatch {
    pub resource: Resource,
    pub spans: Vec<Span>,
    parent: Option<ParentContext>,
    ids: IdGenerator,
}

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
}
