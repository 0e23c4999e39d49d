//! The sender's frame counter, crash-safe: reserved ahead in blocks, as
//! RFC 8613 Appendix B.1.1 suggests, so that no counter (and so no nonce) is
//! ever used twice under one context, whenever the process dies.
//!
//! Before handing out counters `n .. n + step`, [`CounterReserver`] makes
//! the [`CounterStore`] persist "next free = n + step". After a crash the
//! reserver resumes at the persisted value: every counter used before it is
//! below it, and at most `step - 1` counters are skipped per crash (those
//! reserved but not used). With `step` = 16 and one frame a minute, the agent
//! writes its counter file once every 16 minutes.
//!
//! Pure logic: the agent implements [`CounterStore`] with an fsynced file
//! (one per context: a new epoch starts a new store at 0).

use core::fmt;
use core::num::NonZeroU32;

use super::COUNTER_MAX;

/// Durable storage of the "next free counter" of one sending context.
pub trait CounterStore {
    /// What went wrong in storage.
    type Error;

    /// The last value [`store`](Self::store) persisted, or `None` if it
    /// never did (a fresh context).
    ///
    /// # Errors
    /// Storage errors; the reserver then refuses to start.
    fn load(&mut self) -> Result<Option<u32>, Self::Error>;

    /// Persist `next_free` durably (fsync) before returning `Ok`. A crash
    /// during the call must leave either the old or the new value.
    ///
    /// # Errors
    /// Storage errors; the reserver then hands out no counter.
    fn store(&mut self, next_free: u32) -> Result<(), Self::Error>;
}

/// Why no counter could be handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReserveError<E> {
    /// All 2^24 counters of this context are used: rotate to a new epoch.
    Exhausted,
    /// The store failed: nothing was handed out.
    Store(E),
}

impl<E: fmt::Display> fmt::Display for ReserveError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exhausted => f.write_str("frame counters exhausted: rotate the context"),
            Self::Store(e) => write!(f, "cannot persist the frame counter: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for ReserveError<E> {}

/// Hands out frame counters, persisting a reservation ahead of use.
#[derive(Debug)]
pub struct CounterReserver<S> {
    store: S,
    /// The next counter to hand out.
    next: u32,
    /// The persisted reservation: counters below it may be handed out.
    limit: u32,
    step: NonZeroU32,
}

impl<S: CounterStore> CounterReserver<S> {
    /// Resume from `store`: the first counter handed out is the persisted
    /// value (0 for a fresh context). Nothing is written until the first
    /// [`take`](Self::take).
    ///
    /// # Errors
    /// [`ReserveError::Store`] if loading fails.
    pub fn open(mut store: S, step: NonZeroU32) -> Result<Self, ReserveError<S::Error>> {
        let next = store.load().map_err(ReserveError::Store)?.unwrap_or(0);
        Ok(Self {
            store,
            next,
            limit: next,
            step,
        })
    }

    /// The next counter, never handed out before by this context, whatever
    /// crashed in between. Persists a new reservation first when the current
    /// one is used up.
    ///
    /// # Errors
    /// [`ReserveError::Exhausted`] past [`COUNTER_MAX`];
    /// [`ReserveError::Store`] if the reservation cannot be persisted (then
    /// nothing is handed out and the next call tries again).
    pub fn take(&mut self) -> Result<u32, ReserveError<S::Error>> {
        if self.next > COUNTER_MAX {
            return Err(ReserveError::Exhausted);
        }
        if self.next >= self.limit {
            let limit = self
                .next
                .saturating_add(self.step.get())
                .min(COUNTER_MAX + 1);
            self.store.store(limit).map_err(ReserveError::Store)?;
            self.limit = limit;
        }
        let counter = self.next;
        self.next += 1;
        Ok(counter)
    }

    /// How many counters this context has left (time to rotate when low).
    #[must_use]
    pub const fn remaining(&self) -> u32 {
        (COUNTER_MAX + 1).saturating_sub(self.next)
    }

    /// The store, for inspection.
    pub const fn store(&self) -> &S {
        &self.store
    }
}
