//! Transactions with retries: every store call runs in one SERIALIZABLE
//! transaction on a pooled connection, retried whole on a serialization
//! failure (40001), a deadlock (40P01) or a unique violation a concurrent
//! transaction caused (23505; the retry sees that row and answers as SQLite
//! would), at most [`ATTEMPTS`] times with short jittered sleeps. Other
//! errors roll the transaction back and are returned; see
//! [`StoreError::is_retriable`] for what the caller may retry (a lost
//! connection, a pool time-out).
//!
//! SERIALIZABLE makes concurrent replicas behave as SQLite's single writer
//! did: any interleaving that could differ from running the transactions
//! one after the other fails and is retried.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postgres::{IsolationLevel, NoTls, Transaction};
use r2d2_postgres::PostgresConnectionManager;

use crate::store::StoreError;

/// The connection pool, closed off the async runtime when dropped:
/// rust-postgres closes a connection by blocking on a runtime of its own,
/// which panics on a tokio worker thread, and the server drops its last
/// store handle there when it shuts down.
#[derive(Debug)]
pub(super) struct Pool(Option<r2d2::Pool<PostgresConnectionManager<NoTls>>>);

impl Pool {
    pub(super) fn new(pool: r2d2::Pool<PostgresConnectionManager<NoTls>>) -> Self {
        Self(Some(pool))
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

/// Run `f` in a SERIALIZABLE transaction and commit, retrying conflicts.
/// `f` may run several times: it must only touch the transaction.
pub(super) fn run<T>(
    pool: &Pool,
    mut f: impl FnMut(&mut Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut attempt = 0;
    loop {
        let mut conn = pool.get()?;
        let result = (|| {
            let mut tx = conn
                .build_transaction()
                .isolation_level(IsolationLevel::Serializable)
                .start()?;
            let value = f(&mut tx)?;
            tx.commit()?;
            Ok(value)
        })();
        match result {
            Err(e) if conflict(&e) && attempt + 1 < ATTEMPTS => {
                attempt += 1;
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
