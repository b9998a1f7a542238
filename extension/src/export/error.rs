//! The exporter's one error type, shared by its configuration and its transport.

use std::path::PathBuf;

use super::outbox::OutboxError;

/// Errors of configuration and export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("OTLP configuration: {0}")]
    Config(String),
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("collector answered HTTP {status} after {attempts} attempt(s): {body}")]
    Status {
        status: u16,
        body: String,
        attempts: u32,
    },
    #[error("cannot reach collector after {attempts} attempt(s): {message}")]
    Transport { message: String, attempts: u32 },
    #[error("{cause}; batch kept in {}", path.display())]
    Deferred {
        cause: Box<ExportError>,
        path: PathBuf,
    },
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}
