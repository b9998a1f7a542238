//! Where an exchange's time went, phase by phase, as far as the records tell it.
//!
//! Why every phase is optional: the library stamps a call after the real call
//! returned (it never delays or changes the call), so a phase is known only when
//! both of its ends were stamped by something the library saw. A blocking
//! `connect` or `getaddrinfo` is stamped at its end only: its start, and so its
//! phase, is not known, and is left out rather than guessed. That is why there is no
//! DNS phase: `getaddrinfo` always blocks its caller.

/// Phase durations in ns, each `None` when the records do not tell it. The
/// connection's phases (`connect`, `tls`) belong to its first exchange only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timings {
    /// Non-blocking `connect` call → the socket's first write.
    pub connect_ns: Option<u64>,
    /// ClientHello written → first plaintext written through the TLS library.
    pub tls_ns: Option<u64>,
    /// Request: first byte written → last byte written.
    pub send_ns: Option<u64>,
    /// Request's last byte written → response's first byte read.
    pub wait_ns: Option<u64>,
    /// Response: first byte read → last byte read.
    pub receive_ns: Option<u64>,
}

impl Timings {
    /// The phases by their report names, in time order, with their durations.
    pub fn phases(&self) -> [(&'static str, Option<u64>); 5] {
        [
            ("connect", self.connect_ns),
            ("tls", self.tls_ns),
            ("send", self.send_ns),
            ("wait", self.wait_ns),
            ("receive", self.receive_ns),
        ]
    }

    /// Time spent before the first request byte (connect + tls, as known).
    pub fn setup_ns(&self) -> u64 {
        [self.connect_ns, self.tls_ns].iter().flatten().sum()
    }

    /// Send, wait and receive from a message's stamps: the request's first and last
    /// byte written, the response's first and last byte read (`None` where unknown).
    /// A phase whose end comes before its start (stamps of different clocks, a torn
    /// record) is left out.
    pub fn exchange_phases(
        request: (Option<u64>, Option<u64>),
        response: (Option<u64>, Option<u64>),
    ) -> Timings {
        let span = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) if a != 0 && b >= a => Some(b - a),
            _ => None,
        };
        Timings {
            send_ns: span(request.0, request.1),
            wait_ns: span(request.1, response.0),
            receive_ns: span(response.0, response.1),
            ..Timings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_need_both_ends_in_order() {
        let t = Timings::exchange_phases((Some(10), Some(15)), (Some(40), Some(70)));
        assert_eq!(
            (t.send_ns, t.wait_ns, t.receive_ns),
            (Some(5), Some(25), Some(30))
        );
        let t = Timings::exchange_phases((Some(10), None), (Some(40), Some(30)));
        assert_eq!((t.send_ns, t.wait_ns, t.receive_ns), (None, None, None));
        assert_eq!(t.setup_ns(), 0);
    }
}
