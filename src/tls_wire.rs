//! The TLS record layer of a socket classified TLS, walked during the handshake to read
//! an alert off the wire.
//!
//! Why: a program whose TLS library tapline does not hook (Java, rustls, node on arm64)
//! fails a handshake silently as far as tapline can see: a few hundred bytes each way,
//! then a close. Until keys are in use the record layer is plaintext, and a failing
//! side says why in an alert record (content type 21, two bytes: level and
//! description) — `certificate_unknown` from a client that did not trust the server,
//! `handshake_failure` or `protocol_version` from a server that rejects the client.
//!
//! The walk skips each record by its length (no copy, a few steps per read) and stops
//! for good at the first application-data record (type 23) of its direction: from
//! there on everything is encrypted, including alerts. One exception is noted: in TLS
//! 1.3 the handshake after ServerHello is already encrypted, and a client that rejects
//! the server's certificate sends its alert as its first type-23 record, shorter than
//! any client Finished (32 bytes of verify data + inner type + 16-byte tag; JSSE pads
//! its alerts to 35 bytes) — and sends nothing after it. Such a record is remembered
//! (`suspect`); a later type-23 record clears it (it was an empty client Certificate,
//! followed by the Finished), and a connection that ends with it still set sent an
//! encrypted alert (which one cannot be read).
//!
//! The state is one `u64` per direction, so that it fits in the connection slot.

/// Largest TLS record body (RFC 5246 §6.2.3: 2^14 + 2048).
const MAX_RECORD: u16 = 16384 + 2048;
/// Content types.
const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const APPLICATION_DATA: u8 = 23;
const HEARTBEAT: u8 = 24;
/// The shortest TLS 1.3 client Finished: 32 bytes of verify data (SHA-256), the inner
/// content type, a 16-byte AEAD tag. A shorter first encrypted record is an alert (or
/// an empty client Certificate, which a Finished follows).
const SHORTEST_FINISHED: u16 = 32 + 1 + 16;
/// Alerts that are not failures: `close_notify`, `user_canceled`, and any of warning
/// level (TLS 1.2 servers warn `unrecognized_name` and go on).
const CLOSE_NOTIFY: u8 = 0;
const USER_CANCELED: u8 = 90;
const FATAL: u8 = 2;

/// One direction's walk, packed into a `u64` (see [`Walk::pack`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Walk {
    /// Body bytes of the current record still to come.
    left: u16,
    /// Header bytes of the next record seen so far (0..5).
    got: u8,
    /// The current record's content type.
    kind: u8,
    /// The current record's length.
    len: u16,
    /// The alert level byte, once read.
    level: u8,
    /// Nothing more to look for in this direction.
    done: bool,
    /// The first encrypted record sent was alert-sized (see the module doc).
    suspect: bool,
}

impl Walk {
    pub fn pack(self) -> u64 {
        u64::from(self.left)
            | u64::from(self.got) << 16
            | u64::from(self.kind) << 24
            | u64::from(self.len) << 32
            | u64::from(self.level) << 48
            | u64::from(self.done) << 56
            | u64::from(self.suspect) << 57
    }

    pub fn unpack(v: u64) -> Walk {
        Walk {
            left: v as u16,
            got: (v >> 16) as u8,
            kind: (v >> 24) as u8,
            len: (v >> 32) as u16,
            level: (v >> 48) as u8,
            done: (v >> 56) & 1 == 1,
            suspect: (v >> 57) & 1 == 1,
        }
    }

    pub fn done(&self) -> bool {
        self.done
    }

    /// The connection ended: did the process's last record look like an encrypted
    /// alert (TLS 1.3)? Only meaningful for the egress walk.
    pub fn ended_with_encrypted_alert(&self) -> bool {
        self.suspect
    }

    /// Walks `bytes`, the next bytes of this direction (`egress`: the traced process
    /// wrote them). Returns the description of the first fatal plaintext alert found
    /// (RFC 8446 §6); the walk is then done.
    pub fn step(&mut self, bytes: &[u8], egress: bool) -> Option<u8> {
        let mut i = 0;
        while i < bytes.len() && !self.done {
            if self.left > 0 {
                if self.kind == ALERT && self.len == 2 {
                    if self.left == 2 {
                        self.level = bytes[i];
                        self.left = 1;
                        i += 1;
                        continue;
                    }
                    self.left = 0;
                    let desc = bytes[i];
                    if desc == CLOSE_NOTIFY || desc == USER_CANCELED || self.level != FATAL {
                        i += 1;
                        continue;
                    }
                    self.done = true;
                    return Some(desc);
                }
                let n = usize::from(self.left).min(bytes.len() - i);
                self.left -= n as u16;
                i += n;
                continue;
            }
            let b = bytes[i];
            i += 1;
            match self.got {
                0 if (CHANGE_CIPHER_SPEC..=HEARTBEAT).contains(&b) => self.kind = b,
                1 if b == 3 => {}
                2 => {}
                3 => self.len = u16::from(b) << 8,
                4 => self.len |= u16::from(b),
                // Not a TLS record: stop looking.
                _ => {
                    self.done = true;
                    return None;
                }
            }
            self.got += 1;
            if self.got < 5 {
                continue;
            }
            self.got = 0;
            if self.len == 0 || self.len > MAX_RECORD {
                self.done = true;
                return None;
            }
            if self.kind == APPLICATION_DATA {
                if egress && !self.suspect && self.len < SHORTEST_FINISHED {
                    self.suspect = true;
                } else {
                    self.suspect = false;
                    self.done = true;
                    return None;
                }
            }
            self.left = self.len;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &[u8] = &[0x16, 3, 1, 0, 4, 1, 0, 0, 0];

    fn walk_in_pieces(bytes: &[u8], cut: usize, egress: bool) -> Option<u8> {
        walk_to_end(bytes, cut, egress).0
    }

    /// The alert found, and whether the walk ended suspecting an encrypted one.
    fn walk_to_end(bytes: &[u8], cut: usize, egress: bool) -> (Option<u8>, bool) {
        let mut w = Walk::default();
        for piece in bytes.chunks(cut.max(1)) {
            let packed = w.pack();
            w = Walk::unpack(packed);
            if let Some(s) = w.step(piece, egress) {
                return (Some(s), false);
            }
        }
        (None, w.ended_with_encrypted_alert())
    }

    #[test]
    fn a_plaintext_alert_is_read_at_any_cut() {
        let mut wire = HELLO.to_vec();
        wire.extend_from_slice(&[0x15, 3, 3, 0, 2, 2, 46]);
        for cut in 1..=wire.len() {
            assert_eq!(walk_in_pieces(&wire, cut, true), Some(46), "cut {cut}");
        }
    }

    #[test]
    fn close_notify_is_not_a_failure_and_the_walk_goes_on() {
        let wire = [0x15, 3, 3, 0, 2, 1, 0, 0x15, 3, 3, 0, 2, 2, 40];
        assert_eq!(walk_in_pieces(&wire, 3, false), Some(40));
        assert_eq!(walk_in_pieces(&wire[..7], 3, false), None);
    }

    #[test]
    fn a_warning_is_not_a_failure() {
        let wire = [0x15, 3, 3, 0, 2, 1, 112, 0x16, 3, 3, 0, 1, 0];
        assert_eq!(walk_in_pieces(&wire, 2, false), None);
    }

    #[test]
    fn the_walk_stops_at_application_data() {
        // TLS 1.2 after the handshake: an encrypted alert has type 21 but is longer
        // than two bytes, and a later plaintext-looking alert is never looked at.
        let mut wire = vec![0x17, 3, 3, 0, 30];
        wire.extend_from_slice(&[0u8; 30]);
        wire.extend_from_slice(&[0x15, 3, 3, 0, 2, 2, 40]);
        assert_eq!(walk_in_pieces(&wire, 7, false), None);
        let mut w = Walk::default();
        w.step(&wire, false);
        assert!(w.done());
    }

    fn encrypted(len: u8) -> Vec<u8> {
        let mut r = vec![0x17, 3, 3, 0, len];
        r.extend(std::iter::repeat_n(0xAB, len.into()));
        r
    }

    #[test]
    fn a_short_last_encrypted_record_from_the_client_is_an_alert() {
        let mut wire = HELLO.to_vec();
        wire.extend_from_slice(&[0x14, 3, 3, 0, 1, 1]);
        for len in [19, 35] {
            let mut w = wire.clone();
            w.extend(encrypted(len));
            for cut in [1, 4, 100] {
                assert_eq!(
                    walk_to_end(&w, cut, true),
                    (None, true),
                    "len {len} cut {cut}"
                );
            }
            // From the server it is not one.
            assert_eq!(walk_to_end(&w, 4, false), (None, false));
        }
        // A Finished; an empty client Certificate followed by a Finished.
        let mut finished = wire.clone();
        finished.extend(encrypted(53));
        assert_eq!(walk_to_end(&finished, 4, true), (None, false));
        let mut cert_then_finished = wire;
        cert_then_finished.extend(encrypted(25));
        cert_then_finished.extend(encrypted(53));
        assert_eq!(walk_to_end(&cert_then_finished, 7, true), (None, false));
    }

    #[test]
    fn garbage_stops_the_walk() {
        assert_eq!(walk_in_pieces(b"GET / HTTP/1.1\r\n\r\n", 5, true), None);
        let mut w = Walk::default();
        assert_eq!(
            w.step(&[0x16, 9, 9, 9, 9, 0x15, 3, 3, 0, 2, 2, 40], true),
            None
        );
        assert!(w.done());
        let mut w = Walk::default();
        assert_eq!(w.step(&[0x16, 3, 3, 0xFF, 0xFF], true), None);
        assert!(w.done());
    }

    #[test]
    fn pack_roundtrips() {
        let w = Walk {
            left: 18000,
            got: 4,
            kind: 22,
            len: 18432,
            level: 2,
            done: true,
            suspect: true,
        };
        assert_eq!(Walk::unpack(w.pack()), w);
    }
}
