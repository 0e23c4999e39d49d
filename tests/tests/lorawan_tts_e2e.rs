//! LoRaWAN end to end over The Things Stack v3 and a Microchip RN2483: a
//! real `flotta-server` (TTS webhook and downlink worker), a real
//! `flotta-agent` on a simulated RN2483 (`mac tx uncnf`, `mac_tx_ok` /
//! `mac_rx`), and a simulated TTS between them (each uplink posted to
//! `/tts/uplink` as a TTS webhook does, at most once; the downlink queue
//! API with `replace`, so only the newest answer waits). The same agent
//! code that drives the RAK3172 over ChirpStack (`lorawan_e2e.rs`), with
//! the other dialect and the other network server.

#![allow(clippy::unwrap_used)]

mod agent_support;
mod frames_support;
mod lorawan_support;

use std::sync::Arc;
use std::time::Duration;

use flotta_e2e::lorawan::{TtsNetwork, TtsOptions};
use flotta_e2e::modem::lora::{Dialect, LoraModemConfig, SimModem};
use flotta_e2e::procs::{ServerProc, bin_dir, free_port};
use flotta_e2e::wait::wait_for;
use frames_support::{assert_every_record_stored_once, emit, events_stored, tls_handshakes};
use lorawan_support::{DEV_EUI, DEV_EUI_HEX, agent_on};

/// Generous: the machine may be busy; only a failure waits this long.
const LIMIT: Duration = Duration::from_secs(120);
const SECRET: &str = "e2e-tts-webhook-secret";
/// The device's id in the TTS application (not flotta's device id).
const TTS_DEVICE: &str = "field-node-1";

#[test]
fn run_once_over_tts_and_an_rn2483_sends_once_and_the_ack_rides_on_the_next_uplink() {
    let dir = tempfile::tempdir().unwrap();
    let webhook: std::net::SocketAddr = ([127, 0, 0, 1], free_port().unwrap()).into();
    let tts = Arc::new(
        TtsNetwork::start(TtsOptions {
            webhook_url: format!("http://{webhook}"),
            auth_header: ("X-Flotta-Secret".into(), SECRET.into()),
            application_id: "fleet".into(),
            webhook_id: "flotta".into(),
            api_key: "NNSXS.e2e-api-key".into(),
            downlink_api_key_header: "NNSXS.e2e-webhook-downlink-key".into(),
            loss_rate: 0.0,
            seed: 3,
        })
        .unwrap(),
    );
    tts.add_device(TTS_DEVICE, DEV_EUI);
    let key = dir.path().join("tts-api-key");
    std::fs::write(&key, "NNSXS.e2e-api-key\n").unwrap();
    let server = ServerProc::start(
        &bin_dir().unwrap(),
        dir.path(),
        &format!(
            "webhook_listen_addr = \"{webhook}\"\n\
             tts_enabled = true\ntts_auth_secret = \"{SECRET}\"\ntts_api_url = \"{}\"\n\
             tts_application_id = \"fleet\"\ntts_webhook_id = \"flotta\"\n\
             tts_api_key_file = \"{}\"\n\
             lorawan_fport = 10\nlorawan_answer_bytes = 242\n\
             lorawan_downlink_retry_initial_ms = 50\nlorawan_downlink_retry_max_ms = 200\n\
             default_heartbeat_period_seconds = 1\ncontroller_interval_seconds = 1\n",
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
            data_rate: 5,
            tx_time: Duration::from_millis(20),
            join_time: Duration::from_millis(20),
            ..LoraModemConfig::default()
        },
    )
    .unwrap();
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
