//! Heartbeat groups already sent over frames, on disk:
//! `<data_dir>/frame/folds.bin`, so that no heartbeat is ever folded into
//! two different records the server would both store.
//!
//! A frame window folds the heartbeats it takes into one summary (stored
//! under the last one's `seq`), or sends a lone heartbeat as it is. If the
//! window ends after the server stored that record but before the queue
//! could delete the heartbeats (the answer was lost, the device was killed,
//! an earlier record is not acknowledged yet), the next window must not
//! fold them again with newer ones: the new summary would have another
//! `seq`, and the server would count those heartbeats twice. So a group is
//! written here (fsynced) before its first frame is sealed, its heartbeats
//! are never folded again, and later windows re-send the group's record
//! byte for byte (the server deduplicates it by `seq`) until the queue has
//! deleted every heartbeat it covers.
//!
//! Format: magic `FLD1`, postcard list of groups, CRC-32 of both. A missing
//! or damaged file is an empty list: the worst outcome is a heartbeat
//! counted twice, never a record lost.

use std::path::{Path, PathBuf};

use flotta_proto::frame::RecordHead;
use serde::{Deserialize, Serialize};

use super::records::WindowRecord;
use crate::fsutil::write_atomic;

/// The file, relative to the data directory.
pub(crate) const FOLDS_FILE: &str = "frame/folds.bin";
const MAGIC: &[u8; 4] = b"FLD1";

/// One record standing for heartbeats (a summary, or a lone heartbeat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Group {
    seq: u64,
    at_ms: u64,
    class: u8,
    payload: Vec<u8>,
    covers: Vec<u64>,
}

/// The groups not yet deleted from the queue.
#[derive(Debug)]
pub(crate) struct Folds {
    path: PathBuf,
    groups: Vec<Group>,
}

impl Folds {
    /// The groups stored under `data_dir` (none if the file is missing or
    /// damaged).
    pub(crate) fn load(data_dir: &Path) -> Self {
        let path = data_dir.join(FOLDS_FILE);
        let groups = std::fs::read(&path)
            .ok()
            .and_then(|b| decode(&b))
            .unwrap_or_default();
        Self { path, groups }
    }

    /// Forget groups whose heartbeats the queue deleted (acknowledged
    /// through `acked`); returns whether any was forgotten.
    pub(crate) fn prune(&mut self, acked: Option<u64>) -> bool {
        let before = self.groups.len();
        let acked = acked.map_or(-1, i128::from);
        self.groups
            .retain(|g| g.covers.iter().any(|c| i128::from(*c) > acked));
        self.groups.len() != before
    }

    /// Whether heartbeat `seq` belongs to a group.
    pub(crate) fn covers(&self, seq: u64) -> bool {
        self.groups.iter().any(|g| g.covers.contains(&seq))
    }

    /// The groups as records to send, in `seq` order.
    pub(crate) fn records(&self) -> Vec<WindowRecord> {
        let mut out: Vec<WindowRecord> = self
            .groups
            .iter()
            .map(|g| WindowRecord {
                head: RecordHead {
                    seq: g.seq,
                    at_ms: g.at_ms,
                    class: g.class,
                },
                payload: g.payload.clone(),
                covers: g.covers.clone(),
            })
            .collect();
        out.sort_by_key(|r| r.head.seq);
        out
    }

    /// Add a group for `record` (not saved yet).
    pub(crate) fn add(&mut self, record: &WindowRecord) {
        self.groups.push(Group {
            seq: record.head.seq,
            at_ms: record.head.at_ms,
            class: record.head.class,
            payload: record.payload.clone(),
            covers: record.covers.clone(),
        });
    }

    /// Replace the file durably (removing it when there is no group).
    ///
    /// # Errors
    /// The I/O error.
    pub(crate) fn save(&self) -> std::io::Result<()> {
        if self.groups.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        write_atomic(&self.path, &encode(&self.groups), 0o600)
    }
}

/// What a TLS window does with the groups: its batches carry each group's
/// record instead of the heartbeats it covers (which the server may hold
/// folded already: sent raw, they would be counted twice). A covered
/// heartbeat may then be deleted before its group is acknowledged; its
/// data stays durable in the group file, which keeps the group until the
/// queue deleted every heartbeat it covers, and whichever window comes
/// next sends it.
#[derive(Debug)]
pub struct TlsFolds {
    groups: Vec<WindowRecord>,
    sent: std::collections::BTreeSet<u64>,
}

impl TlsFolds {
    /// The groups under `data_dir` the queue (acknowledged through `acked`)
    /// still needs.
    pub fn load(data_dir: &Path, acked: Option<u64>) -> Self {
        let mut folds = Folds::load(data_dir);
        folds.prune(acked);
        Self {
            groups: folds.records(),
            sent: std::collections::BTreeSet::new(),
        }
    }

    /// Rewrite one batch (queue records in `seq` order): drop the covered
    /// heartbeats, add the groups up to the batch's last `seq` not sent yet
    /// in this window.
    pub fn substitute(&mut self, batch: &mut Vec<crate::queue::Record>) {
        use flotta_proto::record::RecordClass;
        let Some(last) = batch.last().map(|r| r.seq) else {
            return;
        };
        if self.groups.is_empty() {
            return;
        }
        batch.retain(|r| !self.groups.iter().any(|g| g.covers.contains(&r.seq)));
        for g in &self.groups {
            if g.head.seq <= last && self.sent.insert(g.head.seq) {
                batch.push(crate::queue::Record {
                    seq: g.head.seq,
                    at_ms: g.head.at_ms,
                    class: RecordClass::ALL
                        .get(usize::from(g.head.class))
                        .copied()
                        .unwrap_or(RecordClass::Heartbeat),
                    payload: g.payload.clone(),
                });
            }
        }
        batch.sort_by_key(|r| r.seq);
        batch.dedup_by_key(|r| r.seq);
    }
}

fn encode(groups: &[Group]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend(postcard::to_allocvec(groups).unwrap_or_default());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<Vec<Group>> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if !body.starts_with(MAGIC) || crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    postcard::from_bytes(&body[MAGIC.len()..]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, covers: &[u64]) -> WindowRecord {
        WindowRecord {
            head: RecordHead {
                seq,
                at_ms: seq * 10,
                class: 0,
            },
            payload: vec![seq as u8; 5],
            covers: covers.to_vec(),
        }
    }

    #[test]
    fn groups_survive_a_restart_until_the_queue_deleted_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = Folds::load(dir.path());
        assert!(f.records().is_empty());
        f.add(&record(9, &[3, 5, 9]));
        f.add(&record(4, &[4]));
        f.save().unwrap();
        let mut again = Folds::load(dir.path());
        assert_eq!(again.records(), [record(4, &[4]), record(9, &[3, 5, 9])]);
        assert!(again.covers(5) && !again.covers(6));
        assert!(!again.prune(Some(3)));
        assert!(again.prune(Some(8)), "the lone heartbeat 4 is deleted");
        assert_eq!(again.records(), [record(9, &[3, 5, 9])]);
        assert!(again.prune(Some(9)));
        again.save().unwrap();
        assert!(!dir.path().join(FOLDS_FILE).exists());
    }

    #[test]
    fn a_damaged_file_is_an_empty_list() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = Folds::load(dir.path());
        f.add(&record(9, &[3, 9]));
        f.save().unwrap();
        let path = dir.path().join(FOLDS_FILE);
        let good = std::fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            assert!(Folds::load(dir.path()).records().is_empty(), "byte {i}");
        }
        std::fs::write(&path, b"FL").unwrap();
        assert!(Folds::load(dir.path()).records().is_empty());
    }

    #[test]
    fn tls_batches_carry_groups_instead_of_their_heartbeats() {
        use flotta_proto::record::RecordClass;
        let dir = tempfile::tempdir().unwrap();
        let mut f = Folds::load(dir.path());
        f.add(&record(9, &[3, 5, 9]));
        f.save().unwrap();
        let rec = |seq, class| crate::queue::Record {
            seq,
            at_ms: 0,
            class,
            payload: vec![],
        };
        let mut tls = TlsFolds::load(dir.path(), Some(2));
        let mut first = vec![
            rec(3, RecordClass::Heartbeat),
            rec(4, RecordClass::Log),
            rec(5, RecordClass::Heartbeat),
        ];
        tls.substitute(&mut first);
        assert_eq!(first.iter().map(|r| r.seq).collect::<Vec<_>>(), [4]);
        let mut second = vec![
            rec(6, RecordClass::Log),
            rec(9, RecordClass::Heartbeat),
            rec(10, RecordClass::Log),
        ];
        tls.substitute(&mut second);
        let seqs: Vec<_> = second.iter().map(|r| (r.seq, r.payload.len())).collect();
        assert_eq!(seqs, [(6, 0), (9, 5), (10, 0)], "the group at its seq");
        assert!(TlsFolds::load(dir.path(), Some(9)).groups.is_empty());
    }
}
