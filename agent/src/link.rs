//! Link profiles: how often to open the radio, how much to send per request,
//! how long to wait, and how to back off, as data with defaults per link type.

use std::time::Duration;

/// Upload behaviour for one kind of link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkProfile {
    /// Seconds between upload windows (one connection per window).
    pub upload_interval_seconds: u64,
    /// Largest batch body per request.
    pub max_batch_bytes: usize,
    /// TCP + TLS connect timeout.
    pub connect_timeout_seconds: u64,
    /// Whole-request timeout.
    pub request_timeout_seconds: u64,
    /// First retry delay after a failed window.
    pub backoff_initial_seconds: u64,
    /// Longest retry delay.
    pub backoff_max_seconds: u64,
    /// Shortest gap between the start of a window and an early window opened
    /// for an urgent event ("send now"): bounds what a burst of urgent events
    /// costs in radio time.
    pub urgent_min_interval_seconds: u64,
}

impl LinkProfile {
    /// A named preset: `ethernet` (or `wifi`), `nb-iot`, `satellite`, `lora`.
    pub fn preset(name: &str) -> Option<Self> {
        let p = |interval, batch, connect, request, b0, bmax, urgent| LinkProfile {
            upload_interval_seconds: interval,
            max_batch_bytes: batch,
            connect_timeout_seconds: connect,
            request_timeout_seconds: request,
            backoff_initial_seconds: b0,
            backoff_max_seconds: bmax,
            urgent_min_interval_seconds: urgent,
        };
        Some(match name {
            "ethernet" | "wifi" => p(60, 256 * 1024, 10, 30, 5, 600, 5),
            // NB-IoT: tens of kbit/s, seconds of latency after a wake-up.
            "nb-iot" => p(900, 16 * 1024, 30, 120, 30, 3600, 60),
            // Geostationary satellite: ~600 ms one way, ~2 s RTT with TLS.
            "satellite" => p(3600, 64 * 1024, 30, 180, 60, 6 * 3600, 120),
            // LoRaWAN-class (through a gateway proxy): very little per window.
            "lora" => p(3600, 2 * 1024, 60, 300, 300, 12 * 3600, 600),
            _ => return None,
        })
    }

    /// Delay before retry number `attempt` (0-based): exponential from
    /// `backoff_initial_seconds`, capped at `backoff_max_seconds`, with "full
    /// jitter" (uniform in [delay/2, delay]) from `random` in [0, 1).
    pub fn backoff(&self, attempt: u32, random: f64) -> Duration {
        let base = self.backoff_initial_seconds.max(1) as f64;
        let capped =
            (base * 2f64.powi(attempt.min(40) as i32)).min(self.backoff_max_seconds as f64);
        Duration::from_secs_f64(capped * (0.5 + 0.5 * random.clamp(0.0, 1.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let p = LinkProfile::preset("ethernet").unwrap();
        assert_eq!(p.backoff(0, 1.0), Duration::from_secs(5));
        assert_eq!(p.backoff(0, 0.0), Duration::from_millis(2500));
        assert_eq!(p.backoff(3, 1.0), Duration::from_secs(40));
        assert_eq!(p.backoff(30, 1.0), Duration::from_secs(600));
        assert_eq!(p.backoff(u32::MAX, 0.0), Duration::from_secs(300));
    }

    #[test]
    fn satellite_timeouts_suit_a_two_second_rtt() {
        let p = LinkProfile::preset("satellite").unwrap();
        // A TLS 1.3 handshake plus one request is ~3 RTTs: 6 s; leave margin.
        assert!(p.connect_timeout_seconds >= 10 && p.request_timeout_seconds >= 30);
        assert!(LinkProfile::preset("pigeon").is_none());
    }
}
