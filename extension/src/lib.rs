//! tapline, the reading half: spool reader, HTTP exchange reassembly, reports and
//! exports. Everything here runs outside the traced process, after the fact, and is
//! safe Rust: the hooks live in `libtapline.so` (`src/` at the top of the repo) and are
//! never linked in here.
#![forbid(unsafe_code)]

pub mod budget;
pub mod exchange;
pub mod export;
pub mod mask;
