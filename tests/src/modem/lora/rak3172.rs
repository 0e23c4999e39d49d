//! A RAK3172 with RUI3 firmware on a pseudo-terminal (RUI3 AT Command
//! Manual; event lines as RUI3's `service_lora.c` prints them):
//!
//! - commands end with `\r\n`, no echo; `OK` or an error code
//!   (`AT_PARAM_ERROR`, `AT_BUSY_ERROR`, `AT_NO_NETWORK_JOINED`,
//!   `AT_COMMAND_NOT_FOUND`);
//! - queries `AT+NJS=?`, `AT+DR=?`, `AT+ADR=?`, `AT+CFM=?`, `AT+DEVEUI=?`
//!   answer `AT+XXX=<v>` then `OK`; settings `AT+DR=<n>`, `AT+ADR=<0|1>`,
//!   `AT+CFM=<0|1>`;
//! - `AT+JOIN=1:<auto>:<interval>:<attempts>` → `OK`, then after the join
//!   time `+EVT:JOINED` or `+EVT:JOIN_FAILED_RX_TIMEOUT`;
//! - `AT+SEND=<port>:<hex>` → `OK`, then after the uplink time the
//!   downlink `+EVT:RX_1:<rssi>:<snr>:UNICAST:<port>:<hex>` (lowercase)
//!   and `+EVT:TX_DONE` (in either order, [`LoraModemConfig`]), or
//!   `+EVT:SEND_CONFIRMED_OK`/`+EVT:SEND_CONFIRMED_FAILED(4)` with
//!   `AT+CFM=1`; a payload over the data rate's limit is `AT_PARAM_ERROR`;
//!   a duty-cycle refusal is `AT_BUSY_ERROR` (RUI3 has no code of its own);
//! - `ATZ` reboots: no answer, the session is lost (settings kept).
//!
//! [`LoraModemConfig`]: super::LoraModemConfig

use super::mac::{Refusal, hex, unhex};
use super::sim::Sim;

impl Sim {
    pub(super) fn rak_command(&mut self, line: &str) {
        let upper = line.to_ascii_uppercase();
        let (cmd, arg) = upper.split_once('=').unwrap_or((upper.as_str(), ""));
        match (cmd, arg) {
            ("AT", "") => self.say(&["OK"]),
            ("ATZ", "") => {}
            ("AT+NJS", "?") => {
                let v = u8::from(self.control().joined);
                self.say(&[&format!("AT+NJS={v}"), "OK"]);
            }
            ("AT+DR", "?") => {
                let v = self.control().data_rate;
                self.say(&[&format!("AT+DR={v}"), "OK"]);
            }
            ("AT+ADR", "?") => {
                let v = u8::from(self.control().adr);
                self.say(&[&format!("AT+ADR={v}"), "OK"]);
            }
            ("AT+CFM", "?") => {
                let v = u8::from(self.control().confirmed);
                self.say(&[&format!("AT+CFM={v}"), "OK"]);
            }
            ("AT+DEVEUI", "?") => {
                let v = hex(&self.cfg.dev_eui);
                self.say(&[&format!("AT+DEVEUI={v}"), "OK"]);
            }
            ("AT+DR", v) => match v.parse::<u8>() {
                Ok(dr) if self.has_data_rate(dr) => {
                    self.control().data_rate = dr;
                    self.say(&["OK"]);
                }
                _ => self.say(&["AT_PARAM_ERROR"]),
            },
            ("AT+ADR" | "AT+CFM", "0" | "1") => {
                let on = arg == "1";
                let mut c = self.control();
                if cmd == "AT+ADR" {
                    c.adr = on;
                } else {
                    c.confirmed = on;
                }
                drop(c);
                self.say(&["OK"]);
            }
            ("AT+ADR" | "AT+CFM", _) => {
                self.say(&["AT_PARAM_ERROR"]);
            }
            ("AT+JOIN", a) if a.is_empty() || a.starts_with('1') => self.rak_join(),
            ("AT+SEND", a) => self.rak_send(a),
            _ => self.say(&["AT_COMMAND_NOT_FOUND"]),
        }
    }

    fn rak_join(&mut self) {
        if self.refusal().is_some() {
            self.say(&["AT_BUSY_ERROR"]);
            return;
        }
        self.say(&["OK"]);
        if self.join() {
            self.say(&["+EVT:JOINED"]);
        } else {
            self.say(&["+EVT:JOIN_FAILED_RX_TIMEOUT"]);
        }
    }

    fn rak_send(&mut self, arg: &str) {
        let parsed = arg.split_once(':').and_then(|(p, h)| {
            let port = p.parse::<u8>().ok().filter(|p| (1..=223).contains(p))?;
            Some((port, unhex(h).filter(|d| !d.is_empty())?))
        });
        let Some((port, data)) = parsed else {
            self.say(&["AT_PARAM_ERROR"]);
            return;
        };
        if !self.control().joined {
            self.say(&["AT_NO_NETWORK_JOINED"]);
            return;
        }
        if let Some(Refusal::Busy | Refusal::NoFreeChannel) = self.refusal() {
            self.say(&["AT_BUSY_ERROR"]);
            return;
        }
        if data.len() > self.max_payload() {
            self.say(&["AT_PARAM_ERROR"]);
            return;
        }
        self.say(&["OK"]);
        let confirmed = self.control().confirmed;
        let sent = self.uplink(port, &data, confirmed);
        let (rssi, snr) = self.cfg.rssi_snr;
        let rx = sent.downlink.map(|d| {
            format!(
                "+EVT:RX_1:{rssi}:{snr}:UNICAST:{}:{}",
                d.f_port,
                hex(&d.data)
            )
        });
        let done = match (confirmed, sent.heard) {
            (false, _) => "+EVT:TX_DONE",
            (true, true) => "+EVT:SEND_CONFIRMED_OK",
            (true, false) => "+EVT:SEND_CONFIRMED_FAILED(4)",
        };
        match rx {
            Some(rx) if self.cfg.rx_after_tx_done => self.say(&[done, &rx]),
            Some(rx) => self.say(&[&rx, done]),
            None => self.say(&[done]),
        }
    }
}
