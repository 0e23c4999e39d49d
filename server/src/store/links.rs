//! What the store keeps of address-bound links ([`crate::links`]): which
//! device an address (an SBD IMEI) belongs to, and per device the Iridium
//! SBD facts `describe` shows (last MOMSN, the network's position estimate,
//! credits used today), and its LoRaWAN facts (last DevEUI, RSSI/SNR, data
//! rate, FCnt, uplink airtime used today).

use crate::device_id::DeviceId;
use crate::links::LinkAddress;

/// One bound address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkBinding {
    /// Kind and address.
    pub address: LinkAddress,
    /// The device it belongs to.
    pub device_id: DeviceId,
    /// When it was bound (ms since the Unix epoch).
    pub bound_ms: u64,
}

/// What one authenticated SBD MO message adds to the device's SBD facts,
/// written in the frame's transaction when the frame is fresh.
#[derive(Debug, Clone, PartialEq)]
pub struct SbdUplink {
    /// The modem's IMEI.
    pub imei: String,
    /// Rock7's MO message sequence number (16 bits, wraps).
    pub momsn: u32,
    /// Iridium's latitude estimate, degrees.
    pub latitude: Option<f64>,
    /// Iridium's longitude estimate, degrees.
    pub longitude: Option<f64>,
    /// Radius of the estimate, km.
    pub cep_km: Option<f64>,
    /// The UTC day (`YYYY-MM-DD`) the credits are counted on.
    pub day: String,
    /// Credits the MO cost (one per started 50 bytes).
    pub credits: u32,
}

/// The SBD facts of a device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SbdStatus {
    /// The IMEI of its last MO.
    pub imei: String,
    /// The MOMSN of its last fresh MO.
    pub last_momsn: Option<u32>,
    /// Iridium's latitude estimate of the last MO.
    pub latitude: Option<f64>,
    /// Iridium's longitude estimate of the last MO.
    pub longitude: Option<f64>,
    /// Its radius, km.
    pub cep_km: Option<f64>,
    /// When the last fresh MO was received.
    pub last_mo_ms: Option<u64>,
    /// The UTC day `credits_used` counts.
    pub credits_day: Option<String>,
    /// Credits used that day (MO and MT).
    pub credits_used: u64,
}

/// What one LoRaWAN uplink adds to the device's LoRaWAN facts, written in
/// the frame's transaction when the frame is fresh.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraUplinkFacts {
    /// The DevEUI (16 hex digits, lower case).
    pub dev_eui: String,
    /// The network's uplink frame counter (FCntUp).
    pub f_cnt: u32,
    /// The data rate index (`None`: the network reported none we know).
    pub dr: Option<u8>,
    /// Best RSSI over the gateways that heard it, dBm.
    pub rssi: Option<f64>,
    /// Best SNR over the gateways that heard it, dB.
    pub snr: Option<f64>,
    /// The UTC day (`YYYY-MM-DD`) the airtime counts on.
    pub day: String,
    /// Time on air of the uplink, microseconds.
    pub airtime_us: u64,
}

/// The LoRaWAN facts of a device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LorawanStatus {
    /// The DevEUI of its last uplink.
    pub dev_eui: String,
    /// FCntUp of the last fresh uplink.
    pub last_f_cnt: Option<u32>,
    /// Its data rate index.
    pub last_dr: Option<u8>,
    /// Its RSSI, dBm.
    pub rssi: Option<f64>,
    /// Its SNR, dB.
    pub snr: Option<f64>,
    /// When it was received.
    pub last_uplink_ms: Option<u64>,
    /// The UTC day `airtime_us` counts.
    pub airtime_day: Option<String>,
    /// Uplink time on air that day, microseconds (fresh frames only).
    pub airtime_us: u64,
    /// Downlinks the network server accepted that day.
    pub downlinks: u64,
}

/// Credits an SBD message of `bytes` costs: one per started 50 bytes, at
/// least one (a session without data costs one too).
pub fn sbd_credits(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(50).max(1)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::sbd_credits;

    #[test]
    fn credits_count_started_fifty_byte_blocks() {
        for (bytes, credits) in [
            (0, 1),
            (1, 1),
            (50, 1),
            (51, 2),
            (100, 2),
            (270, 6),
            (340, 7),
        ] {
            assert_eq!(sbd_credits(bytes), credits, "{bytes}");
        }
    }
}
