//! Counters of bytes and connections crossing a link, and their snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// A direction across a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to upstream.
    Up,
    /// Upstream to client.
    Down,
}

/// A snapshot of a link's counters since it started.
///
/// Fields are read one by one while traffic flows, so a snapshot taken
/// mid-transfer is not atomic across fields; once the link is quiet,
/// `attempts == accepted + refused + upstream_failures` and
/// `accepted == cut + closed + active()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Bytes delivered to the upstream (client to server).
    pub bytes_up: u64,
    /// Bytes delivered to clients (server to client).
    pub bytes_down: u64,
    /// Connections the listener accepted from clients.
    pub attempts: u64,
    /// Attempts forwarded to a connected upstream.
    pub accepted: u64,
    /// Attempts refused (reset at once) by a blackout or `drop_per_attempt`.
    pub refused: u64,
    /// Attempts reset because the upstream could not be reached.
    pub upstream_failures: u64,
    /// Accepted connections the link cut (random drop or blackout).
    pub cut: u64,
    /// Accepted connections that ended by their peers (closed or reset).
    pub closed: u64,
    /// Internal tasks that panicked; anything but 0 is a bug in the emulator.
    pub task_panics: u64,
}

impl LinkStats {
    /// Accepted connections not yet cut or closed.
    #[must_use]
    pub fn active(&self) -> u64 {
        self.accepted
            .saturating_sub(self.cut.saturating_add(self.closed))
    }

    /// Bytes delivered in both directions.
    #[must_use]
    pub fn bytes_total(&self) -> u64 {
        self.bytes_up.saturating_add(self.bytes_down)
    }

    /// What happened between `earlier` and `self` (e.g. per heartbeat).
    #[must_use]
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            bytes_up: self.bytes_up.saturating_sub(earlier.bytes_up),
            bytes_down: self.bytes_down.saturating_sub(earlier.bytes_down),
            attempts: self.attempts.saturating_sub(earlier.attempts),
            accepted: self.accepted.saturating_sub(earlier.accepted),
            refused: self.refused.saturating_sub(earlier.refused),
            upstream_failures: self
                .upstream_failures
                .saturating_sub(earlier.upstream_failures),
            cut: self.cut.saturating_sub(earlier.cut),
            closed: self.closed.saturating_sub(earlier.closed),
            task_panics: self.task_panics.saturating_sub(earlier.task_panics),
        }
    }
}

/// The live counters behind [`LinkStats`], bumped by the proxy's tasks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    attempts: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    upstream_failures: AtomicU64,
    cut: AtomicU64,
    closed: AtomicU64,
    task_panics: AtomicU64,
}

/// A connection-level event to count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Attempt,
    Accepted,
    Refused,
    UpstreamFailure,
    Cut,
    Closed,
    TaskPanic,
}

impl Counters {
    pub(crate) fn add_bytes(&self, direction: Direction, bytes: usize) {
        let counter = match direction {
            Direction::Up => &self.bytes_up,
            Direction::Down => &self.bytes_down,
        };
        counter.fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub(crate) fn count(&self, event: Event) {
        let counter = match event {
            Event::Attempt => &self.attempts,
            Event::Accepted => &self.accepted,
            Event::Refused => &self.refused,
            Event::UpstreamFailure => &self.upstream_failures,
            Event::Cut => &self.cut,
            Event::Closed => &self.closed,
            Event::TaskPanic => &self.task_panics,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> LinkStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        LinkStats {
            bytes_up: read(&self.bytes_up),
            bytes_down: read(&self.bytes_down),
            attempts: read(&self.attempts),
            accepted: read(&self.accepted),
            refused: read(&self.refused),
            upstream_failures: read(&self.upstream_failures),
            cut: read(&self.cut),
            closed: read(&self.closed),
            task_panics: read(&self.task_panics),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_land_in_their_own_fields() {
        let counters = Counters::default();
        counters.add_bytes(Direction::Up, 10);
        counters.add_bytes(Direction::Down, 7);
        for event in [
            Event::Attempt,
            Event::Attempt,
            Event::Attempt,
            Event::Accepted,
            Event::Accepted,
        ] {
            counters.count(event);
        }
        counters.count(Event::Refused);
        counters.count(Event::Cut);
        let stats = counters.snapshot();
        assert_eq!(
            (stats.bytes_up, stats.bytes_down, stats.bytes_total()),
            (10, 7, 17)
        );
        assert_eq!((stats.attempts, stats.accepted, stats.refused), (3, 2, 1));
        assert_eq!(
            (
                stats.cut,
                stats.closed,
                stats.upstream_failures,
                stats.task_panics
            ),
            (1, 0, 0, 0)
        );
        assert_eq!(stats.active(), 1);
    }

    #[test]
    fn since_subtracts_field_by_field() {
        let counters = Counters::default();
        counters.add_bytes(Direction::Up, 100);
        let before = counters.snapshot();
        counters.add_bytes(Direction::Up, 40);
        counters.count(Event::Closed);
        let delta = counters.snapshot().since(&before);
        assert_eq!(delta.bytes_up, 40);
        assert_eq!(delta.closed, 1);
        assert_eq!(delta.bytes_down, 0);
    }
}
