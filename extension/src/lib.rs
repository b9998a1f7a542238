//! tapline, the reading half: spool reader, HTTP exchange reassembly, reports and
//! exports. Everything here runs outside the traced process, after the fact, and is
//! safe Rust: the hooks live in `libtapline.so` (`src/` at the top of the repo) and are
//! never linked in here.
//!
//! The data path, one way only: [`spool`] (bytes → typed records, the one reading
//! edge) → [`pipeline`] (records → [`exchange::Exchange`]s by [`assemble`], then
//! recognition of AWS and gRPC calls, masking, budgets) → [`report`] (table, JSON lines, HAR) or [`export`]
//! (OTLP). [`cli`] drives it for `tapline run` and `tapline show`, [`lambda`] as an
//! AWS Lambda extension.
#![forbid(unsafe_code)]

pub mod assemble;
pub mod aws;
pub mod budget;
pub mod cli;
pub mod client_hello;
pub mod exchange;
pub mod export;
mod grpc;
pub mod http2;
pub mod lambda;
pub mod mask;
mod pieces;
pub mod pipeline;
pub mod report;
pub mod spool;
mod text;

/// Reads in-memory spool files and runs the whole reading path over them (the
/// [`pipeline::Pipeline`] with its defaults), reports included. The fuzz target and the
/// pseudo-random robustness test call this: whatever the bytes, it must not panic.
pub fn check_spool_bytes(files: &[&[u8]]) -> assemble::Assembly {
    let names: Vec<String> = (0..files.len()).map(|i| format!("1-{i}.tlr")).collect();
    let spool =
        spool::Spool::from_files(names.iter().map(String::as_str).zip(files.iter().copied()));
    // One pipeline for every call (the fuzzer calls this millions of times; building the
    // masker compiles its patterns).
    static PIPELINE: std::sync::OnceLock<pipeline::Pipeline> = std::sync::OnceLock::new();
    let assembly = PIPELINE
        .get_or_init(pipeline::Pipeline::defaults)
        .run(&spool);
    write_every_report(&assembly.exchanges);
    assembly
}

/// Arbitrary bytes read as one HTTP/2 connection's records
/// ([`http2::check_records_bytes`]: HPACK and stream assembly), then every report. The
/// fuzz target `http2_reader` and the pseudo-random robustness test call this: whatever
/// the bytes, it must not panic.
pub fn check_h2_records_bytes(data: &[u8]) -> Vec<exchange::Exchange> {
    let exchanges = http2::check_records_bytes(data);
    write_every_report(&exchanges);
    exchanges
}

/// Arbitrary bytes as a gRPC request and response body through the gRPC stage and the
/// masker (`grpc/`: length-prefixed messages, gzip/deflate, schema-less protobuf and
/// JSON decoding, key rules and value shapes). The fuzz target `grpc_messages` and the
/// garbage test call this: whatever the bytes, it must not panic. Returns the response
/// body as the first rendering shows it (`application/grpc`, gzip, whole).
pub fn check_grpc_body_bytes(data: &[u8]) -> Vec<u8> {
    grpc::check_body_bytes(data)
}

fn write_every_report(exchanges: &[exchange::Exchange]) {
    let mut sink = std::io::sink();
    for format in [
        report::Format::Table,
        report::Format::Json,
        report::Format::Har,
    ] {
        // Writing to a sink cannot fail; a failure here would be a bug worth a panic in
        // the fuzzer, but not in production callers, so it is ignored.
        let _ = report::write(format, exchanges, &mut sink);
    }
}
