//! End to end: a real `flotta-server` and three real `flotta-agent`s talk
//! through a flaky emulated link (latency, random connection drops, a
//! blackout); agents and the server are killed with SIGKILL at chosen
//! moments; device certificates expire every few seconds. Every record an
//! agent produced must reach the server exactly once, with nothing missing,
//! and the server knows each agent's upload interval.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod agent_support;

use std::thread::sleep;
use std::time::Duration;

use agent_support::{agent_queue, assert_delivered_exactly_once, unix_ms};
use flotta_agent::identity::DeviceIdentity;
use flotta_e2e::link::{LinkConfig, LinkProfile};
use flotta_e2e::procs::{AgentProc, ServerProc, bin_dir};
use flotta_proto::payload::Payload;

const AGENT_TOML: &str = "heartbeat_period_seconds = 1
[link]
upload_interval_seconds = 1
backoff_initial_seconds = 1
backoff_max_seconds = 2
connect_timeout_seconds = 5
request_timeout_seconds = 5
";

fn unix_now() -> i64 {
    (unix_ms() / 1000) as i64
}

#[test]
fn every_record_arrives_exactly_once_through_drops_blackouts_crashes_and_cert_expiry() {
    let bins = bin_dir().expect("flotta binaries");
    let dir = tempfile::tempdir().unwrap();
    let started = unix_now();
    // Device certificates live 12 s: agents must renew (or re-register) during the run.
    let mut server =
        ServerProc::start(&bins, dir.path(), "device_cert_validity_seconds = 12\n").unwrap();
    let profile = LinkProfile::ethernet()
        .with_latency(Duration::from_millis(15), Duration::from_millis(10))
        .with_drops(0.2, 0.15);
    let link = LinkConfig::new(server.api_addr, profile).start().unwrap();
    eprintln!("link seed {} (set FLOTTA_LINK_SEED to replay)", link.seed());
    let url = format!("https://localhost:{}", link.addr().port());
    let ids = ["e2e-agent-0", "e2e-agent-1", "e2e-agent-2"];
    let mut agents: Vec<AgentProc> = ids
        .iter()
        .map(|id| {
            AgentProc::start(&bins, dir.path(), id, &url, &server.factory_dir, AGENT_TOML).unwrap()
        })
        .collect();

    sleep(Duration::from_secs(3));
    agents[0].kill9();
    sleep(Duration::from_millis(700));
    agents[0].restart().unwrap();
    sleep(Duration::from_secs(2));
    link.set_up(false); // blackout: refuse and cut everything for 3 s
    sleep(Duration::from_secs(3));
    link.set_up(true);
    sleep(Duration::from_secs(1));
    server.kill9();
    sleep(Duration::from_secs(1));
    server.restart().unwrap();
    sleep(Duration::from_secs(3));
    agents[1].kill9();
    agents[1].restart().unwrap();
    sleep(Duration::from_secs(4));
    for a in &mut agents {
        a.stop().unwrap();
    }

    // Flush what is still queued (the link still drops connections: retry).
    for a in &agents {
        let mut tries = 0;
        while agent_queue(&a.data_dir).1 > 0 {
            let out = a.run_once().unwrap();
            tries += 1;
            assert!(
                tries < 30,
                "agent could not flush: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // The server judges presence by the upload interval each agent reported
    // (`[link] upload_interval_seconds = 1`), which `describe` shows.
    for id in ids {
        let out = server.command(&["describe", "edgedevice", id]).unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Uploads every: 1 s") && text.contains("uploadIntervalSeconds: 1"),
            "{id}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    server.kill9();

    for a in &agents {
        let id = a.data_dir.file_name().unwrap().to_str().unwrap();
        let records = assert_delivered_exactly_once(&server, a, id);
        let mut heartbeats = 0;
        let mut starts = 0;
        for r in &records {
            match Payload::decode(&r.record.payload).unwrap() {
                Payload::Heartbeat(_) => heartbeats += 1,
                Payload::Event(e) if e.reason == "AgentStarted" => starts += 1,
                _ => {}
            }
        }
        // Every start queues a heartbeat at once (the server's configuration
        // then sets the period); the configuration was cached on the device.
        assert!(
            heartbeats >= starts && heartbeats >= 1,
            "{id}: {heartbeats} heartbeats, {starts} starts"
        );
        let desired = std::fs::read_to_string(a.data_dir.join("desired.json")).unwrap();
        assert!(
            desired.contains("\"version\""),
            "{id}: configuration not cached: {desired}"
        );
        // Agents 0 and 1 were killed and restarted; agent 2 ran once (plus flushes).
        let min_starts = if id == ids[2] { 1 } else { 2 };
        assert!(starts >= min_starts, "{id}: {starts} AgentStarted events");
        // The certificate in use was issued (it lives 12 s) at least 4 s into
        // the run: the first one, from second 0 or 1, was renewed.
        let identity = DeviceIdentity::load(&a.data_dir).unwrap().unwrap();
        assert!(
            identity.not_after >= started + 16,
            "{id}: certificate never renewed\n{}",
            a.log()
        );
    }
    let stats = link.stats();
    eprintln!("link: {stats:?}");
    assert!(
        stats.refused + stats.cut > 0,
        "the link should have misbehaved: {stats:?}"
    );
}
