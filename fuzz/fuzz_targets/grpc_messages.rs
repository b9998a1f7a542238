//! Arbitrary bytes as a gRPC request and response body: length-prefixed messages,
//! gzip/deflate, schema-less protobuf and JSON decoding, then masking (key rules and
//! value shapes). Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tapline::check_grpc_body_bytes(data);
});
