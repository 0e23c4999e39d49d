//! The RockBLOCK 9603 (Iridium 9603 transceiver) driver: the SBD AT
//! commands over the [`AtEngine`], one method per command.
//!
//! - [`Modem9603::init`]: `AT`, `ATE0` (echo off), `AT&K0` (no flow
//!   control: the RockBLOCK wires only TX/RX), `AT+SBDMTA=1` (ring alerts).
//! - [`Modem9603::write_mo`]: `AT+SBDWB=<len>`, `READY`, the bytes and their
//!   checksum, then `0` (ok), `1` (60 s write timeout, no `OK`), `2`
//!   (checksum mismatch), `3` (bad size).
//! - [`Modem9603::session`]: `AT+SBDIX`, or `AT+SBDIXA` to answer a ring
//!   alert; waits up to `session_timeout` for `+SBDIX: …`.
//! - [`Modem9603::read_mt`]: `AT+SBDRB`, checked framing and checksum.
//! - [`Modem9603::clear_mo`]: `AT+SBDD0`, after a delivered MO, so a later
//!   session (a ring answer, a mailbox check) does not send it again and
//!   spend credits.
//! - [`Modem9603::reset`]: `ATZ0` then init again, after the modem stopped
//!   answering.

use std::time::{Duration, Instant};

use super::wire::{self, BufferStatus, SessionStatus, WireError};
use crate::carrier::at::{AtEngine, AtError};
use crate::carrier::serial::Port;

/// The 9603's unsolicited ring alert.
pub const RING: &str = "SBDRING";

/// Why a 9603 command failed.
#[derive(Debug, thiserror::Error)]
pub enum ModemError {
    /// The AT exchange failed (timeouts: the modem stopped answering).
    #[error(transparent)]
    At(#[from] AtError),
    /// Bytes or a status line did not parse.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// `AT+SBDWB` answered with a code other than 0.
    #[error("AT+SBDWB: {}", match .0 { 1 => "write timeout", 2 => "checksum mismatch", 3 => "bad message size", _ => "unknown result" })]
    Write(u8),
    /// `AT+SBDD` answered 1 (the buffer could not be cleared).
    #[error("AT+SBDD: buffer not cleared")]
    Clear,
}

impl ModemError {
    /// Whether a later try may succeed (all: a line error, a reset modem).
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::At(e) => e.is_retriable(),
            Self::Wire(e) => e.is_retriable(),
            Self::Write(_) | Self::Clear => true,
        }
    }

    /// Whether the modem stopped answering (reset it).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::At(e) if e.is_timeout())
    }
}

/// A 9603 on a port.
#[derive(Debug)]
pub struct Modem9603<P> {
    at: AtEngine<P>,
    command_timeout: Duration,
    session_timeout: Duration,
}

impl<P: Port> Modem9603<P> {
    /// A driver over `port` (not initialized yet).
    pub fn new(port: P, command_timeout: Duration, session_timeout: Duration) -> Self {
        Self {
            at: AtEngine::new(port, &[RING]),
            command_timeout,
            session_timeout,
        }
    }

    fn command(&mut self, command: &str) -> Result<crate::carrier::at::Lines, ModemError> {
        Ok(self.at.command(command, self.command_timeout)?)
    }

    /// Bring the modem to a known state: attention, echo off, no flow
    /// control, ring alerts on.
    ///
    /// # Errors
    /// The first command that failed.
    pub fn init(&mut self) -> Result<(), ModemError> {
        self.at.discard_input();
        // The first `AT` may meet a half-typed line or a wake-up banner.
        if self.command("AT").is_err() {
            self.at.discard_input();
            self.command("AT")?;
        }
        for c in ["ATE0", "AT&K0", "AT+SBDMTA=1"] {
            self.command(c)?;
        }
        Ok(())
    }

    /// Soft-reset (`ATZ0`, best effort: a hung modem may not answer) and
    /// initialize again.
    ///
    /// # Errors
    /// Those of [`Self::init`]: the modem is still not answering.
    pub fn reset(&mut self) -> Result<(), ModemError> {
        self.at.discard_input();
        let _ = self.command("ATZ0");
        self.init()
    }

    /// Write `data` (1..=340 bytes) into the MO buffer.
    ///
    /// # Errors
    /// [`ModemError::Write`] with the modem's code; AT errors.
    pub fn write_mo(&mut self, data: &[u8]) -> Result<(), ModemError> {
        let mut cmd: heapless::String<16> = heapless::String::new();
        // Cannot overflow: "AT+SBDWB=" and at most 3 digits.
        let _ = core::fmt::write(&mut cmd, format_args!("AT+SBDWB={}", data.len()));
        let deadline = Instant::now() + self.command_timeout;
        self.at.send(&cmd)?;
        let line = self.at.response_line(&cmd, deadline)?;
        match line.as_str() {
            "READY" => {}
            "ERROR" => {
                return Err(AtError::Error {
                    command: cmd.as_str().into(),
                }
                .into());
            }
            other => {
                return Err(AtError::Unexpected {
                    command: cmd.as_str().into(),
                    line: other.into(),
                }
                .into());
            }
        }
        self.at.write_raw(data)?;
        self.at.write_raw(&wire::checksum(data).to_be_bytes())?;
        let line = self.at.response_line(&cmd, deadline)?;
        let code = match line.as_str() {
            "0" => 0,
            // The modem gave up waiting for the bytes: no OK follows.
            "1" => return Err(ModemError::Write(1)),
            "2" => 2,
            "3" => 3,
            other => {
                return Err(AtError::Unexpected {
                    command: cmd.as_str().into(),
                    line: other.into(),
                }
                .into());
            }
        };
        self.at.finish(&cmd, deadline)?;
        if code == 0 {
            Ok(())
        } else {
            Err(ModemError::Write(code))
        }
    }

    /// Run an SBD session: `AT+SBDIX`, or `AT+SBDIXA` when answering a ring
    /// alert.
    ///
    /// # Errors
    /// AT errors ([`AtError::Timeout`] after `session_timeout`), a
    /// malformed status line.
    pub fn session(&mut self, answering_ring: bool) -> Result<SessionStatus, ModemError> {
        let cmd = if answering_ring {
            "AT+SBDIXA"
        } else {
            "AT+SBDIX"
        };
        let lines = self.at.command(cmd, self.session_timeout)?;
        let line = lines
            .iter()
            .find(|l| l.starts_with("+SBDIX"))
            .ok_or_else(|| AtError::Unexpected {
                command: cmd.into(),
                line: lines
                    .first()
                    .map(|l| l.as_str().to_owned())
                    .unwrap_or_default(),
            })?;
        // `AT+SBDIXA` answers `+SBDIX:` too; accept `+SBDIXA:` as well.
        let line = line.replacen("+SBDIXA:", "+SBDIX:", 1);
        Ok(SessionStatus::parse(&line)?)
    }

    /// Read the MT buffer (`AT+SBDRB`): the message, checked.
    ///
    /// # Errors
    /// [`WireError`] for a bad length or checksum; AT errors.
    pub fn read_mt(&mut self) -> Result<heapless::Vec<u8, { wire::MAX_MT }>, ModemError> {
        const CMD: &str = "AT+SBDRB";
        let deadline = Instant::now() + self.command_timeout;
        self.at.send(CMD)?;
        self.at.skip_echo(CMD, deadline)?;
        let mut head = [0u8; 2];
        self.at.read_exact(CMD, &mut head, deadline)?;
        let len = wire::sbdrb_length(head);
        if len > wire::MAX_MT {
            self.at.discard_input();
            return Err(WireError::TooLong(len).into());
        }
        let mut framed = [0u8; wire::MAX_MT + 4];
        framed[..2].copy_from_slice(&head);
        self.at.read_exact(CMD, &mut framed[2..len + 4], deadline)?;
        let msg = wire::decode_sbdrb(&framed[..len + 4]);
        self.at.finish(CMD, deadline)?;
        let mut out = heapless::Vec::new();
        // Cannot overflow: checked against MAX_MT above.
        let _ = out.extend_from_slice(msg?);
        Ok(out)
    }

    /// Clear the MO buffer (`AT+SBDD0`).
    ///
    /// # Errors
    /// [`ModemError::Clear`] if the modem says it could not; AT errors.
    pub fn clear_mo(&mut self) -> Result<(), ModemError> {
        let lines = self.command("AT+SBDD0")?;
        match lines.first().map(|l| l.as_str()) {
            Some("0") | None => Ok(()),
            _ => Err(ModemError::Clear),
        }
    }

    /// The buffers and ring-alert flag (`AT+SBDSX`).
    ///
    /// # Errors
    /// AT errors, a malformed line.
    pub fn status(&mut self) -> Result<BufferStatus, ModemError> {
        let lines = self.command("AT+SBDSX")?;
        let line = lines
            .iter()
            .find(|l| l.starts_with("+SBDSX"))
            .ok_or_else(|| WireError::Status(String::new()))?;
        Ok(BufferStatus::parse(line)?)
    }

    /// Forget ring alerts received so far (a session just ran).
    pub fn forget_rings(&mut self) {
        self.at.take_unsolicited(RING);
    }

    /// Wait until `deadline` for a ring alert (one already received counts).
    ///
    /// # Errors
    /// Port errors.
    pub fn wait_ring(&mut self, deadline: Instant) -> Result<bool, ModemError> {
        Ok(self.at.wait_unsolicited(RING, deadline)?)
    }
}
