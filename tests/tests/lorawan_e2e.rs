//! LoRaWAN end to end: a real `flotta-server` (ChirpStack v4 HTTP
//! integration and downlink worker), a real `flotta-agent` on a simulated
//! RAK3172 (a pseudo-terminal, RUI3 AT dialect), and a simulated ChirpStack
//! between them (each uplink posted to the webhook as ChirpStack does, at
//! most once; the device queue API the server fills; class A: a downlink
//! rides on the device's *next* uplink).
//!
//! - `run_once_over_lorawan_sends_once_and_the_ack_rides_on_the_next_uplink`:
//!   an RTC-woken device: each `run --once` is one or two uplinks, the last
//!   one asking for an answer, which the next run's first uplink brings;
//!   records are deleted one run later; no TLS at all.
//! - `every_record_arrives_once_through_loss_kills_and_a_configuration_change`:
//!   a resident agent; ChirpStack loses posts, the radio loses uplinks, the
//!   agent and the server are killed -9; every record stored exactly once
//!   and a configuration change arrives by downlink.
//! - `a_long_outage_loses_nothing_and_the_backlog_drains_after_it`: the
//!   radio loses every uplink for a dozen windows (the ledger fills, gives
//!   its oldest frames up, asks again); when it comes back every record is
//!   stored exactly once.
//! - `ttn_fair_use_caps_downlinks_but_not_uplinks`: with the governor's TTN
//!   policy, after 10 downlinks in 24 h nothing asks for another, and
//!   records still go up.

#![allow(clippy::unwrap_used)]

mod agent_support;
mod frames_support;
mod lorawan_support;

use std::thread::sleep;
use std::time::{Duration, Instant};

use flotta_e2e::wait::wait_for;
use frames_support::{
    apply_heartbeat_period, assert_every_record_once, assert_every_record_stored_once, emit,
    events_stored, seqs_not_stored, tls_handshakes,
};
use lorawan_support::{DEV_EUI, DEV_EUI_HEX, Lora, agent};

/// Generous: the machine may be busy; only a failure waits this long.
const LIMIT: Duration = Duration::from_secs(120);

/// `run --once` until every record the agent made is stored (at least
/// twice, so the last frames' answers settle them; at most eight): with
/// ChirpStack losing posts, a run's last frame may be lost, and a device
/// sends it again on its next wake-up.
fn settle_with_runs(l: &Lora, agent: &flotta_e2e::procs::AgentProc, id: &str) {
    for run in 0..8 {
        if run >= 2 && seqs_not_stored(&l.server, agent, id).is_empty() {
            break;
        }
        let status = agent.run_once_within(LIMIT).unwrap();
        assert!(status.success(), "{}", agent.log());
    }
}

/// DR5 (242 bytes, about 0.4 s on air at most) and answers as long.
fn lora(dir: &std::path::Path, loss_rate: f64) -> Lora {
    lorawan_support::lora(dir, loss_rate, 5, 242, 1)
}

#[test]
fn run_once_over_lorawan_sends_once_and_the_ack_rides_on_the_next_uplink() {
    let dir = tempfile::tempdir().unwrap();
    let l = lora(dir.path(), 0.0);
    let id = "lora-once";
    let agent = agent(&l, dir.path(), id, "none");
    let runs = 4;
    for i in 0..runs {
        emit(&agent, "LoraTest", i);
        let before = l.modem.stats();
        let status = agent.run_once_within(LIMIT).unwrap();
        assert!(status.success(), "{}", agent.log());
        let after = l.modem.stats();
        let uplinks = after.uplinks - before.uplinks;
        assert!(
            (1..=3).contains(&uplinks),
            "run {i}: {uplinks} uplinks for a summary and two events at DR5\n{}",
            agent.log()
        );
        // The run's records are stored at once; the answer waits at
        // ChirpStack for the next run's first uplink.
        wait_for("the run's event stored", LIMIT, || {
            events_stored(&l.server, id, "LoraTest") == i + 1
        });
        wait_for("the answer queued at ChirpStack", LIMIT, || {
            l.net.queued(DEV_EUI).len() == 1
        });
    }
    // One more run with nothing new brings the last answer: the queue is
    // empty but for that run's own records (in flight).
    let status = agent.run_once_within(LIMIT).unwrap();
    assert!(status.success(), "{}", agent.log());
    assert_every_record_stored_once(&l.server, &agent, id);
    assert!(
        l.net.downlinks_today(DEV_EUI) <= runs as u32 + 1,
        "one downlink per run at most"
    );
    assert_eq!(tls_handshakes(&l.server), 0.0, "a TLS connection was made");
    let described = l.server.command(&["describe", "ed", id]).unwrap();
    let text = String::from_utf8_lossy(&described.stdout).to_lowercase();
    assert!(
        text.contains("lorawan") && text.contains(DEV_EUI_HEX),
        "describe shows neither the link nor the DevEUI: {text}"
    );
}

#[test]
fn every_record_arrives_once_through_loss_kills_and_a_configuration_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = lora(dir.path(), 0.15);
    let id = "lora-resident";
    let mut agent = agent(&l, dir.path(), id, "none");
    l.modem.lose_uplinks(2);
    agent.restart().unwrap();
    let started = Instant::now();
    let total = 12;
    for i in 0..total {
        assert!(started.elapsed() < LIMIT);
        emit(&agent, "LoraTest", i);
        sleep(Duration::from_millis(400));
        if i % 5 == 4 {
            agent.kill9();
            agent.restart().unwrap();
        }
        if i == 7 {
            l.server.kill9();
            sleep(Duration::from_millis(300));
            l.server.restart().unwrap();
            l.modem.lose_uplinks(1);
        }
    }
    wait_for("every event stored", LIMIT, || {
        events_stored(&l.server, id, "LoraTest") == total
    });

    // A configuration change reaches the device by downlink.
    apply_heartbeat_period(&l.server, &agent, id, 2, LIMIT);
    // Quiet: the last answers settle everything but the last run's frame.
    agent.stop().unwrap();
    settle_with_runs(&l, &agent, id);
    assert_every_record_stored_once(&l.server, &agent, id);
    assert!(l.net.lost() >= 1, "ChirpStack lost no post");
    assert!(l.modem.stats().lost >= 1, "the radio lost no uplink");
    assert_eq!(tls_handshakes(&l.server), 0.0, "a TLS connection was made");
}

#[test]
fn a_long_outage_loses_nothing_and_the_backlog_drains_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let l = lora(dir.path(), 0.0);
    let id = "lora-outage";
    let mut agent = agent(&l, dir.path(), id, "none");
    agent.restart().unwrap();
    let total = 16;
    for i in 0..4 {
        emit(&agent, "LoraTest", i);
        sleep(Duration::from_millis(500));
    }
    // A dozen windows without radio: every uplink lost.
    l.modem.lose_uplinks(u32::MAX);
    let lost_from = l.modem.stats().lost;
    for i in 4..total {
        emit(&agent, "LoraTest", i);
        sleep(Duration::from_millis(1000));
    }
    l.modem.lose_uplinks(0);
    assert!(
        l.modem.stats().lost - lost_from >= 8,
        "the outage lost too few uplinks to matter: {:?}",
        l.modem.stats()
    );
    wait_for("every event stored after the outage", LIMIT, || {
        events_stored(&l.server, id, "LoraTest") == total
    });
    agent.stop().unwrap();
    settle_with_runs(&l, &agent, id);
    assert_every_record_stored_once(&l.server, &agent, id);
}

#[test]
fn ttn_fair_use_caps_downlinks_but_not_uplinks() {
    let dir = tempfile::tempdir().unwrap();
    let l = lora(dir.path(), 0.0);
    let id = "lora-ttn";
    let agent = agent(&l, dir.path(), id, "ttn");
    let runs = 14;
    for i in 0..runs {
        emit(&agent, "LoraTest", i);
        let status = agent.run_once_within(LIMIT).unwrap();
        assert!(status.success(), "run {i}: {}", agent.log());
    }
    wait_for("every event stored", LIMIT, || {
        events_stored(&l.server, id, "LoraTest") == runs
    });
    let downlinks = l.net.downlinks_today(DEV_EUI);
    assert!(
        (9..=10).contains(&downlinks),
        "{downlinks} downlinks: TTN allows 10 a day, and the agent asked whenever it could"
    );
    let _ = assert_every_record_once; // the queue keeps what no ack covered
}
