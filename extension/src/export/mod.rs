//! Everything that sends captured exchanges out of the machine: span building
//! ([`span`]), the OTLP wire encodings ([`encode`]), the OTLP/HTTP exporter ([`otlp`])
//! and the outbox that keeps what could not be sent ([`outbox`]).
//!
//! Exchanges reach this module masked and within budget (`mask`, then `budget`): nothing
//! here looks at secrets again.

pub mod encode;
pub mod otlp;
pub mod outbox;
pub mod span;

pub use encode::Encoding;
pub use otlp::{ExportError, ExportOutcome, OtlpConfig, OtlpExporter};
pub use outbox::Outbox;
pub use span::{
    Link, ParentContext, Resource, Span, SpanBatch, SpanId, SpanKind, StatusCode, TraceId,
};
