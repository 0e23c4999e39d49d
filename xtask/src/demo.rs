//! `cargo xtask demo`: the project's main job in one command. Starts a
//! `flotta-server` on its embedded store (fresh CA, registration certificate
//! for the "factory image"), then a `flotta-agent` that enrols, registers with
//! a key it makes itself, and delivers heartbeats and events in batches; stops
//! and restarts the agent to show the queue survives; prints what the server
//! stored.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::process;

/// Kills the child on drop, so a failed demo leaves nothing running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn bin(root: &Path, name: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("debug")
        .join(name)
}

fn wait_for_port(port: u16, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on 127.0.0.1:{port} after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Print the lines of `log` after byte `from`, prefixed; returns the new end.
fn show_new(log: &Path, from: usize, prefix: &str) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for line in text.get(from..).unwrap_or("").lines() {
        println!("  {prefix} {line}");
    }
    text.len()
}

/// Run the demo.
pub(crate) fn run(root: &Path) -> Result<()> {
    println!("== building flotta-server and flotta-agent");
    process::run(Command::new("cargo").current_dir(root).args([
        "build",
        "--bins",
        "-p",
        "flotta-server",
        "-p",
        "flotta-agent",
    ]))?;
    let dir = root.join("target").join("demo");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (api, admin) = (free_port()?, free_port()?);
    let server_toml = dir.join("server.toml");
    std::fs::write(
        &server_toml,
        format!(
            "listen_addr = \"127.0.0.1:{api}\"\nadmin_listen_addr = \"127.0.0.1:{admin}\"\ndata_dir = \"{}\"\n",
            dir.join("server").display()
        ),
    )?;
    let server = bin(root, "flotta-server");
    let agent = bin(root, "flotta-agent");
    let factory = dir.join("factory");
    println!("== server: creating the CA and a registration certificate for the factory image");
    process::run(
        Command::new(&server)
            .arg("--config")
            .arg(&server_toml)
            .arg("init"),
    )?;
    process::run(
        Command::new(&server)
            .arg("--config")
            .arg(&server_toml)
            .args(["issue-registration-cert", "--out-dir"])
            .arg(&factory),
    )?;
    let server_log = dir.join("server.log");
    let log = std::fs::File::create(&server_log)?;
    let _server = Running(
        Command::new(&server)
            .arg("--config")
            .arg(&server_toml)
            .arg("serve")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting flotta-server")?,
    );
    wait_for_port(api, Duration::from_secs(20))?;
    println!("== server: serving the Edge API with mTLS on 127.0.0.1:{api} (admin on :{admin})");

    let agent_toml = dir.join("agent.toml");
    std::fs::write(
        &agent_toml,
        format!(
            "server_url = \"https://localhost:{api}\"\ndevice_id = \"demo-device-1\"\ndata_dir = \"{}\"\n\
             ca_cert_path = \"{f}/ca.pem\"\nregistration_cert_path = \"{f}/register.pem\"\n\
             registration_key_path = \"{f}/register.key\"\nheartbeat_period_seconds = 2\n\
             [link]\nupload_interval_seconds = 4\n",
            dir.join("agent").display(),
            f = factory.display()
        ),
    )?;
    let agent_log = dir.join("agent.log");
    let mut shown = 0;
    for round in 1..=2 {
        println!(
            "== agent (run {round}): a heartbeat at start, then at the period the server configures; an upload window every 4 s"
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&agent_log)?;
        let running = Running(
            Command::new(&agent)
                .args(["run", "--config"])
                .arg(&agent_toml)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("starting flotta-agent")?,
        );
        for _ in 0..5 {
            std::thread::sleep(Duration::from_secs(2));
            shown = show_new(&agent_log, shown, "agent |");
        }
        drop(running); // SIGTERM: the agent syncs its queue and exits
        shown = show_new(&agent_log, shown, "agent |");
    }
    let identity = dir.join("agent/identity/device.pem");
    println!(
        "== the device key was made on the device: {} (mode {:o})",
        identity.display(),
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&identity)?.permissions())
            & 0o777
    );
    println!("== what the server stored");
    crate::demo_report::print(&server, &server_toml, admin)?;
    println!("== demo done; everything is under {}", dir.display());
    Ok(())
}
