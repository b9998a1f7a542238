//! Connections known only by their byte counts: TLS that tapline cannot read (SNI and
//! ALPN from the captured ClientHello), and h2c.

use crate::exchange::{Exchange, TlsKind};
use tapline_record::CloseReason;

use super::connection::Connection;
use super::connection::ECONNRESET;

impl Connection {
    /// An exchange known only by its byte counts: opaque TLS, or h2c.
    pub(super) fn counted_only(&self, tls: TlsKind, http_version: Option<&str>) -> Exchange {
        let (hello_sni, alpn) = self.client_hello();
        let sni = self.tls_sni.clone().or(hello_sni);
        let peer = self.peer();
        let (raw, _) = self.raw.joined();
        let start = self
            .close
            .map(|c| c.first_out_wall_ns)
            .filter(|&t| t != 0)
            .or(self.open.map(|o| o.connect_wall_ns).filter(|&t| t != 0))
            .unwrap_or(self.first_wall_ns);
        let end = self
            .close
            .map(|c| c.last_in_wall_ns)
            .filter(|&t| t != 0)
            .or(self.close_wall_ns)
            .unwrap_or(self.last_wall_ns);
        let (bytes_out, bytes_in) = self
            .close
            .map_or((raw.len() as u64, 0), |c| (c.bytes_out, c.bytes_in));
        // Without a close record the byte counts are unknown (only the ClientHello is):
        // say so rather than report them as if they were the traffic.
        let error = match self.close_reason() {
            _ if self.tls_error().is_some() => self.tls_error(),
            None => Some("connection still open when capture ended"),
            Some((CloseReason::Error, ECONNRESET)) => Some("connection reset"),
            Some((CloseReason::Error, _)) => Some("connection error"),
            Some((CloseReason::PeerEof | CloseReason::Closed, _)) if bytes_in == 0 => {
                Some("no response")
            }
            _ => None,
        };
        let scheme = if tls == TlsKind::None {
            "http"
        } else {
            "https"
        };
        let (host, port) = match (&sni, peer) {
            (Some(s), _) => (Some(s.clone()), Some(peer.map_or(443, |p| p.port()))),
            (None, Some(p)) => (Some(p.ip().to_string()), Some(p.port())),
            (None, None) => (None, None),
        };
        Exchange {
            pid: self.pid,
            conn_id: self.conn_id,
            seq: 0,
            start_unix_ns: start,
            duration_ns: end.saturating_sub(start),
            timings: Default::default(),
            method: None,
            scheme,
            host,
            port,
            path: None,
            query: None,
            http_version: http_version.map(str::to_owned),
            status: None,
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            response_trailers: Vec::new(),
            pushed: false,
            request_body: None,
            response_body: None,
            request_wire_bytes: bytes_out,
            response_wire_bytes: bytes_in,
            truncated: false,
            peer,
            tls,
            sni,
            alpn: self.tls_alpn.clone().or(alpn),
            error: error.map(str::to_owned),
            aws: None,
            grpc: None,
            runtime_api: self.runtime_api(),
        }
    }
}
