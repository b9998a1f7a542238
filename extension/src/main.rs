//! The `tapline` binary: the CLI and the Lambda extension (`tapline extension`).
//!
//! Its first act is to make sure it does not capture itself: when `LD_PRELOAD` names
//! libtapline (a traced shell that runs `tapline show`, a Lambda runtime whose wrapper
//! preloads us into every child), it re-executes itself without that entry, so that the
//! library's hooks never run inside the reader of their own spool.
#![forbid(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use tapline::{execute, parse_args, preload_without_tapline, EXIT_USAGE, USAGE};

fn main() -> ExitCode {
    if let Some(cleaned) = std::env::var_os("LD_PRELOAD")
        .as_deref()
        .and_then(preload_without_tapline)
    {
        reexec_without_preload(cleaned);
    }
    let code = match parse_args(std::env::args_os().skip(1)) {
        Ok(inv) => execute(inv),
        Err(e) => {
            if !e.0.is_empty() {
                eprintln!("tapline: {e}\n");
            }
            eprint!("{}", USAGE);
            EXIT_USAGE
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}

/// Replaces this process with itself, `LD_PRELOAD` set to `cleaned`. Returns only if
/// the exec failed, after saying so: tapline then goes on with the library loaded.
fn reexec_without_preload(cleaned: std::ffi::OsString) {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("tapline: warning: cannot find own executable to drop LD_PRELOAD: {e}");
            return;
        }
    };
    let mut args = std::env::args_os();
    let mut cmd = Command::new(exe);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    cmd.args(args);
    if cleaned.is_empty() {
        cmd.env_remove("LD_PRELOAD");
    } else {
        cmd.env("LD_PRELOAD", cleaned);
    }
    let e = cmd.exec();
    eprintln!("tapline: warning: cannot re-execute without LD_PRELOAD: {e}");
}
