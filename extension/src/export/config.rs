//! Where and how to export: the standard `OTEL_EXPORTER_OTLP_*` variables (endpoint,
//! protocol, headers, timeout, certificates) read once into an [`OtlpConfig`], and the
//! TLS client configuration its certificates make.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::encode::Encoding;
use super::error::ExportError;

/// Where OTLP/HTTP collectors listen by default.
pub(crate) const DEFAULT_ENDPOINT: &str = "http://localhost:4318";
const TRACES_PATH: &str = "/v1/traces";
/// Where and how to export.
#[derive(Clone, Debug)]
pub struct OtlpConfig {
    /// The full URL requests are POSTed to (`.../v1/traces`).
    pub endpoint: String,
    /// Extra request headers (`OTEL_EXPORTER_OTLP_HEADERS`).
    pub headers: Vec<(String, String)>,
    pub encoding: Encoding,
    /// Per attempt (`OTEL_EXPORTER_OTLP_TIMEOUT`, ms; default 10 s).
    pub timeout: Duration,
    /// Attempts per batch (first try included).
    pub max_attempts: u32,
    /// Ceiling for one whole [`OtlpExporter::export`] call, outbox included
    /// (`TAPLINE_OTLP_MAX_ELAPSED_MS`; default 15 s).
    pub max_elapsed: Duration,
    /// CA files trusted besides the platform roots (`SSL_CERT_FILE`,
    /// `OTEL_EXPORTER_OTLP_CERTIFICATE`).
    pub ca_files: Vec<PathBuf>,
}

impl OtlpConfig {
    /// From the environment. `override_endpoint` (the CLI's `--otlp ENDPOINT`) is a base
    /// URL like `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` is appended unless already
    /// there) and wins over both variables.
    pub fn from_env(override_endpoint: Option<&str>) -> Result<Self, ExportError> {
        Self::from_lookup(override_endpoint, |k| std::env::var(k).ok())
    }

    /// Like [`OtlpConfig::from_env`], reading variables through `lookup`.
    pub fn from_lookup(
        override_endpoint: Option<&str>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ExportError> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let endpoint = match (
            override_endpoint.map(str::trim).filter(|e| !e.is_empty()),
            get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(e), _, _) if e.trim_end_matches('/').ends_with(TRACES_PATH) => e.to_string(),
            (Some(e), _, _) => append_traces_path(e),
            (None, Some(t), _) => t,
            (None, None, Some(base)) => append_traces_path(&base),
            (None, None, None) => append_traces_path(DEFAULT_ENDPOINT),
        };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(ExportError::Config(format!(
                "endpoint {endpoint:?} is not an http:// or https:// URL"
            )));
        }
        let mut headers = get("OTEL_EXPORTER_OTLP_HEADERS")
            .map(|h| crate::text::key_values(&h))
            .unwrap_or_default();
        for (k, v) in get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
            .map(|h| crate::text::key_values(&h))
            .unwrap_or_default()
        {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&k));
            headers.push((k, v));
        }
        let protocol = get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"));
        let encoding = match protocol.as_deref() {
            None | Some("http/json") => Encoding::Json,
            Some("http/protobuf") => Encoding::Protobuf,
            Some(other) => {
                return Err(ExportError::Config(format!(
                    "protocol {other:?} is not supported (use http/json or http/protobuf)"
                )))
            }
        };
        let ms = |k: &str| {
            get(k)
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_millis)
        };
        let timeout = ms("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
            .or_else(|| ms("OTEL_EXPORTER_OTLP_TIMEOUT"))
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(10));
        let max_elapsed = ms("TAPLINE_OTLP_MAX_ELAPSED_MS").unwrap_or(Duration::from_secs(15));
        let ca_files = [
            "SSL_CERT_FILE",
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
        ]
        .iter()
        .filter_map(|k| get(k).map(PathBuf::from))
        .collect();
        Ok(OtlpConfig {
            endpoint,
            headers,
            encoding,
            timeout,
            max_attempts: 3,
            max_elapsed,
            ca_files,
        })
    }
}

fn append_traces_path(base: &str) -> String {
    format!("{}{TRACES_PATH}", base.trim_end_matches('/'))
}

pub(super) fn tls_config(ca_files: &[PathBuf]) -> Result<rustls::ClientConfig, ExportError> {
    let mut roots = rustls::RootCertStore::empty();
    // A platform without a CA bundle still works with an explicit CA file.
    if let Ok(native) = rustls_native_certs::load_native_certs() {
        roots.add_parsable_certificates(native);
    }
    for file in ca_files {
        let pem = std::fs::read(file)
            .map_err(|e| ExportError::Tls(format!("{}: {e}", file.display())))?;
        let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<_, _>>()
            .map_err(|e| ExportError::Tls(format!("{}: {e}", file.display())))?;
        if certs.is_empty() {
            return Err(ExportError::Tls(format!(
                "{}: no PEM certificates",
                file.display()
            )));
        }
        roots.add_parsable_certificates(certs);
    }
    if roots.is_empty() {
        return Err(ExportError::Tls(
            "no trusted CA certificates (set SSL_CERT_FILE)".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ExportError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_endpoints_headers_protocol() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let c = OtlpConfig::from_lookup(None, env(&[])).unwrap();
        assert_eq!(
            (c.endpoint.as_str(), c.encoding),
            ("http://localhost:4318/v1/traces", Encoding::Json)
        );
        let c = OtlpConfig::from_lookup(
            None,
            env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c.example:4318/")]),
        )
        .unwrap();
        assert_eq!(c.endpoint, "https://c.example:4318/v1/traces");
        let c = OtlpConfig::from_lookup(
            None,
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://c.example/custom",
                ),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "api-key=a%20b%2Cc , x-team=core,bad,=v",
                ),
                ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "X-Team=traces"),
            ]),
        )
        .unwrap();
        assert_eq!(c.endpoint, "http://c.example/custom");
        assert_eq!(c.encoding, Encoding::Protobuf);
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(
            c.headers,
            vec![
                ("api-key".to_string(), "a b,c".to_string()),
                ("X-Team".to_string(), "traces".to_string())
            ]
        );
        let c = OtlpConfig::from_lookup(
            Some("http://127.0.0.1:9/v1/traces"),
            env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://x")]),
        )
        .unwrap();
        assert_eq!(c.endpoint, "http://127.0.0.1:9/v1/traces");
        assert!(
            OtlpConfig::from_lookup(None, env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])).is_err()
        );
        assert!(OtlpConfig::from_lookup(Some("ftp://x"), env(&[])).is_err());
    }
}
