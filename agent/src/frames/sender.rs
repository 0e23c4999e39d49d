//! The device's sending side of sealed frames: the context built from the
//! keys on disk and its crash-safe counter reservation, kept between the
//! windows of one process (so a reservation is not skipped per window), and
//! rebuilt whenever the keys on disk change (a TLS window or a provisioning
//! replaced them) or a `Rekey` switches to a new epoch.

use std::collections::BTreeSet;
use std::path::Path;

use flotta_proto::frame::{CounterReserver, FrameContext, KeyId};
use flotta_proto::frame_keys::FrameKeys;

use super::FrameWindowError;
use crate::frame_counter::{DEFAULT_STEP, FileCounterStore, open_reserver};
use crate::frame_keys;

/// One frame context and its counters.
pub struct FrameSender {
    keys: FrameKeys,
    ctx: FrameContext,
    reserver: CounterReserver<FileCounterStore>,
}

impl std::fmt::Debug for FrameSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // FrameKeys' Debug shows the key id and epoch only.
        f.debug_struct("FrameSender")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl FrameSender {
    /// The sender of `keys` for `device_id`, its counters resumed from
    /// `<data_dir>/frame/counter-<key id>-<epoch>`.
    ///
    /// # Errors
    /// [`FrameWindowError::Keys`] if the context cannot be built,
    /// [`FrameWindowError::Counter`] if the counter file is unreadable or
    /// damaged.
    pub fn open(
        data_dir: &Path,
        device_id: &str,
        keys: FrameKeys,
    ) -> Result<Self, FrameWindowError> {
        let ctx = frame_keys::device_context(&keys, device_id)?;
        let reserver = open_reserver(data_dir, KeyId(keys.key_id), keys.epoch, DEFAULT_STEP)
            .map_err(FrameWindowError::Counter)?;
        Ok(Self {
            keys,
            ctx,
            reserver,
        })
    }

    /// The keys it was built from.
    pub fn keys(&self) -> &FrameKeys {
        &self.keys
    }

    /// The context that seals uplinks and opens answers.
    pub fn context(&self) -> &FrameContext {
        &self.ctx
    }

    /// The next counter, never handed out before under this context
    /// (persisted ahead, see `frame_counter.rs`).
    ///
    /// # Errors
    /// [`FrameWindowError::Counter`]: exhausted (rotate) or not persisted.
    pub fn take_counter(&mut self) -> Result<u32, FrameWindowError> {
        self.reserver.take().map_err(FrameWindowError::Counter)
    }
}

/// What frame windows keep between windows of one process.
#[derive(Debug, Default)]
pub struct FrameState {
    sender: Option<FrameSender>,
    /// Queue records the server acknowledged over frames (not deleted yet
    /// when an earlier record is not acknowledged, e.g. left for TLS): not
    /// sent again by this process. Pruned below the queue's acknowledgement.
    pub(crate) delivered: BTreeSet<u64>,
}

impl FrameState {
    /// The sender for the keys stored under `data_dir`, reused if they did
    /// not change.
    ///
    /// # Errors
    /// [`FrameWindowError::NoContext`] without keys; key file and counter
    /// errors.
    pub fn sender(
        &mut self,
        data_dir: &Path,
        device_id: &str,
    ) -> Result<&mut FrameSender, FrameWindowError> {
        let keys = frame_keys::load(data_dir)?.ok_or(FrameWindowError::NoContext)?;
        self.switch(data_dir, device_id, keys)
    }

    /// Use `keys` from now on (already stored durably by the caller).
    ///
    /// # Errors
    /// As [`FrameSender::open`].
    pub fn switch(
        &mut self,
        data_dir: &Path,
        device_id: &str,
        keys: FrameKeys,
    ) -> Result<&mut FrameSender, FrameWindowError> {
        if self.sender.as_ref().is_none_or(|s| s.keys != keys) {
            self.sender = None; // a failed open below must not keep the old one
            self.sender = Some(FrameSender::open(data_dir, device_id, keys)?);
        }
        self.sender.as_mut().ok_or(FrameWindowError::NoContext)
    }

    /// The sender [`sender`](Self::sender) or [`switch`](Self::switch)
    /// chose last.
    ///
    /// # Errors
    /// [`FrameWindowError::NoContext`] if there is none.
    pub fn current(&mut self) -> Result<&mut FrameSender, FrameWindowError> {
        self.sender.as_mut().ok_or(FrameWindowError::NoContext)
    }

    /// Forget delivered records the queue no longer holds (acknowledged
    /// through `acked`).
    pub(crate) fn prune(&mut self, acked: Option<u64>) {
        if let Some(a) = acked {
            self.delivered = self.delivered.split_off(&a.saturating_add(1));
        }
    }
}
