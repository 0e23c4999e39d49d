//! A record of the fate decided for each datagram, bounded, so a test can
//! say which datagrams were lost and a run can be compared with its replay.

use super::super::counters::Direction;
use super::fate::Fate;

/// Datagrams recorded by default ([`UdpLinkConfig::with_trace_limit`](super::UdpLinkConfig::with_trace_limit)).
pub const DEFAULT_TRACE_LIMIT: usize = 10_000;

/// What the link decided for one datagram on arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatagramRecord {
    /// Which way it went.
    pub direction: Direction,
    /// Its position among the datagrams offered in that direction, from 0.
    pub index: u64,
    /// Its payload length.
    pub bytes: usize,
    /// The decision.
    pub fate: Fate,
}

/// The first `limit` records, in arrival order.
#[derive(Debug)]
pub(crate) struct Trace {
    limit: usize,
    records: Vec<DatagramRecord>,
}

impl Trace {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            records: Vec::new(),
        }
    }

    /// Keeps `record` unless the trace is full.
    pub(crate) fn record(&mut self, record: DatagramRecord) {
        if self.records.len() < self.limit {
            self.records.push(record);
        }
    }

    pub(crate) fn records(&self) -> &[DatagramRecord] {
        &self.records
    }
}

#[cfg(test)]
mod tests {
    use super::super::fate::DropCause;
    use super::*;

    #[test]
    fn keeps_the_first_records_up_to_the_limit() {
        let mut trace = Trace::new(2);
        for index in 0..5 {
            trace.record(DatagramRecord {
                direction: Direction::Up,
                index,
                bytes: 1,
                fate: Fate::Dropped(DropCause::Loss),
            });
        }
        let kept: Vec<u64> = trace.records().iter().map(|r| r.index).collect();
        assert_eq!(kept, [0, 1]);
        let mut off = Trace::new(0);
        off.record(trace.records()[0]);
        assert!(off.records().is_empty());
    }
}
