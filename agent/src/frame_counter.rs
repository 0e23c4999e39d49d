//! The agent's durable [`CounterStore`]: one small file per sending frame
//! context, `<data_dir>/frame/counter-<key id hex>-<epoch>`, holding the
//! "next free counter" that [`CounterReserver`] persists before it hands out
//! counters (see `proto/FRAMES.md`, "Counter reservation").
//!
//! The file is 12 bytes: magic `FCN1`, the value (u32 little-endian) and a
//! CRC-32 of the first 8 bytes. It is replaced durably ([`write_atomic`]:
//! temp file, fsync, rename, directory fsync), so a crash leaves the old or
//! the new value. A missing file is a fresh context (start at 0). A file that
//! is there but cannot be read back exactly is an error, never a silent
//! restart at 0: that would reuse counters, and so AES-CCM nonces. The only
//! way out of [`CounterStoreError::Damaged`] is a new frame context (rotate to
//! a new epoch).

use std::fs::{self, File};
use std::io;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use flotta_proto::frame::{COUNTER_MAX, CounterReserver, CounterStore, KeyId, ReserveError};

use crate::fsutil::write_atomic;

/// Counters reserved per write: one fsynced write per 16 frames, at most 16
/// counters skipped per crash.
pub const DEFAULT_STEP: NonZeroU32 = NonZeroU32::new(16).expect("16 is not zero");

/// Magic at the start of a counter file (format version 1).
const MAGIC: &[u8; 4] = b"FCN1";
/// Size of a counter file: magic, value, CRC-32.
const FILE_LEN: usize = 12;
/// Counter files are secrets' neighbours: owner only.
const FILE_MODE: u32 = 0o600;

/// What went wrong with a counter file.
#[derive(Debug, thiserror::Error)]
pub enum CounterStoreError {
    /// The file exists but does not hold a valid value: the context's
    /// position is lost and it must not be used again.
    #[error(
        "frame counter file {path} is damaged ({reason}): rotate the frame context \
         (new epoch); restarting its counter at 0 would reuse nonces"
    )]
    Damaged {
        /// The counter file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Reading or writing the file failed.
    #[error("frame counter I/O on {path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl CounterStoreError {
    /// Whether trying later may succeed: I/O may (a full or busy disk), a
    /// damaged file never does (rotate the context instead).
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Damaged { .. } => false,
            Self::Io { source, .. } => !matches!(
                source.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput
            ),
        }
    }

    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A [`CounterStore`] in one file of the agent's data directory.
#[derive(Debug)]
pub struct FileCounterStore {
    path: PathBuf,
    /// The `frame` directory exists and its entry in the parent is durable.
    dir_ready: bool,
}

impl FileCounterStore {
    /// The store of the context (`key_id`, `epoch`) under `data_dir`. Nothing
    /// is touched until the first load or store.
    pub fn new(data_dir: &Path, key_id: KeyId, epoch: u32) -> Self {
        let [a, b, c, d] = key_id.0;
        let name = format!("counter-{a:02x}{b:02x}{c:02x}{d:02x}-{epoch}");
        Self::at(data_dir.join("frame").join(name))
    }

    /// A store in the file `path` (its directory is created on first store).
    pub fn at(path: PathBuf) -> Self {
        Self {
            path,
            dir_ready: false,
        }
    }

    /// The counter file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Create the file's directory if needed, and make its creation durable:
    /// a directory lost on power failure would look like a fresh context.
    fn prepare_dir(&mut self) -> Result<(), CounterStoreError> {
        if self.dir_ready {
            return Ok(());
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(CounterStoreError::io(dir))?;
            let parent = dir.parent().unwrap_or(Path::new("."));
            File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(CounterStoreError::io(parent))?;
        }
        self.dir_ready = true;
        Ok(())
    }
}

/// The file's bytes for `value`.
fn encode(value: u32) -> [u8; FILE_LEN] {
    let mut out = [0; FILE_LEN];
    out[..4].copy_from_slice(MAGIC);
    out[4..8].copy_from_slice(&value.to_le_bytes());
    let crc = crc32fast::hash(&out[..8]);
    out[8..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The value in `bytes`, or why there is none.
fn decode(bytes: &[u8]) -> Result<u32, &'static str> {
    let bytes: &[u8; FILE_LEN] = bytes.try_into().map_err(|_| "wrong length")?;
    let (body, crc) = bytes.split_at(8);
    if &body[..4] != MAGIC {
        return Err("bad magic");
    }
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err("checksum mismatch");
    }
    let value = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
    if value > COUNTER_MAX + 1 {
        return Err("value out of range");
    }
    Ok(value)
}

impl CounterStore for FileCounterStore {
    type Error = CounterStoreError;

    fn load(&mut self) -> Result<Option<u32>, CounterStoreError> {
        match fs::read(&self.path) {
            Ok(bytes) => decode(&bytes)
                .map(Some)
                .map_err(|reason| CounterStoreError::Damaged {
                    path: self.path.clone(),
                    reason,
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CounterStoreError::io(&self.path)(e)),
        }
    }

    fn store(&mut self, next_free: u32) -> Result<(), CounterStoreError> {
        self.prepare_dir()?;
        write_atomic(&self.path, &encode(next_free), FILE_MODE)
            .map_err(CounterStoreError::io(&self.path))
    }
}

/// The counter reserver of the sending context (`key_id`, `epoch`), resumed
/// from its file under `data_dir`.
///
/// # Errors
/// [`ReserveError::Store`] if the counter file cannot be read or is damaged.
pub fn open_reserver(
    data_dir: &Path,
    key_id: KeyId,
    epoch: u32,
    step: NonZeroU32,
) -> Result<CounterReserver<FileCounterStore>, ReserveError<CounterStoreError>> {
    CounterReserver::open(FileCounterStore::new(data_dir, key_id, epoch), step)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: KeyId = KeyId([0xde, 0xad, 0x00, 0x01]);

    fn damaged(store: &mut FileCounterStore) -> &'static str {
        match store.load() {
            Err(e @ CounterStoreError::Damaged { reason, .. }) => {
                assert!(!e.is_retriable());
                assert!(e.to_string().contains("rotate the frame context"), "{e}");
                reason
            }
            other => panic!("expected Damaged, got {other:?}"),
        }
    }

    #[test]
    fn missing_file_is_a_fresh_context() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileCounterStore::new(dir.path(), KEY, 7);
        assert_eq!(store.load().unwrap(), None);
        assert!(
            store.path().ends_with("frame/counter-dead0001-7"),
            "{}",
            store.path().display()
        );
    }

    #[test]
    fn round_trip_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileCounterStore::new(dir.path(), KEY, 1);
        for value in [16, 32, COUNTER_MAX + 1, 0] {
            store.store(value).unwrap();
            assert_eq!(store.load().unwrap(), Some(value));
            let mut again = FileCounterStore::new(dir.path(), KEY, 1);
            assert_eq!(again.load().unwrap(), Some(value), "a new handle reads it");
        }
        assert!(!store.path().with_extension("tmp").exists());
        let other_epoch = FileCounterStore::new(dir.path(), KEY, 2).load().unwrap();
        assert_eq!(other_epoch, None, "each context has its own file");
    }

    #[test]
    fn corrupt_file_is_an_error_not_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileCounterStore::new(dir.path(), KEY, 1);
        store.store(48).unwrap();
        let good = fs::read(store.path()).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            fs::write(store.path(), &bad).unwrap();
            let reason = damaged(&mut store);
            assert!(
                matches!(reason, "bad magic" | "checksum mismatch"),
                "{i}: {reason}"
            );
        }
        // A well-formed file with an impossible value.
        fs::write(store.path(), encode(COUNTER_MAX + 2)).unwrap();
        assert_eq!(damaged(&mut store), "value out of range");
    }

    #[test]
    fn truncated_or_empty_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileCounterStore::new(dir.path(), KEY, 1);
        store.store(48).unwrap();
        let good = fs::read(store.path()).unwrap();
        for len in 0..good.len() {
            fs::write(store.path(), &good[..len]).unwrap();
            assert_eq!(damaged(&mut store), "wrong length", "{len} bytes");
        }
        let mut long = good.clone();
        long.push(0);
        fs::write(store.path(), &long).unwrap();
        assert_eq!(damaged(&mut store), "wrong length");
    }

    #[test]
    fn reserver_resumes_past_everything_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        let step = NonZeroU32::new(4).unwrap();
        let mut r = open_reserver(dir.path(), KEY, 1, step).unwrap();
        let taken: Vec<u32> = (0..6).map(|_| r.take().unwrap()).collect();
        assert_eq!(taken, [0, 1, 2, 3, 4, 5]);
        drop(r); // a crash: nothing more is written
        let mut r = open_reserver(dir.path(), KEY, 1, step).unwrap();
        assert_eq!(r.take().unwrap(), 8, "resumes at the persisted reservation");
    }

    #[test]
    fn damaged_file_stops_the_reserver() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileCounterStore::new(dir.path(), KEY, 1);
        fs::create_dir_all(store.path().parent().unwrap()).unwrap();
        fs::write(store.path(), b"").unwrap();
        let err = open_reserver(dir.path(), KEY, 1, DEFAULT_STEP).unwrap_err();
        assert!(
            matches!(err, ReserveError::Store(CounterStoreError::Damaged { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn io_errors_are_retriable_except_permissions() {
        let io = |kind| CounterStoreError::Io {
            path: PathBuf::from("x"),
            source: io::Error::from(kind),
        };
        assert!(io(io::ErrorKind::StorageFull).is_retriable());
        assert!(!io(io::ErrorKind::PermissionDenied).is_retriable());
    }
}
