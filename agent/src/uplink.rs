//! One upload window: a single connection, as many batches as fit, each
//! acknowledged before its records are deleted; configuration and
//! sealed-frame keys synced on the way (every batch announces the epoch of
//! the frame keys the device holds; keys in an answer are stored at once).

use std::sync::Mutex;

use flotta_proto::batch::{BATCH_FORMAT_VERSION, BatchRequest, BatchResponse, WireRecord};

use crate::client::{ClientError, EdgeClient};
use crate::clock::Clock;
use crate::desired::Desired;
use crate::queue::{DiskSpace, Queue, QueueError};

/// Bytes of a batch besides the payloads (per record and fixed), for sizing.
const RECORD_OVERHEAD: usize = 32;

/// What a window did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowReport {
    /// Requests sent.
    pub requests: u32,
    /// Records acknowledged by the server.
    pub records_acked: u64,
    /// HTTP body bytes both ways (without TLS and HTTP headers).
    pub body_bytes: usize,
    /// A new configuration was received and stored.
    pub config_updated: Option<Desired>,
    /// Records moved above the server's numbers after a lost queue (see `renumber`).
    pub renumbered: u64,
    /// The epoch of sealed-frame keys the server sent and the agent stored.
    pub frame_keys_epoch: Option<u32>,
}

/// Store a configuration the server sent. One we cannot store is reported
/// by the next heartbeat's absence of change; the data path goes on.
fn take_config(
    update: Option<flotta_proto::batch::ConfigUpdate>,
    data_dir: &std::path::Path,
    config_version: &mut String,
    report: &mut WindowReport,
) {
    if let Some(d) = update.and_then(|u| Desired::store(data_dir, &u).ok()) {
        config_version.clone_from(&d.version);
        report.config_updated = Some(d);
    }
}

/// Store sealed-frame keys the server sent (only inside mTLS); the next
/// request announces their epoch.
fn take_frame_keys(
    keys: Option<flotta_proto::frame_keys::FrameKeys>,
    data_dir: &std::path::Path,
    frame_epoch: &mut Option<u32>,
    report: &mut WindowReport,
) -> Result<(), UplinkError> {
    if let Some(k) = keys {
        crate::frame_keys::store(data_dir, &k)?;
        *frame_epoch = Some(k.epoch);
        report.frame_keys_epoch = Some(k.epoch);
    }
    Ok(())
}

/// Why a window ended early.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    /// The server call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Sealed-frame keys from the server could not be stored.
    #[error(transparent)]
    FrameKeys(#[from] crate::frame_keys::FrameKeysError),
}

impl UplinkError {
    /// Whether retrying later may help.
    pub fn is_retriable(&self) -> bool {
        match self {
            UplinkError::Client(e) => e.is_retriable(),
            UplinkError::Queue(e) => e.is_retriable(),
            UplinkError::FrameKeys(e) => e.is_retriable(),
        }
    }
}

/// Upload what was queued when the window opened (at least one request, to
/// sync configuration). Records queued during the window wait for the next
/// one: on a slow link a window that chased the heartbeats arriving meanwhile
/// might never end. The queue lock is held only between network calls, never
/// across them. Every request tells the server `upload_interval_seconds`,
/// the interval the scheduler waits between windows (it judges presence by
/// it).
pub fn run_window<C: Clock, D: DiskSpace>(
    queue: &Mutex<Queue<C, D>>,
    client: &EdgeClient,
    max_batch_bytes: usize,
    data_dir: &std::path::Path,
    upload_interval_seconds: Option<u32>,
    desired: &Desired,
) -> Result<WindowReport, UplinkError> {
    run_window_with(
        queue,
        |req, last| client.batch(req, last),
        max_batch_bytes,
        data_dir,
        upload_interval_seconds,
        desired,
    )
}

/// [`run_window`] with the batch call injected: `send(request, last)`
/// answers the server's response and the body bytes both ways.
pub fn run_window_with<C: Clock, D: DiskSpace>(
    queue: &Mutex<Queue<C, D>>,
    mut send: impl FnMut(&BatchRequest, bool) -> Result<(BatchResponse, usize), ClientError>,
    max_batch_bytes: usize,
    data_dir: &std::path::Path,
    upload_interval_seconds: Option<u32>,
    desired: &Desired,
) -> Result<WindowReport, UplinkError> {
    let mut report = WindowReport::default();
    let mut config_version = desired.version.clone();
    // The sealed-frame epoch the device holds: the server answers its keys
    // when its own differs (first delivery, rotation, a damaged file).
    let mut frame_epoch = crate::frame_keys::held_epoch(data_dir);
    if crate::renumber::pending(data_dir) {
        // A queue made from nothing: learn what the server holds first.
        let probe = BatchRequest {
            format: BATCH_FORMAT_VERSION,
            config_version: config_version.clone(),
            records: Vec::new(),
            frame_epoch,
            upload_interval_seconds,
        };
        let (resp, bytes) = send(&probe, false)?;
        report.requests += 1;
        report.body_bytes += bytes;
        report.renumbered = crate::renumber::resolve(queue, resp.acked_through, data_dir)?;
        take_config(resp.config, data_dir, &mut config_version, &mut report);
        take_frame_keys(resp.frame_keys, data_dir, &mut frame_epoch, &mut report)?;
    }
    // Everything below this was queued before the window opened.
    let (end, acked) = {
        let q = queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (q.next_seq(), q.acked_through())
    };
    // Heartbeats a frame window folded travel as their summary (none on a
    // device that never sent frames).
    let mut folds = crate::frames::TlsFolds::load(data_dir, acked);
    loop {
        let (records, last, sent_through) = {
            let mut q = queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let budget = max_batch_bytes.saturating_sub(256);
            let mut recs = q.read_batch(budget / RECORD_OVERHEAD, budget)?;
            let read = recs.len();
            recs.retain(|r| r.seq < end);
            // The window's last request: it reached records newer than the
            // window, or the end of the window, or the end of the queue.
            let last = recs.len() < read
                || recs.last().is_none_or(|r| r.seq + 1 >= end)
                || recs.len() as u64 >= q.stats().records;
            let sent_through = recs.last().map(|r| r.seq);
            folds.substitute(&mut recs);
            let recs = recs
                .into_iter()
                .map(|r| WireRecord {
                    seq: r.seq,
                    at_ms: r.at_ms,
                    class: r.class,
                    payload: r.payload,
                })
                .collect::<Vec<_>>();
            (recs, last, sent_through)
        };
        let req = BatchRequest {
            format: BATCH_FORMAT_VERSION,
            config_version: config_version.clone(),
            records,
            frame_epoch,
            upload_interval_seconds,
        };
        let (resp, bytes) = send(&req, last)?;
        report.requests += 1;
        report.body_bytes += bytes;
        let mut remaining = 0;
        if let Some(acked) = resp.acked_through {
            let mut q = queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let before = q.stats().records;
            // The server remembers more than we do (e.g. a wiped queue): never reuse its numbers.
            q.ensure_next_seq_at_least(acked.saturating_add(1))?;
            // It answers the highest seq it holds; frames may have stored
            // records above ones not sent yet (a summary, records after one
            // left for TLS): this answer confirms what this window sent.
            if let Some(through) = sent_through {
                q.ack(acked.min(through))?;
            }
            remaining = q.stats().records;
            report.records_acked += before.saturating_sub(remaining);
        }
        take_config(resp.config, data_dir, &mut config_version, &mut report);
        take_frame_keys(resp.frame_keys, data_dir, &mut frame_epoch, &mut report)?;
        if last || sent_through.is_none() || remaining == 0 || resp.acked_through.is_none() {
            return Ok(report);
        }
    }
}

#[cfg(test)]
mod tests;
