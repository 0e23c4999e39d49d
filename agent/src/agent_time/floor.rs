//! The agent clock's floors: the build time compiled in (`build.rs`) and
//! the persisted "not earlier than" time in `<data_dir>/clock/floor`.
//!
//! The file is `FLTC` | version 1 | floor ms (u64 LE) | boot id (u128 LE) |
//! ms since that boot (u64 LE) | CRC-32 of what precedes (u32 LE): 41
//! bytes, replaced atomically (`fsutil::write_atomic`). The boot reading
//! (`governor::time::Now`) lets an agent restarted within the same boot
//! resume at the floor plus the time since it was written; after a reboot
//! the floor alone is known (how long the device was off is not).
//!
//! Damage is never fatal: a file that does not verify is reported (the
//! caller warns) and the build floor and the queue's stamps stand in.

use std::path::{Path, PathBuf};

use crate::governor::Now;

const MAGIC: &[u8; 4] = b"FLTC";
const VERSION: u8 = 1;
const LEN: usize = 4 + 1 + 8 + 16 + 8 + 4;

/// Why a file of agent time (the floor, or the corrections of
/// `restamp.rs`) could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FloorError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS's reason.
        source: std::io::Error,
    },
    /// The file exists but does not verify (length, magic, version, CRC).
    #[error("{path}: damaged ({why}); ignored")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What did not verify.
        why: &'static str,
    },
}

impl FloorError {
    /// Whether trying again may succeed (a damaged file stays damaged
    /// until it is rewritten).
    pub fn is_retriable(&self) -> bool {
        matches!(self, FloorError::Io { .. })
    }
}

/// The build time of this binary, ms since the Unix epoch: agent time
/// never starts below it.
pub fn build_floor_ms() -> u64 {
    env!("FLOTTA_BUILD_EPOCH_SECS")
        .parse::<u64>()
        .unwrap_or(0)
        .saturating_mul(1_000)
}

/// A persisted floor and the boot reading it was taken at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saved {
    /// Agent time when written, ms since the Unix epoch.
    pub floor_ms: u64,
    /// The boot it was written in (`Now::boot_id`).
    pub boot_id: u128,
    /// Ms since that boot when written.
    pub since_boot_ms: u64,
}

impl Saved {
    /// The floor this file gives at `now`: plus the time since it was
    /// written when `now` is in the same boot, else the floor itself.
    pub fn floor_at(&self, now: &Now) -> u64 {
        if now.boot_id == self.boot_id && now.since_boot_ms >= self.since_boot_ms {
            self.floor_ms
                .saturating_add(now.since_boot_ms - self.since_boot_ms)
        } else {
            self.floor_ms
        }
    }

    fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[..4].copy_from_slice(MAGIC);
        b[4] = VERSION;
        b[5..13].copy_from_slice(&self.floor_ms.to_le_bytes());
        b[13..29].copy_from_slice(&self.boot_id.to_le_bytes());
        b[29..37].copy_from_slice(&self.since_boot_ms.to_le_bytes());
        let crc = crc32fast::hash(&b[..37]);
        b[37..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<Saved, &'static str> {
        let b: &[u8; LEN] = b.try_into().map_err(|_| "wrong length")?;
        if &b[..4] != MAGIC {
            return Err("bad magic");
        }
        if b[4] != VERSION {
            return Err("unknown version");
        }
        let crc = u32::from_le_bytes(b[37..].try_into().map_err(|_| "wrong length")?);
        if crc != crc32fast::hash(&b[..37]) {
            return Err("CRC mismatch");
        }
        let u64_at = |at: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(x)
        };
        let mut id = [0u8; 16];
        id.copy_from_slice(&b[13..29]);
        Ok(Saved {
            floor_ms: u64_at(5),
            boot_id: u128::from_le_bytes(id),
            since_boot_ms: u64_at(29),
        })
    }
}

/// `<data_dir>/clock/floor`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("clock").join("floor")
}

/// The persisted floor; `Ok(None)` when there is none yet.
pub fn load(data_dir: &Path) -> Result<Option<Saved>, FloorError> {
    let path = path(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => Saved::decode(&bytes)
            .map(Some)
            .map_err(|why| FloorError::Damaged { path, why }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FloorError::Io { path, source }),
    }
}

/// Replace the persisted floor with `saved`, durably.
pub fn store(data_dir: &Path, saved: &Saved) -> Result<(), FloorError> {
    let path = path(data_dir);
    crate::fsutil::write_atomic(&path, &saved.encode(), 0o644)
        .map_err(|source| FloorError::Io { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVED: Saved = Saved {
        floor_ms: 1_750_000_000_000,
        boot_id: 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
        since_boot_ms: 60_000,
    };

    #[test]
    fn round_trips_and_resumes_within_the_boot_only() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        store(dir.path(), &SAVED).unwrap();
        let back = load(dir.path()).unwrap().unwrap();
        assert_eq!(back, SAVED);
        let same_boot = Now::at(0, SAVED.boot_id, 90_000);
        assert_eq!(back.floor_at(&same_boot), SAVED.floor_ms + 30_000);
        let other_boot = Now::at(0, 7, 90_000);
        assert_eq!(back.floor_at(&other_boot), SAVED.floor_ms);
    }

    #[test]
    fn damage_is_reported_not_believed() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path(), &SAVED).unwrap();
        let p = path(dir.path());
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[7] ^= 0x40; // a bit of the floor flips: the CRC catches it
        std::fs::write(&p, &bytes).unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(
            matches!(
                e,
                FloorError::Damaged {
                    why: "CRC mismatch",
                    ..
                }
            ),
            "{e}"
        );
        assert!(!e.is_retriable());
        std::fs::write(&p, b"FLTC").unwrap();
        assert!(matches!(
            load(dir.path()),
            Err(FloorError::Damaged {
                why: "wrong length",
                ..
            })
        ));
    }

    #[test]
    fn build_floor_is_a_plausible_date() {
        // After 2024-01-01 and not in the future of this test run.
        let b = build_floor_ms();
        assert!(b > 1_704_067_200_000, "{b}");
        assert!(b <= crate::clock::Clock::now_ms(&crate::clock::SystemClock) + 1_000);
    }
}
