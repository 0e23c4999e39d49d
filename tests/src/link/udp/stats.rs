//! Counters of datagrams crossing a UDP link, per direction and by fate, and
//! their snapshot ([`UdpLinkStats`]) with the bytes-on-the-wire helpers.

use std::sync::atomic::{AtomicU64, Ordering};

use super::super::counters::Direction;
use super::fate::DropCause;
use super::profile::IPV4_UDP_HEADER_BYTES;

/// One direction's datagrams since the link started.
///
/// Every offered datagram is dropped once or delivered; a duplicated one
/// makes one more copy, itself delivered or dropped. So once the direction
/// is quiet, `offered + duplicated == delivered + dropped()`, and
/// [`Self::in_flight`] is the difference meanwhile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DatagramStats {
    /// Datagrams that reached the link.
    pub offered: u64,
    /// Their payload bytes (UDP payload, headers not counted).
    pub offered_bytes: u64,
    /// Datagrams delivered, both copies of a duplicate counted.
    pub delivered: u64,
    /// Their payload bytes.
    pub delivered_bytes: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Datagrams held back so later ones could overtake them.
    pub reordered: u64,
    /// Dropped by random loss.
    pub dropped_loss: u64,
    /// Dropped because the link was down on arrival or went down in flight.
    pub dropped_blackout: u64,
    /// Dropped for not fitting the MTU.
    pub dropped_mtu: u64,
    /// Replies dropped at an expired NAT binding (always 0 up).
    pub dropped_expired: u64,
    /// Dropped because the link could not send them on.
    pub dropped_send_failure: u64,
}

impl DatagramStats {
    /// Drops of every cause.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        [
            self.dropped_loss,
            self.dropped_blackout,
            self.dropped_mtu,
            self.dropped_expired,
            self.dropped_send_failure,
        ]
        .iter()
        .fold(0, |sum, n| sum.saturating_add(*n))
    }

    /// Drops of one cause.
    #[must_use]
    pub fn dropped_by(&self, cause: DropCause) -> u64 {
        match cause {
            DropCause::Loss => self.dropped_loss,
            DropCause::Blackout => self.dropped_blackout,
            DropCause::Mtu => self.dropped_mtu,
            DropCause::ExpiredBinding => self.dropped_expired,
            DropCause::SendFailure => self.dropped_send_failure,
        }
    }

    /// Copies still on their way (delayed, not yet delivered or dropped).
    #[must_use]
    pub fn in_flight(&self) -> u64 {
        self.offered
            .saturating_add(self.duplicated)
            .saturating_sub(self.delivered.saturating_add(self.dropped()))
    }

    /// Bytes delivered on the wire: payload plus 28 bytes of IPv4 and UDP
    /// headers per delivered datagram.
    #[must_use]
    pub fn wire_bytes(&self) -> u64 {
        wire(self.delivered, self.delivered_bytes)
    }

    /// Bytes the sender put on the wire, lost ones included, with headers.
    #[must_use]
    pub fn offered_wire_bytes(&self) -> u64 {
        wire(self.offered, self.offered_bytes)
    }

    /// What happened between `earlier` and `self`.
    #[must_use]
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            offered: self.offered.saturating_sub(earlier.offered),
            offered_bytes: self.offered_bytes.saturating_sub(earlier.offered_bytes),
            delivered: self.delivered.saturating_sub(earlier.delivered),
            delivered_bytes: self.delivered_bytes.saturating_sub(earlier.delivered_bytes),
            duplicated: self.duplicated.saturating_sub(earlier.duplicated),
            reordered: self.reordered.saturating_sub(earlier.reordered),
            dropped_loss: self.dropped_loss.saturating_sub(earlier.dropped_loss),
            dropped_blackout: self
                .dropped_blackout
                .saturating_sub(earlier.dropped_blackout),
            dropped_mtu: self.dropped_mtu.saturating_sub(earlier.dropped_mtu),
            dropped_expired: self.dropped_expired.saturating_sub(earlier.dropped_expired),
            dropped_send_failure: self
                .dropped_send_failure
                .saturating_sub(earlier.dropped_send_failure),
        }
    }
}

fn wire(datagrams: u64, payload: u64) -> u64 {
    payload.saturating_add(datagrams.saturating_mul(IPV4_UDP_HEADER_BYTES))
}

/// A snapshot of a UDP link's counters since it started.
///
/// Fields are read one by one while traffic flows, so a snapshot is exact
/// only once the link is quiet ([`Self::in_flight`] is 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpLinkStats {
    /// Client to upstream.
    pub up: DatagramStats,
    /// Upstream to client.
    pub down: DatagramStats,
    /// NAT bindings created (each a new upstream source port).
    pub bindings_created: u64,
    /// NAT bindings that expired after `nat_idle_timeout` without uplink.
    pub bindings_expired: u64,
    /// Internal tasks that panicked; anything but 0 is a bug in the emulator.
    pub task_panics: u64,
}

impl UdpLinkStats {
    /// One direction's counters.
    #[must_use]
    pub fn direction(&self, direction: Direction) -> &DatagramStats {
        match direction {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        }
    }

    /// NAT bindings live now.
    #[must_use]
    pub fn bindings_active(&self) -> u64 {
        self.bindings_created.saturating_sub(self.bindings_expired)
    }

    /// Copies in flight both ways.
    #[must_use]
    pub fn in_flight(&self) -> u64 {
        self.up.in_flight().saturating_add(self.down.in_flight())
    }

    /// Bytes delivered both ways, with 28 bytes of IPv4 and UDP headers per
    /// datagram: what a benchmark charges the radio for.
    #[must_use]
    pub fn wire_bytes(&self) -> u64 {
        self.up.wire_bytes().saturating_add(self.down.wire_bytes())
    }

    /// What happened between `earlier` and `self` (e.g. per exchange).
    #[must_use]
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            up: self.up.since(&earlier.up),
            down: self.down.since(&earlier.down),
            bindings_created: self
                .bindings_created
                .saturating_sub(earlier.bindings_created),
            bindings_expired: self
                .bindings_expired
                .saturating_sub(earlier.bindings_expired),
            task_panics: self.task_panics.saturating_sub(earlier.task_panics),
        }
    }
}

/// One direction's live counters.
#[derive(Debug, Default)]
struct DirectionCounters {
    offered: AtomicU64,
    offered_bytes: AtomicU64,
    delivered: AtomicU64,
    delivered_bytes: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
    dropped: [AtomicU64; 5],
}

fn cause_index(cause: DropCause) -> usize {
    match cause {
        DropCause::Loss => 0,
        DropCause::Blackout => 1,
        DropCause::Mtu => 2,
        DropCause::ExpiredBinding => 3,
        DropCause::SendFailure => 4,
    }
}

fn bump(counter: &AtomicU64, by: usize) {
    counter.fetch_add(u64::try_from(by).unwrap_or(u64::MAX), Ordering::Relaxed);
}

impl DirectionCounters {
    fn snapshot(&self) -> DatagramStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let dropped = |cause| read(&self.dropped[cause_index(cause)]);
        DatagramStats {
            offered: read(&self.offered),
            offered_bytes: read(&self.offered_bytes),
            delivered: read(&self.delivered),
            delivered_bytes: read(&self.delivered_bytes),
            duplicated: read(&self.duplicated),
            reordered: read(&self.reordered),
            dropped_loss: dropped(DropCause::Loss),
            dropped_blackout: dropped(DropCause::Blackout),
            dropped_mtu: dropped(DropCause::Mtu),
            dropped_expired: dropped(DropCause::ExpiredBinding),
            dropped_send_failure: dropped(DropCause::SendFailure),
        }
    }
}

/// What happened to a datagram (of so many bytes), to count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Count {
    Offered(usize),
    Delivered(usize),
    Duplicated,
    Reordered,
    Dropped(DropCause),
}

/// What happened to the link as a whole, to count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkEvent {
    BindingCreated,
    BindingsExpired(usize),
    TaskPanic,
}

/// The live counters behind [`UdpLinkStats`], bumped by the link's thread.
#[derive(Debug, Default)]
pub(crate) struct UdpCounters {
    up: DirectionCounters,
    down: DirectionCounters,
    bindings_created: AtomicU64,
    bindings_expired: AtomicU64,
    task_panics: AtomicU64,
}

impl UdpCounters {
    /// Counts what happened to a datagram going `direction`.
    pub(crate) fn count(&self, direction: Direction, what: Count) {
        let counters = match direction {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        };
        match what {
            Count::Offered(bytes) => {
                bump(&counters.offered, 1);
                bump(&counters.offered_bytes, bytes);
            }
            Count::Delivered(bytes) => {
                bump(&counters.delivered_bytes, bytes);
                // Last, so a reader that sees the datagram sees its bytes.
                bump(&counters.delivered, 1);
            }
            Count::Duplicated => bump(&counters.duplicated, 1),
            Count::Reordered => bump(&counters.reordered, 1),
            Count::Dropped(cause) => bump(&counters.dropped[cause_index(cause)], 1),
        }
    }

    pub(crate) fn count_link(&self, event: LinkEvent) {
        match event {
            LinkEvent::BindingCreated => bump(&self.bindings_created, 1),
            LinkEvent::BindingsExpired(n) => bump(&self.bindings_expired, n),
            LinkEvent::TaskPanic => bump(&self.task_panics, 1),
        }
    }

    pub(crate) fn snapshot(&self) -> UdpLinkStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        UdpLinkStats {
            up: self.up.snapshot(),
            down: self.down.snapshot(),
            bindings_created: read(&self.bindings_created),
            bindings_expired: read(&self.bindings_expired),
            task_panics: read(&self.task_panics),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_own_fields_and_add_up() {
        let counters = UdpCounters::default();
        let up = Direction::Up;
        for bytes in [100, 200, 300, 400] {
            counters.count(up, Count::Offered(bytes));
        }
        counters.count(up, Count::Dropped(DropCause::Loss));
        counters.count(up, Count::Dropped(DropCause::Mtu));
        counters.count(up, Count::Duplicated);
        for bytes in [100, 100, 200] {
            counters.count(up, Count::Delivered(bytes));
        }
        counters.count_link(LinkEvent::BindingCreated);
        counters.count(Direction::Down, Count::Dropped(DropCause::ExpiredBinding));
        counters.count(Direction::Down, Count::Offered(9));
        let stats = counters.snapshot();
        assert_eq!((stats.up.offered, stats.up.offered_bytes), (4, 1000));
        assert_eq!((stats.up.delivered, stats.up.delivered_bytes), (3, 400));
        assert_eq!(stats.up.dropped(), 2);
        assert_eq!(stats.up.dropped_by(DropCause::Mtu), 1);
        assert_eq!(stats.up.in_flight(), 0, "4 + 1 = 3 + 2");
        assert_eq!(stats.down.dropped_expired, 1);
        assert_eq!(stats.in_flight(), 0);
        assert_eq!(stats.bindings_active(), 1);
        assert_eq!(stats.up.wire_bytes(), 400 + 3 * 28);
        assert_eq!(stats.up.offered_wire_bytes(), 1000 + 4 * 28);
        assert_eq!(stats.wire_bytes(), 400 + 3 * 28);
    }

    #[test]
    fn since_subtracts_field_by_field() {
        let counters = UdpCounters::default();
        counters.count(Direction::Down, Count::Offered(10));
        let before = counters.snapshot();
        counters.count(Direction::Down, Count::Offered(5));
        counters.count(Direction::Down, Count::Delivered(5));
        counters.count_link(LinkEvent::BindingsExpired(2));
        let delta = counters.snapshot().since(&before);
        assert_eq!((delta.down.offered, delta.down.offered_bytes), (1, 5));
        assert_eq!(delta.down.delivered, 1);
        assert_eq!(delta.bindings_expired, 2);
        assert_eq!(delta.up, DatagramStats::default());
    }
}
