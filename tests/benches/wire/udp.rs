//! The wire benchmark's sealed-frame scenarios: the same device as the TLS
//! ones (60 s heartbeats, hourly windows), provisioned for a frame-only link
//! and talking UDP through the datagram emulator, which counts every
//! datagram and its bytes with IPv4 + UDP headers (28 bytes each).

use std::fmt::Write as _;
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use flotta_e2e::link::{UdpLink, UdpLinkConfig, UdpLinkStats, UdpProfile};
use flotta_e2e::procs::{AgentProc, ServerProc};

use super::{HEARTBEATS_PER_WINDOW, WINDOWS_PER_DAY, stored, wait_for, windows};

fn server(debug: &Path, dir: &Path, extra: &str) -> (ServerProc, UdpLink) {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let udp: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let server =
        ServerProc::start(debug, dir, &format!("udp_listen_addr = \"{udp}\"\n{extra}")).unwrap();
    let link = UdpLinkConfig::new(udp, UdpProfile::clean())
        .with_seed(1)
        .start()
        .unwrap();
    (server, link)
}

fn agent(
    release: &Path,
    dir: &Path,
    server: &ServerProc,
    link: &UdpLink,
    id: &str,
    interval: u64,
) -> AgentProc {
    let toml = format!(
        "heartbeat_period_seconds = 60\nlinks = [\"udp\"]\n[link]\nupload_interval_seconds = {interval}\n\
         [udp]\nserver_addr = \"{}\"\n",
        link.addr()
    );
    let agent = AgentProc::configure(
        release,
        dir,
        id,
        "https://127.0.0.1:9",
        &server.factory_dir,
        &toml,
    )
    .unwrap();
    let out = server
        .command(&["provision", id, "--out", &agent.data_dir.to_string_lossy()])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    agent
}

fn per_window(out: &mut String, d: &UdpLinkStats, windows: u64) {
    let w = windows.max(1) as f64;
    say!(
        out,
        "  per window: {:.1} datagrams up, {:.1} down, {:.0} bytes on the wire (IPv4+UDP headers counted)",
        d.up.delivered as f64 / w,
        d.down.delivered as f64 / w,
        d.wire_bytes() as f64 / w
    );
    say!(
        out,
        "  per day at hourly windows: {:.2} KB (target <= 15 KB), {:.0} datagrams up, {:.0} down",
        d.wire_bytes() as f64 / w * WINDOWS_PER_DAY as f64 / 1000.0,
        d.up.delivered as f64 / w * WINDOWS_PER_DAY as f64,
        d.down.delivered as f64 / w * WINDOWS_PER_DAY as f64
    );
}

/// Resident agent over UDP, 60 heartbeats per window, time compressed 60×.
pub(super) fn resident(debug: &Path, release: &Path, windows_to_measure: u64) -> String {
    let mut out = String::new();
    let dir = tempfile::tempdir().unwrap();
    let (server, link) = server(
        debug,
        dir.path(),
        "default_heartbeat_period_seconds = 1\ncontroller_interval_seconds = 1\n",
    );
    let id = "wire-udp-resident";
    let mut agent = agent(release, dir.path(), &server, &link, id, 60);
    agent.restart().unwrap();
    wait_for("the first UDP window", Duration::from_secs(90), || {
        windows(&agent) >= 1
    });
    sleep(Duration::from_secs(30));
    let (w0, s0, h0) = (windows(&agent), link.stats(), stored(&server, id));
    wait_for(
        "the measured windows",
        Duration::from_secs(70 * windows_to_measure + 60),
        || windows(&agent) >= w0 + windows_to_measure,
    );
    sleep(Duration::from_secs(2));
    let (w1, s1, h1) = (windows(&agent), link.stats(), stored(&server, id));
    let d = s1.since(&s0);
    say!(
        out,
        "\n== resident agent over UDP sealed frames (hourly windows, 60 s heartbeats; time x60)"
    );
    say!(
        out,
        "  measured: {} windows, {} records stored ({} heartbeat summaries folding ~{HEARTBEATS_PER_WINDOW} heartbeats each)",
        w1 - w0,
        h1.1 - h0.1,
        h1.0 - h0.0
    );
    per_window(&mut out, &d, w1 - w0);
    out
}

/// `run --once` every "hour" over UDP: no TLS handshake.
pub(super) fn rtc_woken(debug: &Path, release: &Path, runs: u64) -> String {
    let mut out = String::new();
    let dir = tempfile::tempdir().unwrap();
    let (server, link) = server(debug, dir.path(), "");
    let id = "wire-udp-once";
    let agent = agent(release, dir.path(), &server, &link, id, 3600);
    // The first run queues the agent's start event too; measure the later ones.
    super::run_once_ok(&agent);
    let s0 = link.stats();
    for _ in 0..runs {
        super::run_once_ok(&agent);
    }
    let d = link.stats().since(&s0);
    say!(
        out,
        "\n== RTC-woken agent over UDP: `run --once` every hour (fresh process, no TLS)"
    );
    per_window(&mut out, &d, runs);
    out
}
