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
mod sbd_support;

use std::thread::sleep;
use std::time::{Duration, Instant};

use flotta_e2e::modem::sbd::SessionOutcome;
use flotta_e2e::wait::wait_for;
use frames_support::{
    apply_heartbeat_period, assert_every_record_once, emit, events_stored, tls_handshakes,
};
use sbd_support::{IMEI, sbd};

fn agent(s: &sbd_support::Sbd, dir: &std::path::Path, id: &str) -> flotta_e2e::procs::AgentProc {
    sbd_support::agent(s, dir, id, "")
}

/// Generous: the machine may be busy; only a failure waits this long.
const LIMIT: Duration = Duration::from_secs(120);
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
    apply_heartbeat_period(&s.server, &agent, id, 2, LIMIT);
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
