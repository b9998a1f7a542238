//! Arbitrary bytes as one connection's HTTP/2 records (header blocks, data, stream
//! ends, resets, GOAWAY, SETTINGS) through HPACK, stream assembly and every report
//! format; and the same bytes as one header block straight into the HPACK decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tapline::http2::check_records_bytes(data);
    let mut decoder = tapline::http2::hpack::Decoder::default();
    let _ = decoder.decode(data);
});
