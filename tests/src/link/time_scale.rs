//! Compressing simulated time into real time, so tests can live through hours
//! of outages in seconds.

use std::time::Duration;

use super::error::LinkError;

/// Real seconds per simulated second, and whether link timing is scaled too.
///
/// The [`Schedule`](super::Schedule) always runs in simulated time. Latency,
/// jitter, bandwidth and the per-second drop rate of the
/// [`LinkProfile`](super::LinkProfile) stay real unless
/// [`Self::with_scaled_link`] is set, in which case they are read as simulated
/// too (a 1 s latency at factor 0.001 lasts 1 ms; 250 bytes/s becomes
/// 250 000 bytes/s).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeScale {
    factor: f64,
    scale_link: bool,
}

/// Largest factor accepted (1000× slow motion); keeps deadlines in range.
const MAX_FACTOR: f64 = 1000.0;

impl TimeScale {
    /// Real time: one simulated second is one real second.
    pub const REAL: Self = Self {
        factor: 1.0,
        scale_link: false,
    };

    /// `factor` real seconds per simulated second: `0.001` makes a 2-hour
    /// outage last 7.2 s.
    ///
    /// # Errors
    /// [`LinkError::Invalid`] unless `0 < factor <= 1000`.
    pub fn new(factor: f64) -> Result<Self, LinkError> {
        if factor > 0.0 && factor <= MAX_FACTOR {
            Ok(Self {
                factor,
                scale_link: false,
            })
        } else {
            Err(LinkError::invalid(
                "time_scale",
                format!("factor must be within (0, {MAX_FACTOR}], got {factor}"),
            ))
        }
    }

    /// The scale that plays `simulated` in `real`: `compress(2 h, 7.2 s)` is
    /// factor 0.001.
    ///
    /// # Errors
    /// As [`Self::new`], e.g. for a zero `simulated` or `real`.
    pub fn compress(simulated: Duration, real: Duration) -> Result<Self, LinkError> {
        Self::new(real.as_secs_f64() / simulated.as_secs_f64())
    }

    /// Whether latency, jitter, bandwidth and drop rate are scaled as well.
    #[must_use]
    pub fn with_scaled_link(mut self, scale_link: bool) -> Self {
        self.scale_link = scale_link;
        self
    }

    /// Real seconds per simulated second.
    #[must_use]
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// Whether link timing is scaled as well as the schedule.
    #[must_use]
    pub fn scales_link(&self) -> bool {
        self.scale_link
    }

    /// The real duration of a simulated one (saturating).
    #[must_use]
    pub fn to_real(&self, simulated: Duration) -> Duration {
        Duration::try_from_secs_f64(simulated.as_secs_f64() * self.factor).unwrap_or(Duration::MAX)
    }

    /// The simulated duration of a real one (saturating).
    #[must_use]
    pub fn to_sim(&self, real: Duration) -> Duration {
        Duration::try_from_secs_f64(real.as_secs_f64() / self.factor).unwrap_or(Duration::MAX)
    }

    /// The real duration of a profile delay: scaled only if link timing is.
    pub(crate) fn link_delay(&self, delay: Duration) -> Duration {
        if self.scale_link {
            self.to_real(delay)
        } else {
            delay
        }
    }

    /// A profile rate per second as a rate per real second.
    pub(crate) fn link_rate(&self, per_second: f64) -> f64 {
        if self.scale_link {
            per_second / self.factor
        } else {
            per_second
        }
    }
}

impl Default for TimeScale {
    fn default() -> Self {
        Self::REAL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_hours_in_seven_seconds() -> Result<(), LinkError> {
        let scale = TimeScale::new(0.001)?;
        assert_eq!(
            scale.to_real(Duration::from_secs(7200)),
            Duration::from_millis(7200)
        );
        assert_eq!(
            scale.to_sim(Duration::from_millis(7200)),
            Duration::from_secs(7200)
        );
        let compressed =
            TimeScale::compress(Duration::from_secs(7200), Duration::from_millis(7200))?;
        assert!((compressed.factor() - 0.001).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn link_timing_is_real_unless_asked() -> Result<(), LinkError> {
        let scale = TimeScale::new(0.01)?;
        assert_eq!(
            scale.link_delay(Duration::from_secs(1)),
            Duration::from_secs(1)
        );
        assert!((scale.link_rate(250.0) - 250.0).abs() < 1e-9);
        let scaled = scale.with_scaled_link(true);
        assert_eq!(
            scaled.link_delay(Duration::from_secs(1)),
            Duration::from_millis(10)
        );
        assert!((scaled.link_rate(250.0) - 25_000.0).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn bad_factors_are_rejected() {
        for factor in [0.0, -1.0, f64::NAN, f64::INFINITY, MAX_FACTOR * 2.0] {
            assert!(TimeScale::new(factor).is_err(), "{factor}");
        }
        assert!(TimeScale::compress(Duration::ZERO, Duration::from_secs(1)).is_err());
        assert!(TimeScale::compress(Duration::from_secs(1), Duration::ZERO).is_err());
    }

    #[test]
    fn huge_durations_saturate() -> Result<(), LinkError> {
        assert_eq!(
            TimeScale::new(1000.0)?.to_real(Duration::MAX),
            Duration::MAX
        );
        assert_eq!(TimeScale::new(0.001)?.to_sim(Duration::MAX), Duration::MAX);
        Ok(())
    }
}
