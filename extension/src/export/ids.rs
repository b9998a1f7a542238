//! Trace and span ids: their hex form, the X-Ray header they can come from, the ids
//! a batch makes, and the span id a produced message is given so that its consumer can
//! link to it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A 16-byte trace id (never all zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id (never all zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanId(pub [u8; 8]);

impl TraceId {
    /// Lower-case hex, as OTLP/JSON writes it.
    pub fn to_hex(self) -> String {
        hex(&self.0)
    }

    /// The trace id and parent span id of an X-Ray trace header
    /// (`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`):
    /// the root's epoch and random parts, concatenated, are the W3C trace id.
    pub fn from_xray(header: &str) -> Option<ParentContext> {
        let mut trace_id = None;
        let mut span_id = None;
        for part in header.split(';') {
            let (k, v) = part.trim().split_once('=')?;
            match k.trim() {
                "Root" => {
                    let mut it = v.trim().split('-');
                    let (ver, epoch, rand) = (it.next()?, it.next()?, it.next()?);
                    if ver != "1" || epoch.len() != 8 || rand.len() != 24 {
                        return None;
                    }
                    trace_id = Some(TraceId(parse_hex::<16>(&format!("{epoch}{rand}"))?));
                }
                "Parent" => span_id = parse_hex::<8>(v.trim()).map(SpanId),
                _ => {}
            }
        }
        let trace_id = trace_id.filter(|t| t.0 != [0; 16])?;
        Some(ParentContext {
            trace_id,
            span_id: span_id.filter(|s| s.0 != [0; 8]),
        })
    }
}

impl SpanId {
    /// Lower-case hex, as OTLP/JSON writes it.
    pub fn to_hex(self) -> String {
        hex(&self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The trace every span of a batch joins, and the span they are children of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParentContext {
    pub trace_id: TraceId,
    pub span_id: Option<SpanId>,
}

/// The span id a produced message's span gets: derived from the message id, so that a
/// consumer — in another process, another function — can link to it knowing only the
/// message id and the producer's trace (`AWSTraceHeader`). FNV-1a over
/// `"{service}/{id}"`, then the splitmix64 finaliser; never zero.
pub(crate) fn message_span_id(service: &str, id: &str) -> SpanId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in service
        .bytes()
        .chain(std::iter::once(b'/'))
        .chain(id.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let z = mix(h);
    SpanId((if z == 0 { 1 } else { z }).to_be_bytes())
}

/// The splitmix64 finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small non-cryptographic id source (splitmix64), seeded from the clock, the pid and
/// a process-wide counter — ids need to be unique, not secret.
#[derive(Clone, Debug)]
pub struct IdGenerator(u64);

impl IdGenerator {
    pub fn from_time() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        static MADE: AtomicU64 = AtomicU64::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        IdGenerator(
            now ^ u64::from(std::process::id()).rotate_left(32)
                ^ n.wrapping_mul(0xA24B_AED4_963E_E407),
        )
    }

    /// Deterministic ids, for tests.
    pub fn seeded(seed: u64) -> Self {
        IdGenerator(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    pub fn span_id(&mut self) -> SpanId {
        loop {
            let id = self.next_u64();
            if id != 0 {
                return SpanId(id.to_be_bytes());
            }
        }
    }

    pub fn trace_id(&mut self) -> TraceId {
        let mut t = [0u8; 16];
        t[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        t[8..].copy_from_slice(&self.next_u64().to_be_bytes());
        if t == [0; 16] {
            t[15] = 1;
        }
        TraceId(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::sample as exchange;
    use crate::export::{Resource, SpanBatch};

    #[test]
    fn parent_from_xray() {
        let p = TraceId::from_xray(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .unwrap();
        assert_eq!(p.trace_id.to_hex(), "5759e988bd862e3fe1be46a994272793");
        assert_eq!(p.span_id.unwrap().to_hex(), "53995c3f42cd8ad8");
        assert!(TraceId::from_xray("Root=1-5759e988-bd86;Sampled=1").is_none());
        assert!(
            TraceId::from_xray("Root=1-5759e988-bd862e3fe1be46a994272793")
                .unwrap()
                .span_id
                .is_none()
        );

        let mut batch = SpanBatch::new(Resource::default()).with_parent(p);
        let inv = batch.new_span_id();
        batch.set_parent(Some(ParentContext {
            trace_id: p.trace_id,
            span_id: Some(inv),
        }));
        let s = batch.add_exchange(&exchange()).clone();
        assert_eq!((s.trace_id, s.parent_span_id), (p.trace_id, Some(inv)));
    }

    #[test]
    fn ids_unique_and_nonzero() {
        let mut ids = IdGenerator::seeded(0);
        let a: Vec<SpanId> = (0..1000).map(|_| ids.span_id()).collect();
        let set: std::collections::HashSet<_> = a.iter().collect();
        assert_eq!(set.len(), 1000);
        assert!(a.iter().all(|s| s.0 != [0; 8]));
    }
}
