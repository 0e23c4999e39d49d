//! Helpers the sealed-frame end-to-end tests (UDP, SBD) share: provisioning
//! a frame-only device, queueing and counting test events, TLS handshakes,
//! and checking that every record a stopped agent made
//! was stored exactly once (plainly or folded into one window summary).

#![allow(dead_code)] // each test binary uses its part

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
/// on a later uplink), and no log line was discarded. Returns (records,
/// summaries) stored.
pub(crate) fn assert_every_record_stored_once(
    server: &ServerProc,
    agent: &AgentProc,
    id: &str,
) -> (u64, u64) {
    let d = assert_delivered_once(server, agent, id);
    assert_eq!(
        d.unsent_in_summaries, 0,
        "{id}: {} records + {} folded heartbeats for {} sequence numbers \
         ({} summaries): a record in a summary's range was neither folded \
         nor sent",
        d.plain, d.folded, d.next_seq, d.summaries
    );
    (d.plain, d.summaries)
}

/// What [`assert_delivered_once`] found on the server.
#[derive(Debug)]
pub(crate) struct Delivery {
    /// Sequence numbers the agent used.
    pub next_seq: u64,
    /// Records stored as themselves.
    pub plain: u64,
    /// Window summaries stored.
    pub summaries: u64,
    /// Heartbeats the summaries folded.
    pub folded: u64,
    /// Sequence numbers inside a summary's range that it did not fold: log
    /// lines below `min_log_level`, deleted unsent by policy when the
    /// acknowledged prefix passed them.
    pub unsent_in_summaries: u64,
}

/// Every sequence number the agent ever queued is delivered exactly once:
/// stored as a record, or folded into exactly one stored summary (whose
/// range `first_seq..=seq` spans a window's heartbeats; the window's other
/// records inside it travel as themselves, and log lines the policy
/// deleted unsent leave gaps in it). None missing, summaries' ranges
/// disjoint, and no summary folding more heartbeats than its range has
/// records not stored as themselves (a heartbeat folded and sent too).
pub(crate) fn assert_delivered_once(server: &ServerProc, agent: &AgentProc, id: &str) -> Delivery {
    let (next_seq, _) = agent_queue(&agent.data_dir);
    let mut plain = std::collections::BTreeSet::new();
    let mut ranges = Vec::new();
    for r in &stored_records(server, id) {
        let seq = r.record.seq;
        assert!(seq < next_seq, "{id}: seq {seq} beyond {next_seq}");
        match Payload::decode(&r.record.payload).unwrap() {
            Payload::Summary(s) => {
                assert!(
                    s.first_seq <= seq && s.heartbeats >= 1,
                    "{id}: summary of {} heartbeats over seqs {}..={seq}",
                    s.heartbeats,
                    s.first_seq
                );
                ranges.push((s.first_seq, seq, u64::from(s.heartbeats)));
            }
            _ => {
                plain.insert(seq);
            }
        }
    }
    ranges.sort_unstable();
    let mut d = Delivery {
        next_seq,
        plain: plain.len() as u64,
        summaries: ranges.len() as u64,
        folded: 0,
        unsent_in_summaries: 0,
    };
    for w in ranges.windows(2) {
        assert!(
            w[0].1 < w[1].0,
            "{id}: summaries over seqs {}..={} and {}..={} overlap: heartbeats folded twice",
            w[0].0,
            w[0].1,
            w[1].0,
            w[1].1
        );
    }
    for &(first, last, heartbeats) in &ranges {
        let others = plain.range(first..=last).count() as u64;
        let len = last + 1 - first;
        assert!(
            others + heartbeats <= len,
            "{id}: the summary over seqs {first}..={last} folds {heartbeats} heartbeats \
             beside {others} records stored as themselves: a heartbeat counted twice"
        );
        d.folded += heartbeats;
        d.unsent_in_summaries += len - others - heartbeats;
    }
    let missing = seqs_not_stored(server, agent, id);
    assert!(
        missing.is_empty(),
        "{id}: seqs never stored: {missing:?}\n{}",
        agent.log()
    );
    d
}

/// Stop the resident `agent` and, until the server has stored every record
/// it made, restart it, let it run `between` (real time: windows go on,
/// budgets refill), and stop it again; fails after `limit`. The agent is
/// left stopped, so its queue can be read.
pub(crate) fn drain_resident(
    server: &ServerProc,
    agent: &mut AgentProc,
    id: &str,
    between: Duration,
    limit: Duration,
) {
    let start = std::time::Instant::now();
    agent.stop().unwrap();
    loop {
        let left = seqs_not_stored(server, agent, id);
        if left.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{id}: seqs {left:?} not stored {limit:?} after the events were; \
             still queued: {:?}; agent log (last lines, newest first):\n{}",
            queued_seqs(&agent.data_dir),
            agent
                .log()
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .join("\n")
        );
        agent.restart().unwrap();
        std::thread::sleep(between);
        agent.stop().unwrap();
    }
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
    id: &str,
    seconds: u64,
    limit: Duration,
) {
    server.apply(&format!(
        "apiVersion: management.project-flotta.io/v1alpha1\nkind: EdgeDevice\n\
         metadata:\n  name: {id}\n  namespace: default\nspec:\n  heartbeat:\n    periodSeconds: {seconds}\n"
    ));
    wait_for("the new configuration applied on the device", limit, || {
        std::fs::read_to_string(agent.data_dir.join("desired.json"))
            .ok()
            .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
            .is_some_and(|d| {
                d["message"]["configuration"]["heartbeat"]["period_seconds"] == seconds
            })
    });
}
