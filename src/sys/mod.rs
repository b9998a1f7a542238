//! The operating-system edge of the library: finding the real functions we interpose
//! ([`resolve`]), and the few raw syscalls the library makes for its own I/O ([`raw`]),
//! which must never pass through our own hooks; the clock records carry ([`tsc`]);
//! the per-thread values the hot paths read ([`thread`]);
//! [`got`] binds objects that bypass the global scope (`RTLD_DEEPBIND`) to our hooks,
//! reading them with [`elf`].

pub mod crc32c;
pub mod elf;
pub mod got;
pub mod raw;
pub mod resolve;
pub mod thread;
pub mod tsc;

/// Maps `bytes` of zeroed, private, anonymous memory that is only backed once touched
/// (`MAP_NORESERVE`): how the connection and session tables are allocated, once, in
/// the constructor. `None` if the kernel refuses.
pub fn map_zeroed(bytes: usize) -> Option<*mut u8> {
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing; the
    // result is checked.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p as *mut u8)
}
