//! The `[sbd]` table: the RockBLOCK 9603's serial port, its timeouts and
//! retry schedule, and the frame-packing keys every frame carrier shares
//! (`FramePacking` in `carrier/config.rs`). Environment overrides: `FLOTTA_AGENT_SBD_<KEY>`.

use serde::Deserialize;

use crate::frames::MinLogLevel;

/// The `[sbd]` table (used when `links` lists `sbd`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SbdConfig {
    /// The modem's tty (`/dev/serial0` for a Pi Zero's UART); required when
    /// `links` lists `sbd`.
    pub device: String,
    /// The serial speed (the 9603 ships at 19200).
    pub baud: u32,
    /// Deadline of an ordinary AT command; a modem silent for this long is
    /// reset and the window fails.
    pub command_timeout_ms: u64,
    /// Deadline of an SBD session (`AT+SBDIX` can take a minute).
    pub session_timeout_ms: u64,
    /// After a delivered MO without its answer: how long to wait for a
    /// ring alert announcing it.
    pub answer_timeout_ms: u64,
    /// Pause before retrying a failed session (Rock7: about a minute).
    pub retry_backoff_ms: u64,
    /// Sessions tried for one frame (the first included).
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

impl Default for SbdConfig {
    fn default() -> Self {
        Self {
            device: String::new(),
            baud: 19_200,
            command_timeout_ms: 5_000,
            session_timeout_ms: 90_000,
            answer_timeout_ms: 120_000,
            retry_backoff_ms: 60_000,
            attempts: 3,
            // Credits are expensive: anything over a few frames waits for TLS.
            max_record_bytes: 1024,
            min_log_level: MinLogLevel::Warn,
            max_text_bytes: 120,
        }
    }
}

/// The `[sbd]` keys `FLOTTA_AGENT_SBD_<KEY>` may set, and whether each is a
/// string (else an integer); the packing keys are added by the caller.
pub(crate) const SBD_ENV_KEYS: &[(&str, bool)] = &[
    ("device", true),
    ("baud", false),
    ("command_timeout_ms", false),
    ("session_timeout_ms", false),
    ("answer_timeout_ms", false),
    ("retry_backoff_ms", false),
    ("attempts", false),
];

/// Check `[sbd]` (when `links` lists `sbd`).
pub(crate) fn validate_sbd(sbd: &SbdConfig) -> Result<(), String> {
    if sbd.device.is_empty() {
        return Err("sbd.device is required when links lists sbd".into());
    }
    if !crate::carrier::serial::BAUD_RATES.contains(&sbd.baud) {
        return Err(format!(
            "sbd.baud must be one of {:?}",
            crate::carrier::serial::BAUD_RATES
        ));
    }
    for (key, v, max) in [
        ("command_timeout_ms", sbd.command_timeout_ms, 600_000),
        ("session_timeout_ms", sbd.session_timeout_ms, 600_000),
        ("answer_timeout_ms", sbd.answer_timeout_ms, 3_600_000),
        ("retry_backoff_ms", sbd.retry_backoff_ms, 3_600_000),
    ] {
        if !(1..=max).contains(&v) {
            return Err(format!("sbd.{key} must be 1..={max}"));
        }
    }
    if !(1..=20).contains(&sbd.attempts) {
        return Err("sbd.attempts must be 1..=20".into());
    }
    Ok(())
}
