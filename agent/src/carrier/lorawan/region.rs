//! Regional data rates (LoRaWAN RP002-1.0.x, the non-repeater values of
//! LoRaMac-node's `RegionEU868.h`/`RegionUS915.h`): the modulation of each
//! uplink data rate and its largest *application* payload N, which counts
//! FOpts and FRMPayload together (MAC answers pending in FOpts shrink
//! what a frame may carry).
//!
//! | Region | DR | Modulation | N |
//! |---|---|---|---|
//! | EU868 | 0–2 | SF12–SF10 / 125 kHz | 51 |
//! | EU868 | 3 | SF9 / 125 kHz | 115 |
//! | EU868 | 4–5 | SF8–SF7 / 125 kHz | 242 |
//! | EU868 | 6 | SF7 / 250 kHz | 242 |
//! | US915 | 0 | SF10 / 125 kHz | 11 |
//! | US915 | 1 | SF9 / 125 kHz | 53 |
//! | US915 | 2 | SF8 / 125 kHz | 125 |
//! | US915 | 3 | SF7 / 125 kHz | 242 |
//! | US915 | 4 | SF8 / 500 kHz | 242 |
//!
//! EU868 DR7 (FSK) is not a LoRa rate and is not offered.

use serde::Deserialize;

/// A LoRaWAN region this agent's modems are configured for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    /// Europe 863–870 MHz (duty-cycled sub-bands).
    Eu868,
    /// North America 902–928 MHz (dwell time, no duty cycle).
    Us915,
}

/// One uplink data rate: LoRa modulation and payload limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRate {
    /// Spreading factor, 7..=12.
    pub spreading_factor: u8,
    /// Bandwidth in Hz.
    pub bandwidth_hz: u32,
    /// Largest application payload N (FOpts + FRMPayload), bytes.
    pub max_payload: usize,
}

const fn dr(spreading_factor: u8, bandwidth_khz: u32, max_payload: usize) -> DataRate {
    DataRate {
        spreading_factor,
        bandwidth_hz: bandwidth_khz * 1000,
        max_payload,
    }
}

const EU868: &[DataRate] = &[
    dr(12, 125, 51),
    dr(11, 125, 51),
    dr(10, 125, 51),
    dr(9, 125, 115),
    dr(8, 125, 242),
    dr(7, 125, 242),
    dr(7, 250, 242),
];

const US915: &[DataRate] = &[
    dr(10, 125, 11),
    dr(9, 125, 53),
    dr(8, 125, 125),
    dr(7, 125, 242),
    dr(8, 500, 242),
];

impl Region {
    /// Its name in the configuration.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Eu868 => "eu868",
            Self::Us915 => "us915",
        }
    }

    fn table(self) -> &'static [DataRate] {
        match self {
            Self::Eu868 => EU868,
            Self::Us915 => US915,
        }
    }

    /// Uplink data rate `index`, if the region has it.
    #[must_use]
    pub fn data_rate(self, index: u8) -> Option<DataRate> {
        self.table().get(usize::from(index)).copied()
    }

    /// The highest uplink data rate index.
    #[must_use]
    pub fn max_data_rate(self) -> u8 {
        // Tables have at most 7 entries.
        u8::try_from(self.table().len() - 1).unwrap_or(u8::MAX)
    }

    /// Largest application payload (FOpts + FRMPayload) at `index`; 0 for
    /// a data rate the region does not have.
    #[must_use]
    pub fn max_payload(self, index: u8) -> usize {
        self.data_rate(index).map_or(0, |d| d.max_payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_limits_follow_the_regional_parameters() {
        let eu: Vec<_> = (0..=7).map(|i| Region::Eu868.max_payload(i)).collect();
        assert_eq!(eu, [51, 51, 51, 115, 242, 242, 242, 0]);
        let us: Vec<_> = (0..=5).map(|i| Region::Us915.max_payload(i)).collect();
        assert_eq!(us, [11, 53, 125, 242, 242, 0]);
        assert_eq!(Region::Eu868.data_rate(0).unwrap().spreading_factor, 12);
        assert_eq!(Region::Eu868.data_rate(6).unwrap().bandwidth_hz, 250_000);
        assert_eq!(Region::Us915.data_rate(4).unwrap().bandwidth_hz, 500_000);
        assert_eq!(
            (Region::Eu868.max_data_rate(), Region::Us915.max_data_rate()),
            (6, 4)
        );
    }
}
