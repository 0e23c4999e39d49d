//! Helpers the end-to-end tests with real agents (and the wire benchmark)
//! share: the wall clock, the state of a stopped agent's on-disk queue, and
//! what the server stored for a device.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses its part

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use flotta_agent::clock::SystemClock;
use flotta_agent::queue::{Queue, QueueConfig, StatVfs};
use flotta_e2e::procs::{AgentProc, ServerProc};
use flotta_server::device_id::DeviceId;
use flotta_server::store::{SqliteStore, Store, StoredRecord};

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// (next sequence number, unacknowledged records) of an agent's queue, read
/// while the agent is stopped.
pub(crate) fn agent_queue(data_dir: &Path) -> (u64, u64) {
    let cfg = QueueConfig {
        min_free_disk_bytes: 0,
        ..QueueConfig::default()
    };
    let (q, _) = Queue::open(&data_dir.join("queue"), cfg, SystemClock, StatVfs).unwrap();
    (q.next_seq(), q.stats().records)
}

/// The sequence numbers still in an agent's queue (not acknowledged), read
/// while the agent is stopped.
pub(crate) fn queued_seqs(data_dir: &Path) -> Vec<u64> {
    let cfg = QueueConfig {
        min_free_disk_bytes: 0,
        ..QueueConfig::default()
    };
    let (mut q, _) = Queue::open(&data_dir.join("queue"), cfg, SystemClock, StatVfs).unwrap();
    q.read_batch_from(0, usize::MAX, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect()
}

/// Every record the server stored for device `id`, in sequence order (read
/// from its SQLite store, also while it runs).
pub(crate) fn stored_records(server: &ServerProc, id: &str) -> Vec<StoredRecord> {
    SqliteStore::open(&server.store_path())
        .unwrap()
        .records(&DeviceId::parse(id).unwrap(), None, 10_000_000)
        .unwrap()
}

/// `run --once` of a stopped agent, which must succeed (its stderr otherwise).
pub(crate) fn run_once_ok(agent: &AgentProc) {
    let out = agent.run_once().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The invariant of every end-to-end run: the stopped agent's queue is empty
/// and the server holds exactly the sequence numbers `0..next_seq` the agent
/// used (any loss a gap, any duplicate a repeat). Returns what it holds.
pub(crate) fn assert_delivered_exactly_once(
    server: &ServerProc,
    agent: &AgentProc,
    id: &str,
) -> Vec<StoredRecord> {
    let (next_seq, unacked) = agent_queue(&agent.data_dir);
    assert_eq!(unacked, 0, "{id}: records left in the queue");
    let stored = stored_records(server, id);
    let seqs: Vec<u64> = stored.iter().map(|r| r.record.seq).collect();
    assert_eq!(
        seqs,
        (0..next_seq).collect::<Vec<_>>(),
        "{id}: server holds {seqs:?}\n{}",
        agent.log()
    );
    stored
}

/// The EdgeDevice `id`'s `status.workloads[name].phase`, as the CLI shows it.
pub(crate) fn workload_phase(server: &ServerProc, id: &str, name: &str) -> Option<String> {
    let out = server
        .command(&["get", "edgedevice", id, "-o", "json"])
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v.pointer("/status/workloads")?
        .as_array()?
        .iter()
        .find(|w| w["name"] == name)?
        .get("phase")?
        .as_str()
        .map(str::to_owned)
}

/// Messages of the `Failed` events the server stored for device `id`.
pub(crate) fn failed_events(server: &ServerProc, id: &str) -> Vec<String> {
    use flotta_proto::payload::Payload;
    stored_records(server, id)
        .iter()
        .filter_map(|r| match Payload::decode(&r.record.payload) {
            Ok(Payload::Event(e)) if e.reason == "Failed" => Some(e.message),
            _ => None,
        })
        .collect()
}

/// An agent that heartbeats every second in a window every second and runs
/// no workloads (tests that check the configuration it received, not podman).
pub(crate) const NO_PODMAN_AGENT_TOML: &str = "heartbeat_period_seconds = 1
[link]
upload_interval_seconds = 1
backoff_initial_seconds = 1
backoff_max_seconds = 2
[workloads]
enabled = false
";

/// The workload names in the configuration the agent received and cached
/// (`desired.json`); empty before the first one.
pub(crate) fn delivered_workloads(agent: &AgentProc) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(agent.data_dir.join("desired.json")) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v.pointer("/message/workloads")
        .or_else(|| v.pointer("/workloads"))
        .and_then(|w| w.as_array())
        .map(|l| {
            l.iter()
                .filter_map(|w| w.get("name").and_then(|n| n.as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
