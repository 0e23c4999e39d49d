//! Following a container's `k8s-file` log (`ctr.log`, [`super::ctr_log`])
//! by reading the file: one small thread per followed container, blocked
//! in read on an inotify descriptor watching the log's directory, so it
//! wakes only when conmon writes. It replaces a `podman logs --follow`
//! process per container (about 33 MB of memory each on x86_64,
//! `PODMAN-4.3.md`, section 12): on a 512 MB board, ten workloads with
//! log collection cost a third of the memory that way.
//!
//! - Each line goes to the sink as `<UTC stamp> <text>` (what `podman logs
//!   --timestamps` prints), so the gate's deduplication and `--since`
//!   bookkeeping (`logs.rs`) are the same for both followers. The whole
//!   file is read from its start when following begins; the gate drops
//!   lines already taken.
//! - Partial lines (`P`) are joined up to [`MAX_READ_BYTES`]; the rest of
//!   a longer line is dropped, as with `podman logs`.
//! - conmon replaces the file when it reaches the pod's `max-size`
//!   (a new file renamed over the old): the old one is read to its end
//!   first, then the new one from its start. A file that shrank
//!   (truncated) is read again from its start.
//! - Dropping the follower removes the watch, which wakes the thread
//!   (`IN_IGNORED`): it reads what is left and ends. It also ends when the
//!   directory is removed with its container (a replaced pod's container
//!   has the same name and a new directory): the follower is done, and the
//!   supervisor follows the new one. Lines that do not decode are counted
//!   and skipped.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use super::ctr_log::decode;
use super::follow::{MAX_READ_BYTES, Sink};
use super::logs::RawLine;

/// Stack of a follower thread: it holds one read buffer.
const STACK_BYTES: usize = 128 << 10;

/// A followed log file (module docs).
pub struct FileFollower {
    inotify: Arc<Inotify>,
    watch: WatchDescriptor,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    /// Lines that did not decode.
    pub bad_lines: Arc<AtomicU64>,
}

impl FileFollower {
    /// Follow `path` (a `ctr.log`) of `container`, each line to `sink`.
    pub fn start(path: &Path, container: &str, sink: Sink) -> std::io::Result<Self> {
        let to_io = |e: nix::Error| std::io::Error::from_raw_os_error(e as i32);
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .ok_or_else(|| std::io::Error::other("a log path without a file name"))?
            .to_owned();
        let inotify = Arc::new(Inotify::init(InitFlags::IN_CLOEXEC).map_err(to_io)?);
        let watch = inotify
            .add_watch(
                dir,
                AddWatchFlags::IN_MODIFY
                    | AddWatchFlags::IN_CREATE
                    | AddWatchFlags::IN_MOVED_TO
                    | AddWatchFlags::IN_DELETE
                    | AddWatchFlags::IN_DELETE_SELF
                    | AddWatchFlags::IN_ONLYDIR,
            )
            .map_err(to_io)?;
        // Opened after the watch: nothing written in between is missed.
        let file = File::open(path)?;
        let (stop, done) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let bad_lines = Arc::new(AtomicU64::new(0));
        let mut reader = Reader {
            path: path.to_owned(),
            file,
            offset: 0,
            pending: Vec::new(),
            joined: [Vec::new(), Vec::new()],
            skipping: [false; 2],
            container: container.to_owned(),
            sink,
            bad_lines: Arc::clone(&bad_lines),
        };
        let (ino, stop2, done2) = (Arc::clone(&inotify), Arc::clone(&stop), Arc::clone(&done));
        std::thread::Builder::new()
            .name("ctr-log".into())
            .stack_size(STACK_BYTES)
            .spawn(move || {
                let _ = reader.drain();
                while !stop2.load(Ordering::SeqCst) {
                    let Ok(events) = ino.read_events() else { break };
                    // The file or its directory went (the container was
                    // removed; our open file keeps the directory from
                    // reporting itself deleted, so the file's deletion is
                    // what tells): it will not grow again.
                    let gone = events.iter().any(|e| {
                        e.mask
                            .intersects(AddWatchFlags::IN_IGNORED | AddWatchFlags::IN_DELETE_SELF)
                            || (e.mask.contains(AddWatchFlags::IN_DELETE)
                                && e.name.as_deref() == Some(name.as_os_str()))
                    });
                    if gone {
                        break;
                    }
                    let replaced = events.iter().any(|e| {
                        e.name.as_deref() == Some(name.as_os_str())
                            && e.mask
                                .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
                    });
                    if reader.drain().is_err() {
                        break;
                    }
                    if replaced && reader.reopen().is_err() {
                        break;
                    }
                }
                let _ = reader.drain();
                done2.store(true, Ordering::SeqCst);
            })?;
        Ok(Self {
            inotify,
            watch,
            stop,
            done,
            bad_lines,
        })
    }

    /// The thread ended (the file could not be read, or the follower is
    /// being dropped).
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }
}

impl Drop for FileFollower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the thread with IN_IGNORED; it reads the rest and ends.
        let _ = self.inotify.rm_watch(self.watch);
    }
}

struct Reader {
    path: PathBuf,
    file: File,
    offset: u64,
    /// Bytes read after the last newline.
    pending: Vec<u8>,
    /// Partial (`P`) texts of the line being joined, per stream (stdout,
    /// stderr: their lines interleave).
    joined: [Vec<u8>; 2],
    /// The line being joined outgrew [`MAX_READ_BYTES`]: drop until `F`.
    skipping: [bool; 2],
    container: String,
    sink: Sink,
    bad_lines: Arc<AtomicU64>,
}

impl Reader {
    /// Read what was appended since the last time (from the start if the
    /// file shrank), handing out each complete line.
    fn drain(&mut self) -> std::io::Result<()> {
        if self.file.metadata()?.len() < self.offset {
            self.file.seek(SeekFrom::Start(0))?;
            self.offset = 0;
            self.pending.clear();
        }
        let mut buf = [0u8; 16 << 10];
        loop {
            let n = self.file.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            self.offset += n as u64;
            self.pending.extend_from_slice(&buf[..n]);
            let mut start = 0;
            while let Some(nl) = self.pending[start..].iter().position(|b| *b == b'\n') {
                let line = self.pending[start..start + nl].to_vec();
                self.line(&line);
                start += nl + 1;
            }
            self.pending.drain(..start);
            if self.pending.len() > 2 * MAX_READ_BYTES + 256 {
                // No newline for that long: not a conmon line; skip it.
                self.pending.clear();
                self.bad_lines.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The file was replaced: the old one was read to its end; the new one
    /// from its start.
    fn reopen(&mut self) -> std::io::Result<()> {
        self.file = File::open(&self.path)?;
        self.offset = 0;
        self.pending.clear();
        self.drain()
    }

    fn line(&mut self, raw: &[u8]) {
        let Ok(l) = decode(raw) else {
            self.bad_lines.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let s = usize::from(l.stderr);
        if !self.skipping[s] {
            let room = MAX_READ_BYTES.saturating_sub(self.joined[s].len());
            self.joined[s].extend_from_slice(&l.text[..l.text.len().min(room)]);
            self.skipping[s] = l.text.len() > room;
        }
        if l.partial {
            return;
        }
        let mut bytes = Vec::with_capacity(l.stamp.len() + 1 + self.joined[s].len());
        bytes.extend_from_slice(l.stamp.as_bytes());
        bytes.push(b' ');
        bytes.append(&mut self.joined[s]);
        self.skipping[s] = false;
        (self.sink)(RawLine {
            container: self.container.clone(),
            stderr: l.stderr,
            bytes,
        });
    }
}

#[cfg(test)]
mod tests;
