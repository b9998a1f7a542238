//! tapline, the reading half: spool reader, HTTP exchange reassembly, reports and
//! exports. Everything here runs outside the traced process, after the fact, and is
//! safe Rust: the hooks live in `libtapline.so` (`src/` at the top of the repo) and are
//! never linked in here.
//!
//! The data path, one way only: `spool` (bytes → typed records, the one reading edge)
//! → `pipeline` (records → [`Exchange`]s by `assemble`, then recognition of AWS and
//! gRPC calls, masking, budgets) → `report` (table, JSON lines, HAR) or `export`
//! (OTLP). `cli` drives it for `tapline run` and `tapline show`, `lambda` as an AWS
//! Lambda extension. The modules are private: the crate's API is the curated list of
//! re-exports below.
#![forbid(unsafe_code)]
// Every module is private; what other crates may use is the list below. A `pub` item
// that is not reachable from here is an error, so a module's `pub` means "part of the
// crate's API" and everything else says `pub(crate)` (as rustls does).
#![deny(unreachable_pub)]

mod assemble;
mod aws;
mod budget;
mod cli;
mod client_hello;
mod exchange;
mod export;
mod grpc;
mod http2;
mod lambda;
mod mask;
mod notice;
mod pieces;
mod pipeline;
mod report;
mod spool;
mod text;

// The public API: what the binary (`src/main.rs`), the integration tests, benches,
// examples and fuzz targets use, plus the types their signatures name. Nothing else
// leaves the crate.

// Spool reading: the batch reader over a spool directory, and the segment reader with
// the helpers that make and clear free segments (the handoff bench, the segment stress
// test and the segment fuzz target).
pub use spool::segment::{
    is_segment_name, make_free_segments, read_segment, remove_free_segments, SegmentContents,
    SegmentFollower, SegmentStats,
};
pub use spool::{Spool, SpoolError};

// Pipeline: records → exchanges ([`assemble`]) → recognise → mask → budget. (Reports
// are written by [`execute`] and [`check_spool_bytes`]; no user needs them directly.)
pub use assemble::{assemble, Assembly, ProcessInfo, Totals};
pub use budget::{Budget, BudgetOutcome};
pub use notice::Notice;
pub use pipeline::Pipeline;

// Model: one HTTP exchange as every stage sees it.
pub use exchange::{AwsCall, Body, Exchange, Service, Timings, TlsKind};

// Masking: the masker a [`Pipeline`] carries.
pub use mask::{MaskError, Masker, DEFAULT_KEY_PATTERN};

// Export: OTLP spans of exchanges (the `otlp_export` example).
pub use export::{OtlpExporter, Outbox, Resource};

// Lambda: the extension's incremental exchange feed, and the trigger of an invocation
// event.
pub use aws::trigger::{parse as parse_trigger, Trigger, TriggerKind};
pub use lambda::feed::{ExchangeFeed, LifecycleMark};

// CLI: what `main.rs` calls.
pub use cli::{
    execute, parse as parse_args, preload_without_tapline, Invocation, UsageError, EXIT_USAGE,
    USAGE,
};

/// Reads in-memory spool files and runs the whole reading path over them (the
/// [`Pipeline`] with its defaults), reports included. The fuzz target and the
/// pseudo-random robustness test call this: whatever the bytes, it must not panic.
pub fn check_spool_bytes(files: &[&[u8]]) -> Assembly {
    let names: Vec<String> = (0..files.len()).map(|i| format!("1-{i}.tlr")).collect();
    let spool = Spool::from_files(names.iter().map(String::as_str).zip(files.iter().copied()));
    // One pipeline for every call (the fuzzer calls this millions of times; building the
    // masker compiles its patterns).
    static PIPELINE: std::sync::OnceLock<Pipeline> = std::sync::OnceLock::new();
    let assembly = PIPELINE.get_or_init(Pipeline::defaults).run(&spool);
    write_every_report(&assembly.exchanges);
    assembly
}

/// Arbitrary bytes read as one HTTP/2 connection's records
/// (`http2::check_records_bytes`: HPACK and stream assembly), then every report. The
/// fuzz target `http2_reader` and the pseudo-random robustness test call this: whatever
/// the bytes, it must not panic.
pub fn check_h2_records_bytes(data: &[u8]) -> Vec<Exchange> {
    let exchanges = http2::check_records_bytes(data);
    write_every_report(&exchanges);
    exchanges
}

/// Arbitrary bytes as one HPACK header block for a fresh decoder (the fuzz target
/// `http2_reader`): whatever the bytes, it must not panic. Returns the number of fields
/// decoded.
pub fn check_hpack_block(data: &[u8]) -> usize {
    http2::check_hpack_block(data)
}

/// Arbitrary bytes as a gRPC request and response body through the gRPC stage and the
/// masker (`grpc/`: length-prefixed messages, gzip/deflate, schema-less protobuf and
/// JSON decoding, key rules and value shapes). The fuzz target `grpc_messages` and the
/// garbage test call this: whatever the bytes, it must not panic. Returns the response
/// body as the first rendering shows it (`application/grpc`, gzip, whole).
pub fn check_grpc_body_bytes(data: &[u8]) -> Vec<u8> {
    grpc::check_body_bytes(data)
}

fn write_every_report(exchanges: &[Exchange]) {
    let mut sink = std::io::sink();
    for format in [
        report::Format::Table,
        report::Format::Json,
        report::Format::Har,
        report::Format::Html,
    ] {
        // Writing to a sink cannot fail; a failure here would be a bug worth a panic in
        // the fuzzer, but not in production callers, so it is ignored.
        let _ = report::write(format, exchanges, &mut sink);
    }
}
