//! When the next upload window opens: the pure part of the runtime's
//! scheduling, so that it can be tested without a clock.

use std::ops::Add;
use std::time::Duration;

/// The window to open for an urgent event: `scheduled` if that is sooner,
/// else now, but never sooner than `min_gap` after the last window started
/// (so a burst of urgent events costs one early window, not one each).
pub fn urgent_window_at<T>(
    scheduled: T,
    now: T,
    last_window_started: Option<T>,
    min_gap: Duration,
) -> T
where
    T: Copy + Ord + Add<Duration, Output = T>,
{
    let earliest = match last_window_started {
        Some(started) => (started + min_gap).max(now),
        None => now,
    };
    scheduled.min(earliest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Seconds since some start, as a stand-in for `Instant`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    struct T(Duration);

    impl Add<Duration> for T {
        type Output = T;
        fn add(self, d: Duration) -> T {
            T(self.0 + d)
        }
    }

    fn t(s: u64) -> T {
        T(Duration::from_secs(s))
    }

    const GAP: Duration = Duration::from_secs(60);

    #[test]
    fn urgent_events_pull_the_window_forward_but_keep_the_gap() {
        // Hourly window due at 3600; last window started at 0.
        assert_eq!(urgent_window_at(t(3600), t(10), Some(t(0)), GAP), t(60));
        assert_eq!(urgent_window_at(t(3600), t(100), Some(t(0)), GAP), t(100));
        // The scheduled window is sooner anyway.
        assert_eq!(urgent_window_at(t(30), t(10), Some(t(0)), GAP), t(30));
        // No window yet: at once.
        assert_eq!(urgent_window_at(t(3600), t(5), None, GAP), t(5));
    }

    proptest! {
        #[test]
        fn never_later_than_scheduled_never_before_the_gap_or_now(
            sched in 0u64..10_000, now in 0u64..10_000, last in proptest::option::of(0u64..10_000), gap in 0u64..1000,
        ) {
            let gap = Duration::from_secs(gap);
            let at = urgent_window_at(t(sched), t(now), last.map(t), gap);
            prop_assert!(at <= t(sched));
            if at < t(sched) {
                prop_assert!(at >= t(now));
                if let Some(l) = last {
                    prop_assert!(at >= t(l) + gap);
                }
            }
        }
    }
}
