//! A small line-oriented AT command engine over a [`Port`], for the Iridium
//! 9603 now and LoRaWAN modems later.
//!
//! - Commands end with `\r` alone (the 9603 ignores a bare `\n`), or with
//!   the terminator a dialect sets ([`AtEngine::with_terminator`]: `\r\n`
//!   for the RAK3172 and the RN2483).
//! - Responses are lines ended by `\r` and/or `\n`; empty lines are
//!   skipped. A line is held in a fixed-size buffer ([`MAX_LINE`] bytes): a
//!   longer one is an error ([`AtError::LineTooLong`]), never a
//!   reallocation, so a babbling modem cannot grow the agent's memory.
//! - Echo is tolerated: until `ATE0` the modem repeats each command, and a
//!   line equal to the command just sent is skipped.
//! - Final results are `OK` and `ERROR` ([`AtEngine::command`]), plus the
//!   error codes a dialect registers ([`AtEngine::with_final_errors`]:
//!   RUI3's `AT_BUSY_ERROR`, `AT_NO_NETWORK_JOINED`…, reported as
//!   [`AtError::Rejected`] with the code); commands
//!   with other results (`READY`, a numeric code) read their lines one at a
//!   time ([`AtEngine::response_line`]).
//! - Unsolicited result codes (for the 9603, `SBDRING`) can arrive between
//!   any two lines: those with a registered prefix are kept aside, in a
//!   bounded list, for [`AtEngine::take_unsolicited`] and
//!   [`AtEngine::wait_unsolicited`].
//! - Binary payloads (`AT+SBDRB`) are read with [`AtEngine::read_exact`].
//!
//! Every read has a deadline: a modem that stops answering yields
//! [`AtError::Timeout`], and the caller resets it.

use std::io;
use std::time::{Duration, Instant};

use super::serial::Port;

/// The longest command or response line, in bytes: the 9603's longest,
/// `+SBDIX: …`, is about 40; a LoRaWAN modem's carries up to 242 payload
/// bytes as 484 hex digits (`+EVT:RX_1:-120:-20:UNICAST:223:<hex>` is 516).
pub const MAX_LINE: usize = 544;
/// Lines of one response before its final result (more is an error).
pub const MAX_LINES: usize = 8;
/// Unsolicited lines kept aside (older ones are dropped).
const MAX_UNSOLICITED: usize = 4;
/// Bytes read but not consumed yet.
const BUF: usize = 1024;

/// One response line (ASCII).
pub type Line = heapless::String<MAX_LINE>;
/// The information lines of one response, without echo and final result.
pub type Lines = heapless::Vec<Line, MAX_LINES>;

/// Why an AT command failed.
#[derive(Debug, thiserror::Error)]
pub enum AtError {
    /// The port failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The port's error.
        source: io::Error,
    },
    /// No (complete) answer before the deadline: the modem stopped
    /// answering.
    #[error("no answer to {command} within {waited:?}")]
    Timeout {
        /// The command.
        command: String,
        /// How long it was given.
        waited: Duration,
    },
    /// The modem answered `ERROR`.
    #[error("{command}: ERROR")]
    Error {
        /// The command.
        command: String,
    },
    /// A line longer than [`MAX_LINE`], or more than [`MAX_LINES`] lines.
    #[error("response to {command} too long")]
    LineTooLong {
        /// The command.
        command: String,
    },
    /// A line that is not ASCII text.
    #[error("garbled response to {command}")]
    Garbled {
        /// The command.
        command: String,
    },
    /// The modem answered one of the dialect's final error codes.
    #[error("{command}: {code}")]
    Rejected {
        /// The command.
        command: String,
        /// The code (`AT_BUSY_ERROR`).
        code: String,
    },
    /// An answer the command does not allow.
    #[error("{command}: unexpected {line:?}")]
    Unexpected {
        /// The command.
        command: String,
        /// What the modem said.
        line: String,
    },
}

impl AtError {
    /// Whether a later try may succeed: all of them (a reset modem, a
    /// reconnected port); none is a bug of the caller.
    pub fn is_retriable(&self) -> bool {
        true
    }

    /// Whether the modem stopped answering (a reset is due).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }
}

/// The engine: a port, its unconsumed input, and unsolicited lines kept
/// aside.
#[derive(Debug)]
pub struct AtEngine<P> {
    port: P,
    buf: heapless::Vec<u8, BUF>,
    unsolicited_prefixes: &'static [&'static str],
    unsolicited: heapless::Vec<Line, MAX_UNSOLICITED>,
    terminator: &'static [u8],
    final_errors: &'static [&'static str],
}

impl<P: Port> AtEngine<P> {
    /// An engine over `port`; lines starting with one of
    /// `unsolicited_prefixes` are kept aside whenever they arrive.
    pub fn new(port: P, unsolicited_prefixes: &'static [&'static str]) -> Self {
        Self {
            port,
            buf: heapless::Vec::new(),
            unsolicited_prefixes,
            unsolicited: heapless::Vec::new(),
            terminator: b"\r",
            final_errors: &[],
        }
    }

    /// End commands with `terminator` instead of `\r`.
    #[must_use]
    pub fn with_terminator(mut self, terminator: &'static [u8]) -> Self {
        self.terminator = terminator;
        self
    }

    /// Lines equal to one of `codes` end a response as
    /// [`AtError::Rejected`] (besides `ERROR`).
    #[must_use]
    pub fn with_final_errors(mut self, codes: &'static [&'static str]) -> Self {
        self.final_errors = codes;
        self
    }

    /// Send `command` followed by the terminator (`\r`).
    ///
    /// # Errors
    /// [`AtError::Io`].
    pub fn send(&mut self, command: &str) -> Result<(), AtError> {
        let mut bytes: heapless::Vec<u8, MAX_LINE> = heapless::Vec::new();
        bytes
            .extend_from_slice(command.as_bytes())
            .and_then(|()| bytes.extend_from_slice(self.terminator))
            .map_err(|_| AtError::LineTooLong {
                command: command.into(),
            })?;
        self.write_raw(&bytes)
    }

    /// Write raw bytes (a binary payload).
    ///
    /// # Errors
    /// [`AtError::Io`].
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<(), AtError> {
        self.port.write_all(bytes).map_err(|source| AtError::Io {
            op: "write",
            source,
        })
    }

    /// Drop unread input and everything kept aside (after a reset).
    pub fn discard_input(&mut self) {
        self.port.discard_input();
        self.buf.clear();
        self.unsolicited.clear();
    }

    /// Read more input, waiting until `deadline`; `false` on timeout.
    fn fill(&mut self, deadline: Instant) -> Result<bool, AtError> {
        let mut chunk = [0u8; 128];
        let room = (BUF - self.buf.len()).min(chunk.len());
        if room == 0 {
            return Ok(true);
        }
        let n = self
            .port
            .read_until(&mut chunk[..room], deadline)
            .map_err(|source| AtError::Io { op: "read", source })?;
        // Cannot fail: at most `room` bytes.
        let _ = self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// The next non-empty line, or `None` at the deadline.
    fn read_line(&mut self, command: &str, deadline: Instant) -> Result<Option<Line>, AtError> {
        loop {
            if let Some(end) = self.buf.iter().position(|b| matches!(b, b'\r' | b'\n')) {
                let raw = &self.buf[..end];
                let line = if raw.len() > MAX_LINE {
                    Err(AtError::LineTooLong {
                        command: command.into(),
                    })
                } else {
                    std::str::from_utf8(raw)
                        .ok()
                        .filter(|s| s.is_ascii())
                        .and_then(|s| Line::try_from(s).ok())
                        .ok_or_else(|| AtError::Garbled {
                            command: command.into(),
                        })
                };
                self.consume(end + 1);
                let line = line?;
                if line.is_empty() {
                    continue;
                }
                return Ok(Some(line));
            }
            if self.buf.len() > MAX_LINE {
                self.buf.clear();
                return Err(AtError::LineTooLong {
                    command: command.into(),
                });
            }
            if !self.fill(deadline)? {
                return Ok(None);
            }
        }
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.copy_within(n.., 0);
        self.buf.truncate(self.buf.len() - n);
    }

    fn is_unsolicited(&self, line: &str) -> bool {
        self.unsolicited_prefixes
            .iter()
            .any(|p| line.starts_with(p))
    }

    fn keep_aside(&mut self, line: Line) {
        if self.unsolicited.is_full() {
            self.unsolicited.remove(0);
        }
        let _ = self.unsolicited.push(line);
    }

    /// The next line of the response to `command`: echo skipped,
    /// unsolicited lines kept aside.
    ///
    /// # Errors
    /// [`AtError::Timeout`] at `deadline`; [`AtError::Io`],
    /// [`AtError::LineTooLong`], [`AtError::Garbled`].
    pub fn response_line(&mut self, command: &str, deadline: Instant) -> Result<Line, AtError> {
        let started = Instant::now();
        loop {
            let Some(line) = self.read_line(command, deadline)? else {
                return Err(AtError::Timeout {
                    command: command.into(),
                    waited: deadline.saturating_duration_since(started),
                });
            };
            if line.as_str() == command {
                continue;
            }
            if self.is_unsolicited(&line) {
                self.keep_aside(line);
                continue;
            }
            return Ok(line);
        }
    }

    /// Send `command` and collect its lines until `OK`.
    ///
    /// # Errors
    /// [`AtError::Error`] on `ERROR`; [`AtError::Timeout`] without a final
    /// result within `timeout`; the errors of [`Self::response_line`].
    pub fn command(&mut self, command: &str, timeout: Duration) -> Result<Lines, AtError> {
        let deadline = Instant::now() + timeout;
        self.send(command)?;
        self.finish(command, deadline)
    }

    /// Collect the lines of the response to `command` until `OK`.
    ///
    /// # Errors
    /// As [`Self::command`].
    pub fn finish(&mut self, command: &str, deadline: Instant) -> Result<Lines, AtError> {
        let mut lines = Lines::new();
        loop {
            let line = self.response_line(command, deadline)?;
            match line.as_str() {
                "OK" => return Ok(lines),
                "ERROR" => {
                    return Err(AtError::Error {
                        command: command.into(),
                    });
                }
                code if self.final_errors.contains(&code) => {
                    return Err(AtError::Rejected {
                        command: command.into(),
                        code: code.into(),
                    });
                }
                _ => lines.push(line).map_err(|_| AtError::LineTooLong {
                    command: command.into(),
                })?,
            }
        }
    }

    /// Skip line ends, unsolicited lines (kept aside) and the echo of
    /// `command` before a binary response (whose first byte must then be
    /// neither `\r`, `\n`, the command's first byte nor an unsolicited
    /// prefix's: true of `AT+SBDRB`, whose length's high byte is 0 or 1).
    ///
    /// # Errors
    /// [`AtError::Timeout`] at `deadline`, [`AtError::Io`].
    pub fn skip_echo(&mut self, command: &str, deadline: Instant) -> Result<(), AtError> {
        let echo = command.as_bytes();
        loop {
            // An unsolicited line (a ring alert) may come first.
            let prefixes = self.unsolicited_prefixes;
            if prefixes.iter().any(|p| self.buf.starts_with(p.as_bytes())) {
                if let Some(line) = self.read_line(command, deadline)? {
                    self.keep_aside(line);
                }
                continue;
            }
            let partial = !self.buf.is_empty()
                && prefixes.iter().any(|p| p.as_bytes().starts_with(&self.buf))
                && !echo.starts_with(&self.buf);
            if partial {
                if !self.fill(deadline)? {
                    return Err(AtError::Timeout {
                        command: command.into(),
                        waited: Duration::ZERO,
                    });
                }
                continue;
            }
            match self.buf.first() {
                Some(b'\r' | b'\n') => self.consume(1),
                Some(_) if self.buf.len() >= echo.len() && self.buf.starts_with(echo) => {
                    self.consume(echo.len());
                }
                Some(_) if !echo.starts_with(&self.buf) => return Ok(()),
                _ => {
                    if !self.fill(deadline)? {
                        return Err(AtError::Timeout {
                            command: command.into(),
                            waited: Duration::ZERO,
                        });
                    }
                }
            }
        }
    }

    /// Read exactly `out.len()` bytes of a binary response.
    ///
    /// # Errors
    /// [`AtError::Timeout`] if they do not all arrive by `deadline`.
    pub fn read_exact(
        &mut self,
        command: &str,
        out: &mut [u8],
        deadline: Instant,
    ) -> Result<(), AtError> {
        let mut got = 0;
        while got < out.len() {
            if self.buf.is_empty() && !self.fill(deadline)? {
                return Err(AtError::Timeout {
                    command: command.into(),
                    waited: Duration::ZERO,
                });
            }
            let n = self.buf.len().min(out.len() - got);
            out[got..got + n].copy_from_slice(&self.buf[..n]);
            self.consume(n);
            got += n;
        }
        Ok(())
    }

    /// Remove the unsolicited lines starting with `prefix` kept aside;
    /// whether there was one.
    pub fn take_unsolicited(&mut self, prefix: &str) -> bool {
        let before = self.unsolicited.len();
        self.unsolicited.retain(|l| !l.starts_with(prefix));
        self.unsolicited.len() != before
    }

    /// Wait until `deadline` for an unsolicited line starting with `prefix`
    /// (the oldest kept aside first), and return it; other solicited lines
    /// are dropped, other unsolicited ones kept aside.
    ///
    /// # Errors
    /// [`AtError::Io`], [`AtError::LineTooLong`], [`AtError::Garbled`].
    pub fn next_unsolicited(
        &mut self,
        prefix: &str,
        deadline: Instant,
    ) -> Result<Option<Line>, AtError> {
        loop {
            if let Some(i) = self.unsolicited.iter().position(|l| l.starts_with(prefix)) {
                return Ok(Some(self.unsolicited.remove(i)));
            }
            match self.read_line(prefix, deadline)? {
                None => return Ok(None),
                Some(line) if line.starts_with(prefix) => return Ok(Some(line)),
                Some(line) if self.is_unsolicited(&line) => self.keep_aside(line),
                Some(_) => {}
            }
        }
    }

    /// Wait until `deadline` for an unsolicited line starting with `prefix`
    /// (one kept aside counts), consuming it; other lines are dropped.
    ///
    /// # Errors
    /// [`AtError::Io`], [`AtError::LineTooLong`], [`AtError::Garbled`].
    pub fn wait_unsolicited(&mut self, prefix: &str, deadline: Instant) -> Result<bool, AtError> {
        loop {
            if self.take_unsolicited(prefix) {
                return Ok(true);
            }
            match self.read_line(prefix, deadline)? {
                None => return Ok(false),
                Some(line) if self.is_unsolicited(&line) => self.keep_aside(line),
                Some(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// A scripted modem: each write is answered by the next scripted reply.
    #[derive(Default)]
    struct Script {
        replies: VecDeque<Vec<u8>>,
        pending: VecDeque<u8>,
        written: Vec<u8>,
    }

    impl Port for Script {
        fn read_until(&mut self, buf: &mut [u8], _deadline: Instant) -> io::Result<usize> {
            let n = buf.len().min(self.pending.len());
            for b in buf.iter_mut().take(n) {
                *b = self.pending.pop_front().unwrap_or_default();
            }
            Ok(n)
        }
        fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.written.extend_from_slice(bytes);
            if let Some(r) = self.replies.pop_front() {
                self.pending.extend(r);
            }
            Ok(())
        }
    }

    fn engine(replies: &[&[u8]]) -> AtEngine<Script> {
        let script = Script {
            replies: replies.iter().map(|r| r.to_vec()).collect(),
            ..Script::default()
        };
        AtEngine::new(script, &["SBDRING"])
    }

    const T: Duration = Duration::from_millis(50);

    #[test]
    fn echo_is_skipped_unsolicited_lines_kept_aside_and_cr_terminates() {
        let mut e = engine(&[b"AT+SBDSX\r\r\nSBDRING\r\n+SBDSX: 0, 1, 0, 2, 1, 1\r\n\r\nOK\r\n"]);
        let lines = e.command("AT+SBDSX", T).unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].as_str(), "+SBDSX: 0, 1, 0, 2, 1, 1");
        assert_eq!(e.port.written, b"AT+SBDSX\r");
        assert!(e.take_unsolicited("SBDRING"));
        assert!(!e.take_unsolicited("SBDRING"));
    }

    #[test]
    fn error_timeout_and_overlong_lines_are_errors() {
        let mut e = engine(&[b"\r\nERROR\r\n", b"\r\nO", &[b'x'; MAX_LINE + 1]]);
        assert!(matches!(e.command("AT+X", T), Err(AtError::Error { .. })));
        let err = e.command("AT", T).unwrap_err();
        assert!(err.is_timeout() && err.is_retriable(), "{err}");
        e.discard_input();
        assert!(matches!(
            e.command("AT", T),
            Err(AtError::LineTooLong { .. })
        ));
    }

    #[test]
    fn binary_reads_follow_the_echo() {
        let mut e = engine(&[b"AT+SBDRB\r\x00\x02hi\x00\xd1\r\nOK\r\n"]);
        e.send("AT+SBDRB").unwrap();
        let deadline = Instant::now() + T;
        e.skip_echo("AT+SBDRB", deadline).unwrap();
        let mut out = [0u8; 6];
        e.read_exact("AT+SBDRB", &mut out, deadline).unwrap();
        assert_eq!(&out, b"\x00\x02hi\x00\xd1");
        assert!(e.finish("AT+SBDRB", deadline).unwrap().is_empty());
    }

    #[test]
    fn a_ring_before_a_binary_response_is_kept_aside() {
        let mut e = engine(&[b"SBDRING\r\n\x00\x01S\x00\x53\r\nOK\r\n"]);
        e.send("AT+SBDRB").unwrap();
        let deadline = Instant::now() + T;
        e.skip_echo("AT+SBDRB", deadline).unwrap();
        let mut out = [0u8; 5];
        e.read_exact("AT+SBDRB", &mut out, deadline).unwrap();
        assert_eq!(&out, b"\x00\x01S\x00\x53");
        assert!(e.take_unsolicited("SBDRING"));
    }

    #[test]
    fn dialects_set_the_terminator_and_final_error_codes() {
        let script = Script {
            replies: [
                &b"AT+SEND=1:00\r\nAT_BUSY_ERROR\r\n"[..],
                b"+EVT:RX_1:-70:8:UNICAST:1:ab\r\nOK\r\nstray\r\n+EVT:TX_DONE\r\n",
            ]
            .iter()
            .map(|r| r.to_vec())
            .collect(),
            ..Script::default()
        };
        let mut e = AtEngine::new(script, &["+EVT:"])
            .with_terminator(b"\r\n")
            .with_final_errors(&["AT_BUSY_ERROR"]);
        let err = e.command("AT+SEND=1:00", T).unwrap_err();
        assert!(
            matches!(&err, AtError::Rejected { code, .. } if code == "AT_BUSY_ERROR"),
            "{err}"
        );
        assert_eq!(e.port.written, b"AT+SEND=1:00\r\n");
        assert!(e.command("AT+SEND=1:00", T).unwrap().is_empty());
        let deadline = Instant::now() + T;
        let first = e.next_unsolicited("+EVT:", deadline).unwrap().unwrap();
        assert_eq!(first.as_str(), "+EVT:RX_1:-70:8:UNICAST:1:ab");
        let second = e.next_unsolicited("+EVT:", deadline).unwrap().unwrap();
        assert_eq!(second.as_str(), "+EVT:TX_DONE", "the stray line is dropped");
        assert_eq!(e.next_unsolicited("+EVT:", deadline).unwrap(), None);
    }

    #[test]
    fn a_ring_is_awaited_across_other_lines() {
        let mut e = engine(&[b"\r\nOK\r\nnoise\r\nSBDRING\r\n"]);
        e.command("AT", T).unwrap();
        assert!(e.wait_unsolicited("SBDRING", Instant::now() + T).unwrap());
        assert!(!e.wait_unsolicited("SBDRING", Instant::now() + T).unwrap());
    }
}
