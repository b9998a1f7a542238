//! tapline, the reading half: spool reader, HTTP exchange reassembly, reports and
//! exports. Everything here runs outside the traced process, after the fact, and is
//! safe Rust: the hooks live in `libtapline.so` (`src/` at the top of the repo) and are
//! never linked in here.
//!
//! The data path, one way only: [`spool`] (bytes → typed records) → [`assemble`]
//! (records → [`exchange::Exchange`]s) → (masking, budgets: other stages) → [`report`]
//! (table, JSON lines, HAR). [`cli`] drives it for `tapline run` and `tapline show`.
#![forbid(unsafe_code)]

pub mod assemble;
pub mod aws;
pub mod budget;
pub mod cli;
pub mod exchange;
pub mod export;
pub mod grpc;
pub mod http2;
pub mod lambda;
pub mod mask;
pub mod mask_shapes;
pub mod report;
pub mod segment;
pub mod spool;
pub mod tls;

/// Reads in-memory spool files and runs the whole reading path over them, reports
/// included. The fuzz target and the pseudo-random robustness test call this: whatever
/// the bytes, it must not panic.
pub fn check_spool_bytes(files: &[&[u8]]) -> assemble::Assembly {
    let names: Vec<String> = (0..files.len()).map(|i| format!("1-{i}.tlr")).collect();
    let spool =
        spool::Spool::from_files(names.iter().map(String::as_str).zip(files.iter().copied()));
    let mut assembly = assemble::assemble(&spool);
    aws::recognise_all(&mut assembly.exchanges);
    let mut sink = std::io::sink();
    for format in [
        report::Format::Table,
        report::Format::Json,
        report::Format::Har,
    ] {
        // Writing to a sink cannot fail; a failure here would be a bug worth a panic in
        // the fuzzer, but not in production callers, so it is ignored.
        let _ = report::write(format, &assembly.exchanges, &mut sink);
    }
    assembly
}
