//! The Microchip RN2483 (EU868) / RN2903 (US915) driver ("RN2483 LoRa
//! Technology Module Command Reference User's Guide", DS40001784), one
//! method per command over the [`AtEngine`]:
//!
//! - commands and answers end with `\r\n`; there is no `OK`: each command
//!   answers one line (`ok`, a value, or an error word such as
//!   `invalid_param`), and `mac join`/`mac tx` a second one when done;
//! - [`LoraModem::init`]: `sys get ver` (attention), `mac set adr on|off`;
//! - join state: `mac get status` (a hex word, bit 0 joined); a join:
//!   `mac join otaa` → `ok` (or `keys_not_init`, `no_free_ch`, `silent`,
//!   `busy`, `mac_paused`, `invalid_param`), then `accepted` or `denied`;
//! - `mac get dr`, `mac set dr <n>`, `mac get deveui`;
//! - an uplink `mac tx <uncnf|cnf> <port> <hex>` → `ok` (or `not_joined`,
//!   `no_free_ch`, `busy`, `invalid_data_len`, `silent`,
//!   `frame_counter_err_rejoin_needed`, `mac_paused`, `invalid_param`),
//!   then `mac_tx_ok`, `mac_rx <port> <hex>`, `mac_err` or
//!   `invalid_data_len`;
//! - reset: `sys reset` → the version banner (the session is lost).

use std::time::{Duration, Instant};

use super::Timeouts;
use super::modem::{LoraError, LoraModem, TxReport};
use super::wire;
use crate::carrier::at::{AtEngine, AtError, Line};
use crate::carrier::serial::Port;

/// How long the module takes to reboot after `sys reset`.
const REBOOT: Duration = Duration::from_millis(300);

/// An RN2483 or RN2903 on a port.
#[derive(Debug)]
pub struct Rn2483<P> {
    at: AtEngine<P>,
    t: Timeouts,
}

/// A first answer word as a [`LoraError`] (`len`: the payload of a send).
fn refusal(command: &str, word: &str, len: usize) -> LoraError {
    match word {
        "busy" => LoraError::Busy,
        "not_joined" | "frame_counter_err_rejoin_needed" => LoraError::NotJoined,
        "no_free_ch" => LoraError::NoFreeChannel,
        "invalid_data_len" => LoraError::InvalidLength { len },
        "denied" => LoraError::JoinDenied("denied".into()),
        _ => LoraError::Rejected {
            command: command.chars().take(24).collect(),
            reply: word.chars().take(64).collect(),
        },
    }
}

impl<P: Port> Rn2483<P> {
    /// A driver over `port` (not initialized yet).
    pub fn new(port: P, t: Timeouts) -> Self {
        Self {
            at: AtEngine::new(port, &[]).with_terminator(b"\r\n"),
            t,
        }
    }

    /// Send `command` and read its (first) answer line.
    fn ask(&mut self, command: &str) -> Result<Line, LoraError> {
        let deadline = Instant::now() + self.t.command;
        self.at.send(command)?;
        Ok(self.at.response_line(command, deadline)?)
    }

    /// A command whose answer must be `ok`.
    fn ok(&mut self, command: &str) -> Result<(), LoraError> {
        let line = self.ask(command)?;
        if line.as_str() == "ok" {
            Ok(())
        } else {
            Err(refusal(command, &line, 0))
        }
    }
}

impl<P: Port> LoraModem for Rn2483<P> {
    fn kind(&self) -> &'static str {
        "rn2483"
    }

    fn init(&mut self, adr: bool) -> Result<(), LoraError> {
        self.at.discard_input();
        // The first command may meet a half-typed line.
        let version = match self.ask("sys get ver") {
            Ok(v) => v,
            Err(_) => {
                self.at.discard_input();
                self.ask("sys get ver")?
            }
        };
        if !version.starts_with("RN2") {
            return Err(AtError::Unexpected {
                command: "sys get ver".into(),
                line: version.as_str().into(),
            }
            .into());
        }
        self.ok(if adr {
            "mac set adr on"
        } else {
            "mac set adr off"
        })
    }

    fn is_joined(&mut self) -> Result<bool, LoraError> {
        let line = self.ask("mac get status")?;
        Ok(wire::rn_status_joined(&line)?)
    }

    fn join(&mut self) -> Result<(), LoraError> {
        const CMD: &str = "mac join otaa";
        self.ok(CMD)?;
        let deadline = Instant::now() + self.t.join;
        let line = self.at.response_line(CMD, deadline)?;
        match line.as_str() {
            "accepted" => Ok(()),
            other => Err(match refusal(CMD, other, 0) {
                LoraError::Rejected { reply, .. } => LoraError::JoinDenied(reply),
                e => e,
            }),
        }
    }

    fn data_rate(&mut self) -> Result<u8, LoraError> {
        let line = self.ask("mac get dr")?;
        Ok(wire::parse_data_rate(&line)?)
    }

    fn set_data_rate(&mut self, dr: u8) -> Result<(), LoraError> {
        let mut cmd: heapless::String<16> = heapless::String::new();
        let _ = core::fmt::write(&mut cmd, format_args!("mac set dr {dr}"));
        self.ok(&cmd)
    }

    fn dev_eui(&mut self) -> Result<[u8; 8], LoraError> {
        let line = self.ask("mac get deveui")?;
        Ok(wire::parse_dev_eui(&line)?)
    }

    fn send(&mut self, port: u8, payload: &[u8], confirmed: bool) -> Result<TxReport, LoraError> {
        if !wire::is_app_port(port) {
            return Err(LoraError::Rejected {
                command: "mac tx".into(),
                reply: format!("port {port} is not 1..=223"),
            });
        }
        if payload.is_empty() || payload.len() > wire::MAX_PAYLOAD {
            return Err(LoraError::InvalidLength { len: payload.len() });
        }
        let mut report = TxReport {
            data_rate: self.data_rate()?,
            ..TxReport::default()
        };
        let hex = wire::encode_hex(payload)?;
        let mut cmd: heapless::String<{ wire::MAX_PAYLOAD * 2 + 24 }> = heapless::String::new();
        let kind = if confirmed { "cnf" } else { "uncnf" };
        let _ = core::fmt::write(&mut cmd, format_args!("mac tx {kind} {port} {hex}"));
        let first = self.ask(&cmd)?;
        if first.as_str() != "ok" {
            return Err(refusal("mac tx", &first, payload.len()));
        }
        let deadline = Instant::now() + self.t.tx;
        let line = self.at.response_line("mac tx", deadline)?;
        match line.as_str() {
            "mac_tx_ok" => report.acked = confirmed.then_some(true),
            "mac_err" if confirmed => report.acked = Some(false),
            "mac_err" => return Err(LoraError::TxFailed("mac_err".into())),
            l if l.starts_with("mac_rx ") => {
                report.downlink = Some(wire::parse_rn_rx(l)?);
                // A downlink to a confirmed uplink carries its ack.
                report.acked = confirmed.then_some(true);
            }
            other => return Err(refusal("mac tx", other, payload.len())),
        }
        report.next_data_rate = self.data_rate()?;
        Ok(report)
    }

    fn reset(&mut self, adr: bool) -> Result<(), LoraError> {
        self.at.discard_input();
        // Best effort: the banner is read by init's first command.
        let _ = self.at.send("sys reset");
        std::thread::sleep(REBOOT);
        self.at.discard_input();
        self.init(adr)
    }
}
