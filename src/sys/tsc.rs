//! `CLOCK_MONOTONIC` from the CPU's invariant time-stamp counter, without a system call
//! or the vDSO's serialising `lfence`.
//!
//! Why: every record carries a monotonic time, and `clock_gettime` was the largest
//! single cost of a small record (~27 ns on a VM: `lfence; rdtsc`, a seqlock, the
//! kernel's mult/shift). A bare `rdtsc` costs less than half. The conversion is the
//! vDSO's own, done here: `mono = base_mono + (tsc - base_tsc) * mult >> SHIFT`, with
//!
//! - `mult` the counter's rate measured against `clock_gettime` over a growing baseline
//!   (from a pair taken in the constructor to the latest re-base: the longer the
//!   baseline, the smaller the error of the rate);
//! - the base pair re-taken with one real `clock_gettime` once [`REBASE_NS`] of counter
//!   time have passed, by whichever thread wins a CAS on the version word; the others
//!   read the real clock meanwhile, never wait.
//!
//! Readers take the parameters lock-free (seqlock: an odd version is a re-base in
//! progress; a changed version, a retry through the real clock). Records keep
//! `mono_ns`/`wall_ns`: the reader and `tapline.h` do not know where a time came from.
//!
//! Used only where it is right: x86-64, an invariant counter (CPUID 0x8000_0007 EDX
//! bit 8, what the kernel shows as `constant_tsc` + `nonstop_tsc`) and the kernel's own
//! clocksource `tsc` (so it trusts the counter as synchronised across CPUs), both read
//! once in the constructor; and only after [`MIN_BASELINE_NS`] of baseline. Elsewhere,
//! and until then, `clock_gettime` as before (AArch64's vDSO already reads `cntvct_el0`
//! directly).
//!
//! Error bound (ARCHITECTURE.md, "Record timestamps"): a base pair is taken between two
//! ordered counter reads at most [`MAX_BRACKET_TICKS`] apart, so its time is right to
//! half that; the rate's error is at most (two such errors) / baseline; so within a
//! re-base interval a time is off `clock_gettime` by at most ~0.5 µs + 10 ms × (1 µs /
//! baseline + the change of NTP's slew since the baseline began). A re-base that finds
//! the extrapolated line off by more than [`RESTART_SLACK_NS`] (+ 500 ppm of the gap)
//! starts a new baseline. Times can step back by up to that error at a re-base; the
//! caller keeps them monotone per thread (`spool::process::now`).

use core::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};

/// Fixed-point shift of `mult` (ns per tick × 2^SHIFT).
const SHIFT: u32 = 32;
/// The base pair is re-taken once this much counter time has passed since the last one.
pub const REBASE_NS: u64 = 10_000_000;
/// The counter is used only once the rate's baseline is at least this long.
pub const MIN_BASELINE_NS: u64 = 10_000_000;
/// A calibration pair is kept only if its two counter reads are this close (~1 µs at
/// 2–4 GHz: the thread was not preempted around the clock read), or within twice the
/// narrowest bracket the constructor saw (under valgrind every read is slow).
const MAX_BRACKET_TICKS: u64 = 4_000;
/// The constructor gives up on the counter if no bracket is narrower than this.
const START_BRACKET_TICKS: u64 = 4_000_000;
/// A re-base that finds the line this far (plus 500 ppm of the time since the last
/// base) from the real clock restarts the baseline: the counter jumped, or the clock
/// was slewed hard.
const RESTART_SLACK_NS: u64 = 100_000;

/// One converter: its state, so that tests can run their own beside the process's.
pub struct CounterClock {
    /// The constructor found the counter usable.
    usable: AtomicBool,
    /// 0: not calibrated (the real clock is used); odd: a re-base is in progress; else
    /// the parameters below are valid.
    version: AtomicU64,
    base_tsc: AtomicU64,
    base_mono: AtomicU64,
    mult: AtomicU64,
    /// Counter ticks after `base_tsc` the line is used for (`REBASE_NS` in ticks).
    limit: AtomicU64,
    /// The pair the rate's baseline starts from.
    first_tsc: AtomicU64,
    first_mono: AtomicU64,
    /// The narrowest bracket of the constructor's pairs, in ticks.
    min_bracket: AtomicU64,
}

/// The process's converter.
pub static CLOCK: CounterClock = CounterClock::new();

/// `CLOCK_MONOTONIC` in ns through the counter where it is usable (see the module doc).
#[inline]
pub fn mono_ns() -> u64 {
    CLOCK.now(real_mono)
}

/// Decides, once (constructor), whether the counter can be used, and takes the first
/// pair of the baseline.
pub fn init() {
    CLOCK.start(counter_usable(), real_mono);
}

/// In the child after `fork` (one thread): a re-base the parent had in progress in
/// another thread left torn parameters; calibrate again.
pub fn after_fork_child() {
    if CLOCK.version.load(Ordering::Relaxed) & 1 == 1 {
        CLOCK.version.store(0, Ordering::Relaxed);
    }
}

impl CounterClock {
    pub const fn new() -> CounterClock {
        CounterClock {
            usable: AtomicBool::new(false),
            version: AtomicU64::new(0),
            base_tsc: AtomicU64::new(0),
            base_mono: AtomicU64::new(0),
            mult: AtomicU64::new(0),
            limit: AtomicU64::new(0),
            first_tsc: AtomicU64::new(0),
            first_mono: AtomicU64::new(0),
            min_bracket: AtomicU64::new(0),
        }
    }

    /// Enables the counter (if `usable`) and takes the baseline's first pair.
    pub fn start(&self, usable: bool, real: fn() -> u64) {
        self.version.store(0, Ordering::Relaxed);
        if usable {
            // The narrowest of a few brackets.
            let best = (0..8)
                .filter_map(|_| pair(real, START_BRACKET_TICKS))
                .min_by_key(|&(_, _, width)| width);
            if let Some((t, m, width)) = best {
                self.first_tsc.store(t, Ordering::Relaxed);
                self.first_mono.store(m, Ordering::Relaxed);
                self.min_bracket.store(width, Ordering::Relaxed);
                self.usable.store(true, Ordering::Release);
                return;
            }
        }
        self.usable.store(false, Ordering::Release);
    }

    fn max_bracket(&self) -> u64 {
        MAX_BRACKET_TICKS.max(2 * self.min_bracket.load(Ordering::Relaxed))
    }

    /// The counter is in use (calibrated and not being re-based right now).
    pub fn calibrated(&self) -> bool {
        let v = self.version.load(Ordering::Relaxed);
        v != 0 && v & 1 == 0
    }

    /// Monotonic ns: the counter's line while it is valid, else `real` (and, when due,
    /// a re-base).
    #[inline]
    pub fn now(&self, real: fn() -> u64) -> u64 {
        let v = self.version.load(Ordering::Acquire);
        if v != 0 && v & 1 == 0 {
            let x = rdtsc();
            let bt = self.base_tsc.load(Ordering::Relaxed);
            let bm = self.base_mono.load(Ordering::Relaxed);
            let mult = self.mult.load(Ordering::Relaxed);
            let limit = self.limit.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            let d = x.wrapping_sub(bt);
            // `d` past the limit (or "negative": another CPU's counter a hair behind
            // the base) goes the slow way.
            if self.version.load(Ordering::Relaxed) == v && d < limit {
                return bm.wrapping_add(scale(d, mult));
            }
        }
        self.slow(real)
    }

    #[cold]
    #[inline(never)]
    fn slow(&self, real: fn() -> u64) -> u64 {
        if !self.usable.load(Ordering::Relaxed) {
            return real();
        }
        let v = self.version.load(Ordering::Relaxed);
        if v == 0 {
            // Not calibrated: the real clock, as without the counter, until the
            // baseline is long enough to calibrate.
            let now = real();
            if now.wrapping_sub(self.first_mono.load(Ordering::Relaxed)) < MIN_BASELINE_NS {
                return now;
            }
        }
        if v & 1 == 1
            || self
                .version
                .compare_exchange(v, v | 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            // Another thread re-bases: the real clock for this one.
            return real();
        }
        // (The seqlock writer's order: the odd version before any parameter store.)
        fence(Ordering::Release);
        let Some((t, m, _)) = pair(real, self.max_bracket()) else {
            // Preempted around the clock read: no new base this time.
            self.version.store(v, Ordering::Release);
            return real();
        };
        let next = self.rebase(v, t, m);
        self.version.store(next, Ordering::Release);
        m
    }

    /// With the version word held (odd): computes the new parameters from the pair
    /// `(t, m)` and returns the version to publish (0 = not calibrated).
    fn rebase(&self, v: u64, t: u64, m: u64) -> u64 {
        let ft = self.first_tsc.load(Ordering::Relaxed);
        let fm = self.first_mono.load(Ordering::Relaxed);
        if v != 0 {
            // Does the old line still describe the clock? If not, the counter jumped
            // (or stopped) against it: start the baseline again from here.
            let bt = self.base_tsc.load(Ordering::Relaxed);
            let bm = self.base_mono.load(Ordering::Relaxed);
            let predicted =
                bm.wrapping_add(scale(t.wrapping_sub(bt), self.mult.load(Ordering::Relaxed)));
            let gap = m.saturating_sub(bm);
            if predicted.abs_diff(m) > RESTART_SLACK_NS + gap / 2000 {
                self.first_tsc.store(t, Ordering::Relaxed);
                self.first_mono.store(m, Ordering::Relaxed);
                return 0;
            }
        }
        let (dt, dm) = (t.wrapping_sub(ft), m.wrapping_sub(fm));
        if dm < MIN_BASELINE_NS || dt == 0 || dt > 1 << 62 {
            return 0;
        }
        let mult = ((u128::from(dm) << SHIFT) / u128::from(dt)) as u64;
        // A rate from 100 MHz to 10 GHz; anything else is not a clock we understand.
        if !((1u64 << SHIFT) / 10..=10u64 << SHIFT).contains(&mult) {
            self.usable.store(false, Ordering::Relaxed);
            return 0;
        }
        let limit = ((u128::from(REBASE_NS) << SHIFT) / u128::from(mult)) as u64;
        self.base_tsc.store(t, Ordering::Relaxed);
        self.base_mono.store(m, Ordering::Relaxed);
        self.mult.store(mult, Ordering::Relaxed);
        self.limit.store(limit, Ordering::Relaxed);
        // Never 0 (not calibrated) nor odd.
        (v | 1).wrapping_add(1).max(2)
    }
}

impl Default for CounterClock {
    fn default() -> Self {
        Self::new()
    }
}

#[inline(always)]
fn scale(ticks: u64, mult: u64) -> u64 {
    ((u128::from(ticks) * u128::from(mult)) >> SHIFT) as u64
}

/// A (counter, real clock, bracket width) triple: the clock read between two ordered
/// counter reads, assigned to their midpoint; `None` if they were more than `max`
/// ticks apart (preempted).
fn pair(real: fn() -> u64, max: u64) -> Option<(u64, u64, u64)> {
    let a = rdtsc_ordered();
    let m = real();
    let b = rdtsc_ordered();
    let d = b.wrapping_sub(a);
    (d <= max).then(|| (a.wrapping_add(d / 2), m, d))
}

/// `CLOCK_MONOTONIC` from the vDSO.
pub fn real_mono() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` reads the counter; it has no preconditions on x86-64 Linux
    // (user-space access is allowed unless the kernel sets CR4.TSD, which Linux does
    // only for seccomp-strict processes, where nothing else of ours works either).
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(target_arch = "x86_64")]
fn rdtsc_ordered() -> u64 {
    use core::arch::x86_64::{_mm_lfence, _rdtsc};
    // SAFETY: as in `rdtsc`; `lfence` (SSE2, in the x86-64 baseline) keeps the read
    // after everything before it and before everything after it.
    unsafe {
        _mm_lfence();
        let t = _rdtsc();
        _mm_lfence();
        t
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn rdtsc() -> u64 {
    0
}

#[cfg(not(target_arch = "x86_64"))]
fn rdtsc_ordered() -> u64 {
    0
}

/// An invariant counter that the kernel itself uses as its clocksource.
#[cfg(target_arch = "x86_64")]
fn counter_usable() -> bool {
    use core::arch::x86_64::__cpuid;
    // Leaf 0x8000_0007 is read only when the highest extended leaf reaches it.
    let invariant =
        __cpuid(0x8000_0000).eax >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0;
    invariant && clocksource_is_tsc()
}

#[cfg(not(target_arch = "x86_64"))]
fn counter_usable() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn clocksource_is_tsc() -> bool {
    // SAFETY: the path is NUL-terminated; open has no other preconditions.
    let fd = unsafe {
        libc::open(
            c"/sys/devices/system/clocksource/clocksource0/current_clocksource".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return false;
    }
    let mut buf = [0u8; 16];
    let n = super::raw::read(fd, &mut buf);
    super::raw::close(fd);
    n >= 3 && buf[..n as usize].trim_ascii() == b"tsc"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Runs the clock until it is calibrated (a calibration needs one unpreempted
    /// bracket after the baseline: on a loaded machine that can take a while).
    fn until_calibrated(clock: &'static CounterClock) {
        let end = real_mono() + 5_000_000_000;
        while clock.usable.load(Ordering::Relaxed) && !clock.calibrated() && real_mono() < end {
            clock.now(real_mono);
        }
    }

    fn run_for(clock: &'static CounterClock, ms: u64, check: impl Fn(u64, u64, u64)) {
        let end = real_mono() + ms * 1_000_000;
        loop {
            let before = real_mono();
            let v = clock.now(real_mono);
            let after = real_mono();
            check(before, v, after);
            if after > end {
                break;
            }
        }
    }

    #[test]
    fn the_counter_is_used_where_the_kernel_uses_it() {
        static C: CounterClock = CounterClock::new();
        C.start(counter_usable(), real_mono);
        run_for(&C, 15, |_, _, _| {});
        until_calibrated(&C);
        // Past the minimum baseline, on a machine whose clocksource is an invariant
        // TSC, the line is in use; anywhere else, never.
        assert_eq!(
            C.calibrated(),
            counter_usable() && cfg!(target_arch = "x86_64")
        );
    }

    #[test]
    fn counter_times_stay_within_microseconds_of_clock_gettime() {
        static C: CounterClock = CounterClock::new();
        C.start(counter_usable(), real_mono);
        let fast = AtomicUsize::new(0);
        // Several re-bases (every 10 ms) after calibration.
        run_for(&C, 120, |before, v, after| {
            // The line's error is well under a microsecond here; 50 µs leaves room
            // for NTP's slew changing during the run.
            assert!(
                v + 50_000 >= before && v <= after + 50_000,
                "{before} <= {v} <= {after}"
            );
            if C.calibrated() {
                fast.fetch_add(1, Ordering::Relaxed);
            }
        });
        if counter_usable() {
            assert!(
                fast.load(Ordering::Relaxed) > 0,
                "the counter was never used"
            );
        }
    }

    #[test]
    fn falls_back_to_clock_gettime_when_the_counter_is_not_usable() {
        static C: CounterClock = CounterClock::new();
        C.start(false, real_mono);
        run_for(&C, 30, |before, v, after| {
            // Exactly the real clock: read between `before` and `after`.
            assert!(before <= v && v <= after, "{before} <= {v} <= {after}");
        });
        assert!(!C.calibrated());
    }

    #[test]
    fn a_jump_of_the_counter_against_the_clock_restarts_the_baseline() {
        static C: CounterClock = CounterClock::new();
        C.start(counter_usable(), real_mono);
        if !counter_usable() {
            return;
        }
        until_calibrated(&C);
        assert!(C.calibrated());
        // As if the counter had jumped by a second: the next re-base sees the line far
        // off the clock and starts over (real clock until the new baseline is long).
        let v = C.version.load(Ordering::Relaxed);
        C.version.store(v | 1, Ordering::Relaxed);
        let bt = C.base_tsc.load(Ordering::Relaxed);
        C.base_tsc
            .store(bt.wrapping_sub(3_000_000_000), Ordering::Relaxed);
        C.version.store(v + 2, Ordering::Release);
        run_for(&C, 1, |before, v, after| assert!(before <= v && v <= after));
        assert!(!C.calibrated(), "the baseline was not restarted");
        run_for(&C, 15, |before, v, after| {
            assert!(v + 50_000 >= before && v <= after + 50_000)
        });
        until_calibrated(&C);
        assert!(C.calibrated(), "the new baseline was never taken");
    }

    #[test]
    fn times_from_many_threads_stay_near_the_clock_across_rebases() {
        static C: CounterClock = CounterClock::new();
        C.start(counter_usable(), real_mono);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    run_for(&C, 60, |before, v, after| {
                        assert!(v + 50_000 >= before && v <= after + 50_000);
                    })
                });
            }
        });
    }
}
