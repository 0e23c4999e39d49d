//! Iridium SBD end to end through a day and a quarter of compressed time:
//! a real `flotta-server` (Rock7 webhook, MT worker), the simulated Rock7
//! (posting some MOs twice), a simulated RockBLOCK 9603 and a resident
//! `flotta-agent` with a budget of 60 credits a day, its governor on the
//! same simulated clock (`FLOTTA_AGENT_SIM_TIME_SCALE`, 1440×: an hour in
//! 2.5 s, the day in a minute).
//!
//! The agent would spend about three credits a window, a window every 24
//! simulated minutes: the budget runs out in the morning, and what is
//! queued after that waits until the credits of the previous day age out
//! of the rolling 24 hours, then goes in full 340-byte MOs. A four-hour
//! loss of sky view (every session fails: no network), the agent killed -9
//! twice and the server once.
//!
//! Checked from the modem's side (its own credit count per session, one
//! per started 50 bytes each way): never more than the budget in any
//! rolling day, but for the answer's MT beyond the one credit the agent
//! reserves for it; and from the server's: every record the agent made
//! stored exactly once (plainly or folded into one summary).

#![allow(clippy::unwrap_used)]

mod agent_support;
mod frames_support;
mod sbd_support;

use std::thread::sleep;
use std::time::{Duration, Instant};

use flotta_e2e::sim_time::{SimTime, busiest};
use frames_support::{assert_delivered_once, drain_resident, emit, events_stored, tls_handshakes};
use sbd_support::{agent, sbd};

/// Simulated seconds per real second.
const FACTOR: u32 = 1440;
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
const CREDITS_PER_DAY: u64 = 60;
/// What an answer's MT may cost beyond the credit reserved for it: an ack
/// fits 50 bytes, the first configuration does not (at most 270 bytes,
/// six credits).
const MT_SLACK: u64 = 5;
/// Real time the drain may take after the last event, and any other wait.
const LIMIT: Duration = Duration::from_secs(180);

#[test]
fn a_day_within_sbd_credits_delivers_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sbd(dir.path(), 4);
    let id = "sbd-day";
    let mut agent = agent(
        &s,
        dir.path(),
        id,
        &format!("[governor]\nsbd_credits_per_day = {CREDITS_PER_DAY}\n"),
    );
    let time = SimTime::start(FACTOR);
    time.apply(&mut agent);
    agent.restart().unwrap();

    let hours = |h: u32| HOUR * h;
    let every = Duration::from_secs(24 * 60);
    let mut next_event = Duration::ZERO;
    let mut emitted = 0;
    let (mut outage, mut outage_over, mut killed_at_12, mut killed_at_25, mut server_killed) =
        (false, false, false, false, false);
    while time.now() < hours(26) {
        let now = time.now();
        if now >= next_event {
            emit(&agent, "SbdDay", emitted);
            emitted += 1;
            next_event += every;
        }
        if !outage && now >= hours(2) {
            outage = true;
            s.modem.no_network(true);
        }
        if !outage_over && now >= hours(6) {
            outage_over = true;
            s.modem.no_network(false);
        }
        if !killed_at_12 && now >= hours(12) {
            killed_at_12 = true;
            agent.kill9();
            agent.restart().unwrap();
        }
        if !server_killed && now >= hours(20) {
            server_killed = true;
            s.server.kill9();
            sleep(time.real(Duration::from_secs(1200)));
            s.server.restart().unwrap();
        }
        if !killed_at_25 && now >= hours(25) {
            killed_at_25 = true;
            agent.kill9();
            agent.restart().unwrap();
        }
        sleep(Duration::from_millis(100));
    }
    let last_event = Instant::now();
    while events_stored(&s.server, id, "SbdDay") < emitted {
        assert!(
            last_event.elapsed() < LIMIT,
            "{} of {emitted} events stored {LIMIT:?} after the last; modem {:?} sessions; \
             agent log (last lines):\n{}",
            events_stored(&s.server, id, "SbdDay"),
            s.modem.stats().sessions,
            agent
                .log()
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .join("\n")
        );
        sleep(Duration::from_millis(200));
    }
    let drained_at = time.now();
    // Then every record: the heartbeats and summaries queued behind the
    // events (checked with the agent stopped, restarted for two simulated
    // hours at a time until it is done).
    drain_resident(&s.server, &mut agent, id, time.real(2 * HOUR), LIMIT);
    let all_stored_at = time.now();
    let d = assert_delivered_once(&s.server, &agent, id);

    let modem = s.modem.stats();
    let charged: Vec<(Duration, u64)> = modem
        .charged
        .iter()
        .map(|&(at, credits)| (time.sim_at(at), credits))
        .collect();
    let busiest_day = busiest(&charged, DAY);
    let log = agent.log();
    let held = log.matches("held back by the sbd_credits budget").count();
    eprintln!(
        "SBD day: {emitted} events; {} records + {} summaries ({} heartbeats) stored, {} log \
         lines below warn not sent; {} sessions ({} successful), {} credits, busiest rolling \
         day {busiest_day} of {CREDITS_PER_DAY}; {held} windows held back by the credits; \
         events stored {:.1} h in, everything {:.1} h in",
        d.plain,
        d.summaries,
        d.folded,
        d.unsent_in_summaries,
        modem.sessions,
        modem.successful_sessions,
        modem.credits,
        drained_at.as_secs_f64() / 3600.0,
        all_stored_at.as_secs_f64() / 3600.0,
    );
    assert!(
        busiest_day <= CREDITS_PER_DAY + MT_SLACK,
        "{busiest_day} credits in one rolling day: the budget is {CREDITS_PER_DAY}"
    );
    assert!(
        held >= 1,
        "the budget never held a window back: the test proves nothing\n{log}"
    );
    assert!(
        modem.sessions > modem.successful_sessions,
        "no session failed in the outage"
    );
    assert_eq!(tls_handshakes(&s.server), 0.0, "a TLS connection was made");
}
