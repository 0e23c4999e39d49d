//! What the store keeps of address-bound links ([`crate::links`]): which
//! device an address (an SBD IMEI) belongs to, and per device the Iridium
//! SBD facts `describe` shows (last MOMSN, the network's position estimate,
//! credits used today).

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
