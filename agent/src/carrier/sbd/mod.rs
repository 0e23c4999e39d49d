//! Sealed frames over Iridium SBD through a RockBLOCK 9603 on a serial
//! port: one MO message up, MT messages down.
//!
//! [`SbdCarrier::exchange`]:
//! 1. write the frame into the MO buffer (`AT+SBDWB`; a checksum mismatch
//!    on the serial line is written again, twice at most);
//! 2. run a session (`AT+SBDIX`). A failed one (MO status > 2: no network,
//!    busy, RF drop…) is retried with the identical bytes after
//!    `retry_backoff_ms`, `attempts` sessions in all;
//! 3. after a delivered MO, clear the MO buffer (`AT+SBDD0`) so no later
//!    session sends it again (and spends credits);
//! 4. every MT a session brought (`AT+SBDRB`) is offered to `is_answer`; an
//!    MT that answers an earlier frame is skipped; while the gateway says
//!    more are queued they are fetched (`AT+SBDIXA`);
//! 5. without an accepted answer, wait up to `answer_timeout_ms` for a ring
//!    alert (`SBDRING`: the server queued the answer after our session) and
//!    answer it with `AT+SBDIXA`.
//!
//! A modem that stops answering (a command or a session past its
//! deadline) is reset (`ATZ0`, init again) and the exchange fails: the agent
//! never hangs on a modem. [`Traffic`] counts sessions and credits (one per
//! started 50 bytes of each MO and MT message, at least one per session).

mod config;
mod modem;
pub mod wire;

use std::time::{Duration, Instant};

pub use config::SbdConfig;
pub(crate) use config::{SBD_ENV_KEYS, validate_sbd};
pub use modem::{Modem9603, ModemError, RING};

use super::serial::{Port, SerialPort};
use super::{CarrierError, FrameCarrier, Traffic};
use wire::SessionStatus;

/// How often `AT+SBDWB` is repeated after a checksum mismatch.
const WRITE_TRIES: u32 = 3;

/// An SBD modem carrying sealed frames.
#[derive(Debug)]
pub struct SbdCarrier<P = SerialPort> {
    modem: Modem9603<P>,
    cfg: SbdConfig,
    initialized: bool,
    traffic: Traffic,
}

impl SbdCarrier<SerialPort> {
    /// Open `cfg.device` at `cfg.baud` (the modem is initialized on the
    /// first exchange).
    ///
    /// # Errors
    /// [`CarrierError::Io`] if the port cannot be opened.
    pub fn open(cfg: &SbdConfig) -> Result<Self, CarrierError> {
        let port =
            SerialPort::open(std::path::Path::new(&cfg.device), cfg.baud).map_err(|source| {
                CarrierError::Io {
                    op: "open serial port",
                    source,
                }
            })?;
        Ok(Self::with_port(port, cfg))
    }
}

impl<P: Port> SbdCarrier<P> {
    /// A carrier over any port (tests use scripted ones).
    pub fn with_port(port: P, cfg: &SbdConfig) -> Self {
        Self {
            modem: Modem9603::new(
                port,
                Duration::from_millis(cfg.command_timeout_ms),
                Duration::from_millis(cfg.session_timeout_ms),
            ),
            cfg: cfg.clone(),
            initialized: false,
            traffic: Traffic::default(),
        }
    }

    /// A modem error as a carrier error; a modem that stopped answering is
    /// reset first (and must be initialized again).
    fn fail(&mut self, op: &'static str, e: ModemError) -> CarrierError {
        self.initialized = false;
        let reset = if e.is_timeout() {
            match self.modem.reset() {
                Ok(()) => {
                    self.initialized = true;
                    "; modem reset"
                }
                Err(_) => "; modem reset failed",
            }
        } else {
            ""
        };
        CarrierError::Modem(format!("{op}: {e}{reset}"))
    }

    fn ensure_init(&mut self) -> Result<(), CarrierError> {
        if self.initialized {
            return Ok(());
        }
        if let Err(e) = self.modem.init() {
            // One reset, then give up for this window.
            if let Err(e2) = self.modem.reset() {
                return Err(CarrierError::Modem(format!("init: {e}; after reset: {e2}")));
            }
        }
        self.initialized = true;
        Ok(())
    }

    fn write_mo(&mut self, frame: &[u8]) -> Result<(), CarrierError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.modem.write_mo(frame) {
                Ok(()) => return Ok(()),
                Err(ModemError::Write(2)) if tries < WRITE_TRIES => {}
                Err(e) => return Err(self.fail("write MO", e)),
            }
        }
    }

    /// One session; its status, counted.
    fn session(
        &mut self,
        mo_len: usize,
        answering_ring: bool,
    ) -> Result<SessionStatus, CarrierError> {
        self.traffic.sessions += 1;
        if mo_len > 0 {
            self.traffic.sent += 1;
            self.traffic.bytes_up += mo_len as u64;
        }
        let status = self
            .modem
            .session(answering_ring)
            .map_err(|e| self.fail("session", e))?;
        if status.is_success() {
            let mt = if status.mt_received() {
                usize::from(status.mt_length)
            } else {
                0
            };
            self.traffic.credits += wire::credits(mo_len, mt);
            self.modem.forget_rings();
        }
        Ok(status)
    }

    /// Read the MT a successful session brought and offer it; `Some` if
    /// accepted.
    fn offer_mt(
        &mut self,
        status: &SessionStatus,
        is_answer: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<Option<Vec<u8>>, CarrierError> {
        if !status.mt_received() {
            return Ok(None);
        }
        let mt = self.modem.read_mt().map_err(|e| self.fail("read MT", e))?;
        self.traffic.received += 1;
        self.traffic.bytes_down += mt.len() as u64;
        if is_answer(&mt) {
            return Ok(Some(mt.to_vec()));
        }
        self.traffic.ignored += 1;
        Ok(None)
    }

    /// Offer the session's MT, then fetch further queued ones (`AT+SBDIXA`,
    /// the MO buffer already cleared) until one is accepted, none is left
    /// or `deadline` passes.
    fn drain_mt(
        &mut self,
        mut status: SessionStatus,
        deadline: Instant,
        is_answer: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<Option<Vec<u8>>, CarrierError> {
        loop {
            if let Some(answer) = self.offer_mt(&status, is_answer)? {
                return Ok(Some(answer));
            }
            if status.mt_queued == 0 || Instant::now() >= deadline {
                return Ok(None);
            }
            status = self.session(0, true)?;
            if !status.is_success() {
                return Ok(None);
            }
        }
    }

    fn pause(&self, deadline: Option<Instant>) {
        let mut wait = Duration::from_millis(self.cfg.retry_backoff_ms);
        if let Some(d) = deadline {
            wait = wait.min(d.saturating_duration_since(Instant::now()));
        }
        std::thread::sleep(wait);
    }
}

impl<P: Port> FrameCarrier for SbdCarrier<P> {
    fn name(&self) -> &'static str {
        "sbd"
    }

    fn budget(&self) -> usize {
        wire::MAX_MO
    }

    fn identifies_device(&self) -> bool {
        true
    }

    fn exchange(
        &mut self,
        frame: &[u8],
        is_answer: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<Vec<u8>, CarrierError> {
        if frame.len() > wire::MAX_MO {
            return Err(CarrierError::TooLarge {
                len: frame.len(),
                budget: wire::MAX_MO,
            });
        }
        self.ensure_init()?;
        // Rings heard before this frame announce MTs the first session
        // fetches anyway.
        self.modem.forget_rings();
        let attempts = self.cfg.attempts.max(1);
        let mut delivered = None;
        let mut last_status = 0;
        for attempt in 0..attempts {
            if attempt > 0 {
                self.pause(None);
            }
            self.write_mo(frame)?;
            let status = self.session(frame.len(), false)?;
            if status.is_success() {
                delivered = Some(status);
                break;
            }
            last_status = status.mo_status;
        }
        let Some(status) = delivered else {
            return Err(CarrierError::SessionFailed {
                attempts,
                mo_status: last_status,
            });
        };
        self.modem
            .clear_mo()
            .map_err(|e| self.fail("clear MO buffer", e))?;
        let deadline = Instant::now() + Duration::from_millis(self.cfg.answer_timeout_ms);
        if let Some(answer) = self.drain_mt(status, deadline, is_answer)? {
            return Ok(answer);
        }
        // The answer comes after our session: the gateway rings.
        while self
            .modem
            .wait_ring(deadline)
            .map_err(|e| self.fail("wait for ring alert", e))?
        {
            // Answer the ring; a failed session (no network right now) is
            // tried again after the back-off while the deadline allows.
            loop {
                let status = self.session(0, true)?;
                if status.is_success() {
                    if let Some(answer) = self.drain_mt(status, deadline, is_answer)? {
                        return Ok(answer);
                    }
                    break;
                }
                if Instant::now() >= deadline {
                    break;
                }
                self.pause(Some(deadline));
            }
        }
        Err(CarrierError::NoAnswer { attempts: 1 })
    }

    fn traffic(&self) -> Traffic {
        self.traffic
    }

    fn transmission(&self, frame_len: usize) -> Option<crate::governor::Transmission> {
        // The MO, and at least one credit for the answer's MT.
        let credits = wire::credits(frame_len, 1);
        Some(crate::governor::Transmission::sbd(
            u32::try_from(credits).unwrap_or(u32::MAX),
        ))
    }
}
