//! When an invocation's batch is sent: right after the response, or while the next
//! invocation runs.
//!
//! Why: the time between the runtime's response and the extension's Next is billed
//! (post-runtime duration) and holds the environment back from its next invocation;
//! the export round trip is most of it. When invocations come often, the extension is
//! awake again soon anyway: it keeps the batch built after the response and sends it at
//! the next INVOKE, while the function runs, and calls Next at once. When invocations
//! are rare, holding would only delay the data (a frozen sandbox sends nothing), so the
//! batch goes out before Next as before. At SHUTDOWN everything held is sent.
//!
//! "Often" is read from the idle gaps (our Next → the next INVOKE, frozen time included)
//! of the last [`GAPS`] invocations: all of them within the hold limit
//! (`TAPLINE_FLUSH_HOLD_MS`, default [`DEFAULT_HOLD`]; `0` never holds). One long gap
//! is enough to go back to flushing after the response.

use std::time::Duration;

/// Gaps looked at.
pub(crate) const GAPS: usize = 3;
/// The longest idle gap that still counts as "invocations come often".
pub(crate) const DEFAULT_HOLD: Duration = Duration::from_millis(2000);

/// What to do with an invocation's batch once it is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlushMode {
    /// Send it now, before Next.
    AfterResponse,
    /// Keep it; send it at the next INVOKE (or SHUTDOWN).
    DuringNext,
}

/// Recent idle gaps, and the decision they lead to.
#[derive(Clone, Debug)]
pub(crate) struct FlushPolicy {
    hold: Duration,
    /// The last [`GAPS`] gaps, newest last; `None` for an invocation with no gap known
    /// (the first one).
    gaps: [Option<Duration>; GAPS],
}

impl FlushPolicy {
    pub(crate) fn new(hold: Duration) -> Self {
        FlushPolicy {
            hold,
            gaps: [None; GAPS],
        }
    }

    /// From `TAPLINE_FLUSH_HOLD_MS` (milliseconds). A value that does not parse keeps
    /// the default and says so: a tracing setting never stops the extension.
    pub(crate) fn from_setting(value: Option<&str>) -> Self {
        let hold = match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => DEFAULT_HOLD,
            Some(v) => match v.parse::<u64>() {
                Ok(ms) => Duration::from_millis(ms),
                Err(_) => {
                    eprintln!(
                        "tapline: TAPLINE_FLUSH_HOLD_MS={v:?} is not a number of \
                         milliseconds; using {}",
                        DEFAULT_HOLD.as_millis()
                    );
                    DEFAULT_HOLD
                }
            },
        };
        Self::new(hold)
    }

    /// An INVOKE arrived `gap` after our previous Next (`None`: the first INVOKE).
    pub(crate) fn observe(&mut self, gap: Option<Duration>) {
        self.gaps.rotate_left(1);
        self.gaps[GAPS - 1] = gap;
    }

    /// The mode for the batch of the invocation under way.
    pub(crate) fn mode(&self) -> FlushMode {
        let often =
            !self.hold.is_zero() && self.gaps.iter().all(|g| g.is_some_and(|g| g <= self.hold));
        if often {
            FlushMode::DuringNext
        } else {
            FlushMode::AfterResponse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Option<Duration> {
        Some(Duration::from_millis(v))
    }

    #[test]
    fn holds_only_after_enough_short_gaps() {
        use FlushMode::*;
        // (gaps observed in order, mode after the last one)
        let cases: &[(&[Option<Duration>], FlushMode)] = &[
            (&[None], AfterResponse),
            (&[None, ms(5)], AfterResponse),
            (&[None, ms(5), ms(5)], AfterResponse),
            (&[None, ms(5), ms(5), ms(5)], DuringNext),
            (&[None, ms(5), ms(5), ms(5), ms(2000)], DuringNext),
            (&[None, ms(5), ms(5), ms(5), ms(2001)], AfterResponse),
            // One long gap goes back to flushing after the response, until GAPS short
            // ones in a row are seen again.
            (&[ms(5), ms(5), ms(9000), ms(5), ms(5)], AfterResponse),
            (&[ms(5), ms(5), ms(9000), ms(5), ms(5), ms(5)], DuringNext),
        ];
        for (gaps, want) in cases {
            let mut p = FlushPolicy::new(DEFAULT_HOLD);
            for g in *gaps {
                p.observe(*g);
            }
            assert_eq!(p.mode(), *want, "{gaps:?}");
        }
    }

    #[test]
    fn zero_never_holds_and_bad_values_keep_the_default() {
        let mut p = FlushPolicy::from_setting(Some("0"));
        for _ in 0..5 {
            p.observe(ms(0));
        }
        assert_eq!(p.mode(), FlushMode::AfterResponse);
        for bad in ["x", "-1", "1.5"] {
            assert_eq!(FlushPolicy::from_setting(Some(bad)).hold, DEFAULT_HOLD);
        }
        assert_eq!(FlushPolicy::from_setting(None).hold, DEFAULT_HOLD);
        assert_eq!(
            FlushPolicy::from_setting(Some("250")).hold,
            Duration::from_millis(250)
        );
    }
}
