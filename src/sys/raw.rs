//! Raw system calls for the library's own I/O.
//!
//! Why not `libc::write` and friends: this library exports `write`, `writev`, `read`,
//! `close`, `syscall`... so a call from inside it to those names binds to our own
//! hooks. The library's own I/O therefore issues the system call instruction itself
//! (x86-64 and AArch64; elsewhere through libc's `syscall`). Each function returns what
//! libc's wrapper would: the result, or `-1` with errno set.

use libc::{c_int, c_long};

/// One system call with up to six arguments, errno set on failure like libc does.
pub fn syscall6(nr: c_long, a: [usize; 6]) -> isize {
    let ret = arch::syscall6(nr, a);
    if (-4095..0).contains(&ret) {
        set_errno(-ret as c_int);
        -1
    } else {
        ret
    }
}

#[cfg(target_arch = "x86_64")]
mod arch {
    use libc::c_long;

    pub fn syscall6(nr: c_long, a: [usize; 6]) -> isize {
        let ret: isize;
        // SAFETY: the `syscall` instruction with the kernel's register convention; it
        // clobbers rcx and r11 only. The arguments are plain values; any pointers among
        // them are checked by the kernel (EFAULT), never dereferenced here.
        unsafe {
            core::arch::asm!(
                "syscall",
                inlateout("rax") nr as isize => ret,
                in("rdi") a[0],
                in("rsi") a[1],
                in("rdx") a[2],
                in("r10") a[3],
                in("r8") a[4],
                in("r9") a[5],
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }
}

#[cfg(target_arch = "aarch64")]
mod arch {
    use libc::c_long;

    pub fn syscall6(nr: c_long, a: [usize; 6]) -> isize {
        let ret: isize;
        // SAFETY: `svc 0` with the kernel's register convention (x8 = number, x0-x5 =
        // arguments, x0 = result). Pointers are checked by the kernel.
        unsafe {
            core::arch::asm!(
                "svc 0",
                in("x8") nr,
                inlateout("x0") a[0] as isize => ret,
                in("x1") a[1],
                in("x2") a[2],
                in("x3") a[3],
                in("x4") a[4],
                in("x5") a[5],
                options(nostack),
            );
        }
        ret
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod arch {
    use libc::c_long;

    pub fn syscall6(nr: c_long, a: [usize; 6]) -> isize {
        // SAFETY: libc's syscall(2) with the caller's values. (On these architectures
        // our own `syscall` hook is not built, so this does not re-enter us.)
        let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) } as isize;
        if r == -1 {
            -(super::errno() as isize)
        } else {
            r
        }
    }
}

/// `writev(2)` without passing through our hook.
pub fn writev(fd: c_int, iov: &[libc::iovec]) -> isize {
    syscall6(
        libc::SYS_writev,
        [fd as usize, iov.as_ptr() as usize, iov.len(), 0, 0, 0],
    )
}

/// `read(2)` without passing through our hook.
pub fn read(fd: c_int, buf: &mut [u8]) -> isize {
    syscall6(
        libc::SYS_read,
        [fd as usize, buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0],
    )
}

/// `close(2)` without passing through our hook.
pub fn close(fd: c_int) -> c_int {
    syscall6(libc::SYS_close, [fd as usize, 0, 0, 0, 0, 0]) as c_int
}

/// `dup3(2)`.
pub fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    syscall6(
        libc::SYS_dup3,
        [old as usize, new as usize, flags as usize, 0, 0, 0],
    ) as c_int
}

/// The calling thread's kernel id.
pub fn gettid() -> u32 {
    syscall6(libc::SYS_gettid, [0; 6]) as u32
}

/// Both clocks, in ns: (`CLOCK_REALTIME`, `CLOCK_MONOTONIC`), for one vDSO call.
///
/// Every record carries both, and reading two clocks was the largest single cost of a
/// small record (~18 ns each here). The monotonic clock is read every time (it orders
/// records), from the CPU's counter where that is right ([`super::tsc`]); the wall
/// clock is the monotonic one plus an offset that is re-read at most every
/// [`WALL_REFRESH_NS`], so a step of the system clock shows within that time. Racing refreshes store offsets that differ by nanoseconds: either is right.
#[inline]
pub fn now() -> (u64, u64) {
    use core::sync::atomic::Ordering::Relaxed;
    let mono = super::tsc::mono_ns();
    let at = WALL_OFFSET_AT.load(Relaxed);
    // (`saturating`: the counter's time may be a hair behind the clock's `at`.)
    if at != 0 && mono.saturating_sub(at) < WALL_REFRESH_NS {
        return (mono.wrapping_add(WALL_OFFSET.load(Relaxed)), mono);
    }
    (refresh_wall_offset(mono), mono)
}

/// Measures the wall-minus-monotonic offset again; returns the wall time now.
#[cold]
#[inline(never)]
fn refresh_wall_offset(counter_mono: u64) -> u64 {
    use core::sync::atomic::Ordering::Relaxed;
    // Both monotonic reads from the real clock (`counter_mono` may be the counter's
    // line, a hair ahead of it): the wall time is taken between them.
    let mono = clock_ns(libc::CLOCK_MONOTONIC);
    let wall = clock_ns(libc::CLOCK_REALTIME);
    let mono2 = clock_ns(libc::CLOCK_MONOTONIC);
    // Kept only if the two reads were close together (not preempted between them):
    // then the offset is right to within a few microseconds.
    if mono2.wrapping_sub(mono) < 20_000 {
        let mid = mono + (mono2 - mono) / 2;
        WALL_OFFSET.store(wall.wrapping_sub(mid), Relaxed);
        WALL_OFFSET_AT.store(mid.max(1), Relaxed);
        return counter_mono.wrapping_add(wall.wrapping_sub(mid));
    }
    wall
}

/// How long a measured wall-minus-monotonic offset is used.
pub const WALL_REFRESH_NS: u64 = 50_000_000;
static WALL_OFFSET: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
/// Monotonic time of the last measurement of `WALL_OFFSET` (0 = never).
static WALL_OFFSET_AT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// Reads errno.
pub fn errno() -> c_int {
    // SAFETY: __errno_location always returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// Restores errno.
pub fn set_errno(v: c_int) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = v }
}

#[cfg(test)]
mod tests {
    #[test]
    fn raw_syscalls_behave_like_libc() {
        assert_eq!(super::close(-1), -1);
        assert_eq!(super::errno(), libc::EBADF);
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() } as u32;
        assert_eq!(super::syscall6(libc::SYS_getpid, [0; 6]) as u32, pid);
        assert!(super::gettid() > 0);
    }

    #[test]
    fn the_derived_wall_clock_tracks_the_real_one() {
        let system = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_nanos() as u64
        };
        for _ in 0..1000 {
            let before = system();
            let (wall, mono) = super::now();
            let after = system();
            // Within the offset's measurement error (two vDSO reads) of the real clock.
            assert!(wall + 1_000_000 >= before && wall <= after + 1_000_000);
            assert!(mono > 0);
        }
        let (_, m1) = super::now();
        let (_, m2) = super::now();
        assert!(m2 >= m1, "the monotonic clock went back");
    }
}
