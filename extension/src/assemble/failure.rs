//! Calls that failed before any HTTP: a `Failure` record becomes an exchange whose
//! `error` starts with the stage (`dns:`, `connect:`, `tls:`), so that every report and
//! export shows the call and why it failed.

use std::net::SocketAddr;

use tapline_record::FailureStage;

use crate::exchange::{Exchange, TlsKind};

/// What a `Failure` record said, with where it came from.
pub(super) struct FailedCall<'a> {
    pub pid: u32,
    pub conn_id: u64,
    pub wall_ns: u64,
    pub stage: FailureStage,
    pub code: i32,
    pub peer: Option<SocketAddr>,
    pub name: Option<&'a str>,
    pub reason: &'a str,
}

/// The kernel's errno as the error text says it (`connection refused`).
pub(crate) fn errno_text(errno: i32) -> String {
    match errno {
        111 => "connection refused".into(),
        110 => "timed out".into(),
        101 => "network unreachable".into(),
        113 => "host unreachable".into(),
        104 => "connection reset".into(),
        103 => "connection aborted".into(),
        32 => "broken pipe".into(),
        100 => "network down".into(),
        99 => "address not available".into(),
        13 | 1 => "permission denied".into(),
        n => format!("errno {n}"),
    }
}

impl FailedCall<'_> {
    /// The exchange: no request line, `host` set, the peer when a connect failed.
    pub(super) fn exchange(&self) -> Exchange {
        let host = self
            .name
            .map(str::to_owned)
            .or(self.peer.map(|p| p.ip().to_string()));
        let error = match self.stage {
            FailureStage::Dns => format!(
                "dns: {}: {}",
                self.name.unwrap_or("?"),
                if self.reason.is_empty() {
                    format!("error {}", self.code)
                } else {
                    self.reason.to_owned()
                }
            ),
            FailureStage::Connect => format!(
                "connect: {}: {}",
                self.peer.map_or_else(|| "?".into(), |p| p.to_string()),
                errno_text(self.code)
            ),
            _ => format!("tls: {}", self.reason),
        };
        let port = self.peer.map(|p| p.port());
        Exchange {
            pid: self.pid,
            conn_id: self.conn_id,
            seq: 0,
            start_unix_ns: self.wall_ns,
            duration_ns: 0,
            method: None,
            scheme: if port == Some(443) { "https" } else { "http" },
            host,
            port,
            path: None,
            query: None,
            http_version: None,
            status: None,
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            response_trailers: Vec::new(),
            pushed: false,
            request_body: None,
            response_body: None,
            request_wire_bytes: 0,
            response_wire_bytes: 0,
            truncated: false,
            peer: self.peer,
            tls: TlsKind::None,
            sni: None,
            alpn: None,
            error: Some(error),
            aws: None,
            grpc: None,
            runtime_api: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_start_with_the_stage() {
        let dns = FailedCall {
            pid: 1,
            conn_id: 0,
            wall_ns: 5,
            stage: FailureStage::Dns,
            code: -2,
            peer: None,
            name: Some("nonexistent.invalid"),
            reason: "Name or service not known",
        }
        .exchange();
        assert_eq!(
            dns.error.as_deref(),
            Some("dns: nonexistent.invalid: Name or service not known")
        );
        assert_eq!(dns.host.as_deref(), Some("nonexistent.invalid"));
        assert_eq!(dns.peer, None);
        let refused = FailedCall {
            stage: FailureStage::Connect,
            code: 111,
            peer: Some("127.0.0.1:9".parse().unwrap()),
            name: None,
            reason: "",
            ..FailedCall { ..dns_like() }
        }
        .exchange();
        assert_eq!(
            refused.error.as_deref(),
            Some("connect: 127.0.0.1:9: connection refused")
        );
        assert_eq!(refused.host.as_deref(), Some("127.0.0.1"));
        assert_eq!(refused.port, Some(9));
    }

    fn dns_like() -> FailedCall<'static> {
        FailedCall {
            pid: 1,
            conn_id: 7,
            wall_ns: 5,
            stage: FailureStage::Dns,
            code: 0,
            peer: None,
            name: None,
            reason: "",
        }
    }
}
