//! The `[lorawan]` table: the modem's serial port and dialect, the region
//! and data rate, the application port, join and transmission deadlines,
//! and the frame-packing keys every frame carrier shares (`FramePacking`
//! in `carrier/config.rs`). Environment overrides:
//! `FLOTTA_AGENT_LORAWAN_<KEY>`. Units are in the key names.

use serde::Deserialize;

use super::region::Region;
use super::wire;
use crate::frames::MinLogLevel;

/// Which AT dialect the modem speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModemKind {
    /// RAKwireless RAK3172 with RUI3 firmware (115200 baud).
    Rak3172,
    /// Microchip RN2483 (EU868) / RN2903 (US915) (57600 baud).
    Rn2483,
}

impl ModemKind {
    /// The module's factory baud rate.
    #[must_use]
    pub const fn default_baud(self) -> u32 {
        match self {
            Self::Rak3172 => 115_200,
            Self::Rn2483 => 57_600,
        }
    }
}

/// The `[lorawan]` table (used when `links` lists `lorawan`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LorawanConfig {
    /// The modem's tty (`/dev/serial0`, `/dev/ttyUSB0`); required when
    /// `links` lists `lorawan`.
    pub device: String,
    /// The modem's AT dialect.
    pub modem: ModemKind,
    /// Serial speed; 0 (the default): the module's factory rate (RAK3172
    /// 115200, RN2483 57600).
    pub baud: u32,
    /// The region the modem's firmware is built or set for.
    pub region: Region,
    /// Data rate set before a join (and kept when `adr` is off).
    pub data_rate: u8,
    /// Adaptive data rate: the network server moves the data rate (and
    /// with it the frame budget).
    pub adr: bool,
    /// FPort of frames (1..=223) up and of answers down; downlinks on other
    /// ports are ignored and counted.
    pub port: u8,
    /// Bytes of the data rate's payload limit kept free for MAC answers
    /// the modem piggybacks in FOpts (at most 15).
    pub fopts_reserve_bytes: usize,
    /// Deadline of an ordinary command; a modem silent this long is reset.
    pub command_timeout_ms: u64,
    /// Deadline of one uplink and its receive windows (an SF12 uplink plus
    /// RX2 takes 5–8 s; a duty-cycle wait inside the modem longer).
    pub tx_timeout_ms: u64,
    /// Deadline of one OTAA join attempt (join-accept windows at 5 and 6 s).
    pub join_timeout_ms: u64,
    /// Join attempts per window (the first included).
    pub join_attempts: u32,
    /// Pause before the second join attempt; doubles for each further one.
    pub join_backoff_ms: u64,
    /// Uplinks of one frame in `exchange` (the first included): each brings
    /// the receive windows an answer queued meanwhile rides in.
    pub attempts: u32,
    /// Records larger than this are left for a TLS window when `links` lists
    /// `tls` (otherwise they go as fragments).
    pub max_record_bytes: usize,
    /// Log lines below this level do not travel in frames.
    pub min_log_level: MinLogLevel,
    /// Longest message of an event or a log line in frames, in bytes (0: no
    /// limit).
    pub max_text_bytes: usize,
}

impl Default for LorawanConfig {
    fn default() -> Self {
        Self {
            device: String::new(),
            modem: ModemKind::Rak3172,
            baud: 0,
            region: Region::Eu868,
            data_rate: 3,
            adr: true,
            port: 10,
            // LinkADRAns (2) + DevStatusAns (3): the usual pending pair.
            fopts_reserve_bytes: 5,
            command_timeout_ms: 2_000,
            tx_timeout_ms: 12_000,
            join_timeout_ms: 15_000,
            join_attempts: 3,
            join_backoff_ms: 10_000,
            attempts: 3,
            // Airtime is scarce: anything over a few frames waits for TLS.
            max_record_bytes: 512,
            min_log_level: MinLogLevel::Warn,
            max_text_bytes: 48,
        }
    }
}

impl LorawanConfig {
    /// The serial speed in use (`baud`, or the module's factory rate).
    #[must_use]
    pub fn baud(&self) -> u32 {
        if self.baud == 0 {
            self.modem.default_baud()
        } else {
            self.baud
        }
    }
}

/// The `[lorawan]` keys `FLOTTA_AGENT_LORAWAN_<KEY>` may set, and whether
/// each is a string (else an integer, or a boolean for `adr`); the packing
/// keys are added by the caller.
pub(crate) const LORAWAN_ENV_KEYS: &[(&str, bool)] = &[
    ("device", true),
    ("modem", true),
    ("baud", false),
    ("region", true),
    ("data_rate", false),
    ("adr", false),
    ("port", false),
    ("fopts_reserve_bytes", false),
    ("command_timeout_ms", false),
    ("tx_timeout_ms", false),
    ("join_timeout_ms", false),
    ("join_attempts", false),
    ("join_backoff_ms", false),
    ("attempts", false),
];

/// The `[lorawan]` keys whose environment value is a boolean.
pub(crate) const LORAWAN_BOOL_KEYS: &[&str] = &["adr"];

/// Check `[lorawan]` (when `links` lists `lorawan`).
pub(crate) fn validate_lorawan(c: &LorawanConfig) -> Result<(), String> {
    if c.device.is_empty() {
        return Err("lorawan.device is required when links lists lorawan".into());
    }
    let rates = crate::carrier::serial::BAUD_RATES;
    if c.baud != 0 && !rates.contains(&c.baud) {
        return Err(format!(
            "lorawan.baud must be 0 (the module's) or one of {rates:?}"
        ));
    }
    let max_dr = c.region.max_data_rate();
    if c.data_rate > max_dr {
        return Err(format!(
            "lorawan.data_rate must be 0..={max_dr} in {}",
            c.region.name()
        ));
    }
    if !wire::is_app_port(c.port) {
        return Err("lorawan.port must be 1..=223".into());
    }
    if c.fopts_reserve_bytes > 15 {
        return Err("lorawan.fopts_reserve_bytes must be 0..=15 (FOpts holds at most 15)".into());
    }
    let budget = c.region.max_payload(c.data_rate);
    if budget <= c.fopts_reserve_bytes + crate::carrier::lorawan::MIN_FRAME {
        return Err(format!(
            "lorawan.data_rate {} of {} carries {budget} bytes: too few for a sealed frame \
             after lorawan.fopts_reserve_bytes {} (use a faster data rate)",
            c.data_rate,
            c.region.name(),
            c.fopts_reserve_bytes
        ));
    }
    for (key, v, max) in [
        ("command_timeout_ms", c.command_timeout_ms, 600_000),
        ("tx_timeout_ms", c.tx_timeout_ms, 600_000),
        ("join_timeout_ms", c.join_timeout_ms, 600_000),
        ("join_backoff_ms", c.join_backoff_ms, 3_600_000),
    ] {
        if !(1..=max).contains(&v) {
            return Err(format!("lorawan.{key} must be 1..={max}"));
        }
    }
    for (key, v) in [("join_attempts", c.join_attempts), ("attempts", c.attempts)] {
        if !(1..=20).contains(&v) {
            return Err(format!("lorawan.{key} must be 1..=20"));
        }
    }
    Ok(())
}
