//! The agent's event loop on a tokio current_thread runtime: heartbeat timer,
//! upload windows (`window.rs`, over TLS or sealed frames, run on the
//! blocking pool: no network call ever blocks this thread),
//! group-commit deadline, the inbox (records from other programs; an urgent
//! event opens a window early), shutdown on SIGTERM/SIGINT. Between events
//! the process sleeps in the kernel: there is no polling loop. Records are
//! stamped with agent time (`agent_time/`); its corrections become events
//! here, and its floor is persisted after heartbeats and windows.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotta_proto::payload::{Event, Level, LogLine, Payload};
use tokio::time::{Instant, sleep_until};

use crate::agent_time::{AgentClock, SystemSources};
use crate::clock::{Clock, SystemClock};
use crate::config::AgentConfig;
use crate::desired::Desired;
use crate::queue::{Durability, Queue, QueueError, StatVfs};
use crate::schedule::urgent_window_at;
use crate::uplink::UplinkError;
use crate::window::{Shared, window};
pub use crate::window::{WindowError, WindowOutcome};

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Configuration problem.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The queue could not be opened or written.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The runtime could not start.
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// `--once` and the single window failed.
    #[error("upload window failed: {0}")]
    Window(#[from] WindowError),
}

fn log(msg: &str) {
    crate::journal::info(msg);
}

/// The process's governor, resumed from `<data_dir>/governor/usage`. If
/// the file cannot be read or written, budgets are kept in memory for this
/// process (and said so): sending within them stays possible.
fn open_governor(cfg: &AgentConfig) -> crate::carrier::SharedGovernor {
    use crate::governor::Governor;
    let now = crate::governor::sim_clock::governor_now();
    let g = Governor::open(&cfg.data_dir, cfg.governor.clone(), now).unwrap_or_else(|e| {
        log(&format!("governor: {e}; budgets kept in memory only"));
        Governor::in_memory(cfg.governor.clone())
    });
    Arc::new(Mutex::new(g))
}

fn append(shared: &Shared, payload: &Payload, durability: Durability) {
    let mut q = shared
        .queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Err(e) = q.append(payload.class(), &payload.encode(), durability) {
        log(&format!("queue: {e}"));
    }
}

/// Move what other programs dropped into the inbox into the queue (durably).
/// Returns whether any of it is an urgent event.
fn ingest_inbox(shared: &Shared) -> bool {
    let drained = crate::inbox::drain(&shared.cfg.data_dir, |p| {
        shared
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .append(p.class(), &p.encode(), Durability::Durable)
            .map(|_| ())
    });
    match drained {
        Ok(d) => {
            for (path, why) in &d.rejected {
                let msg = format!("inbox file moved to {}: {why}", path.display());
                log(&msg);
                append(
                    shared,
                    &Payload::Log(LogLine {
                        source: "agent".into(),
                        level: Level::Warn,
                        message: msg,
                    }),
                    Durability::Durable,
                );
            }
            d.ingested
                .iter()
                .any(|p| shared.cfg.urgent_event_level.is_urgent(p))
        }
        Err(e) => {
            log(&format!("inbox: {e}"));
            false
        }
    }
}

/// Uniform in [0, 1), from the OS's randomness (std seeds each `RandomState`
/// from it): devices that lost the link together do not retry in step.
fn jitter() -> f64 {
    use std::hash::BuildHasher;
    let bits = std::collections::hash_map::RandomState::new().hash_one(SystemClock.now_ms());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Run until SIGTERM/SIGINT, or (with `once`) until one heartbeat and one
/// upload window are done: the mode for devices woken by an RTC alarm.
pub fn run(cfg: AgentConfig, once: bool) -> Result<(), AgentError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(main_loop(cfg, once))
}

async fn main_loop(cfg: AgentConfig, once: bool) -> Result<(), AgentError> {
    let device_id = cfg.device_id()?;
    let link = cfg.link()?;
    let clock = open_clock(&cfg);
    let (queue, recovery) = Queue::open(
        &cfg.data_dir.join("queue"),
        cfg.queue.clone(),
        clock.clone(),
        StatVfs,
    )?;
    // Stamps stay monotonic across restarts, even a floor file lost with power.
    if let Some(newest) = queue.newest_at_ms() {
        clock.raise_to(newest);
    }
    clock.note_unconfirmed_from(queue.next_seq());
    // Corrections of stamps whose records are gone (or of a lost queue).
    clock.prune_restamps(queue.acked_through(), queue.next_seq());
    if let Err(e) = crate::renumber::mark_if_new(&cfg.data_dir, &recovery) {
        log(&format!("cannot mark the new queue: {e}"));
    }
    let mut desired = Desired::load(&cfg.data_dir);
    log(&format!(
        "device {device_id}: queue holds {} records ({} damaged bytes skipped); configuration version {:?}",
        recovery.records, recovery.damaged_bytes, desired.version
    ));
    let links: Vec<&str> = cfg.links.iter().map(|l| l.name()).collect();
    log(&format!(
        "carriers: {}{}",
        links.join(", "),
        match crate::frame_keys::load(&cfg.data_dir) {
            Ok(Some(k)) => format!(
                "; frame context key id {} epoch {}",
                k.key_id_hex(),
                k.epoch
            ),
            Ok(None) => "; no frame context".into(),
            Err(e) => format!("; {e}"),
        }
    ));
    let scale = crate::governor::sim_clock::install_from_env()
        .map_err(crate::config::ConfigError::Invalid)?;
    if let Some(s) = scale {
        log(&format!(
            "governor: simulated time, {}x real time since {} ms (never on a real radio)",
            s.factor, s.anchor_wall_ms
        ));
    }
    let governor = open_governor(&cfg);
    let shared = Arc::new(Shared {
        governor,
        cfg,
        device_id,
        queue: Mutex::new(queue),
        client: Mutex::new(None),
        force_renew: std::sync::atomic::AtomicBool::new(false),
        frames: Mutex::new(crate::frames::FrameState::default()),
        tls_wanted: std::sync::atomic::AtomicBool::new(false),
        clock,
    });
    let started = Payload::Event(Event {
        reason: "AgentStarted".into(),
        message: format!(
            "flotta-agent {} started; recovered {} records, {} damaged bytes in {} spans",
            env!("CARGO_PKG_VERSION"),
            recovery.records,
            recovery.damaged_bytes,
            recovery.damaged_spans
        ),
        level: if recovery.damaged_bytes > 0 {
            Level::Warn
        } else {
            Level::Info
        },
    });
    append(&shared, &started, Durability::Durable);
    // systemd (`Type=notify`): ready once the queue is open; the watchdog is
    // pinged by this loop only, so a loop that stops turning is restarted.
    let notifier = crate::sd_notify::Notifier::from_env();
    notifier.ready(&format!("queue holds {} records", recovery.records));
    let watchdog_every = notifier.watchdog_interval();
    let mut next_ping = Instant::now();
    // Workloads come back from the cached configuration, link or not.
    let urgent_event = Arc::new(tokio::sync::Notify::new());
    let workloads = start_workloads(&shared, &desired, &urgent_event);
    // Records handed over while the agent was not running go out in the first window.
    ingest_inbox(&shared);
    let inbox = Arc::new(tokio::sync::Notify::new());
    if !once {
        let arrived = Arc::clone(&inbox);
        if let Err(e) = crate::inbox::watch(&shared.cfg.data_dir, move || arrived.notify_one()) {
            log(&format!(
                "inbox not watched ({e}); it is read at start only"
            ));
        }
    }

    use tokio::signal::unix::{SignalKind, signal};
    // Registered once: a listener made anew each turn of the loop (as
    // `ctrl_c()` does) costs an extra wake-up every time the loop turns.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut next_heartbeat = Instant::now();
    let mut next_window = Instant::now();
    let mut attempt = 0u32;
    // `--once` queues exactly one heartbeat.
    let mut heartbeat_queued = false;
    let mut last_window_started: Option<Instant> = None;
    let mut urgent = false;
    let urgent_gap = Duration::from_secs(link.urgent_min_interval_seconds);
    type Ran = (Result<WindowOutcome, WindowError>, Option<Desired>);
    let mut running: Option<tokio::task::JoinHandle<Ran>> = None;
    loop {
        let sync_due = {
            let q = shared
                .queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            q.sync_due_at_ms()
                .map(|due| Instant::now() + Duration::from_millis(due.saturating_sub(q.now_ms())))
        };
        let far = Instant::now() + Duration::from_secs(86_400);
        tokio::select! {
            // In order: at start the first heartbeat is queued before the
            // first window opens, so that window carries it.
            biased;
            () = sleep_until(next_ping), if watchdog_every.is_some() => {
                notifier.watchdog();
                next_ping = Instant::now() + watchdog_every.unwrap_or_default();
            }
            () = sleep_until(next_heartbeat), if !(once && heartbeat_queued) => {
                heartbeat_queued = true;
                let stats = shared.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).stats();
                let hb = crate::heartbeat::build(
                    &stats,
                    crate::heartbeat::uptime_seconds(),
                    crate::heartbeat::battery_percent(std::path::Path::new("/sys/class/power_supply")),
                    workloads.as_ref().map(crate::workloads::Workloads::states).unwrap_or_default(),
                );
                // Durable at once: the same one fsync a minute as a group
                // commit would do, without a second timer wake-up for it.
                append(&shared, &hb, Durability::Durable);
                tend_clock(&shared);
                let period = desired.heartbeat_period_seconds().unwrap_or(shared.cfg.heartbeat_period_seconds);
                next_heartbeat += Duration::from_secs(period);
            }
            () = sleep_until(next_window), if running.is_none() => {
                last_window_started = Some(Instant::now());
                urgent = false;
                let (s, d) = (Arc::clone(&shared), desired.clone());
                running = Some(tokio::task::spawn_blocking(move || window(&s, &d)));
            }
            joined = async { running.as_mut().expect("guarded").await }, if running.is_some() => {
                running = None;
                let (outcome, stored) = joined.unwrap_or_else(|e| (Err(WindowError::Uplink(UplinkError::Queue(
                    QueueError::Config(format!("window task failed: {e}"))))), None));
                if let Some(d) = stored {
                    // Stored by the window (even one that then failed).
                    log(&format!("configuration version {:?} applied", d.version));
                    desired = d;
                    if let Some(w) = &workloads { w.desire(&desired.message_json); }
                    // A shorter period takes effect now, not after the old one ran out.
                    let period = desired.heartbeat_period_seconds().unwrap_or(shared.cfg.heartbeat_period_seconds);
                    next_heartbeat = next_heartbeat.min(Instant::now() + Duration::from_secs(period));
                }
                tend_clock(&shared);
                match outcome {
                    Ok(report) => {
                        attempt = 0;
                        let described = report.describe();
                        notifier.status(&status_line(&shared, &described));
                        log(&described);
                        if once { break; }
                        next_window = Instant::now() + Duration::from_secs(link.upload_interval_seconds);
                    }
                    Err(e) => {
                        crate::journal::warn(&format!("window failed: {e}"));
                        notifier.status(&status_line(&shared, &format!("window failed: {e}")));
                        append(&shared, &Payload::Log(LogLine {
                            source: "agent".into(), level: Level::Warn, message: format!("upload window failed: {e}"),
                        }), Durability::Buffered);
                        if once { sync(&shared)?; return Err(e.into()); }
                        next_window = Instant::now() + link.backoff(attempt, jitter());
                        attempt = attempt.saturating_add(1);
                    }
                }
                if urgent {
                    // An urgent event arrived while that window ran.
                    next_window = urgent_window_at(next_window, Instant::now(), last_window_started, urgent_gap);
                }
            }
            () = inbox.notified() => {
                if ingest_inbox(&shared) {
                    urgent = true;
                    if running.is_none() {
                        next_window = urgent_window_at(next_window, Instant::now(), last_window_started, urgent_gap);
                    }
                }
            }
            () = urgent_event.notified() => {
                urgent = true;
                if running.is_none() {
                    next_window = urgent_window_at(next_window, Instant::now(), last_window_started, urgent_gap);
                }
            }
            () = sleep_until(sync_due.unwrap_or(far)), if sync_due.is_some() => {
                let mut q = shared.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Err(e) = q.sync_if_due() { log(&format!("queue sync: {e}")); }
            }
            _ = sigterm.recv() => {
                log("SIGTERM: syncing the queue and stopping");
                notifier.stopping("SIGTERM: syncing the queue");
                break;
            }
            _ = sigint.recv() => {
                log("SIGINT: syncing the queue and stopping");
                notifier.stopping("SIGINT: syncing the queue");
                break;
            }
        }
    }
    if let Some(task) = running.take() {
        // Let an upload in flight finish its acknowledgement bookkeeping.
        let _ = task.await;
    }
    // The workloads' thread ends after its podman call in progress; the
    // pods run on without the agent.
    drop(workloads);
    if let Err(e) = shared.clock.persist() {
        log(&format!("clock: {e}"));
    }
    sync(&shared)
}

/// Agent time: floors from the build and `<data_dir>/clock/floor`, the
/// corrections of queued stamps from `<data_dir>/clock/corrections` (a
/// damaged or unreadable file is warned about, never fatal).
fn open_clock(cfg: &AgentConfig) -> AgentClock {
    let (clock, errors) = AgentClock::open(&cfg.data_dir, SystemSources);
    for e in errors {
        crate::journal::warn(&format!("clock: {e}"));
    }
    let (agent, system) = (clock.now_ms(), SystemClock.now_ms());
    if agent > system {
        log(&format!(
            "clock: system time {} is behind the floor; agent time starts at {}",
            crate::agent_time::rfc3339(system),
            crate::agent_time::rfc3339(agent)
        ));
    }
    clock
}

/// Queue the events of agent-time corrections (the server is told), forget
/// corrections of stamps the server acknowledged, and write the clock's
/// files when due (after heartbeats and windows: the floor at most every
/// `PERSIST_EVERY_MS` unless a correction happened, the corrections when
/// they changed).
fn tend_clock(shared: &Shared) {
    for c in shared.clock.take_corrections() {
        let event = c.event();
        if let Payload::Event(e) = &event {
            crate::journal::warn(&format!("clock: {}", e.message));
        }
        append(shared, &event, Durability::Durable);
    }
    let (acked, next_seq) = {
        let q = shared
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (q.acked_through(), q.next_seq())
    };
    shared.clock.prune_restamps(acked, next_seq);
    if let Err(e) = shared.clock.persist_if_due() {
        log(&format!("clock: {e}"));
    }
}

/// systemd's one-line status: the queue's depth and the last window.
fn status_line(shared: &Shared, last_window: &str) -> String {
    let records = shared
        .queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .stats()
        .records;
    format!("queue {records} records; last window: {last_window}")
}

/// The workloads' supervisor (`workloads/`), reporting its events into the
/// queue; an urgent one wakes `urgent_event`. `None` when disabled or when
/// its thread cannot start (said in the log: the agent runs on).
fn start_workloads(
    shared: &Arc<Shared>,
    desired: &Desired,
    urgent_event: &Arc<tokio::sync::Notify>,
) -> Option<crate::workloads::Workloads> {
    let (to_queue, wake) = (Arc::clone(shared), Arc::clone(urgent_event));
    let emit: crate::workloads::logs::Emit = Arc::new(move |p: Payload| {
        if let Payload::Event(e) = &p {
            log(&format!("workload event: {}", e.message));
        }
        // Log lines as the group commit batches them; events at once.
        let durability = match p {
            Payload::Log(_) => Durability::Buffered,
            _ => Durability::Durable,
        };
        append(&to_queue, &p, durability);
        if to_queue.cfg.urgent_event_level.is_urgent(&p) {
            wake.notify_one();
        }
    });
    let message = if desired.message_json.is_empty() {
        "{}"
    } else {
        &desired.message_json
    };
    match crate::workloads::spawn(&shared.cfg, message, emit, Arc::new(log)) {
        Ok(w) => w,
        Err(e) => {
            log(&format!("workloads not supervised: {e}"));
            None
        }
    }
}

fn sync(shared: &Shared) -> Result<(), AgentError> {
    Ok(shared
        .queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .sync()?)
}
