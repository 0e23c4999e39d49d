//! The frame window's loop (see the module docs of `frames`): rounds of
//! queue records, one frame in flight at a time, the queue acknowledged
//! after every answer, between exchanges only.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use flotta_proto::frame::{
    Cursor, FrameType, OVERHEAD, OVERHEAD_WITH_KEY_ID, PackRecord, Packed, UpItem, VERSION_MAX,
    inner_item, pack, seal,
};

use super::folds::Folds;
use super::ledger::Ledger;
use super::parts::Reassembly;
use super::policy::PackPolicy;
use super::records::{Prefix, WindowRecord, plan};
use super::{FrameReport, FrameState, FrameWindowError, answer, carrier_error};
use crate::carrier::{CarrierError, FrameCarrier};
use crate::clock::Clock;
use crate::desired::Desired;
use crate::frame_keys;
use crate::queue::{DiskSpace, Queue};

/// What a frame window needs to know besides the queue and the carrier.
#[derive(Debug, Clone)]
pub struct FrameWindowParams {
    /// The agent's data directory (keys, counters, configuration).
    pub data_dir: PathBuf,
    /// The Flotta device id, bound into every frame.
    pub device_id: String,
    /// Records larger than this are left for TLS (`None`: no TLS carrier
    /// is configured, so everything goes as frames, fragmented if need be).
    pub tls_limit: Option<usize>,
    /// Payload bytes read from the queue per round (memory bound).
    pub round_bytes: usize,
    /// Which log lines travel, and how long a message may be.
    pub policy: PackPolicy,
}

/// Send what was queued before the window opened over `carrier`, as sealed
/// frames (at least one frame, to sync configuration and keys). A
/// transmission the governor holds back ends the window early but
/// successfully ([`FrameReport::held_back_by`]).
///
/// # Errors
/// [`FrameWindowError::NoContext`] without keys; the carrier's error when a
/// frame went unanswered after its attempts (its records stay queued); key,
/// counter, queue and frame errors.
pub fn run_frame_window<C: Clock, D: DiskSpace>(
    queue: &Mutex<Queue<C, D>>,
    carrier: &mut dyn FrameCarrier,
    state: &mut FrameState,
    params: &FrameWindowParams,
    desired: &Desired,
) -> Result<FrameReport, FrameWindowError> {
    let before = carrier.traffic();
    let mut w = Window {
        queue,
        report: FrameReport {
            carrier: carrier.name(),
            min_log_level: params.policy.min_log_level,
            ..FrameReport::default()
        },
        carrier,
        state,
        params,
        config_version: desired.version.clone(),
        prefix: Prefix::default(),
        discarded: BTreeSet::new(),
        ledger: None,
        asked: false,
        parts: Reassembly::load(&params.data_dir),
    };
    // A spent budget (even a full frame would be held back): nothing to
    // plan. Planning would fold the heartbeats into a summary of their own
    // (durable, never folded again) that then waits unsent; every such
    // window would add one more record for the budget to carry later.
    let mut result = match w.carrier.held_back_now(w.carrier.budget()) {
        Some(budget) => Err(FrameWindowError::Carrier {
            carrier: w.carrier.name(),
            source: CarrierError::HeldBack(budget),
        }),
        None => w.run(),
    };
    if let Err(FrameWindowError::Carrier {
        source: CarrierError::HeldBack(budget),
        ..
    }) = &result
    {
        // A budget is spent (governor): the window did what it was allowed
        // to, which is not a failure to retry sooner, nor worth a log
        // record that would cost the same budget to send.
        w.report.held_back_by = Some(budget);
        result = Ok(());
    }
    if result.is_ok() && w.report.frames > 0 {
        // A queue made from nothing cannot ask the server over frames what
        // it holds (renumber.rs); once frames delivered its records, a later
        // TLS window must not renumber them as if they were strangers. (A
        // window held back before its first frame delivered nothing.)
        result = crate::renumber::resolve(queue, None, &params.data_dir)
            .map(|_| ())
            .map_err(FrameWindowError::from);
    }
    let Window {
        mut report,
        carrier,
        ..
    } = w;
    report.traffic = carrier.traffic().since(&before);
    result.map(|()| report)
}

pub(super) struct Window<'a, C: Clock, D: DiskSpace> {
    pub(super) queue: &'a Mutex<Queue<C, D>>,
    pub(super) carrier: &'a mut dyn FrameCarrier,
    pub(super) state: &'a mut FrameState,
    pub(super) params: &'a FrameWindowParams,
    pub(super) report: FrameReport,
    pub(super) config_version: String,
    pub(super) prefix: Prefix,
    /// Log lines below the level (no TLS carrier), marked acknowledged in
    /// `prefix` and counted once the queue deleted them.
    discarded: BTreeSet<u64>,
    /// Frames awaiting their ack, over a carrier whose answers come later
    /// (`deferred.rs`); `None` over one that answers each frame.
    pub(super) ledger: Option<Ledger>,
    /// The last frame sent asked for an answer (`deferred.rs`).
    pub(super) asked: bool,
    /// An item coming in parts (`parts.rs`): reported in every status.
    pub(super) parts: Reassembly,
}

impl<C: Clock, D: DiskSpace> Window<'_, C, D> {
    pub(super) fn lock(&self) -> MutexGuard<'_, Queue<C, D>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&mut self) -> Result<(), FrameWindowError> {
        let (end, acked) = {
            let q = self.lock();
            (q.next_seq(), q.acked_through())
        };
        self.state.prune(acked);
        let keys = self
            .state
            .sender(&self.params.data_dir, &self.params.device_id)?
            .keys()
            .clone();
        if self.carrier.answers_later() {
            let mut ledger = Ledger::load(&self.params.data_dir, keys.key_id, keys.epoch);
            // Delivered before, by this process or an earlier one.
            ledger.note_delivered(&[], acked);
            self.state.delivered.extend(ledger.delivered());
            self.ledger = Some(ledger);
        }
        let mut result = self.rounds(end, acked);
        if result.is_ok() && self.ledger.is_some() && self.report.frames_lost > 0 {
            // Answers came later: records of frames this window found lost
            // were in flight when it planned; they go again now, not a
            // window later.
            self.prefix = Prefix::default();
            let acked = self.lock().acked_through();
            result = self.rounds(end, acked);
        }
        if let Some(ledger) = &self.ledger {
            self.report.frames_in_flight = u32::try_from(ledger.len()).unwrap_or(u32::MAX);
        }
        result
    }

    fn rounds(&mut self, end: u64, acked: Option<u64>) -> Result<(), FrameWindowError> {
        let mut folds = Folds::load(&self.params.data_dir);
        let mut dirty = folds.prune(acked);
        let mut from = 0;
        loop {
            let read = {
                let mut q = self.lock();
                q.read_batch_from(from, usize::MAX, self.params.round_bytes)?
            };
            let raw = read.len();
            let read: Vec<_> = read.into_iter().filter(|r| r.seq < end).collect();
            let Some(last) = read.last() else { break };
            let from_start = from == 0;
            from = last.seq + 1;
            // Past the window's end, or at it: this is its last round.
            let done = read.len() < raw || from >= end;
            for r in &read {
                self.prefix
                    .push(r.seq, self.state.delivered.contains(&r.seq));
            }
            // Records in flight (answers later) are not sent again.
            let skip = match &self.ledger {
                Some(l) => self
                    .state
                    .delivered
                    .union(&l.in_flight())
                    .copied()
                    .collect(),
                None => self.state.delivered.clone(),
            };
            let plan = plan(
                read,
                &skip,
                self.params.tls_limit,
                &self.params.policy,
                &mut folds,
                from_start,
            );
            if plan.new_group || dirty {
                // Durable before the group's first frame (folds.rs).
                folds.save().map_err(FrameWindowError::Folds)?;
                dirty = false;
            }
            self.report.left_for_tls += plan.left_for_tls.len() as u64;
            self.report.heartbeats_folded += plan.folded;
            for seq in plan.discarded {
                self.prefix.mark(seq);
                self.discarded.insert(seq);
            }
            self.send_all(&plan.records, done)?;
            // A round of records discarded or delivered before may complete
            // the prefix without a frame of its own.
            self.settle()?;
            if done {
                break;
            }
        }
        // At least one frame; over a carrier whose answers come later, the
        // last one asks for an answer.
        let ask = self.ledger.is_some() && !self.asked && self.carrier.may_ask_answer();
        if self.report.frames == 0 || ask {
            self.send_frame(&[], Cursor::default(), true)?;
        }
        if dirty {
            folds.save().map_err(FrameWindowError::Folds)?;
        }
        Ok(())
    }

    /// Send `records` in as many frames as they need (`last_round`: the
    /// window's last).
    fn send_all(
        &mut self,
        records: &[WindowRecord],
        last_round: bool,
    ) -> Result<(), FrameWindowError> {
        let mut cursor = Cursor::default();
        while cursor.index < records.len() {
            cursor = self.send_frame(records, cursor, last_round)?.next;
        }
        Ok(())
    }

    /// One frame: seal from `cursor`, exchange, settle what it completed,
    /// apply the answer.
    fn send_frame(
        &mut self,
        records: &[WindowRecord],
        cursor: Cursor,
        last_round: bool,
    ) -> Result<Packed, FrameWindowError> {
        if self.ledger.is_some() {
            return self.send_later(records, cursor, last_round);
        }
        let with_key_id = !self.carrier.identifies_device();
        let overhead = if with_key_id {
            OVERHEAD_WITH_KEY_ID
        } else {
            OVERHEAD
        };
        let budget = self.carrier.budget();
        let sender = self.state.current()?;
        let counter = sender.take_counter()?;
        // A version too long for the status is sent as "none": the server
        // then offers its configuration (as ConfigPending if too big).
        let version = Some(self.config_version.as_str())
            .filter(|v| v.len() <= VERSION_MAX)
            .unwrap_or_default();
        let status = UpItem::Status {
            config_version: version,
            low_water: counter,
            ack_wanted: false,
            partial: self.parts.progress(),
        };
        let packs: Vec<PackRecord<'_>> = records.iter().map(WindowRecord::as_pack).collect();
        let mut plain = vec![0; budget.saturating_sub(overhead)];
        let packed = pack(&mut plain, &status, &packs, cursor)?;
        let mut frame = vec![0; budget];
        let ctx = sender.context();
        let n = seal(
            ctx,
            FrameType::UplinkData,
            counter,
            with_key_id,
            &plain[..packed.len],
            &mut frame,
        )?;
        let datagram = self
            .carrier
            .exchange(&frame[..n], &mut |d: &[u8]| answer::acks(ctx, d, counter))
            .map_err(carrier_error(&*self.carrier))?;
        let answer = answer::read(ctx, &datagram)?;
        self.report.frames += 1;
        for r in &records[cursor.index..packed.next.index] {
            for seq in &r.covers {
                self.prefix.mark(*seq);
                // Also for heartbeats of this group in later rounds.
                self.state.delivered.insert(*seq);
            }
        }
        self.settle()?;
        self.apply(answer)?;
        Ok(packed)
    }

    /// Delete the acknowledged prefix from the queue.
    pub(super) fn settle(&mut self) -> Result<(), FrameWindowError> {
        if let Some(through) = self.prefix.take_acked() {
            let mut q = self.lock();
            let before = q.stats().records;
            q.ack(through)?;
            let after = q.stats().records;
            drop(q);
            let kept = self.discarded.split_off(&through.saturating_add(1));
            let discarded = std::mem::replace(&mut self.discarded, kept).len() as u64;
            self.report.logs_discarded += discarded;
            self.report.records_acked += before.saturating_sub(after).saturating_sub(discarded);
        }
        Ok(())
    }

    /// Configuration and keys from an accepted answer (whole, or the
    /// item its part completed).
    pub(super) fn apply(&mut self, mut answer: answer::Answer) -> Result<(), FrameWindowError> {
        if let Some(part) = answer.part.take()
            && let Some(inner) = self.parts.accept(&part).map_err(FrameWindowError::Parts)?
        {
            match inner_item(&inner) {
                Ok(item) => answer::item(item, &mut answer),
                // Dropped: the server sends it again while it is due.
                Err(e) => crate::journal::warn(&format!("an item received in parts: {e}")),
            }
        }
        let data_dir = &self.params.data_dir;
        // One that cannot be read or stored is left (as the TLS window
        // does): the server offers it again while the version differs.
        if let Some(Ok(update)) = answer.config
            && let Ok(d) = Desired::store(data_dir, &update)
        {
            self.config_version.clone_from(&d.version);
            self.report.config_updated = Some(d);
        }
        if let Some(v) = answer.pending {
            self.report.config_pending = Some(v);
        }
        if let Some(keys) = answer.rekey {
            let (key_id, epoch) = (keys.key_id, keys.epoch);
            // Durable first: a frame under the new epoch must never precede
            // the keys on disk (after a crash the device could not read the
            // answers any more).
            frame_keys::store(data_dir, &keys)?;
            self.state.switch(data_dir, &self.params.device_id, keys)?;
            self.report.rekeyed_to_epoch = Some(epoch);
            if let Some(old) = &self.ledger {
                // Frames in flight under the old epoch can no longer be
                // acknowledged: their records are sent again.
                self.report.frames_lost += u32::try_from(old.len()).unwrap_or(u32::MAX);
                let ledger = Ledger::load(data_dir, key_id, epoch);
                ledger.save().map_err(FrameWindowError::Ledger)?;
                self.ledger = Some(ledger);
            }
        }
        Ok(())
    }
}
