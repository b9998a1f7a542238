//! The settings both halves share: the environment variables the library reads (and the
//! reader sets or reads too), and their defaults.
//!
//! Why here: the writer (`src/config.rs`) and the reader (`tapline run`, the Lambda
//! extension) must agree on where the spool is, how large a segment is and how much of
//! a body the library keeps; one definition cannot drift. Settings only one half reads
//! stay with that half.

use core::ffi::CStr;

/// The name of an environment variable, usable from C (`getenv`) and from Rust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnvVar(&'static CStr);

impl EnvVar {
    /// The NUL-terminated name, for `getenv` in the library.
    pub const fn c_name(self) -> &'static CStr {
        self.0
    }

    /// The name, for `std::env` in the reader.
    pub const fn name(self) -> &'static str {
        match self.0.to_str() {
            Ok(name) => name,
            Err(_) => panic!("environment variable names are ASCII"),
        }
    }
}

/// Where the library writes its spool and the reader reads it.
pub const SPOOL_DIR: EnvVar = EnvVar(c"TAPLINE_SPOOL_DIR");
/// Default for [`SPOOL_DIR`].
pub const DEFAULT_SPOOL_DIR: &str = "/tmp/tapline";

/// Body bytes the library keeps per message.
pub const MAX_BODY: EnvVar = EnvVar(c"TAPLINE_MAX_BODY");
/// Default for [`MAX_BODY`].
pub const DEFAULT_MAX_BODY: u64 = 8192;

/// Size of a shared spool segment (the reader makes segments ahead at this size).
pub const SEGMENT_BYTES: EnvVar = EnvVar(c"TAPLINE_SEGMENT_BYTES");
/// Default for [`SEGMENT_BYTES`].
pub const DEFAULT_SEGMENT_BYTES: u64 = 4 << 20;

/// `file` makes the library write one `writev` per record instead of shared segments.
pub const SPOOL_MODE: EnvVar = EnvVar(c"TAPLINE_SPOOL_MODE");
/// Set and not `0`: the library captures nothing.
pub const DISABLE: EnvVar = EnvVar(c"TAPLINE_DISABLE");
/// `0` turns the library's inline hooks off.
pub const INLINE: EnvVar = EnvVar(c"TAPLINE_INLINE");
/// File spool: a new spool file is started past this size.
pub const SPOOL_FILE_BYTES: EnvVar = EnvVar(c"TAPLINE_SPOOL_FILE_BYTES");
/// Bytes of segments one process may hold in the spool directory at once (file spool:
/// what one process may write in all).
pub const SPOOL_MAX_BYTES: EnvVar = EnvVar(c"TAPLINE_SPOOL_MAX_BYTES");
/// Claimed segments the whole spool directory may hold.
pub const SPOOL_MAX_SEGMENTS: EnvVar = EnvVar(c"TAPLINE_SPOOL_MAX_SEGMENTS");
/// `0`: the exec hooks do not put `LD_PRELOAD` (and the `TAPLINE_*` settings) back
/// into a child's environment that lacks it.
pub const FOLLOW_EXEC: EnvVar = EnvVar(c"TAPLINE_FOLLOW_EXEC");
/// `0`: no `-agentpath:<libtapline.so>` is put into a `java` command line (by
/// `tapline run`, `wrapper.sh` or the exec hooks), and the library's JVMTI agent
/// (`Agent_OnLoad`), if loaded anyway, does nothing: Java's TLS stays opaque.
pub const JAVA: EnvVar = EnvVar(c"TAPLINE_JAVA");
/// Set by Lambda in the runtime's environment: the Runtime API's `host:port`.
pub const LAMBDA_RUNTIME_API: EnvVar = EnvVar(c"AWS_LAMBDA_RUNTIME_API");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_c_names() {
        assert_eq!(SPOOL_DIR.name(), "TAPLINE_SPOOL_DIR");
        assert_eq!(SPOOL_DIR.c_name().to_bytes(), b"TAPLINE_SPOOL_DIR");
        assert_eq!(LAMBDA_RUNTIME_API.name(), "AWS_LAMBDA_RUNTIME_API");
    }
}
