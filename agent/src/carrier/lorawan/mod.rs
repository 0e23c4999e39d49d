//! Sealed frames over LoRaWAN through a serial modem (RAK3172 with RUI3,
//! Microchip RN2483/RN2903), class A: one unconfirmed uplink per frame, and
//! downlinks only in the receive windows after an uplink.
//!
//! - `modem.rs`: the [`LoraModem`] trait (join state, join with attempts and
//!   back-off, data rate, one uplink → [`TxReport`], reset), implemented by
//!   [`Rak3172`] (`rak3172.rs`) and [`Rn2483`] (`rn2483.rs`) over the AT
//!   engine; [`wire`]: their pure line parsers (fuzzed);
//! - [`region`]: EU868/US915 data rates and payload limits; [`airtime`]:
//!   time on air; `config.rs`: the `[lorawan]` table ([`LorawanConfig`]).
//!
//! [`LoraCarrier`] is the [`FrameCarrier`]: its budget is the current data
//! rate's payload limit minus `fopts_reserve_bytes` (MAC answers ride in
//! FOpts), it names the device (DevEUI), and its answers come later
//! ([`FrameCarrier::answers_later`]: the network server queues the answer
//! to uplink N while N's receive windows close, so it rides on N+1).
//! [`FrameCarrier::send`] is one uplink and the downlinks on the
//! configured port it brought; [`FrameCarrier::exchange`] is a fallback
//! that sends the identical bytes up to `attempts` times until an uplink
//! brings an accepted answer.
//!
//! A modem that stops answering is reset (its session is lost: the next
//! frame joins again) and the frame fails: the agent never hangs on a
//! modem. A busy MAC is retried briefly; a modem waiting out its duty cycle
//! (`no_free_ch`) holds the window back ([`CarrierError::HeldBack`]).

pub mod airtime;
mod config;
mod modem;
mod rak3172;
pub mod region;
mod rn2483;
pub mod wire;

use std::time::Duration;

pub(crate) use config::{LORAWAN_BOOL_KEYS, LORAWAN_ENV_KEYS, validate_lorawan};
pub use config::{LorawanConfig, ModemKind};
pub use modem::{JoinPolicy, LoraError, LoraModem, MAX_EARLIER, TxReport};
pub use rak3172::Rak3172;
pub use region::{DataRate, Region};
pub use rn2483::Rn2483;
pub use wire::Downlink;

use super::serial::SerialPort;
use super::{CarrierError, FrameCarrier, Traffic};

/// The smallest frame budget worth configuring: a sealed frame's 12 bytes
/// of overhead and a status item.
pub const MIN_FRAME: usize = 24;

/// Tries of an uplink the MAC refused as busy.
const BUSY_TRIES: u32 = 3;

/// The timeouts a dialect driver uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// An ordinary command.
    pub command: Duration,
    /// An uplink and its receive windows.
    pub tx: Duration,
    /// One join attempt.
    pub join: Duration,
}

impl Timeouts {
    /// The timeouts of `cfg`.
    #[must_use]
    pub fn of(cfg: &LorawanConfig) -> Self {
        Self {
            command: Duration::from_millis(cfg.command_timeout_ms),
            tx: Duration::from_millis(cfg.tx_timeout_ms),
            join: Duration::from_millis(cfg.join_timeout_ms),
        }
    }
}

/// A LoRaWAN modem carrying sealed frames (module docs).
#[derive(Debug)]
pub struct LoraCarrier<M> {
    modem: M,
    cfg: LorawanConfig,
    initialized: bool,
    data_rate: u8,
    traffic: Traffic,
    airtime: Duration,
}

impl LoraCarrier<Box<dyn LoraModem>> {
    /// Open `cfg.device` and drive it in `cfg.modem`'s dialect (the modem
    /// is initialized and joined on the first frame).
    ///
    /// # Errors
    /// [`CarrierError::Io`] if the port cannot be opened.
    pub fn open(cfg: &LorawanConfig) -> Result<Self, CarrierError> {
        let port =
            SerialPort::open(std::path::Path::new(&cfg.device), cfg.baud()).map_err(|source| {
                CarrierError::Io {
                    op: "open serial port",
                    source,
                }
            })?;
        let t = Timeouts::of(cfg);
        let modem: Box<dyn LoraModem> = match cfg.modem {
            ModemKind::Rak3172 => Box::new(Rak3172::new(port, t)),
            ModemKind::Rn2483 => Box::new(Rn2483::new(port, t)),
        };
        let mut carrier = Self::with_modem(modem, cfg);
        carrier.refresh_data_rate();
        Ok(carrier)
    }
}

impl<M: LoraModem> LoraCarrier<M> {
    /// A carrier over any modem driver (tests use simulated ones).
    pub fn with_modem(modem: M, cfg: &LorawanConfig) -> Self {
        Self {
            modem,
            cfg: cfg.clone(),
            initialized: false,
            data_rate: cfg.data_rate,
            traffic: Traffic::default(),
            airtime: Duration::ZERO,
        }
    }

    /// Learn the modem's data rate now, best effort (one command): a
    /// carrier is opened per window, and ADR may have moved the rate since
    /// the last one, so the window's first frame is sealed to the right
    /// budget. A silent modem is dealt with on the first frame.
    pub fn refresh_data_rate(&mut self) {
        if let Ok(dr) = self.modem.data_rate()
            && self.cfg.region.data_rate(dr).is_some()
        {
            self.data_rate = dr;
        }
    }

    /// The modem driver.
    pub fn modem(&mut self) -> &mut M {
        &mut self.modem
    }

    /// The data rate the budget is computed for (the modem's, as of the
    /// last command that reported it).
    #[must_use]
    pub fn data_rate(&self) -> u8 {
        self.data_rate
    }

    /// The modem's DevEUI (initializing it first).
    ///
    /// # Errors
    /// As [`FrameCarrier::send`].
    pub fn dev_eui(&mut self) -> Result<[u8; 8], CarrierError> {
        self.ensure_init()?;
        self.modem.dev_eui().map_err(|e| self.fail("DevEUI", e))
    }

    /// Make sure the modem is initialized and joined, and learn its data
    /// rate; `Ok(true)` when it joined now.
    ///
    /// # Errors
    /// [`CarrierError::Modem`] naming the join failure; a modem that
    /// stopped answering is reset first.
    pub fn ensure_joined(&mut self) -> Result<bool, CarrierError> {
        self.ensure_init()?;
        let policy = JoinPolicy {
            attempts: self.cfg.join_attempts,
            backoff: Duration::from_millis(self.cfg.join_backoff_ms),
            data_rate: self.cfg.data_rate,
        };
        let fresh = self
            .modem
            .ensure_joined(&policy)
            .map_err(|e| self.fail("join", e))?;
        self.data_rate = self
            .modem
            .data_rate()
            .map_err(|e| self.fail("data rate", e))?;
        Ok(fresh)
    }

    /// A modem error as a carrier error; a modem that stopped answering is
    /// reset first (it must join again).
    fn fail(&mut self, op: &'static str, e: LoraError) -> CarrierError {
        match e {
            LoraError::NoFreeChannel => return CarrierError::HeldBack("duty_cycle"),
            LoraError::InvalidLength { len } => {
                // The data rate fell below what the budget assumed.
                if let Ok(dr) = self.modem.data_rate() {
                    self.data_rate = dr;
                }
                return CarrierError::TooLarge {
                    len,
                    budget: self.budget(),
                };
            }
            _ => {}
        }
        let reset = if e.is_timeout() {
            self.initialized = false;
            match self.modem.reset(self.cfg.adr) {
                Ok(()) => {
                    self.initialized = true;
                    "; modem reset"
                }
                Err(_) => "; modem reset failed",
            }
        } else {
            ""
        };
        CarrierError::Modem(format!("{} {op}: {e}{reset}", self.modem.kind()))
    }

    fn ensure_init(&mut self) -> Result<(), CarrierError> {
        if self.initialized {
            return Ok(());
        }
        if let Err(e) = self.modem.init(self.cfg.adr) {
            if !e.is_timeout() {
                return Err(self.fail("init", e));
            }
            // One reset, then give up for this window.
            if let Err(e2) = self.modem.reset(self.cfg.adr) {
                return Err(CarrierError::Modem(format!(
                    "{} init: {e}; after reset: {e2}",
                    self.modem.kind()
                )));
            }
        }
        self.initialized = true;
        Ok(())
    }

    /// One uplink of `frame` (joined, within budget, a busy MAC retried, a
    /// lost session joined again once); its report, counted.
    fn uplink(&mut self, frame: &[u8]) -> Result<TxReport, CarrierError> {
        if frame.is_empty() || frame.len() > wire::MAX_PAYLOAD {
            return Err(CarrierError::TooLarge {
                len: frame.len(),
                budget: self.budget(),
            });
        }
        self.ensure_joined()?;
        if frame.len() > self.budget() {
            return Err(CarrierError::TooLarge {
                len: frame.len(),
                budget: self.budget(),
            });
        }
        let mut busy = 0;
        let mut rejoined = false;
        let report = loop {
            match self.modem.send(self.cfg.port, frame, false) {
                Ok(r) => break r,
                Err(LoraError::Busy) if busy + 1 < BUSY_TRIES => {
                    busy += 1;
                    std::thread::sleep(Duration::from_millis(
                        self.cfg.command_timeout_ms.min(1_000),
                    ));
                }
                Err(LoraError::NotJoined) if !rejoined => {
                    rejoined = true;
                    self.ensure_joined()?;
                }
                Err(e) => return Err(self.fail("send", e)),
            }
        };
        self.traffic.sent += 1;
        self.traffic.bytes_up += frame.len() as u64;
        // FOpts unknown to the host: counted without them (a lower bound).
        if let Some(t) = airtime::uplink_airtime(self.cfg.region, report.data_rate, 0, frame.len())
        {
            self.airtime += t;
            self.traffic.airtime_ms = u64::try_from(self.airtime.as_millis()).unwrap_or(u64::MAX);
        }
        self.data_rate = report.next_data_rate;
        Ok(report)
    }

    /// The downlinks of `report` on the configured port; others counted as
    /// ignored.
    fn downlinks(&mut self, report: TxReport) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for d in report.earlier.into_iter().chain(report.downlink) {
            self.traffic.received += 1;
            self.traffic.bytes_down += d.data.len() as u64;
            if d.port == self.cfg.port && !d.data.is_empty() {
                out.push(d.data.to_vec());
            } else {
                self.traffic.ignored += 1;
            }
        }
        out
    }
}

impl<M: LoraModem> FrameCarrier for LoraCarrier<M> {
    fn name(&self) -> &'static str {
        "lorawan"
    }

    fn budget(&self) -> usize {
        self.cfg
            .region
            .max_payload(self.data_rate)
            .saturating_sub(self.cfg.fopts_reserve_bytes)
    }

    fn identifies_device(&self) -> bool {
        true
    }

    fn answers_later(&self) -> bool {
        true
    }

    fn send(&mut self, frame: &[u8]) -> Result<Vec<Vec<u8>>, CarrierError> {
        let report = self.uplink(frame)?;
        Ok(self.downlinks(report))
    }

    fn exchange(
        &mut self,
        frame: &[u8],
        is_answer: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<Vec<u8>, CarrierError> {
        let attempts = self.cfg.attempts.max(1);
        for _ in 0..attempts {
            // Identical bytes each time: the next uplink's receive windows
            // bring the answer the network queued meanwhile.
            for d in self.send(frame)? {
                if is_answer(&d) {
                    return Ok(d);
                }
                self.traffic.ignored += 1;
            }
        }
        Err(CarrierError::NoAnswer { attempts })
    }

    fn traffic(&self) -> Traffic {
        self.traffic
    }

    fn transmission(&self, frame_len: usize) -> Option<crate::governor::Transmission> {
        use crate::governor::{Link, SubBand, Transmission};
        // The worst case: the FOpts reserve filled by the modem's MAC.
        let airtime = airtime::uplink_airtime(
            self.cfg.region,
            self.data_rate,
            self.cfg.fopts_reserve_bytes,
            frame_len,
        )?;
        let link = match self.cfg.region {
            // The modem picks the channel; EU868's default channels (868.1,
            // 868.3, 868.5 MHz) are all in g1 (1 %).
            Region::Eu868 => Link::Eu868(SubBand::G1),
            Region::Us915 => Link::Us915,
        };
        let ms = u32::try_from(airtime.as_micros().div_ceil(1000)).unwrap_or(u32::MAX);
        // An uplink brings at most the downlink an earlier one asked for;
        // asking is what the fair-use downlink budget gates
        // (`may_ask_answer`).
        Some(Transmission::lorawan(link, ms, false))
    }
}

#[cfg(test)]
mod tests;
