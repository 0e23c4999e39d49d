//! The wire benchmark's narrow-link scenarios: the same device (60 s
//! heartbeats, hourly windows, time compressed 60×) over LoRaWAN — a
//! simulated RAK3172 behind a simulated ChirpStack, at DR0 (SF12, 51-byte
//! frames) and DR5 (SF7, 242 bytes) — and over Iridium SBD (a simulated
//! RockBLOCK 9603 behind a simulated Rock7). Printed per window and per day:
//! uplinks and downlinks, frame bytes, LoRa time on air (the Semtech
//! formula at each uplink's data rate, from what ChirpStack received) and
//! Iridium credits, beside the budgets that bind them (EU868 1 % = 36 s an
//! hour, TTN 30 s of airtime and 10 downlinks a day).
//!
//! The governor is off here (`duty_cycle = false`, `fair_use = "none"`):
//! compressed time would hold every window back; the figures say what the
//! device would need, and the budgets beside them whether it fits.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use flotta_agent::carrier::lorawan::Region;
use flotta_agent::carrier::lorawan::airtime::uplink_airtime;
use flotta_e2e::lorawan::{ChirpstackNetwork, ChirpstackOptions};
use flotta_e2e::modem::lora::{Dialect, LoraModemConfig, SimModem};
use flotta_e2e::modem::sbd::{Rock7Config, Rock7Network, SbdModem, SbdModemConfig};
use flotta_e2e::procs::{AgentProc, ServerProc, free_port};

use super::{WINDOWS_PER_DAY, stored, wait_for, windows};

const SECRET: &str = "Bearer wire-bench";
const DEV_EUI: [u8; 8] = [0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0x05, 0x1a, 0x02];
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../server/tests/fixtures");
const GOVERNOR_OFF: &str = "[governor]\nduty_cycle = false\nfair_use = \"none\"\n";

fn configure(release: &Path, dir: &Path, server: &ServerProc, id: &str, toml: &str) -> AgentProc {
    AgentProc::configure(
        release,
        dir,
        id,
        "https://127.0.0.1:9",
        &server.factory_dir,
        toml,
    )
    .unwrap()
}

fn provision(server: &ServerProc, agent: &AgentProc, id: &str, extra: &[&str]) {
    let out_dir = agent.data_dir.to_string_lossy();
    let mut args = vec!["provision", id, "--out", &out_dir];
    args.extend_from_slice(extra);
    let out = server.command(&args).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (uplinks with data, their frame bytes, their airtime in ms) ChirpStack
/// posted so far.
fn lora_posted(net: &ChirpstackNetwork) -> (u64, u64, f64) {
    let (mut n, mut bytes, mut ms) = (0, 0, 0.0);
    for (_, body) in net.posted() {
        let Ok(ev) = serde_json::from_str::<serde_json::Value>(&body) else {
            continue;
        };
        let Some(data) = ev["data"].as_str() else {
            continue;
        };
        let len = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_or(0, |d| d.len());
        let dr = u8::try_from(ev["dr"].as_u64().unwrap_or(0)).unwrap_or(0);
        n += 1;
        bytes += len as u64;
        ms += uplink_airtime(Region::Eu868, dr, 0, len).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    }
    (n, bytes, ms)
}

/// Resident agent over LoRaWAN at data rate `dr`.
pub(super) fn lorawan(debug: &Path, release: &Path, dr: u8, windows_to_measure: u64) -> String {
    let mut out = String::new();
    let dir = tempfile::tempdir().unwrap();
    let webhook: std::net::SocketAddr = ([127, 0, 0, 1], free_port().unwrap()).into();
    let net = Arc::new(
        ChirpstackNetwork::start(ChirpstackOptions {
            webhook_url: format!("http://{webhook}"),
            auth_header: ("authorization".into(), SECRET.into()),
            api_token: "wire".into(),
            loss_rate: 0.0,
            seed: 1,
        })
        .unwrap(),
    );
    let token = dir.path().join("token");
    std::fs::write(&token, "wire\n").unwrap();
    let server = ServerProc::start(
        debug,
        dir.path(),
        &format!(
            "webhook_listen_addr = \"{webhook}\"\nchirpstack_enabled = true\n\
             chirpstack_auth_secret = \"{SECRET}\"\nchirpstack_api_url = \"{}\"\n\
             chirpstack_api_token_file = \"{}\"\nlorawan_fport = 10\n\
             default_heartbeat_period_seconds = 1\ncontroller_interval_seconds = 1\n",
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
            data_rate: dr,
            tx_time: Duration::from_millis(20),
            join_time: Duration::from_millis(20),
            ..LoraModemConfig::default()
        },
    )
    .unwrap();
    let id = format!("wire-lora-dr{dr}");
    let toml = format!(
        "heartbeat_period_seconds = 60\nlinks = [\"lorawan\"]\n[link]\nupload_interval_seconds = 60\n\
         [lorawan]\ndevice = \"{}\"\ndata_rate = {dr}\nadr = false\n{GOVERNOR_OFF}",
        modem.path().display()
    );
    let mut agent = configure(release, dir.path(), &server, &id, &toml);
    provision(&server, &agent, &id, &["--dev-eui", "70b3d57ed0051a02"]);
    agent.restart().unwrap();
    wait_for("the first LoRaWAN window", Duration::from_secs(90), || {
        windows(&agent) >= 1
    });
    std::thread::sleep(Duration::from_secs(30));
    let (w0, p0, d0, h0) = (
        windows(&agent),
        lora_posted(&net),
        net.downlinks_today(DEV_EUI),
        stored(&server, &id),
    );
    wait_for(
        "the measured windows",
        Duration::from_secs(70 * windows_to_measure + 60),
        || windows(&agent) >= w0 + windows_to_measure,
    );
    std::thread::sleep(Duration::from_secs(2));
    let (w1, p1, d1, h1) = (
        windows(&agent),
        lora_posted(&net),
        net.downlinks_today(DEV_EUI),
        stored(&server, &id),
    );
    let w = (w1 - w0).max(1) as f64;
    let day = WINDOWS_PER_DAY as f64 / w;
    let (ups, bytes, ms) = (p1.0 - p0.0, p1.1 - p0.1, p1.2 - p0.2);
    let downs = f64::from(d1 - d0);
    say!(
        out,
        "\n== resident agent over LoRaWAN DR{dr} (EU868, RAK3172 + ChirpStack; hourly windows, 60 s heartbeats; time x60)"
    );
    say!(
        out,
        "  measured: {} windows, {} records stored",
        w1 - w0,
        h1.1 - h0.1
    );
    say!(
        out,
        "  per window: {:.1} uplinks, {:.0} frame bytes, {:.0} ms on air, {:.2} downlinks",
        ups as f64 / w,
        bytes as f64 / w,
        ms / w,
        downs / w
    );
    say!(
        out,
        "  per day: {:.0} uplinks, {:.2} KB, {:.1} s on air (TTN fair use: 30 s), {:.0} downlinks (TTN: 10); \
         busiest hour {:.1} s of the EU868 1 % (36 s)",
        ups as f64 * day,
        bytes as f64 * day / 1000.0,
        ms * day / 1000.0,
        downs * day,
        ms / w / 1000.0
    );
    out
}

/// Resident agent over Iridium SBD.
pub(super) fn sbd(debug: &Path, release: &Path, windows_to_measure: u64) -> String {
    let mut out = String::new();
    let dir = tempfile::tempdir().unwrap();
    let webhook = ([127, 0, 0, 1], free_port().unwrap()).into();
    let rock7 = Rock7Network::start(Rock7Config {
        webhook,
        key_pem: std::fs::read(format!("{FIXTURES}/rock7-test-only.key.pem")).unwrap(),
        username: "flotta".into(),
        password: "s3cret".into(),
        redeliver_every: 0,
        retry_delay: Duration::from_millis(100),
    })
    .unwrap();
    let password = dir.path().join("rock7-password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let server = ServerProc::start(
        debug,
        dir.path(),
        &format!(
            "webhook_listen_addr = \"{webhook}\"\n\
             rock7_public_key_file = \"{FIXTURES}/rock7-test-only.pub.pem\"\n\
             rock7_username = \"flotta\"\nrock7_password_file = \"{}\"\nrock7_mt_url = \"{}\"\n\
             default_heartbeat_period_seconds = 1\ncontroller_interval_seconds = 1\n",
            password.display(),
            rock7.mt_url()
        ),
    )
    .unwrap();
    let imei = "300434060000002";
    let modem = SbdModem::start(
        rock7.clone(),
        SbdModemConfig {
            imei: imei.into(),
            ..SbdModemConfig::default()
        },
    )
    .unwrap();
    let id = "wire-sbd";
    let toml = format!(
        "heartbeat_period_seconds = 60\nlinks = [\"sbd\"]\n[link]\nupload_interval_seconds = 60\n\
         [sbd]\ndevice = \"{}\"\nanswer_timeout_ms = 30000\n{GOVERNOR_OFF}",
        modem.path().display()
    );
    let mut agent = configure(release, dir.path(), &server, id, &toml);
    provision(&server, &agent, id, &["--imei", imei]);
    agent.restart().unwrap();
    wait_for("the first SBD window", Duration::from_secs(90), || {
        windows(&agent) >= 1
    });
    std::thread::sleep(Duration::from_secs(30));
    let (w0, m0) = (windows(&agent), modem.stats());
    wait_for(
        "the measured windows",
        Duration::from_secs(70 * windows_to_measure + 60),
        || windows(&agent) >= w0 + windows_to_measure,
    );
    std::thread::sleep(Duration::from_secs(2));
    let (w1, m1) = (windows(&agent), modem.stats());
    let w = (w1 - w0).max(1) as f64;
    let mo_bytes: usize = m1.mo_written[m0.mo_written.len()..]
        .iter()
        .map(Vec::len)
        .sum();
    say!(
        out,
        "\n== resident agent over Iridium SBD (RockBLOCK 9603 + Rock7; hourly windows, 60 s heartbeats; time x60)"
    );
    say!(
        out,
        "  per window: {:.1} sessions, {:.0} MO bytes, {:.1} credits",
        (m1.sessions - m0.sessions) as f64 / w,
        mo_bytes as f64 / w,
        (m1.credits - m0.credits) as f64 / w
    );
    say!(
        out,
        "  per day: {:.0} sessions, {:.0} credits (50 bytes each, MO and MT)",
        (m1.sessions - m0.sessions) as f64 / w * WINDOWS_PER_DAY as f64,
        (m1.credits - m0.credits) as f64 / w * WINDOWS_PER_DAY as f64
    );
    out
}
