//! What the LoRaWAN end-to-end tests share: a real `flotta-server` with its
//! ChirpStack v4 integration, the simulated ChirpStack, a simulated RAK3172,
//! agents provisioned with the modem's DevEUI, and the radio's own
//! accounting of airtime (EU868 duty cycle, TTN fair use) in simulated time.

#![allow(dead_code)] // each test binary uses its part

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flotta_e2e::lorawan::{ChirpstackNetwork, ChirpstackOptions};
use flotta_e2e::modem::lora::{Dialect, LoraModemConfig, OnAir, SimModem};
use flotta_e2e::procs::{AgentProc, ServerProc, bin_dir, free_port};
use flotta_e2e::sim_time::{SimTime, busiest};
use flotta_server::lorawan::{Region, uplink_airtime_us};

use super::frames_support::provision;

pub(crate) const DEV_EUI: [u8; 8] = [0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0x05, 0x1a, 0x01];
pub(crate) const DEV_EUI_HEX: &str = "70b3d57ed0051a01";
const SECRET: &str = "Bearer e2e-chirpstack-secret";

/// A server with its ChirpStack integration, the simulated ChirpStack and
/// a RAK3172.
pub(crate) struct Lora {
    pub(crate) server: ServerProc,
    pub(crate) net: Arc<ChirpstackNetwork>,
    pub(crate) modem: SimModem,
    /// The modem's data rate (fixed: no ADR).
    pub(crate) data_rate: u8,
}

/// The network: ChirpStack loses `loss_rate` of its event posts; the
/// modem transmits at `data_rate`; the server's answers are at most
/// `answer_bytes` long, and configure a heartbeat every `period_seconds`.
pub(crate) fn lora(
    dir: &Path,
    loss_rate: f64,
    data_rate: u8,
    answer_bytes: usize,
    period_seconds: u64,
) -> Lora {
    let webhook: std::net::SocketAddr = ([127, 0, 0, 1], free_port().unwrap()).into();
    let net = Arc::new(
        ChirpstackNetwork::start(ChirpstackOptions {
            webhook_url: format!("http://{webhook}"),
            auth_header: ("authorization".into(), SECRET.into()),
            api_token: "e2e-api-token".into(),
            loss_rate,
            seed: 7,
        })
        .unwrap(),
    );
    let token = dir.join("chirpstack-token");
    std::fs::write(&token, "e2e-api-token\n").unwrap();
    let server = ServerProc::start(
        &bin_dir().unwrap(),
        dir,
        &format!(
            "webhook_listen_addr = \"{webhook}\"\n\
             chirpstack_enabled = true\nchirpstack_auth_secret = \"{SECRET}\"\n\
             chirpstack_api_url = \"{}\"\nchirpstack_api_token_file = \"{}\"\n\
             lorawan_fport = 10\nlorawan_answer_bytes = {answer_bytes}\n\
             lorawan_downlink_retry_initial_ms = 50\nlorawan_downlink_retry_max_ms = 200\n\
             default_heartbeat_period_seconds = {period_seconds}\ncontroller_interval_seconds = 1\n",
            net.api_url(),
            token.display()
        ),
    )
    .unwrap();
    let modem = SimModem::start(
        Dialect::Rak3172,
        net.clone(),
        LoraModemConfig {
            dev_eui: DEV_EUI,
            data_rate,
            tx_time: Duration::from_millis(20),
            join_time: Duration::from_millis(20),
            ..LoraModemConfig::default()
        },
    )
    .unwrap();
    Lora {
        server,
        net,
        modem,
        data_rate,
    }
}

/// Agent settings over `modem` only, at `data_rate`, fair use as
/// `fair_use` says; a heartbeat and a window every second unless
/// `period_seconds` says otherwise.
fn lora_toml(modem: &SimModem, data_rate: u8, fair_use: &str, period_seconds: u64) -> String {
    format!(
        "heartbeat_period_seconds = {period_seconds}\nlinks = [\"lorawan\"]\n[link]\n\
         upload_interval_seconds = {period_seconds}\n\
         backoff_initial_seconds = 1\nbackoff_max_seconds = 2\n\
         [lorawan]\ndevice = \"{}\"\nmodem = \"{}\"\ndata_rate = {data_rate}\nadr = false\n\
         join_backoff_ms = 100\n[governor]\nfair_use = \"{fair_use}\"\n",
        modem.path().display(),
        match modem.dialect() {
            Dialect::Rak3172 => "rak3172",
            Dialect::Rn2483 => "rn2483",
        },
    )
}

/// A provisioned agent (not started) on the network's modem.
pub(crate) fn agent(l: &Lora, dir: &Path, id: &str, fair_use: &str) -> AgentProc {
    agent_on(&l.server, &l.modem, l.data_rate, dir, id, fair_use, 1)
}

/// A provisioned agent (not started) on `modem`, bound to [`DEV_EUI`],
/// a heartbeat and a window every `period_seconds`.
pub(crate) fn agent_on(
    server: &ServerProc,
    modem: &SimModem,
    data_rate: u8,
    dir: &Path,
    id: &str,
    fair_use: &str,
    period_seconds: u64,
) -> AgentProc {
    // No TLS path at all: the server URL points nowhere.
    let agent = AgentProc::configure(
        &bin_dir().unwrap(),
        dir,
        id,
        "https://127.0.0.1:9",
        &server.factory_dir,
        &lora_toml(modem, data_rate, fair_use, period_seconds),
    )
    .unwrap();
    provision(server, &agent, id, &["--dev-eui", DEV_EUI_HEX]);
    agent
}

/// One uplink on air, in simulated time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Aired {
    pub(crate) at: Duration,
    pub(crate) airtime: Duration,
    pub(crate) len: usize,
}

/// The modem's transmissions in simulated time, each with its time on air
/// (EU868, the server's own formula: independent of the agent's).
pub(crate) fn aired(on_air: &[OnAir], time: &SimTime) -> Vec<Aired> {
    on_air
        .iter()
        .map(|o| Aired {
            at: time.sim_at(o.at),
            airtime: Duration::from_micros(uplink_airtime_us(Region::Eu868, o.dr, o.len).unwrap()),
            len: o.len,
        })
        .collect()
}

/// The most airtime spent in any `window` of simulated time (rolling,
/// starting at each transmission).
pub(crate) fn max_airtime_in(aired: &[Aired], window: Duration) -> Duration {
    let entries: Vec<(Duration, Duration)> = aired.iter().map(|a| (a.at, a.airtime)).collect();
    busiest(&entries, window)
}
