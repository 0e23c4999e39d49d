//! The agent's inbox: how other programs on the device hand it logs and
//! events. `flotta-agent emit` writes one record per file into
//! `<data_dir>/inbox/`, durably (temp file, fsync, rename, directory fsync),
//! so a record is safe the moment `emit` returns, whether or not the agent
//! runs. The agent drains the inbox when it starts and whenever inotify
//! reports a new file (no polling): each record is appended to the queue with
//! an fsync, then its file is deleted.
//!
//! A file that is not a valid record is moved to `inbox/rejected/` with the
//! reason logged: nothing handed to the agent is silently lost. Programs
//! other than `emit` that write inbox files must do as it does: write under
//! another name, then rename to `*.rec`, so that no half-written file is read.
//!
//! Delivery from the inbox into the queue is at least once: a power loss
//! between the queue's fsync and the file's deletion ingests that one record
//! again at the next start.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use flotta_proto::payload::Payload;

/// Inbox directory under the data directory.
pub const INBOX_DIR: &str = "inbox";
/// Where files that are not records are moved, under the inbox.
pub const REJECTED_DIR: &str = "rejected";
/// Largest inbox file taken (a record larger than this is rejected).
pub const MAX_FILE_BYTES: u64 = 64 * 1024;
/// Extension of a complete inbox file (temp files have another).
const EXTENSION: &str = "rec";

/// Inbox trouble.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// File-system failure on `path`.
    #[error("inbox {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a record.
    #[error("not a flotta record: {0}")]
    Invalid(String),
}

impl InboxError {
    /// Whether trying again later may help (I/O may; a bad file stays bad).
    pub fn is_retriable(&self) -> bool {
        matches!(self, InboxError::Io { .. })
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InboxError + '_ {
        move |source| InboxError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The inbox directory of `data_dir`.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join(INBOX_DIR)
}

/// Decode the bytes of an inbox file.
pub fn decode(bytes: &[u8]) -> Result<Payload, InboxError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(InboxError::Invalid(format!(
            "{} bytes, more than the {MAX_FILE_BYTES} an inbox file may hold",
            bytes.len()
        )));
    }
    let (payload, rest) = postcard::take_from_bytes::<Payload>(bytes)
        .map_err(|e| InboxError::Invalid(e.to_string()))?;
    // postcard stops at the end of the value: trailing bytes mean another format.
    if !rest.is_empty() {
        return Err(InboxError::Invalid(format!(
            "{} trailing bytes after the record",
            rest.len()
        )));
    }
    Ok(payload)
}

static SUBMITTED: AtomicU64 = AtomicU64::new(0);

/// Hand `payload` to the agent: durable when this returns. `now_ms` orders
/// the inbox (files are ingested in name order).
pub fn submit(data_dir: &Path, payload: &Payload, now_ms: u64) -> Result<PathBuf, InboxError> {
    let bytes = payload.encode();
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(InboxError::Invalid(format!(
            "record of {} bytes exceeds {MAX_FILE_BYTES}",
            bytes.len()
        )));
    }
    let n = SUBMITTED.fetch_add(1, Ordering::Relaxed);
    let name = format!("{now_ms:016}-{}-{n}.{EXTENSION}", std::process::id());
    let path = dir(data_dir).join(name);
    crate::fsutil::write_atomic(&path, &bytes, 0o600).map_err(InboxError::io(&path))?;
    Ok(path)
}

/// Complete inbox files, oldest first.
pub fn pending(data_dir: &Path) -> Result<Vec<PathBuf>, InboxError> {
    let inbox = dir(data_dir);
    let entries = match fs::read_dir(&inbox) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(InboxError::io(&inbox)(e)),
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == EXTENSION))
        .collect();
    files.sort();
    Ok(files)
}

/// What one drain did.
#[derive(Debug, Default)]
pub struct Drained {
    /// Records appended to the queue, in order.
    pub ingested: Vec<Payload>,
    /// Files moved to `rejected/`, with the reason.
    pub rejected: Vec<(PathBuf, String)>,
}

/// Move every pending record into the queue through `append`, which must
/// return only once the record is durable. Stops at the first `append`
/// failure (that file stays for the next drain).
pub fn drain<E>(
    data_dir: &Path,
    mut append: impl FnMut(&Payload) -> Result<(), E>,
) -> Result<Drained, DrainError<E>> {
    let mut out = Drained::default();
    for path in pending(data_dir)? {
        let bytes = match fs::metadata(&path) {
            Ok(m) if m.len() > MAX_FILE_BYTES => Err(InboxError::Invalid(format!(
                "{} bytes, more than {MAX_FILE_BYTES}",
                m.len()
            ))),
            // Gone meanwhile (another drain took it).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            _ => fs::read(&path).map_err(InboxError::io(&path)),
        };
        match bytes.and_then(|b| decode(&b)) {
            Ok(payload) => {
                append(&payload).map_err(DrainError::Append)?;
                remove(&path)?;
                out.ingested.push(payload);
            }
            Err(InboxError::Invalid(why)) => {
                let moved = reject(data_dir, &path)?;
                out.rejected.push((moved, why));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// A drain that stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DrainError<E> {
    /// The inbox itself failed.
    #[error(transparent)]
    Inbox(#[from] InboxError),
    /// Appending to the queue failed.
    #[error("appending an inbox record: {0}")]
    Append(E),
}

fn remove(path: &Path) -> Result<(), InboxError> {
    fs::remove_file(path).map_err(InboxError::io(path))?;
    let parent = path.parent().unwrap_or(Path::new("."));
    fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(InboxError::io(parent))
}

/// Keep a file that is not a record where an operator can look at it.
fn reject(data_dir: &Path, path: &Path) -> Result<PathBuf, InboxError> {
    let rejected = dir(data_dir).join(REJECTED_DIR);
    fs::create_dir_all(&rejected).map_err(InboxError::io(&rejected))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // Never overwrite an earlier rejected file of the same name.
    let to = (0..)
        .map(|n| match n {
            0 => rejected.join(&*name),
            n => rejected.join(format!("{name}.{n}")),
        })
        .find(|p| !p.exists())
        .unwrap_or_else(|| rejected.join(&*name));
    fs::rename(path, &to).map_err(InboxError::io(path))?;
    fs::File::open(dir(data_dir))
        .and_then(|d| d.sync_all())
        .map_err(InboxError::io(&rejected))?;
    Ok(to)
}

/// Call `arrived` whenever a file lands in the inbox, from a thread that
/// sleeps in `read(2)` on an inotify descriptor between arrivals. Creates the
/// inbox. The thread lives as long as the process.
pub fn watch(data_dir: &Path, arrived: impl Fn() + Send + 'static) -> Result<(), InboxError> {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let inbox = dir(data_dir);
    fs::create_dir_all(&inbox).map_err(InboxError::io(&inbox))?;
    let to_io = |e: nix::Error| InboxError::Io {
        path: inbox.clone(),
        source: e.into(),
    };
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).map_err(to_io)?;
    // `emit` renames complete files into place; a copy by hand ends with a close.
    inotify
        .add_watch(
            &inbox,
            AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_ONLYDIR,
        )
        .map_err(to_io)?;
    std::thread::Builder::new()
        .name("inbox-watch".into())
        .spawn(move || {
            loop {
                match inotify.read_events() {
                    Ok(events) => {
                        let complete = events.iter().any(|e| {
                            e.name.as_ref().is_some_and(|n| {
                                Path::new(n).extension().is_some_and(|x| x == EXTENSION)
                            })
                        });
                        if complete {
                            arrived();
                        }
                    }
                    Err(nix::Error::EINTR) => {}
                    // The descriptor broke: the startup drain and restarts still take files.
                    Err(_) => return,
                }
            }
        })
        .map_err(InboxError::io(data_dir))?;
    Ok(())
}

#[cfg(test)]
mod tests;
