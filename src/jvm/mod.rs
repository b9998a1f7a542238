//! Java classes, rewritten as they load: the pure half of the JVMTI agent (issue 17).
//!
//! Java does TLS in Java (JSSE), so no C library call ever sees its plaintext. The agent
//! (`ClassFileLoadHook`) hands the bytes of the few JDK classes that carry it to
//! [`wrap::wrap_methods`], which renames each target method and adds, under the original
//! name, a branch-free method that calls two `private static native` hooks around it.
//! The natives are bound with `RegisterNatives`; nothing else of the class changes.
//!
//! [`classfile`] reads and writes class files (constant pool, fields, methods, attributes,
//! kept as raw bytes); [`wrap`] builds the wrapper. Neither uses JVMTI or `unsafe`
//! (each forbids it), and neither panics on any input: a class that is not exactly what
//! we expect is refused ([`wrap::Shape`]) and the JVM loads it untouched.
//!
//! The JVM side: [`jvmti`] (the few JVMTI and JNI calls, the one place they are made
//! unsafely), `agent` (`Agent_OnLoad`, the class hooks) and `natives` (what the wrapped
//! methods call: JSSE sessions fed to the capture core) — the last two only in the
//! preload library with its hooks.

pub mod classfile;
pub mod jvmti;
pub mod wrap;

#[cfg(all(feature = "hooks", not(test)))]
pub mod agent;
#[cfg(all(feature = "hooks", not(test)))]
pub mod natives;

pub use wrap::{class_name, native_methods, wrap_methods, Shape, Wrap};

#[cfg(test)]
mod tests;
