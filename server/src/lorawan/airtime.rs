//! Uplink time on air from the data rate and the payload size: the LoRa
//! formula of Semtech's AN1200.13 (explicit header, CRC on, coding rate
//! 4/5, 8-symbol preamble, low data rate optimisation at SF11/SF12 on
//! 125 kHz), FSK at 50 kbit/s for EU868 DR7. The LoRaWAN envelope adds 13
//! bytes to the application payload (MHDR 1, FHDR 7 without FOpts, FPort
//! 1, MIC 4), so FOpts that ride along are not counted.

use std::fmt;
use std::str::FromStr;

/// Bytes LoRaWAN adds to an application payload (FOpts not counted).
pub const LORAWAN_OVERHEAD_BYTES: usize = 13;

/// A LoRaWAN regional parameter set whose data rates we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Region {
    /// Europe 863–870 MHz (the default).
    #[default]
    Eu868,
    /// United States 902–928 MHz.
    Us915,
}

impl Region {
    /// The name as configured (`EU868`).
    pub fn as_str(self) -> &'static str {
        match self {
            Region::Eu868 => "EU868",
            Region::Us915 => "US915",
        }
    }

    /// The modulation of an uplink data rate index, `None` when the region
    /// has no such uplink data rate.
    pub fn modulation(self, dr: u8) -> Option<Modulation> {
        let lora = |sf, bw_khz| Some(Modulation::Lora { sf, bw_khz });
        match (self, dr) {
            (Region::Eu868, 0..=5) => lora(12 - dr, 125),
            (Region::Eu868, 6) => lora(7, 250),
            (Region::Eu868, 7) => Some(Modulation::Fsk50),
            (Region::Us915, 0..=3) => lora(10 - dr, 125),
            (Region::Us915, 4) => lora(8, 500),
            _ => None,
        }
    }

    /// The uplink data rate index of a LoRa spreading factor and bandwidth
    /// (for networks that report the modulation, not the index).
    pub fn data_rate(self, sf: u8, bw_khz: u32) -> Option<u8> {
        (0..=7).find(|&dr| self.modulation(dr) == Some(Modulation::Lora { sf, bw_khz }))
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Region {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Region::Eu868, Region::Us915]
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown LoRaWAN region \"{s}\" (known: EU868, US915)"))
    }
}

/// How an uplink was modulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modulation {
    /// LoRa with spreading factor `sf` on `bw_khz`.
    Lora {
        /// Spreading factor, 7..=12.
        sf: u8,
        /// Bandwidth, kHz.
        bw_khz: u32,
    },
    /// FSK at 50 kbit/s (EU868 DR7).
    Fsk50,
}

/// Time on air, in microseconds, of an uplink carrying `app_bytes` of
/// application payload at `dr` in `region`; `None` for an unknown data rate.
pub fn uplink_airtime_us(region: Region, dr: u8, app_bytes: usize) -> Option<u64> {
    let phy = app_bytes.saturating_add(LORAWAN_OVERHEAD_BYTES);
    Some(time_on_air_us(region.modulation(dr)?, phy))
}

/// Time on air, in microseconds, of a PHY payload of `phy_bytes`.
pub fn time_on_air_us(modulation: Modulation, phy_bytes: usize) -> u64 {
    let pl = u64::try_from(phy_bytes).unwrap_or(u64::MAX / 16);
    match modulation {
        // Preamble 5, sync word 3, length 1, CRC 2 bytes; 8 bits per 20 µs.
        Modulation::Fsk50 => (pl + 11) * 8 * 20,
        Modulation::Lora { sf, bw_khz } => {
            let sf = u64::from(sf.clamp(6, 12));
            let bw_hz = u64::from(bw_khz.max(1)) * 1000;
            let de = u64::from(sf >= 11 && bw_khz == 125);
            let (crc, ih, cr) = (1u64, 0u64, 1u64);
            // 8·PL − 4·SF + 28 + 16·CRC − 20·IH, in signed arithmetic.
            let num = i128::from(8 * pl) - i128::from(4 * sf) + 28 + i128::from(16 * crc)
                - i128::from(20 * ih);
            let den = i128::from(4 * (sf - 2 * de));
            let blocks = if num <= 0 {
                0
            } else {
                u64::try_from((num + den - 1) / den).unwrap_or(u64::MAX / 8)
            };
            let payload_symbols = 8 + blocks * (cr + 4);
            // Symbols in quarters: preamble 8 + 4.25 = 49/4.
            let quarter_symbols = 49 + 4 * payload_symbols;
            // T_sym = 2^SF / BW seconds; in µs, rounded to the nearest.
            let num_us = quarter_symbols * (1u64 << sf) * 1_000_000;
            let den_us = 4 * bw_hz;
            (num_us + den_us / 2) / den_us
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_the_semtech_calculator() {
        // 10 bytes of application payload (23 PHY bytes), EU868: the TTN
        // airtime calculator gives 61.7 ms at SF7 and 1482.8 ms at SF12.
        assert_eq!(uplink_airtime_us(Region::Eu868, 5, 10), Some(61_696));
        assert_eq!(uplink_airtime_us(Region::Eu868, 0, 10), Some(1_482_752));
        // 51 bytes at DR0 (the largest DR0 uplink): 2793.5 ms.
        assert_eq!(uplink_airtime_us(Region::Eu868, 0, 51), Some(2_793_472));
        // SF7 at 250 kHz takes half the SF7/125 time.
        assert_eq!(uplink_airtime_us(Region::Eu868, 6, 10), Some(30_848));
        // FSK: (23 + 11) bytes at 50 kbit/s.
        assert_eq!(uplink_airtime_us(Region::Eu868, 7, 10), Some(5_440));
        // US915 DR0 is SF10/125.
        assert_eq!(
            uplink_airtime_us(Region::Us915, 0, 10),
            uplink_airtime_us(Region::Eu868, 2, 10)
        );
        assert_eq!(uplink_airtime_us(Region::Eu868, 8, 10), None);
        assert_eq!(uplink_airtime_us(Region::Us915, 5, 10), None);
    }

    #[test]
    fn regions_parse_and_map_modulations_to_data_rates() {
        assert_eq!("eu868".parse::<Region>().unwrap(), Region::Eu868);
        assert_eq!("US915".parse::<Region>().unwrap(), Region::Us915);
        assert!("AS923".parse::<Region>().is_err());
        assert_eq!(Region::Eu868.data_rate(12, 125), Some(0));
        assert_eq!(Region::Eu868.data_rate(7, 250), Some(6));
        assert_eq!(Region::Us915.data_rate(8, 500), Some(4));
        assert_eq!(Region::Us915.data_rate(12, 125), None);
    }

    proptest! {
        #[test]
        fn airtime_grows_with_size_and_spreading_factor(dr in 0u8..5, len in 0usize..250) {
            let t = uplink_airtime_us(Region::Eu868, dr, len).unwrap();
            prop_assert!(uplink_airtime_us(Region::Eu868, dr, len + 1).unwrap() >= t);
            prop_assert!(uplink_airtime_us(Region::Eu868, dr + 1, len).unwrap() < t);
        }
    }
}
