//! libtapline.so — records the HTTP traffic of the process it is preloaded into.
//!
//! Loaded with `LD_PRELOAD` (by `wrapper.sh` in Lambda, by `tapline run` locally), it
//! interposes libc's socket calls, follows the TCP connections this process opens,
//! frames HTTP/1.x on the fly and appends compact records to a spool directory that the
//! `tapline` binary reads. On the caller's thread it does the least it can: one
//! table lookup for a socket it does not follow; for one it does, a framer step, at most
//! one copy of the bytes it keeps (a `memcpy` into a shared segment, or the kernel's in
//! `writev`), and one append.
//!
//! Layout: `hooks` holds the thin `extern "C"` shims; [`capture`] the logic they call;
//! [`conn`] the per-fd table and [`tls`] the per-session one; [`http1`] the framer;
//! [`spool`] records and the writers; [`names`] name lookups; [`lambda`] the Runtime API
//! lifecycle; [`inline_plan`] the plans of the inline hooks; [`sys`] symbol resolution
//! and raw syscalls; [`config`] the environment. ARCHITECTURE.md draws the data path.
//!
//! Rules (ARCHITECTURE.md, "Invariants"): a hook calls the real function exactly once, first, and returns
//! its result and errno unchanged; no panic crosses `extern "C"`; no lock, no allocation
//! and no lazily initialised thread-local on the hook path; no threads; survive `fork`;
//! never exit or abort the host.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod bytes;
pub mod capture;
pub mod config;
pub mod conn;
pub mod exec;
#[cfg(all(feature = "hooks", not(test)))]
pub mod hooks;
pub mod http1;
pub mod http2;
pub mod inline_plan;
pub mod jvm;
pub mod lambda;
pub mod names;
pub mod spool;
pub mod sys;
pub mod tls;
pub mod tls_wire;

/// The constructor: runs when the dynamic loader maps the library, before `main`.
///
/// It resolves the real libc functions eagerly (while the process is single-threaded),
/// reads the configuration, maps the connection table and registers the `fork` handler.
/// It writes nothing to disk: a process that never speaks HTTP leaves no spool file.
#[cfg(all(feature = "hooks", not(test)))]
extern "C" fn tapline_init() {
    // A panic in capture is caught (`hooks::after`) and that capture skipped; the
    // default hook would print it on the host's stderr. This is the library's own
    // `std` (a Rust host's hook is its host's): silent here, counted as a lost record.
    std::panic::set_hook(Box::new(|_| spool::count_lost()));
    let _ = std::panic::catch_unwind(|| {
        hooks::io::resolve_all();
        hooks::libc::resolve_all();
        spool::set_pid();
        let inert = is_tapline_binary();
        // The Runtime API address is known before READY publishes the settings.
        lambda::init(config::env(tapline_record::settings::LAMBDA_RUNTIME_API));
        config::init(inert);
        if !config::active() {
            return;
        }
        sys::crc32c::init();
        sys::tsc::init();
        spool::process::init();
        hooks::exec::init();
        conn::init();
        tls::init();
        http2::init();
        // OpenSSL inside the executable itself (node): inline hooks, or nothing. The
        // plans are x86-64 code (iced-x86 decodes the prologues, a `jmp rel32` replaces
        // them): on any other architecture, nothing — node's TLS stays opaque there.
        if cfg!(target_arch = "x86_64") && config::inline_hooks() {
            let _ = hooks::inline::install();
        }
        // Objects that bind past the global scope (RTLD_DEEPBIND): bound to us.
        sys::got::init();
        hooks::after(|| sys::got::scan_at_start(hooks::dlopen::say_untouched));
        // SAFETY: registering a plain extern "C" handler; no preconditions.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_child)) };
    });
}

#[cfg(all(feature = "hooks", not(test)))]
#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = tapline_init;

/// The destructor: runs from `exit` (and a return from `main`), after `atexit`
/// handlers. Writes the end of every connection still open.
#[cfg(all(feature = "hooks", not(test)))]
extern "C" fn tapline_fini() {
    if config::active() {
        // `after` guards against re-entry, keeps errno and catches panics.
        hooks::after(capture::flush_at_exit);
    }
}

#[cfg(all(feature = "hooks", not(test)))]
#[used]
#[link_section = ".fini_array"]
static FINI: extern "C" fn() = tapline_fini;

/// In the child of `fork`: only the forking thread exists. It gets its own pid, thread
/// id and spool files; the connections it inherited go on under their ids.
#[cfg(all(feature = "hooks", not(test)))]
extern "C" fn after_fork_child() {
    sys::tsc::after_fork_child();
    let _ = std::panic::catch_unwind(spool::after_fork_child);
    sys::got::after_fork_child();
}

/// Appends one record through the spool writer, as the hooks do: for the stress tests
/// and benchmarks (which `dlopen` the library), and for programs that want to add a
/// record of their own. `mode`: 0 = the configured writer, 1 = the file writer,
/// 2 = the segment writer. Returns 1 if the record was written, 0 if it was dropped
/// (and counted), -1 for bad arguments.
///
/// # Safety
/// `payload` must be valid for reads of `len` bytes (or `len` must be 0).
#[cfg(all(feature = "hooks", not(test)))]
#[no_mangle]
pub unsafe extern "C" fn tapline_spool_append(
    mode: libc::c_int,
    rtype: u16,
    conn_id: u64,
    payload: *const u8,
    len: usize,
) -> libc::c_int {
    std::panic::catch_unwind(|| {
        let Some(rtype) = tapline_record::RecordType::from_u16(rtype) else {
            return -1;
        };
        if !config::active() || (payload.is_null() && len != 0) {
            return -1;
        }
        let bytes: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: the caller guarantees `payload` is readable for `len` bytes.
            unsafe { core::slice::from_raw_parts(payload, len) }
        };
        let mode = match mode {
            0 => config::spool_mode(),
            1 => config::SpoolMode::File,
            2 => config::SpoolMode::Segment,
            _ => return -1,
        };
        spool::record_with(mode, rtype, conn_id, spool::now(), &[bytes]) as libc::c_int
    })
    .unwrap_or(-1)
}

/// Panics inside a capture step, as a bug in capture would (for tests: the host goes
/// on, its stderr hears nothing, the loss is counted). Returns 1 when the call came
/// back, 0 when capture is off (nothing was run).
#[cfg(all(feature = "hooks", not(test)))]
#[no_mangle]
pub extern "C" fn tapline_selftest_panic() -> libc::c_int {
    if !config::active() {
        return 0;
    }
    hooks::after(|| panic!("tapline_selftest_panic"));
    1
}

/// The writer the configured mode resolves to now: 1 = file, 2 = segment (for tests).
#[cfg(all(feature = "hooks", not(test)))]
#[no_mangle]
pub extern "C" fn tapline_spool_mode() -> libc::c_int {
    match spool::active_mode() {
        config::SpoolMode::File => 1,
        config::SpoolMode::Segment => 2,
    }
}

/// Records dropped and not yet reported by a `Drops` record, by both writers.
#[cfg(all(feature = "hooks", not(test)))]
#[no_mangle]
pub extern "C" fn tapline_spool_dropped() -> u64 {
    spool::file::dropped().0 + spool::segment::dropped().0
}

/// The `tapline` binary (extension and CLI) must never capture itself, even if it was
/// started with the library preloaded (a function-wide `LD_PRELOAD` in Lambda reaches
/// extensions too).
#[cfg(all(feature = "hooks", not(test)))]
fn is_tapline_binary() -> bool {
    let mut buf = [0u8; 4096];
    // SAFETY: `buf` is writable for its length; the path is NUL-terminated.
    let n = unsafe {
        libc::readlink(
            c"/proc/self/exe".as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
        )
    };
    if n <= 0 {
        return false;
    }
    let path = &buf[..n as usize];
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    name == b"tapline"
}
