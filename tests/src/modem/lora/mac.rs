//! The class A MAC of a simulated modem, shared by both dialects: scripted
//! refusals (busy, duty cycle), OTAA joins (scripted failures; FCntUp from
//! 0 at each join, reported to [`LoraNetwork::joined`]), and uplinks: the
//! network hears one through [`LoraNetwork::uplink`], and the downlink it
//! returns is the only one the device gets (class A), unless the uplink is
//! lost on air (the network never hears it; the modem still reports the
//! transmission done).
//!
//! [`LoraNetwork::joined`]: super::LoraNetwork::joined
//! [`LoraNetwork::uplink`]: super::LoraNetwork::uplink

use super::network::{LoraDownlink, LoraUplink};
use super::sim::Sim;

/// Largest application payload in any region.
pub const MAX_PAYLOAD: usize = 242;

/// Why the MAC refused to start a join or an uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    Busy,
    NoFreeChannel,
}

/// How an uplink ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sent {
    /// The downlink of its receive windows.
    pub(super) downlink: Option<LoraDownlink>,
    /// The network heard it.
    pub(super) heard: bool,
}

impl Sim {
    /// The largest payload at the current data rate.
    pub(super) fn max_payload(&self) -> usize {
        let dr = usize::from(self.control().data_rate);
        self.cfg.max_payload.get(dr).copied().unwrap_or(0)
    }

    /// Whether `dr` is a data rate of the region.
    pub(super) fn has_data_rate(&self, dr: u8) -> bool {
        usize::from(dr) < self.cfg.max_payload.len()
    }

    /// A scripted refusal of the next join or uplink, if any.
    pub(super) fn refusal(&self) -> Option<Refusal> {
        let mut c = self.control();
        let r = if c.busy > 0 {
            c.busy -= 1;
            Some(Refusal::Busy)
        } else if c.no_free_ch > 0 {
            c.no_free_ch -= 1;
            Some(Refusal::NoFreeChannel)
        } else {
            None
        };
        if r.is_some() {
            c.stats.refused += 1;
        }
        r
    }

    /// One OTAA join attempt over the air; whether it was accepted.
    pub(super) fn join(&mut self) -> bool {
        std::thread::sleep(self.cfg.join_time);
        let mut c = self.control();
        c.stats.join_attempts += 1;
        if c.fail_joins > 0 {
            c.fail_joins -= 1;
            return false;
        }
        c.joined = true;
        c.f_cnt = 0;
        c.stats.joins += 1;
        drop(c);
        self.network.joined(self.cfg.dev_eui);
        true
    }

    /// One uplink over the air, through its receive windows.
    pub(super) fn uplink(&mut self, port: u8, data: &[u8], confirmed: bool) -> Sent {
        let at = std::time::Instant::now();
        std::thread::sleep(self.cfg.tx_time);
        let (up, lost) = {
            let mut c = self.control();
            let dr = c.data_rate;
            c.stats.on_air.push(super::sim::OnAir {
                at,
                dr,
                len: data.len(),
            });
            let up = LoraUplink {
                dev_eui: self.cfg.dev_eui,
                f_cnt: c.f_cnt,
                f_port: Some(port),
                data: data.to_vec(),
                dr: c.data_rate,
                confirmed,
                rssi: -90,
                snr_tenths_db: 75,
            };
            c.f_cnt = c.f_cnt.wrapping_add(1);
            c.stats.uplinks += 1;
            let lost = c.lose > 0;
            if lost {
                c.lose -= 1;
                c.stats.lost += 1;
            }
            (up, lost)
        };
        if lost {
            return Sent {
                downlink: None,
                heard: false,
            };
        }
        let downlink = self.network.uplink(&up);
        if downlink.is_some() {
            self.control()
                .stats
                .downlinks
                .push(std::time::Instant::now());
        }
        Sent {
            downlink,
            heard: true,
        }
    }
}

/// Lowercase hex.
pub(super) fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of hex digits (either case), at most [`MAX_PAYLOAD`].
pub(super) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2)
        || s.len() > 2 * MAX_PAYLOAD
        || !s.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}
