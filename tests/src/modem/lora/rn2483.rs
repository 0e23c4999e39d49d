//! A Microchip RN2483 on a pseudo-terminal (RN2483 LoRa Technology Module
//! Command Reference User's Guide, DS40001784):
//!
//! - commands end with `\r\n`, no echo, no `OK`: one answer line each
//!   (`ok`, a value, or an error word), unknown ones `invalid_param`;
//! - `sys get ver`, `sys reset` (the banner; the session is lost),
//!   `mac get status` (8 hex digits, bit 0 joined), `mac get dr`,
//!   `mac set dr <n>`, `mac get deveui`, `mac set adr <on|off>`;
//! - `mac join otaa` → `ok` (or `busy`, `no_free_ch`), then after the
//!   join time `accepted` or `denied`;
//! - `mac tx <uncnf|cnf> <port> <hex>` → `ok` (or `not_joined`, `busy`,
//!   `no_free_ch`, `invalid_data_len`, `invalid_param`), then after the
//!   uplink time `mac_tx_ok`, `mac_rx <port> <HEX>`, or `mac_err` (a
//!   confirmed uplink not acknowledged).

use super::mac::{Refusal, hex, unhex};
use super::sim::Sim;

/// The banner of `sys get ver` and `sys reset`.
const VERSION: &str = "RN2483 1.0.5 Oct 31 2018 15:06:52";

impl Sim {
    pub(super) fn rn_command(&mut self, line: &str) {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["sys", "get", "ver"] | ["sys", "reset"] => self.say(&[VERSION]),
            ["mac", "get", "status"] => {
                let v = u32::from(self.control().joined);
                self.say(&[&format!("{v:08X}")]);
            }
            ["mac", "get", "dr"] => {
                let v = self.control().data_rate;
                self.say(&[&v.to_string()]);
            }
            ["mac", "get", "deveui"] => {
                let v = hex(&self.cfg.dev_eui).to_ascii_uppercase();
                self.say(&[&v]);
            }
            ["mac", "set", "adr", v @ ("on" | "off")] => {
                self.control().adr = *v == "on";
                self.say(&["ok"]);
            }
            ["mac", "set", "dr", v] => match v.parse::<u8>() {
                Ok(dr) if self.has_data_rate(dr) => {
                    self.control().data_rate = dr;
                    self.say(&["ok"]);
                }
                _ => self.say(&["invalid_param"]),
            },
            ["mac", "join", "otaa"] => self.rn_join(),
            ["mac", "tx", kind @ ("uncnf" | "cnf"), port, data] => {
                self.rn_send(*kind == "cnf", port, data);
            }
            _ => self.say(&["invalid_param"]),
        }
    }

    fn rn_refused(&mut self) -> bool {
        match self.refusal() {
            Some(Refusal::Busy) => self.say(&["busy"]),
            Some(Refusal::NoFreeChannel) => self.say(&["no_free_ch"]),
            None => return false,
        }
        true
    }

    fn rn_join(&mut self) {
        if self.rn_refused() {
            return;
        }
        self.say(&["ok"]);
        let accepted = self.join();
        self.say(&[if accepted { "accepted" } else { "denied" }]);
    }

    fn rn_send(&mut self, confirmed: bool, port: &str, data: &str) {
        let port = port.parse::<u8>().ok().filter(|p| (1..=223).contains(p));
        let (Some(port), Some(data)) = (port, unhex(data).filter(|d| !d.is_empty())) else {
            self.say(&["invalid_param"]);
            return;
        };
        if !self.control().joined {
            self.say(&["not_joined"]);
            return;
        }
        if self.rn_refused() {
            return;
        }
        if data.len() > self.max_payload() {
            self.say(&["invalid_data_len"]);
            return;
        }
        self.say(&["ok"]);
        let sent = self.uplink(port, &data, confirmed);
        match sent.downlink {
            Some(d) => {
                let line = format!("mac_rx {} {}", d.f_port, hex(&d.data).to_ascii_uppercase());
                self.say(&[&line]);
            }
            None if confirmed && !sent.heard => self.say(&["mac_err"]),
            None => self.say(&["mac_tx_ok"]),
        }
    }
}
