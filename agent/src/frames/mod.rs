//! Frame windows: an upload window over a narrow-link carrier
//! ([`FrameCarrier`]), sealed frames instead of TLS batches
//! (`proto/FRAMES.md` is the protocol).
//!
//! A window takes the records queued before it opened, folds its heartbeats
//! into one summary (`records.rs`), and sends them one frame at a time: a
//! fresh counter from the persisted-ahead reservation (`sender.rs`), the
//! status item (configuration version, low-water mark = this frame's
//! counter: one frame is in flight at a time), as many records as `pack`
//! fits into the carrier's budget, sealed, exchanged, and the answer read
//! (`answer.rs`). After each acknowledged frame (and each round) the queue
//! deletes the longest prefix of the window's records that is entirely
//! acknowledged; nothing else. Log lines the packing policy (`policy.rs`)
//! discards on a frame-only device count as acknowledged there. Configuration and rekey items are applied as they come.
//! An exchange that fails after the carrier's attempts ends the window; its
//! records are re-packed under new counters next time. The queue lock is
//! never held across an exchange (`window.rs`).
//!
//! Files: `policy.rs` (which log lines travel, messages cut to a limit),
//! `records.rs` (plan and acknowledged prefix), `folds.rs`
//! (heartbeat groups kept until deleted, so none is folded twice),
//! `parts.rs` (a configuration or rekey too large for one answer,
//! reassembled from parts across answers and restarts),
//! `sender.rs` (context and counters between windows), `answer.rs`
//! (accepting and reading an answer), `window.rs` (the loop).

mod answer;
mod deferred;
mod folds;
mod ledger;
mod parts;
mod policy;
mod records;
mod sender;
mod window;

#[cfg(test)]
pub(crate) mod test_later;
#[cfg(test)]
pub(crate) mod test_server;
#[cfg(test)]
pub(crate) mod tests;

pub use folds::TlsFolds;
#[doc(hidden)]
pub use ledger::decode_file as decode_ledger_file;
pub use policy::{MinLogLevel, PackPolicy};
pub use sender::{FrameSender, FrameState};
pub use window::{FrameWindowParams, run_frame_window};

use flotta_proto::frame::{FrameError, ReserveError};

use crate::carrier::{CarrierError, FrameCarrier, Traffic};
use crate::desired::Desired;
use crate::frame_counter::CounterStoreError;
use crate::frame_keys::FrameKeysError;
use crate::queue::QueueError;

/// The message of a window over frames without keys.
pub const NO_CONTEXT: &str = "no frame context: provision one with flotta-server provision, \
                              or list a tls link to receive one";

/// What a frame window did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameReport {
    /// The carrier's name (`udp`).
    pub carrier: &'static str,
    /// Frames sealed and sent (each under a new counter); over a carrier
    /// that answers at once, each was acknowledged.
    pub frames: u32,
    /// Over a carrier whose answers come later: frames of this or earlier
    /// windows acknowledged by answers received in this one.
    pub frames_acked: u32,
    /// Over a carrier whose answers come later: frames found lost (or
    /// given up) in this window; their records are sent again.
    pub frames_lost: u32,
    /// Over a carrier whose answers come later: frames still awaiting an
    /// ack when the window ended (their answer rides on a later uplink).
    pub frames_in_flight: u32,
    /// Received downlinks that were not a fresh answer (replays, forgeries,
    /// answers already superseded).
    pub answers_ignored: u32,
    /// Datagrams and bytes both ways, retransmissions and ignored ones included.
    pub traffic: Traffic,
    /// Queue records deleted after the server's acknowledgement (a summary
    /// counts every heartbeat it folds; discarded log lines are not).
    pub records_acked: u64,
    /// Heartbeats folded into summaries.
    pub heartbeats_folded: u32,
    /// Records left for a TLS window (larger than `udp.max_record_bytes`,
    /// or log lines below `udp.min_log_level` when a TLS carrier is
    /// configured).
    pub left_for_tls: u64,
    /// Log lines below `min_log_level` deleted unsent (no TLS carrier to
    /// take them): counted when the acknowledged prefix passed them.
    pub logs_discarded: u64,
    /// The policy's level, for the log line.
    pub min_log_level: MinLogLevel,
    /// A configuration received and stored.
    pub config_updated: Option<Desired>,
    /// A newer configuration waits for a TLS window.
    pub config_pending: Option<String>,
    /// The epoch a `Rekey` switched to.
    pub rekeyed_to_epoch: Option<u32>,
    /// The budget (duty cycle, fair use, credits) that held the rest of
    /// the window back: not a failure; what was not sent stays queued for
    /// a later window.
    pub held_back_by: Option<&'static str>,
}

/// Why a frame window ended early.
#[derive(Debug, thiserror::Error)]
pub enum FrameWindowError {
    /// No key material on the device.
    #[error("{NO_CONTEXT}")]
    NoContext,
    /// The key file could not be read or written.
    #[error(transparent)]
    Keys(#[from] FrameKeysError),
    /// No counter could be handed out.
    #[error("{0}")]
    Counter(ReserveError<CounterStoreError>),
    /// The carrier could not deliver a frame and bring its answer.
    #[error("{carrier}: {source}")]
    Carrier {
        /// The carrier's name.
        carrier: &'static str,
        /// What went wrong.
        source: CarrierError,
    },
    /// Packing or sealing failed.
    #[error("frame: {0}")]
    Frame(#[from] FrameError),
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The heartbeat groups file could not be written.
    #[error("frame/folds.bin: {0}")]
    Folds(std::io::Error),
    /// The in-flight ledger could not be written.
    #[error("frame/ledger.bin: {0}")]
    Ledger(std::io::Error),
    /// The state of an item coming in parts could not be written.
    #[error("frame/parts.bin: {0}")]
    Parts(std::io::Error),
}

impl FrameWindowError {
    /// Whether a later window may succeed without anyone's help.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::NoContext | Self::Frame(_) => false,
            Self::Keys(e) => e.is_retriable(),
            Self::Counter(ReserveError::Exhausted) => false,
            Self::Counter(ReserveError::Store(e)) => e.is_retriable(),
            Self::Carrier { source, .. } => source.is_retriable(),
            Self::Queue(e) => e.is_retriable(),
            Self::Folds(_) | Self::Ledger(_) | Self::Parts(_) => true,
        }
    }
}

/// The carrier's name, for errors.
fn carrier_error(carrier: &dyn FrameCarrier) -> impl FnOnce(CarrierError) -> FrameWindowError {
    let name = carrier.name();
    move |source| FrameWindowError::Carrier {
        carrier: name,
        source,
    }
}
