//! Content-coding decode, the stage before body masking: a gzip, deflate or br body is
//! masked — and reported — decoded.

use crate::exchange::Body;

/// Most bytes a coded body is decoded to (what is cut there is marked truncated).
const DECODED_MAX: usize = 1 << 20;

/// A body sent with a content coding is masked — and reported — decoded: masked as
/// coded bytes, every secret in it would leave unseen (and readable to anyone who
/// decodes it). gzip, deflate (zlib or raw) and br are decoded, a captured prefix as far
/// as it goes; a body in any other coding (zstd, compress, stacked codings) cannot be
/// inspected, so its bytes are not reported at all (sizes stay).
pub(super) fn decode_body(body: &mut Body, coding: Option<&str>) {
    let Some(coding) = coding else { return };
    let coding = coding.trim().to_ascii_lowercase();
    if coding.is_empty() || coding == "identity" || body.bytes.is_empty() || body.decoded.is_some()
    {
        return;
    }
    let raw = &body.bytes[..];
    let decoded = match coding.as_str() {
        "gzip" | "x-gzip" => inflate(flate2::read::MultiGzDecoder::new(raw)).map(|d| ("gzip", d)),
        "deflate" => inflate(flate2::read::ZlibDecoder::new(raw))
            .or_else(|| inflate(flate2::read::DeflateDecoder::new(raw)))
            .map(|d| ("deflate", d)),
        "br" => inflate(brotli_decompressor::Decompressor::new(raw, 16 << 10)).map(|d| ("br", d)),
        _ => None,
    };
    match decoded {
        Some((name, (bytes, complete))) => {
            body.bytes = bytes;
            body.truncated |= !complete;
            body.decoded = Some(name);
        }
        None => {
            body.bytes.clear();
            body.truncated = true;
        }
    }
}

/// Reads a decoder to its end, or to [`DECODED_MAX`], or to where its input was cut.
/// `(bytes, complete)`; `None` if it decoded nothing at all (not this coding).
fn inflate(mut r: impl std::io::Read) -> Option<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Some((out, true)),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() >= DECODED_MAX {
                    out.truncate(DECODED_MAX);
                    return Some((out, false));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return (!out.is_empty()).then_some((out, false)),
        }
    }
}
