//! Per-source budget of failed datagrams (token bucket, bounded map): a
//! source that sends datagrams that are not frames of a device (unknown key
//! ids, forged tags, junk) loses its budget and its datagrams are then
//! dropped unread until it refills. Datagrams that succeed cost nothing.
//!
//! Keyed by IP address (ports are free to change). Devices behind one
//! carrier-grade NAT address share a budget, which only matters when that
//! address also sends failures. The map holds at most `capacity` sources;
//! when full, the oldest entry goes (a flood of spoofed sources cannot grow
//! it; it can only make the limiter forget, never refuse more).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

/// Sources tracked at most.
pub const DEFAULT_SOURCES: usize = 8192;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets of failed datagrams per source address.
#[derive(Debug)]
pub struct FailureLimiter {
    burst: f64,
    per_second: f64,
    capacity: usize,
    buckets: HashMap<IpAddr, Bucket>,
    order: VecDeque<IpAddr>,
}

impl FailureLimiter {
    /// `per_minute` failures a minute per source (also the burst), at most
    /// `capacity` sources tracked.
    pub fn new(per_minute: u32, capacity: usize) -> Self {
        Self {
            burst: f64::from(per_minute.max(1)),
            per_second: f64::from(per_minute.max(1)) / 60.0,
            capacity: capacity.max(1),
            buckets: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn refilled(&self, b: Bucket, now: Instant) -> f64 {
        let secs = now.saturating_duration_since(b.at).as_secs_f64();
        (b.tokens + secs * self.per_second).min(self.burst)
    }

    /// Whether `source` may still be heard (it has budget left).
    pub fn allows(&self, source: IpAddr, now: Instant) -> bool {
        self.buckets
            .get(&source)
            .is_none_or(|b| self.refilled(*b, now) >= 1.0)
    }

    /// Charge one failed datagram to `source`.
    pub fn failed(&mut self, source: IpAddr, now: Instant) {
        if let Some(b) = self.buckets.get(&source).copied() {
            let tokens = (self.refilled(b, now) - 1.0).max(0.0);
            self.buckets.insert(source, Bucket { tokens, at: now });
            return;
        }
        while self.buckets.len() >= self.capacity {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.buckets.remove(&old);
        }
        self.buckets.insert(
            source,
            Bucket {
                tokens: self.burst - 1.0,
                at: now,
            },
        );
        self.order.push_back(source);
    }

    /// Sources tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_source_loses_its_budget_and_refills() {
        let mut l = FailureLimiter::new(3, 16);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.allows(a, t0));
            l.failed(a, t0);
        }
        assert!(!l.allows(a, t0));
        assert!(l.allows(b, t0), "others are not affected");
        assert!(!l.allows(a, t0 + Duration::from_secs(19)));
        assert!(
            l.allows(a, t0 + Duration::from_secs(21)),
            "3 a minute: one per 20 s"
        );
    }

    #[test]
    fn the_map_stays_bounded() {
        let mut l = FailureLimiter::new(1, 4);
        let t0 = Instant::now();
        for i in 0..100u8 {
            l.failed(IpAddr::from([10, 0, 0, i]), t0);
        }
        assert_eq!(l.len(), 4);
        assert!(!l.allows(IpAddr::from([10, 0, 0, 99]), t0));
        assert!(
            l.allows(IpAddr::from([10, 0, 0, 1]), t0),
            "forgotten, not refused"
        );
    }
}
