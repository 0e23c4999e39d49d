//! One datagram in, at most one sealed answer out (blocking: runs on the
//! blocking pool, called by the UDP listener):
//!
//! 1. parse the header: an uplink frame carrying its key id (UDP), or, on
//!    a carrier that identifies the device by address ([`Carrier::device`],
//!    SBD by IMEI), with or without it (a key id must be that device's);
//! 2. find the key id's contexts (cache, then store) and pick the epoch by
//!    the E parity bit;
//! 3. `open` (authenticates everything, binds the device id);
//! 4. decode the items (a frame with any invalid item is refused whole);
//!    a duplicate whose answer is kept ([`AnswerCache`]) gets those bytes
//!    back at once: no store write, no new downlink counter;
//! 5. store in one transaction ([`Store::ingest_frame`]): replay check,
//!    records, fragments, window mark, durable before anything is sent;
//! 6. answer: `Ack` from the window and the device's low-water mark, then
//!    configuration and `Rekey` (fresh frames only), sealed as a downlink
//!    answer with a persisted downlink counter.
//!
//! Nothing is ever sent for a datagram that does not authenticate. An
//! answer to a duplicate is bytes sealed before (the fresh frame's answer,
//! or an ack-only answer sealed once for its duplicates) and never longer
//! than the datagram it answers (no amplification by replay, and replays
//! spend no downlink counters).

use std::sync::Arc;

use flotta_proto::frame::{
    FrameError, FrameType, Header, KeyId, OVERHEAD, ReplayWindow, open, seal, sealed_len,
};
use flotta_proto::frame_keys::hex;

use super::answer::{self, Big, BigItems, ConfigOffer};
use super::answers::{AnswerCache, FrameRef};
use super::items::decode_uplink;
use super::keyring::{CachedEpoch, FrameKeyring};
use super::link_usage;
use super::{FrameDrop, FrameSettings, FramesError};
use crate::decode::class_word;
use crate::link_stats::LinkTally;
use crate::metrics::{ClassLabels, Metrics};
use crate::service::configuration_message;
use crate::store::{FrameIngested, FrameVerdict, FrameWrite, Store};

/// What became of a frame that was answered (or would have been).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameResult {
    /// Fresh and stored.
    Stored,
    /// Seen before: acknowledged again, nothing stored.
    Duplicate,
}

impl FrameResult {
    /// The `result` label of `flotta_frames_total`.
    pub fn label(self) -> &'static str {
        match self {
            FrameResult::Stored => "stored",
            FrameResult::Duplicate => "duplicate",
        }
    }
}

/// An authenticated frame's outcome and its answer (`None`: an answer to
/// a duplicate that would have been longer than the datagram).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    /// Stored or duplicate.
    pub result: FrameResult,
    /// The sealed answer to send back to the datagram's source.
    pub answer: Option<Vec<u8>>,
    /// The device asked for this answer (its status's ack-wanted flag).
    /// Links with few downlinks (LoRaWAN) send only these: the device asks
    /// on a window's last frame, and configuration and keys ride on that
    /// answer.
    pub wanted: bool,
}

/// Plaintext bytes an answer of `answer_bytes` may hold.
fn room(answer_bytes: usize) -> usize {
    answer_bytes.saturating_sub(OVERHEAD)
}

/// The link a frame came over and what it allows.
#[derive(Debug, Clone)]
pub struct Carrier<'a> {
    /// The link's name, stored as the device's `last_link` (`udp`, `sbd`,
    /// `lorawan`).
    pub link: &'static str,
    /// Longest sealed answer the link carries (`udp_answer_bytes`,
    /// `sbd_answer_bytes`): a configuration that does not fit is announced
    /// as pending.
    pub answer_bytes: usize,
    /// What becomes of a configuration (or `Rekey`) that does not fit one
    /// answer: announced as pending (the device fetches it over TLS) or
    /// sent in parts over successive answers (links without TLS).
    pub big_items: BigItems,
    /// Longest answer to a duplicate: over UDP the datagram's length (no
    /// amplification towards a spoofed source); on a carrier that delivers
    /// answers itself (SBD MT) the answer budget.
    pub duplicate_answer_max: usize,
    /// The device the network identified (bound address), if any.
    pub device: Option<&'a crate::device_id::DeviceId>,
    /// The SBD facts of the message, stored with a fresh frame.
    pub sbd: Option<crate::store::SbdUplink>,
    /// The LoRaWAN facts of the uplink, stored with a fresh frame.
    pub lorawan: Option<crate::store::LoraUplinkFacts>,
}

/// A fresh frame's facts its answer is made from.
struct Fresh<'a> {
    device: &'a crate::device_id::DeviceId,
    epoch: &'a CachedEpoch,
    ingested: &'a FrameIngested,
    /// The configuration version the device reported.
    device_version: &'a str,
    /// Big items: the carrier's way and the device's progress.
    big: Big,
}

/// The sealed-frame ingest path.
#[derive(Debug)]
pub struct FrameIngest {
    store: Arc<dyn Store>,
    keyring: Arc<FrameKeyring>,
    settings: FrameSettings,
    metrics: Arc<Metrics>,
    answers: AnswerCache,
    /// Link statistics waiting for the device's next frame per link.
    tally: LinkTally,
}

impl FrameIngest {
    /// Assemble the ingest path.
    pub fn new(
        store: Arc<dyn Store>,
        keyring: Arc<FrameKeyring>,
        settings: FrameSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            keyring,
            answers: AnswerCache::new(settings.answer_cache_bytes),
            tally: LinkTally::new(),
            settings,
            metrics,
        }
    }

    /// Handle one datagram received over UDP at `now_ms`: its header must
    /// carry the key id.
    ///
    /// # Errors
    /// [`FrameDrop`]: why there is no answer.
    pub fn handle(&self, datagram: &[u8], now_ms: u64) -> Result<Answered, FrameDrop> {
        let carrier = Carrier {
            link: "udp",
            answer_bytes: self.settings.answer_bytes,
            big_items: BigItems::Pending,
            duplicate_answer_max: datagram.len(),
            device: None,
            sbd: None,
            lorawan: None,
        };
        self.handle_on(datagram, carrier, now_ms)
    }

    /// Handle one frame that a network delivered for a bound address (an
    /// SBD MO for an IMEI): `carrier.device` is the device the network
    /// identified. A header with a key id is fine if it is that device's.
    ///
    /// # Errors
    /// [`FrameDrop`]: why there is no answer.
    pub fn handle_bound(
        &self,
        frame: &[u8],
        carrier: Carrier<'_>,
        now_ms: u64,
    ) -> Result<Answered, FrameDrop> {
        self.handle_on(frame, carrier, now_ms)
    }

    /// The key id of a frame: its header's, or the bound device's.
    fn key_of(&self, header: &Header, carrier: &Carrier<'_>) -> Result<[u8; 4], FrameDrop> {
        match (header.key_id, carrier.device) {
            (Some(k), _) => Ok(k.0),
            (None, None) => Err(FrameDrop::Malformed(
                "UDP frames must carry the key id".into(),
            )),
            (None, Some(device)) => self
                .store
                .frame_contexts(device)?
                .first()
                .map(|c| c.keys.key_id)
                .ok_or_else(|| {
                    FrameDrop::UnknownKey(format!("(none: device {device} has no frame keys)"))
                }),
        }
    }

    fn handle_on(
        &self,
        datagram: &[u8],
        carrier: Carrier<'_>,
        now_ms: u64,
    ) -> Result<Answered, FrameDrop> {
        let malformed = |e: FrameError| FrameDrop::Malformed(e.to_string());
        let (header, _) = Header::parse(datagram).map_err(malformed)?;
        if header.frame_type != FrameType::UplinkData {
            return Err(FrameDrop::Malformed("not an uplink frame".into()));
        }
        let key_id = KeyId(self.key_of(&header, &carrier)?);
        let key_hex = hex(&key_id.0);
        let Some(key) = self.keyring.lookup(key_id.0)? else {
            return Err(FrameDrop::UnknownKey(key_hex));
        };
        if let Some(device) = carrier.device
            && key.device_id != *device
        {
            return Err(FrameDrop::WrongDevice(format!(
                "key id {key_hex} is of {}, the {} address of {device}",
                key.device_id, carrier.link
            )));
        }
        let Some(epoch) = key
            .epochs
            .iter()
            .find(|e| e.context.epoch_parity() == header.epoch_parity)
        else {
            return Err(FrameDrop::EpochMismatch(key_hex));
        };
        let mut out = vec![0u8; datagram.len()];
        let opened = match open(&epoch.context, datagram, &mut out) {
            Ok(o) => o,
            Err(FrameError::AuthenticationFailed) => return Err(FrameDrop::BadTag(key_hex)),
            Err(e) => return Err(malformed(e)),
        };
        let uplink = decode_uplink(opened.plaintext, self.settings.limits.max_record_bytes)
            .map_err(|e| {
                FrameDrop::Refused(format!("of {} (key id {key_hex}): {e}", key.device_id))
            })?;
        let frame = FrameRef::of(key_id.0, epoch.keys.epoch, header.counter, datagram);
        if let Some(kept) = self
            .answers
            .answer_duplicate(frame, carrier.duplicate_answer_max)
        {
            // Received again, as the batch route counts duplicates.
            self.count_records(uplink.records.iter().map(|r| r.class));
            let (device, link) = (&key.device_id, carrier.link);
            self.tally
                .add(device, link, &link_usage::received(datagram.len()));
            link_usage::answered(&self.tally, device, link, Some(&kept), uplink.ack_wanted);
            return Ok(Answered {
                result: FrameResult::Duplicate,
                answer: Some(kept.to_vec()),
                wanted: uplink.ack_wanted,
            });
        }
        let ack_wanted = uplink.ack_wanted;
        let duplicates = self.answers.take_duplicates(key_id.0);
        let pending = self.tally.take(&key.device_id, carrier.link);
        let mut usage = link_usage::received(datagram.len());
        usage.add(&pending);
        let write = FrameWrite {
            key_id: key_id.0,
            epoch: epoch.keys.epoch,
            counter: header.counter,
            records: uplink.records,
            status: uplink.status,
            fragments: uplink.fragments,
            limits: self.settings.limits,
            earlier_duplicates: duplicates,
            link: carrier.link,
            sbd: carrier.sbd,
            lorawan: carrier.lorawan,
            usage,
        };
        let ingested = match self.store.ingest_frame(&write, now_ms) {
            Ok(i) => i,
            Err(e) => {
                self.answers.restore_duplicates(key_id.0, duplicates);
                self.tally.add(&key.device_id, carrier.link, &pending);
                return Err(e.into());
            }
        };
        if !matches!(
            ingested.verdict,
            FrameVerdict::Stored { .. } | FrameVerdict::Duplicate
        ) {
            self.answers.restore_duplicates(key_id.0, duplicates);
            self.tally.add(&key.device_id, carrier.link, &pending);
        }
        if ingested.previous_kept != (key.epochs.len() > 1)
            || ingested.newest.as_ref().map(|n| n.keys.epoch)
                != key.epochs.first().map(|e| e.keys.epoch)
        {
            // The store dropped the previous epoch (or another path rotated).
            self.keyring.invalidate(key_id.0);
        }
        let result = match &ingested.verdict {
            FrameVerdict::Stored { completed } => {
                self.count_records(write.records.iter().map(|r| r.class));
                self.count_records(completed.iter().copied());
                FrameResult::Stored
            }
            FrameVerdict::Duplicate => {
                // Received again, as the batch route counts duplicates.
                self.count_records(write.records.iter().map(|r| r.class));
                FrameResult::Duplicate
            }
            FrameVerdict::TooOld => return Err(FrameDrop::TooOld(header.counter)),
            FrameVerdict::UnknownContext => {
                self.keyring.invalidate(key_id.0);
                return Err(match ingested.newest.is_some() {
                    true => FrameDrop::EpochMismatch(key_hex),
                    false => FrameDrop::UnknownKey(key_hex),
                });
            }
            FrameVerdict::Refused(r) => {
                return Err(FrameDrop::Refused(format!(
                    "of {} (key id {key_hex}): {r}",
                    key.device_id
                )));
            }
        };
        let ack = ReplayWindow::from_parts(ingested.window).ack(uplink.low_water);
        let plaintext = match result {
            FrameResult::Duplicate => {
                answer::plaintext(ack, None, None, room(carrier.answer_bytes), Big::default())
                    .map_err(FramesError::from)?
                    .0
            }
            FrameResult::Stored => {
                let fresh = Fresh {
                    device: &key.device_id,
                    epoch,
                    ingested: &ingested,
                    device_version: &uplink.config_version,
                    big: Big {
                        items: carrier.big_items,
                        progress: uplink.partial,
                    },
                };
                self.full_answer(&fresh, ack, room(carrier.answer_bytes), now_ms)?
            }
        };
        let needed = sealed_len(plaintext.len(), false);
        if result == FrameResult::Duplicate && needed > carrier.duplicate_answer_max {
            return Ok(Answered {
                result,
                answer: None,
                wanted: ack_wanted,
            });
        }
        let counter = self.keyring.down_counter(epoch)?;
        let mut answer = vec![0u8; needed];
        seal(
            &epoch.context,
            FrameType::DownlinkAnswer,
            counter,
            false,
            &plaintext,
            &mut answer,
        )
        .map_err(FramesError::from)?;
        match result {
            FrameResult::Stored => self.answers.remember_fresh(frame, &answer),
            FrameResult::Duplicate => self.answers.remember_ack_only(frame, &answer),
        }
        link_usage::answered(
            &self.tally,
            &key.device_id,
            carrier.link,
            Some(&answer),
            ack_wanted,
        );
        Ok(Answered {
            result,
            answer: Some(answer),
            wanted: ack_wanted,
        })
    }

    fn count_records(&self, classes: impl Iterator<Item = flotta_proto::record::RecordClass>) {
        for class in classes {
            let class = class_word(class).to_owned();
            self.metrics
                .records
                .get_or_create(&ClassLabels { class })
                .inc();
        }
    }

    /// The answer to a fresh frame: ack, configuration, rekey.
    fn full_answer(
        &self,
        fresh: &Fresh<'_>,
        ack: flotta_proto::frame::Ack,
        room: usize,
        now_ms: u64,
    ) -> Result<Vec<u8>, FrameDrop> {
        let Fresh {
            device,
            epoch,
            ingested,
            device_version,
            big,
        } = *fresh;
        let mut newest = ingested.newest.clone();
        if let Some(n) = &newest
            && n.keys.epoch == epoch.keys.epoch
            && let Some(rotated) = self
                .keyring
                .rotate_if_due(n, ingested.previous_kept, now_ms)?
        {
            newest = Some(rotated);
        }
        let rekey = newest
            .as_ref()
            .map(|n| &n.keys)
            .filter(|k| k.epoch > epoch.keys.epoch);
        let period = self.settings.default_heartbeat_period_seconds;
        let (version, message) = configuration_message(&*self.store, device, period)
            .map_err(|e| FramesError::Config(format!("configuration of {device}: {e}")))?;
        // Secrets go only over mutual TLS, never in a frame.
        let (framed, withheld) = super::withheld::without_secrets(&message);
        let json = framed.to_string();
        let offer = (version != device_version).then(|| ConfigOffer {
            version: &version,
            json: json.as_bytes(),
            tls_only: !withheld.is_empty(),
        });
        let (text, _) =
            answer::plaintext(ack, offer, rekey, room, big).map_err(FramesError::from)?;
        Ok(text)
    }
}
