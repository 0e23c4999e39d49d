//! The RAK3172 driver (RUI3 AT command set, RAKwireless "RUI3 AT Command
//! Manual"), one method per command over the [`AtEngine`]:
//!
//! - commands end with `\r\n`; answers end with `OK` or an error code
//!   (`AT_ERROR`, `AT_PARAM_ERROR`, `AT_BUSY_ERROR`,
//!   `AT_NO_NETWORK_JOINED`…); queries `AT+XXX=?` answer `AT+XXX=<v>`;
//! - [`LoraModem::init`]: `AT`, `AT+ADR=?` and `AT+ADR=<0|1>` if it differs
//!   (RUI3 keeps settings in flash: written only on change);
//! - join state `AT+NJS=?`; a join `AT+JOIN=1:0:8:1` (join now, no
//!   auto-join, one attempt: the carrier paces attempts) → `OK`, then
//!   `+EVT:JOINED` or `+EVT:JOIN_FAILED_<why>`;
//! - `AT+DR=?`, `AT+DR=<n>`, `AT+DEVEUI=?`, `AT+CFM=?` and `AT+CFM=<0|1>`
//!   (confirmed uplinks; written only on change);
//! - an uplink `AT+SEND=<port>:<hex>` → `OK`, then `+EVT:TX_DONE` (or
//!   `+EVT:SEND_CONFIRMED_OK`/`_FAILED(<status>)`), and a downlink as
//!   `+EVT:RX_<1|2|B|C>:<rssi>:<snr>:UNICAST:<port>:<hex>` before or after
//!   it (both orders are accepted: a short grace follows the end event);
//! - reset `ATZ` (the module reboots; its session is lost).
//!
//! Events arrive unsolicited; the engine keeps them aside between commands.

use std::time::{Duration, Instant};

use super::Timeouts;
use super::modem::{LoraError, LoraModem, TxReport};
use super::wire::{self, RakEvent};
use crate::carrier::at::{AtEngine, AtError, Lines};
use crate::carrier::serial::Port;

/// RUI3's event prefix.
const EVT: &str = "+EVT:";
/// RUI3's error codes that end a response.
const ERRORS: &[&str] = &[
    "AT_ERROR",
    "AT_PARAM_ERROR",
    "AT_BUSY_ERROR",
    "AT_NO_NETWORK_JOINED",
    "AT_RX_ERROR",
    "AT_NO_CLASSB_ENABLE",
    "AT_MODE_NO_SUPPORT",
    "AT_COMMAND_NOT_FOUND",
    "AT_TEST_PARAM_OVERFLOW",
];
/// How long a downlink may trail the uplink's end event.
const RX_GRACE: Duration = Duration::from_millis(150);
/// How long the module takes to reboot after `ATZ`.
const REBOOT: Duration = Duration::from_millis(300);

/// A RAK3172 on a port.
#[derive(Debug)]
pub struct Rak3172<P> {
    at: AtEngine<P>,
    t: Timeouts,
    confirmed: Option<bool>,
}

impl<P: Port> Rak3172<P> {
    /// A driver over `port` (not initialized yet).
    pub fn new(port: P, t: Timeouts) -> Self {
        Self {
            at: AtEngine::new(port, &[EVT])
                .with_terminator(b"\r\n")
                .with_final_errors(ERRORS),
            t,
            confirmed: None,
        }
    }

    fn command(&mut self, command: &str) -> Result<Lines, LoraError> {
        self.at
            .command(command, self.t.command)
            .map_err(|e| map_error(e, 0))
    }

    /// The value of query `key` (`AT+NJS` → `AT+NJS=?` → `1`).
    fn query(&mut self, key: &str) -> Result<wire::Hex, LoraError> {
        let mut cmd: heapless::String<24> = heapless::String::new();
        // Cannot overflow: the keys are short constants.
        let _ = core::fmt::write(&mut cmd, format_args!("{key}=?"));
        let lines = self.command(&cmd)?;
        let line = lines.first().ok_or_else(|| AtError::Unexpected {
            command: cmd.as_str().into(),
            line: String::new(),
        })?;
        let mut out = wire::Hex::new();
        out.push_str(wire::rak_value(line, key)?)
            .map_err(|_| wire::WireError::Line(line.chars().take(64).collect()))?;
        Ok(out)
    }

    fn set(&mut self, key: &str, value: impl core::fmt::Display) -> Result<(), LoraError> {
        let mut cmd: heapless::String<32> = heapless::String::new();
        let _ = core::fmt::write(&mut cmd, format_args!("{key}={value}"));
        self.command(&cmd).map(drop)
    }

    /// Drop events kept aside; downlinks among them are returned.
    fn stale_downlinks(&mut self, report: &mut TxReport) {
        while let Ok(Some(line)) = self.at.next_unsolicited(EVT, Instant::now()) {
            if let Ok(RakEvent::Rx(d)) = wire::parse_rak_event(&line) {
                if report.earlier.is_full() {
                    report.earlier.remove(0);
                }
                let _ = report.earlier.push(d);
            }
        }
    }
}

/// A RUI3 error code as a [`LoraError`] (`len`: the payload of a send).
fn map_error(e: AtError, len: usize) -> LoraError {
    match e {
        AtError::Rejected { code, command } => match code.as_str() {
            "AT_BUSY_ERROR" => LoraError::Busy,
            "AT_NO_NETWORK_JOINED" => LoraError::NotJoined,
            "AT_PARAM_ERROR" if len > 0 => LoraError::InvalidLength { len },
            _ => LoraError::Rejected {
                command,
                reply: code,
            },
        },
        e => LoraError::At(e),
    }
}

impl<P: Port> LoraModem for Rak3172<P> {
    fn kind(&self) -> &'static str {
        "rak3172"
    }

    fn init(&mut self, adr: bool) -> Result<(), LoraError> {
        self.at.discard_input();
        self.confirmed = None;
        // The first `AT` may meet a half-typed line or a boot banner.
        if self.command("AT").is_err() {
            self.at.discard_input();
            self.command("AT")?;
        }
        let want = u8::from(adr);
        if wire::parse_data_rate(&self.query("AT+ADR")?)? != want {
            self.set("AT+ADR", want)?;
        }
        Ok(())
    }

    fn is_joined(&mut self) -> Result<bool, LoraError> {
        Ok(self.query("AT+NJS")?.as_str() == "1")
    }

    fn join(&mut self) -> Result<(), LoraError> {
        const CMD: &str = "AT+JOIN=1:0:8:1";
        // Events of an earlier join must not answer this one.
        let _ = self.at.take_unsolicited("+EVT:JOIN");
        self.command(CMD)?;
        let deadline = Instant::now() + self.t.join;
        loop {
            let Some(line) = self.at.next_unsolicited(EVT, deadline)? else {
                return Err(AtError::Timeout {
                    command: CMD.into(),
                    waited: self.t.join,
                }
                .into());
            };
            match wire::parse_rak_event(&line) {
                Ok(RakEvent::Joined) => return Ok(()),
                Ok(RakEvent::JoinFailed(why)) => {
                    return Err(LoraError::JoinDenied(why.as_str().into()));
                }
                _ => {}
            }
        }
    }

    fn data_rate(&mut self) -> Result<u8, LoraError> {
        Ok(wire::parse_data_rate(&self.query("AT+DR")?)?)
    }

    fn set_data_rate(&mut self, dr: u8) -> Result<(), LoraError> {
        self.set("AT+DR", dr)
    }

    fn dev_eui(&mut self) -> Result<[u8; 8], LoraError> {
        Ok(wire::parse_dev_eui(&self.query("AT+DEVEUI")?)?)
    }

    fn send(&mut self, port: u8, payload: &[u8], confirmed: bool) -> Result<TxReport, LoraError> {
        if !wire::is_app_port(port) {
            return Err(LoraError::Rejected {
                command: "AT+SEND".into(),
                reply: format!("port {port} is not 1..=223"),
            });
        }
        if payload.is_empty() || payload.len() > wire::MAX_PAYLOAD {
            return Err(LoraError::InvalidLength { len: payload.len() });
        }
        let mut report = TxReport::default();
        self.stale_downlinks(&mut report);
        // RUI3 keeps settings in flash: read first, write only a change.
        if self.confirmed.is_none() {
            self.confirmed = Some(self.query("AT+CFM")?.as_str() == "1");
        }
        if self.confirmed != Some(confirmed) {
            self.set("AT+CFM", u8::from(confirmed))?;
            self.confirmed = Some(confirmed);
        }
        report.data_rate = self.data_rate()?;
        let hex = wire::encode_hex(payload)?;
        let mut cmd: heapless::String<{ wire::MAX_PAYLOAD * 2 + 16 }> = heapless::String::new();
        let _ = core::fmt::write(&mut cmd, format_args!("AT+SEND={port}:{hex}"));
        self.at
            .command(&cmd, self.t.command)
            .map_err(|e| map_error(e, payload.len()))?;
        let deadline = Instant::now() + self.t.tx;
        let mut ended = None;
        loop {
            let until = match ended {
                Some(at) => at,
                None => deadline,
            };
            let Some(line) = self.at.next_unsolicited(EVT, until)? else {
                if ended.is_some() {
                    break;
                }
                return Err(AtError::Timeout {
                    command: "AT+SEND".into(),
                    waited: self.t.tx,
                }
                .into());
            };
            match wire::parse_rak_event(&line)? {
                RakEvent::Rx(d) => {
                    report.downlink = Some(d);
                    if ended.is_some() {
                        break;
                    }
                }
                RakEvent::TxDone => ended = Some(Instant::now() + RX_GRACE),
                RakEvent::ConfirmedOk => {
                    report.acked = Some(true);
                    ended = Some(Instant::now() + RX_GRACE);
                }
                RakEvent::TxFailed(_) if confirmed => {
                    report.acked = Some(false);
                    ended = Some(Instant::now() + RX_GRACE);
                }
                RakEvent::TxFailed(why) => return Err(LoraError::TxFailed(why.as_str().into())),
                RakEvent::Joined | RakEvent::JoinFailed(_) | RakEvent::Other => {}
            }
            if ended.is_some() && report.downlink.is_some() {
                break;
            }
        }
        report.next_data_rate = self.data_rate()?;
        Ok(report)
    }

    fn reset(&mut self, adr: bool) -> Result<(), LoraError> {
        self.at.discard_input();
        // Best effort: a hung module may not answer; a rebooting one does
        // not say OK.
        let _ = self.at.send("ATZ");
        std::thread::sleep(REBOOT);
        self.init(adr)
    }
}
