//! A token bucket that holds one direction of a link to a byte rate.

use std::time::{Duration, Instant};

/// Bytes are admitted against tokens that refill at `rate` per second up to
/// `capacity`. Admission never refuses: it may drive the balance negative and
/// tells the caller how long to wait, so concurrent senders queue in the order
/// they asked and the long-run rate holds exactly.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket; `rate` (bytes per second) and `capacity` must be > 0.
    pub(crate) fn new(rate: f64, capacity: f64, now: Instant) -> Self {
        Self {
            rate,
            capacity,
            tokens: capacity,
            updated: now,
        }
    }

    /// Admits `bytes` at `now`; returns how long to wait before sending them.
    pub(crate) fn reserve(&mut self, bytes: usize, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = self.updated.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(-self.tokens / self.rate).unwrap_or(Duration::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1000.0, 100.0, t0);
        assert_eq!(bucket.reserve(100, t0), Duration::ZERO);
        assert_eq!(bucket.reserve(100, t0), Duration::from_millis(100));
        assert_eq!(bucket.reserve(500, t0), Duration::from_millis(600));
        // 0.6 s later the debt is paid; nothing is saved beyond that.
        assert_eq!(
            bucket.reserve(50, t0 + Duration::from_millis(600)),
            Duration::from_millis(50)
        );
    }

    #[test]
    fn refill_stops_at_capacity() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1000.0, 100.0, t0);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(bucket.reserve(100, later), Duration::ZERO);
        assert_eq!(bucket.reserve(10, later), Duration::from_millis(10));
    }

    proptest! {
        /// Whatever the arrival pattern, bytes sent by time T (each chunk at
        /// max(arrival, arrival + wait)) never exceed capacity + rate * T.
        #[test]
        fn long_run_rate_holds(chunks in proptest::collection::vec((1usize..2000, 0u64..50), 1..200)) {
            let rate = 10_000.0;
            let capacity = 1500.0;
            let t0 = Instant::now();
            let mut bucket = TokenBucket::new(rate, capacity, t0);
            let mut arrival = t0;
            let mut sent = Vec::new();
            for (bytes, gap_ms) in chunks {
                arrival += Duration::from_millis(gap_ms);
                let wait = bucket.reserve(bytes, arrival);
                sent.push((arrival + wait, bytes));
            }
            for &(at, _) in &sent {
                let by_then: usize = sent.iter().filter(|&&(t, _)| t <= at).map(|&(_, b)| b).sum();
                let allowed = capacity + rate * at.duration_since(t0).as_secs_f64();
                prop_assert!(by_then as f64 <= allowed + 1.0, "{} bytes by {:?}, allowed {}", by_then, at - t0, allowed);
            }
        }
    }
}
