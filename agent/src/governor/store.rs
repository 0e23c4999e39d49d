//! `<data_dir>/governor/usage`: the [`Ledger`] on disk, so that a reboot
//! or a power loss never hands out a fresh budget.
//!
//! Layout (little-endian), like the frame counter files: magic `FGOV`,
//! version 1, high-water mark (u64), flags (u8, bit 0: clock behind; bit
//! 1: an answer owed),
//! boot id (u128) and time since that boot (u64) of the last reading,
//! duty-cycle and all-entries slacks (2 × i64, see `ledger.rs`),
//! frames held back (u64), last blocking budget (u8, 0xff: none), lifetime
//! airtime ms, credits and downlinks (3 × u64), entry count (u8) and
//! entries (time u64, link code u8, amount u32), downlink count (u8) and
//! times (u64), then a CRC-32 of everything before. At most 1.9 KiB.
//! Replaced durably ([`write_atomic`]: temp file, fsync, rename, directory
//! fsync), so a crash leaves the old or the new history.
//!
//! A file that does not decode exactly (length, magic, version, checksum,
//! counts, codes, times out of order or past the mark) is *damaged*; the
//! governor then starts as if every budget had just been spent
//! ([`Ledger::spent`]) and says why, never panics.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::band::{Budget, Link};
use super::ledger::{Entry, Ledger, MAX_DOWNLINKS, MAX_ENTRIES};
use super::time::Now;
use crate::fsutil::write_atomic;

/// Magic at the start of the usage file.
const MAGIC: &[u8; 4] = b"FGOV";
/// Format version.
const VERSION: u8 = 1;
/// Bytes before the entries.
const HEAD_LEN: usize = 4 + 1 + 8 + 1 + 16 + 8 + 8 + 8 + 8 + 1 + 8 * 3;
/// Bytes of one entry.
const ENTRY_LEN: usize = 8 + 1 + 4;
/// Largest file.
pub const MAX_FILE_LEN: usize = HEAD_LEN + 1 + MAX_ENTRIES * ENTRY_LEN + 1 + MAX_DOWNLINKS * 8 + 4;
/// The file's mode.
const FILE_MODE: u32 = 0o600;

/// What went wrong with the usage file.
#[derive(Debug, thiserror::Error)]
pub enum GovernorError {
    /// Reading or writing the usage file failed.
    #[error("governor usage file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl GovernorError {
    /// Whether trying again may succeed: I/O may (a full or busy disk),
    /// except for permissions.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Io { source, .. } => !matches!(
                source.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput
            ),
        }
    }
}

/// The bytes of `ledger`.
pub(crate) fn encode(l: &Ledger) -> heapless::Vec<u8, MAX_FILE_LEN> {
    let mut out = heapless::Vec::new();
    let mut put = |bytes: &[u8]| {
        let _ = out.extend_from_slice(bytes);
    };
    put(MAGIC);
    put(&[VERSION]);
    put(&l.high_water_ms.to_le_bytes());
    put(&[u8::from(l.behind) | u8::from(l.answer_pending) << 1]);
    put(&l.boot_id.to_le_bytes());
    put(&l.since_boot_ms.to_le_bytes());
    put(&l.duty_slack.to_le_bytes());
    put(&l.all_slack.to_le_bytes());
    put(&l.held_back.to_le_bytes());
    put(&[l.last_blocking.unwrap_or(0xff)]);
    put(&l.total_airtime_ms.to_le_bytes());
    put(&l.total_credits.to_le_bytes());
    put(&l.total_downlinks.to_le_bytes());
    put(&[l.entries.len() as u8]);
    for e in &l.entries {
        put(&e.at_ms.to_le_bytes());
        put(&[e.link.code()]);
        put(&e.amount.to_le_bytes());
    }
    put(&[l.downlinks.len() as u8]);
    for d in &l.downlinks {
        put(&d.to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    let _ = out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads fixed-size fields off a byte slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        if self.0.len() < N {
            return Err("truncated");
        }
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        Ok(head.try_into().expect("length checked"))
    }
    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        self.take().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64, &'static str> {
        self.take().map(u64::from_le_bytes)
    }
}

/// The ledger in `bytes`, or why there is none.
pub(crate) fn decode(bytes: &[u8]) -> Result<Ledger, &'static str> {
    if bytes.len() < HEAD_LEN + 2 + 4 || bytes.len() > MAX_FILE_LEN {
        return Err("wrong length");
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if &body[..4] != MAGIC {
        return Err("bad magic");
    }
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err("checksum mismatch");
    }
    if body[4] != VERSION {
        return Err("unknown version");
    }
    let mut r = Reader(&body[5..]);
    let mut l = Ledger {
        high_water_ms: r.u64()?,
        ..Ledger::default()
    };
    let flags = r.u8()?;
    if flags & !0b11 != 0 {
        return Err("unknown flags");
    }
    l.behind = flags & 1 != 0;
    l.answer_pending = flags & 2 != 0;
    l.boot_id = u128::from_le_bytes(r.take()?);
    l.since_boot_ms = r.u64()?;
    l.duty_slack = i64::from_le_bytes(r.take()?);
    l.all_slack = i64::from_le_bytes(r.take()?);
    l.held_back = r.u64()?;
    l.last_blocking = match r.u8()? {
        0xff => None,
        code => Some(Budget::from_code(code).ok_or("unknown budget")?.code()),
    };
    l.total_airtime_ms = r.u64()?;
    l.total_credits = r.u64()?;
    l.total_downlinks = r.u64()?;
    let n = usize::from(r.u8()?);
    if n > MAX_ENTRIES {
        return Err("too many entries");
    }
    let mut last = 0;
    for _ in 0..n {
        let at_ms = r.u64()?;
        let link = Link::from_code(r.u8()?).ok_or("unknown link")?;
        let amount = r.u32()?;
        if at_ms < last || at_ms > l.high_water_ms {
            return Err("entry time out of order");
        }
        last = at_ms;
        let _ = l.entries.push(Entry {
            at_ms,
            link,
            amount,
        });
    }
    let n = usize::from(r.u8()?);
    if n > MAX_DOWNLINKS {
        return Err("too many downlinks");
    }
    let mut last = 0;
    for _ in 0..n {
        let at = r.u64()?;
        if at < last || at > l.high_water_ms {
            return Err("downlink time out of order");
        }
        last = at;
        let _ = l.downlinks.push(at);
    }
    if !r.0.is_empty() {
        return Err("wrong length");
    }
    Ok(l)
}

/// How the usage file was found when opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Loaded {
    /// No file: a fresh device (empty history).
    Fresh(Ledger),
    /// A valid history.
    Read(Ledger),
    /// The file is damaged (why): every budget counts as spent now.
    Damaged(&'static str),
}

/// The usage file of a data directory.
#[derive(Debug)]
pub(crate) struct UsageFile {
    path: PathBuf,
    /// The `governor` directory exists and its entry in the parent is
    /// durable.
    dir_ready: bool,
}

impl UsageFile {
    /// `<data_dir>/governor/usage`.
    pub(crate) fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join("governor").join("usage"),
            dir_ready: false,
        }
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Read the history.
    ///
    /// # Errors
    /// [`GovernorError::Io`] when the file exists but cannot be read.
    pub(crate) fn load(&self) -> Result<Loaded, GovernorError> {
        match fs::read(&self.path) {
            Ok(bytes) => Ok(match decode(&bytes) {
                Ok(l) => Loaded::Read(l),
                Err(why) => Loaded::Damaged(why),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Loaded::Fresh(Ledger::default())),
            Err(source) => Err(GovernorError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Create the file's directory if needed, and make its creation
    /// durable: a directory lost on power failure would look like a fresh
    /// device with every budget unspent.
    fn prepare_dir(&mut self) -> Result<(), GovernorError> {
        if self.dir_ready {
            return Ok(());
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| GovernorError::Io { path, source }
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(io(dir))?;
            let parent = dir.parent().unwrap_or(Path::new("."));
            fs::File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(io(parent))?;
        }
        self.dir_ready = true;
        Ok(())
    }

    /// Replace the history durably.
    ///
    /// # Errors
    /// [`GovernorError::Io`].
    pub(crate) fn store(&mut self, ledger: &Ledger) -> Result<(), GovernorError> {
        self.prepare_dir()?;
        write_atomic(&self.path, &encode(ledger), FILE_MODE).map_err(|source| GovernorError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Fuzz entry point: decode arbitrary bytes as a usage file, and as the
/// body of one (its checksum appended, so that the parser behind the
/// checksum is reached); whatever decodes must re-encode to the same bytes
/// and be usable.
#[doc(hidden)]
pub fn fuzz_usage_file(bytes: &[u8]) {
    fuzz_one(bytes);
    if bytes.len() <= MAX_FILE_LEN {
        let mut sealed = bytes.to_vec();
        sealed.extend_from_slice(&crc32fast::hash(bytes).to_le_bytes());
        fuzz_one(&sealed);
    }
}

fn fuzz_one(bytes: &[u8]) {
    if let Ok(mut l) = decode(bytes) {
        assert_eq!(encode(&l).as_slice(), bytes);
        let now = l.high_water_ms;
        let boot = l.boot_id;
        l.record(Now::at(now.wrapping_add(1), boot, 1), Link::Sbd, 1);
        let _ = l.fits_at(|_| true, super::band::DAY_MS, 10, 1, now);
        let _ = l.downlink_fits_at(10, now);
    }
}

#[cfg(test)]
mod tests {
    use super::super::band::SubBand;
    use super::*;

    fn sample() -> Ledger {
        let mut l = Ledger::default();
        l.record(Now::at(1_000, 3, 1), Link::Eu868(SubBand::G1), 1_234);
        l.record(Now::at(2_000, 3, 1_001), Link::Sbd, 2);
        l.record_downlink(Now::at(2_500, 3, 1_501));
        l.held_back = 3;
        l.last_blocking = Some(Budget::DutyCycle.code());
        l.total_airtime_ms = 1_234;
        l.answer_pending = true;
        l
    }

    #[test]
    fn round_trip() {
        let l = sample();
        let bytes = encode(&l);
        assert_eq!(decode(&bytes).unwrap(), l);
        let full = Ledger::spent(Now::at(9, 4, 2));
        assert_eq!(decode(&encode(&full)).unwrap(), full);
        fuzz_usage_file(&bytes);
    }

    #[test]
    fn every_flipped_bit_or_cut_is_damage() {
        let good = encode(&sample());
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[i] ^= 1 << bit;
                assert!(decode(&bad).is_err(), "byte {i} bit {bit}");
            }
        }
        for len in 0..good.len() {
            assert!(decode(&good[..len]).is_err(), "{len} bytes");
        }
    }

    #[test]
    fn well_formed_but_impossible_is_damage() {
        let mut l = sample();
        l.high_water_ms = 1_500; // entries after the mark
        assert_eq!(decode(&encode(&l)), Err("entry time out of order"));
    }
}
