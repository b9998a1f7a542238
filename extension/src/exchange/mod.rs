//! One HTTP request/response pair (or one opaque TLS connection), as reassembled from
//! the spool. This is the type every later stage works on: masking, size budgets,
//! reports (table, JSON, HAR) and exports (OTLP).
//!
//! The model imports no other stage of the crate (only the [`crate::text`] decoders):
//! every stage imports it. The AWS call an exchange is recognised as ([`AwsCall`]) and
//! the gRPC call ([`GrpcCall`]) are part of the model; recognising them is `aws/`'s and
//! `grpc/`'s work.

mod aws_call;
pub(crate) mod aws_service;
mod grpc_call;
mod timings;

use std::net::SocketAddr;

pub use aws_call::AwsCall;
pub use aws_service::Service;
pub(crate) use grpc_call::{grpc_status_name, GrpcCall};
pub use timings::Timings;

/// How the bytes of an exchange were seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsKind {
    /// Plaintext socket.
    None,
    /// Plaintext read from OpenSSL's `SSL_read`/`SSL_write` hooks.
    OpenSsl,
    /// Plaintext read from GnuTLS's record hooks.
    GnuTls,
    /// Plaintext read from Java's JSSE by the JVMTI agent.
    Jsse,
    /// Encrypted and not readable: only SNI, sizes and timing are known.
    Opaque,
}

impl TlsKind {
    /// The JSON spelling of the `tls` field.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsKind::None => "none",
            TlsKind::OpenSsl => "openssl",
            TlsKind::GnuTls => "gnutls",
            TlsKind::Jsse => "jsse",
            TlsKind::Opaque => "opaque",
        }
    }
}

/// A captured body: the prefix that was copied, and the full size on the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Body {
    /// The captured prefix (after transfer decoding; a content coding is decoded by the
    /// masker, see `decoded`).
    pub bytes: Vec<u8>,
    /// Full decoded size, even when `bytes` is shorter.
    pub size: u64,
    /// `bytes` is a prefix of the body: the rest was counted, not copied (or was dropped
    /// later by a size budget).
    pub truncated: bool,
    /// The body was sent with this content coding (`gzip`, `deflate`, `br`) and `bytes`
    /// hold it decoded, as masking and reports see it. `None`: as on the wire.
    pub decoded: Option<&'static str>,
}

/// One exchange. Header names keep their wire spelling and order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// Process that made the call.
    pub pid: u32,
    /// Connection it travelled on (unique across processes of one spool).
    pub conn_id: u64,
    /// Position of the exchange on its connection (0 for the first); for HTTP/2, the
    /// stream id.
    pub seq: u32,
    /// First request byte written, ns since the Unix epoch.
    pub start_unix_ns: u64,
    /// First request byte written → last response byte read (or last activity seen).
    pub duration_ns: u64,
    /// Phases (connect, TLS, send, wait, receive) the records tell; the connection's
    /// set-up phases come before `start_unix_ns` and belong to its first exchange.
    pub timings: Timings,
    /// `None` for opaque TLS.
    pub method: Option<String>,
    /// `"http"` or `"https"`.
    pub scheme: &'static str,
    /// From the `Host` header, else SNI, else the peer address.
    pub host: Option<String>,
    pub port: Option<u16>,
    /// Request target without the query (`/a/b`); `None` for opaque TLS.
    pub path: Option<String>,
    /// The query without `?`, when there is one.
    pub query: Option<String>,
    /// `"1.0"`, `"1.1"`, `"2"`.
    pub http_version: Option<String>,
    /// Final response status (1xx interim responses are not kept here).
    pub status: Option<u16>,
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    /// Trailer fields after the response body (HTTP/2 trailing HEADERS; HTTP/1.1
    /// chunked trailers), in wire order.
    pub response_trailers: Vec<(String, String)>,
    /// An HTTP/2 pushed stream: the request is the server's PUSH_PROMISE.
    pub pushed: bool,
    pub request_body: Option<Body>,
    pub response_body: Option<Body>,
    /// Bytes each way on the wire (ciphertext for opaque TLS).
    pub request_wire_bytes: u64,
    pub response_wire_bytes: u64,
    /// True if any captured field was cut to a limit.
    pub truncated: bool,
    /// Peer socket address, when known.
    pub peer: Option<SocketAddr>,
    pub tls: TlsKind,
    /// TLS server name, when any.
    pub sni: Option<String>,
    /// ALPN protocol(s): the one a TLS library selected, or (opaque TLS) the ones the
    /// ClientHello offered, comma-separated.
    pub alpn: Option<String>,
    /// Why the exchange is incomplete (`"no response"`, `"connection reset"`, ...).
    pub error: Option<String>,
    /// The AWS API call this exchange is, when it is one (`aws::recognise`).
    pub aws: Option<AwsCall>,
    /// The gRPC call this exchange is, when it is one (`grpc::recognise`).
    pub grpc: Option<GrpcCall>,
    /// The library marked its connection as the traced runtime's own Runtime API
    /// connection (`ConnOpen` flag `RUNTIME_API`, from the runtime's
    /// `AWS_LAMBDA_RUNTIME_API`): Lambda lifecycle, not user traffic.
    pub runtime_api: bool,
}

impl Exchange {
    /// The full URL with its query, as the request named it (not yet masked).
    pub fn url(&self) -> Option<String> {
        let path = self.path.as_deref()?;
        let mut url = self.origin(self.host.as_deref().unwrap_or("unknown"));
        url.push_str(path);
        if let Some(q) = &self.query {
            url.push('?');
            url.push_str(q);
        }
        Some(url)
    }

    /// The URL without a path for exchanges that have none (opaque TLS, h2c):
    /// `https://host[:port]`; otherwise the same as [`Exchange::url`].
    pub fn url_or_origin(&self) -> Option<String> {
        if self.path.is_some() {
            return self.url();
        }
        Some(self.origin(self.host.as_deref()?))
    }

    /// `scheme://host[:port]`, an IPv6 host in brackets, the default port left out.
    fn origin(&self, host: &str) -> String {
        let default_port = if self.scheme == "https" { 443 } else { 80 };
        let mut url = String::with_capacity(host.len() + 32);
        url.push_str(self.scheme);
        url.push_str("://");
        if host.contains(':') && !host.starts_with('[') {
            url.push('[');
            url.push_str(host);
            url.push(']');
        } else {
            url.push_str(host);
        }
        if let Some(p) = self.port.filter(|&p| p != default_port) {
            url.push(':');
            url.push_str(&p.to_string());
        }
        url
    }

    /// Full request body size (JSON `request_body_size`): the decoded body size, or
    /// for opaque TLS the bytes written on the socket.
    pub fn request_body_size(&self) -> u64 {
        match (&self.request_body, self.tls) {
            (_, TlsKind::Opaque) => self.request_wire_bytes,
            (Some(b), _) => b.size,
            (None, _) => 0,
        }
    }

    /// Full response body size (JSON `response_body_size`): the decoded body size, or
    /// for opaque TLS the bytes read from the socket.
    pub fn response_body_size(&self) -> u64 {
        match (&self.response_body, self.tls) {
            (_, TlsKind::Opaque) => self.response_wire_bytes,
            (Some(b), _) => b.size,
            (None, _) => 0,
        }
    }

    /// The value of the first request header with this name (case-insensitive).
    pub fn request_header(&self, name: &str) -> Option<&str> {
        crate::text::header(&self.request_headers, name)
    }

    /// The value of the first response header with this name (case-insensitive).
    pub fn response_header(&self, name: &str) -> Option<&str> {
        crate::text::header(&self.response_headers, name)
    }
}

/// A plain HTTPS exchange for unit tests of every stage.
#[cfg(test)]
pub(crate) fn sample() -> Exchange {
    Exchange {
        pid: 1,
        conn_id: 7,
        seq: 0,
        start_unix_ns: 1_700_000_000_000_000_000,
        duration_ns: 5_000_000,
        timings: Timings::default(),
        method: Some("POST".into()),
        scheme: "https",
        host: Some("api.example.com".into()),
        port: Some(443),
        path: Some("/v1/items".into()),
        query: None,
        http_version: Some("1.1".into()),
        status: Some(200),
        request_headers: vec![],
        response_headers: vec![],
        response_trailers: vec![],
        pushed: false,
        request_body: None,
        response_body: None,
        request_wire_bytes: 100,
        response_wire_bytes: 200,
        truncated: false,
        peer: Some("127.0.0.1:443".parse().unwrap()),
        tls: TlsKind::OpenSsl,
        alpn: None,
        sni: Some("api.example.com".into()),
        error: None,
        aws: None,
        grpc: None,
        runtime_api: false,
    }
}
