//! Agent time: a wall clock that is never obviously behind and never goes
//! backwards, for a device without an RTC and perhaps without NTP.
//!
//! A Pi Zero boots with the clock systemd sets (its own build date, or a
//! saved time years old). Left alone, the server's certificate is "not yet
//! valid" and every record is stamped in the past. So the agent reads time
//! through an [`AgentClock`]:
//!
//! - **Floors.** Agent time starts at the largest of the system clock, the
//!   build time of this binary (`build.rs`), the persisted floor
//!   (`floor.rs`: `<data_dir>/clock/floor`, plus the time since it was
//!   written when the boot is the same) and the newest stamp in the queue
//!   ([`AgentClock::raise_to`]). The floor is written after successful
//!   windows and heartbeats, at most every [`PERSIST_EVERY_MS`] (at once
//!   after a correction), and when the agent stops: not on every record.
//! - **Never backwards.** Each reading is the larger of the system clock
//!   and the previous reading plus the monotonic time since it
//!   (`std::time::Instant`). A system clock stepped back is ignored until
//!   it passes agent time again (stamps keep advancing at the real rate);
//!   one stepped forward (NTP arriving) is followed, and a step of more
//!   than [`CORRECTION_THRESHOLD_MS`] is reported as a correction.
//! - **Learning the time.** After a 2xx answer over TLS verified against
//!   the pinned CA, the server's `Date` is real time
//!   ([`AgentClock::observe_server_time`]). More than
//!   [`CORRECTION_THRESHOLD_MS`] ahead of agent time: agent time jumps to
//!   it (a correction). Within the threshold: the clock is *confirmed*.
//!   Behind agent time by more: the clock is ahead; reported once, never
//!   corrected, since stamps never go backwards.
//! - **Telling the server.** Corrections wait in the clock until the event
//!   loop takes them ([`AgentClock::take_corrections`]) and queues each as
//!   an event (`correction.rs`: `ClockCorrected` / `ClockAhead`).
//!
//! # Records queued before a correction
//! The queue is append-only with CRC-covered frames, and nothing in it is
//! rewritten; re-appending corrected copies would change their sequence
//! numbers (and their order). Instead their stamps are corrected as they
//! leave the queue (`restamp.rs`). The queue stamps each record through
//! [`Clock::stamp`], so the clock knows the last number it stamped; a
//! correction while records of this process were stamped unconfirmed
//! becomes a [`Restamp`]: records from the first of them
//! ([`AgentClock::note_unconfirmed_from`]) to the last stamped, stamped at
//! or before agent time just before the jump (T1), are early by the jump.
//! It applies at once in memory and is kept in `<data_dir>/clock/corrections`
//! (written at once for the server's `Date`; for a system clock step, which
//! may be seen while the queue is locked, by the next
//! [`persist_if_due`](AgentClock::persist_if_due), right after the
//! heartbeat or window). Every record the queue reads goes through
//! [`Clock::restamp`]: the TLS batches and the sealed frames carry the
//! corrected stamp, in the same wire formats. Stamps stay monotonic
//! (`restamp.rs` has the argument). An entry is dropped once the queue has
//! acknowledged its whole range ([`AgentClock::prune_restamps`]). The
//! event names the range and the jump; records sent before the correction
//! keep their early stamps.
//!
//! # TLS
//! `verify.rs`: certificates are checked at agent time, and while the
//! clock is unconfirmed a server certificate that is only "not yet valid"
//! is checked again at its own `notBefore` (chain to the pinned CA, name,
//! signature, expiry all still checked).
//!
//! Limits: a system clock that runs *ahead* stays ahead (and so does the
//! floor written from it) until real time catches up; a suspended device
//! (Instant stops, the wall clock does not) reports its wake-up as a step.
//! A record sent before a correction and again after it (its answer was
//! lost) goes the second time with the corrected stamp; the server keeps
//! the copy it stored first (by `seq`). A heartbeat group a frame window
//! already sent (`frames/folds.rs`) goes again with the stamp it had. Age
//! eviction in the queue judges records by their stored stamps, so early
//! ones count as older than they are.

pub(crate) mod civil;
mod correction;
pub mod floor;
pub mod restamp;
pub mod verify;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

pub use civil::{parse_http_date, rfc3339};
pub use correction::{Correction, CorrectionKind};
pub use floor::FloorError;
pub use restamp::Restamp;

use crate::clock::{Clock, ManualClock, SystemClock};
use crate::governor::Now;

/// How far the server's `Date` may be from agent time before the agent
/// corrects itself (and a system clock step before it is reported): 5 min.
/// Well above what is not a clock error — `Date` has whole seconds, a
/// request on a satellite link takes tens of seconds, the server's own
/// clock is off by seconds — and well below the server certificates' 1 h
/// `notBefore` allowance (`server/src/pki/validity.rs`), so a clock fixed
/// by this rule never trips TLS again.
pub const CORRECTION_THRESHOLD_MS: u64 = 5 * 60 * 1_000;

/// The persisted floor is rewritten at most this often (10 min) unless a
/// correction happened: an SD card is spared, and a power loss costs at
/// most this much of the floor (the queue's newest stamp covers records).
pub const PERSIST_EVERY_MS: u64 = 10 * 60 * 1_000;

/// Where agent time reads the clocks it builds on.
pub trait TimeSources: Send + Sync + 'static {
    /// The system wall clock, ms since the Unix epoch (may jump).
    fn wall_ms(&self) -> u64;
    /// A monotonic clock, ms since any origin (never jumps).
    fn mono_ms(&self) -> u64;
    /// The boot identity and time since boot (for the persisted floor).
    fn boot(&self) -> Now;
}

/// The real clocks: `SystemTime`, `Instant`, `/proc` for the boot.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemSources;

impl TimeSources for SystemSources {
    fn wall_ms(&self) -> u64 {
        SystemClock.now_ms()
    }
    fn mono_ms(&self) -> u64 {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        let origin = ORIGIN.get_or_init(Instant::now);
        u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
    fn boot(&self) -> Now {
        Now::system(&SystemClock)
    }
}

/// Clocks for tests: a wall clock that may be set anywhere and a
/// monotonic one (also the time since boot `boot_id`).
#[derive(Debug, Clone, Default)]
pub struct ManualSources {
    /// The system wall clock.
    pub wall: ManualClock,
    /// Monotonic time (and time since boot).
    pub mono: ManualClock,
    /// The boot's identity.
    pub boot_id: u128,
}

impl ManualSources {
    /// Wall clock at `wall_ms`, monotonic at 0, boot 1.
    pub fn at(wall_ms: u64) -> Self {
        ManualSources {
            wall: ManualClock::new(wall_ms),
            mono: ManualClock::new(0),
            boot_id: 1,
        }
    }

    /// Real time passes: both clocks advance by `ms`.
    pub fn pass(&self, ms: u64) {
        self.wall.advance(ms);
        self.mono.advance(ms);
    }
}

impl TimeSources for ManualSources {
    fn wall_ms(&self) -> u64 {
        self.wall.now_ms()
    }
    fn mono_ms(&self) -> u64 {
        self.mono.now_ms()
    }
    fn boot(&self) -> Now {
        Now::at(self.wall.now_ms(), self.boot_id, self.mono.now_ms())
    }
}

/// What the server's `Date` said about agent time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Within [`CORRECTION_THRESHOLD_MS`]: the clock is confirmed.
    Agrees,
    /// Agent time was behind and jumped forward to the server's time.
    Corrected,
    /// Agent time is ahead of the server's by more than the threshold.
    Ahead,
}

struct State {
    /// Agent time at the last reading, and the monotonic time of it.
    est_ms: u64,
    est_mono_ms: u64,
    /// The server's `Date` agreed with (or corrected) agent time.
    confirmed: bool,
    /// Monotonic time of the last write of the floor file.
    persisted_mono_ms: Option<u64>,
    /// A correction happened since the floor file was written.
    dirty: bool,
    /// First record (sequence number) stamped while unconfirmed.
    unconfirmed_from_seq: Option<u64>,
    /// The last record stamped through [`Clock::stamp`].
    last_stamped_seq: Option<u64>,
    /// Corrections of queued stamps (`restamp.rs`), oldest first.
    restamps: Vec<Restamp>,
    /// `restamps` changed since the file was written.
    restamps_dirty: bool,
    pending: Vec<Correction>,
    ahead_told: bool,
}

struct Inner {
    sources: Box<dyn TimeSources>,
    data_dir: Option<PathBuf>,
    state: Mutex<State>,
}

/// Agent time (see the module docs); clones share one clock.
#[derive(Clone)]
pub struct AgentClock {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AgentClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("AgentClock")
            .field("est_ms", &s.est_ms)
            .field("confirmed", &s.confirmed)
            .finish_non_exhaustive()
    }
}

impl AgentClock {
    /// A clock over `sources` starting no earlier than `floor_ms`, with no
    /// floor file (tools and tests; the agent uses [`open`](Self::open)).
    pub fn new(sources: impl TimeSources, floor_ms: u64) -> AgentClock {
        Self::build(Box::new(sources), None, floor_ms)
    }

    /// The real clocks with the build floor only (no floor file).
    pub fn system() -> AgentClock {
        Self::new(SystemSources, floor::build_floor_ms())
    }

    /// The agent's clock: floors from the build and `<data_dir>/clock/floor`,
    /// and the corrections of queued stamps in `<data_dir>/clock/corrections`.
    /// A file that cannot be read is returned as an error beside the clock
    /// (to be logged): the build floor stands in, and no stamp is corrected
    /// (a damaged corrections file is replaced at the next write).
    pub fn open(data_dir: &Path, sources: impl TimeSources) -> (AgentClock, Vec<FloorError>) {
        let mut errors = Vec::new();
        let saved = floor::load(data_dir).unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        let (restamps, damaged) = match restamp::load(data_dir) {
            Ok(list) => (list, false),
            Err(e) => {
                let damaged = !e.is_retriable();
                errors.push(e);
                (Vec::new(), damaged)
            }
        };
        let boot = sources.boot();
        let floor_ms = saved
            .map_or(0, |s| s.floor_at(&boot))
            .max(floor::build_floor_ms());
        let clock = Self::build(Box::new(sources), Some(data_dir.to_owned()), floor_ms);
        {
            let mut s = clock.lock();
            s.restamps = restamps;
            s.restamps_dirty = damaged;
        }
        (clock, errors)
    }

    fn build(sources: Box<dyn TimeSources>, data_dir: Option<PathBuf>, floor_ms: u64) -> Self {
        let state = State {
            est_ms: sources.wall_ms().max(floor_ms),
            est_mono_ms: sources.mono_ms(),
            confirmed: false,
            persisted_mono_ms: None,
            dirty: false,
            unconfirmed_from_seq: None,
            last_stamped_seq: None,
            restamps: Vec::new(),
            restamps_dirty: false,
            pending: Vec::new(),
            ahead_told: false,
        };
        AgentClock {
            inner: Arc::new(Inner {
                sources,
                data_dir,
                state: Mutex::new(state),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One reading under the lock: never below the previous one.
    fn read(&self, s: &mut State) -> u64 {
        let wall = self.inner.sources.wall_ms();
        let mono = self.inner.sources.mono_ms().max(s.est_mono_ms);
        let est = s.est_ms.saturating_add(mono - s.est_mono_ms);
        if wall > est.saturating_add(CORRECTION_THRESHOLD_MS) {
            // Written by the next `persist_if_due`: this reading may be
            // taken with the queue locked.
            Self::correct(s, CorrectionKind::SystemStep, est, wall);
        }
        s.est_ms = wall.max(est);
        s.est_mono_ms = mono;
        s.est_ms
    }

    /// The records stamped early by a jump from `from_ms` to `to_ms` now:
    /// noted (applied from now on, written when next persisted) and
    /// returned for the event. `None` when no record of this process was
    /// stamped while unconfirmed.
    /// A correction of agent time from `from_ms` to `to_ms`: the stamps it
    /// makes early kept for restamping, its event pending, the floor due.
    fn correct(s: &mut State, kind: CorrectionKind, from_ms: u64, to_ms: u64) -> Option<Restamp> {
        let restamp = Self::keep_restamp(s, from_ms, to_ms);
        s.pending.push(Correction {
            kind,
            from_ms,
            to_ms,
            restamp,
        });
        s.dirty = true;
        restamp
    }

    fn keep_restamp(s: &mut State, from_ms: u64, to_ms: u64) -> Option<Restamp> {
        let first_seq = s.unconfirmed_from_seq?;
        let last_seq = s.last_stamped_seq.filter(|l| *l >= first_seq)?;
        let r = Restamp {
            first_seq,
            last_seq,
            at_or_before_ms: from_ms,
            delta_ms: to_ms.saturating_sub(from_ms),
        };
        if let Some(old) = restamp::push(&mut s.restamps, r) {
            crate::journal::warn(&format!(
                "clock: more than {} corrections of queued stamps; records seq {}..={} \
                 go out {} ms early (named by their ClockCorrected event)",
                restamp::MAX_RESTAMPS,
                old.first_seq,
                old.last_seq,
                old.delta_ms
            ));
        }
        s.restamps_dirty = true;
        Some(r)
    }

    /// Forget corrections of queued stamps every record of which the
    /// queue acknowledged (through `acked`), or that lie beyond its next
    /// number `next_seq` (a queue made anew); written when next persisted.
    pub fn prune_restamps(&self, acked: Option<u64>, next_seq: u64) {
        let mut s = self.lock();
        if restamp::prune(&mut s.restamps, acked, next_seq) {
            s.restamps_dirty = true;
        }
    }

    /// The corrections of queued stamps in force, oldest first.
    pub fn restamps(&self) -> Vec<Restamp> {
        self.lock().restamps.clone()
    }

    /// Raise agent time to at least `ms` (the newest stamp found in the
    /// queue at start), without calling it a correction.
    pub fn raise_to(&self, ms: u64) {
        let mut s = self.lock();
        self.read(&mut s);
        s.est_ms = s.est_ms.max(ms);
    }

    /// Records from sequence number `seq` on are stamped while the clock is
    /// unconfirmed (said in a later correction's event).
    pub fn note_unconfirmed_from(&self, seq: u64) {
        let mut s = self.lock();
        if !s.confirmed {
            s.unconfirmed_from_seq.get_or_insert(seq);
        }
    }

    /// Whether the server's `Date` agreed with agent time in this process
    /// (after a correction, too).
    pub fn is_confirmed(&self) -> bool {
        self.lock().confirmed
    }

    /// The server said the time is `server_ms` (its `Date`, of an
    /// authenticated 2xx answer): confirm, correct forward, or note that
    /// agent time is ahead (see the module docs).
    pub fn observe_server_time(&self, server_ms: u64) -> Observed {
        let mut s = self.lock();
        let now = self.read(&mut s);
        if server_ms > now.saturating_add(CORRECTION_THRESHOLD_MS) {
            let restamp = Self::correct(&mut s, CorrectionKind::ServerDate, now, server_ms);
            s.unconfirmed_from_seq = None;
            s.est_ms = server_ms;
            s.confirmed = true;
            // Durable at once (no queue lock is held across a request); a
            // failure is retried, and logged, by the next `persist_if_due`.
            if restamp.is_some() {
                let _ = self.store_restamps_locked(&mut s);
            }
            Observed::Corrected
        } else if server_ms.saturating_add(CORRECTION_THRESHOLD_MS) < now {
            if !s.ahead_told {
                s.ahead_told = true;
                s.pending.push(Correction {
                    kind: CorrectionKind::Ahead,
                    from_ms: now,
                    to_ms: server_ms,
                    restamp: None,
                });
            }
            Observed::Ahead
        } else {
            s.confirmed = true;
            s.unconfirmed_from_seq = None;
            Observed::Agrees
        }
    }

    /// Corrections not yet turned into events, oldest first.
    pub fn take_corrections(&self) -> Vec<Correction> {
        std::mem::take(&mut self.lock().pending)
    }

    /// Write the floor file if it was never written by this process, if
    /// [`PERSIST_EVERY_MS`] passed since, or if a correction happened, and
    /// the corrections file if it changed; `Ok(false)` when nothing was due
    /// (or the clock has no data directory).
    pub fn persist_if_due(&self) -> Result<bool, FloorError> {
        let mut s = self.lock();
        let mono = self.inner.sources.mono_ms();
        let due = s.dirty
            || s.persisted_mono_ms
                .is_none_or(|at| mono.saturating_sub(at) >= PERSIST_EVERY_MS);
        let restamps = self.store_restamps_locked(&mut s);
        let floor = if due {
            self.persist_locked(&mut s)
        } else {
            Ok(false)
        };
        Ok(restamps? | floor?)
    }

    /// Write the floor file now, and the corrections file if it changed
    /// (when the agent stops).
    pub fn persist(&self) -> Result<bool, FloorError> {
        let mut s = self.lock();
        let restamps = self.store_restamps_locked(&mut s);
        let floor = self.persist_locked(&mut s);
        Ok(restamps? | floor?)
    }

    /// Write the corrections file if it changed since last written.
    fn store_restamps_locked(&self, s: &mut State) -> Result<bool, FloorError> {
        let Some(dir) = &self.inner.data_dir else {
            s.restamps_dirty = false;
            return Ok(false);
        };
        if !s.restamps_dirty {
            return Ok(false);
        }
        restamp::store(dir, &s.restamps)?;
        s.restamps_dirty = false;
        Ok(true)
    }

    fn persist_locked(&self, s: &mut State) -> Result<bool, FloorError> {
        let Some(dir) = &self.inner.data_dir else {
            return Ok(false);
        };
        let floor_ms = self.read(s);
        let boot = self.inner.sources.boot();
        floor::store(
            dir,
            &floor::Saved {
                floor_ms,
                boot_id: boot.boot_id,
                since_boot_ms: boot.since_boot_ms,
            },
        )?;
        s.persisted_mono_ms = Some(self.inner.sources.mono_ms());
        s.dirty = false;
        Ok(true)
    }
}

impl Clock for AgentClock {
    fn now_ms(&self) -> u64 {
        let mut s = self.lock();
        self.read(&mut s)
    }

    fn stamp(&self, seq: u64) -> u64 {
        let mut s = self.lock();
        // Read first: a step seen by this reading ends before `seq`.
        let now = self.read(&mut s);
        s.last_stamped_seq = Some(s.last_stamped_seq.map_or(seq, |l| l.max(seq)));
        now
    }

    fn restamp(&self, seq: u64, at_ms: u64) -> u64 {
        let s = self.lock();
        restamp::apply(&s.restamps, seq, at_ms)
    }
}

#[cfg(test)]
mod restamp_tests;
#[cfg(test)]
mod tests;
