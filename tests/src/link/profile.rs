//! What a link does to the bytes and connections crossing it: [`LinkProfile`]
//! and its presets for the link classes flotta devices sit behind.

use std::time::Duration;

use super::error::LinkError;

/// How the link ends a connection it cuts (a random drop or a blackout).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CutMode {
    /// Both peers get a TCP reset at once (SO_LINGER = 0, then close).
    #[default]
    Reset,
    /// Nothing more is delivered either way and neither peer is told: the
    /// connection stays open but dead until each peer closes its own end
    /// (or the link is dropped), as behind a dead radio or a NAT that forgot
    /// the flow. It stays dead when the link comes back up.
    Stall,
}

/// The degradation applied by an emulated link, in simulated time units.
///
/// Durations, rates and per-second probabilities are in simulated time when the
/// link's [`TimeScale`](super::TimeScale) scales link timing, and in real time
/// otherwise (the default).
#[derive(Clone, Debug, PartialEq)]
pub struct LinkProfile {
    /// Delay added to every chunk in each direction (round trip = twice this).
    pub latency: Duration,
    /// Extra delay per chunk, uniform in `0..=jitter`; order is preserved.
    pub jitter: Duration,
    /// Bandwidth cap from client to upstream, shared by all connections
    /// (token bucket with a burst of one MTU); `None` for no cap.
    pub up_bytes_per_second: Option<u64>,
    /// Bandwidth cap from upstream to client, as for `up_bytes_per_second`.
    pub down_bytes_per_second: Option<u64>,
    /// Probability that an open connection is cut within any one second of its
    /// lifetime (a Poisson process; `0` never, `1` at once).
    pub drop_per_second: f64,
    /// Probability that a new connection is refused (accepted, then reset).
    pub drop_per_attempt: f64,
    /// Largest chunk read and forwarded in one piece.
    pub mtu_bytes: usize,
    /// How random drops and blackouts end connections (changeable at run time
    /// with [`Link::set_cut_mode`](super::Link::set_cut_mode)).
    pub cut_mode: CutMode,
}

/// Longest latency or jitter accepted, so that deadlines never overflow.
const MAX_DELAY: Duration = Duration::from_secs(3600);
/// Largest chunk accepted (and allocated per read).
const MAX_MTU_BYTES: usize = 1 << 20;

impl LinkProfile {
    /// A clean LAN: 0.25 ms one way, no caps, no drops, 1500-byte chunks.
    #[must_use]
    pub fn ethernet() -> Self {
        Self {
            latency: Duration::from_micros(250),
            jitter: Duration::from_micros(100),
            up_bytes_per_second: None,
            down_bytes_per_second: None,
            drop_per_second: 0.0,
            drop_per_attempt: 0.0,
            mtu_bytes: 1500,
            cut_mode: CutMode::Reset,
        }
    }

    /// NB-IoT class: ~0.6–1.4 s one way, a few KB/s, occasional drops that
    /// are mostly silent (the radio goes away), 1280-byte chunks.
    #[must_use]
    pub fn nb_iot() -> Self {
        Self {
            latency: Duration::from_millis(600),
            jitter: Duration::from_millis(800),
            up_bytes_per_second: Some(2_000),
            down_bytes_per_second: Some(3_000),
            drop_per_second: 0.005,
            drop_per_attempt: 0.05,
            mtu_bytes: 1280,
            cut_mode: CutMode::Stall,
        }
    }

    /// Geostationary satellite: 1 s one way (~2 s round trip), tens of KB/s,
    /// rare drops, 1400-byte chunks.
    #[must_use]
    pub fn satellite() -> Self {
        Self {
            latency: Duration::from_millis(950),
            jitter: Duration::from_millis(100),
            up_bytes_per_second: Some(32_000),
            down_bytes_per_second: Some(64_000),
            drop_per_second: 0.001,
            drop_per_attempt: 0.02,
            mtu_bytes: 1400,
            cut_mode: CutMode::Reset,
        }
    }

    /// LoRaWAN class (as if TCP could ride it): 1–3 s one way, ~250 bytes/s,
    /// frequent refusals and silent drops, 222-byte chunks (the largest
    /// LoRaWAN payload at the fast data rates).
    #[must_use]
    pub fn lora_class() -> Self {
        Self {
            latency: Duration::from_millis(1000),
            jitter: Duration::from_millis(2000),
            up_bytes_per_second: Some(250),
            down_bytes_per_second: Some(250),
            drop_per_second: 0.01,
            drop_per_attempt: 0.1,
            mtu_bytes: 222,
            cut_mode: CutMode::Stall,
        }
    }

    /// Sets the one-way latency and jitter.
    #[must_use]
    pub fn with_latency(mut self, latency: Duration, jitter: Duration) -> Self {
        self.latency = latency;
        self.jitter = jitter;
        self
    }

    /// Sets the bandwidth caps (bytes per second; `None` for no cap).
    #[must_use]
    pub fn with_bandwidth(mut self, up: Option<u64>, down: Option<u64>) -> Self {
        self.up_bytes_per_second = up;
        self.down_bytes_per_second = down;
        self
    }

    /// Sets the drop probabilities per second of lifetime and per attempt.
    #[must_use]
    pub fn with_drops(mut self, per_second: f64, per_attempt: f64) -> Self {
        self.drop_per_second = per_second;
        self.drop_per_attempt = per_attempt;
        self
    }

    /// Sets the chunk size.
    #[must_use]
    pub fn with_mtu(mut self, mtu_bytes: usize) -> Self {
        self.mtu_bytes = mtu_bytes;
        self
    }

    /// Sets how connections are cut.
    #[must_use]
    pub fn with_cut_mode(mut self, mode: CutMode) -> Self {
        self.cut_mode = mode;
        self
    }

    /// Checks every setting is in range; [`Link::start`](super::Link::start)
    /// calls this.
    ///
    /// # Errors
    /// [`LinkError::Invalid`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), LinkError> {
        for (field, value) in [("latency", self.latency), ("jitter", self.jitter)] {
            if value > MAX_DELAY {
                return Err(LinkError::invalid(
                    field,
                    format!("must be at most {MAX_DELAY:?}, got {value:?}"),
                ));
            }
        }
        for (field, value) in [
            ("up_bytes_per_second", self.up_bytes_per_second),
            ("down_bytes_per_second", self.down_bytes_per_second),
        ] {
            if value == Some(0) {
                return Err(LinkError::invalid(
                    field,
                    "must be at least 1 (or None for no cap)",
                ));
            }
        }
        for (field, value) in [
            ("drop_per_second", self.drop_per_second),
            ("drop_per_attempt", self.drop_per_attempt),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(LinkError::invalid(
                    field,
                    format!("must be within 0..=1, got {value}"),
                ));
            }
        }
        if !(1..=MAX_MTU_BYTES).contains(&self.mtu_bytes) {
            return Err(LinkError::invalid(
                "mtu_bytes",
                format!("must be within 1..={MAX_MTU_BYTES}, got {}", self.mtu_bytes),
            ));
        }
        Ok(())
    }
}

impl Default for LinkProfile {
    fn default() -> Self {
        Self::ethernet()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: Result<(), LinkError>) -> Option<&'static str> {
        match result {
            Err(LinkError::Invalid { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn presets_are_valid() {
        for profile in [
            LinkProfile::ethernet(),
            LinkProfile::nb_iot(),
            LinkProfile::satellite(),
            LinkProfile::lora_class(),
        ] {
            assert!(profile.validate().is_ok(), "{profile:?}");
        }
    }

    #[test]
    fn out_of_range_settings_are_named() {
        let base = LinkProfile::ethernet();
        let cases = [
            (base.clone().with_drops(1.5, 0.0), "drop_per_second"),
            (base.clone().with_drops(f64::NAN, 0.0), "drop_per_second"),
            (base.clone().with_drops(0.0, -0.1), "drop_per_attempt"),
            (base.clone().with_mtu(0), "mtu_bytes"),
            (base.clone().with_mtu(MAX_MTU_BYTES + 1), "mtu_bytes"),
            (
                base.clone().with_bandwidth(Some(0), None),
                "up_bytes_per_second",
            ),
            (
                base.clone().with_bandwidth(None, Some(0)),
                "down_bytes_per_second",
            ),
            (
                base.clone()
                    .with_latency(MAX_DELAY + Duration::from_secs(1), Duration::ZERO),
                "latency",
            ),
            (base.with_latency(Duration::ZERO, MAX_DELAY * 2), "jitter"),
        ];
        for (profile, field) in cases {
            assert_eq!(field_of(profile.validate()), Some(field), "{profile:?}");
        }
    }

    #[test]
    fn boundaries_are_accepted() {
        let profile = LinkProfile::ethernet()
            .with_drops(1.0, 1.0)
            .with_mtu(1)
            .with_bandwidth(Some(1), Some(1))
            .with_latency(MAX_DELAY, MAX_DELAY);
        assert!(profile.validate().is_ok());
    }
}
