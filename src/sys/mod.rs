//! The operating-system edge of the library: finding the real functions we interpose
//! ([`resolve`]), and the few raw syscalls the library makes for its own I/O ([`raw`]),
//! which must never pass through our own hooks.

pub mod raw;
pub mod resolve;
