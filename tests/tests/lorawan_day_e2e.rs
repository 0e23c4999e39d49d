//! LoRaWAN end to end through a day of compressed time, at EU868 DR0
//! (SF12: 51-byte payloads, up to 2.5 s on air each): a real
//! `flotta-server`, the simulated ChirpStack (losing a tenth of its posts),
//! a simulated RAK3172 and a resident `flotta-agent` whose governor runs
//! on the same simulated clock (`FLOTTA_AGENT_SIM_TIME_SCALE`, 720×: an
//! hour in 5 s, the day in two minutes).
//!
//! The day: a heartbeat and a window every hour (the `lora` link
//! profile's pace), an event every 24 minutes, a six-hour radio outage (every
//! uplink lost, yet on air), a burst of events after it, the agent killed
//! -9 twice and the server once. The backlog cannot drain faster than the
//! EU868 duty cycle lets it (1 % of each rolling hour: 36 s of airtime),
//! so the governor must hold windows back.
//!
//! The server's configuration does not fit a 51-byte answer: it comes
//! down in parts, one per answer.
//!
//! Checked from the radio's side (the modem's own record of transmissions,
//! airtime by the server's formula, not the agent's): never more than 36 s
//! of airtime in any rolling hour; and from the server's: every record the
//! agent made stored exactly once (plainly or folded into one summary).

#![allow(clippy::unwrap_used)]

mod agent_support;
mod frames_support;
mod lorawan_support;

use std::thread::sleep;
use std::time::{Duration, Instant};

use flotta_e2e::sim_time::SimTime;
use frames_support::{assert_delivered_once, drain_resident, emit, events_stored, tls_handshakes};
use lorawan_support::{agent_on, aired, lora, max_airtime_in};

/// Simulated seconds per real second.
const FACTOR: u32 = 720;
const HOUR: Duration = Duration::from_secs(3600);
/// EU868 sub-band g1 (868.1/868.3/868.5 MHz): 1 % duty cycle.
const DUTY_CYCLE_PER_HOUR: Duration = Duration::from_secs(36);
/// The longest DR0 uplink (51 bytes at SF12): what the test's clock may be
/// off by at a window's edge (its readings and the agent's are a few real
/// milliseconds apart, seconds in simulated time).
const LONGEST_UPLINK: Duration = Duration::from_millis(2466);
/// Real time the drain may take after the day, and any other wait.
const LIMIT: Duration = Duration::from_secs(180);

#[test]
fn a_day_at_dr0_keeps_the_duty_cycle_and_delivers_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = lora(dir.path(), 0.1, 0, 51, 5);
    let id = "lora-day";
    // A heartbeat and a window every simulated hour, as the `lora` link
    // profile has it.
    let mut agent = agent_on(&l.server, &l.modem, 0, dir.path(), id, "none", 5);
    let time = SimTime::start(FACTOR);
    time.apply(&mut agent);
    agent.restart().unwrap();

    let hours = |h: u64| HOUR * u32::try_from(h).unwrap();
    let every = Duration::from_secs(24 * 60);
    let mut next_event = Duration::ZERO;
    let mut emitted = 0;
    let (mut outage, mut burst, mut killed_at_4, mut killed_at_17, mut server_killed) =
        (false, false, false, false, false);
    while time.now() < hours(24) {
        let now = time.now();
        if now >= next_event {
            emit(&agent, "LoraDay", emitted);
            emitted += 1;
            next_event += every;
        }
        if !killed_at_4 && now >= hours(4) {
            killed_at_4 = true;
            agent.kill9();
            agent.restart().unwrap();
        }
        if !outage && now >= hours(8) && now < hours(14) {
            outage = true;
            l.modem.lose_uplinks(u32::MAX);
        }
        if outage && now >= hours(14) {
            outage = false;
            l.modem.lose_uplinks(0);
        }
        if !burst && now >= hours(15) {
            burst = true;
            for _ in 0..12 {
                emit(&agent, "LoraDay", emitted);
                emitted += 1;
            }
        }
        if !killed_at_17 && now >= hours(17) {
            killed_at_17 = true;
            agent.kill9();
            agent.restart().unwrap();
        }
        if !server_killed && now >= hours(20) {
            server_killed = true;
            l.server.kill9();
            sleep(time.real(Duration::from_secs(600)));
            l.server.restart().unwrap();
        }
        sleep(Duration::from_millis(100));
    }
    let drained = Instant::now();
    while events_stored(&l.server, id, "LoraDay") < emitted {
        if drained.elapsed() > LIMIT {
            let log = agent.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            panic!(
                "{} of {emitted} events stored {LIMIT:?} after the day; modem {:?} uplinks, \
                 {} lost; agent log (last lines, newest first):\n{}",
                events_stored(&l.server, id, "LoraDay"),
                l.modem.stats().uplinks,
                l.modem.stats().lost,
                tail.join("\n")
            );
        }
        sleep(Duration::from_millis(200));
    }
    let drain = time.sim_at(Instant::now()) - time.sim_at(drained);
    // The server's configuration (a few hundred bytes) came down in
    // 51-byte answers, part by part.
    let desired: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(agent.data_dir.join("desired.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    assert_eq!(
        desired["message"]["configuration"]["heartbeat"]["period_seconds"],
        5,
        "the configuration did not arrive in parts at DR0: {desired}\n{}",
        agent.log()
    );
    // Then every record: the heartbeats and summaries queued behind the
    // events (checked with the agent stopped, restarted for two simulated
    // hours at a time until it is done).
    drain_resident(&l.server, &mut agent, id, time.real(2 * HOUR), LIMIT);
    let all_stored = time.sim_at(Instant::now()) - time.sim_at(drained);
    let d = assert_delivered_once(&l.server, &agent, id);

    let on_air = aired(&l.modem.stats().on_air, &time);
    let total: Duration = on_air.iter().map(|a| a.airtime).sum();
    let bytes: usize = on_air.iter().map(|a| a.len).sum();
    let busiest = max_airtime_in(&on_air, HOUR);
    let log = agent.log();
    let held = log.matches("held back by the duty_cycle budget").count();
    eprintln!(
        "day at DR0: {emitted} events; {} records + {} summaries ({} heartbeats) stored, \
         {} log lines below warn not sent; {} uplinks, {bytes} bytes, {:.1} s on air; \
         busiest hour {:.1} s of 36; {held} windows held back by the duty cycle; events \
         stored {:.1} h after the day, everything {:.1} h after; ChirpStack lost {} posts",
        d.plain,
        d.summaries,
        d.folded,
        d.unsent_in_summaries,
        on_air.len(),
        total.as_secs_f64(),
        busiest.as_secs_f64(),
        drain.as_secs_f64() / 3600.0,
        all_stored.as_secs_f64() / 3600.0,
        l.net.lost(),
    );
    assert!(
        busiest <= DUTY_CYCLE_PER_HOUR + LONGEST_UPLINK,
        "{:.1} s of airtime in one rolling hour: the EU868 duty cycle allows 36 s",
        busiest.as_secs_f64()
    );
    assert!(
        held >= 1,
        "the backlog never met the duty cycle: the test proves nothing\n{log}"
    );
    assert!(l.net.lost() >= 1, "ChirpStack lost no post");
    assert_eq!(tls_handshakes(&l.server), 0.0, "a TLS connection was made");
}
