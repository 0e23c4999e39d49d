//! One upload window over the configured carriers (`links`), run on the
//! blocking pool.
//!
//! Carriers are tried in the configured order and the first that works
//! carries the window: a TLS failure (no connection, no identity yet, an
//! HTTP error) falls through to UDP in the same window, and a frame window
//! that fails falls through to TLS. They run one after the other, never at
//! once, so a record is never in flight on two carriers. After a
//! successful frame window, TLS (if listed and not tried yet) runs as well
//! when the frame window left records too large for frames or heard that a
//! configuration waits for TLS; and after a `ConfigPending`, later windows
//! try TLS first until a TLS window succeeds.
//!
//! The TLS path is `uplink::run_window` exactly as before; the frame path
//! is `frames::run_frame_window` over the carrier of the link (`udp`: a
//! socket whose server address is resolved once per window; `sbd`: the
//! RockBLOCK's serial port), opened once per window by
//! `carrier::open_frame_link`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::agent_time::AgentClock;
use crate::carrier::{LinkKind, SharedGovernor, open_frame_link};
use crate::client::{ClientError, EdgeClient};
use crate::clock::Clock;
use crate::config::AgentConfig;
use crate::desired::Desired;
use crate::frames::{FrameReport, FrameState, FrameWindowError, FrameWindowParams};
use crate::queue::{Queue, StatVfs};
use crate::register::{RegisterError, ensure_identity};
use crate::uplink::{UplinkError, WindowReport, run_window};

/// The agent's queue.
pub(crate) type AgentQueue = Queue<AgentClock, StatVfs>;

/// What a window needs, shared with the blocking pool.
pub(crate) struct Shared {
    pub(crate) cfg: AgentConfig,
    pub(crate) device_id: String,
    pub(crate) queue: Mutex<AgentQueue>,
    /// Reused across windows: keeps TLS session tickets and an idle connection.
    pub(crate) client: Mutex<Option<(String, Arc<EdgeClient>)>>,
    /// The server refused our certificate (401): renew before the next upload.
    pub(crate) force_renew: AtomicBool,
    /// Frame context, counters and delivered records, between windows.
    pub(crate) frames: Mutex<FrameState>,
    /// A frame answer said a configuration waits for TLS: try TLS first.
    pub(crate) tls_wanted: AtomicBool,
    /// Duty cycle, fair use and credits, kept by every metered carrier.
    pub(crate) governor: SharedGovernor,
    /// Agent time (`agent_time/`): the queue's stamps and TLS checks.
    pub(crate) clock: AgentClock,
}

/// Why a window failed.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// No identity.
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// Upload failed.
    #[error(transparent)]
    Uplink(#[from] UplinkError),
    /// Building the client failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The frame window failed.
    #[error(transparent)]
    Frames(#[from] FrameWindowError),
}

/// What a window did, per carrier that carried it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowOutcome {
    /// The TLS window's report, if TLS carried (part of) the window.
    pub tls: Option<WindowReport>,
    /// The frame window's report, if frames carried (part of) it.
    pub frames: Option<FrameReport>,
}

impl WindowOutcome {
    /// The log line of a successful window, naming its carriers:
    /// `window: R requests, N records acknowledged, B body bytes (tls)` or
    /// `window: F frames, N records acknowledged, U bytes up, D bytes down,
    /// S sessions, C credits (sbd)`, `…, U uplinks, A ms on air, … frames
    /// acked, … lost, … awaiting an ack (lorawan)` or `…, S datagrams sent
    /// (udp)`; both,
    /// joined by `; then `, when a frame window was followed by TLS.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(f) = &self.frames {
            let mut s = format!(
                "{} frames, {} records acknowledged, {} bytes up, {} bytes down",
                f.frames, f.records_acked, f.traffic.bytes_up, f.traffic.bytes_down
            );
            if f.traffic.sessions > 0 {
                s += &format!(
                    ", {} sessions, {} credits",
                    f.traffic.sessions, f.traffic.credits
                );
            } else if f.traffic.airtime_ms > 0 {
                s += &format!(
                    ", {} uplinks, {} ms on air",
                    f.traffic.sent, f.traffic.airtime_ms
                );
            } else {
                s += &format!(", {} datagrams sent", f.traffic.sent);
            }
            if f.frames_acked + f.frames_lost + f.frames_in_flight > 0 {
                s += &format!(
                    ", {} frames acked, {} lost, {} awaiting an ack",
                    f.frames_acked, f.frames_lost, f.frames_in_flight
                );
            }
            if f.left_for_tls > 0 {
                s += &format!(", {} records left for tls", f.left_for_tls);
            }
            if f.logs_discarded > 0 {
                s += &format!(
                    ", {} logs below {} not sent",
                    f.logs_discarded,
                    f.min_log_level.name()
                );
            }
            if let Some(v) = &f.config_pending {
                s += &format!(", configuration {v:?} waits for tls");
            }
            if let Some(e) = f.rekeyed_to_epoch {
                s += &format!(", frame keys rotated to epoch {e}");
            }
            if let Some(b) = f.held_back_by {
                s += &format!(", the rest held back by the {b} budget");
            }
            parts.push(format!("{s} ({})", f.carrier));
        }
        if let Some(t) = &self.tls {
            let mut s = format!(
                "{} requests, {} records acknowledged, {} body bytes",
                t.requests, t.records_acked, t.body_bytes
            );
            if let Some(e) = t.frame_keys_epoch {
                s += &format!(", frame keys of epoch {e} stored");
            }
            parts.push(format!("{s} (tls)"));
        }
        format!("window: {}", parts.join("; then "))
    }
}

fn log(msg: &str) {
    crate::journal::info(msg);
}

/// Run one window (on the blocking pool). Returns its outcome and the
/// configuration now stored if it differs from `desired` (also after a
/// failure: a carrier may have stored one before another failed).
pub(crate) fn window(
    shared: &Shared,
    desired: &Desired,
) -> (Result<WindowOutcome, WindowError>, Option<Desired>) {
    let result = carriers(shared, desired);
    let now = Desired::load(&shared.cfg.data_dir);
    (result, (now != *desired).then_some(now))
}

fn carriers(shared: &Shared, desired: &Desired) -> Result<WindowOutcome, WindowError> {
    let links = &shared.cfg.links;
    let mut order = links.clone();
    if shared.tls_wanted.load(Ordering::SeqCst) && links.contains(&LinkKind::Tls) {
        order.retain(|l| *l != LinkKind::Tls);
        order.insert(0, LinkKind::Tls);
    }
    let mut outcome = WindowOutcome::default();
    let mut desired = desired.clone();
    let mut error = None;
    for (i, kind) in order.iter().enumerate() {
        let next = order.get(i + 1).map_or("", |k| k.name());
        match kind {
            LinkKind::Tls => match tls_window(shared, &desired) {
                Ok(r) => {
                    shared.tls_wanted.store(false, Ordering::SeqCst);
                    outcome.tls = Some(r);
                    break;
                }
                Err(e) if outcome.frames.is_some() => {
                    log(&format!("tls window after frames failed: {e}"));
                    break;
                }
                Err(e) => {
                    if !next.is_empty() {
                        log(&format!("tls window failed: {e}; trying {next}"));
                    }
                    error = Some(e);
                }
            },
            // Every other link carries sealed frames (udp, sbd, lorawan).
            _ => match frame_window(shared, &desired, *kind) {
                Ok(r) => {
                    if let Some(d) = &r.config_updated {
                        desired = d.clone();
                    }
                    if r.config_pending.is_some() {
                        shared.tls_wanted.store(true, Ordering::SeqCst);
                    }
                    let wants_tls = r.left_for_tls > 0 || r.config_pending.is_some();
                    outcome.frames = Some(r);
                    // TLS next in the order (not tried yet) takes what frames left.
                    if !(wants_tls && next == LinkKind::Tls.name()) {
                        break;
                    }
                }
                Err(e) => {
                    if !next.is_empty() {
                        log(&format!(
                            "{} window failed: {e}; trying {next}",
                            kind.name()
                        ));
                    }
                    error = Some(e);
                }
            },
        }
    }
    match error {
        Some(e) if outcome == WindowOutcome::default() => Err(e),
        _ => Ok(outcome),
    }
}

fn tls_window(shared: &Shared, desired: &Desired) -> Result<WindowReport, WindowError> {
    let now = i64::try_from(shared.clock.now_ms() / 1000).unwrap_or(i64::MAX);
    let force = shared.force_renew.load(Ordering::SeqCst);
    let id = ensure_identity(&shared.cfg, &shared.device_id, now, force, &shared.clock)?;
    shared.force_renew.store(false, Ordering::SeqCst);
    let client = {
        let mut cached = shared.client.lock().unwrap_or_else(PoisonError::into_inner);
        match cached.as_ref() {
            Some((pem, c)) if *pem == id.cert_pem => Arc::clone(c),
            _ => {
                let ca = std::fs::read_to_string(&shared.cfg.ca_cert_path).map_err(|e| {
                    ClientError::Tls(format!("{}: {e}", shared.cfg.ca_cert_path.display()))
                })?;
                let link = shared
                    .cfg
                    .link()
                    .map_err(|e| ClientError::Tls(e.to_string()))?;
                let c = Arc::new(EdgeClient::with_clock(
                    &shared.cfg.server_url,
                    &shared.device_id,
                    &ca,
                    &id.cert_pem,
                    &id.key_pem,
                    &link,
                    &shared.clock,
                )?);
                *cached = Some((id.cert_pem.clone(), Arc::clone(&c)));
                c
            }
        }
    };
    // The profile the scheduler (runtime.rs) waits `upload_interval_seconds`
    // of between windows: the server is told that interval.
    let link = shared.cfg.link().ok();
    let max_batch = link.as_ref().map_or(64 * 1024, |l| l.max_batch_bytes);
    let interval = link
        .as_ref()
        .map(|l| u32::try_from(l.upload_interval_seconds).unwrap_or(u32::MAX));
    let result = run_window(
        &shared.queue,
        &client,
        max_batch,
        &shared.cfg.data_dir,
        interval,
        desired,
    );
    if let Err(UplinkError::Client(ClientError::Unauthorized(_))) = &result {
        // Our certificate was refused: the next window renews it (with the
        // registration certificate as the fallback). The identity file stays:
        // a renewal with it is the way back, and nothing queued is touched.
        *shared.client.lock().unwrap_or_else(PoisonError::into_inner) = None;
        shared.force_renew.store(true, Ordering::SeqCst);
    }
    Ok(result?)
}

fn frame_window(
    shared: &Shared,
    desired: &Desired,
    kind: LinkKind,
) -> Result<FrameReport, WindowError> {
    let cfg = &shared.cfg;
    // Without keys there is nothing to seal: say so before any network.
    if crate::frame_keys::load(&cfg.data_dir)
        .map_err(FrameWindowError::from)?
        .is_none()
    {
        return Err(FrameWindowError::NoContext.into());
    }
    let Some(link) = open_frame_link(kind, cfg, &shared.governor) else {
        return Err(FrameWindowError::NoContext.into());
    };
    let mut link = link.map_err(|source| FrameWindowError::Carrier {
        carrier: kind.name(),
        source,
    })?;
    let params = FrameWindowParams {
        data_dir: cfg.data_dir.clone(),
        device_id: shared.device_id.clone(),
        tls_limit: cfg
            .links
            .contains(&LinkKind::Tls)
            .then_some(link.max_record_bytes),
        round_bytes: cfg.link().map_or(64 * 1024, |l| l.max_batch_bytes),
        policy: link.policy,
    };
    let mut state = shared.frames.lock().unwrap_or_else(PoisonError::into_inner);
    Ok(crate::frames::run_frame_window(
        &shared.queue,
        link.carrier.as_mut(),
        &mut state,
        &params,
        desired,
    )?)
}

#[cfg(test)]
mod tests;
