//! The one-byte enumerations of the payloads, typed once at the edge.
//!
//! Each is decoded from its byte with `From<u8>` and encoded with `From<Enum> for u8`.
//! Decoding never fails: a byte this build does not know becomes `Unknown(byte)` and
//! encodes back to the same byte, so a reader built before a writer learns a new value
//! still walks the record, and decides itself what an unknown value means (the
//! extension leaves such records out). `known()` is the value when it is not `Unknown`.
//!
//! `Unknown` is only ever made by `From<u8>` for bytes without a named variant: build
//! named values by name.

/// Defines a one-byte wire enum with an `Unknown(u8)` fallback and its conversions.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this build does not know (never one of the named values).
            Unknown(u8),
        }

        impl From<u8> for $name {
            fn from(v: u8) -> Self {
                match v {
                    $( $value => Self::$variant, )*
                    other => Self::Unknown(other),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                match v {
                    $( $name::$variant => $value, )*
                    $name::Unknown(other) => other,
                }
            }
        }

        impl $name {
            /// The value, unless it is one this build does not know.
            pub fn known(self) -> Option<Self> {
                match self {
                    Self::Unknown(_) => None,
                    known => Some(known),
                }
            }
        }
    };
}

wire_enum! {
    /// Direction of bytes on a connection, from the traced process's point of view
    /// (`Data.dir`, `MsgEnd.dir`).
    pub enum Direction {
        /// Written by the process: requests.
        Egress = 0,
        /// Read by the process: responses.
        Ingress = 1,
    }
}

wire_enum! {
    /// What the sniffer decided a connection carries (`ConnOpen.protocol`,
    /// `ConnClose.protocol`).
    pub enum Protocol {
        Http1 = 1,
        /// TLS seen on the socket (ciphertext). Plaintext, when a TLS hook sees it, arrives
        /// on a connection of its own kind below.
        Tls = 2,
        /// HTTP/2: the client connection preface (`PRI * HTTP/2.0`) opened the connection,
        /// on a socket (prior knowledge) or as TLS plaintext (then a `TlsInfo` follows, ALPN
        /// `h2`). Framed: an `H2Start` and `H2*` records follow.
        H2c = 3,
        /// Plaintext HTTP/1.x read from a TLS library (OpenSSL, GnuTLS).
        TlsPlaintext = 4,
    }
}

wire_enum! {
    /// Which part of an HTTP message a [`Data`](crate::Data) record carries.
    pub enum Part {
        /// Start line and header fields, as on the wire, including the blank line.
        Head = 1,
        /// Body content after transfer decoding (chunk framing removed).
        Body = 2,
        /// First bytes a connection wrote before the sniffer classified it (a TLS
        /// ClientHello, say), as on the wire.
        Raw = 3,
    }
}

wire_enum! {
    /// Why a connection ended (`ConnClose.reason`).
    pub enum CloseReason {
        /// The process called `close` (or `SSL_free`, `gnutls_deinit`).
        Closed = 1,
        /// A read returned 0: the peer closed its side.
        PeerEof = 2,
        /// A read or write failed with `errno` (ECONNRESET, EPIPE, ...).
        Error = 3,
        /// The framer lost track (unparseable bytes); nothing more will be captured.
        Untracked = 4,
        /// The protocol switched away from HTTP/1.x (101 Switching Protocols, CONNECT).
        Upgraded = 5,
        /// Still open when the process exited (written by the library's exit handler).
        AtExit = 6,
    }
}

wire_enum! {
    /// The TLS library a `TlsInfo` record came from (`TlsInfo.library`).
    pub enum TlsLibrary {
        OpenSsl = 1,
        GnuTls = 2,
        /// Java's own TLS (JSSE), read by the JVMTI agent (`src/jvm/`).
        Jsse = 3,
    }
}

wire_enum! {
    /// Lambda Runtime API calls seen in the runtime process (`Lifecycle.event`).
    pub enum LifecycleEvent {
        /// The runtime received an invocation (`GET .../invocation/next` answered).
        InvocationNext = 1,
        /// The runtime posted the invocation's response.
        InvocationResponse = 2,
        /// The runtime posted an invocation error.
        InvocationError = 3,
    }
}

wire_enum! {
    /// What showed a connection is HTTP/2 (`H2Start.how`).
    pub enum H2StartHow {
        /// The client connection preface on a socket: HTTP/2 with prior knowledge.
        PriorKnowledge = 1,
        /// The client connection preface as TLS plaintext (ALPN `h2`, in the `TlsInfo`).
        Tls = 2,
        /// `Upgrade: h2c` answered by `101`: HTTP/1.1 records before, HTTP/2 after. The
        /// upgrade request (HTTP/1 `msg_seq` = `H2Start.upgrade_msg_seq`) is stream 1's
        /// request; its response comes as HTTP/2 on stream 1.
        H2cUpgrade = 3,
    }
}

wire_enum! {
    /// Why the library will not see into a program (`Notice.kind`).
    pub enum NoticeKind {
        /// A statically linked executable (no `PT_INTERP`): no loader, so no
        /// `LD_PRELOAD`.
        StaticExecutable = 1,
        /// A Go program (Go build id note or `.go.buildinfo`): Go makes its own system
        /// calls, even when dynamically linked.
        GoProgram = 2,
        /// A set-user-id or set-group-id executable: the loader drops `LD_PRELOAD`.
        SetId = 3,
        /// An object loaded into a traced process that the library left untouched.
        ObjectUntouched = 4,
        /// A JDK class the Java agent would instrument was left as it is (its shape
        /// was not the expected one, or the JVM refused a step): that TLS stays opaque.
        JavaClassUntouched = 5,
    }
}

wire_enum! {
    /// Which step of a call failed (`Failure.stage`).
    pub enum FailureStage {
        /// `getaddrinfo` returned an error for a name; `code` is its `EAI_*` value.
        Dns = 1,
        /// A TCP `connect` failed (blocking, or learnt later from `SO_ERROR` or the
        /// first read or write); `code` is the errno.
        Connect = 2,
        /// A TLS handshake failed; the reason is the library's text.
        Tls = 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte survives decode → encode, named bytes decode to named values, and
    /// `Unknown` never holds a named value.
    fn roundtrips<T>(named: &[T])
    where
        T: From<u8> + Into<u8> + Copy + PartialEq + core::fmt::Debug,
    {
        for b in 0..=u8::MAX {
            let v = T::from(b);
            assert_eq!(v.into(), b);
            let is_named = named.iter().any(|n| (*n).into() == b);
            assert_eq!(is_named, named.contains(&v), "byte {b}: {v:?}");
        }
    }

    #[test]
    fn every_byte_roundtrips() {
        roundtrips(&[Direction::Egress, Direction::Ingress]);
        roundtrips(&[
            Protocol::Http1,
            Protocol::Tls,
            Protocol::H2c,
            Protocol::TlsPlaintext,
        ]);
        roundtrips(&[Part::Head, Part::Body, Part::Raw]);
        roundtrips(&[
            CloseReason::Closed,
            CloseReason::PeerEof,
            CloseReason::Error,
            CloseReason::Untracked,
            CloseReason::Upgraded,
            CloseReason::AtExit,
        ]);
        roundtrips(&[TlsLibrary::OpenSsl, TlsLibrary::GnuTls, TlsLibrary::Jsse]);
        roundtrips(&[
            LifecycleEvent::InvocationNext,
            LifecycleEvent::InvocationResponse,
            LifecycleEvent::InvocationError,
        ]);
        roundtrips(&[FailureStage::Dns, FailureStage::Connect, FailureStage::Tls]);
        roundtrips(&[
            NoticeKind::StaticExecutable,
            NoticeKind::GoProgram,
            NoticeKind::SetId,
            NoticeKind::ObjectUntouched,
            NoticeKind::JavaClassUntouched,
        ]);
        roundtrips(&[
            H2StartHow::PriorKnowledge,
            H2StartHow::Tls,
            H2StartHow::H2cUpgrade,
        ]);
    }

    #[test]
    fn unknown_values_are_not_known() {
        assert_eq!(Direction::from(7), Direction::Unknown(7));
        assert_eq!(Direction::from(7).known(), None);
        assert_eq!(Part::from(2).known(), Some(Part::Body));
        assert_eq!(CloseReason::from(0), CloseReason::Unknown(0));
    }
}
