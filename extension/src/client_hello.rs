//! TLS ClientHello parsing: the server name (SNI) and offered ALPN protocols.
//!
//! Why: a connection whose TLS library we cannot hook (statically linked, Go, rustls...)
//! is opaque: all we have are the first bytes it wrote (the library keeps them as a `Raw`
//! data record) plus byte counts and times. The ClientHello in those bytes names the
//! server and the protocols the client offers, which is enough to tell a person which
//! service the encrypted connection talked to.
//!
//! The input is untrusted and often cut short (the library keeps only a prefix): the
//! parser never panics, never allocates more than the input, and returns whatever it
//! found before the bytes ran out.

use std::fmt;

/// What a ClientHello tells about the connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClientHello {
    /// The `host_name` entry of the server_name extension.
    pub sni: Option<String>,
    /// Protocols offered in the application_layer_protocol_negotiation extension, in
    /// the client's order of preference.
    pub alpn: Vec<String>,
    /// The bytes ended before the extensions did: later extensions may be missing.
    pub partial: bool,
}

/// Why the bytes are not a ClientHello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientHelloError {
    /// The first record is not a TLS handshake record.
    NotHandshake,
    /// The first handshake message is not a ClientHello.
    NotClientHello,
    /// The bytes ended before the extensions started.
    TooShort,
}

impl fmt::Display for ClientHelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientHelloError::NotHandshake => "not a TLS handshake record",
            ClientHelloError::NotClientHello => "not a TLS ClientHello",
            ClientHelloError::TooShort => "TLS ClientHello cut before its extensions",
        })
    }
}

impl std::error::Error for ClientHelloError {}

const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const SNI_HOST_NAME: u8 = 0;

/// A cursor over untrusted bytes: every read is bounds-checked and returns `None` at the
/// end instead of panicking.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        let b = self.take(3)?;
        Some(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }
    /// Up to `n` bytes: all of them when the input is long enough, else what is left.
    fn take_up_to(&mut self, n: usize) -> (&'a [u8], bool) {
        let n_avail = n.min(self.buf.len());
        let (head, rest) = self.buf.split_at(n_avail);
        self.buf = rest;
        (head, n_avail == n)
    }
}

/// Joins the fragments of the handshake messages carried by consecutive handshake
/// records (a ClientHello may span several records, though it rarely does).
fn handshake_bytes(raw: &[u8]) -> Result<Vec<u8>, ClientHelloError> {
    let mut r = Reader { buf: raw };
    let mut out = Vec::new();
    let mut first = true;
    while let Some(content_type) = r.u8() {
        if content_type != CONTENT_HANDSHAKE {
            if first {
                return Err(ClientHelloError::NotHandshake);
            }
            break;
        }
        // Legacy record version: 3.x.
        let Some(version) = r.u16() else {
            break;
        };
        if version >> 8 != 3 {
            if first {
                return Err(ClientHelloError::NotHandshake);
            }
            break;
        }
        let Some(len) = r.u16() else { break };
        let (fragment, complete) = r.take_up_to(usize::from(len));
        out.extend_from_slice(fragment);
        first = false;
        if !complete {
            break;
        }
    }
    if first {
        return Err(if raw.is_empty() || raw[0] == CONTENT_HANDSHAKE {
            ClientHelloError::TooShort
        } else {
            ClientHelloError::NotHandshake
        });
    }
    Ok(out)
}

/// Parses the ClientHello at the start of `raw` (TLS records as written on the socket).
pub(crate) fn parse_client_hello(raw: &[u8]) -> Result<ClientHello, ClientHelloError> {
    let hs = handshake_bytes(raw)?;
    let mut r = Reader { buf: &hs };
    match r.u8() {
        Some(HANDSHAKE_CLIENT_HELLO) => {}
        Some(_) => return Err(ClientHelloError::NotClientHello),
        None => return Err(ClientHelloError::TooShort),
    }
    let body_len = r.u24().ok_or(ClientHelloError::TooShort)?;
    let (body, _) = r.take_up_to(body_len);
    let mut r = Reader { buf: body };
    // legacy_version (2), random (32).
    r.take(2 + 32).ok_or(ClientHelloError::TooShort)?;
    let session_id_len = r.u8().ok_or(ClientHelloError::TooShort)?;
    r.take(usize::from(session_id_len))
        .ok_or(ClientHelloError::TooShort)?;
    let suites_len = r.u16().ok_or(ClientHelloError::TooShort)?;
    r.take(usize::from(suites_len))
        .ok_or(ClientHelloError::TooShort)?;
    let compression_len = r.u8().ok_or(ClientHelloError::TooShort)?;
    r.take(usize::from(compression_len))
        .ok_or(ClientHelloError::TooShort)?;
    let mut hello = ClientHello::default();
    let Some(ext_len) = r.u16() else {
        // No extensions at all (possible for very old clients): nothing to report.
        return Ok(hello);
    };
    let (extensions, complete) = r.take_up_to(usize::from(ext_len));
    hello.partial = !complete;
    let mut r = Reader { buf: extensions };
    while let (Some(ext_type), Some(len)) = (r.u16(), r.u16()) {
        let Some(ext) = r.take(usize::from(len)) else {
            hello.partial = true;
            break;
        };
        match ext_type {
            EXT_SERVER_NAME => hello.sni = parse_server_name(ext),
            EXT_ALPN => hello.alpn = parse_alpn(ext),
            _ => {}
        }
    }
    Ok(hello)
}

fn parse_server_name(ext: &[u8]) -> Option<String> {
    let mut r = Reader { buf: ext };
    let list_len = r.u16()?;
    let (list, _) = r.take_up_to(usize::from(list_len));
    let mut r = Reader { buf: list };
    while let Some(name_type) = r.u8() {
        let len = r.u16()?;
        let name = r.take(usize::from(len))?;
        if name_type == SNI_HOST_NAME {
            return std::str::from_utf8(name).ok().map(str::to_owned);
        }
    }
    None
}

fn parse_alpn(ext: &[u8]) -> Vec<String> {
    let mut protocols = Vec::new();
    let mut r = Reader { buf: ext };
    let Some(list_len) = r.u16() else {
        return protocols;
    };
    let (list, _) = r.take_up_to(usize::from(list_len));
    let mut r = Reader { buf: list };
    while let Some(len) = r.u8() {
        let Some(p) = r.take(usize::from(len)) else {
            break;
        };
        protocols.push(String::from_utf8_lossy(p).into_owned());
    }
    protocols
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITH_SNI: &[u8] = include_bytes!("../tests/payloads/client_hello_openssl_sni_alpn.bin");
    const NO_SNI: &[u8] = include_bytes!("../tests/payloads/client_hello_openssl_no_sni.bin");

    /// A hand-built ClientHello: SNI `a.test`, ALPN `http/1.1`, in one record.
    fn handmade() -> Vec<u8> {
        let mut ext = Vec::new();
        // server_name: list(len 9) { type 0, len 6, "a.test" }
        ext.extend_from_slice(&[0, 0, 0, 11, 0, 9, 0, 0, 6]);
        ext.extend_from_slice(b"a.test");
        // ALPN: list(len 9) { 8 "http/1.1" }
        ext.extend_from_slice(&[0, 16, 0, 11, 0, 9, 8]);
        ext.extend_from_slice(b"http/1.1");
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one suite
        body.extend_from_slice(&[1, 0]); // null compression
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn real_openssl_client_hello_with_sni_and_alpn() {
        let h = parse_client_hello(WITH_SNI).expect("fixture is a ClientHello");
        assert_eq!(h.sni.as_deref(), Some("api.example.com"));
        assert_eq!(h.alpn, vec!["h2".to_owned(), "http/1.1".to_owned()]);
        assert!(!h.partial);
    }

    #[test]
    fn real_openssl_client_hello_without_sni() {
        let h = parse_client_hello(NO_SNI).expect("fixture is a ClientHello");
        assert_eq!(h.sni, None);
        assert!(h.alpn.is_empty());
    }

    #[test]
    fn handmade_client_hello() {
        let h = parse_client_hello(&handmade()).expect("valid");
        assert_eq!(h.sni.as_deref(), Some("a.test"));
        assert_eq!(h.alpn, vec!["http/1.1".to_owned()]);
    }

    #[test]
    fn client_hello_split_over_two_records() {
        let one = handmade();
        let hs = &one[5..];
        let (a, b) = hs.split_at(20);
        let mut two = vec![22, 3, 1, 0, a.len() as u8];
        two.extend_from_slice(a);
        two.extend_from_slice(&[22, 3, 1, 0, b.len() as u8]);
        two.extend_from_slice(b);
        let h = parse_client_hello(&two).expect("valid");
        assert_eq!(h.sni.as_deref(), Some("a.test"));
    }

    #[test]
    fn every_prefix_parses_without_panic() {
        for raw in [WITH_SNI, NO_SNI, &handmade()[..]] {
            for cut in 0..raw.len() {
                let _ = parse_client_hello(&raw[..cut]);
            }
        }
        // A prefix that still holds the server_name extension finds it.
        let h = parse_client_hello(&WITH_SNI[..WITH_SNI.len() - 20]).expect("long prefix");
        assert_eq!(h.sni.as_deref(), Some("api.example.com"));
        assert!(h.partial);
    }

    #[test]
    fn not_tls() {
        assert_eq!(
            parse_client_hello(b"GET / HTTP/1.1\r\n"),
            Err(ClientHelloError::NotHandshake)
        );
        assert_eq!(parse_client_hello(b""), Err(ClientHelloError::TooShort));
        // A ServerHello (type 2) is not a ClientHello.
        assert_eq!(
            parse_client_hello(&[22, 3, 3, 0, 4, 2, 0, 0, 0]),
            Err(ClientHelloError::NotClientHello)
        );
    }
}
