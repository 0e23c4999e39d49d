//! What a transmission is to the governor: where it goes on the air (an
//! EU868 sub-band, US915, an Iridium SBD session), how long it is on the
//! air, whether it may bring a downlink, what it costs; and the names of
//! the budgets that can hold it back.
//!
//! EU868 sub-bands and their duty cycles (ETSI EN 300 220-2, as the
//! LoRaWAN regional parameters use them):
//!
//! | sub-band | MHz           | duty cycle | airtime per hour |
//! |----------|---------------|------------|------------------|
//! | `g`      | 863.0–868.0   | 1 %        | 36 s             |
//! | `g1`     | 868.0–868.6   | 1 %        | 36 s             |
//! | `g2`     | 868.7–869.2   | 0.1 %      | 3.6 s            |
//! | `g3`     | 869.4–869.65  | 10 %       | 360 s            |
//! | `g4`     | 869.7–870.0   | 1 %        | 36 s             |
//!
//! When the modem picks the channel, the three default channels (868.1,
//! 868.3, 868.5 MHz) are all in `g1`: use [`SubBand::G1`].

/// The rolling window over which ETSI measures the duty cycle: one hour.
pub const DUTY_CYCLE_WINDOW_MS: u64 = 3_600_000;
/// The window of the fair-use and credit budgets: 24 hours, rolling.
pub const DAY_MS: u64 = 86_400_000;
/// US915 channels 0–63: no uplink may stay longer than this on the air.
pub const US915_DWELL_MS: u32 = 400;
/// TTN fair use: uplink airtime per device per 24 h.
pub const TTN_AIRTIME_MS_PER_DAY: u64 = 30_000;
/// TTN fair use: downlinks per device per 24 h (acks of confirmed uplinks
/// and MAC downlinks included).
pub const TTN_DOWNLINKS_PER_DAY: usize = 10;

/// An EU868 sub-band (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubBand {
    /// 863.0–868.0 MHz, 1 %.
    G,
    /// 868.0–868.6 MHz, 1 % (the default channels 868.1/868.3/868.5).
    G1,
    /// 868.7–869.2 MHz, 0.1 %.
    G2,
    /// 869.4–869.65 MHz, 10 %.
    G3,
    /// 869.7–870.0 MHz, 1 %.
    G4,
}

impl SubBand {
    /// Every sub-band.
    pub const ALL: [SubBand; 5] = [Self::G, Self::G1, Self::G2, Self::G3, Self::G4];

    /// The duty cycle in hundredths of a percent (1 % = 100).
    pub fn duty_cycle_basis_points(self) -> u64 {
        match self {
            Self::G | Self::G1 | Self::G4 => 100,
            Self::G2 => 10,
            Self::G3 => 1_000,
        }
    }

    /// Airtime allowed in any rolling hour, in ms.
    pub fn airtime_ms_per_hour(self) -> u64 {
        DUTY_CYCLE_WINDOW_MS * self.duty_cycle_basis_points() / 10_000
    }

    /// The sub-band of a frequency in Hz, if it is in one.
    pub fn of_frequency_hz(hz: u32) -> Option<SubBand> {
        match hz {
            863_000_000..868_000_000 => Some(Self::G),
            868_000_000..=868_600_000 => Some(Self::G1),
            868_700_000..=869_200_000 => Some(Self::G2),
            869_400_000..=869_650_000 => Some(Self::G3),
            869_700_000..=870_000_000 => Some(Self::G4),
            _ => None,
        }
    }

    /// The name used in reports (`g`, `g1`…).
    pub fn name(self) -> &'static str {
        match self {
            Self::G => "g",
            Self::G1 => "g1",
            Self::G2 => "g2",
            Self::G3 => "g3",
            Self::G4 => "g4",
        }
    }
}

/// Where a transmission goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Link {
    /// LoRaWAN EU868 on a sub-band: duty cycle and fair use.
    Eu868(SubBand),
    /// LoRaWAN US915: no duty cycle, a 400 ms dwell time, fair use.
    Us915,
    /// An Iridium SBD session: credits.
    Sbd,
}

impl Link {
    /// Whether the network's fair-use policy (TTN) counts it.
    pub fn is_lorawan(self) -> bool {
        !matches!(self, Self::Sbd)
    }

    /// The compact code in the usage file.
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Eu868(b) => b as u8,
            Self::Us915 => 5,
            Self::Sbd => 6,
        }
    }

    /// The link of a code in the usage file.
    pub(crate) fn from_code(code: u8) -> Option<Link> {
        Some(match code {
            0..=4 => Self::Eu868(SubBand::ALL[usize::from(code)]),
            5 => Self::Us915,
            6 => Self::Sbd,
            _ => return None,
        })
    }

    /// Number of distinct codes.
    pub(crate) const CODES: usize = 7;
}

/// One uplink the carrier is about to send (or just sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmission {
    /// Where it goes.
    pub link: Link,
    /// Time on air of the uplink in ms, rounded up (LoRa: from spreading
    /// factor, bandwidth and length; 0 for SBD).
    pub airtime_ms: u32,
    /// Whether it may bring a downlink (a confirmed uplink, an ack
    /// request): counted against the fair-use downlinks.
    pub may_downlink: bool,
    /// Iridium credits it costs (0 for LoRaWAN).
    pub sbd_credits: u32,
}

impl Transmission {
    /// A LoRaWAN uplink of `airtime_ms` on `link`.
    pub fn lorawan(link: Link, airtime_ms: u32, may_downlink: bool) -> Self {
        Self {
            link,
            airtime_ms,
            may_downlink,
            sbd_credits: 0,
        }
    }

    /// An SBD session costing `credits`.
    pub fn sbd(credits: u32) -> Self {
        Self {
            link: Link::Sbd,
            airtime_ms: 0,
            may_downlink: false,
            sbd_credits: credits,
        }
    }

    /// What it spends of its link's metered amount: airtime (LoRaWAN) or
    /// credits (SBD).
    pub(crate) fn amount(&self) -> u32 {
        match self.link {
            Link::Sbd => self.sbd_credits,
            _ => self.airtime_ms,
        }
    }
}

/// A budget that can hold a transmission back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    /// The EU868 sub-band's duty cycle over a rolling hour.
    DutyCycle,
    /// TTN fair use: 30 s of uplink airtime per rolling 24 h.
    FairUseAirtime,
    /// TTN fair use: 10 downlinks per rolling 24 h.
    FairUseDownlinks,
    /// The configured SBD credits per rolling 24 h.
    SbdCredits,
    /// US915 dwell time: 400 ms per uplink.
    DwellTime,
}

impl Budget {
    /// The budget's name in reports and [`CarrierError::HeldBack`](crate::carrier::CarrierError::HeldBack).
    pub fn name(self) -> &'static str {
        match self {
            Self::DutyCycle => "duty_cycle",
            Self::FairUseAirtime => "fair_use_airtime",
            Self::FairUseDownlinks => "fair_use_downlinks",
            Self::SbdCredits => "sbd_credits",
            Self::DwellTime => "dwell_time",
        }
    }

    /// The budget of a code in the usage file.
    pub(crate) fn from_code(code: u8) -> Option<Budget> {
        Some(match code {
            0 => Self::DutyCycle,
            1 => Self::FairUseAirtime,
            2 => Self::FairUseDownlinks,
            3 => Self::SbdCredits,
            4 => Self::DwellTime,
            _ => return None,
        })
    }

    /// The compact code in the usage file.
    pub(crate) fn code(self) -> u8 {
        self as u8
    }
}

/// The governor's answer to "may I send this now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it.
    Now,
    /// Not before `at_ms` (governor time, ms since the Unix epoch): `budget`
    /// is spent until then.
    NotBefore {
        /// The earliest time it fits.
        at_ms: u64,
        /// The budget that holds it back.
        budget: Budget,
    },
    /// Never: it alone exceeds `budget` (an uplink longer than the dwell
    /// time, or than a whole window's budget). Send less, or faster.
    Never {
        /// The budget it exceeds.
        budget: Budget,
    },
}

impl Decision {
    /// The budget that holds it back, if any.
    pub fn blocking(&self) -> Option<Budget> {
        match *self {
            Self::Now => None,
            Self::NotBefore { budget, .. } | Self::Never { budget } => Some(budget),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_band_budgets_and_frequencies() {
        assert_eq!(SubBand::G1.airtime_ms_per_hour(), 36_000);
        assert_eq!(SubBand::G2.airtime_ms_per_hour(), 3_600);
        assert_eq!(SubBand::G3.airtime_ms_per_hour(), 360_000);
        for hz in [868_100_000, 868_300_000, 868_500_000] {
            assert_eq!(SubBand::of_frequency_hz(hz), Some(SubBand::G1));
        }
        assert_eq!(SubBand::of_frequency_hz(867_100_000), Some(SubBand::G));
        assert_eq!(SubBand::of_frequency_hz(869_525_000), Some(SubBand::G3));
        assert_eq!(SubBand::of_frequency_hz(869_300_000), None);
        assert_eq!(SubBand::of_frequency_hz(915_000_000), None);
    }

    #[test]
    fn codes_round_trip() {
        for code in 0..Link::CODES as u8 {
            assert_eq!(Link::from_code(code).unwrap().code(), code);
        }
        assert_eq!(Link::from_code(7), None);
        for code in 0..5 {
            assert_eq!(Budget::from_code(code).unwrap().code(), code);
        }
    }
}
