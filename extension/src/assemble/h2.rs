//! HTTP/2 connections: their `H2*` records handed to [`crate::http2`], which makes one
//! exchange per stream, with the facts only the connection knows (TLS, peer, close,
//! and after an h2c upgrade the HTTP/1.1 exchange that is stream 1's request).

use tapline_record::{H2StartHow, Protocol};

use crate::exchange::{Exchange, TlsKind};
use crate::http2::{exchanges, exchanges_resuming, ConnFacts, H2Event, HpackResume};

use super::connection::Connection;

impl Connection {
    /// Appends the HTTP/2 streams' exchanges, after this connection's HTTP/1 ones (from
    /// `first` in `out`). After an h2c upgrade, the upgraded HTTP/1.1 exchange becomes
    /// stream 1's request. A connection with no stream is reported by its byte counts.
    pub(super) fn h2_exchanges(
        &self,
        first: usize,
        out: &mut Vec<Exchange>,
        hpack: Option<&mut HpackResume>,
    ) {
        let upgrade_seq = self.h2.iter().find_map(|r| match r.event {
            H2Event::Start {
                how: H2StartHow::H2cUpgrade,
                upgrade_msg_seq,
            } => Some(upgrade_msg_seq),
            _ => None,
        });
        let upgrade = upgrade_seq
            .and_then(|k| out[first..].iter().position(|x| x.seq == k))
            .map(|at| out.remove(first + at));
        let tls = match self.tls_library {
            Some(_) => self.tls_kind(),
            None if self.protocol() == Some(Protocol::H2c) => TlsKind::None,
            None => self.tls_kind(),
        };
        let facts = ConnFacts {
            pid: self.pid,
            conn_id: self.conn_id,
            tls,
            sni: self.tls_sni.clone().or_else(|| self.socket_sni.clone()),
            alpn: self.tls_alpn.clone(),
            peer: self.peer(),
            close: self.close_reason(),
            upgrade: upgrade.clone(),
        };
        let streams = match hpack {
            Some(state) => exchanges_resuming(&facts, &self.h2, state, out),
            None => exchanges(&facts, &self.h2, out),
        };
        if streams == 0 {
            match upgrade {
                Some(u) => out.insert(first, u),
                None if out.len() == first => out.push(self.counted_only(tls, Some("2"))),
                None => {}
            }
        }
    }
}
