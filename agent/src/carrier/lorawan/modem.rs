//! The [`LoraModem`] trait: what the LoRaWAN carrier needs of a modem, one
//! blocking method per operation, implemented per AT dialect
//! ([`Rak3172`](super::Rak3172), [`Rn2483`](super::Rn2483)); its errors
//! ([`LoraError`]); the report of one uplink ([`TxReport`]); and the join
//! procedure every dialect shares ([`LoraModem::ensure_joined`]: keep an
//! existing OTAA session, else join with attempts and a doubling back-off).

use std::time::Duration;

use super::wire::{Downlink, WireError};
use crate::carrier::at::AtError;

/// Downlinks a report may carry besides its own (printed by the modem
/// after earlier commands, e.g. for an uplink the firmware sent by itself).
pub const MAX_EARLIER: usize = 2;

/// Why a LoRaWAN modem operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LoraError {
    /// The AT exchange failed (a timeout: the modem stopped answering).
    #[error(transparent)]
    At(#[from] AtError),
    /// A line did not parse.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The MAC is busy (RUI3 `AT_BUSY_ERROR`, RN2483 `busy`): try again
    /// in a moment.
    #[error("modem busy")]
    Busy,
    /// No session (RUI3 `AT_NO_NETWORK_JOINED`, RN2483 `not_joined` or
    /// `frame_counter_err_rejoin_needed`): join again.
    #[error("not joined to a network")]
    NotJoined,
    /// Every channel is waiting out its duty cycle (RN2483 `no_free_ch`).
    #[error("no free channel (duty cycle)")]
    NoFreeChannel,
    /// One join attempt failed (`+EVT:JOIN_FAILED_…`, `denied`).
    #[error("join attempt failed: {0}")]
    JoinDenied(String),
    /// Every join attempt failed.
    #[error("OTAA join failed after {attempts} attempts, the last: {last}")]
    JoinFailed {
        /// Attempts made.
        attempts: u32,
        /// Why the last one failed.
        last: String,
    },
    /// The payload exceeds what the current data rate carries (RUI3
    /// `AT_PARAM_ERROR` on a send, RN2483 `invalid_data_len`).
    #[error("payload of {len} bytes too long for the current data rate")]
    InvalidLength {
        /// The payload's length.
        len: usize,
    },
    /// The uplink failed (RN2483 `mac_err`; a confirmed uplink without
    /// its ack).
    #[error("uplink failed: {0}")]
    TxFailed(String),
    /// The modem refused a command (a wrong parameter, keys not set).
    #[error("{command}: {reply}")]
    Rejected {
        /// The command.
        command: String,
        /// The modem's answer.
        reply: String,
    },
}

impl LoraError {
    /// Whether a later try may succeed: all but a payload too long and a
    /// refused command (a configuration or caller bug).
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::At(e) => e.is_retriable(),
            Self::Wire(e) => e.is_retriable(),
            Self::InvalidLength { .. } | Self::Rejected { .. } => false,
            _ => true,
        }
    }

    /// Whether the modem stopped answering (reset it).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::At(e) if e.is_timeout())
    }
}

/// What one uplink did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxReport {
    /// The downlink received in this uplink's receive windows (class A:
    /// at most one).
    pub downlink: Option<Downlink>,
    /// Downlinks the modem printed since the previous command (for an
    /// uplink its firmware sent by itself, e.g. after FPending).
    pub earlier: heapless::Vec<Downlink, MAX_EARLIER>,
    /// The data rate the uplink went at.
    pub data_rate: u8,
    /// The data rate now (ADR may have moved it in the receive windows).
    pub next_data_rate: u8,
    /// For a confirmed uplink: whether the network acknowledged it.
    pub acked: Option<bool>,
}

/// How [`LoraModem::ensure_joined`] joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinPolicy {
    /// Join attempts (the first included).
    pub attempts: u32,
    /// Pause before the second attempt; doubles for each further one.
    pub backoff: Duration,
    /// Data rate set before joining.
    pub data_rate: u8,
}

/// A LoRaWAN modem driven over AT commands (blocking; every call has a
/// deadline).
pub trait LoraModem {
    /// The dialect's name for logs (`rak3172`, `rn2483`).
    fn kind(&self) -> &'static str;

    /// Bring the modem to a known state (attention, ADR on or off); never
    /// disturbs a joined session.
    ///
    /// # Errors
    /// A modem that does not answer or refuses.
    fn init(&mut self, adr: bool) -> Result<(), LoraError>;

    /// Whether the modem holds a joined session.
    ///
    /// # Errors
    /// AT and parse errors.
    fn is_joined(&mut self) -> Result<bool, LoraError>;

    /// One OTAA join attempt, waiting for its outcome.
    ///
    /// # Errors
    /// [`LoraError::JoinDenied`] when the network does not accept it;
    /// [`LoraError::Busy`], [`LoraError::NoFreeChannel`], AT errors.
    fn join(&mut self) -> Result<(), LoraError>;

    /// The current uplink data rate.
    ///
    /// # Errors
    /// AT and parse errors.
    fn data_rate(&mut self) -> Result<u8, LoraError>;

    /// Set the uplink data rate.
    ///
    /// # Errors
    /// [`LoraError::Rejected`] for a rate the modem's region lacks.
    fn set_data_rate(&mut self, dr: u8) -> Result<(), LoraError>;

    /// The modem's DevEUI (how the network names the device).
    ///
    /// # Errors
    /// AT and parse errors.
    fn dev_eui(&mut self) -> Result<[u8; 8], LoraError>;

    /// One uplink of `payload` (1..=242 bytes) on `port`, waiting through
    /// its receive windows.
    ///
    /// # Errors
    /// [`LoraError::Busy`], [`LoraError::NotJoined`],
    /// [`LoraError::NoFreeChannel`], [`LoraError::InvalidLength`],
    /// [`LoraError::TxFailed`], AT errors (a timeout: reset the modem).
    fn send(&mut self, port: u8, payload: &[u8], confirmed: bool) -> Result<TxReport, LoraError>;

    /// Reset a modem that stopped answering (soft reset, then
    /// [`init`](Self::init) again); the session is gone: join again.
    ///
    /// # Errors
    /// The modem still does not answer.
    fn reset(&mut self, adr: bool) -> Result<(), LoraError>;

    /// Keep a joined session, else join: up to `policy.attempts` attempts,
    /// the back-off doubling between them. `Ok(true)` when it joined now.
    ///
    /// # Errors
    /// [`LoraError::JoinFailed`] naming the last attempt's failure; errors
    /// other than a refused attempt, busy or duty cycle end it at once.
    fn ensure_joined(&mut self, policy: &JoinPolicy) -> Result<bool, LoraError> {
        if self.is_joined()? {
            return Ok(false);
        }
        let attempts = policy.attempts.max(1);
        let mut last = String::new();
        for attempt in 0..attempts {
            if attempt > 0 {
                std::thread::sleep(policy.backoff.saturating_mul(1 << (attempt - 1).min(10)));
            }
            self.set_data_rate(policy.data_rate)?;
            match self.join() {
                Ok(()) => return Ok(true),
                Err(
                    e @ (LoraError::JoinDenied(_) | LoraError::Busy | LoraError::NoFreeChannel),
                ) => {
                    last = e.to_string();
                }
                Err(e) => return Err(e),
            }
        }
        Err(LoraError::JoinFailed { attempts, last })
    }
}

impl<M: LoraModem + ?Sized> LoraModem for Box<M> {
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
    fn init(&mut self, adr: bool) -> Result<(), LoraError> {
        (**self).init(adr)
    }
    fn is_joined(&mut self) -> Result<bool, LoraError> {
        (**self).is_joined()
    }
    fn join(&mut self) -> Result<(), LoraError> {
        (**self).join()
    }
    fn data_rate(&mut self) -> Result<u8, LoraError> {
        (**self).data_rate()
    }
    fn set_data_rate(&mut self, dr: u8) -> Result<(), LoraError> {
        (**self).set_data_rate(dr)
    }
    fn dev_eui(&mut self) -> Result<[u8; 8], LoraError> {
        (**self).dev_eui()
    }
    fn send(&mut self, port: u8, payload: &[u8], confirmed: bool) -> Result<TxReport, LoraError> {
        (**self).send(port, payload, confirmed)
    }
    fn reset(&mut self, adr: bool) -> Result<(), LoraError> {
        (**self).reset(adr)
    }
    fn ensure_joined(&mut self, policy: &JoinPolicy) -> Result<bool, LoraError> {
        (**self).ensure_joined(policy)
    }
}
