//! Errors of the sealed-frame service: [`FramesError`] (something the server
//! could not do) and [`FrameDrop`] (why a datagram got no answer, with the
//! `result` label it is counted under in `flotta_frames_total`).

use flotta_proto::frame::FrameError;

use crate::store::StoreError;

/// Something the frame service could not do.
#[derive(Debug, thiserror::Error)]
pub enum FramesError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operating system's random number generator failed.
    #[error("no randomness for new frame keys")]
    Random,
    /// The downlink counters of an epoch are used up (2^24 answers): it
    /// must be rotated.
    #[error("downlink frame counters exhausted: the context must be rotated")]
    CounterExhausted,
    /// The device's configuration could not be read for the answer.
    #[error("{0}")]
    Config(String),
    /// A stored context does not derive, or an answer does not seal.
    #[error("frame: {0}")]
    Frame(#[from] FrameError),
}

impl FramesError {
    /// Whether the same operation may succeed later.
    pub fn is_retriable(&self) -> bool {
        match self {
            FramesError::Store(e) => e.is_retriable(),
            FramesError::Random | FramesError::Config(_) => true,
            FramesError::CounterExhausted | FramesError::Frame(_) => false,
        }
    }
}

/// Why a datagram got no answer (or its frame was not stored).
#[derive(Debug, thiserror::Error)]
pub enum FrameDrop {
    /// Not a well-formed uplink frame with a key id.
    #[error("malformed: {0}")]
    Malformed(String),
    /// An authenticated frame whose plaintext holds an invalid item, or
    /// whose fragments were refused: nothing of it is stored (counted
    /// `malformed`, but not against its source: it is a device's frame).
    #[error("refused: {0}")]
    Refused(String),
    /// No device has the key id.
    #[error("unknown key id {0}")]
    UnknownKey(String),
    /// The frame's key id is not the device its network address is bound to.
    #[error("wrong device: {0}")]
    WrongDevice(String),
    /// The network address (an IMEI) is bound to no device.
    #[error("{0} is bound to no device")]
    Unbound(String),
    /// The epoch parity bit matches no context of the key id.
    #[error("no context of key id {0} has this epoch parity")]
    EpochMismatch(String),
    /// The tag does not verify.
    #[error("authentication failed for key id {0}")]
    BadTag(String),
    /// The counter is below the replay window.
    #[error("counter {0} is below the replay window")]
    TooOld(u32),
    /// The server failed (store, counters): the device retries.
    #[error(transparent)]
    Failed(#[from] FramesError),
}

impl FrameDrop {
    /// The `result` label of `flotta_frames_total`.
    pub fn label(&self) -> &'static str {
        match self {
            FrameDrop::Malformed(_) | FrameDrop::Refused(_) => "malformed",
            FrameDrop::UnknownKey(_) => "unknown_key",
            FrameDrop::WrongDevice(_) => "wrong_device",
            FrameDrop::Unbound(_) => "unbound",
            FrameDrop::EpochMismatch(_) => "epoch_mismatch",
            FrameDrop::BadTag(_) => "bad_tag",
            FrameDrop::TooOld(_) => "too_old",
            FrameDrop::Failed(_) => "overloaded",
        }
    }

    /// Whether the datagram counts against its source's failure budget:
    /// anything that is not a frame of a device (a refused or too old frame
    /// is authentic, and a server failure is not the sender's).
    pub fn is_source_failure(&self) -> bool {
        !matches!(
            self,
            FrameDrop::Refused(_) | FrameDrop::TooOld(_) | FrameDrop::Failed(_)
        )
    }

    /// Whether sending the same datagram again may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, FrameDrop::Failed(e) if e.is_retriable())
    }
}

impl From<StoreError> for FrameDrop {
    fn from(e: StoreError) -> Self {
        FrameDrop::Failed(FramesError::Store(e))
    }
}
