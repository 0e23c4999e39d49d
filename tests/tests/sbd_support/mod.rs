//! What the Iridium SBD end-to-end tests share: a real `flotta-server`
//! with its Rock7 webhook and MT worker, the simulated Rock7 and a
//! simulated RockBLOCK 9603, and agents provisioned with its IMEI.

#![allow(dead_code)] // each test binary uses its part

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flotta_e2e::modem::sbd::{Rock7Config, Rock7Network, SbdModem, SbdModemConfig};
use flotta_e2e::procs::{AgentProc, ServerProc, bin_dir, free_port};

use super::frames_support::provision;

pub(crate) const IMEI: &str = "300434060000001";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../server/tests/fixtures");

/// A server with its Rock7 webhook, the simulated Rock7 and a modem.
pub(crate) struct Sbd {
    pub(crate) server: ServerProc,
    pub(crate) rock7: Arc<Rock7Network>,
    pub(crate) modem: SbdModem,
}

pub(crate) fn sbd(dir: &Path, redeliver_every: u32) -> Sbd {
    let webhook = ([127, 0, 0, 1], free_port().unwrap()).into();
    let rock7 = Rock7Network::start(Rock7Config {
        webhook,
        key_pem: std::fs::read(format!("{FIXTURES}/rock7-test-only.key.pem")).unwrap(),
        username: "flotta".into(),
        password: "s3cret".into(),
        redeliver_every,
        retry_delay: Duration::from_millis(100),
    })
    .unwrap();
    let password = dir.join("rock7-password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let server = ServerProc::start(
        &bin_dir().unwrap(),
        dir,
        &format!(
            "webhook_listen_addr = \"{webhook}\"\n\
             rock7_public_key_file = \"{FIXTURES}/rock7-test-only.pub.pem\"\n\
             rock7_username = \"flotta\"\nrock7_password_file = \"{}\"\n\
             rock7_mt_url = \"{}\"\nrock7_mt_retry_initial_ms = 50\nrock7_mt_retry_max_ms = 200\n\
             default_heartbeat_period_seconds = 1\ncontroller_interval_seconds = 1\n",
            password.display(),
            rock7.mt_url()
        ),
    )
    .unwrap();
    let modem = SbdModem::start(
        rock7.clone(),
        SbdModemConfig {
            imei: IMEI.into(),
            ..SbdModemConfig::default()
        },
    )
    .unwrap();
    Sbd {
        server,
        rock7,
        modem,
    }
}

/// Agent settings: windows every second over the modem only; back-offs
/// short (a failed session is tried again after 100 ms instead of Rock7's
/// minute), the wait for the ring alert long (a busy machine is slow, and a
/// missed answer would be the test's failure).
/// `extra` is appended (tables of its own: `[governor]` …).
fn sbd_toml(modem: &SbdModem, extra: &str) -> String {
    format!(
        "heartbeat_period_seconds = 1\nlinks = [\"sbd\"]\n[link]\nupload_interval_seconds = 1\n\
         backoff_initial_seconds = 1\nbackoff_max_seconds = 2\n\
         [sbd]\ndevice = \"{}\"\nanswer_timeout_ms = 30000\nretry_backoff_ms = 100\nattempts = 4\n{extra}",
        modem.path().display()
    )
}

/// A provisioned agent (not started) on the modem, bound to [`IMEI`].
pub(crate) fn agent(s: &Sbd, dir: &Path, id: &str, extra_toml: &str) -> AgentProc {
    // No TLS path at all: the server URL points nowhere.
    let agent = AgentProc::configure(
        &bin_dir().unwrap(),
        dir,
        id,
        "https://127.0.0.1:9",
        &s.server.factory_dir,
        &sbd_toml(&s.modem, extra_toml),
    )
    .unwrap();
    provision(&s.server, &agent, id, &["--imei", IMEI]);
    agent
}
