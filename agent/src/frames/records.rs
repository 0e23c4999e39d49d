//! What a frame window sends, built from the queue's records: the window's
//! heartbeats folded into one `Payload::Summary`, then every other record in
//! sequence order; and which queue records may be deleted once the server
//! acknowledged them (the longest acknowledged prefix, [`Prefix`]).
//!
//! A summary stands for every heartbeat it folds: it is stored under the
//! last one's `seq` and `at_ms`, and kept in `folds.rs` until the queue
//! deleted its heartbeats, so a later window re-sends the same record (the
//! server deduplicates it) instead of folding them again. A single
//! heartbeat is sent as it is (a summary of one is larger). Records above
//! `max_record_bytes` are left out when a TLS carrier can take them; they
//! then hold back the deletion of everything after them (the queue's
//! acknowledgement is cumulative) until a TLS window sends them.
//!
//! The [`PackPolicy`] (`policy.rs`) applies first: log lines below its
//! level are left for TLS the same way, or, with no TLS carrier, discarded
//! (they count as acknowledged in the window's prefix, so they never hold
//! back later records); messages are cut before the size check, so what is
//! compared with `max_record_bytes` is what would travel.

use std::borrow::Cow;
use std::collections::{BTreeSet, VecDeque};

use flotta_proto::frame::{PackRecord, RecordHead};
use flotta_proto::payload::{DeviceStatus, Heartbeat, Payload, WindowSummary};
use flotta_proto::record::RecordClass;

use super::folds::Folds;
use super::policy::PackPolicy;
use crate::queue::Record;

/// One record as a frame window sends it, and the queue records it stands
/// for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WindowRecord {
    /// Sequence, time and class on the wire.
    pub(crate) head: RecordHead,
    /// The postcard `Payload`.
    pub(crate) payload: Vec<u8>,
    /// Queue sequence numbers settled when this record is acknowledged.
    pub(crate) covers: Vec<u64>,
}

impl WindowRecord {
    /// The borrowed form `pack` takes.
    pub(crate) fn as_pack(&self) -> PackRecord<'_> {
        PackRecord {
            head: self.head,
            payload: &self.payload,
        }
    }
}

/// The records of one round of a frame window.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Heartbeat groups first (earlier ones re-sent, then the new one),
    /// then events, then log lines, each in `seq` order.
    pub(crate) records: Vec<WindowRecord>,
    /// Queue records left for a TLS window (too large for frames, or log
    /// lines below the policy's level).
    pub(crate) left_for_tls: Vec<u64>,
    /// Log lines below the policy's level with no TLS carrier to take them:
    /// never sent; the window counts them acknowledged.
    pub(crate) discarded: Vec<u64>,
    /// Heartbeats folded into a new summary.
    pub(crate) folded: u32,
    /// A new group was added to `folds`: save it before sending.
    pub(crate) new_group: bool,
}

/// Plan the queue records `read` (in `seq` order).
///
/// - Records in `delivered` were acknowledged over frames already in this
///   process (held back from deletion): not sent again.
/// - Heartbeats of a group in `folds` are never folded again; with
///   `resend_groups` (a window's first round) every group not known to be
///   acknowledged is sent again as it was. The window's other heartbeats
///   become one new group (a summary, or a lone heartbeat as it is), added
///   to `folds`.
/// - `tls_limit`: records larger than this are left for TLS (`None`: no
///   TLS carrier, send everything, fragmented if need be).
/// - `policy`: log lines below its level are left for TLS (or discarded
///   without one); messages are cut to its limit.
///
/// Order: heartbeat groups, then events, then log lines.
pub(crate) fn plan(
    read: Vec<Record>,
    delivered: &BTreeSet<u64>,
    tls_limit: Option<usize>,
    policy: &PackPolicy,
    folds: &mut Folds,
    resend_groups: bool,
) -> Plan {
    let mut plan = Plan::default();
    if resend_groups {
        plan.records = folds.records();
        plan.records
            .retain(|g| !g.covers.iter().all(|c| delivered.contains(c)));
    }
    let mut heartbeats: Vec<(Record, Heartbeat)> = Vec::new();
    let mut others = Vec::new();
    for mut r in read {
        if delivered.contains(&r.seq) || folds.covers(r.seq) {
            continue;
        }
        let cut = match policy.apply(r.class, &r.payload) {
            None if tls_limit.is_some() => {
                plan.left_for_tls.push(r.seq);
                continue;
            }
            None => {
                plan.discarded.push(r.seq);
                continue;
            }
            Some(Cow::Owned(cut)) => Some(cut),
            Some(Cow::Borrowed(_)) => None,
        };
        if let Some(cut) = cut {
            r.payload = cut;
        }
        if tls_limit.is_some_and(|max| r.payload.len() > max) {
            plan.left_for_tls.push(r.seq);
            continue;
        }
        if r.class == RecordClass::Heartbeat
            && let Ok(Payload::Heartbeat(hb)) = Payload::decode(&r.payload)
        {
            heartbeats.push((r, hb));
            continue;
        }
        others.push(whole(r));
    }
    let group = if heartbeats.len() == 1 {
        heartbeats.pop().map(|(r, _)| whole(r))
    } else {
        plan.folded = u32::try_from(heartbeats.len()).unwrap_or(u32::MAX);
        fold(&heartbeats)
    };
    if let Some(g) = group {
        folds.add(&g);
        plan.new_group = true;
        plan.records.push(g);
    }
    // Events before log lines (each in `seq` order): when a budget holds
    // the window's tail back, the summary and the events went first.
    let event = RecordClass::Event.index() as u8;
    others.sort_by_key(|r| r.head.class != event);
    plan.records.extend(others);
    plan
}

fn whole(r: Record) -> WindowRecord {
    WindowRecord {
        head: RecordHead {
            seq: r.seq,
            at_ms: r.at_ms,
            class: r.class.index() as u8,
        },
        payload: r.payload,
        covers: vec![r.seq],
    }
}

/// One summary record for `heartbeats` (at least one, in `seq` order).
fn fold(heartbeats: &[(Record, Heartbeat)]) -> Option<WindowRecord> {
    let (first, _) = heartbeats.first()?;
    let (last, last_hb) = heartbeats.last()?;
    let battery = heartbeats.iter().filter_map(|(_, h)| h.battery_percent);
    let summary = WindowSummary {
        heartbeats: u32::try_from(heartbeats.len()).unwrap_or(u32::MAX),
        first_seq: first.seq,
        first_at_ms: first.at_ms,
        battery_min_percent: battery.clone().min(),
        battery_max_percent: battery.max(),
        degraded: heartbeats
            .iter()
            .filter(|(_, h)| h.status == DeviceStatus::Degraded)
            .count() as u32,
        last: last_hb.clone(),
    };
    Some(WindowRecord {
        head: RecordHead {
            seq: last.seq,
            at_ms: last.at_ms,
            class: RecordClass::Heartbeat.index() as u8,
        },
        payload: Payload::Summary(summary).encode(),
        covers: heartbeats.iter().map(|(r, _)| r.seq).collect(),
    })
}

/// The window's queue records in `seq` order, each acknowledged or not:
/// what may be deleted is the longest acknowledged prefix.
#[derive(Debug, Default)]
pub(crate) struct Prefix {
    pending: VecDeque<(u64, bool)>,
}

impl Prefix {
    /// Add the next record of the window (above every one added before).
    pub(crate) fn push(&mut self, seq: u64, acked: bool) {
        debug_assert!(self.pending.back().is_none_or(|(s, _)| *s < seq));
        self.pending.push_back((seq, acked));
    }

    /// The server acknowledged `seq`.
    pub(crate) fn mark(&mut self, seq: u64) {
        if let Ok(i) = self.pending.binary_search_by_key(&seq, |(s, _)| *s) {
            self.pending[i].1 = true;
        }
    }

    /// Remove the acknowledged prefix; returns its last `seq` (what the
    /// queue may acknowledge through), if it is not empty.
    pub(crate) fn take_acked(&mut self) -> Option<u64> {
        let mut through = None;
        while let Some(&(seq, true)) = self.pending.front() {
            through = Some(seq);
            self.pending.pop_front();
        }
        through
    }
}

#[cfg(test)]
mod tests {
    use flotta_proto::payload::{Event, Level};

    use super::*;

    fn hb(seq: u64, battery: Option<u8>, degraded: bool) -> Record {
        let p = Payload::Heartbeat(Heartbeat {
            status: if degraded {
                DeviceStatus::Degraded
            } else {
                DeviceStatus::Up
            },
            agent_version: "0.1.0".into(),
            uptime_seconds: seq * 60,
            queue_records: 0,
            queue_bytes: 0,
            dropped_records: [0; 3],
            damaged_bytes: 0,
            battery_percent: battery,
            workloads: Vec::new(),
        });
        Record {
            seq,
            at_ms: 1000 + seq,
            class: RecordClass::Heartbeat,
            payload: p.encode(),
        }
    }

    fn event(seq: u64, len: usize) -> Record {
        let p = Payload::Event(Event {
            reason: "R".into(),
            message: "m".repeat(len),
            level: Level::Info,
        });
        Record {
            seq,
            at_ms: 1000 + seq,
            class: RecordClass::Event,
            payload: p.encode(),
        }
    }

    #[test]
    fn heartbeats_fold_into_one_summary_first() {
        let read = vec![
            hb(1, Some(80), false),
            event(2, 3),
            hb(3, None, true),
            hb(4, Some(60), false),
            event(5, 3),
        ];
        let dir = tempfile::tempdir().unwrap();
        let mut folds = Folds::load(dir.path());
        let p = plan(
            read.clone(),
            &BTreeSet::new(),
            None,
            &PackPolicy::default(),
            &mut folds,
            true,
        );
        assert_eq!(p.folded, 3);
        assert!(p.new_group);
        let seqs: Vec<u64> = p.records.iter().map(|r| r.head.seq).collect();
        assert_eq!(seqs, [4, 2, 5], "summary first, under the last heartbeat");
        let s = &p.records[0];
        assert_eq!((s.head.at_ms, s.head.class), (1004, 0));
        assert_eq!(s.covers, [1, 3, 4]);
        let Ok(Payload::Summary(sum)) = Payload::decode(&s.payload) else {
            panic!("not a summary")
        };
        assert_eq!(
            (sum.heartbeats, sum.first_seq, sum.first_at_ms, sum.degraded),
            (3, 1, 1001, 1)
        );
        assert_eq!(
            (sum.battery_min_percent, sum.battery_max_percent),
            (Some(60), Some(80))
        );
        assert_eq!(sum.last.uptime_seconds, 240, "the newest heartbeat whole");

        // The next window (the queue still holds them all, plus heartbeat 6)
        // re-sends the same summary and folds only the new heartbeat.
        let mut again = read;
        again.push(hb(6, Some(10), false));
        let p2 = plan(
            again,
            &BTreeSet::new(),
            None,
            &PackPolicy::default(),
            &mut folds,
            true,
        );
        assert_eq!(p2.records[0], p.records[0], "byte for byte");
        let seqs: Vec<u64> = p2.records.iter().map(|r| r.head.seq).collect();
        assert_eq!(seqs, [4, 6, 2, 5]);
        assert_eq!((p2.folded, p2.records[1].covers.clone()), (0, vec![6]));
        // Known acknowledged in this process: not re-sent.
        let p3 = plan(
            vec![event(7, 1)],
            &[1, 3, 4].into(),
            None,
            &PackPolicy::default(),
            &mut folds,
            true,
        );
        let seqs: Vec<u64> = p3.records.iter().map(|r| r.head.seq).collect();
        assert_eq!((seqs, p3.new_group), (vec![6, 7], false));
    }

    #[test]
    fn one_heartbeat_goes_as_it_is_and_big_records_wait_for_tls() {
        let read = vec![event(1, 5000), hb(2, None, false), event(3, 3)];
        let dir = tempfile::tempdir().unwrap();
        let mut folds = Folds::load(dir.path());
        let p = plan(
            read.clone(),
            &BTreeSet::new(),
            Some(1000),
            &PackPolicy::default(),
            &mut folds,
            true,
        );
        assert_eq!(p.folded, 0);
        assert_eq!(p.left_for_tls, [1]);
        let seqs: Vec<u64> = p.records.iter().map(|r| r.head.seq).collect();
        assert_eq!(seqs, [2, 3]);
        assert_eq!(p.records[0].payload, read[1].payload);
        let mut folds = Folds::load(dir.path());
        let without_tls = plan(
            read,
            &[3].into(),
            None,
            &PackPolicy::default(),
            &mut folds,
            false,
        );
        let seqs: Vec<u64> = without_tls.records.iter().map(|r| r.head.seq).collect();
        assert_eq!(seqs, [2, 1], "no TLS: sent anyway; delivered ones skipped");
    }

    #[test]
    fn events_go_before_log_lines() {
        let log = |seq: u64| Record {
            seq,
            at_ms: 1000 + seq,
            class: RecordClass::Log,
            payload: Payload::Log(flotta_proto::payload::LogLine {
                source: "s".into(),
                level: Level::Warn,
                message: "l".into(),
            })
            .encode(),
        };
        let read = vec![log(1), event(2, 3), hb(3, None, false), log(4), event(5, 3)];
        let dir = tempfile::tempdir().unwrap();
        let mut folds = Folds::load(dir.path());
        let p = plan(
            read,
            &BTreeSet::new(),
            None,
            &PackPolicy::default(),
            &mut folds,
            true,
        );
        let seqs: Vec<u64> = p.records.iter().map(|r| r.head.seq).collect();
        assert_eq!(seqs, [3, 2, 5, 1, 4]);
    }

    #[test]
    fn only_the_acknowledged_prefix_is_released() {
        let mut p = Prefix::default();
        for (seq, acked) in [(1, false), (2, false), (3, true), (4, false)] {
            p.push(seq, acked);
        }
        assert_eq!(p.take_acked(), None);
        p.mark(2);
        assert_eq!(p.take_acked(), None);
        p.mark(1);
        assert_eq!(p.take_acked(), Some(3));
        p.push(5, false);
        p.mark(5);
        assert_eq!(p.take_acked(), None);
        p.mark(4);
        assert_eq!(p.take_acked(), Some(5));
    }
}
