//! Stamps corrected on upload: the corrections of agent time that left
//! records in the queue stamped early, kept in `<data_dir>/clock/corrections`
//! until every record they cover is acknowledged.
//!
//! The queue is append-only and nothing in it is rewritten. So a
//! correction that finds records stamped while the clock was unconfirmed
//! becomes a [`Restamp`]: records numbered `first_seq..=last_seq` stamped at
//! or before `at_or_before_ms` (agent time just before the jump, T1) are
//! `delta_ms` early (the jump, T2 − T1). The queue hands every record it
//! reads to its clock ([`Clock::restamp`](crate::clock::Clock::restamp)),
//! so both upload paths (TLS batches, sealed frames) send corrected stamps
//! and the wire formats do not change.
//!
//! **Order.** Stamps are monotonic in sequence order and the clock jumps
//! from T1 to T2 = T1 + delta: a record stamped before the jump has s ≤ T1,
//! so s + delta ≤ T2; one stamped after has s ≥ T2 and is not moved. Records
//! below `first_seq` are older still and not moved either. Corrections apply
//! oldest first, each to the stamp the earlier ones made: a stamp one of
//! them moved is at most its T2, itself at most any later correction's T1,
//! so the same argument holds at every step (and with any entry left out).
//!
//! **File.** `FLCR` | version 1 | count (u8) | count × (first seq, last
//! seq, at-or-before ms, delta ms: u64 LE each) | CRC-32 of what precedes
//! (u32 LE); replaced atomically (`fsutil::write_atomic`), removed when
//! the list is empty. At most [`MAX_RESTAMPS`] entries: a newer correction
//! drops the oldest (warned: its records go out with their early stamps,
//! which its event still names). A damaged file is reported (the caller
//! warns) and read as empty; the next write replaces it.

use std::path::{Path, PathBuf};

use super::floor::FloorError;

const MAGIC: &[u8; 4] = b"FLCR";
const VERSION: u8 = 1;
const HEAD: usize = 4 + 1 + 1;
const ENTRY: usize = 4 * 8;

/// How many corrections the file keeps (a device corrects its clock a few
/// times at most between two uploads: at start, and when NTP arrives).
pub const MAX_RESTAMPS: usize = 8;

/// Records `first_seq..=last_seq` stamped at or before `at_or_before_ms`
/// are `delta_ms` early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restamp {
    /// First record stamped while the clock was unconfirmed.
    pub first_seq: u64,
    /// Last record stamped before the correction.
    pub last_seq: u64,
    /// Agent time just before the correction (T1).
    pub at_or_before_ms: u64,
    /// How far agent time jumped forward (T2 − T1).
    pub delta_ms: u64,
}

impl Restamp {
    /// The stamp `at_ms` of record `seq`, corrected by this entry.
    pub fn apply(&self, seq: u64, at_ms: u64) -> u64 {
        if (self.first_seq..=self.last_seq).contains(&seq) && at_ms <= self.at_or_before_ms {
            at_ms.saturating_add(self.delta_ms)
        } else {
            at_ms
        }
    }
}

/// The stamp `at_ms` of record `seq` corrected by every entry, oldest first.
pub fn apply(list: &[Restamp], seq: u64, at_ms: u64) -> u64 {
    list.iter().fold(at_ms, |at, r| r.apply(seq, at))
}

/// Keep the entries an unacknowledged record may still need: drop those
/// whose range is acknowledged (through `acked`) and those beyond the
/// queue (`first_seq >= next_seq`: a queue made anew). Returns whether
/// any was dropped.
pub fn prune(list: &mut Vec<Restamp>, acked: Option<u64>, next_seq: u64) -> bool {
    let before = list.len();
    list.retain(|r| acked.is_none_or(|a| r.last_seq > a) && r.first_seq < next_seq);
    list.len() != before
}

/// Add `r` as the newest entry; returns the oldest one dropped to stay
/// within [`MAX_RESTAMPS`].
pub fn push(list: &mut Vec<Restamp>, r: Restamp) -> Option<Restamp> {
    list.push(r);
    (list.len() > MAX_RESTAMPS).then(|| list.remove(0))
}

/// `<data_dir>/clock/corrections`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("clock").join("corrections")
}

/// The persisted corrections; empty when there are none.
pub fn load(data_dir: &Path) -> Result<Vec<Restamp>, FloorError> {
    let path = path(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => decode(&bytes).map_err(|why| FloorError::Damaged { path, why }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(FloorError::Io { path, source }),
    }
}

/// Replace the persisted corrections with `list`, durably (an empty list
/// removes the file: one that comes back after a power loss is pruned
/// again).
pub fn store(data_dir: &Path, list: &[Restamp]) -> Result<(), FloorError> {
    let path = path(data_dir);
    if list.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(FloorError::Io { path, source: e })
            }
            _ => Ok(()),
        };
    }
    crate::fsutil::write_atomic(&path, &encode(list), 0o644)
        .map_err(|source| FloorError::Io { path, source })
}

fn encode(list: &[Restamp]) -> Vec<u8> {
    let list = &list[list.len().saturating_sub(MAX_RESTAMPS)..];
    let mut b = Vec::with_capacity(HEAD + list.len() * ENTRY + 4);
    b.extend_from_slice(MAGIC);
    b.push(VERSION);
    b.push(u8::try_from(list.len()).unwrap_or(u8::MAX));
    for r in list {
        for x in [r.first_seq, r.last_seq, r.at_or_before_ms, r.delta_ms] {
            b.extend_from_slice(&x.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn decode(b: &[u8]) -> Result<Vec<Restamp>, &'static str> {
    if b.len() < HEAD + 4 {
        return Err("wrong length");
    }
    if &b[..4] != MAGIC {
        return Err("bad magic");
    }
    if b[4] != VERSION {
        return Err("unknown version");
    }
    let n = usize::from(b[5]);
    if n > MAX_RESTAMPS {
        return Err("too many entries");
    }
    if b.len() != HEAD + n * ENTRY + 4 {
        return Err("wrong length");
    }
    let (body, crc) = b.split_at(b.len() - 4);
    let crc = u32::from_le_bytes(crc.try_into().map_err(|_| "wrong length")?);
    if crc != crc32fast::hash(body) {
        return Err("CRC mismatch");
    }
    let u64_at = |at: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&body[at..at + 8]);
        u64::from_le_bytes(x)
    };
    Ok((0..n)
        .map(|i| {
            let at = HEAD + i * ENTRY;
            Restamp {
                first_seq: u64_at(at),
                last_seq: u64_at(at + 8),
                at_or_before_ms: u64_at(at + 16),
                delta_ms: u64_at(at + 24),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Restamp = Restamp {
        first_seq: 10,
        last_seq: 19,
        at_or_before_ms: 5_000,
        delta_ms: 1_000,
    };

    #[test]
    fn moves_early_stamps_in_the_range_only() {
        assert_eq!(R.apply(10, 4_000), 5_000);
        assert_eq!(R.apply(19, 5_000), 6_000, "T1 itself is early");
        assert_eq!(R.apply(19, 6_000), 6_000, "stamped after the jump");
        assert_eq!(R.apply(9, 4_000), 4_000, "before the range");
        assert_eq!(R.apply(20, 4_000), 4_000, "after the range");
    }

    #[test]
    fn corrections_compose_oldest_first_and_keep_order() {
        // Jump 1: T1 5 000 -> T2 6 000; jump 2: T1 7 000 -> T2 10 000.
        let second = Restamp {
            first_seq: 10,
            last_seq: 29,
            at_or_before_ms: 7_000,
            delta_ms: 3_000,
        };
        let list = [R, second];
        let raw = [
            (10, 4_000),
            (19, 5_000),
            (20, 6_000),
            (29, 7_000),
            (30, 10_000),
        ];
        let fixed: Vec<u64> = raw.iter().map(|&(s, at)| apply(&list, s, at)).collect();
        assert_eq!(fixed, [8_000, 9_000, 9_000, 10_000, 10_000]);
        assert!(fixed.windows(2).all(|w| w[0] <= w[1]), "{fixed:?}");
    }

    #[test]
    fn prune_drops_acknowledged_and_impossible_ranges() {
        let mut list = vec![R];
        assert!(!prune(&mut list, None, 20));
        assert!(!prune(&mut list, Some(18), 20), "seq 19 still waits");
        assert!(prune(&mut list, Some(19), 20));
        assert!(list.is_empty());
        let mut list = vec![R];
        assert!(prune(&mut list, None, 0), "a queue made anew");
    }

    #[test]
    fn bounded_oldest_dropped() {
        let mut list = Vec::new();
        for i in 0..MAX_RESTAMPS as u64 {
            let r = Restamp { first_seq: i, ..R };
            assert_eq!(push(&mut list, r), None);
        }
        let dropped = push(&mut list, R);
        assert_eq!(dropped.map(|r| r.first_seq), Some(0));
        assert_eq!(list.len(), MAX_RESTAMPS);
        assert_eq!(list.last(), Some(&R));
    }

    #[test]
    fn round_trips_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        let list = vec![
            R,
            Restamp {
                first_seq: 3,
                last_seq: u64::MAX,
                at_or_before_ms: 1,
                delta_ms: 2,
            },
        ];
        store(dir.path(), &list).unwrap();
        assert_eq!(load(dir.path()).unwrap(), list);
        let p = path(dir.path());
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[20] ^= 0x01;
        std::fs::write(&p, &bytes).unwrap();
        assert!(matches!(
            load(dir.path()),
            Err(FloorError::Damaged {
                why: "CRC mismatch",
                ..
            })
        ));
        std::fs::write(&p, b"FLCR\x01\x05").unwrap();
        assert!(matches!(
            load(dir.path()),
            Err(FloorError::Damaged {
                why: "wrong length",
                ..
            })
        ));
        // An empty list removes the file.
        store(dir.path(), &[]).unwrap();
        assert!(!p.exists());
        store(dir.path(), &[]).unwrap();
    }
}
