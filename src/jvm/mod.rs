//! Java classes, rewritten as they load: the pure half of the JVMTI agent (issue 17).
//!
//! Java does TLS in Java (JSSE), so no C library call ever sees its plaintext. The agent
//! (`ClassFileLoadHook`) hands the bytes of the few JDK classes that carry it to
//! [`wrap::wrap_methods`], which renames each target method and adds, under the original
//! name, a branch-free method that calls two `private static native` hooks around it.
//! The natives are bound with `RegisterNatives`; nothing else of the class changes.
//!
//! [`classfile`] reads and writes class files (constant pool, fields, methods, attributes,
//! kept as raw bytes); [`wrap`] builds the wrapper. Neither uses JVMTI or `unsafe`, and
//! neither panics on any input: a class that is not exactly what we expect is refused
//! ([`wrap::Shape`]) and the JVM loads it untouched.
#![forbid(unsafe_code)]

pub mod classfile;
pub mod wrap;

pub use wrap::{class_name, native_methods, wrap_methods, Shape, Wrap};

#[cfg(test)]
mod tests;
