//! Helpers the sealed-frame end-to-end tests (UDP, SBD) share: provisioning
//! a frame-only device, queueing and counting test events, TLS handshakes,
//! and checking that every record a stopped agent made
//! was stored exactly once (plainly or folded into one window summary).

#![allow(dead_code)] // each test binary uses its part

use std::path::Path;
use std::time::Duration;

use flotta_e2e::procs::{AgentProc, ServerProc};
use flotta_e2e::wait::wait_for;
use flotta_proto::payload::Payload;

use super::agent_support::{agent_queue, queued_seqs, stored_records};

/// `flotta-server provision` into the agent's data directory.
pub(crate) fn provision(server: &ServerProc, agent: &AgentProc, id: &str, extra: &[&str]) {
    let out_dir = agent.data_dir.to_string_lossy();
    let mut args = vec!["provision", id, "--out", &out_dir];
    args.extend_from_slice(extra);
    let out = server.command(&args).unwrap();
    assert!(
        out.status.success(),
        "provision: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every sequence number the agent used is accounted for exactly once on
/// the server: stored as a record, or folded into exactly one stored window
/// summary. The agent must be stopped, its queue empty.
pub(crate) fn assert_every_record_once(
    server: &ServerProc,
    agent: &AgentProc,
    id: &str,
) -> (u64, u64) {
    let (_, unacked) = agent_queue(&agent.data_dir);
    assert_eq!(
        unacked,
        0,
        "{id}: records left in the queue\n{}",
        agent.log()
    );
    assert_every_record_stored_once(server, agent, id)
}

/// No record of the stopped agent lost: each is stored (plainly or in a
/// summary's range) or still in its queue.
pub(crate) fn assert_nothing_lost(server: &ServerProc, agent: &AgentProc, id: &str) {
    let queued = queued_seqs(&agent.data_dir);
    let lost: Vec<u64> = seqs_not_stored(server, agent, id)
        .into_iter()
        .filter(|s| !queued.contains(s))
        .collect();
    assert!(
        lost.is_empty(),
        "records lost (neither stored nor queued): {lost:?}"
    );
}

/// (records, summaries) the server stored for `id`; each event at most
/// once by construction (the store keys records by `seq`).
pub(crate) fn stored_counts(server: &ServerProc, id: &str) -> (u64, u64) {
    let stored = stored_records(server, id);
    let summaries = stored
        .iter()
        .filter(|r| matches!(Payload::decode(&r.record.payload), Ok(Payload::Summary(_))))
        .count() as u64;
    (stored.len() as u64 - summaries, summaries)
}

/// Sequence numbers the agent used that the server has not stored (as a
/// record, or folded into a summary) yet.
pub(crate) fn seqs_not_stored(server: &ServerProc, agent: &AgentProc, id: &str) -> Vec<u64> {
    let (next_seq, _) = agent_queue(&agent.data_dir);
    let mut stored = std::collections::BTreeSet::new();
    for r in stored_records(server, id) {
        match Payload::decode(&r.record.payload) {
            Ok(Payload::Summary(s)) => stored.extend(s.first_seq..=r.record.seq),
            _ => {
                stored.insert(r.record.seq);
            }
        }
    }
    (0..next_seq).filter(|s| !stored.contains(s)).collect()
}

/// Every sequence number the agent ever queued is stored by the server
/// exactly once (as a record or folded into one summary), whether or not
/// the agent has heard the ack yet (over LoRaWAN the last frames' ack rides
/// on a later uplink). Returns (records, summaries) stored.
pub(crate) fn assert_every_record_stored_once(
    server: &ServerProc,
    agent: &AgentProc,
    id: &str,
) -> (u64, u64) {
    let (next_seq, _) = agent_queue(&agent.data_dir);
    let stored = stored_records(server, id);
    let (mut plain, mut folded, mut summaries) = (0u64, 0u64, 0u64);
    let mut covered = vec![0u32; usize::try_from(next_seq).unwrap()];
    for r in &stored {
        let seq = r.record.seq;
        assert!(seq < next_seq, "{id}: seq {seq} beyond {next_seq}");
        match Payload::decode(&r.record.payload).unwrap() {
            Payload::Summary(s) => {
                summaries += 1;
                folded += u64::from(s.heartbeats);
                assert!(s.first_seq <= seq && s.heartbeats >= 1);
                for c in &mut covered
                    [usize::try_from(s.first_seq).unwrap()..=usize::try_from(seq).unwrap()]
                {
                    *c += 1;
                }
            }
            _ => {
                plain += 1;
                covered[usize::try_from(seq).unwrap()] += 1;
            }
        }
    }
    let missing: Vec<usize> = (0..covered.len()).filter(|&i| covered[i] == 0).collect();
    assert!(
        missing.is_empty(),
        "{id}: seqs never stored: {missing:?}\n{}",
        agent.log()
    );
    assert_eq!(
        plain + folded,
        next_seq,
        "{id}: {plain} records + {folded} folded heartbeats for {next_seq} sequence numbers \
         ({summaries} summaries): a heartbeat counted twice"
    );
    (plain, summaries)
}

/// TLS handshakes the server made (full and resumed): a frame-only device
/// must make none.
pub(crate) fn tls_handshakes(server: &ServerProc) -> f64 {
    let m = server.metrics().unwrap();
    let get = |k| flotta_e2e::procs::parse_metric(&m, k);
    get("flotta_tls_handshakes_total{kind=\"full\"}")
        + get("flotta_tls_handshakes_total{kind=\"resumed\"}")
}

/// Queue event number `i` with `reason` on the (running or stopped) agent.
pub(crate) fn emit(agent: &AgentProc, reason: &str, i: usize) {
    let msg = format!("{reason} event {i}");
    let out = agent.emit(&["event", "--reason", reason, &msg]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Events with `reason` the server stored for `id`.
pub(crate) fn events_stored(server: &ServerProc, id: &str, reason: &str) -> usize {
    stored_records(server, id)
        .iter()
        .filter(|r| matches!(Payload::decode(&r.record.payload), Ok(Payload::Event(e)) if e.reason == reason))
        .count()
}

/// Change `id`'s heartbeat period to `seconds` on the server (an
/// EdgeDevice manifest applied with the CLI) and wait, up to `limit`, until
/// the device has stored the configuration that carries it (delivered by
/// whatever downlink its carrier has).
pub(crate) fn apply_heartbeat_period(
    server: &ServerProc,
    agent: &AgentProc,
    dir: &Path,
    id: &str,
    seconds: u64,
    limit: Duration,
) {
    let manifest = dir.join("device.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: management.project-flotta.io/v1alpha1\nkind: EdgeDevice\n\
             metadata:\n  name: {id}\n  namespace: default\nspec:\n  heartbeat:\n    periodSeconds: {seconds}\n"
        ),
    )
    .unwrap();
    let out = server
        .command(&["apply", "-f", &manifest.to_string_lossy()])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the new configuration applied on the device", limit, || {
        std::fs::read_to_string(agent.data_dir.join("desired.json"))
            .ok()
            .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
            .is_some_and(|d| {
                d["message"]["configuration"]["heartbeat"]["period_seconds"] == seconds
            })
    });
}
