//! Which replica runs controller passes. Any replica serves any device
//! (enrolment, registration, batches, frames: all through the shared store);
//! the periodic and change-driven controller passes run on one leader at a
//! time, so two replicas never compute the same configuration versions or
//! status writes at once.
//!
//! - [`Alone`]: one server (SQLite, or a single replica): always leader.
//! - [`AdvisoryLock`] (`advisory_lock.rs`): replicas on PostgreSQL hold a
//!   session-level advisory lock on a connection of their own; the replica
//!   holding it leads. A leader that dies (kill -9, a crash, a lost node)
//!   loses its session and with it the lock, and a follower takes over
//!   within `leader_check_interval_ms`; a leader that loses its connection
//!   stops leading at once.
//!
//! No Kubernetes Lease: replicas need PostgreSQL, so the lock is always
//! there, and it fences on the database the controller writes to (see the
//! server README, "Replicas").

mod advisory_lock;

use std::fmt::Debug;

pub use advisory_lock::{AdvisoryLock, LOCK_KEY, LeaderError};

/// Whether this replica leads.
pub trait Leadership: Debug + Send + Sync {
    /// Whether this replica may run controller passes now.
    fn is_leader(&self) -> bool;

    /// How many times this replica became leader: a change means a new
    /// term, after which what the controller kept in memory may be stale.
    fn term(&self) -> u64 {
        0
    }
}

/// A server without replicas: always the leader.
#[derive(Debug, Clone, Copy, Default)]
pub struct Alone;

impl Leadership for Alone {
    fn is_leader(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests;
