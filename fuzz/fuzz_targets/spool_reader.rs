//! Arbitrary bytes through the spool reader, reassembly and every report format.
//! The first byte picks how many files the rest is split into, so that cross-file
//! ordering and connections spread over files are explored too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let parts = usize::from(split % 3) + 1;
    let chunk = rest.len().div_ceil(parts).max(1);
    let files: Vec<&[u8]> = rest.chunks(chunk).collect();
    let _ = tapline::check_spool_bytes(&files);
});
