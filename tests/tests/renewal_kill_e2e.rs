//! End to end: a real `flotta-agent` whose certificate lives 3 s renews in
//! nearly every upload window, and is killed with SIGKILL again and again at
//! jittered moments — often in the middle of a renewal (after the server
//! issued the new certificate, before the agent saved it, or before it used
//! it). It must never end up locked out: once left alone it uploads again
//! with the certificate it saved, and every other certificate it ever held
//! is refused once that one was used (the server keeps exactly one current
//! certificate per device, plus a renewed one until its first use).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::thread::sleep;
use std::time::{Duration, Instant};

use flotta_agent::client::{ClientError, EdgeClient};
use flotta_agent::identity::DeviceIdentity;
use flotta_agent::link::LinkProfile;
use flotta_e2e::procs::{AgentProc, ServerProc, bin_dir};
use flotta_proto::batch::{BATCH_FORMAT_VERSION, BatchRequest};
use flotta_server::device_id::DeviceId;
use flotta_server::pki::ClientIdentity;
use flotta_server::store::{SqliteStore, Store};

const DEVICE: &str = "renew-kill";

const AGENT_TOML: &str = "heartbeat_period_seconds = 1
renew_at_remaining_percent = 90
[link]
upload_interval_seconds = 1
backoff_initial_seconds = 1
backoff_max_seconds = 1
connect_timeout_seconds = 5
request_timeout_seconds = 5
";

/// Poll `f` until it returns `Some`, for at most `limit`.
fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        sleep(Duration::from_millis(50));
    }
}

fn serial(id: &DeviceIdentity) -> String {
    ClientIdentity::from_pem(&id.cert_pem).unwrap().serial
}

/// (current certificate serial, highest acknowledged seq) on the server.
fn server_view(server: &ServerProc) -> (Option<String>, Option<u64>) {
    let store = SqliteStore::open(&server.store_path()).unwrap();
    let id = DeviceId::parse(DEVICE).unwrap();
    let current = store.device(&id).unwrap().and_then(|d| d.cert_serial);
    (current, store.acked_through(&id).unwrap())
}

/// An empty batch with `id`'s certificate on a fresh connection.
fn try_batch(server: &ServerProc, id: &DeviceIdentity) -> Result<(), ClientError> {
    let ca = std::fs::read_to_string(server.factory_dir.join("ca.pem")).unwrap();
    let url = format!("https://localhost:{}", server.api_addr.port());
    let link = LinkProfile::preset("ethernet").unwrap();
    let client = EdgeClient::new(&url, DEVICE, &ca, &id.cert_pem, &id.key_pem, &link)?;
    let req = BatchRequest {
        format: BATCH_FORMAT_VERSION,
        config_version: String::new(),
        records: vec![],
        frame_epoch: None,
        upload_interval_seconds: None,
    };
    client.batch(&req, true).map(|_| ())
}

/// A server with `server_toml` and an agent that got its first identity.
fn start(dir: &std::path::Path, server_toml: &str) -> (ServerProc, AgentProc, DeviceIdentity) {
    let bins = bin_dir().expect("flotta binaries");
    let server = ServerProc::start(&bins, dir, server_toml).unwrap();
    let url = format!("https://localhost:{}", server.api_addr.port());
    let agent =
        AgentProc::start(&bins, dir, DEVICE, &url, &server.factory_dir, AGENT_TOML).unwrap();
    let first = wait_for(Duration::from_secs(30), || {
        DeviceIdentity::load(&agent.data_dir).ok().flatten()
    })
    .unwrap_or_else(|| panic!("no identity\n{}", agent.log()));
    (server, agent, first)
}

#[test]
fn an_agent_killed_while_renewing_is_never_locked_out_and_old_certificates_stop_working() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut agent, first) = start(dir.path(), "device_cert_validity_seconds = 3\n");
    let mut held = vec![first];

    // Kill at jittered moments (seeded from the clock; printed to replay):
    // each window renews first, so many kills land inside a renewal.
    let mut seed = u64::from(std::process::id()) ^ (Instant::now().elapsed().as_nanos() as u64);
    seed ^= std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    eprintln!("kill seed {seed}");
    for _ in 0..12 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // A fixed sleep only shapes the scenario (when to kill).
        sleep(Duration::from_millis(150 + (seed >> 33) % 1100));
        agent.kill9();
        if let Some(id) = DeviceIdentity::load(&agent.data_dir).unwrap()
            && held.iter().all(|h| h.cert_pem != id.cert_pem)
        {
            held.push(id);
        }
        agent.restart().unwrap();
    }
    let (_, acked_at_last_kill) = server_view(&server);

    // Left alone, the agent uploads again and its saved certificate becomes
    // the server's current one.
    let recovered = wait_for(Duration::from_secs(40), || {
        let (current, acked) = server_view(&server);
        let saved = DeviceIdentity::load(&agent.data_dir).ok().flatten()?;
        (acked > acked_at_last_kill && current == Some(serial(&saved))).then_some(saved)
    });
    agent.stop().unwrap();
    let recovered = recovered.unwrap_or_else(|| panic!("agent locked out?\n{}", agent.log()));
    let saved = DeviceIdentity::load(&agent.data_dir).unwrap().unwrap();
    for id in [&recovered, &saved] {
        if held.iter().all(|h| h.cert_pem != id.cert_pem) {
            held.push(id.clone());
        }
    }
    assert!(
        held.len() >= 4,
        "the agent should have renewed several times: {} certificates",
        held.len()
    );

    // The saved certificate works (its use supersedes any older one); every
    // other certificate the device ever held is refused.
    try_batch(&server, &saved).unwrap_or_else(|e| panic!("saved certificate refused: {e}"));
    for old in held.iter().filter(|h| h.cert_pem != saved.cert_pem) {
        match try_batch(&server, old) {
            Err(ClientError::Unauthorized(m)) => assert!(m.contains("superseded"), "{m}"),
            other => panic!("an old certificate must be refused (401): {other:?}"),
        }
    }
    eprintln!(
        "{} certificates held over 12 kills; all but the saved one refused",
        held.len()
    );
}

#[test]
fn an_agent_whose_certificate_lapsed_beyond_the_grace_enrols_again_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut agent, first) = start(
        dir.path(),
        "device_cert_validity_seconds = 2\nrenewal_grace_seconds = 1\nauto_approve = true\n",
    );
    agent.stop().unwrap();
    let old = DeviceIdentity::load(&agent.data_dir).unwrap().unwrap();
    // Wait until the saved certificate expired beyond the 1 s grace.
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    assert!(
        wait_for(Duration::from_secs(30), || (now() > old.not_after + 2)
            .then_some(()))
        .is_some()
    );
    match try_batch(&server, &old) {
        Err(ClientError::Unauthorized(_)) => {}
        other => panic!("an expired certificate may not upload: {other:?}"),
    }
    let (_, acked_before) = server_view(&server);
    agent.restart().unwrap();
    // Renewal is refused (401); the agent enrols again with the
    // registration certificate, is approved at once and uploads again.
    let renewed = wait_for(Duration::from_secs(40), || {
        let (current, acked) = server_view(&server);
        let saved = DeviceIdentity::load(&agent.data_dir).ok().flatten()?;
        (saved.cert_pem != old.cert_pem && acked > acked_before && current == Some(serial(&saved)))
            .then_some(saved)
    });
    agent.stop().unwrap();
    assert!(
        renewed.is_some(),
        "the agent did not recover\n{}",
        agent.log()
    );
    assert_ne!(first.cert_pem, renewed.unwrap().cert_pem);
}
