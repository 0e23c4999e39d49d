//! Frames over a carrier whose answers come later (LoRaWAN class A: the
//! answer to uplink N rides on uplink N+1, and downlinks are scarce): each
//! frame is noted in the in-flight ledger (`ledger.rs`, saved before it is
//! sent), sent once without waiting, and every downlink received with it is
//! offered to the ledger, which settles whatever a fresh cumulative ack
//! covers, from this window or earlier ones.
//!
//! The device asks for an answer (the status's ack-wanted flag) on the
//! window's last frame (a status-only frame if its last round sent none),
//! on the last frame the governor's budgets leave room for, and once per
//! half of the ledger's span in flight; the server answers other frames only when it has configuration
//! or keys to send. So a window costs one downlink, which arrives with the
//! next window's first uplink and acknowledges everything before it.

use flotta_proto::frame::{
    Cursor, FrameType, OVERHEAD, OVERHEAD_WITH_KEY_ID, PackRecord, Packed, UpItem, VERSION_MAX,
    pack, seal,
};

use super::ledger::{Ledger, MAX_SPAN, Part};
use super::records::WindowRecord;
use super::window::Window;
use super::{FrameWindowError, answer, carrier_error};
use crate::carrier::CarrierError;
use crate::clock::Clock;
use crate::queue::DiskSpace;

impl<C: Clock, D: DiskSpace> Window<'_, C, D> {
    /// One frame from `cursor`: sealed, noted in the ledger, sent; the
    /// downlinks that came back settled.
    pub(super) fn send_later(
        &mut self,
        records: &[WindowRecord],
        cursor: Cursor,
        last_round: bool,
    ) -> Result<Packed, FrameWindowError> {
        let with_key_id = !self.carrier.identifies_device();
        let overhead = if with_key_id {
            OVERHEAD_WITH_KEY_ID
        } else {
            OVERHEAD
        };
        let budget = self.carrier.budget();
        let counter = self.state.current()?.take_counter()?;
        let may_ask = self.carrier.may_ask_answer();
        let room_for_another = self.carrier.room_for_another(budget);
        let partial = self.parts.progress();
        let ledger = self.ledger_mut()?;
        if !may_ask && ledger.len() + 1 >= MAX_SPAN as usize {
            // No answer may be asked for (fair use) and the ledger is
            // full: sending more would only give up frames to send them
            // again. The window stops; the counter is merely skipped.
            return Err(FrameWindowError::Carrier {
                carrier: self.carrier.name(),
                source: CarrierError::HeldBack("fair_use_downlinks"),
            });
        }
        let given_up = ledger.give_up_below(counter);
        let low_water = ledger.low_water(counter);
        // Ask once per half span, so a lost answer is asked for again
        // before the oldest frames must be given up.
        // And on the last frame the budgets allow (duty cycle, fair use,
        // credits): the rest of the window is held back, and what went
        // must not wait unacknowledged until a later window gets through.
        // And on every frame while an item comes in parts: each answer
        // brings the next part (the fair-use budget still decides).
        let crowded = may_ask
            && ((ledger.len() + 1) % (MAX_SPAN as usize / 2) == 0
                || !room_for_another
                || partial.is_some());
        self.report.frames_lost += given_up.lost_frames;
        let version = Some(self.config_version.as_str())
            .filter(|v| v.len() <= VERSION_MAX)
            .unwrap_or_default();
        let packs: Vec<PackRecord<'_>> = records.iter().map(WindowRecord::as_pack).collect();
        let mut plain = vec![0; budget.saturating_sub(overhead)];
        let pack_with = |ack_wanted: bool, plain: &mut [u8]| {
            let status = UpItem::Status {
                config_version: version,
                low_water,
                ack_wanted,
                partial,
            };
            pack(plain, &status, &packs, cursor)
        };
        let mut ack_wanted = crowded;
        let mut packed = pack_with(ack_wanted, &mut plain)?;
        if may_ask && !ack_wanted && last_round && packed.next.index >= records.len() {
            // The window's last frame asks. Unless the flag (a byte) would
            // push a record out into a frame of its own that asks again —
            // two answers for one window: this frame then goes whole
            // without it, and the window ends with a frame that only asks.
            let mut asking = vec![0; plain.len()];
            let with_flag = pack_with(true, &mut asking)?;
            if with_flag.next.index >= records.len() {
                ack_wanted = true;
                packed = with_flag;
                plain = asking;
            }
        }
        let mut frame = vec![0; budget];
        let n = seal(
            self.state.current()?.context(),
            FrameType::UplinkData,
            counter,
            with_key_id,
            &plain[..packed.len],
            &mut frame,
        )?;
        let now_ms = self.lock().now_ms();
        let ledger = self.ledger_mut()?;
        ledger.push(counter, now_ms, parts(records, cursor, &packed));
        ledger.save().map_err(FrameWindowError::Ledger)?;
        let downlinks = match self.carrier.send(&frame[..n]) {
            Ok(d) => d,
            Err(e) => {
                if matches!(e, CarrierError::HeldBack(_) | CarrierError::TooLarge { .. }) {
                    // Refused before transmission: not in flight (its
                    // records would otherwise wait for an ack that shows
                    // the frame lost).
                    let ledger = self.ledger_mut()?;
                    ledger.unsend(counter);
                    ledger.save().map_err(FrameWindowError::Ledger)?;
                }
                return Err(carrier_error(&*self.carrier)(e));
            }
        };
        if ack_wanted {
            // Charged once it went on air: the downlink it will bring.
            self.carrier.ask_answer();
        }
        self.report.frames += 1;
        self.asked = ack_wanted;
        for d in downlinks {
            self.take_answer(&d)?;
        }
        Ok(packed)
    }

    /// Settle what a fresh answer acknowledges, then apply it; anything
    /// else is counted and dropped.
    fn take_answer(&mut self, datagram: &[u8]) -> Result<(), FrameWindowError> {
        let ctx = self.state.current()?.context();
        let Some((down_counter, ack)) = answer::ack_of(ctx, datagram) else {
            self.report.answers_ignored += 1;
            return Ok(());
        };
        let answer = answer::read(ctx, datagram)?;
        let ledger = self.ledger_mut()?;
        let Some(res) = ledger.resolve(&ack, down_counter) else {
            self.report.answers_ignored += 1;
            return Ok(());
        };
        self.report.frames_acked += res.acked_frames;
        self.report.frames_lost += res.lost_frames;
        for seq in &res.delivered {
            self.prefix.mark(*seq);
            self.state.delivered.insert(*seq);
        }
        self.settle()?;
        let acked = self.lock().acked_through();
        let ledger = self.ledger_mut()?;
        ledger.note_delivered(&res.delivered, acked);
        ledger.save().map_err(FrameWindowError::Ledger)?;
        self.apply(answer)
    }

    fn ledger_mut(&mut self) -> Result<&mut Ledger, FrameWindowError> {
        // Set by `run` whenever the carrier answers later.
        self.ledger.as_mut().ok_or(FrameWindowError::NoContext)
    }
}

/// The parts of `records` a frame packed from `cursor` to `packed.next`:
/// records whose last byte it carries, and the one it leaves unfinished.
fn parts(records: &[WindowRecord], cursor: Cursor, packed: &Packed) -> Vec<Part> {
    let mut parts: Vec<Part> = records[cursor.index..packed.next.index]
        .iter()
        .map(|r| Part {
            covers: r.covers.clone(),
            ends: true,
            broken: false,
        })
        .collect();
    if packed.next.offset > 0
        && let Some(r) = records.get(packed.next.index)
    {
        parts.push(Part {
            covers: r.covers.clone(),
            ends: false,
            broken: false,
        });
    }
    parts
}
