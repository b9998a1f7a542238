//! A tiny HTTPS client over `ureq` 2 + rustls (no OpenSSL, no GnuTLS): the TLS tests use
//! it as a client whose TLS tapline cannot read, so that it reports "opaque" exchanges.
//!
//! ```text
//! cargo build --release --example rustls_get -p tapline
//! target/release/examples/rustls_get CA_PEM URL [COUNT]
//! ```
//!
//! Trusts only the CA in `CA_PEM`, GETs `URL` `COUNT` times (default 1) on one agent
//! (keep-alive), and prints `<status> <body length>` per request. Exit status 0 when every
//! request got a response, 1 on a transport or TLS error (printed on stderr).

use std::io::Read;
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: rustls_get CA_PEM URL [COUNT]");
        std::process::exit(2);
    }
    let count: usize = args.get(3).map_or(1, |n| n.parse().expect("COUNT"));
    let pem = std::fs::read(&args[1]).unwrap_or_else(|e| {
        eprintln!("{}: {e}", args[1]);
        std::process::exit(2);
    });
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots
            .add(cert.expect("PEM certificate"))
            .expect("CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let agent = ureq::AgentBuilder::new()
        .tls_config(Arc::new(config))
        .timeout(std::time::Duration::from_secs(20))
        .build();
    for _ in 0..count {
        match agent.get(&args[2]).call() {
            Ok(resp) | Err(ureq::Error::Status(_, resp)) => {
                let status = resp.status();
                let mut body = Vec::new();
                if let Err(e) = resp.into_reader().read_to_end(&mut body) {
                    eprintln!("body: {e}");
                    std::process::exit(1);
                }
                println!("{status} {}", body.len());
            }
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    }
}
