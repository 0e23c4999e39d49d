//! The supervisor's thread. Podman calls block for seconds (a `kube
//! play` of a big pod, a `pod rm` waiting for containers to stop), so
//! they never run on the agent's event loop: the loop hands this thread
//! the desired workloads ([`Workloads::desire`]) and reads the phases
//! back ([`Workloads::states`]) for each heartbeat; the thread queues its
//! events through the `report` function it was given.
//!
//! The thread sleeps in `recv_timeout` until the configuration changes, a
//! podman event arrives (`events.rs` calls [`Workloads::look`]), a
//! back-off ends, or the monitoring interval (Flotta's
//! `workloads_monitoring_interval`, else `[workloads]
//! monitoring_interval_seconds`) passes. Bursts of podman events are
//! taken as one look.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotta_proto::payload::{Payload, WorkloadState};
use serde_json::Value;

use super::events::EventStream;
use super::logs::Emit;
use super::podman::PodmanCli;
use super::secrets::Secrets;
use super::supervisor::Supervisor;

/// How long a burst of podman events is gathered into one look.
const SETTLE: Duration = Duration::from_millis(300);

enum Msg {
    Desired(Desired),
    Look,
    Stop,
}

/// The handle the event loop holds (module docs).
pub struct Workloads {
    tx: Sender<Msg>,
    states: Arc<Mutex<Vec<WorkloadState>>>,
    /// Closed when the thread ends.
    done: Receiver<()>,
}

/// How long dropping the handle waits for the thread's podman call in
/// progress: a `kube play` may take minutes, and the agent must stop
/// within systemd's stop timeout. The pods run on without the agent.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// What a configuration message asks of the supervisor.
#[derive(Debug, Default)]
pub struct Desired {
    /// `workloads`.
    pub workloads: Vec<Value>,
    /// `secrets`, by name (`secrets.rs`).
    pub secrets: Secrets,
    /// `workloads_monitoring_interval` (seconds, positive).
    pub interval: Option<Duration>,
}

/// The [`Desired`] of a configuration message (nothing, if it is not
/// JSON).
pub fn desired_from(message_json: &str) -> Desired {
    let Ok(v) = serde_json::from_str::<Value>(message_json) else {
        return Desired::default();
    };
    Desired {
        workloads: v
            .get("workloads")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        secrets: super::secrets::from_message(&v),
        interval: v
            .get("workloads_monitoring_interval")
            .and_then(Value::as_u64)
            .filter(|s| *s > 0)
            .map(Duration::from_secs),
    }
}

impl Workloads {
    /// Start the thread with the cached configuration's `message_json`
    /// (workloads come back after a reboot without a link) and a first
    /// pass at once. `interval`: between looks when the configuration
    /// does not say.
    /// `follow`: the podman whose events to follow, once there is work,
    /// and where to log about it.
    pub fn start(
        mut supervisor: Supervisor,
        message_json: &str,
        interval: Duration,
        report: Emit,
        follow: Option<(PodmanCli, Log)>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = channel();
        let desired = desired_from(message_json);
        let own = desired.interval;
        // Until the first pass has looked: every workload is on its way.
        let first: Vec<WorkloadState> = desired
            .workloads
            .iter()
            .filter_map(|w| w.get("name")?.as_str())
            .map(|name| WorkloadState {
                name: name.to_owned(),
                phase: flotta_proto::payload::WorkloadPhase::Deploying,
            })
            .collect();
        let states = Arc::new(Mutex::new(first));
        let (done_tx, done) = channel::<()>();
        supervisor.set_desired(desired.workloads, desired.secrets);
        let shared = Arc::clone(&states);
        let looks = tx.clone();
        std::thread::Builder::new()
            .name("workloads".into())
            .spawn(move || {
                let _done = done_tx;
                let ctx = Context {
                    rx: &rx,
                    looks,
                    default_interval: interval,
                    states: &shared,
                    report: &report,
                    follow,
                };
                run(supervisor, own.unwrap_or(interval), &ctx);
            })?;
        Ok(Self { tx, states, done })
    }

    /// A new configuration arrived.
    pub fn desire(&self, message_json: &str) {
        let _ = self.tx.send(Msg::Desired(desired_from(message_json)));
    }

    /// Something changed in podman: look again.
    pub fn look(&self) {
        let _ = self.tx.send(Msg::Look);
    }

    /// Each desired workload's phase after the last pass.
    pub fn states(&self) -> Vec<WorkloadState> {
        self.states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Workloads {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        let _ = self.done.recv_timeout(STOP_WAIT);
    }
}

/// A log line writer shared with the events thread.
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

struct Context<'a> {
    rx: &'a Receiver<Msg>,
    looks: Sender<Msg>,
    default_interval: Duration,
    states: &'a Mutex<Vec<WorkloadState>>,
    report: &'a Emit,
    follow: Option<(PodmanCli, Log)>,
}

fn run(mut sup: Supervisor, mut interval: Duration, ctx: &Context<'_>) {
    let (rx, default_interval) = (ctx.rx, ctx.default_interval);
    // Started once there is work (a board without workloads never runs
    // podman), and tried once (no podman: the interval still looks).
    let mut stream: Option<EventStream> = None;
    let mut follow = ctx.follow.clone();
    let mut pass = |sup: &mut Supervisor| {
        for e in sup.pass(Instant::now()) {
            (ctx.report)(Payload::Event(e));
        }
        *ctx.states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = sup.states().to_vec();
        if sup.has_work()
            && let Some((cli, log)) = follow.take()
        {
            let looks = ctx.looks.clone();
            let look = move || {
                let _ = looks.send(Msg::Look);
            };
            let log2 = Arc::clone(&log);
            match super::events::follow(&cli, look, move |m| log2(m)) {
                Ok(s) => stream = Some(s),
                Err(e) => log(&format!("podman events not followed: {e}")),
            }
        }
    };
    pass(&mut sup);
    loop {
        let now = Instant::now();
        let wake = sup
            .next_due(now)
            .map_or(now + interval, |due| due.min(now + interval));
        match rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(Msg::Desired(d)) => {
                interval = d.interval.unwrap_or(default_interval);
                sup.set_desired(d.workloads, d.secrets);
            }
            Ok(Msg::Look) => {
                // Gather the rest of the burst (a `kube play` is a dozen events).
                let until = Instant::now() + SETTLE;
                loop {
                    match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                        Ok(Msg::Look) => {}
                        Ok(Msg::Desired(d)) => {
                            interval = d.interval.unwrap_or(default_interval);
                            sup.set_desired(d.workloads, d.secrets);
                        }
                        Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                        Err(RecvTimeoutError::Timeout) => break,
                    }
                }
            }
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        pass(&mut sup);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_message_gives_workloads_secrets_and_interval() {
        let d = desired_from(
            r#"{"workloads":[{"name":"a"}],"workloads_monitoring_interval":15,"configuration":{},
                "secrets":[{"name":"db","data":"{\"p\":\"eA==\"}"},{"name":"no-data"}]}"#,
        );
        assert_eq!(d.workloads.len(), 1);
        assert_eq!(d.interval, Some(Duration::from_secs(15)));
        assert_eq!(
            d.secrets.into_iter().collect::<Vec<_>>(),
            [("db".to_owned(), r#"{"p":"eA=="}"#.to_owned())]
        );
        let d = desired_from(r#"{"workloads":null,"workloads_monitoring_interval":0}"#);
        assert!(d.workloads.is_empty() && d.interval.is_none() && d.secrets.is_empty());
        assert!(desired_from("").workloads.is_empty());
    }
}
