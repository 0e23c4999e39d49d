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
use std::time::Duration;

use base64::Engine;
use flotta_agent::carrier::lorawan::Region;
use flotta_agent::carrier::lorawan::airtime::uplink_airtime;
use flotta_e2e::lorawan::ChirpstackNetwork;
use flotta_e2e::procs::{AgentProc, ServerProc};

use super::frames_support::provision;
use super::lorawan_support::{DEV_EUI, DEV_EUI_HEX, Lora, lora};
use super::sbd_support::{IMEI, Sbd, sbd as sbd_network};
use super::{WINDOWS_PER_DAY, stored, wait_for, windows};

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
pub(super) fn lorawan(release: &Path, dr: u8, windows_to_measure: u64) -> String {
    let mut out = String::new();
    let dir = tempfile::tempdir().unwrap();
    // Answers of 51 bytes (the server's default: every EU868 data rate).
    let Lora {
        server, net, modem, ..
    } = lora(dir.path(), 0.0, dr, 51, 1);
    let id = format!("wire-lora-dr{dr}");
    let toml = format!(
        "heartbeat_period_seconds = 60\nlinks = [\"lorawan\"]\n[link]\nupload_interval_seconds = 60\n\
         [lorawan]\ndevice = \"{}\"\ndata_rate = {dr}\nadr = false\n{GOVERNOR_OFF}",
        modem.path().display()
    );
    let mut agent = configure(release, dir.path(), &server, &id, &toml);
    provision(&server, &agent, &id, &["--dev-eui", DEV_EUI_HEX]);
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
pub(super) fn sbd(release: &Path, windows_to_measure: u64) -> String {
    let mut out = String::new();
    let dir = tempfile::tempdir().unwrap();
    let Sbd { server, modem, .. } = sbd_network(dir.path(), 0);
    let id = "wire-sbd";
    let toml = format!(
        "heartbeat_period_seconds = 60\nlinks = [\"sbd\"]\n[link]\nupload_interval_seconds = 60\n\
         [sbd]\ndevice = \"{}\"\nanswer_timeout_ms = 30000\n{GOVERNOR_OFF}",
        modem.path().display()
    );
    let mut agent = configure(release, dir.path(), &server, id, &toml);
    provision(&server, &agent, id, &["--imei", IMEI]);
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
