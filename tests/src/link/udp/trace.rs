//! A record of the fate decided for each datagram, bounded, so a test can
//! say which datagrams were lost and a run can be compared with its replay.

use super::super::counters::Direction;
use super::fate::Fate;

/// Datagrams recorded by default ([`UdpLinkConfig::with_trace_limit`](super::UdpLinkConfig::with_trace_limit)).
pub const DEFAULT_TRACE_LIMIT: usize = 10_000;

/// Bytes of each datagram kept in [`DatagramRecord::head`].
pub const HEAD_BYTES: usize = 8;

/// [`DatagramRecord::head`] and [`DatagramRecord::digest`] of a payload.
pub(crate) fn fingerprint(data: &[u8]) -> ([u8; HEAD_BYTES], u64) {
    use std::hash::{Hash, Hasher};
    let mut head = [0u8; HEAD_BYTES];
    let n = data.len().min(HEAD_BYTES);
    head[..n].copy_from_slice(&data[..n]);
    // SipHash with fixed keys: the same bytes give the same digest in every run.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    (head, h.finish())
}

/// What the link decided for one datagram on arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatagramRecord {
    /// Which way it went.
    pub direction: Direction,
    /// Its position among the datagrams offered in that direction, from 0.
    pub index: u64,
    /// Its payload length.
    pub bytes: usize,
    /// Its first bytes, zero-padded (a sealed frame's header byte, counter
    /// and key id), so a test can tell which frame it was.
    pub head: [u8; HEAD_BYTES],
    /// A hash of the whole payload: equal datagrams (a retransmission) have
    /// equal digests, so a test can find one frame counter sent with two
    /// different payloads.
    pub digest: u64,
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
                head: [0; HEAD_BYTES],
                digest: 0,
                fate: Fate::Dropped(DropCause::Loss),
            });
        }
        let kept: Vec<u64> = trace.records().iter().map(|r| r.index).collect();
        assert_eq!(kept, [0, 1]);
        let mut off = Trace::new(0);
        off.record(trace.records()[0]);
        assert!(off.records().is_empty());
    }

    #[test]
    fn fingerprints_tell_retransmissions_from_new_payloads() {
        let (head, a) = fingerprint(&[1, 2, 3]);
        assert_eq!(head, [1, 2, 3, 0, 0, 0, 0, 0]);
        assert_eq!(fingerprint(&[1, 2, 3]).1, a);
        assert_ne!(fingerprint(&[1, 2, 4]).1, a);
        let long: Vec<u8> = (0..40).collect();
        assert_eq!(fingerprint(&long).0, [0, 1, 2, 3, 4, 5, 6, 7]);
    }
}
