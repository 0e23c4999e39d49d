//! Frame keys: made here (random key id, secret and salt), kept in the
//! store, rotated when old, revoked with the device; and a bounded
//! in-memory cache of the server-side [`FrameContext`]s derived from them,
//! by key id, with each epoch's downlink [`CounterReserver`].
//!
//! The cache is an optimisation only: the frame's store transaction checks
//! that its context still exists, so a stale entry can at worst cost a
//! wasted decryption. It is invalidated whenever this process rotates,
//! drops or revokes a context, and when the store reports one gone.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};

use flotta_proto::frame::{CounterReserver, FrameContext, KeyId, ReserveError, Role};
use flotta_proto::frame_keys::FrameKeys;
use ring::rand::{SecureRandom, SystemRandom};

use super::FramesError;
use super::counter::{DOWN_COUNTER_STEP, StoreCounter};
use crate::device_id::DeviceId;
use crate::store::{Store, StoreError, StoredFrameContext};

/// Bytes of the master salt the server makes.
pub const SALT_LEN: usize = 8;
/// A context whose uplink or downlink counters reach this is rotated
/// however young it is: 2^20 counters (a million frames) remain in each
/// direction to deliver and start using the new epoch, never a wrap.
pub const ROTATE_AT_COUNTER: u32 = (1 << 24) - (1 << 20);
/// Attempts at a free key id before giving up (2^32 ids: one is plenty).
const KEY_ID_ATTEMPTS: usize = 8;

/// Random bytes from the operating system.
fn random<const N: usize>() -> Result<[u8; N], FramesError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| FramesError::Random)?;
    Ok(out)
}

/// A new context's material: random key id, master secret and salt.
pub fn fresh_keys(epoch: u32) -> Result<FrameKeys, FramesError> {
    Ok(FrameKeys {
        key_id: random::<4>()?,
        epoch,
        master_secret: random::<32>()?,
        master_salt: random::<SALT_LEN>()?.to_vec(),
    })
}

/// One epoch of a cached key: its material and the derived server context.
pub struct CachedEpoch {
    /// The material.
    pub keys: FrameKeys,
    /// The server's context (opens uplinks, seals answers).
    pub context: FrameContext,
    down: Mutex<Option<CounterReserver<StoreCounter>>>,
}

impl std::fmt::Debug for CachedEpoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedEpoch")
            .field("keys", &self.keys)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// A key id's device and its epochs, newest first.
#[derive(Debug)]
pub struct CachedKey {
    /// The device the key id belongs to.
    pub device_id: DeviceId,
    /// Its epochs, newest first (at most two).
    pub epochs: Vec<CachedEpoch>,
}

#[derive(Debug, Default)]
struct Cache {
    map: HashMap<[u8; 4], Arc<CachedKey>>,
    /// Insertion order, for eviction (may name keys no longer cached).
    order: VecDeque<[u8; 4]>,
}

/// Frame keys of every device: creation, rotation, revocation and the
/// cache of derived contexts.
#[derive(Debug)]
pub struct FrameKeyring {
    store: Arc<dyn Store>,
    cache: Mutex<Cache>,
    capacity: usize,
    rotation_ms: u64,
}

impl FrameKeyring {
    /// A keyring over `store`, caching at most `capacity` key ids, rotating
    /// contexts older than `rotation`.
    pub fn new(store: Arc<dyn Store>, capacity: usize, rotation: std::time::Duration) -> Self {
        Self {
            store,
            cache: Mutex::new(Cache::default()),
            capacity: capacity.max(1),
            rotation_ms: u64::try_from(rotation.as_millis()).unwrap_or(u64::MAX),
        }
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached key, or what the store has (then cached); `None` when no
    /// device has `key_id`.
    ///
    /// # Errors
    /// Store errors; a stored context that does not derive.
    pub fn lookup(&self, key_id: [u8; 4]) -> Result<Option<Arc<CachedKey>>, FramesError> {
        if let Some(hit) = self.cache().map.get(&key_id) {
            return Ok(Some(hit.clone()));
        }
        let contexts = self.store.frame_contexts_by_key(key_id)?;
        let Some(device_id) = contexts.first().map(|c| c.device_id.clone()) else {
            return Ok(None);
        };
        let epochs = contexts
            .into_iter()
            .map(|c| derive(&c))
            .collect::<Result<Vec<_>, _>>()?;
        let entry = Arc::new(CachedKey { device_id, epochs });
        let mut cache = self.cache();
        while cache.map.len() >= self.capacity {
            let Some(old) = cache.order.pop_front() else {
                break;
            };
            cache.map.remove(&old);
        }
        cache.map.insert(key_id, entry.clone());
        cache.order.push_back(key_id);
        if cache.order.len() > 2 * self.capacity {
            let Cache { map, order } = &mut *cache;
            order.retain(|k| map.contains_key(k));
        }
        Ok(Some(entry))
    }

    /// Forget the cached contexts of `key_id` (rotated, dropped, gone).
    pub fn invalidate(&self, key_id: [u8; 4]) {
        self.cache().map.remove(&key_id);
    }

    /// Forget every cached context of `id` (its keys were revoked in the
    /// store).
    pub fn revoke(&self, id: &DeviceId) {
        self.cache().map.retain(|_, k| k.device_id != *id);
    }

    /// The device's current keys: made on first use, rotated when due (see
    /// [`FrameKeyring::rotate_if_due`]).
    ///
    /// # Errors
    /// Store errors ([`StoreError::DeviceNotFound`] included); no randomness.
    pub fn current(&self, id: &DeviceId, now_ms: u64) -> Result<FrameKeys, FramesError> {
        let contexts = self.store.frame_contexts(id)?;
        let newest = match contexts.first() {
            Some(c) => c.clone(),
            None => self.create(id, now_ms)?,
        };
        let rotated = self.rotate_if_due(&newest, contexts.len() > 1, now_ms)?;
        Ok(rotated.unwrap_or(newest).keys)
    }

    fn create(&self, id: &DeviceId, now_ms: u64) -> Result<StoredFrameContext, FramesError> {
        let mut last = None;
        for _ in 0..KEY_ID_ATTEMPTS {
            match self.store.create_frame_context(id, &fresh_keys(0)?, now_ms) {
                Ok(c) => return Ok(c),
                Err(e @ StoreError::Conflict(_)) => last = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last
            .unwrap_or_else(|| StoreError::Conflict("no free frame key id".into()))
            .into())
    }

    /// Give `newest` a successor epoch if it is older than the rotation
    /// period or its counters reached [`ROTATE_AT_COUNTER`] in either
    /// direction, and no older epoch is still kept (the device has not used
    /// the newest yet: two epochs of one parity must never be held at
    /// once). Returns the new newest context when it rotated.
    ///
    /// # Errors
    /// Store errors; no randomness.
    pub fn rotate_if_due(
        &self,
        newest: &StoredFrameContext,
        previous_kept: bool,
        now_ms: u64,
    ) -> Result<Option<StoredFrameContext>, FramesError> {
        let old = newest.created_ms.saturating_add(self.rotation_ms) <= now_ms;
        let spent = newest.down_next.unwrap_or(0) >= ROTATE_AT_COUNTER
            || newest
                .window
                .is_some_and(|(highest, _)| highest >= ROTATE_AT_COUNTER);
        if previous_kept || !(old || spent) {
            return Ok(None);
        }
        let material = fresh_keys(newest.keys.epoch)?;
        let rotated = self.store.rotate_frame_context(
            &newest.device_id,
            newest.keys.epoch,
            &material.master_secret,
            &material.master_salt,
            now_ms,
        )?;
        self.invalidate(newest.keys.key_id);
        tracing::info!(device = %newest.device_id, key_id = %newest.keys.key_id_hex(),
            epoch = rotated.keys.epoch, counters_spent = spent, "frame context rotated");
        Ok(Some(rotated))
    }

    /// A downlink counter of `epoch`, never handed out before, whatever
    /// restarted or raced in between.
    ///
    /// # Errors
    /// [`FramesError::CounterExhausted`]; store errors.
    pub fn down_counter(&self, epoch: &CachedEpoch) -> Result<u32, FramesError> {
        let mut slot = epoch.down.lock().unwrap_or_else(|e| e.into_inner());
        let step = NonZeroU32::new(DOWN_COUNTER_STEP).unwrap_or(NonZeroU32::MIN);
        // A conflict means another reserver moved the store on: reload once.
        for _ in 0..2 {
            if slot.is_none() {
                let counter =
                    StoreCounter::new(self.store.clone(), epoch.keys.key_id, epoch.keys.epoch);
                *slot = Some(CounterReserver::open(counter, step).map_err(reserve_error)?);
            }
            let Some(reserver) = slot.as_mut() else {
                continue;
            };
            match reserver.take() {
                Ok(c) => return Ok(c),
                Err(ReserveError::Store(StoreError::Conflict(m))) => {
                    tracing::debug!("downlink counter reservation raced: {m}; reloading");
                    *slot = None;
                }
                Err(e) => return Err(reserve_error(e)),
            }
        }
        Err(StoreError::Conflict("downlink counter reservation keeps conflicting".into()).into())
    }
}

fn reserve_error(e: ReserveError<StoreError>) -> FramesError {
    match e {
        ReserveError::Exhausted => FramesError::CounterExhausted,
        ReserveError::Store(e) => FramesError::Store(e),
    }
}

/// The server's context of a stored epoch.
fn derive(c: &StoredFrameContext) -> Result<CachedEpoch, FramesError> {
    let context = FrameContext::new(
        Role::Server,
        KeyId(c.keys.key_id),
        c.keys.epoch,
        &c.keys.master_secret,
        &c.keys.master_salt,
        c.device_id.as_str().as_bytes(),
    )?;
    Ok(CachedEpoch {
        keys: c.keys.clone(),
        context,
        down: Mutex::new(None),
    })
}
