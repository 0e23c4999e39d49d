//! "Send now": a program on the device hands the agent an event with
//! `flotta-agent emit`; an error opens an upload window at once although the
//! next scheduled one is an hour away, an informational event waits for it,
//! and an event emitted while the agent is stopped survives in the inbox and
//! leaves with the next run.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod agent_support;

use std::thread::sleep;
use std::time::{Duration, Instant};

use agent_support::{run_once_ok, stored_records};
use flotta_e2e::procs::{AgentProc, ServerProc, bin_dir, parse_metric};
use flotta_proto::payload::{Level, Payload};

/// Hourly windows; urgent windows at most every 2 s.
const AGENT_TOML: &str = "urgent_event_level = \"error\"
[link]
upload_interval_seconds = 3600
urgent_min_interval_seconds = 2
backoff_initial_seconds = 1
backoff_max_seconds = 2
";

/// (reason, level) of every event the server stored for `id`.
fn events(server: &ServerProc, id: &str) -> Vec<(String, Level)> {
    stored_records(server, id)
        .iter()
        .filter_map(|r| match Payload::decode(&r.record.payload).unwrap() {
            Payload::Event(e) => Some((e.reason, e.level)),
            _ => None,
        })
        .collect()
}

fn has(server: &ServerProc, id: &str, reason: &str) -> bool {
    events(server, id).iter().any(|(r, _)| r == reason)
}

/// Connections (so upload windows: one each) the server has accepted so far.
fn windows_started(server: &ServerProc) -> u64 {
    let metrics = server.metrics().unwrap();
    ["full", "resumed"]
        .iter()
        .map(|kind| {
            parse_metric(
                &metrics,
                &format!("flotta_tls_handshakes_total{{kind=\"{kind}\"}}"),
            ) as u64
        })
        .sum()
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return Some(start.elapsed());
        }
        sleep(Duration::from_millis(100));
    }
    None
}

fn emit(agent: &AgentProc, args: &[&str]) {
    let out = agent.emit(args).unwrap();
    assert!(
        out.status.success(),
        "emit {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_error_event_is_sent_at_once_an_info_event_waits_and_the_inbox_survives_a_stop() {
    let bins = bin_dir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProc::start(&bins, dir.path(), "").unwrap();
    let url = format!("https://localhost:{}", server.api_addr.port());
    let id = "urgent-1";
    let mut agent =
        AgentProc::start(&bins, dir.path(), id, &url, &server.factory_dir, AGENT_TOML).unwrap();
    // The first window (at start) registers; the next is an hour away.
    assert!(
        wait_until(Duration::from_secs(60), || agent.windows_ended() >= 1).is_some(),
        "no first window\n{}",
        agent.log()
    );
    assert!(has(&server, id, "AgentStarted"));

    emit(
        &agent,
        &[
            "event",
            "--reason",
            "DoorOpened",
            "--level",
            "info",
            "cabinet door opened",
        ],
    );
    sleep(Duration::from_secs(4));
    assert!(
        !has(&server, id, "DoorOpened"),
        "an info event must wait for the scheduled window\n{}",
        agent.log()
    );
    assert_eq!(agent.windows_ended(), 1);

    emit(
        &agent,
        &[
            "event",
            "--reason",
            "Flooded",
            "--level",
            "error",
            "water in the cabinet",
        ],
    );
    let took = wait_until(Duration::from_secs(15), || has(&server, id, "Flooded"));
    assert!(
        took.is_some(),
        "the error event was not sent now\n{}",
        agent.log()
    );
    eprintln!("urgent event stored {:?} after emit", took.unwrap());
    // It took the waiting info event along, in order.
    let got = events(&server, id);
    let pos = |r: &str| got.iter().position(|(x, _)| x == r).unwrap();
    assert!(pos("DoorOpened") < pos("Flooded"), "{got:?}");

    // A burst of urgent events: a window at most every 2 s, all delivered.
    // Windows are counted where they start, at the server (each is one TLS
    // connection): the agent logs a window's end only after the server has
    // stored its records, so counting the agent's log the moment "Burst4" is
    // stored raced (one run in twenty: "took 0 windows").
    let windows_before = windows_started(&server);
    for i in 0..5 {
        emit(
            &agent,
            &[
                "event",
                "--reason",
                &format!("Burst{i}"),
                "--level",
                "error",
                "again",
            ],
        );
    }
    assert!(
        wait_until(Duration::from_secs(15), || has(&server, id, "Burst4")).is_some(),
        "{}",
        agent.log()
    );
    let burst_windows = windows_started(&server) - windows_before;
    assert!(
        (1..=3).contains(&burst_windows),
        "five urgent events took {burst_windows} windows"
    );

    // Emitted while the agent is stopped: kept in the inbox, sent by the next run.
    agent.stop().unwrap();
    emit(
        &agent,
        &["event", "--reason", "WhileAsleep", "--level", "warn", "zzz"],
    );
    assert!(!has(&server, id, "WhileAsleep"));
    run_once_ok(&agent);
    assert!(has(&server, id, "WhileAsleep"), "{}", agent.log());
    // Exactly once each.
    let got = events(&server, id);
    for reason in ["DoorOpened", "Flooded", "Burst0", "Burst4", "WhileAsleep"] {
        assert_eq!(
            got.iter().filter(|(r, _)| r == reason).count(),
            1,
            "{reason}: {got:?}"
        );
    }
    // Bad input is refused with a clear error and nothing is written.
    let out = agent
        .emit(&["event", "--level", "error", "no reason given"])
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reason"));
}
