//! What a UDP link does to datagrams: [`DatagramProfile`] for one direction,
//! [`UdpProfile`] for both, and presets for the paths flotta devices sit behind.

use std::time::Duration;

use super::super::error::LinkError;

/// Bytes of IPv4 (20) and UDP (8) headers carried by every datagram.
pub const IPV4_UDP_HEADER_BYTES: u64 = 28;

/// Longest delay accepted, so that deadlines never overflow.
const MAX_DELAY: Duration = Duration::from_secs(3600);
/// Largest IPv4 packet (the total-length field is 16 bits).
const MAX_MTU_BYTES: usize = 65_535;
/// Smallest MTU that still carries an empty datagram's headers.
const MIN_MTU_BYTES: usize = IPV4_UDP_HEADER_BYTES as usize;

/// The impairments applied to datagrams in one direction.
///
/// Probabilities are per datagram and independent of each other; delays are
/// real time unless the link's [`TimeScale`](super::super::TimeScale) scales
/// link timing.
#[derive(Clone, Debug, PartialEq)]
pub struct DatagramProfile {
    /// One-way delay added to every datagram.
    pub latency: Duration,
    /// Extra delay per datagram, uniform in `0..=jitter`. Jitter alone never
    /// reorders: a datagram is never delivered before the one offered before
    /// it (only `reorder` lets datagrams overtake).
    pub jitter: Duration,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
    /// How long after the first the duplicate arrives.
    pub duplicate_gap: Duration,
    /// Probability that a datagram is held back by `reorder_delay`, so that
    /// datagrams offered after it (within that time) overtake it.
    pub reorder: f64,
    /// The extra delay of a held-back datagram.
    pub reorder_delay: Duration,
    /// The IP MTU, headers included: a datagram whose payload is larger than
    /// `mtu_bytes - 28` ([`Self::max_payload`]) is dropped, as an over-MTU
    /// datagram on NB-IoT is.
    pub mtu_bytes: usize,
}

impl DatagramProfile {
    /// No impairment: no delay, no loss, a 1500-byte MTU.
    #[must_use]
    pub fn clean() -> Self {
        Self {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            duplicate_gap: Duration::from_millis(5),
            reorder: 0.0,
            reorder_delay: Duration::from_millis(20),
            mtu_bytes: 1500,
        }
    }

    /// NB-IoT class, one way: 0.6–1.4 s, 2 % residual loss after the radio's
    /// own retransmissions, rare duplicates and reordering from them, a
    /// 1280-byte MTU.
    #[must_use]
    pub fn nb_iot() -> Self {
        Self {
            latency: Duration::from_millis(600),
            jitter: Duration::from_millis(800),
            loss: 0.02,
            duplicate: 0.002,
            duplicate_gap: Duration::from_millis(300),
            reorder: 0.01,
            reorder_delay: Duration::from_millis(500),
            mtu_bytes: 1280,
        }
    }

    /// Sets the one-way latency and jitter.
    #[must_use]
    pub fn with_latency(mut self, latency: Duration, jitter: Duration) -> Self {
        self.latency = latency;
        self.jitter = jitter;
        self
    }

    /// Sets the loss probability.
    #[must_use]
    pub fn with_loss(mut self, probability: f64) -> Self {
        self.loss = probability;
        self
    }

    /// Sets the duplication probability and the delay of the copy.
    #[must_use]
    pub fn with_duplicates(mut self, probability: f64, gap: Duration) -> Self {
        self.duplicate = probability;
        self.duplicate_gap = gap;
        self
    }

    /// Sets the probability that a datagram is held back, and by how long.
    #[must_use]
    pub fn with_reordering(mut self, probability: f64, delay: Duration) -> Self {
        self.reorder = probability;
        self.reorder_delay = delay;
        self
    }

    /// Sets the IP MTU (headers included).
    #[must_use]
    pub fn with_mtu(mut self, mtu_bytes: usize) -> Self {
        self.mtu_bytes = mtu_bytes;
        self
    }

    /// The largest UDP payload that fits the MTU.
    #[must_use]
    pub fn max_payload(&self) -> usize {
        self.mtu_bytes.saturating_sub(MIN_MTU_BYTES)
    }

    /// Checks every setting is in range.
    ///
    /// # Errors
    /// [`LinkError::Invalid`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), LinkError> {
        for (field, value) in [
            ("latency", self.latency),
            ("jitter", self.jitter),
            ("duplicate_gap", self.duplicate_gap),
            ("reorder_delay", self.reorder_delay),
        ] {
            if value > MAX_DELAY {
                return Err(LinkError::invalid(
                    field,
                    format!("must be at most {MAX_DELAY:?}, got {value:?}"),
                ));
            }
        }
        for (field, value) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(LinkError::invalid(
                    field,
                    format!("must be within 0..=1, got {value}"),
                ));
            }
        }
        if !(MIN_MTU_BYTES..=MAX_MTU_BYTES).contains(&self.mtu_bytes) {
            return Err(LinkError::invalid(
                "mtu_bytes",
                format!(
                    "must be within {MIN_MTU_BYTES}..={MAX_MTU_BYTES}, got {}",
                    self.mtu_bytes
                ),
            ));
        }
        Ok(())
    }
}

impl Default for DatagramProfile {
    fn default() -> Self {
        Self::clean()
    }
}

/// The impairments of a UDP link, each direction on its own.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UdpProfile {
    /// Client to upstream.
    pub up: DatagramProfile,
    /// Upstream to client.
    pub down: DatagramProfile,
}

impl UdpProfile {
    /// `up` one way, `down` the other.
    #[must_use]
    pub fn new(up: DatagramProfile, down: DatagramProfile) -> Self {
        Self { up, down }
    }

    /// The same impairments both ways.
    #[must_use]
    pub fn symmetric(profile: DatagramProfile) -> Self {
        Self {
            up: profile.clone(),
            down: profile,
        }
    }

    /// No impairment either way.
    #[must_use]
    pub fn clean() -> Self {
        Self::symmetric(DatagramProfile::clean())
    }

    /// [`DatagramProfile::nb_iot`] both ways.
    #[must_use]
    pub fn nb_iot() -> Self {
        Self::symmetric(DatagramProfile::nb_iot())
    }

    /// Checks both directions; [`UdpLink::start`](super::UdpLink::start) and
    /// [`UdpLink::set_profile`](super::UdpLink::set_profile) call this.
    ///
    /// # Errors
    /// [`LinkError::Invalid`] naming the first bad setting; its reason starts
    /// with the direction (`up:` or `down:`).
    pub fn validate(&self) -> Result<(), LinkError> {
        for (name, profile) in [("up", &self.up), ("down", &self.down)] {
            profile.validate().map_err(|error| match error {
                LinkError::Invalid { field, reason } => {
                    LinkError::invalid(field, format!("{name}: {reason}"))
                }
                other => other,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(result: Result<(), LinkError>) -> Option<(&'static str, String)> {
        match result {
            Err(LinkError::Invalid { field, reason }) => Some((field, reason)),
            _ => None,
        }
    }

    #[test]
    fn presets_are_valid() {
        for profile in [UdpProfile::clean(), UdpProfile::nb_iot()] {
            assert!(profile.validate().is_ok(), "{profile:?}");
        }
    }

    #[test]
    fn out_of_range_settings_are_named() {
        let base = DatagramProfile::clean();
        let long = MAX_DELAY + Duration::from_secs(1);
        let cases = [
            (base.clone().with_loss(1.5), "loss"),
            (base.clone().with_loss(f64::NAN), "loss"),
            (
                base.clone().with_duplicates(-0.1, Duration::ZERO),
                "duplicate",
            ),
            (base.clone().with_duplicates(0.5, long), "duplicate_gap"),
            (base.clone().with_reordering(2.0, Duration::ZERO), "reorder"),
            (base.clone().with_reordering(0.5, long), "reorder_delay"),
            (base.clone().with_latency(long, Duration::ZERO), "latency"),
            (base.clone().with_latency(Duration::ZERO, long), "jitter"),
            (base.clone().with_mtu(27), "mtu_bytes"),
            (base.with_mtu(MAX_MTU_BYTES + 1), "mtu_bytes"),
        ];
        for (profile, field) in cases {
            assert_eq!(
                invalid(profile.validate()).map(|(field, _)| field),
                Some(field),
                "{profile:?}"
            );
        }
    }

    #[test]
    fn the_direction_is_named_in_the_reason() {
        let profile = UdpProfile::new(
            DatagramProfile::clean(),
            DatagramProfile::clean().with_loss(2.0),
        );
        let (field, reason) = invalid(profile.validate()).unwrap_or(("", String::new()));
        assert_eq!(field, "loss");
        assert!(reason.starts_with("down:"), "{reason}");
    }

    #[test]
    fn boundaries_are_accepted_and_payload_excludes_headers() {
        let profile = DatagramProfile::clean()
            .with_loss(1.0)
            .with_duplicates(1.0, MAX_DELAY)
            .with_reordering(0.0, MAX_DELAY)
            .with_mtu(MIN_MTU_BYTES);
        assert!(profile.validate().is_ok());
        assert_eq!(profile.max_payload(), 0);
        assert_eq!(DatagramProfile::clean().max_payload(), 1472);
        assert!(
            DatagramProfile::clean()
                .with_mtu(MAX_MTU_BYTES)
                .validate()
                .is_ok()
        );
    }
}
