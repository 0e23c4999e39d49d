//! What the agent costs in the field, measured on real processes: a release
//! `flotta-agent` talking to a real `flotta-server` through the link emulator,
//! which counts every byte of TLS and HTTP both ways (TCP/IP headers are not
//! counted: they depend on the bearer).
//!
//! Printed (not asserted):
//! - **bytes on the wire per heartbeat**, amortised over whole upload
//!   windows, at 60 s heartbeats with hourly windows, and the projected
//!   **bytes per day** (target: under 50 KB/day per device). Time is
//!   compressed 60×: the server asks for a heartbeat every second and the
//!   agent opens a window every minute, so each window carries the same 60
//!   heartbeats an hourly window carries in the field;
//! - **radio sessions** (TCP connections) per window and per day (target: at
//!   most one per window) and the TLS handshakes (full vs resumed) the server saw;
//! - the same for an RTC-woken device that runs `flotta-agent run --once`
//!   every hour (a fresh process each time: a full handshake each time);
//! - **idle RSS** and **wake-ups per idle hour** (context switches of every
//!   agent thread) at the real periods: a heartbeat a minute, a window an hour;
//! - the same device over **UDP sealed frames** (`wire/udp.rs`), resident and
//!   `--once`: datagrams and bytes per window and per day, IPv4 + UDP headers
//!   counted (target: at most 15 KB/day, one datagram each way per window
//!   when the backlog fits), side by side with the TLS figures above;
//! - the same device over **LoRaWAN** at DR0 and DR5 and over **Iridium
//!   SBD** (`wire/narrow.rs`): uplinks, downlinks, frame bytes, time on air
//!   and credits per window and per day, beside the duty-cycle and
//!   fair-use budgets.
//!
//! Run: `cargo bench -p flotta-e2e --bench wire` (about 4 minutes; set
//! `FLOTTA_WIRE_WINDOWS` to measure more or fewer windows, default 3).

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a benchmark binary

#[path = "../tests/agent_support/mod.rs"]
mod agent_support;
#[path = "../tests/frames_support/mod.rs"]
mod frames_support;
#[path = "../tests/lorawan_support/mod.rs"]
mod lorawan_support;
#[path = "../tests/sbd_support/mod.rs"]
mod sbd_support;

use std::fmt::Write as _;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use agent_support::{run_once_ok, stored_records};
use flotta_e2e::link::{Link, LinkConfig, LinkProfile, LinkStats};
use flotta_e2e::procs::{AgentProc, ServerProc, bin_dir, release_agent_dir};
use flotta_e2e::wait::wait_for;

/// `writeln!` into a report string (writing to a `String` cannot fail).
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {
        let _ = writeln!($out, $($arg)*);
    };
}

#[path = "wire/narrow.rs"]
mod narrow;
#[path = "wire/udp.rs"]
mod udp;

/// Heartbeats an hourly window carries at 60 s heartbeats.
const HEARTBEATS_PER_WINDOW: u64 = 60;
const WINDOWS_PER_DAY: u64 = 24;
const HEARTBEATS_PER_DAY: u64 = HEARTBEATS_PER_WINDOW * WINDOWS_PER_DAY;

fn link_to(server: &ServerProc) -> Link {
    let profile = LinkProfile::ethernet().with_latency(Duration::from_millis(5), Duration::ZERO);
    LinkConfig::new(server.api_addr, profile)
        .with_seed(1)
        .start()
        .unwrap()
}

fn url(link: &Link) -> String {
    format!("https://localhost:{}", link.addr().port())
}

fn agent_toml(upload_interval_seconds: u64) -> String {
    format!(
        "heartbeat_period_seconds = 60\n[link]\nupload_interval_seconds = {upload_interval_seconds}\n"
    )
}

/// Completed upload windows in an agent's log.
fn windows(agent: &AgentProc) -> u64 {
    agent.windows_ended() as u64
}

/// (heartbeats, all records) the server stored for `id`.
fn stored(server: &ServerProc, id: &str) -> (u64, u64) {
    let records = stored_records(server, id);
    let heartbeats = records
        .iter()
        .filter(|r| r.record.class == flotta_proto::record::RecordClass::Heartbeat)
        .count() as u64;
    (heartbeats, records.len() as u64)
}

fn handshakes(server: &ServerProc) -> (f64, f64) {
    let m = server.metrics().unwrap();
    let get = |k| flotta_e2e::procs::parse_metric(&m, k);
    (
        get("flotta_tls_handshakes_total{kind=\"full\"}"),
        get("flotta_tls_handshakes_total{kind=\"resumed\"}"),
    )
}

/// A server, the link to it and one agent that has done its first window
/// (enrolment, registration, first upload).
struct Rig {
    server: ServerProc,
    link: Link,
    agent: AgentProc,
    id: &'static str,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn start(
        debug: &Path,
        release: &Path,
        server_toml: &str,
        id: &'static str,
        upload_interval_seconds: u64,
    ) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let server = ServerProc::start(debug, dir.path(), server_toml).unwrap();
        let link = link_to(&server);
        let agent = AgentProc::start(
            release,
            dir.path(),
            id,
            &url(&link),
            &server.factory_dir,
            &agent_toml(upload_interval_seconds),
        )
        .unwrap();
        wait_for("the first window", Duration::from_secs(60), || {
            windows(&agent) >= 1
        });
        Rig {
            server,
            link,
            agent,
            id,
            _dir: dir,
        }
    }
}

/// Resident agent, 60 heartbeats per window, time compressed 60×.
fn resident(debug: &Path, release: &Path, windows_to_measure: u64) -> String {
    let mut out = String::new();
    let Rig {
        server,
        link,
        agent,
        id,
        _dir,
    } = Rig::start(
        debug,
        release,
        "default_heartbeat_period_seconds = 1\ncontroller_interval_seconds = 1\n",
        "wire-resident",
        60,
    );
    // Skip enrolment, registration and the first window; start between windows.
    sleep(Duration::from_secs(30));
    let snapshot = || {
        (
            windows(&agent),
            link.stats(),
            stored(&server, id),
            handshakes(&server),
        )
    };
    let (w0, s0, h0, r0) = snapshot();
    wait_for(
        "the measured windows",
        Duration::from_secs(70 * windows_to_measure + 60),
        || windows(&agent) >= w0 + windows_to_measure,
    );
    sleep(Duration::from_secs(5));
    let (w1, s1, h1, r1) = snapshot();
    let d = s1.since(&s0);
    let (heartbeats, records) = (h1.0 - h0.0, h1.1 - h0.1);
    let windows = w1 - w0;
    report(
        &mut out,
        "resident agent (hourly windows, 60 s heartbeats; time x60)",
        &d,
        windows,
        heartbeats,
        records,
        (r1.0 - r0.0, r1.1 - r0.1),
    );
    out
}

/// `run --once` every "hour": a fresh process, one heartbeat, one window.
fn rtc_woken(debug: &Path, release: &Path, runs: u64) -> String {
    let mut out = String::new();
    let Rig {
        server,
        link,
        mut agent,
        id,
        _dir,
    } = Rig::start(debug, release, "", "wire-once", 3600);
    agent.stop().unwrap();
    let (s0, h0, r0) = (link.stats(), stored(&server, id), handshakes(&server));
    for _ in 0..runs {
        run_once_ok(&agent);
    }
    let (s1, h1, r1) = (link.stats(), stored(&server, id), handshakes(&server));
    let d = s1.since(&s0);
    say!(
        out,
        "\n== RTC-woken agent: `run --once` every hour (fresh process per window)"
    );
    let per_window = d.bytes_total() as f64 / runs as f64;
    say!(
        out,
        "  per window: {per_window:.0} bytes ({:.0} up, {:.0} down), {:.2} connections, \
         {} heartbeats and {} records stored in {runs} runs",
        d.bytes_up as f64 / runs as f64,
        d.bytes_down as f64 / runs as f64,
        d.attempts as f64 / runs as f64,
        h1.0 - h0.0,
        h1.1 - h0.1,
    );
    say!(
        out,
        "  TLS handshakes: {} full, {} resumed (rustls cannot persist client tickets across processes)",
        r1.0 - r0.0,
        r1.1 - r0.1
    );
    say!(
        out,
        "  per day at hourly wakes: {:.1} KB, {} sessions",
        per_window * WINDOWS_PER_DAY as f64 / 1000.0,
        (d.attempts as f64 / runs as f64 * WINDOWS_PER_DAY as f64).round()
    );
    out
}

fn report(
    out: &mut String,
    title: &str,
    d: &LinkStats,
    windows: u64,
    heartbeats: u64,
    records: u64,
    handshakes: (f64, f64),
) {
    say!(out, "\n== {title}");
    say!(
        out,
        "  measured: {windows} windows, {heartbeats} heartbeats ({records} records), \
         {} bytes up, {} bytes down, {} connections",
        d.bytes_up,
        d.bytes_down,
        d.attempts
    );
    say!(
        out,
        "  TLS handshakes: {} full, {} resumed",
        handshakes.0,
        handshakes.1
    );
    if heartbeats == 0 || windows == 0 {
        say!(out, "  nothing delivered: no figures");
        return;
    }
    let per_heartbeat = d.bytes_total() as f64 / heartbeats as f64;
    let per_day = per_heartbeat * HEARTBEATS_PER_DAY as f64;
    let sessions_per_window = d.attempts as f64 / windows as f64;
    say!(
        out,
        "  bytes on the wire per heartbeat (amortised, TLS + HTTP): {per_heartbeat:.1}"
    );
    say!(
        out,
        "  per day: {:.1} KB (target < 50 KB)   sessions per window: {sessions_per_window:.2} \
         (target <= 1)   sessions per day: {:.0}",
        per_day / 1000.0,
        sessions_per_window * WINDOWS_PER_DAY as f64
    );
    say!(
        out,
        "  Flotta's stock device worker: ~36,000 requests/day (two polls every 5 s)"
    );
}

/// (resident KiB, voluntary and involuntary context switches of all
/// threads) of a running process (`flotta_e2e::procstat`).
fn proc_sample(pid: u32) -> (u64, u64, u64) {
    let s = flotta_e2e::procstat::sample(pid, None);
    (s.rss_kib, s.voluntary, s.involuntary)
}

/// Real periods: a heartbeat a minute, a window an hour; count wake-ups while idle.
fn idle(debug: &Path, release: &Path, seconds: u64) -> String {
    let mut out = String::new();
    let rig = Rig::start(debug, release, "", "wire-idle", 3600);
    let agent = &rig.agent;
    // Let the blocking pool's idle thread retire (tokio keeps it 10 s).
    sleep(Duration::from_secs(15));
    let pid = agent.pid().unwrap();
    let (_, v0, i0) = proc_sample(pid);
    let t0 = Instant::now();
    sleep(Duration::from_secs(seconds));
    let (rss, v1, i1) = proc_sample(pid);
    let secs = t0.elapsed().as_secs_f64();
    let per_hour = (v1 - v0) as f64 * 3600.0 / secs;
    say!(
        out,
        "\n== idle agent (heartbeat every 60 s, window every hour), {seconds} s sampled"
    );
    say!(out, "  idle RSS: {rss} KiB");
    say!(
        out,
        "  wake-ups (voluntary context switches, all threads): {} in {secs:.0} s = {per_hour:.0} per hour \
         ({:.1} per heartbeat); preemptions: {}",
        v1 - v0,
        (v1 - v0) as f64 * 60.0 / secs,
        i1 - i0
    );
    out
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let windows_to_measure = std::env::var("FLOTTA_WIRE_WINDOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let debug = bin_dir().unwrap();
    let release = release_agent_dir().unwrap();
    // The scenarios run at once (each has its own server and link);
    // their reports print in a fixed order.
    let reports = std::thread::scope(|s| {
        let (d, r) = (&debug, &release);
        let handles = [
            s.spawn(move || resident(d, r, windows_to_measure)),
            s.spawn(move || rtc_woken(d, r, 5)),
            s.spawn(move || udp::resident(d, r, windows_to_measure)),
            s.spawn(move || udp::rtc_woken(d, r, 5)),
            s.spawn(move || narrow::lorawan(r, 0, windows_to_measure)),
            s.spawn(move || narrow::lorawan(r, 5, windows_to_measure)),
            s.spawn(move || narrow::sbd(r, windows_to_measure)),
            s.spawn(move || idle(d, r, 180)),
        ];
        handles.map(|h| h.join().unwrap())
    });
    for r in reports {
        print!("{r}");
    }
}
