//! Everything that sends captured exchanges out of the machine: span building
//! ([`span`]), the OTLP wire encodings ([`encode`]), the OTLP/HTTP exporter ([`otlp`])
//! and the outbox that keeps what could not be sent ([`outbox`]).
//!
//! Exchanges reach this module masked and within budget (`mask`, then `budget`): nothing
//! here looks at secrets again.

pub(crate) mod attributes;
pub(crate) mod config;
pub(crate) mod encode;
pub(crate) mod error;
pub(crate) mod exchange_span;
pub(crate) mod ids;
pub(crate) mod otlp;
pub(crate) mod outbox;
pub(crate) mod resource;
pub(crate) mod span;

pub(crate) use ids::{ParentContext, SpanId, TraceId};
pub use otlp::OtlpExporter;
pub(crate) use otlp::{ExportError, OtlpConfig};
pub use outbox::Outbox;
pub use resource::Resource;
pub(crate) use span::{Span, SpanBatch, SpanKind, StatusCode};
