//! Tests only: a server of sealed frames built from the proto API alone, as
//! the real one behaves (one answer per authenticated fresh or duplicate
//! uplink; items Ack, then Config or ConfigPending, then Rekey; nothing for
//! anything else; with [`TestServer::parts`], an item too large for the
//! answer goes as a `Part` from the status's progress, the `Rekey` first),
//! and a [`FakeCarrier`] that loses, duplicates, delays and
//! forges datagrams on the way.

use std::collections::{BTreeMap, BTreeSet};

use flotta_proto::frame::{
    ConfigEncoding, DownItem, FrameContext, FrameType, Header, ItemWriter, KeyId, PartProgress,
    ReplayWindow, Role, UpItem, Verdict, WireItem, next_part, open, seal, up_items,
};
use flotta_proto::frame_keys::FrameKeys;

use crate::carrier::{CarrierError, FrameCarrier, Traffic};

/// The device id every test uses.
pub(crate) const DEVICE: &str = "dev-frames-1";

/// Test keys of `epoch`.
pub(crate) fn keys(epoch: u32) -> FrameKeys {
    FrameKeys {
        key_id: [0xab, 0xcd, 0, 7],
        epoch,
        master_secret: [epoch as u8 ^ 0x3c; 32],
        master_salt: vec![epoch as u8; 8],
    }
}

struct Epoch {
    keys: FrameKeys,
    ctx: FrameContext,
    replay: ReplayWindow,
    down_counter: u32,
}

impl Epoch {
    fn new(keys: FrameKeys) -> Self {
        let ctx = FrameContext::new(
            Role::Server,
            KeyId(keys.key_id),
            keys.epoch,
            &keys.master_secret,
            &keys.master_salt,
            DEVICE.as_bytes(),
        )
        .unwrap();
        Self {
            keys,
            ctx,
            replay: ReplayWindow::new(),
            down_counter: 0,
        }
    }
}

/// A stored record: its head fields and payload.
pub(crate) type Stored = (u64, u8, Vec<u8>);

/// The server side.
pub(crate) struct TestServer {
    current: Epoch,
    previous: Option<Epoch>,
    /// Records stored, by `seq` (deduplicated).
    pub(crate) records: BTreeMap<u64, Stored>,
    /// Complete records that arrived in fresh frames, per `seq`.
    pub(crate) deliveries: BTreeMap<u64, u32>,
    /// Records that arrived again with other bytes than the stored ones
    /// (a re-pack must carry identical bytes).
    pub(crate) conflicts: Vec<u64>,
    fragments: BTreeMap<u64, (u32, Vec<u8>, BTreeSet<u32>)>,
    /// (epoch, counter) of every fresh uplink.
    pub(crate) fresh: Vec<(u32, u32)>,
    /// Every authentic uplink: (epoch, counter, frame bytes).
    pub(crate) seen: Vec<(u32, u32, Vec<u8>)>,
    /// The statuses received: (config version, low water).
    pub(crate) statuses: Vec<(String, u32)>,
    /// Whether each status asked for an answer.
    pub(crate) wanted: Vec<bool>,
    /// The last answer carried configuration or keys (not only the ack).
    carried_more: bool,
    /// The desired configuration: version, JSON, send zlib-compressed.
    pub(crate) config: Option<(String, String, bool)>,
    /// Answer budget.
    pub(crate) down_budget: usize,
    /// Rotate to these keys at the next fresh uplink.
    pub(crate) rekey: Option<FrameKeys>,
    /// Items too large for an answer go in parts (else: ConfigPending).
    pub(crate) parts: bool,
    /// The progress each status reported.
    pub(crate) progress: Vec<Option<PartProgress>>,
    /// Parts sent: (id, offset, data length).
    pub(crate) parts_sent: Vec<(u32, u32, usize)>,
}

impl TestServer {
    /// A server holding `keys` for [`DEVICE`].
    pub(crate) fn new(keys: FrameKeys) -> Self {
        Self {
            current: Epoch::new(keys),
            previous: None,
            records: BTreeMap::new(),
            deliveries: BTreeMap::new(),
            conflicts: Vec::new(),
            fragments: BTreeMap::new(),
            fresh: Vec::new(),
            seen: Vec::new(),
            statuses: Vec::new(),
            wanted: Vec::new(),
            carried_more: false,
            config: None,
            down_budget: 1200,
            rekey: None,
            parts: false,
            progress: Vec::new(),
            parts_sent: Vec::new(),
        }
    }

    fn epoch(&mut self, previous: bool) -> &mut Epoch {
        match (previous, self.previous.as_mut()) {
            (true, Some(p)) => p,
            _ => &mut self.current,
        }
    }

    /// The answer to `frame`, or `None` (not authentic, too old).
    pub(crate) fn handle(&mut self, frame: &[u8]) -> Option<Vec<u8>> {
        let (header, _) = Header::parse(frame).ok()?;
        let parity = |e: &Epoch| e.ctx.epoch_parity() == header.epoch_parity;
        let prev = if parity(&self.current) {
            false
        } else if self.previous.as_ref().is_some_and(parity) {
            true
        } else {
            return None;
        };
        let mut buf = vec![0; frame.len()];
        let plain = open(&self.epoch(prev).ctx, frame, &mut buf)
            .ok()?
            .plaintext
            .to_vec();
        let counter = header.counter;
        let epoch_no = self.epoch(prev).keys.epoch;
        let verdict = self.epoch(prev).replay.check(counter);
        if verdict == Verdict::TooOld {
            return None;
        }
        let mut low_water = 0;
        let mut ack_wanted = false;
        let mut version = String::new();
        let mut progress = None;
        let mut records = Vec::new();
        for item in up_items(&plain) {
            match item.ok()? {
                UpItem::Status {
                    config_version,
                    low_water: lw,
                    ack_wanted: wanted,
                    partial,
                } => {
                    progress = partial;
                    low_water = lw;
                    ack_wanted = wanted;
                    version = config_version.to_owned();
                }
                UpItem::Record { head, payload } => {
                    records.push((head.seq, (head.at_ms, head.class, payload.to_vec())));
                }
                UpItem::Fragment {
                    head,
                    total_len,
                    offset,
                    data,
                } => records.extend(self.fragment(head, total_len, offset, data)),
            }
        }
        self.seen.push((epoch_no, counter, frame.to_vec()));
        self.statuses.push((version.clone(), low_water));
        self.wanted.push(ack_wanted);
        self.progress.push(progress);
        self.carried_more = false;
        if !prev {
            // A frame under the newest epoch: the old one is not needed any more.
            self.previous = None;
        }
        let mut under_prev = prev;
        if verdict == Verdict::Fresh {
            self.epoch(prev).replay.mark(counter);
            self.fresh.push((epoch_no, counter));
            for (seq, r) in records {
                *self.deliveries.entry(seq).or_default() += 1;
                let stored = self.records.entry(seq).or_insert_with(|| r.clone());
                if *stored != r {
                    self.conflicts.push(seq);
                }
            }
            if !prev && let Some(next) = self.rekey.take() {
                let old = std::mem::replace(&mut self.current, Epoch::new(next));
                self.previous = Some(old);
                under_prev = true;
            }
        }
        let ack = self.epoch(under_prev).replay.ack(low_water);
        let mut buf = vec![0; self.down_budget - 12];
        let mut w = ItemWriter::new(&mut buf);
        w.push(&DownItem::Ack(ack)).ok()?;
        // Under the old epoch, every answer carries the new keys until a
        // frame comes under them.
        let k = self.current.keys.clone();
        let rekey = under_prev.then(|| DownItem::Rekey {
            key_id: KeyId(k.key_id),
            epoch: k.epoch,
            master_secret: &k.master_secret,
            salt: &k.master_salt,
        });
        let mut part_sent = false;
        let rekey_len = rekey.as_ref().map_or(0, WireItem::encoded_len);
        if let Some(item) = rekey.as_ref().filter(|_| self.parts)
            && rekey_len > w.remaining()
        {
            part_sent = self.push_part(&mut w, item, progress, usize::MAX);
        }
        if let Some((v, json, zlib)) = self.config.clone().filter(|(v, ..)| *v != version) {
            let (body, encoding) = if zlib {
                let body = flotta_proto::compress::deflate(json.as_bytes());
                (body, ConfigEncoding::ZlibJson)
            } else {
                (json.into_bytes(), ConfigEncoding::Json)
            };
            let item = DownItem::Config {
                version: &v,
                encoding,
                body: &body,
            };
            let room = w.remaining().saturating_sub(rekey_len);
            if item.encoded_len() <= room {
                w.push(&item).ok()?;
            } else if !self.parts {
                w.push(&DownItem::ConfigPending { version: &v }).ok()?;
            } else if !part_sent {
                self.push_part(&mut w, &item, progress, room);
            }
            self.carried_more = true;
        }
        if let Some(item) = rekey {
            self.carried_more = true;
            if !part_sent {
                w.push(&item).ok()?;
            }
        }
        let plain = w.written().to_vec();
        let e = self.epoch(under_prev);
        let mut out = vec![0; plain.len() + 16];
        let n = seal(
            &e.ctx,
            FrameType::DownlinkAnswer,
            e.down_counter,
            false,
            &plain,
            &mut out,
        )
        .ok()?;
        e.down_counter += 1;
        out.truncate(n);
        Some(out)
    }

    /// The next part of `item` from `progress` within `room`; whether one
    /// was written.
    fn push_part(
        &mut self,
        w: &mut ItemWriter<'_>,
        item: &DownItem<'_>,
        progress: Option<PartProgress>,
        room: usize,
    ) -> bool {
        let mut inner = vec![0; item.encoded_len()];
        item.encode(&mut inner).unwrap();
        let Some(part) = next_part(&inner, progress, room.min(w.remaining())) else {
            return false;
        };
        if let DownItem::Part {
            id, offset, data, ..
        } = part
        {
            self.parts_sent.push((id, offset, data.len()));
        }
        w.push(&part).is_ok()
    }

    /// As the server answers over links with few downlinks: only when the
    /// frame asked for an answer or it carries configuration or keys.
    pub(crate) fn handle_scarce(&mut self, frame: &[u8]) -> Option<Vec<u8>> {
        let answer = self.handle(frame)?;
        (self.wanted.last() == Some(&true) || self.carried_more).then_some(answer)
    }

    /// Reassemble; the whole record when its last byte arrived.
    fn fragment(
        &mut self,
        head: flotta_proto::frame::RecordHead,
        total: u32,
        offset: u32,
        data: &[u8],
    ) -> Option<(u64, Stored)> {
        let entry = self
            .fragments
            .entry(head.seq)
            .or_insert_with(|| (total, vec![0; total as usize], BTreeSet::new()));
        let at = offset as usize;
        entry.1[at..at + data.len()].copy_from_slice(data);
        entry.2.extend(offset..offset + data.len() as u32);
        if entry.2.len() as u32 != total {
            return None;
        }
        let (_, bytes, _) = self.fragments.remove(&head.seq)?;
        Some((head.seq, (head.at_ms, head.class, bytes)))
    }
}

/// A carrier in front of a [`TestServer`] that plays the network.
pub(crate) struct FakeCarrier<'s> {
    pub(crate) server: &'s mut TestServer,
    pub(crate) budget: usize,
    pub(crate) attempts: u32,
    /// Transmissions (0-based, over the carrier's life) lost on the way up.
    pub(crate) lose_up: BTreeSet<usize>,
    /// Transmissions whose answer is lost on the way down.
    pub(crate) lose_down: BTreeSet<usize>,
    /// From this transmission on, the server gets the frame but the device
    /// dies before it hears anything (the carrier panics).
    pub(crate) crash_at: Option<usize>,
    /// Before every answer, deliver these datagrams (forgeries) ...
    pub(crate) inject: Vec<Vec<u8>>,
    /// ... and every answer to an earlier frame again (late duplicates,
    /// replays).
    pub(crate) replay_old_answers: bool,
    pub(crate) transmissions: usize,
    answers: Vec<Vec<u8>>,
    traffic: Traffic,
}

impl<'s> FakeCarrier<'s> {
    /// A faithful network in front of `server`.
    pub(crate) fn new(server: &'s mut TestServer, budget: usize) -> Self {
        Self {
            server,
            budget,
            attempts: 3,
            lose_up: BTreeSet::new(),
            lose_down: BTreeSet::new(),
            crash_at: None,
            inject: Vec::new(),
            replay_old_answers: false,
            transmissions: 0,
            answers: Vec::new(),
            traffic: Traffic::default(),
        }
    }

    fn offer(&mut self, d: &[u8], is_answer: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.traffic.received += 1;
        self.traffic.bytes_down += d.len() as u64;
        let ok = is_answer(d);
        if !ok {
            self.traffic.ignored += 1;
        }
        ok
    }
}

impl FrameCarrier for FakeCarrier<'_> {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn budget(&self) -> usize {
        self.budget
    }

    fn identifies_device(&self) -> bool {
        false
    }

    fn exchange(
        &mut self,
        frame: &[u8],
        is_answer: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<Vec<u8>, CarrierError> {
        assert!(frame.len() <= self.budget, "frame over budget");
        for _ in 0..self.attempts {
            let n = self.transmissions;
            self.transmissions += 1;
            self.traffic.sent += 1;
            self.traffic.bytes_up += frame.len() as u64;
            if self.lose_up.contains(&n) {
                continue;
            }
            let answer = self.server.handle(frame);
            if self.crash_at.is_some_and(|c| n >= c) {
                panic!("device killed at transmission {n}");
            }
            for d in self.inject.clone() {
                assert!(!self.offer(&d, is_answer), "a forged datagram was accepted");
            }
            if self.replay_old_answers {
                for d in self.answers.clone() {
                    assert!(!self.offer(&d, is_answer), "an old answer was accepted");
                }
            }
            let Some(answer) = answer else { continue };
            if self.lose_down.contains(&n) {
                continue;
            }
            if self.offer(&answer, is_answer) {
                // Replayed before the answers of later frames.
                self.answers.push(answer.clone());
                return Ok(answer);
            }
        }
        Err(CarrierError::NoAnswer {
            attempts: self.attempts,
        })
    }

    fn traffic(&self) -> Traffic {
        self.traffic
    }
}
