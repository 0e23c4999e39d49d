//! State shared by a link's handle and its tasks: settings, counters, the
//! bandwidth buckets and whether the link is up.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::watch;

use super::bucket::TokenBucket;
use super::counters::{Counters, Direction};
use super::profile::CutMode;
use super::timing::RealTiming;

/// Why the link is up or down: a blackout by hand and the schedule combine.
#[derive(Debug)]
struct Flags {
    manual_up: bool,
    scheduled_down: bool,
}

/// What connections watch: whether the link is up, and how many times it
/// went down so far.
///
/// The count is what cuts connections. A `watch` channel keeps only the
/// latest value, so a short blackout (down, then up again before a
/// connection task is polled) would be invisible in a plain `bool`: the task
/// would wake, see "up" and carry on. A connection admitted at epoch `n` is
/// cut as soon as it sees any epoch other than `n`, however briefly the link
/// was down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LinkState {
    /// Up by hand and by schedule.
    pub(crate) up: bool,
    /// Transitions from up to down since the link started.
    pub(crate) downs: u64,
}

/// Everything the proxy's tasks and the [`Link`](super::Link) handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) upstream: SocketAddr,
    pub(crate) seed: u64,
    pub(crate) timing: RealTiming,
    pub(crate) counters: Counters,
    up_bucket: Option<Mutex<TokenBucket>>,
    down_bucket: Option<Mutex<TokenBucket>>,
    /// `true` for [`CutMode::Stall`].
    stall: AtomicBool,
    flags: Mutex<Flags>,
    /// Whether the link is up and how often it went down; connections
    /// watch it to be cut.
    up: watch::Sender<LinkState>,
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
            upstream,
            seed,
            up_bucket: bucket(timing.up_rate),
            down_bucket: bucket(timing.down_rate),
            timing,
            counters: Counters::default(),
            stall: AtomicBool::new(cut_mode == CutMode::Stall),
            flags: Mutex::new(Flags {
                manual_up: true,
                scheduled_down: false,
            }),
            up: watch::Sender::new(LinkState { up: true, downs: 0 }),
        }
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
        self.up.borrow().up
    }

    /// The state now: a connection admitted while it is up keeps its
    /// `downs` as the epoch it lives in (see [`LinkState`]).
    pub(crate) fn state(&self) -> LinkState {
        *self.up.borrow()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<LinkState> {
        self.up.subscribe()
    }

    pub(crate) fn set_manual_up(&self, up: bool) {
        self.update(|flags| flags.manual_up = up);
    }

    pub(crate) fn set_scheduled_down(&self, down: bool) {
        self.update(|flags| flags.scheduled_down = down);
    }

    fn update(&self, change: impl FnOnce(&mut Flags)) {
        let mut flags = lock(&self.flags);
        change(&mut flags);
        let up = flags.manual_up && !flags.scheduled_down;
        // Under the lock, so concurrent updates publish in order.
        self.up.send_if_modified(|current| {
            if current.up == up {
                return false;
            }
            current.up = up;
            if !up {
                current.downs += 1;
            }
            true
        });
    }
}
