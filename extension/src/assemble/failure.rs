//! Calls that failed before any HTTP: a `Failure` record becomes an exchange whose
//! `error` starts with the stage (`dns:`, `connect:`, `tls:`), so that every report and
//! export shows the call and why it failed.

use std::net::SocketAddr;

use tapline_record::{failure_flags, FailureStage};

use crate::exchange::{Exchange, Timings, TlsKind};
use crate::spool::{SpoolEntry, SpoolRecord};

/// What a `Failure` record said, with where it came from.
pub(super) struct FailedCall<'a> {
    pub pid: u32,
    pub conn_id: u64,
    pub wall_ns: u64,
    pub stage: FailureStage,
    pub flags: u8,
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

/// Why a TLS handshake failed, as one connection's records say it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TlsFailure {
    /// The `error` text (`tls: ...`).
    pub text: String,
    /// The handshake finished with a certificate that did not verify: an error only for
    /// an exchange that got no response (the program may have chosen to go on).
    pub verify_only: bool,
    /// Which of several to believe: the library's own reason, then a verify result,
    /// then an alert read from the wire, then an encrypted one.
    rank: u8,
}

impl TlsFailure {
    /// Keeps the better of `self` and `other`.
    pub(super) fn or_better(self, other: TlsFailure) -> TlsFailure {
        if other.rank > self.rank {
            other
        } else {
            self
        }
    }
}

/// The name of a TLS alert description (RFC 8446 §6, RFC 5246 §7.2).
pub(crate) fn alert_name(desc: i32) -> Option<&'static str> {
    Some(match desc {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => return None,
    })
}

impl<'a> FailedCall<'a> {
    /// The failed call a `Failure` record names (`None` for any other record).
    pub(super) fn of(e: &'a SpoolEntry) -> Option<FailedCall<'a>> {
        let SpoolRecord::Failure {
            stage,
            flags,
            code,
            peer,
            name,
            reason,
        } = &e.record
        else {
            return None;
        };
        Some(FailedCall {
            pid: e.meta.pid,
            conn_id: e.meta.conn_id,
            wall_ns: e.meta.wall_ns,
            stage: *stage,
            flags: *flags,
            code: *code,
            peer: *peer,
            name: name.as_deref(),
            reason,
        })
    }
}

impl FailedCall<'_> {
    /// A TLS failure as its connection's error. The traced process is the client (the
    /// library follows the connections it made), so the peer is the server.
    pub(super) fn tls_failure(&self) -> TlsFailure {
        let alert = self.flags & failure_flags::TLS_ALERT != 0;
        let verify_only = self.flags & failure_flags::TLS_VERIFY_ONLY != 0;
        let from = if self.flags & failure_flags::TLS_ALERT_FROM_PEER != 0 {
            "the server"
        } else {
            "the client"
        };
        let (text, rank) = if alert && self.flags & failure_flags::TLS_ALERT_ENCRYPTED != 0 {
            (format!("tls: alert (encrypted) from {from}"), 1)
        } else if alert {
            let name = alert_name(self.code).map_or_else(|| self.code.to_string(), str::to_owned);
            (format!("tls: alert {name} from {from}"), 2)
        } else if self.reason.is_empty() {
            (
                "tls: handshake failed".to_owned(),
                if verify_only { 3 } else { 4 },
            )
        } else {
            (
                format!("tls: {}", self.reason),
                if verify_only { 3 } else { 4 },
            )
        };
        TlsFailure {
            text,
            verify_only,
            rank,
        }
    }

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
            _ => self.tls_failure().text,
        };
        let port = self.peer.map(|p| p.port());
        Exchange {
            pid: self.pid,
            conn_id: self.conn_id,
            seq: 0,
            start_unix_ns: self.wall_ns,
            duration_ns: 0,
            timings: Timings::default(),
            method: None,
            scheme: if port == Some(443) || self.stage == FailureStage::Tls {
                "https"
            } else {
                "http"
            },
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
            tls: if self.stage == FailureStage::Tls {
                TlsKind::Opaque
            } else {
                TlsKind::None
            },
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
            flags: 0,
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

    #[test]
    fn tls_failures_say_the_library_or_the_wire() {
        let tls = |flags, code, reason| FailedCall {
            stage: FailureStage::Tls,
            flags,
            code,
            reason,
            ..dns_like()
        };
        let lib = tls(0, 0, "certificate verify failed: self-signed certificate").tls_failure();
        assert_eq!(
            lib.text,
            "tls: certificate verify failed: self-signed certificate"
        );
        let sent = tls(failure_flags::TLS_ALERT, 46, "").tls_failure();
        assert_eq!(sent.text, "tls: alert certificate_unknown from the client");
        let received = tls(
            failure_flags::TLS_ALERT | failure_flags::TLS_ALERT_FROM_PEER,
            70,
            "",
        )
        .tls_failure();
        assert_eq!(received.text, "tls: alert protocol_version from the server");
        let unknown = tls(failure_flags::TLS_ALERT, 250, "").tls_failure();
        assert_eq!(unknown.text, "tls: alert 250 from the client");
        let encrypted = tls(
            failure_flags::TLS_ALERT | failure_flags::TLS_ALERT_ENCRYPTED,
            0,
            "",
        )
        .tls_failure();
        assert_eq!(encrypted.text, "tls: alert (encrypted) from the client");
        let verify = tls(
            failure_flags::TLS_VERIFY_ONLY,
            18,
            "certificate verify failed: x",
        )
        .tls_failure();
        assert!(verify.verify_only);
        // The library's reason wins over what the wire said, in either order.
        assert_eq!(encrypted.clone().or_better(lib.clone()), lib);
        assert_eq!(lib.clone().or_better(sent.clone()), lib);
        assert_eq!(sent.clone().or_better(encrypted), sent);
        assert_eq!(sent.or_better(verify.clone()), verify);
        // A failure of its own (no connection records) is an opaque https exchange.
        let alone = tls(0, 0, "handshake failed").exchange();
        assert_eq!(alone.error.as_deref(), Some("tls: handshake failed"));
        assert_eq!((alone.scheme, alone.tls), ("https", TlsKind::Opaque));
    }

    fn dns_like() -> FailedCall<'static> {
        FailedCall {
            pid: 1,
            conn_id: 7,
            wall_ns: 5,
            stage: FailureStage::Dns,
            flags: 0,
            code: 0,
            peer: None,
            name: None,
            reason: "",
        }
    }
}
