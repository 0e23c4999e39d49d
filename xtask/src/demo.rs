//! `cargo xtask demo`: the project's main job in one command. Starts a
//! `flotta-server` on its embedded store (fresh CA, registration certificate
//! for the "factory image"), then a `flotta-agent` that enrols, registers with
//! a key it makes itself, and delivers heartbeats and events in batches; stops
//! and restarts the agent to show the queue survives; prints what the server
//! stored.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Result;

use crate::dist;
use crate::harness::{AgentToml, Running, Server, scrub_flotta_env};
use crate::process;

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
    let dir = dist::target_dir(root).join("demo");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let bin = dist::target_dir(root).join("debug");
    let agent = bin.join("flotta-agent");
    println!("== server: creating the CA and a registration certificate for the factory image");
    let server = Server::start(&bin.join("flotta-server"), &dir)?;
    println!(
        "== server: serving the Edge API with mTLS on 127.0.0.1:{} (admin on :{})",
        server.api_port, server.admin_port
    );

    let agent_toml = dir.join("agent.toml");
    std::fs::write(
        &agent_toml,
        AgentToml {
            server_url: server.url(),
            device_id: crate::demo_report::DEVICE_ID,
            data_dir: &dir.join("agent"),
            factory_dir: &server.factory_dir,
            heartbeat_period_seconds: 2,
            link: &[("upload_interval_seconds", 4)],
        }
        .render(),
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
        let mut cmd = Command::new(&agent);
        scrub_flotta_env(&mut cmd, "FLOTTA_AGENT_");
        let running = Running::spawn(
            cmd.args(["run", "--config"])
                .arg(&agent_toml)
                .stdout(Stdio::null())
                .stderr(log),
            "flotta-agent",
        )?;
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
    crate::demo_report::print(&server)?;
    println!("== demo done; everything is under {}", dir.display());
    Ok(())
}
