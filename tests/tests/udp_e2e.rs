//! Sealed frames over UDP, end to end: real `flotta-server` (UDP listener)
//! and `flotta-agent` processes through the user-space datagram emulator.
//!
//! - `a_udp_only_device_delivers_every_record_once_through_a_lossy_link`: a
//!   device provisioned for a frame-only link (`flotta-server provision`)
//!   sends heartbeats and events through a link that loses, duplicates and
//!   reorders datagrams both ways, and is killed -9 in the middle of windows.
//!   Every record is stored exactly once (heartbeats folded into window
//!   summaries are each counted once; a phase with windows rarer than
//!   heartbeats makes the folding certain), a configuration change reaches the
//!   device by downlink, no frame counter ever carries two different
//!   payloads (every datagram the link saw, dropped or not), and no TLS
//!   connection is ever made.
//! - `run_once_over_udp_is_one_datagram_each_way`: an RTC-woken device:
//!   each `run --once` is one datagram up and one down, no TLS.
//! - `keys_arrive_over_tls_and_udp_takes_over_when_tls_fails`: a device with
//!   `links = ["tls", "udp"]` receives its frame keys in a TLS batch answer,
//!   then keeps delivering over UDP while its TCP link is down.

#![allow(clippy::unwrap_used)]

mod agent_support;
mod frames_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use flotta_e2e::link::{
    DatagramProfile, Direction, Link, LinkConfig, LinkProfile, UdpLink, UdpLinkConfig, UdpProfile,
};
use flotta_e2e::procs::{AgentProc, ServerProc, bin_dir};
use flotta_e2e::wait::wait_for;
use flotta_proto::payload::Payload;

use agent_support::stored_records;
use frames_support::{
    apply_heartbeat_period, assert_every_record_once, emit, events_stored, provision,
    tls_handshakes,
};

/// Generous: the machine may be busy; only a failure waits this long.
const LIMIT: Duration = Duration::from_secs(120);

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server with its UDP listener on, heartbeats every second by default.
fn server(dir: &Path) -> (ServerProc, std::net::SocketAddr) {
    let udp: std::net::SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
    let s = ServerProc::start(
        &bin_dir().unwrap(),
        dir,
        &format!(
            "udp_listen_addr = \"{udp}\"\ndefault_heartbeat_period_seconds = 1\n\
             controller_interval_seconds = 1\n"
        ),
    )
    .unwrap();
    (s, udp)
}

/// Agent settings: windows every second; `answer_timeout_ms` short where
/// losses must be retransmitted quickly, long where a retransmission would
/// be the test's failure (a busy machine's slow fsync is not a lost datagram).
fn udp_toml(link: &UdpLink, links: &str, answer_timeout_ms: u64) -> String {
    format!(
        "heartbeat_period_seconds = 1\nlinks = {links}\n[link]\nupload_interval_seconds = 1\n\
         backoff_initial_seconds = 1\nbackoff_max_seconds = 2\n\
         [udp]\nserver_addr = \"{}\"\nanswer_timeout_ms = {answer_timeout_ms}\nattempts = 4\n",
        link.addr()
    )
}

/// Stop `agent`, set `upload_interval_seconds` in its configuration file to
/// `seconds`, and start it again.
fn restart_with_upload_interval(agent: &mut AgentProc, seconds: u64) {
    agent.stop().unwrap();
    let toml = std::fs::read_to_string(&agent.config).unwrap();
    let mut replaced = 0;
    let toml: String = toml
        .lines()
        .map(|line| {
            if line.starts_with("upload_interval_seconds = ") {
                replaced += 1;
                format!("upload_interval_seconds = {seconds}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    assert_eq!(replaced, 1, "no single upload interval in:\n{toml}");
    std::fs::write(&agent.config, toml).unwrap();
    agent.restart().unwrap();
}

/// Window summaries (folded heartbeats) the server stored for `id`.
fn summaries_stored(server: &ServerProc, id: &str) -> usize {
    stored_records(server, id)
        .iter()
        .filter(|r| matches!(Payload::decode(&r.record.payload), Ok(Payload::Summary(_))))
        .count()
}

/// No frame counter was ever sent with two different payloads, either way
/// (a retransmission repeats the same bytes; anything else reuses a nonce).
fn assert_no_counter_reused(link: &UdpLink) {
    for direction in [Direction::Up, Direction::Down] {
        let mut seen: BTreeMap<[u8; 8], u64> = BTreeMap::new();
        let mut frames = 0;
        for r in link
            .trace()
            .into_iter()
            .filter(|r| r.direction == direction)
        {
            frames += 1;
            // Header byte (type, key-id flag, epoch parity), counter, key id if carried.
            let key = r.head;
            if let Some(&digest) = seen.get(&key) {
                assert_eq!(
                    digest,
                    r.digest,
                    "{direction:?}: counter {:02x?} sent with two payloads",
                    &key[..4]
                );
            }
            seen.insert(key, r.digest);
        }
        assert!(frames > 0, "{direction:?}: no datagram traced");
    }
}

#[test]
fn a_udp_only_device_delivers_every_record_once_through_a_lossy_link() {
    let dir = tempfile::tempdir().unwrap();
    let (server, udp) = server(dir.path());
    let lossy = DatagramProfile::clean()
        .with_latency(Duration::from_millis(5), Duration::from_millis(5))
        .with_loss(0.2)
        .with_duplicates(0.1, Duration::from_millis(20))
        .with_reordering(0.1, Duration::from_millis(40));
    let link = UdpLinkConfig::new(udp, UdpProfile::symmetric(lossy))
        .start()
        .unwrap();
    let id = "udp-lossy";
    // No TLS path at all: the server URL points nowhere.
    let mut agent = AgentProc::configure(
        &bin_dir().unwrap(),
        dir.path(),
        id,
        "https://127.0.0.1:9",
        &server.factory_dir,
        &udp_toml(&link, r#"["udp"]"#, 300),
    )
    .unwrap();
    provision(&server, &agent, id, &[]);
    agent.restart().unwrap();

    // Events while the agent runs, with kill -9 in the middle of windows,
    // until the link has lost, duplicated and reordered datagrams both ways
    // (a state, not a time: the test exercises what it claims to).
    let exercised = |s: &flotta_e2e::link::UdpLinkStats| {
        s.up.dropped() >= 3
            && s.down.dropped() >= 3
            && s.up.duplicated >= 1
            && s.down.duplicated >= 1
            && s.up.reordered + s.down.reordered >= 1
    };
    let started = Instant::now();
    let mut total = 0;
    while total < 24 || !exercised(&link.stats()) {
        assert!(
            started.elapsed() < LIMIT,
            "the link never exercised: {:?}",
            link.stats()
        );
        emit(&agent, "UdpTest", total);
        total += 1;
        sleep(Duration::from_millis(200));
        if total % 10 == 0 {
            agent.kill9();
            agent.restart().unwrap();
        }
    }
    wait_for("every event stored", LIMIT, || {
        events_stored(&server, id, "UdpTest") == total
    });

    // Folding, still over the lossy link, made certain rather than likely:
    // windows every 3 s, heartbeats every second. After a window that
    // succeeded the next opens at least 3 s after it ended, and the agent's
    // loop queues every heartbeat due (on its fixed one-second schedule,
    // late ones caught up) before it opens a window due at the same time,
    // so that next window finds ≥ 2 heartbeats no earlier window read and
    // folds them into a summary (kept until acknowledged, re-sent by later
    // windows if its frame was lost; a failed window retries sooner, after
    // its backoff). Wait, with a deadline, until the server has stored two.
    restart_with_upload_interval(&mut agent, 3);
    wait_for("two window summaries stored", LIMIT, || {
        summaries_stored(&server, id) >= 2
    });
    restart_with_upload_interval(&mut agent, 1);

    // A configuration change reaches the device by downlink.
    apply_heartbeat_period(&server, &agent, id, 2, LIMIT);

    // Drain over a clean link, then stop and check.
    link.set_profile(UdpProfile::clean()).unwrap();
    let windows = agent.windows_ended();
    wait_for("two clean windows", LIMIT, || {
        agent.windows_ended() >= windows + 2
    });
    agent.stop().unwrap();
    // A last window for what the stop queued (the final heartbeat, if any).
    let status = agent.run_once_within(LIMIT).unwrap();
    assert!(status.success(), "{}", agent.log());
    let (plain, summaries) = assert_every_record_once(&server, &agent, id);
    assert!(
        plain >= total as u64 && summaries >= 2,
        "{plain} records, {summaries} summaries"
    );
    assert_no_counter_reused(&link);
    let stats = link.stats();
    assert!(exercised(&stats), "{stats:?}");
    {
        let dups = server
            .metric("flotta_frames_total{result=\"duplicate\"}")
            .unwrap();
        assert!(
            dups >= 1.0,
            "duplicated uplinks, none counted by the server"
        );
    }
    assert_eq!(tls_handshakes(&server), 0.0, "a TLS connection was made");
}

#[test]
fn run_once_over_udp_is_one_datagram_each_way() {
    let dir = tempfile::tempdir().unwrap();
    let (server, udp) = server(dir.path());
    let link = UdpLinkConfig::new(udp, UdpProfile::clean())
        .start()
        .unwrap();
    let id = "udp-once";
    let agent = AgentProc::configure(
        &bin_dir().unwrap(),
        dir.path(),
        id,
        "https://127.0.0.1:9",
        &server.factory_dir,
        &udp_toml(&link, r#"["udp"]"#, 10_000),
    )
    .unwrap();
    provision(&server, &agent, id, &[]);
    let runs = 4;
    for i in 0..runs {
        emit(&agent, "UdpTest", i);
        let before = link.stats();
        let status = agent.run_once_within(LIMIT).unwrap();
        assert!(status.success(), "{}", agent.log());
        let d = link.stats().since(&before);
        assert_eq!((d.up.offered, d.down.offered), (1, 1), "run {i}: {d:?}");
        assert!(
            d.wire_bytes() < 600,
            "run {i}: {} bytes on the wire",
            d.wire_bytes()
        );
    }
    assert_eq!(events_stored(&server, id, "UdpTest"), runs);
    assert_every_record_once(&server, &agent, id);
    assert_eq!(tls_handshakes(&server), 0.0);
}

#[test]
fn keys_arrive_over_tls_and_udp_takes_over_when_tls_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (server, udp) = server(dir.path());
    let tcp: Link = LinkConfig::new(server.api_addr, LinkProfile::ethernet())
        .start()
        .unwrap();
    let link = UdpLinkConfig::new(udp, UdpProfile::clean())
        .start()
        .unwrap();
    let id = "udp-fallback";
    let mut agent = AgentProc::start(
        &bin_dir().unwrap(),
        dir.path(),
        id,
        &format!("https://localhost:{}", tcp.addr().port()),
        &server.factory_dir,
        &udp_toml(&link, r#"["tls", "udp"]"#, 2_000),
    )
    .unwrap();
    let keys = agent.data_dir.join("frame/context.json");
    wait_for("frame keys delivered over TLS", LIMIT, || keys.exists());
    assert_eq!(link.stats().up.offered, 0, "UDP used while TLS works");
    tcp.set_up(false);
    for i in 0..3 {
        emit(&agent, "UdpTest", i);
    }
    wait_for("events delivered over UDP", LIMIT, || {
        events_stored(&server, id, "UdpTest") == 3
    });
    assert!(link.stats().up.delivered > 0);
    let described = server.command(&["describe", "ed", id]).unwrap();
    let text = String::from_utf8_lossy(&described.stdout);
    assert!(
        text.to_lowercase().contains("udp"),
        "describe does not show the link: {text}"
    );
    tcp.set_up(true);
    agent.stop().unwrap();
    let status = agent.run_once_within(LIMIT).unwrap();
    assert!(status.success(), "{}", agent.log());
    assert_every_record_once(&server, &agent, id);
    assert_no_counter_reused(&link);
}
