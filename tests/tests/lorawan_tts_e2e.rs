//! LoRaWAN end to end over The Things Stack v3 and a Microchip RN2483: a
//! real `flotta-server` (TTS webhook and downlink worker), a real
//! `flotta-agent` on a simulated RN2483 (`mac tx uncnf`, `mac_tx_ok` /
//! `mac_rx`), and a simulated TTS between them (each uplink posted to
//! `/tts/uplink` as a TTS webhook does, at most once; the downlink queue
//! API with `replace`, so only the newest answer waits). The same agent
//! code that drives the RAK3172 over ChirpStack (`lorawan_e2e.rs`), with
//! the other dialect and the other network server. And a compressed day on
//! The Things Network's fair use, measured at the radio.

#![allow(clippy::unwrap_used)]

mod agent_support;
mod frames_support;
mod lorawan_support;

use std::path::Path;
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use flotta_e2e::lorawan::{TtsNetwork, TtsOptions};
use flotta_e2e::modem::lora::{Dialect, LoraModemConfig, SimModem};
use flotta_e2e::procs::{ServerProc, bin_dir, free_port};
use flotta_e2e::sim_time::{SimTime, busiest};
use flotta_e2e::wait::wait_for;
use frames_support::{
    assert_delivered_once, assert_every_record_stored_once, drain_resident, emit, events_stored,
    tls_handshakes,
};
use lorawan_support::{DEV_EUI, DEV_EUI_HEX, agent_on, aired, max_airtime_in};

/// Generous: the machine may be busy; only a failure waits this long.
const LIMIT: Duration = Duration::from_secs(120);
const SECRET: &str = "e2e-tts-webhook-secret";
/// The device's id in the TTS application (not flotta's device id).
const TTS_DEVICE: &str = "field-node-1";

/// The simulated TTS (losing `loss_rate` of its posts), a flotta server
/// on its webhook with answers of `answer_bytes` and heartbeats every
/// `period_s`, and an RN2483 at `data_rate` on it.
struct Tts {
    tts: Arc<TtsNetwork>,
    server: ServerProc,
    modem: SimModem,
}

fn tts(dir: &Path, data_rate: u8, answer_bytes: usize, loss_rate: f64, period_s: u64) -> Tts {
    let webhook: std::net::SocketAddr = ([127, 0, 0, 1], free_port().unwrap()).into();
    let tts = Arc::new(
        TtsNetwork::start(TtsOptions {
            webhook_url: format!("http://{webhook}"),
            auth_header: ("X-Flotta-Secret".into(), SECRET.into()),
            application_id: "fleet".into(),
            webhook_id: "flotta".into(),
            api_key: "NNSXS.e2e-api-key".into(),
            downlink_api_key_header: "NNSXS.e2e-webhook-downlink-key".into(),
            loss_rate,
            seed: 3,
        })
        .unwrap(),
    );
    tts.add_device(TTS_DEVICE, DEV_EUI);
    let key = dir.join("tts-api-key");
    std::fs::write(&key, "NNSXS.e2e-api-key\n").unwrap();
    let server = ServerProc::start(
        &bin_dir().unwrap(),
        dir,
        &format!(
            "webhook_listen_addr = \"{webhook}\"\n\
             tts_enabled = true\ntts_auth_secret = \"{SECRET}\"\ntts_api_url = \"{}\"\n\
             tts_application_id = \"fleet\"\ntts_webhook_id = \"flotta\"\n\
             tts_api_key_file = \"{}\"\n\
             lorawan_fport = 10\nlorawan_answer_bytes = {answer_bytes}\n\
             lorawan_downlink_retry_initial_ms = 50\nlorawan_downlink_retry_max_ms = 200\n\
             default_heartbeat_period_seconds = {period_s}\ncontroller_interval_seconds = 1\n",
            tts.api_url(),
            key.display()
        ),
    )
    .unwrap();
    let modem = SimModem::start(
        Dialect::Rn2483,
        tts.clone(),
        LoraModemConfig {
            dev_eui: DEV_EUI,
            data_rate,
            tx_time: Duration::from_millis(20),
            join_time: Duration::from_millis(20),
            ..LoraModemConfig::default()
        },
    )
    .unwrap();
    Tts { tts, server, modem }
}

#[test]
fn run_once_over_tts_and_an_rn2483_sends_once_and_the_ack_rides_on_the_next_uplink() {
    let dir = tempfile::tempdir().unwrap();
    let Tts { tts, server, modem } = tts(dir.path(), 5, 242, 0.0, 1);
    let id = "tts-once";
    let agent = agent_on(&server, &modem, 5, dir.path(), id, "ttn", 1);
    let runs = 3;
    for i in 0..runs {
        emit(&agent, "TtsTest", i);
        let before = modem.stats();
        let status = agent.run_once_within(LIMIT).unwrap();
        assert!(status.success(), "{}", agent.log());
        let uplinks = modem.stats().uplinks - before.uplinks;
        assert!(
            (1..=3).contains(&uplinks),
            "run {i}: {uplinks} uplinks for a summary and an event at DR5\n{}",
            agent.log()
        );
        wait_for("the run's event stored", LIMIT, || {
            events_stored(&server, id, "TtsTest") == i + 1
        });
        // `replace`: one answer waits, the newest.
        wait_for("the answer queued at TTS", LIMIT, || {
            tts.queued(TTS_DEVICE).len() == 1
        });
    }
    let status = agent.run_once_within(LIMIT).unwrap();
    assert!(status.success(), "{}", agent.log());
    assert_every_record_stored_once(&server, &agent, id);
    let commands = modem.stats().commands;
    assert!(
        commands.iter().any(|c| c.starts_with("mac tx uncnf 10 ")),
        "the RN2483 dialect was not spoken: {commands:?}"
    );
    assert!(
        tts.downlinks_today(TTS_DEVICE) <= runs as u32 + 1,
        "one downlink per run at most"
    );
    assert!(
        tts.api_calls().iter().any(|c| c.contains("/down/replace")),
        "answers not queued with replace: {:?}",
        tts.api_calls()
    );
    assert_eq!(tls_handshakes(&server), 0.0, "a TLS connection was made");
    let described = server.command(&["describe", "ed", id]).unwrap();
    let text = String::from_utf8_lossy(&described.stdout).to_lowercase();
    assert!(
        text.contains("lorawan") && text.contains(DEV_EUI_HEX),
        "describe shows neither the link nor the DevEUI: {text}"
    );
}

/// A day on The Things Network, compressed 1440× (an hour in 2.5 s): the
/// agent on TTN's fair-use policy at DR3 (SF9, 115-byte payloads), a
/// window every 72 simulated minutes, an event every 18 minutes and a
/// burst of twenty at noon, TTS losing a tenth of its posts. Checked at the
/// radio (the modem's record of its uplinks, airtime by the server's
/// formula, and of the downlinks it received): never more than 30 s of
/// uplink airtime nor ten downlinks in any rolling 24 hours; and at the
/// server: every record the agent made stored exactly once.
#[test]
fn a_day_on_the_things_network_keeps_its_fair_use() {
    const FACTOR: u32 = 1440;
    const DAY: Duration = Duration::from_secs(24 * 3600);
    const AIRTIME_PER_DAY: Duration = Duration::from_secs(30);
    const DOWNLINKS_PER_DAY: usize = 10;
    /// The longest DR3 uplink (115 bytes at SF9): what the test's clock may
    /// be off by at a window's edge.
    const LONGEST_UPLINK: Duration = Duration::from_millis(700);
    const DRAIN_LIMIT: Duration = Duration::from_secs(240);

    let dir = tempfile::tempdir().unwrap();
    let Tts { tts, server, modem } = tts(dir.path(), 3, 115, 0.1, 3);
    let id = "tts-day";
    let mut agent = agent_on(&server, &modem, 3, dir.path(), id, "ttn", 3);
    let time = SimTime::start(FACTOR);
    time.apply(&mut agent);
    agent.restart().unwrap();

    let every = Duration::from_secs(18 * 60);
    let (mut next_event, mut emitted, mut burst) = (Duration::ZERO, 0, false);
    while time.now() < DAY {
        if time.now() >= next_event {
            emit(&agent, "TtsDay", emitted);
            emitted += 1;
            next_event += every;
        }
        if !burst && time.now() >= DAY / 2 {
            burst = true;
            for _ in 0..20 {
                emit(&agent, "TtsDay", emitted);
                emitted += 1;
            }
        }
        sleep(Duration::from_millis(100));
    }
    let day_over = Instant::now();
    wait_for("every event stored", DRAIN_LIMIT, || {
        events_stored(&server, id, "TtsDay") == emitted
    });
    let events_at = time.sim_at(Instant::now()) - time.sim_at(day_over);
    drain_resident(
        &server,
        &mut agent,
        id,
        time.real(Duration::from_secs(2 * 3600)),
        DRAIN_LIMIT,
    );
    let all_at = time.sim_at(Instant::now()) - time.sim_at(day_over);
    let d = assert_delivered_once(&server, &agent, id);

    let stats = modem.stats();
    let on_air = aired(&stats.on_air, &time);
    let busiest_airtime = max_airtime_in(&on_air, DAY);
    let downlinks: Vec<(Duration, usize)> = stats
        .downlinks
        .iter()
        .map(|&at| (time.sim_at(at), 1))
        .collect();
    let most_downlinks = busiest(&downlinks, DAY);
    let log = agent.log();
    let held_airtime = log.matches("held back by the fair_use_airtime").count();
    let held_downlinks = log.matches("held back by the fair_use_downlinks").count();
    eprintln!(
        "TTN day at DR3: {emitted} events; {} records + {} summaries ({} heartbeats) stored; \
         {} uplinks, {:.1} s on air, busiest rolling day {:.1} s of 30; {} downlinks, at \
         most {most_downlinks} of 10 in a rolling day; windows held back by fair use: \
         {held_airtime} for airtime, {held_downlinks} for downlinks; \
         events stored {:.1} h after the day, everything {:.1} h after; TTS lost {} posts",
        d.plain,
        d.summaries,
        d.folded,
        on_air.len(),
        on_air
            .iter()
            .map(|a| a.airtime)
            .sum::<Duration>()
            .as_secs_f64(),
        busiest_airtime.as_secs_f64(),
        downlinks.len(),
        events_at.as_secs_f64() / 3600.0,
        all_at.as_secs_f64() / 3600.0,
        tts.lost(),
    );
    assert!(
        busiest_airtime <= AIRTIME_PER_DAY + LONGEST_UPLINK,
        "{:.1} s of uplink airtime in one rolling day: TTN's fair use allows 30 s",
        busiest_airtime.as_secs_f64()
    );
    assert!(
        most_downlinks <= DOWNLINKS_PER_DAY,
        "{most_downlinks} downlinks in one rolling day: TTN's fair use allows 10"
    );
    // Both budgets bound: windows were held back for airtime, and the
    // device asked for answers until the downlinks ran out (a window asks
    // once: twice the ten a day).
    assert!(
        held_airtime >= 1 && most_downlinks == DOWNLINKS_PER_DAY,
        "fair use did not bind for both airtime and downlinks: the test proves nothing\n{log}"
    );
    assert!(tts.lost() >= 1, "TTS lost no post");
}
