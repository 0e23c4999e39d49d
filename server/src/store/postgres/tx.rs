//! Transactions with retries: every store call runs in one transaction on a
//! pooled connection, at the [`Isolation`] it needs, retried whole on a serialization
//! failure (40001), a deadlock (40P01) or a unique violation a concurrent
//! transaction caused (23505; the retry sees that row and answers as SQLite
//! would), at most [`ATTEMPTS`] times with short jittered sleeps. Other
//! errors roll the transaction back and are returned; see
//! [`StoreError::is_retriable`] for what the caller may retry (a lost
//! connection, a pool time-out).
//!
//! SERIALIZABLE makes concurrent replicas behave as SQLite's single writer
//! did: any interleaving that could differ from running the transactions
//! one after the other fails and is retried. It is kept for the
//! transactions that read several rows and write on what they read without
//! locking it (configuration versions, frames and their replay windows,
//! link bindings, decommissioning). It is not free: its predicate (SIREAD)
//! locks are taken on B-tree *pages*, so two transactions that look up or
//! update *different* devices whose keys share a leaf page (`dev-000001`,
//! `dev-000002`) form a read-write cycle and one of them fails; under load
//! that cost the fleet benchmark 503s and exhausted the retries of 8
//! concurrent enrolments. Calls that are one statement, or whose every
//! read-then-write is on a row they lock first (`FOR UPDATE`, or the
//! `UPDATE` itself), run READ COMMITTED ([`Isolation::Locked`],
//! [`Isolation::Read`]): they take no predicate locks and never fail to
//! serialize. A READ COMMITTED writer is invisible to SSI, so each of them
//! must be correct on its own; the call's docs say why it is.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postgres::{IsolationLevel, NoTls, Transaction};
use r2d2_postgres::PostgresConnectionManager;

use crate::store::StoreError;

/// The connection pool, closed off the async runtime when dropped:
/// rust-postgres closes a connection by blocking on a runtime of its own,
/// which panics on a tokio worker thread, and the server drops its last
/// store handle there when it shuts down.
/// It also counts the attempts its transactions made again after a
/// conflict ([`Pool::retried`]).
#[derive(Debug)]
pub(super) struct Pool(
    Option<r2d2::Pool<PostgresConnectionManager<NoTls>>>,
    AtomicU64,
);

impl Pool {
    pub(super) fn new(pool: r2d2::Pool<PostgresConnectionManager<NoTls>>) -> Self {
        Self(Some(pool), AtomicU64::new(0))
    }

    /// Transactions run again after a conflict (40001, 40P01, 23505), since
    /// the pool was made.
    pub(super) fn retried(&self) -> u64 {
        self.1.load(Ordering::Relaxed)
    }
}

impl std::ops::Deref for Pool {
    type Target = r2d2::Pool<PostgresConnectionManager<NoTls>>;

    fn deref(&self) -> &Self::Target {
        // Only `drop` takes it out.
        self.0.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let Some(pool) = self.0.take() else { return };
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let (give, take) = std::sync::mpsc::channel();
        let closer = std::thread::Builder::new()
            .name("postgres-close".into())
            .spawn(move || drop(take.recv()));
        match closer {
            Ok(_) => {
                let _ = give.send(pool);
            }
            Err(e) => {
                // No thread to close them on: leak the connections rather
                // than panic; PostgreSQL notices the sockets close with the
                // process.
                tracing::warn!("closing the PostgreSQL pool: {e}");
                std::mem::forget(pool);
            }
        }
    }
}

/// Attempts of one transaction before its serialization failure is
/// returned (retriable) to the caller.
pub(super) const ATTEMPTS: u32 = 10;

/// Whether the whole transaction should run again at once.
fn conflict(e: &StoreError) -> bool {
    let StoreError::Postgres(e) = e else {
        return false;
    };
    e.code()
        .is_some_and(|c| matches!(c.code(), "40001" | "40P01" | "23505"))
}

/// A few milliseconds, growing with `attempt`, with jitter so that two
/// racing replicas do not collide again.
fn backoff(attempt: u32) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let base = 2u64 << attempt.min(5);
    Duration::from_micros(base * 1000 + u64::from(nanos % 4000))
}

/// How a call's transaction is isolated from concurrent ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Isolation {
    /// SERIALIZABLE: reads and writes that must behave as if alone.
    Serializable,
    /// READ COMMITTED, writing: every statement is atomic on its own and
    /// any read-then-write is on a row locked first (`FOR UPDATE`, or an
    /// `UPDATE` whose `WHERE` PostgreSQL re-checks on the newest version).
    Locked,
    /// READ COMMITTED READ ONLY: a single-statement read (its snapshot is
    /// the statement's).
    Read,
    /// REPEATABLE READ READ ONLY: several reads that must share one snapshot
    /// (the change feed's cursor is that snapshot).
    Snapshot,
}

/// Run `f` in a SERIALIZABLE transaction and commit, retrying conflicts.
/// `f` may run several times: it must only touch the transaction.
pub(super) fn run<T>(
    pool: &Pool,
    f: impl FnMut(&mut Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    run_at(pool, Isolation::Serializable, f)
}

/// A single-statement read at READ COMMITTED ([`Isolation::Read`]).
pub(super) fn read<T>(
    pool: &Pool,
    f: impl FnMut(&mut Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    run_at(pool, Isolation::Read, f)
}

/// Run `f` in a transaction at `isolation` and commit, retrying conflicts.
/// `f` may run several times: it must only touch the transaction.
pub(super) fn run_at<T>(
    pool: &Pool,
    isolation: Isolation,
    mut f: impl FnMut(&mut Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let (level, read_only) = match isolation {
        Isolation::Serializable => (IsolationLevel::Serializable, false),
        Isolation::Locked => (IsolationLevel::ReadCommitted, false),
        Isolation::Read => (IsolationLevel::ReadCommitted, true),
        Isolation::Snapshot => (IsolationLevel::RepeatableRead, true),
    };
    let mut attempt = 0;
    loop {
        let mut conn = pool.get()?;
        let result = (|| {
            let mut tx = conn
                .build_transaction()
                .isolation_level(level)
                .read_only(read_only)
                .start()?;
            let value = f(&mut tx)?;
            tx.commit()?;
            Ok(value)
        })();
        match result {
            Err(e) if conflict(&e) && attempt + 1 < ATTEMPTS => {
                attempt += 1;
                pool.1.fetch_add(1, Ordering::Relaxed);
                drop(conn);
                std::thread::sleep(backoff(attempt));
            }
            Err(StoreError::Postgres(e)) if e.code().is_some_and(|c| c.code() == "23505") => {
                // A unique violation that outlived the retries is a
                // conflict the caller may read again and retry.
                return Err(StoreError::Conflict(e.to_string()));
            }
            other => return other,
        }
    }
}
