//! Iridium SBD end to end: a real `flotta-server` (Rock7 webhook and MT
//! worker), a real `flotta-agent` on a simulated RockBLOCK 9603 (a
//! pseudo-terminal), and a simulated Rock7 between them (each MO posted to
//! the webhook with an RS256 JWT, at least once; the MT API with `flush`).
//!
//! - `run_once_over_sbd_is_one_mo_session_and_the_answer_by_ring_alert`: an
//!   RTC-woken device: each `run --once` is one MO session and one session
//!   answering the ring alert of the server's MT answer; no TLS at all.
//! - `every_record_arrives_once_through_failed_sessions_redeliveries_and_kill_9`:
//!   a resident agent whose sessions fail (no network, busy, RF drop),
//!   whose MOs Rock7 posts twice now and then, killed -9 in the middle of
//!   windows, and a server killed -9 while MOs are on their way (Rock7
//!   retries its posts; an answer the dead server never sent is waited for
//!   in vain, and the frame's records go again): every record stored
//!   exactly once, duplicates counted, and a configuration change arrives
//!   by MT.

#![allow(clippy::unwrap_used)]

mod agent_support;
mod frames_support;

use std::path::Path;
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use flotta_e2e::modem::sbd::{Rock7Config, Rock7Network, SbdModem, SbdModemConfig, SessionOutcome};
use flotta_e2e::procs::{AgentProc, ServerProc, bin_dir, free_port};
use flotta_e2e::wait::wait_for;
use frames_support::{
    apply_heartbeat_period, assert_every_record_once, emit, events_stored, provision,
    tls_handshakes,
};

/// Generous: the machine may be busy; only a failure waits this long.
const LIMIT: Duration = Duration::from_secs(120);
const IMEI: &str = "300434060000001";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../server/tests/fixtures");

/// A server with its Rock7 webhook, the simulated Rock7 and a modem.
struct Sbd {
    server: ServerProc,
    rock7: Arc<Rock7Network>,
    modem: SbdModem,
}

fn sbd(dir: &Path, redeliver_every: u32) -> Sbd {
    let webhook = ([127, 0, 0, 1], free_port().unwrap()).into();
    let rock7 = Rock7Network::start(Rock7Config {
        webhook,
        key_pem: std::fs::read(format!("{FIXTURES}/rock7-test-only.key.pem")).unwrap(),
        username: "flotta".into(),
        password: "s3cret".into(),
        redeliver_every,
        retry_delay: Duration::from_millis(100),
    })
    .unwrap();
    let password = dir.join("rock7-password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let server = ServerProc::start(
        &bin_dir().unwrap(),
        dir,
        &format!(
            "webhook_listen_addr = \"{webhook}\"\n\
             rock7_public_key_file = \"{FIXTURES}/rock7-test-only.pub.pem\"\n\
             rock7_username = \"flotta\"\nrock7_password_file = \"{}\"\n\
             rock7_mt_url = \"{}\"\nrock7_mt_retry_initial_ms = 50\nrock7_mt_retry_max_ms = 200\n\
             default_heartbeat_period_seconds = 1\ncontroller_interval_seconds = 1\n",
            password.display(),
            rock7.mt_url()
        ),
    )
    .unwrap();
    let modem = SbdModem::start(
        rock7.clone(),
        SbdModemConfig {
            imei: IMEI.into(),
            ..SbdModemConfig::default()
        },
    )
    .unwrap();
    Sbd {
        server,
        rock7,
        modem,
    }
}

/// Agent settings: windows every second over the modem only; back-offs
/// short (a failed session is tried again after 100 ms instead of Rock7's
/// minute), the wait for the ring alert long (a busy machine is slow, and a
/// missed answer would be the test's failure).
fn sbd_toml(modem: &SbdModem) -> String {
    format!(
        "heartbeat_period_seconds = 1\nlinks = [\"sbd\"]\n[link]\nupload_interval_seconds = 1\n\
         backoff_initial_seconds = 1\nbackoff_max_seconds = 2\n\
         [sbd]\ndevice = \"{}\"\nanswer_timeout_ms = 30000\nretry_backoff_ms = 100\nattempts = 4\n",
        modem.path().display()
    )
}

fn agent(s: &Sbd, dir: &Path, id: &str) -> AgentProc {
    // No TLS path at all: the server URL points nowhere.
    let agent = AgentProc::configure(
        &bin_dir().unwrap(),
        dir,
        id,
        "https://127.0.0.1:9",
        &s.server.factory_dir,
        &sbd_toml(&s.modem),
    )
    .unwrap();
    provision(&s.server, &agent, id, &["--imei", IMEI]);
    agent
}

#[test]
fn run_once_over_sbd_is_one_mo_session_and_the_answer_by_ring_alert() {
    let dir = tempfile::tempdir().unwrap();
    let s = sbd(dir.path(), 0);
    let id = "sbd-once";
    let agent = agent(&s, dir.path(), id);
    let runs = 3;
    for i in 0..runs {
        emit(&agent, "SbdTest", i);
        let before = s.modem.stats();
        let status = agent.run_once_within(LIMIT).unwrap();
        assert!(status.success(), "{}", agent.log());
        let after = s.modem.stats();
        assert_eq!(
            after.successful_sessions - before.successful_sessions,
            2,
            "run {i}: one MO session, one answering the ring: {after:?}\n{}",
            agent.log()
        );
        assert_eq!(after.rings - before.rings, 1, "run {i}: {after:?}");
        assert_eq!(
            after.mo_written.len() - before.mo_written.len(),
            1,
            "run {i}: one MO written (no retransmission)"
        );
        // One credit per started 50 bytes of each message: one MO of a
        // window summary and an event (under 200 bytes), and its answer (an
        // ack; the first one also carries the configuration).
        let credits = after.credits - before.credits;
        let most = if i == 0 { 8 } else { 5 };
        assert!(
            (2..=most).contains(&credits),
            "run {i}: {credits} credits for one MO and its answer; MOs {:?}\n{}",
            after.mo_written.iter().map(Vec::len).collect::<Vec<_>>(),
            agent.log()
        );
    }
    assert_eq!(events_stored(&s.server, id, "SbdTest"), runs);
    assert_every_record_once(&s.server, &agent, id);
    assert_eq!(tls_handshakes(&s.server), 0.0, "a TLS connection was made");
    let described = s.server.command(&["describe", "ed", id]).unwrap();
    let text = String::from_utf8_lossy(&described.stdout);
    assert!(
        text.contains("sbd") && text.contains(IMEI),
        "describe shows neither the link nor the IMEI: {text}"
    );
    let stats = s.rock7.stats();
    assert_eq!(stats.mo_posted, runs as u64, "one MO posted per run");
    assert_eq!(stats.mt_refused, 0);
}

#[test]
fn every_record_arrives_once_through_failed_sessions_redeliveries_and_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sbd(dir.path(), 3);
    let id = "sbd-resident";
    let mut agent = agent(&s, dir.path(), id);
    s.modem.script_sessions([
        SessionOutcome::Fail(32),
        SessionOutcome::Success,
        SessionOutcome::Fail(35),
        SessionOutcome::Fail(18),
        SessionOutcome::Success,
        SessionOutcome::Fail(32),
    ]);
    agent.restart().unwrap();
    let started = Instant::now();
    let total = 12;
    for i in 0..total {
        assert!(started.elapsed() < LIMIT);
        emit(&agent, "SbdTest", i);
        sleep(Duration::from_millis(300));
        if i % 5 == 4 {
            agent.kill9();
            agent.restart().unwrap();
        }
        if i == 7 {
            s.server.kill9();
            sleep(Duration::from_millis(500));
            s.server.restart().unwrap();
        }
    }
    wait_for("every event stored", LIMIT, || {
        events_stored(&s.server, id, "SbdTest") == total
    });

    // A configuration change reaches the device by MT.
    apply_heartbeat_period(&s.server, &agent, dir.path(), id, 2, LIMIT);
    agent.stop().unwrap();
    let status = agent.run_once_within(LIMIT).unwrap();
    assert!(status.success(), "{}", agent.log());
    assert_every_record_once(&s.server, &agent, id);
    let dups = s
        .server
        .metric("flotta_frames_total{result=\"duplicate\"}")
        .unwrap();
    assert!(
        dups >= 1.0,
        "Rock7 re-delivered MOs, none counted duplicate"
    );
    let modem = s.modem.stats();
    assert!(
        modem.sessions > modem.successful_sessions,
        "no session failed: {modem:?}"
    );
    assert_eq!(tls_handshakes(&s.server), 0.0, "a TLS connection was made");
}
