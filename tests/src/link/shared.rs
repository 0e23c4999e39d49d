//! State shared by a link's handle and its tasks: settings, counters, the
//! bandwidth buckets and whether the link is up.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::watch;

use super::availability::{Availability, LinkState};
use super::bucket::TokenBucket;
use super::counters::{Counters, Direction};
use super::profile::CutMode;
use super::timing::RealTiming;

/// Everything the proxy's tasks and the [`Link`](super::Link) handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Where new connections go ([`crate::link::Link::set_upstream`] moves it:
    /// a load balancer switching replicas).
    upstream: Mutex<SocketAddr>,
    pub(crate) seed: u64,
    pub(crate) timing: RealTiming,
    pub(crate) counters: Counters,
    up_bucket: Option<Mutex<TokenBucket>>,
    down_bucket: Option<Mutex<TokenBucket>>,
    /// `true` for [`CutMode::Stall`].
    stall: AtomicBool,
    /// Whether the link is up and how often it went down; connections
    /// watch it to be cut.
    availability: Availability,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing holding these locks can leave them half-updated.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(
        upstream: SocketAddr,
        seed: u64,
        timing: RealTiming,
        cut_mode: CutMode,
    ) -> Self {
        let now = Instant::now();
        let burst = timing.mtu_bytes as f64;
        let bucket =
            |rate: Option<f64>| rate.map(|rate| Mutex::new(TokenBucket::new(rate, burst, now)));
        Self {
            upstream: Mutex::new(upstream),
            seed,
            up_bucket: bucket(timing.up_rate),
            down_bucket: bucket(timing.down_rate),
            timing,
            counters: Counters::default(),
            stall: AtomicBool::new(cut_mode == CutMode::Stall),
            availability: Availability::new(),
        }
    }

    /// Where a new connection goes.
    pub(crate) fn upstream(&self) -> SocketAddr {
        *lock(&self.upstream)
    }

    /// Send new connections to `upstream` from now on.
    pub(crate) fn set_upstream(&self, upstream: SocketAddr) {
        *lock(&self.upstream) = upstream;
    }

    /// Admits `bytes` in `direction`; returns how long to hold them first.
    pub(crate) fn shape(&self, direction: Direction, bytes: usize) -> std::time::Duration {
        let bucket = match direction {
            Direction::Up => &self.up_bucket,
            Direction::Down => &self.down_bucket,
        };
        bucket.as_ref().map_or(std::time::Duration::ZERO, |bucket| {
            lock(bucket).reserve(bytes, Instant::now())
        })
    }

    pub(crate) fn cut_mode(&self) -> CutMode {
        if self.stall.load(Ordering::Relaxed) {
            CutMode::Stall
        } else {
            CutMode::Reset
        }
    }

    pub(crate) fn set_cut_mode(&self, mode: CutMode) {
        self.stall.store(mode == CutMode::Stall, Ordering::Relaxed);
    }

    pub(crate) fn is_up(&self) -> bool {
        self.availability.is_up()
    }

    /// The state now: a connection admitted while it is up keeps its
    /// `downs` as the epoch it lives in (see [`LinkState`]).
    pub(crate) fn state(&self) -> LinkState {
        self.availability.state()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<LinkState> {
        self.availability.subscribe()
    }

    pub(crate) fn set_manual_up(&self, up: bool) {
        self.availability.set_manual_up(up);
    }

    pub(crate) fn set_scheduled_down(&self, down: bool) {
        self.availability.set_scheduled_down(down);
    }
}
