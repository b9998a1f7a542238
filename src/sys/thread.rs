//! This thread's block: the few per-thread values the hot paths read — the re-entry
//! guard, the cached kernel thread id, the last monotonic time stamped, the TLS call
//! in progress — in one thread-local block reached with the initial-exec TLS model.
//!
//! Why not `thread_local!`: in a shared library, Rust's thread-locals use the general
//! dynamic model, so every access is a call to `__tls_get_addr` (~4 ns here, measured
//! by the hand-off benchmark: a record took two, 8 ns of ~56). The initial-exec model
//! reads the block's offset from the thread pointer once from the GOT: a load and an
//! add (x86-64: `%fs`; AArch64: `tpidr_el0`). Stable Rust cannot ask for that model
//! (`#[thread_local]` and `-Z tls-model` are unstable), so the block is a 64-byte
//! `.tbss` symbol defined in assembly below and addressed with the same two
//! instructions the compiler would emit.
//!
//! The price of initial-exec: the library needs room in the static TLS area, which it
//! always gets when it is loaded at start-up (`LD_PRELOAD`, how tapline runs); a
//! `dlopen` (the benchmarks and stress tests; the JVM's `-agentpath` names the library
//! already preloaded, which loads nothing) takes it from glibc's reserve for such
//! libraries (1,664 bytes by default; the library's whole TLS segment, this block and
//! the `const` thread-locals, is ~340 bytes). On other architectures the block is an
//! ordinary `const` thread-local.
//!
//! The block is zeroed memory for every thread (no initialiser, no destructor: safe to
//! touch during thread start-up and teardown, and in a signal handler), and every
//! field's "nothing" is zero. A thread touches only its own block, through [`with`].

use core::cell::Cell;

/// The per-thread values. All zeros is the state of a new thread.
#[repr(C)]
pub struct Block {
    /// "We are inside tapline on this thread: pass through" (`hooks::after`).
    pub in_tapline: Cell<bool>,
    /// The kernel thread id, cached (0 = not yet asked; reset in a forked child).
    pub tid: Cell<u32>,
    /// The last monotonic time this thread stamped (its times never go back).
    pub last_mono: Cell<u64>,
    /// The TLS session whose library call is running on this thread (0: none;
    /// `tls::enter`).
    pub tls_session: Cell<usize>,
    /// The socket used inside the current TLS call, plus one (0: none seen).
    pub tls_inner_fd: Cell<u32>,
}

/// Bytes the assembly reserves for [`Block`].
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
const RESERVED: usize = 64;

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
const _: () =
    assert!(core::mem::size_of::<Block>() <= RESERVED && core::mem::align_of::<Block>() <= 16);

/// Runs `f` with this thread's block. `None` only where the block cannot be reached
/// (the fallback's thread-local during its thread's teardown).
#[inline(always)]
pub fn with<R>(f: impl FnOnce(&Block) -> R) -> Option<R> {
    imp::with(f)
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod imp {
    use super::Block;

    // The block: 64 zero bytes of thread-local storage, 16-aligned, hidden (no other
    // object can interpose it, and the GOT slot needs no symbol lookup).
    core::arch::global_asm!(
        ".pushsection .tbss,\"awT\",%nobits",
        ".p2align 4",
        ".hidden tapline_thread_block",
        ".globl tapline_thread_block",
        ".type tapline_thread_block, %object",
        ".size tapline_thread_block, 64",
        "tapline_thread_block:",
        ".zero 64",
        ".popsection",
    );

    /// This thread's block: the thread pointer plus the block's offset from it (a
    /// `TPOFF` value the dynamic linker wrote into the GOT at load time).
    #[inline(always)]
    fn block() -> *const Block {
        let p: usize;
        // SAFETY: reads the thread pointer and a GOT entry; no memory is written, the
        // stack is not touched.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            core::arch::asm!(
                "mov {p}, qword ptr fs:[0]",
                "add {p}, qword ptr [rip + tapline_thread_block@GOTTPOFF]",
                p = out(reg) p,
                // `add` writes the flags: they are not preserved.
                options(nostack, readonly, pure),
            );
        }
        #[cfg(target_arch = "aarch64")]
        // SAFETY: as above.
        unsafe {
            core::arch::asm!(
                "mrs {p}, tpidr_el0",
                "adrp {off}, :gottprel:tapline_thread_block",
                "ldr {off}, [{off}, #:gottprel_lo12:tapline_thread_block]",
                "add {p}, {p}, {off}",
                p = out(reg) p,
                off = out(reg) _,
                options(nostack, readonly, preserves_flags, pure),
            );
        }
        p as *const Block
    }

    #[inline(always)]
    pub fn with<R>(f: impl FnOnce(&Block) -> R) -> Option<R> {
        // SAFETY: the block is this thread's own, zero-initialised by the loader for
        // every thread, valid for the thread's life, 16-aligned and large enough (the
        // assertion above); all-zero bytes are a valid `Block` (cells of integers and a
        // bool). Only this thread reaches it, and `Block` is not `Sync`, so the
        // reference cannot leave it.
        Some(f(unsafe { &*block() }))
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod imp {
    use super::Block;
    use core::cell::Cell;

    thread_local! {
        static BLOCK: Block = const {
            Block {
                in_tapline: Cell::new(false),
                tid: Cell::new(0),
                last_mono: Cell::new(0),
                tls_session: Cell::new(0),
                tls_inner_fd: Cell::new(0),
            }
        };
    }

    #[inline(always)]
    pub fn with<R>(f: impl FnOnce(&Block) -> R) -> Option<R> {
        BLOCK.try_with(|b| f(b)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each thread sees its own block, zeroed when the thread starts.
    #[test]
    fn one_block_per_thread_starting_at_zero() {
        let mine = with(|b| b as *const Block as usize).unwrap();
        with(|b| b.last_mono.set(1234));
        let theirs = std::thread::spawn(|| {
            with(|b| {
                assert!(!b.in_tapline.get());
                assert_eq!((b.tid.get(), b.last_mono.get()), (0, 0));
                b.last_mono.set(99);
                b as *const Block as usize
            })
            .unwrap()
        })
        .join()
        .unwrap();
        assert_ne!(mine, theirs);
        assert_eq!(with(|b| b.last_mono.get()), Some(1234));
        assert_eq!(mine % 16, 0);
    }
}
