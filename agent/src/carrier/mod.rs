//! How an upload window reaches the server, and the seam for narrow-link
//! carriers of sealed frames.
//!
//! The agent knows three kinds of links ([`LinkKind`], the `links` list of
//! the configuration): `tls` (the Edge API over mTLS, `uplink.rs`), `udp`
//! (sealed frames in datagrams, [`UdpCarrier`]) and `sbd` (sealed frames in
//! Iridium SBD messages through a RockBLOCK 9603 on a serial port,
//! [`SbdCarrier`], over the generic [`serial`] port and [`at`] engine) and
//! `lorawan` (sealed frames in LoRaWAN uplinks through a RAK3172 or RN2483
//! modem, [`LoraCarrier`]). A [`FrameCarrier`] moves
//! one sealed uplink frame and brings back one downlink answer; everything
//! about frames (keys, counters, packing, acks) stays in `frames/`, so a
//! LoRaWAN or an Iridium SBD modem only has to implement this trait:
//!
//! - [`budget`](FrameCarrier::budget): the largest uplink frame it takes now
//!   (51 bytes for LoRaWAN DR0, 340 for SBD MO, ~1200 for NB-IoT UDP);
//! - [`identifies_device`](FrameCarrier::identifies_device): whether the
//!   network names the device (DevEUI, IMEI), so frames may omit the key id;
//! - [`exchange`](FrameCarrier::exchange): send the frame, wait for the
//!   answer, and retransmit the *identical* bytes on the carrier's own
//!   schedule (a retransmission is not a new use of the nonce); each
//!   received message is shown to the caller's `is_answer`, which only
//!   accepts an authentic answer to this frame, so injected, forged, late or
//!   duplicated messages are skipped and the wait goes on;
//! - [`traffic`](FrameCarrier::traffic): what crossed the link, for reports.
//!
//! A carrier never sees keys or plaintext and decides nothing about
//! records: it is bytes in, bytes out, on a schedule.

pub mod at;
mod config;
mod governed;
pub mod lorawan;
mod open;
pub mod sbd;
pub mod serial;
mod udp;

pub use config::{
    FramePacking, LinkKind, MAX_FRAME_BYTES, MIN_FRAME_BYTES, MIN_TEXT_BYTES, UdpConfig,
};
pub(crate) use config::{apply_env, validate};
pub(crate) use governed::Governed;
pub use governed::SharedGovernor;
pub use lorawan::{LoraCarrier, LorawanConfig};
pub(crate) use open::open_frame_link;
pub use sbd::{SbdCarrier, SbdConfig};
pub use udp::UdpCarrier;

use crate::governor::Transmission;

/// What crossed a carrier so far (retransmissions and ignored messages
/// included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Messages sent up (every retransmission counts).
    pub sent: u64,
    /// Bytes sent up.
    pub bytes_up: u64,
    /// Messages received (accepted or not).
    pub received: u64,
    /// Bytes received.
    pub bytes_down: u64,
    /// Received messages that were not an answer to the frame in flight.
    pub ignored: u64,
    /// Modem sessions started (SBD: every `AT+SBDIX`/`AT+SBDIXA`; 0 for
    /// UDP).
    pub sessions: u64,
    /// Billing units spent (Iridium credits: one per started 50 bytes of
    /// each MO and MT message, at least one per successful session; 0 for
    /// UDP).
    pub credits: u64,
    /// Radio time on air of the uplinks, in milliseconds (LoRaWAN: the
    /// Semtech formula at each uplink's data rate; 0 for UDP and SBD).
    pub airtime_ms: u64,
}

impl Traffic {
    /// The traffic since `earlier`.
    #[must_use]
    pub fn since(&self, earlier: &Traffic) -> Traffic {
        Traffic {
            sent: self.sent - earlier.sent,
            bytes_up: self.bytes_up - earlier.bytes_up,
            received: self.received - earlier.received,
            bytes_down: self.bytes_down - earlier.bytes_down,
            ignored: self.ignored - earlier.ignored,
            sessions: self.sessions - earlier.sessions,
            credits: self.credits - earlier.credits,
            airtime_ms: self.airtime_ms - earlier.airtime_ms,
        }
    }
}

/// Why a carrier could not deliver a frame and bring its answer.
#[derive(Debug, thiserror::Error)]
pub enum CarrierError {
    /// The server address did not resolve.
    #[error("cannot resolve {addr}: {source}")]
    Resolve {
        /// The configured address.
        addr: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// Opening, sending or receiving failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Every attempt went unanswered.
    #[error("no answer after {attempts} attempts")]
    NoAnswer {
        /// Transmissions of the frame.
        attempts: u32,
    },
    /// The modem misbehaved or stopped answering (it was reset when it
    /// stopped answering).
    #[error("modem: {0}")]
    Modem(String),
    /// Every session failed (SBD MO status > 2: 32 no network, 35 busy…).
    #[error("{attempts} sessions failed, the last with MO status {mo_status}")]
    SessionFailed {
        /// Sessions tried.
        attempts: u32,
        /// The last session's MO status.
        mo_status: u8,
    },
    /// The carrier does not send frames without waiting for their answer
    /// (a bug of the caller).
    #[error("{0} does not send frames without an answer")]
    Unsupported(&'static str),
    /// The governor holds transmissions back until the duty cycle, fair-use
    /// or credit budget allows them again.
    #[error("held back by the {0} budget")]
    HeldBack(&'static str),
    /// The frame exceeds the carrier's budget (a bug of the caller).
    #[error("frame of {len} bytes exceeds the carrier budget of {budget}")]
    TooLarge {
        /// The frame's length.
        len: usize,
        /// The budget.
        budget: usize,
    },
}

impl CarrierError {
    /// Whether a later window may succeed: everything but a caller's bug.
    pub fn is_retriable(&self) -> bool {
        !matches!(self, Self::TooLarge { .. } | Self::Unsupported(_))
    }
}

/// A link that carries one sealed frame up and one answer down (module
/// docs). Blocking: frame windows run on the blocking pool.
pub trait FrameCarrier {
    /// Name for logs and reports (`udp`, later `lorawan`, `sbd`).
    fn name(&self) -> &'static str;

    /// The largest uplink frame, in bytes, this carrier takes now (a
    /// LoRaWAN modem's budget changes with its data rate).
    fn budget(&self) -> usize;

    /// Whether the network names the device (DevEUI, IMEI): then frames
    /// need no key id. UDP does not (addresses are not identities).
    fn identifies_device(&self) -> bool;

    /// Send `frame` and return the first received message `is_answer`
    /// accepts. Unaccepted messages are counted and skipped; without an
    /// accepted one, the same bytes are sent again on the carrier's
    /// schedule, up to its attempt limit.
    ///
    /// # Errors
    /// [`CarrierError::NoAnswer`] when every attempt went unanswered;
    /// [`CarrierError::TooLarge`] if `frame` exceeds the budget; I/O errors.
    fn exchange(
        &mut self,
        frame: &[u8],
        is_answer: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<Vec<u8>, CarrierError>;

    /// What crossed the link since the carrier was opened.
    fn traffic(&self) -> Traffic;

    /// Whether answers arrive *later* than their frame (LoRaWAN class A:
    /// the network server queues the answer to uplink N while the receive
    /// windows of N close, so it rides on uplink N+1). Such a carrier is
    /// driven with [`send`](FrameCarrier::send) and the in-flight ledger
    /// instead of [`exchange`](FrameCarrier::exchange).
    fn answers_later(&self) -> bool {
        false
    }

    /// Send `frame` once (no retransmission: a frame whose ack does not
    /// come is re-packed by the window) and return the downlinks that
    /// arrived in its receive windows, which may answer any earlier frame.
    ///
    /// # Errors
    /// [`CarrierError::Unsupported`] for carriers that only `exchange`; else
    /// as `exchange`.
    fn send(&mut self, frame: &[u8]) -> Result<Vec<Vec<u8>>, CarrierError> {
        let _ = frame;
        Err(CarrierError::Unsupported(self.name()))
    }

    /// What sending a frame of `frame_len` bytes would cost, for the
    /// governor (`governed.rs`): airtime on a LoRaWAN sub-band, Iridium
    /// credits; `None` for a link nothing meters (UDP).
    fn transmission(&self, frame_len: usize) -> Option<Transmission> {
        let _ = frame_len;
        None
    }

    /// Whether a frame may ask for an answer now (carriers whose answers
    /// come later): false while the fair-use downlink budget is spent, so
    /// frames still go up but nothing asks for a downlink.
    fn may_ask_answer(&self) -> bool {
        true
    }

    /// A frame about to be sent asks for an answer: the downlink it will
    /// bring is charged now (a server answers such links only when asked).
    fn ask_answer(&mut self) {}

    /// Whether, after a frame of `frame_len` bytes, the budgets still
    /// leave room for another as long: when not, that frame is the last
    /// of its window and asks for an answer (frames held back by a
    /// budget must not leave those sent unacknowledged).
    fn room_for_another(&self, frame_len: usize) -> bool {
        let _ = frame_len;
        true
    }

    /// The budget that would hold back a frame of `frame_len` bytes now,
    /// if any (asked before a window plans anything: a window that could
    /// send nothing must not fold heartbeats into a summary of their own).
    fn held_back_now(&self, frame_len: usize) -> Option<&'static str> {
        let _ = frame_len;
        None
    }
}
