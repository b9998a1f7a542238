//! Everything that sends captured exchanges out of the machine: span building
//! ([`span`]), the OTLP wire encodings ([`encode`]), the OTLP/HTTP exporter ([`otlp`])
//! and the outbox that keeps what could not be sent ([`outbox`]).
//!
//! Exchanges reach this module masked and within budget (`mask`, then `budget`): nothing
//! here looks at secrets again.

pub mod attributes;
pub mod config;
pub mod encode;
pub mod error;
pub mod exchange_span;
pub mod ids;
pub mod otlp;
pub mod outbox;
pub mod resource;
pub mod span;

pub use attributes::{AnyValue, KeyValue};
pub use encode::Encoding;
pub use ids::{IdGenerator, ParentContext, SpanId, TraceId};
pub use otlp::{ExportError, ExportOutcome, OtlpConfig, OtlpExporter};
pub use outbox::Outbox;
pub use resource::Resource;
pub use span::{Link, Span, SpanBatch, SpanKind, StatusCode};
