//! Arbitrary bytes as a class file through the JVMTI agent's class-file reader and wrapper
//! (`src/jvm/classfile.rs` and `wrap.rs`, included by path: the rest of `src/jvm/` is the
//! JVMTI side, which needs the library's dependencies). They run on the JVM's
//! class-loading thread, so they must never panic; whatever parses must write back to the
//! same bytes, whatever wraps must parse again, and the cheap `class_name` must agree with
//! the full parse.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../src/jvm"]
mod jvm {
    pub mod classfile;
    pub mod wrap;
}

use jvm::classfile::ClassFile;
use jvm::wrap::{class_name, wrap_methods, Wrap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let fast = class_name(data);
    if let Ok(cf) = ClassFile::parse(data) {
        assert_eq!(cf.write().ok().as_deref(), Some(data));
        let full = cf.class_name(cf.this_class).and_then(|n| std::str::from_utf8(n).ok());
        assert_eq!(fast, full);
    }
    let wraps = [
        Wrap { method: "write", desc: "([BII)V" },
        Wrap { method: "read", desc: "([BII)I" },
    ];
    for w in [&wraps[..1], &wraps[1..], &wraps[..]] {
        if let Ok(out) = wrap_methods(data, w) {
            assert!(ClassFile::parse(&out).is_ok());
        }
    }
});
