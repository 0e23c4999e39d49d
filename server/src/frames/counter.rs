//! The server's downlink counters, never reused across restarts: a
//! [`CounterStore`] over the [`Store`] (column `frame_contexts.down_next`),
//! so `CounterReserver` persists each block of counters, in one committed
//! and fsynced write, before it hands any of them out.
//!
//! The write is a compare-and-set on the value this reserver loaded or last
//! wrote: should two reservers of one context ever exist (a cache entry
//! replaced while an answer was being sealed), the second write fails
//! instead of handing out the same block twice, and the loser reloads.

use std::sync::Arc;

use flotta_proto::frame::CounterStore;

use crate::store::{Store, StoreError};

/// Counters reserved per store write: one write per 16 answers; a restart
/// skips fewer than 16.
pub const DOWN_COUNTER_STEP: u32 = 16;

/// The downlink counter reservation of one (key id, epoch), in the store.
#[derive(Debug, Clone)]
pub struct StoreCounter {
    store: Arc<dyn Store>,
    key_id: [u8; 4],
    epoch: u32,
    /// What the store holds, as far as this reserver knows.
    seen: Option<u32>,
}

impl StoreCounter {
    /// The reservation of `key_id` at `epoch`.
    pub fn new(store: Arc<dyn Store>, key_id: [u8; 4], epoch: u32) -> Self {
        Self {
            store,
            key_id,
            epoch,
            seen: None,
        }
    }
}

impl CounterStore for StoreCounter {
    type Error = StoreError;

    fn load(&mut self) -> Result<Option<u32>, StoreError> {
        let contexts = self.store.frame_contexts_by_key(self.key_id)?;
        let ctx = contexts
            .into_iter()
            .find(|c| c.keys.epoch == self.epoch)
            .ok_or_else(|| {
                StoreError::Conflict(format!(
                    "frame context {}/{} is gone",
                    flotta_proto::frame_keys::hex(&self.key_id),
                    self.epoch
                ))
            })?;
        self.seen = ctx.down_next;
        Ok(ctx.down_next)
    }

    fn store(&mut self, next_free: u32) -> Result<(), StoreError> {
        self.store
            .reserve_frame_counters(self.key_id, self.epoch, self.seen, next_free)?;
        self.seen = Some(next_free);
        Ok(())
    }
}
