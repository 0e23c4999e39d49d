//! What the store keeps of sealed frames (issue 10, `proto/FRAMES.md`):
//! per device a key id unique server-wide and, per epoch (the current one
//! and at most one previous), the key material, the uplink replay window and
//! the downlink counter reservation; fragments of records still incomplete;
//! the link the device last used and its frame counts.
//!
//! [`FrameWrite`] is everything one authenticated uplink frame asks the
//! store to do, in one transaction ([`crate::store::Store::ingest_frame`]).

use flotta_proto::frame_keys::FrameKeys;
use flotta_proto::record::RecordClass;

use super::{NewRecord, StatusUpdate};
use crate::device_id::DeviceId;
use crate::frames::reassembly::{FragmentLimits, NewFragment, Refusal};

/// One epoch of a device's frame context, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredFrameContext {
    /// The device it belongs to.
    pub device_id: DeviceId,
    /// Key id, epoch, master secret and salt.
    pub keys: FrameKeys,
    /// When it was made (ms since the Unix epoch): rotation is due
    /// `frame_rotation_days` later.
    pub created_ms: u64,
    /// The uplink replay window ([`flotta_proto::frame::ReplayWindow::parts`]).
    pub window: Option<(u32, u64)>,
    /// The downlink counters reserved so far (the next free one), `None`
    /// before the first reservation.
    pub down_next: Option<u32>,
}

impl std::fmt::Debug for StoredFrameContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredFrameContext")
            .field("device_id", &self.device_id)
            .field("keys", &self.keys)
            .field("created_ms", &self.created_ms)
            .field("window", &self.window)
            .field("down_next", &self.down_next)
            .finish()
    }
}

/// One authenticated, decoded uplink frame to store.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameWrite {
    /// The context's key id.
    pub key_id: [u8; 4],
    /// The epoch the frame was opened under.
    pub epoch: u32,
    /// The frame's counter.
    pub counter: u32,
    /// Whole records (checked as the batch route checks them).
    pub records: Vec<NewRecord>,
    /// The status update of the newest heartbeat among them.
    pub status: Option<StatusUpdate>,
    /// Fragments, in the order the frame carried them.
    pub fragments: Vec<NewFragment>,
    /// Reassembly bounds.
    pub limits: FragmentLimits,
    /// Duplicates of this key id answered without the store since its last
    /// frame (added to the device's duplicate count with this one).
    pub earlier_duplicates: u64,
    /// The link it came over (`udp`, `sbd`, `lorawan`): the device's `last_link`.
    pub link: &'static str,
    /// The SBD facts of the MO that carried it (written when fresh).
    pub sbd: Option<super::SbdUplink>,
    /// The LoRaWAN facts of the uplink (LoRaWAN only).
    pub lorawan: Option<super::LoraUplinkFacts>,
    /// What the frame adds to the device's statistics of `link` on the UTC
    /// day of the write (`link_days.rs`), in the frame's transaction when
    /// it is fresh or a duplicate (nothing when refused).
    pub usage: super::LinkUsage,
}

/// What the store made of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameVerdict {
    /// Fresh: its records and fragments are stored and its counter marked.
    Stored {
        /// Classes of the records its fragments completed.
        completed: Vec<RecordClass>,
    },
    /// Its counter was marked before: nothing stored (acknowledge again).
    Duplicate,
    /// Its counter is below the replay window: nothing stored, no answer.
    TooOld,
    /// The context (key id and epoch) no longer exists: rotated away or
    /// revoked. Nothing stored.
    UnknownContext,
    /// Its fragments were refused: nothing stored, nothing marked.
    Refused(Refusal),
}

/// The outcome of [`crate::store::Store::ingest_frame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameIngested {
    /// What happened to the frame.
    pub verdict: FrameVerdict,
    /// The replay window of the frame's epoch after the transaction.
    pub window: Option<(u32, u64)>,
    /// The device's newest context after the transaction (for `Rekey` and
    /// rotation); `None` when the key id is gone.
    pub newest: Option<StoredFrameContext>,
    /// Whether an epoch older than the newest is still kept.
    pub previous_kept: bool,
}

/// The sealed-frame facts `describe edgedevice` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameLinkStatus {
    /// The link the device last used: `tls`, `udp`, `sbd` or `lorawan`.
    pub last_link: Option<String>,
    /// Key id of its context.
    pub key_id: Option<[u8; 4]>,
    /// Its newest epoch.
    pub epoch: Option<u32>,
    /// The highest uplink counter accepted under the newest epoch.
    pub highest_uplink_counter: Option<u32>,
    /// The downlink counters of the newest epoch reserved so far (every
    /// answer sealed under it had a lower one; blocks of 16).
    pub downlink_counter: Option<u32>,
    /// Frames stored.
    pub frames_stored: u64,
    /// Frames received again (re-acknowledged, not stored).
    pub frames_duplicate: u64,
}
