//! End to end: an hours-long blackout, compressed in time. A real
//! `flotta-server` and three real `flotta-agent`s talk through an emulated
//! satellite link (300 ms one way) whose [`Schedule`] takes it down for six
//! hours of simulated time, played by a [`TimeScale`] in 20 s of real time.
//! Offline, the agents keep queueing heartbeats on disk and back off; one of
//! them is killed with SIGKILL and restarted, and must recover its queue from
//! disk with the link still down. Afterwards every record must be stored
//! exactly once, those produced offline included, and the connection attempts
//! made during the blackout must stay within what the agents' backoff allows.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod agent_support;

use std::thread::sleep;
use std::time::{Duration, Instant};

use agent_support::{agent_queue, assert_delivered_exactly_once, unix_ms};
use flotta_e2e::link::{Link, LinkConfig, LinkProfile, LinkStats, Schedule, TimeScale};
use flotta_e2e::procs::{AgentProc, ServerProc, bin_dir};
use flotta_proto::payload::Payload;
use flotta_server::store::StoredRecord;

const IDS: [&str; 3] = ["blackout-agent-0", "blackout-agent-1", "blackout-agent-2"];
/// The agent killed (and restarted) in the middle of the blackout.
const KILLED: usize = 0;

/// Heartbeat period, set both in the agents' TOML (before the first contact)
/// and by the server (`default_heartbeat_period_seconds`, sent to devices
/// nobody configured; 60 s unless set). Shorter than one batch request over
/// this link (about 1.3 s with a resumed TLS session), so heartbeats arrive
/// during every window: a window must still end (it sends what was queued
/// when it opened).
const HEARTBEAT_PERIOD_SECONDS: u64 = 1;
const BACKOFF_INITIAL_SECONDS: u64 = 1;
const BACKOFF_MAX_SECONDS: u64 = 4;

/// The blackout, in simulated time ...
const OUTAGE: Duration = Duration::from_secs(6 * 3600);
/// ... and how long it lasts for real.
const OUTAGE_REAL: Duration = Duration::from_secs(20);
/// Real time before the blackout: start, enrol, register, first uploads.
const BEFORE_REAL: Duration = Duration::from_secs(10);
/// When, into the blackout, agent [`KILLED`] is killed, and for how long it stays dead.
const KILL_AFTER: Duration = Duration::from_secs(8);
const DEAD_FOR: Duration = Duration::from_secs(3);
/// Real time the agents run after the link is back: enough for a retry at
/// the longest backoff, a failed window (the link still drops some) and
/// another retry.
const AFTER_REAL: Duration = Duration::from_secs(12);
/// Measurement tolerance on the real-time windows the attempt bound is computed for.
const TIMING_SLACK: Duration = Duration::from_millis(100);

fn agent_toml() -> String {
    format!(
        "heartbeat_period_seconds = {HEARTBEAT_PERIOD_SECONDS}
link_profile = \"satellite\"
[link]
upload_interval_seconds = 2
backoff_initial_seconds = {BACKOFF_INITIAL_SECONDS}
backoff_max_seconds = {BACKOFF_MAX_SECONDS}
connect_timeout_seconds = 5
request_timeout_seconds = 10
"
    )
}

/// The most connection attempts (failed upload windows) one agent process can
/// make within `window` of real time with a dead link, by the agents' backoff
/// rule: retry `k` (0-based) waits `min(initial * 2^k, max)` scaled by a jitter
/// in [1/2, 1]. The first attempt may fall at the very start of the window
/// (a scheduled upload, or a process start, which tries at once); every
/// further one waits at least half its capped delay.
fn max_attempts(window: Duration) -> u64 {
    let window = (window + TIMING_SLACK).as_secs_f64();
    let (initial, max) = (
        BACKOFF_INITIAL_SECONDS.max(1) as f64,
        BACKOFF_MAX_SECONDS as f64,
    );
    let mut attempts = 1;
    let mut elapsed = 0.0;
    for retry in 0.. {
        elapsed += (initial * 2f64.powi(retry)).min(max) / 2.0;
        if elapsed > window {
            break;
        }
        attempts += 1;
    }
    attempts
}

/// Waits until the link is `up` (or panics at `deadline`); returns when it
/// saw the change, in monotonic and in wall-clock time, and the counters then.
fn wait_for_link(link: &Link, up: bool, deadline: Instant) -> (Instant, u64, LinkStats) {
    while link.is_up() != up {
        assert!(
            Instant::now() < deadline,
            "the link did not go {} on schedule",
            if up { "up" } else { "down" }
        );
        sleep(Duration::from_millis(5));
    }
    (Instant::now(), unix_ms(), link.stats())
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn server_log(server: &ServerProc) -> String {
    tail(
        &std::fs::read_to_string(server.data_dir.join("serve.log")).unwrap_or_default(),
        20,
    )
}

/// Wall-clock milliseconds `from..to`.
#[derive(Clone, Copy, Debug)]
struct Span {
    from: u64,
    to: u64,
}

impl Span {
    fn contains(&self, at_ms: u64) -> bool {
        (self.from..self.to).contains(&at_ms)
    }

    fn secs(&self) -> f64 {
        self.to.saturating_sub(self.from) as f64 / 1000.0
    }
}

/// What one agent's stored records say about a span.
#[derive(Debug, Default)]
struct Tally {
    records: usize,
    heartbeats: usize,
    failed_windows: usize,
}

fn tally(records: &[(StoredRecord, Payload)], span: Span) -> Tally {
    let mut t = Tally::default();
    for (_, payload) in records
        .iter()
        .filter(|(r, _)| span.contains(r.record.at_ms))
    {
        t.records += 1;
        match payload {
            Payload::Heartbeat(_) => t.heartbeats += 1,
            Payload::Log(l) if l.message.starts_with("upload window failed") => {
                t.failed_windows += 1;
            }
            _ => {}
        }
    }
    t
}

/// Heartbeats expected in `span` at the configured period: all but two
/// (timers may fire late on a loaded machine), at most one per period plus a
/// start and a late one.
fn assert_heartbeats(id: &str, what: &str, heartbeats: usize, span: Span) {
    let expected = span.secs() / HEARTBEAT_PERIOD_SECONDS as f64;
    let low = (expected.floor() as usize).saturating_sub(2).max(1);
    let high = expected.ceil() as usize + 2;
    assert!(
        (low..=high).contains(&heartbeats),
        "{id}: {heartbeats} heartbeats {what} ({:.1} s), expected {low}..={high}",
        span.secs()
    );
}

/// The number of records an `AgentStarted` event says were recovered.
fn recovered_records(message: &str) -> u64 {
    message
        .split("recovered ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("AgentStarted message without a record count: {message:?}"))
}

#[test]
fn hours_long_blackout_loses_nothing_and_backs_off() {
    let bins = bin_dir().expect("flotta binaries");
    let test_started = Instant::now(); // after the (incremental) build of the binaries
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProc::start(
        &bins,
        dir.path(),
        &format!("default_heartbeat_period_seconds = {HEARTBEAT_PERIOD_SECONDS}\n"),
    )
    .unwrap();

    let scale = TimeScale::compress(OUTAGE, OUTAGE_REAL).unwrap();
    let outage_start = scale.to_sim(BEFORE_REAL);
    let profile = LinkProfile::satellite()
        .with_latency(Duration::from_millis(300), Duration::from_millis(50));
    let link = LinkConfig::new(server.api_addr, profile)
        .with_schedule(Schedule::new().down(outage_start, OUTAGE))
        .with_time_scale(scale)
        .start()
        .unwrap();
    eprintln!(
        "link seed {} (set FLOTTA_LINK_SEED to replay); down from simulated {:.1} h for {:.1} h \
         at {:.6} real s per simulated s",
        link.seed(),
        outage_start.as_secs_f64() / 3600.0,
        OUTAGE.as_secs_f64() / 3600.0,
        scale.factor()
    );
    let url = format!("https://localhost:{}", link.addr().port());
    let mut agents: Vec<AgentProc> = IDS
        .iter()
        .map(|id| {
            AgentProc::start(
                &bins,
                dir.path(),
                id,
                &url,
                &server.factory_dir,
                &agent_toml(),
            )
            .unwrap()
        })
        .collect();

    // The blackout, as the link applies its schedule.
    let (down_at, down_ms, down_stats) =
        wait_for_link(&link, false, Instant::now() + BEFORE_REAL * 2);
    sleep(KILL_AFTER.saturating_sub(down_at.elapsed()));
    agents[KILLED].kill9();
    let (killed_at, killed_ms) = (Instant::now(), unix_ms());
    sleep(DEAD_FOR);
    let (restarted_at, restarted_ms) = (Instant::now(), unix_ms());
    agents[KILLED].restart().unwrap();
    let (up_at, up_ms, up_stats) = wait_for_link(&link, true, down_at + OUTAGE_REAL * 2);
    assert!(
        link.is_up() && restarted_at < up_at,
        "agent {KILLED} must be restarted while the link is down"
    );
    let outage = up_stats.since(&down_stats);
    let outage_real = up_at - down_at;
    eprintln!(
        "blackout: {:.2} s real (simulated {:.1} h); link during it: {outage:?}",
        outage_real.as_secs_f64(),
        link.time_scale().to_sim(outage_real).as_secs_f64() / 3600.0
    );

    // The agents deliver the backlog on their own; then stop them and flush
    // what they produced since (the link still drops connections: retry).
    sleep(AFTER_REAL);
    let stop_ms = unix_ms();
    for a in &mut agents {
        a.stop().unwrap();
    }
    // Upload windows that ended without an error while the agents ran.
    let windows_ended: Vec<usize> = agents.iter().map(AgentProc::windows_ended).collect();
    let (server_ref, link_ref) = (&server, &link);
    std::thread::scope(|s| {
        for a in &agents {
            s.spawn(move || {
                let mut tries = 0;
                while agent_queue(&a.data_dir).1 > 0 {
                    // `--once` queues one heartbeat and sends what was queued
                    // when its window opened; a run that does not end in time
                    // is a window that does not end.
                    let status = a.run_once_within(Duration::from_secs(30));
                    tries += 1;
                    assert!(
                        tries < 10 && status.is_ok(),
                        "agent could not flush ({status:?} on try {tries}):\n{}\n\
                         link: {:?}\nserver log:\n{}",
                        tail(&a.log(), 20),
                        link_ref.stats(),
                        server_log(server_ref)
                    );
                }
            });
        }
    });
    server.kill9();
    let stats = link.stats();

    // Bound on attempts during the blackout, from each agent process's time in it.
    let whole = max_attempts(outage_real);
    let before_kill = max_attempts(killed_at - down_at);
    let after_restart = max_attempts(up_at - restarted_at);
    let bound = whole * (IDS.len() as u64 - 1) + before_kill + after_restart;
    eprintln!(
        "connection attempts during the blackout: {} (backoff allows at most {bound}: \
         {whole} per agent, {before_kill} + {after_restart} for the one killed)",
        outage.attempts
    );
    assert!(
        outage.attempts <= bound,
        "{} connection attempts during the blackout, backoff allows at most {bound}",
        outage.attempts
    );

    let blackout = Span {
        from: down_ms,
        to: up_ms,
    };
    let mut failed_windows = 0;
    for (i, a) in agents.iter().enumerate() {
        let id = IDS[i];
        let stored = assert_delivered_exactly_once(&server, a, id);
        let records: Vec<(StoredRecord, Payload)> = stored
            .into_iter()
            .map(|r| {
                let p = Payload::decode(&r.record.payload).unwrap();
                (r, p)
            })
            .collect();

        // The server configured the period the heartbeat counts below rely on.
        let desired = std::fs::read_to_string(a.data_dir.join("desired.json")).unwrap();
        assert!(
            desired.contains(&format!("\"period_seconds\":{HEARTBEAT_PERIOD_SECONDS}")),
            "{id}: the server's configuration did not set the heartbeat period: {desired}"
        );
        // The agent was through to the server before the blackout ...
        assert!(
            records.iter().any(|(r, _)| r.received_ms < down_ms),
            "{id}: nothing arrived before the blackout (startup too slow?)\n{}",
            a.log()
        );
        // ... nothing produced in it arrived before the link came back (it
        // was down), and all of it arrived while the agents still ran (they
        // came back by themselves, not only through the final flush).
        let offline: Vec<&StoredRecord> = records
            .iter()
            .map(|(r, _)| r)
            .filter(|r| blackout.contains(r.record.at_ms))
            .collect();
        assert!(
            !offline.is_empty(),
            "{id}: nothing produced during the blackout reached the server\n{}",
            a.log()
        );
        let first_back = offline.iter().map(|r| r.received_ms).min().unwrap_or(0);
        let last_back = offline.iter().map(|r| r.received_ms).max().unwrap_or(0);
        assert!(
            first_back + 50 >= up_ms,
            "{id}: a record produced offline arrived {} ms before the link came back",
            up_ms - first_back
        );
        assert!(
            last_back < stop_ms,
            "{id}: the backlog was still not delivered {:.1} s after the blackout\n{}",
            AFTER_REAL.as_secs_f64(),
            a.log()
        );

        let t = tally(&records, blackout);
        eprintln!(
            "{id}: {} records stored; produced in the blackout: {} records, \
             {} heartbeats, {} failed windows; backlog delivered {:.1}..{:.1} s after the link \
             came back; {} windows ended without error",
            records.len(),
            t.records,
            t.heartbeats,
            t.failed_windows,
            first_back.saturating_sub(up_ms) as f64 / 1000.0,
            last_back.saturating_sub(up_ms) as f64 / 1000.0,
            windows_ended[i],
        );
        failed_windows += t.failed_windows;
        if i == KILLED {
            let before = Span {
                from: down_ms,
                to: killed_ms,
            };
            let after = Span {
                from: restarted_ms,
                to: up_ms,
            };
            let (tb, ta) = (tally(&records, before), tally(&records, after));
            // Offline data from before the kill survived it ...
            assert_heartbeats(id, "before the kill", tb.heartbeats, before);
            assert_heartbeats(id, "after the restart", ta.heartbeats, after);
            // ... because the restarted agent recovered it from disk.
            let recovered: Vec<u64> = records
                .iter()
                .filter(|(r, _)| after.contains(r.record.at_ms))
                .filter_map(|(_, p)| match p {
                    Payload::Event(e) if e.reason == "AgentStarted" => {
                        Some(recovered_records(&e.message))
                    }
                    _ => None,
                })
                .collect();
            eprintln!(
                "{id}: killed {:.1} s into the blackout: {} records ({} heartbeats) before, \
                 restart recovered {recovered:?} records, {} heartbeats after",
                (killed_at - down_at).as_secs_f64(),
                tb.records,
                tb.heartbeats,
                ta.heartbeats,
            );
            assert!(
                recovered.len() == 1 && recovered[0] >= tb.records as u64,
                "{id}: the restart should recover at least the {} records made offline \
                 before the kill: {recovered:?}",
                tb.records
            );
            assert!(
                tb.failed_windows as u64 <= before_kill
                    && ta.failed_windows as u64 <= after_restart,
                "{id}: {} + {} failed windows, backoff allows {before_kill} + {after_restart}",
                tb.failed_windows,
                ta.failed_windows
            );
            assert!(ta.failed_windows >= 1, "{id}: no retry after the restart");
        } else {
            assert_heartbeats(id, "in the blackout", t.heartbeats, blackout);
            assert!(
                t.failed_windows as u64 <= whole,
                "{id}: {} failed windows in the blackout, backoff allows {whole}",
                t.failed_windows
            );
            // It kept trying (at most the longest backoff between tries).
            assert!(
                t.failed_windows >= 2,
                "{id}: only {} failed windows in the blackout",
                t.failed_windows
            );
        }
    }
    eprintln!(
        "link overall: {stats:?}; failed windows logged in the blackout: {failed_windows}; \
         wall time {:.1} s",
        test_started.elapsed().as_secs_f64()
    );
    assert_eq!(stats.task_panics, 0);
}
