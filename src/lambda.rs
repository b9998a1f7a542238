//! AWS Lambda lifecycle, as seen from inside the runtime process.
//!
//! The runtime talks to the Runtime API (`$AWS_LAMBDA_RUNTIME_API`, plain HTTP/1.1) and
//! those calls pass through our hooks like any other. When the runtime has finished
//! writing `POST /2018-06-01/runtime/invocation/{id}/response` (or `/error`), the caller
//! has its answer: this is the moment the extension should do its work. We write a
//! `Lifecycle` record and poke the FIFO `<spool>/wake` with a non-blocking one-byte
//! write. No reader, a full pipe, no FIFO: nothing happens, and the runtime never
//! waits. Everything else (request ids of `invocation/next`, the event) the extension
//! reads from the ordinary exchange records.

use core::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use tapline_record::{Lifecycle, LifecycleEvent, MsgEnd, RecordType, Stamp, WireAddr};

use crate::http1::FrameSink;
use crate::sys::raw;
use crate::{config, spool};

/// The Runtime API's IPv4 address (as the low 32 bits) and port; 0 when not in Lambda.
static RUNTIME_API_ADDR: AtomicU64 = AtomicU64::new(0);
static RUNTIME_API_PORT: AtomicU16 = AtomicU16::new(0);

const INVOCATION_PREFIX: &[u8] = b"POST /2018-06-01/runtime/invocation/";

/// Reads `AWS_LAMBDA_RUNTIME_API` (`host:port`; the host an IPv4 literal or
/// `localhost`, as Lambda sets it).
pub fn init(value: Option<&[u8]>) {
    let Some(v) = value else { return };
    let Some(colon) = v.iter().rposition(|&b| b == b':') else {
        return;
    };
    let (host, port) = (&v[..colon], &v[colon + 1..]);
    let Some(port) = parse_port(port) else { return };
    let ip = if host == b"localhost" {
        Some([127, 0, 0, 1])
    } else {
        parse_ipv4(host)
    };
    if let Some(ip) = ip {
        RUNTIME_API_ADDR.store(
            u64::from(u32::from_be_bytes(ip)) | 1 << 32,
            Ordering::Relaxed,
        );
        RUNTIME_API_PORT.store(port, Ordering::Relaxed);
    }
}

/// Is `peer` the Runtime API?
pub fn is_runtime_api(peer: &WireAddr) -> bool {
    let a = RUNTIME_API_ADDR.load(Ordering::Relaxed);
    if a == 0 || peer.port != RUNTIME_API_PORT.load(Ordering::Relaxed) {
        return false;
    }
    let ip = (a as u32).to_be_bytes();
    match peer.family {
        tapline_record::AF_INET => peer.addr[..4] == ip,
        // An IPv4-mapped IPv6 address (::ffff:a.b.c.d), as Java connects.
        tapline_record::AF_INET6 => {
            peer.addr[..10] == [0; 10] && peer.addr[10..12] == [0xff, 0xff] && peer.addr[12..] == ip
        }
        _ => false,
    }
}

/// A response or error post seen in a request head, waiting for the request's end.
#[derive(Clone, Copy)]
pub struct Pending {
    /// A [`LifecycleEvent`] byte; 0 = nothing pending (the struct lives in zeroed memory).
    event: u8,
    id_len: u8,
    msg_seq: u32,
    id: [u8; 64],
}

impl Pending {
    pub const fn new() -> Self {
        Pending {
            event: 0,
            id_len: 0,
            msg_seq: 0,
            id: [0; 64],
        }
    }
}

impl Default for Pending {
    fn default() -> Self {
        Self::new()
    }
}

/// Wraps the record sink of a Runtime API connection's requests: notices the response
/// post in the head, and when that request ends writes the `Lifecycle` record and wakes
/// the extension.
pub struct LifecycleSink<'a, S> {
    pub inner: &'a mut S,
    pub pending: &'a mut Pending,
    pub at: Stamp,
}

impl<'b, S: FrameSink<'b>> FrameSink<'b> for LifecycleSink<'_, S> {
    fn head(&mut self, msg_seq: u32, offset: u64, bytes: &'b [u8]) {
        if offset == 0 {
            *self.pending = parse_post(msg_seq, bytes).unwrap_or_default();
        }
        self.inner.head(msg_seq, offset, bytes);
    }

    fn body(&mut self, msg_seq: u32, offset: u64, bytes: &'b [u8]) {
        self.inner.body(msg_seq, offset, bytes);
    }

    fn progress(&mut self, p: &MsgEnd) {
        self.inner.progress(p);
    }

    fn end(&mut self, end: &MsgEnd) {
        self.inner.end(end);
        let p = *self.pending;
        if p.event != 0 && p.msg_seq == end.msg_seq {
            *self.pending = Pending::new();
            let fixed = Lifecycle {
                event: p.event.into(),
                id_len: u16::from(p.id_len),
            }
            .encode();
            spool::record(
                RecordType::Lifecycle,
                0,
                self.at,
                &[&fixed, &p.id[..p.id_len as usize]],
            );
            wake();
        }
    }
}

/// `POST /2018-06-01/runtime/invocation/{id}/response` → (RESPONSE, id).
fn parse_post(msg_seq: u32, head: &[u8]) -> Option<Pending> {
    let rest = head.strip_prefix(INVOCATION_PREFIX)?;
    let slash = rest.iter().take(65).position(|&b| b == b'/')?;
    let (id, tail) = (&rest[..slash], &rest[slash + 1..]);
    let event = if tail.starts_with(b"response ") || tail.starts_with(b"response?") {
        LifecycleEvent::InvocationResponse.into()
    } else if tail.starts_with(b"error ") || tail.starts_with(b"error?") {
        LifecycleEvent::InvocationError.into()
    } else {
        return None;
    };
    if id.is_empty() || id.len() > 64 {
        return None;
    }
    let mut p = Pending {
        event,
        id_len: id.len() as u8,
        msg_seq,
        id: [0; 64],
    };
    p.id[..id.len()].copy_from_slice(id);
    Some(p)
}

/// Pokes `<spool>/wake` without ever blocking: O_NONBLOCK open (ENXIO when nobody
/// listens) and a one-byte write (EAGAIN when the pipe is full). Errors are ignored.
fn wake() {
    let dir = config::spool_dir();
    let mut path = [0u8; 600];
    const NAME: &[u8] = b"/wake";
    if dir.len() + NAME.len() + 1 > path.len() {
        return;
    }
    path[..dir.len()].copy_from_slice(dir);
    path[dir.len()..dir.len() + NAME.len()].copy_from_slice(NAME);
    // SAFETY: `path` is NUL-terminated (zeroed buffer).
    let fd = unsafe {
        libc::open(
            path.as_ptr() as *const libc::c_char,
            libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    if fd < 0 {
        return;
    }
    // SAFETY: fstat on our own descriptor into a zeroed stat.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: `st` is writable.
    let is_fifo =
        unsafe { libc::fstat(fd, &mut st) } == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFIFO;
    if is_fifo {
        let iov = [libc::iovec {
            iov_base: b"!".as_ptr() as *mut libc::c_void,
            iov_len: 1,
        }];
        raw::writev(fd, &iov);
    }
    raw::close(fd);
}

fn parse_port(v: &[u8]) -> Option<u16> {
    if v.is_empty() || v.len() > 5 {
        return None;
    }
    let n = v.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })?;
    u16::try_from(n).ok()
}

fn parse_ipv4(v: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = v.split(|&b| b == b'.');
    for o in &mut out {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 {
            return None;
        }
        let n = p.iter().try_fold(0u32, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
        })?;
        *o = u8::try_from(n).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_response_and_error_posts() {
        let p = parse_post(
            3,
            b"POST /2018-06-01/runtime/invocation/8f3c-11/response HTTP/1.1\r\n",
        )
        .expect("response");
        assert_eq!(
            (p.event, &p.id[..p.id_len as usize], p.msg_seq),
            (
                LifecycleEvent::InvocationResponse.into(),
                &b"8f3c-11"[..],
                3
            )
        );
        let p = parse_post(
            0,
            b"POST /2018-06-01/runtime/invocation/abc/error HTTP/1.1\r\n",
        )
        .expect("error");
        assert_eq!(p.event, u8::from(LifecycleEvent::InvocationError));
        assert!(parse_post(0, b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n").is_none());
        assert!(parse_post(0, b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\n").is_none());
    }

    #[test]
    fn runtime_api_address_matches_v4_and_mapped_v6() {
        init(Some(b"127.0.0.1:9001"));
        let mut a = WireAddr {
            family: tapline_record::AF_INET,
            port: 9001,
            addr: [0; 16],
        };
        a.addr[..4].copy_from_slice(&[127, 0, 0, 1]);
        assert!(is_runtime_api(&a));
        a.port = 9002;
        assert!(!is_runtime_api(&a));
        let mut m = WireAddr {
            family: tapline_record::AF_INET6,
            port: 9001,
            addr: [0; 16],
        };
        m.addr[10..].copy_from_slice(&[0xff, 0xff, 127, 0, 0, 1]);
        assert!(is_runtime_api(&m));
        assert_eq!(parse_ipv4(b"1.2.3"), None);
        assert_eq!(parse_ipv4(b"1.2.3.256"), None);
        assert_eq!(parse_port(b"70000"), None);
    }
}
