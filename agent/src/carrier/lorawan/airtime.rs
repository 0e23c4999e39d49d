//! LoRa time on air, for counting airtime (EU868 duty cycle, TTN's fair
//! access policy of 30 s of uplink a day).
//!
//! The formula is Semtech's (SX1276/77/78/79 datasheet rev. 7, §4.1.1.7
//! "Time on air"; AN1200.13 "LoRa Modem Designer's Guide"), with the
//! LoRaWAN settings: an 8-symbol preamble, explicit header, CRC on, coding
//! rate 4/5, and low-data-rate optimisation when a symbol lasts 16 ms or
//! more (SF11 and SF12 at 125 kHz):
//!
//! ```text
//! T_sym      = 2^SF / BW
//! T_preamble = (8 + 4.25) · T_sym
//! n_payload  = 8 + max(ceil((8·PL − 4·SF + 28 + 16·CRC − 20·IH) / (4·(SF − 2·DE))) · (CR + 4), 0)
//! T_air      = T_preamble + n_payload · T_sym
//! ```
//!
//! PL is the PHY payload: 13 bytes of LoRaWAN overhead (MHDR 1, FHDR
//! without FOpts 7, FPort 1, MIC 4) + FOpts + the application payload.
//! Checked against published values (The Things Network's airtime
//! calculator: a 51-byte PHY payload at SF12/125 kHz takes 2465.8 ms, an
//! empty 13-byte frame at SF7/125 kHz 46.3 ms).

use std::time::Duration;

use super::region::{DataRate, Region};

/// LoRaWAN's bytes around an application payload: MHDR (1), DevAddr (4),
/// FCtrl (1), FCnt (2), FPort (1), MIC (4).
pub const LORAWAN_OVERHEAD: usize = 13;

/// Time on air of a `phy_payload`-byte LoRa packet at `rate` (module docs).
#[must_use]
pub fn time_on_air(rate: DataRate, phy_payload: usize) -> Duration {
    let sf = i64::from(rate.spreading_factor);
    // Symbol time in nanoseconds: 2^SF / BW.
    // Saturating for nonsense rates (the fields are public): never a panic.
    let t_sym_ns = 1u64
        .checked_shl(u32::from(rate.spreading_factor))
        .unwrap_or(u64::MAX)
        .saturating_mul(1_000_000_000)
        / u64::from(rate.bandwidth_hz.max(1));
    let low_data_rate = t_sym_ns >= 16_000_000;
    let de = i64::from(low_data_rate);
    // A LoRa packet carries at most 255 bytes; clamped far above that.
    let pl = i64::try_from(phy_payload.min(1 << 20)).unwrap_or(1 << 20);
    // CRC on (16), explicit header (IH = 0), CR 4/5 (CR = 1).
    let numerator = 8 * pl - 4 * sf + 28 + 16;
    let denominator = (4 * (sf - 2 * de)).max(1);
    let blocks = if numerator > 0 {
        (numerator + denominator - 1) / denominator
    } else {
        0
    };
    let payload_symbols = 8 + u64::try_from(blocks * 5).unwrap_or(0);
    // Preamble: 8 + 4.25 symbols = 49/4 symbols.
    let ns =
        (t_sym_ns.saturating_mul(49) / 4).saturating_add(payload_symbols.saturating_mul(t_sym_ns));
    Duration::from_nanos(ns)
}

/// Time on air of an uplink carrying `app_payload` bytes with `fopts`
/// bytes of MAC commands at data rate `dr` of `region` (`None` for a data
/// rate the region does not have).
#[must_use]
pub fn uplink_airtime(
    region: Region,
    dr: u8,
    fopts: usize,
    app_payload: usize,
) -> Option<Duration> {
    let rate = region.data_rate(dr)?;
    Some(time_on_air(rate, LORAWAN_OVERHEAD + fopts + app_payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    #[test]
    fn published_values() {
        let sf12 = Region::Eu868.data_rate(0).unwrap();
        let sf7 = Region::Eu868.data_rate(5).unwrap();
        // 51-byte PHY payload at SF12/125: 12.25 + 63 symbols of 32.768 ms.
        assert!((ms(time_on_air(sf12, 51)) - 2465.792).abs() < 0.001);
        // Empty LoRaWAN frame (13 bytes) at SF7/125: 12.25 + 33 symbols.
        assert!((ms(time_on_air(sf7, 13)) - 46.336).abs() < 0.001);
        // 51 application bytes at EU868 DR0 (64 PHY bytes): 2793.5 ms, the
        // 2.79 s of narrow-links.md's table.
        let dr0 = uplink_airtime(Region::Eu868, 0, 0, 51).unwrap();
        assert!((ms(dr0) - 2793.472).abs() < 0.001, "{dr0:?}");
        // 242 bytes at DR5: 0.40 s.
        let dr5 = uplink_airtime(Region::Eu868, 5, 0, 242).unwrap();
        assert!((ms(dr5) - 400.0).abs() < 5.0, "{dr5:?}");
        assert_eq!(uplink_airtime(Region::Us915, 5, 0, 1), None);
    }

    #[test]
    fn airtime_grows_with_payload_and_spreading_factor() {
        let mut last = Duration::ZERO;
        for pl in 13..=255 {
            let t = time_on_air(Region::Eu868.data_rate(3).unwrap(), pl);
            assert!(t >= last);
            last = t;
        }
        let times: Vec<_> = (0..=5)
            .map(|dr| uplink_airtime(Region::Eu868, dr, 0, 20).unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] > w[1]), "{times:?}");
        // SF11 uses low-data-rate optimisation (a 16.4 ms symbol), SF10 not.
        let sf11 = time_on_air(Region::Eu868.data_rate(1).unwrap(), 13);
        assert!((ms(sf11) - 577.536).abs() < 0.001, "{sf11:?}");
        // Nonsense rates saturate instead of panicking.
        for (sf, bw) in [(70, 125_000), (0, 0), (1, 1), (255, u32::MAX)] {
            let rate = DataRate {
                spreading_factor: sf,
                bandwidth_hz: bw,
                max_payload: 0,
            };
            let _ = time_on_air(rate, usize::MAX);
            let _ = time_on_air(rate, 0);
        }
    }
}
