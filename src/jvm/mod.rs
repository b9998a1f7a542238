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
pub mod wrap;

// The JVM side is private: `Agent_OnLoad` is exported by its symbol name, and raw JNI
// references never cross a public Rust API.
#[cfg(all(feature = "hooks", not(test)))]
mod agent;
#[cfg(all(feature = "hooks", not(test)))]
mod jvmti;
#[cfg(all(feature = "hooks", not(test)))]
mod natives;

pub use wrap::{class_name, native_methods, wrap_methods, Shape, Wrap};

/// The JDK methods that carry JSSE's plaintext, what the agent wraps: the same classes,
/// names and descriptors on JDK 17 and JDK 25 (the tests wrap them on both, verify the
/// result and run TLS through it).
///
/// - `SSLSocketImpl$AppOutputStream.write([BII)V`: what the application writes;
/// - `SSLSocketImpl$AppInputStream.read([BII)I`: what it reads (the result is the count);
/// - `SSLEngineImpl.wrap([ByteBuffer;II ByteBuffer)` / `unwrap(ByteBuffer [ByteBuffer;II)`:
///   the abstract `SSLEngine` methods every other overload calls; plaintext consumed from
///   the sources / produced into the destinations (`SSLEngineResult.bytesConsumed` /
///   `bytesProduced`, read against the positions pre saw). On both JDKs these delegate at
///   once to the internal six-argument `wrap`/`unwrap([ByteBuffer;II[ByteBuffer;II)`;
///   wrap one pair or the other, never both (each call would be seen twice).
pub const JSSE_TARGETS: &[(&str, &[Wrap<'static>])] = &[
    (
        "sun/security/ssl/SSLSocketImpl$AppOutputStream",
        &[Wrap {
            method: "write",
            desc: "([BII)V",
        }],
    ),
    (
        "sun/security/ssl/SSLSocketImpl$AppInputStream",
        &[Wrap {
            method: "read",
            desc: "([BII)I",
        }],
    ),
    (
        "sun/security/ssl/SSLEngineImpl",
        &[
            Wrap {
                method: "wrap",
                desc:
                    "([Ljava/nio/ByteBuffer;IILjava/nio/ByteBuffer;)Ljavax/net/ssl/SSLEngineResult;",
            },
            Wrap {
                method: "unwrap",
                desc:
                    "(Ljava/nio/ByteBuffer;[Ljava/nio/ByteBuffer;II)Ljavax/net/ssl/SSLEngineResult;",
            },
        ],
    ),
];

#[cfg(test)]
mod tests;
