//! Arbitrary bytes as a shared spool segment (`*.tls`) through the batch segment reader:
//! it must never panic, and everything it returns must be records whose CRC checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_record::{Item, RecordIter};

fuzz_target!(|data: &[u8]| {
    let out = tapline::read_segment(data);
    for item in RecordIter::new(&out.frames) {
        assert!(matches!(item, Item::Record { .. }));
    }
});
