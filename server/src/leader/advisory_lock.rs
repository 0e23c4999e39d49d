//! Leadership by a PostgreSQL session-level advisory lock
//! (`pg_try_advisory_lock`), held on a connection of its own (not the
//! store's pool) by one thread: it tries to take the lock every
//! `check_interval`, and while it holds it, checks every `check_interval`
//! that the session is alive (`SELECT 1` under a statement timeout). The
//! lock lives exactly as long as the session: PostgreSQL releases it when the
//! leader's connection ends (a killed process's socket closes at once), and
//! the leader stops leading when a check fails.
//!
//! What it does not cover: a leader cut off from PostgreSQL by the network
//! (not killed) keeps its session until the server's TCP keepalive notices
//! (`tcp_keepalives_idle` on the PostgreSQL server; its default is hours).
//! It stops leading itself within a check, but no follower takes over until
//! then. Set the server's keepalives low where partitions happen.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Leadership;

/// The advisory lock's key: "flotta" and 1 (the controller) in one i64.
pub const LOCK_KEY: i64 = 0x666c_6f74_7461_0001;

/// The lock could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// `postgres_url` does not parse.
    #[error("postgres_url: {0}")]
    Url(String),
    /// The thread could not be started.
    #[error("leader election thread: {0}")]
    Thread(#[from] std::io::Error),
}

impl LeaderError {
    /// Whether trying again may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, LeaderError::Thread(_))
    }
}

/// Leadership by advisory lock (module docs).
#[derive(Debug)]
pub struct AdvisoryLock {
    held: Arc<AtomicBool>,
    terms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AdvisoryLock {
    /// Start contending for the lock on the database of `url`, looking every
    /// `check_interval`.
    pub fn start(url: &str, check_interval: Duration) -> Result<Self, LeaderError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| LeaderError::Url(e.to_string()))?;
        let timeout = check_interval.max(Duration::from_secs(1)) * 2;
        config
            .connect_timeout(timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(5))
            .tcp_user_timeout(timeout)
            .application_name("flotta-server leader election")
            .options(&format!("-c statement_timeout={}", timeout.as_millis()));
        let held = Arc::new(AtomicBool::new(false));
        let terms = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let state = State {
            held: held.clone(),
            terms: terms.clone(),
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("leader-election".into())
            .spawn(move || contend(&config, check_interval, &state))?;
        Ok(Self {
            held,
            terms,
            stop,
            thread: Some(thread),
        })
    }
}

impl AdvisoryLock {
    /// How many times this replica took the lead so far.
    pub fn terms(&self) -> u64 {
        self.terms.load(Ordering::SeqCst)
    }
}

impl Leadership for AdvisoryLock {
    fn is_leader(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }

    fn term(&self) -> u64 {
        self.terms()
    }
}

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sleep `total` in small steps, returning early when `stop` is set.
fn nap(total: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(50);
    let mut left = total;
    while !left.is_zero() && !stop.load(Ordering::SeqCst) {
        let d = left.min(step);
        std::thread::sleep(d);
        left -= d;
    }
}

/// What the contending thread shares with [`AdvisoryLock`].
struct State {
    held: Arc<AtomicBool>,
    terms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

fn contend(config: &postgres::Config, interval: Duration, state: &State) {
    let (held, stop) = (&*state.held, &*state.stop);
    let mut warned = false;
    while !stop.load(Ordering::SeqCst) {
        let mut client = match config.connect(postgres::NoTls) {
            Ok(c) => c,
            Err(e) => {
                if !warned {
                    tracing::warn!("leader election: cannot reach PostgreSQL: {e}");
                    warned = true;
                }
                nap(interval, stop);
                continue;
            }
        };
        warned = false;
        while !stop.load(Ordering::SeqCst) {
            if held.load(Ordering::SeqCst) {
                if let Err(e) = client.simple_query("SELECT 1") {
                    held.store(false, Ordering::SeqCst);
                    tracing::warn!("leader election: lost the session, no longer leading: {e}");
                    break;
                }
            } else {
                match client.query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY]) {
                    Ok(row) if row.get::<_, bool>(0) => {
                        state.terms.fetch_add(1, Ordering::SeqCst);
                        held.store(true, Ordering::SeqCst);
                        tracing::info!("leader election: this replica leads the controller");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!("leader election: {e}");
                        break;
                    }
                }
            }
            nap(interval, stop);
        }
        // The session ends with the client: PostgreSQL releases the lock.
        held.store(false, Ordering::SeqCst);
    }
}
