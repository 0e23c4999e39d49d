//! A profile turned into real-time parameters, and the random draws made from
//! them (delays, refusals, lifetimes).

use std::time::Duration;

use rand::{Rng, RngExt};

use super::profile::LinkProfile;
use super::time_scale::TimeScale;

/// The profile as the proxy applies it, in real time.
#[derive(Clone, Debug)]
pub(crate) struct RealTiming {
    pub(crate) latency: Duration,
    pub(crate) jitter: Duration,
    /// Bytes per real second, client to upstream.
    pub(crate) up_rate: Option<f64>,
    /// Bytes per real second, upstream to client.
    pub(crate) down_rate: Option<f64>,
    /// Poisson rate of drops per real second (`inf` drops at once).
    pub(crate) drops_per_second: f64,
    pub(crate) drop_per_attempt: f64,
    pub(crate) mtu_bytes: usize,
}

impl RealTiming {
    /// Converts a validated profile through `scale`.
    pub(crate) fn new(profile: &LinkProfile, scale: &TimeScale) -> Self {
        let rate = |bytes: Option<u64>| bytes.map(|b| scale.link_rate(b as f64));
        // P(drop within 1 s) = 1 - exp(-lambda).
        let lambda = -(1.0 - profile.drop_per_second).ln();
        Self {
            latency: scale.link_delay(profile.latency),
            jitter: scale.link_delay(profile.jitter),
            up_rate: rate(profile.up_bytes_per_second),
            down_rate: rate(profile.down_bytes_per_second),
            drops_per_second: scale.link_rate(lambda),
            drop_per_attempt: profile.drop_per_attempt,
            mtu_bytes: profile.mtu_bytes,
        }
    }

    /// One chunk's one-way delay: latency plus uniform jitter.
    pub(crate) fn one_way_delay(&self, rng: &mut impl Rng) -> Duration {
        if self.jitter.is_zero() {
            return self.latency;
        }
        self.latency + self.jitter.mul_f64(rng.random::<f64>())
    }

    /// Whether a connection attempt is refused.
    pub(crate) fn refuse_attempt(&self, rng: &mut impl Rng) -> bool {
        rng.random::<f64>() < self.drop_per_attempt
    }

    /// How long a connection lives before the link drops it; `None` if never.
    pub(crate) fn lifetime(&self, rng: &mut impl Rng) -> Option<Duration> {
        if self.drops_per_second <= 0.0 {
            return None;
        }
        // Exponential by inversion; 1 - u is in (0, 1], so ln is finite.
        let u: f64 = rng.random();
        let seconds = -(1.0 - u).ln() / self.drops_per_second;
        if seconds <= 0.0 {
            return Some(Duration::ZERO);
        }
        Duration::try_from_secs_f64(seconds).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::super::seed::{Stream, rng};
    use super::*;

    const SAMPLES: u32 = 20_000;

    fn timing(profile: &LinkProfile, scale: TimeScale) -> RealTiming {
        RealTiming::new(profile, &scale)
    }

    #[test]
    fn lifetimes_match_the_per_second_probability() {
        let profile = LinkProfile::ethernet().with_drops(0.5, 0.0);
        let t = timing(&profile, TimeScale::REAL);
        let mut r = rng(1, 0, Stream::Lifetime);
        let lifetimes: Vec<f64> = (0..SAMPLES)
            .map(|_| {
                t.lifetime(&mut r)
                    .map_or(f64::INFINITY, |d| d.as_secs_f64())
            })
            .collect();
        let within_one_second = lifetimes.iter().filter(|&&s| s < 1.0).count();
        let fraction =
            f64::from(u32::try_from(within_one_second).unwrap_or(u32::MAX)) / f64::from(SAMPLES);
        assert!((fraction - 0.5).abs() < 0.02, "{fraction}");
        let mean = lifetimes.iter().sum::<f64>() / f64::from(SAMPLES);
        let expected = 1.0 / std::f64::consts::LN_2;
        assert!(
            (mean - expected).abs() < 0.05 * expected,
            "{mean} vs {expected}"
        );
    }

    #[test]
    fn scaled_link_shortens_lifetimes_and_delays() -> Result<(), super::super::LinkError> {
        let profile = LinkProfile::ethernet()
            .with_drops(0.5, 0.0)
            .with_latency(Duration::from_secs(2), Duration::ZERO)
            .with_bandwidth(Some(100), None);
        let t = timing(&profile, TimeScale::new(0.01)?.with_scaled_link(true));
        assert_eq!(t.latency, Duration::from_millis(20));
        assert_eq!(t.up_rate.map(f64::round), Some(10_000.0));
        let mut r = rng(2, 0, Stream::Lifetime);
        let mean = (0..SAMPLES)
            .filter_map(|_| t.lifetime(&mut r))
            .map(|d| d.as_secs_f64())
            .sum::<f64>()
            / f64::from(SAMPLES);
        let expected = 0.01 / std::f64::consts::LN_2;
        assert!(
            (mean - expected).abs() < 0.05 * expected,
            "{mean} vs {expected}"
        );
        Ok(())
    }

    #[test]
    fn certain_and_impossible_drops() {
        let never = timing(
            &LinkProfile::ethernet().with_drops(0.0, 0.0),
            TimeScale::REAL,
        );
        let always = timing(
            &LinkProfile::ethernet().with_drops(1.0, 1.0),
            TimeScale::REAL,
        );
        let mut r = rng(3, 0, Stream::Attempt);
        for _ in 0..1000 {
            assert_eq!(never.lifetime(&mut r), None);
            assert!(!never.refuse_attempt(&mut r));
            assert_eq!(always.lifetime(&mut r), Some(Duration::ZERO));
            assert!(always.refuse_attempt(&mut r));
        }
    }

    #[test]
    fn refusals_match_the_per_attempt_probability() {
        let t = timing(
            &LinkProfile::ethernet().with_drops(0.0, 0.3),
            TimeScale::REAL,
        );
        let mut r = rng(4, 0, Stream::Attempt);
        let refused = (0..SAMPLES).filter(|_| t.refuse_attempt(&mut r)).count();
        let fraction = f64::from(u32::try_from(refused).unwrap_or(u32::MAX)) / f64::from(SAMPLES);
        assert!((fraction - 0.3).abs() < 0.02, "{fraction}");
    }

    #[test]
    fn delays_stay_within_latency_plus_jitter() {
        let latency = Duration::from_millis(100);
        let jitter = Duration::from_millis(50);
        let t = timing(
            &LinkProfile::ethernet().with_latency(latency, jitter),
            TimeScale::REAL,
        );
        let mut r = rng(5, 0, Stream::Up);
        let delays: Vec<Duration> = (0..1000).map(|_| t.one_way_delay(&mut r)).collect();
        assert!(
            delays
                .iter()
                .all(|&d| d >= latency && d <= latency + jitter)
        );
        assert!(delays.iter().any(|&d| d > latency + jitter / 2));
        assert!(delays.iter().any(|&d| d < latency + jitter / 2));
    }
}
