//! `cargo xtask armv6-e2e` (also the `armv6-e2e` step of `cargo xtask test`, and
//! `cargo xtask dist --e2e`): the ARMv6 agent that `dist` published
//! (`dist/arm-unknown-linux-musleabihf/flotta-agent`) runs under `qemu-arm -cpu arm1176`
//! (Raspberry Pi Zero) against a real `flotta-server` on loopback.
//!
//! `run --once` must enrol with the registration certificate, register with a key and CSR
//! made on the emulated device, and upload its first batch (retried a few times: enrolment
//! may answer "pending" at first). Then the server's own view must agree: its EdgeDevice
//! exists, was seen with the device certificate and says architecture `arm`, and `/metrics`
//! counts at least the records the agent says were acknowledged. Everything is left under
//! `target/armv6-e2e` for inspection; every child is stopped on every path. Then the
//! narrow-link end-to-end tests run with this agent (`armv6_links.rs`).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::dist;
use crate::e2e_parse::{self, Window};
use crate::harness::{AgentToml, Running, Server, read_tail, scrub_flotta_env};
use crate::process;
use crate::smoke;
use crate::steps::{self, format_elapsed};
use crate::targets::{self, Runner};

/// The Raspberry Pi Zero target.
pub(crate) const TRIPLE: &str = "arm-unknown-linux-musleabihf";
/// The emulated device's id.
const DEVICE_ID: &str = "pi-zero-armv6-e2e";
/// The EdgeDevice label with the architecture the agent reported at enrolment...
const ARCH_LABEL: &str = "device.cpu-architecture";
/// ...which for this binary is Rust's `std::env::consts::ARCH` on ARMv6.
const DEVICE_ARCH: &str = "arm";
/// `run --once` attempts before giving up (enrolment may be pending at first).
const ATTEMPTS: u32 = 5;
/// Pause between attempts.
const PAUSE: Duration = Duration::from_secs(2);
/// One attempt under emulation (P-256 key, CSR, TLS handshakes); a hang fails at once.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(180);
/// `[link]` of the agent: short backoff, timeouts generous for emulation.
const LINK: &[(&str, u64)] = &[
    ("upload_interval_seconds", 60),
    ("backoff_initial_seconds", 1),
    ("backoff_max_seconds", 2),
    ("connect_timeout_seconds", 20),
    ("request_timeout_seconds", 60),
];

/// Run the ARMv6 end-to-end check from the repository at `root`.
pub(crate) fn run(root: &Path) -> Result<()> {
    let started = Instant::now();
    let target = targets::find(TRIPLE).context("the target table has no ARMv6 entry")?;
    let Runner::Qemu {
        program,
        default_cpu: cpu,
    } = target.runner
    else {
        bail!("{TRIPLE} is not run under qemu in the target table");
    };
    let agent = dist::published(root, TRIPLE);
    if !agent.is_file() {
        bail!(
            "{} does not exist: build it with `cargo xtask dist --target {TRIPLE}` \
             (or run both with `cargo xtask dist --target {TRIPLE} --e2e`)",
            agent.display()
        );
    }
    if !process::can_spawn(program, &["--version"]) {
        bail!("`{program}` cannot be started; `bash scripts/setup.sh` installs qemu-user");
    }
    let version = process::stdout_of(&mut smoke::command(
        target.runner,
        cpu,
        &agent,
        &["--version"],
    ))?;
    let age = std::fs::metadata(&agent)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .map_or_else(|| "?".to_owned(), format_elapsed);
    println!(
        "  agent: {} (built {age} ago) under `{program} -cpu {cpu}`: {}",
        agent.display(),
        version.trim()
    );

    let server_bin = build_server(root)?;
    let dir = dist::target_dir(root).join("armv6-e2e");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let server = Server::start(&server_bin, &dir)?;
    println!(
        "  server: {} serving {} (admin 127.0.0.1:{}), log {}",
        server_bin.display(),
        server.url(),
        server.admin_port,
        server.log.display()
    );
    let config = dir.join("agent.toml");
    let data_dir = dir.join("agent");
    std::fs::write(
        &config,
        AgentToml {
            server_url: server.url(),
            device_id: DEVICE_ID,
            data_dir: &data_dir,
            factory_dir: &server.factory_dir,
            heartbeat_period_seconds: 60,
            link: LINK,
        }
        .render(),
    )
    .with_context(|| format!("writing {}", config.display()))?;

    let config = config.to_str().context("scratch path is not UTF-8")?;
    let mut cmd = smoke::command(
        target.runner,
        cpu,
        &agent,
        &["run", "--once", "--config", config],
    );
    scrub_flotta_env(&mut cmd, "FLOTTA_AGENT_");
    let (window, took) = run_once(&mut cmd, &dir, &server)?;
    let identity = data_dir.join("identity").join("device.pem");
    if !identity.is_file() {
        bail!(
            "the agent exited 0 but made no device identity at {}",
            identity.display()
        );
    }
    verify_server(&server, window)?;
    drop(server);
    crate::armv6_links::run(root, &agent, &format!("{program} -cpu {cpu}"))?;
    println!(
        "  armv6-e2e ok in {} (agent run {}), files in {}",
        format_elapsed(started.elapsed()),
        format_elapsed(took),
        dir.display()
    );
    Ok(())
}

/// The host's `flotta-server` (debug), from the same build the test step made
/// (`cargo test --workspace --no-run` is what nextest runs first: after the test step this is
/// a no-op, and any other package set could unify features differently and rebuild).
fn build_server(root: &Path) -> Result<PathBuf> {
    steps::run_cargo(steps::cargo_command(
        root,
        &["test", "--workspace", "--no-run"],
    ))?;
    let server = steps::workspace_bin_dir(root).join("flotta-server");
    if !server.is_file() {
        bail!(
            "`cargo test --workspace --no-run` left no {}",
            server.display()
        );
    }
    Ok(server)
}

/// Run `cmd` (the agent's `run --once`) until it exits 0, at most [`ATTEMPTS`] times; each
/// attempt's output goes to `<dir>/agent-run-<n>.log`. Returns the window it reported and how
/// long the successful attempt took.
fn run_once(cmd: &mut Command, dir: &Path, server: &Server) -> Result<(Window, Duration)> {
    let line = process::describe(cmd);
    let mut failures = Vec::new();
    for attempt in 1..=ATTEMPTS {
        let log = dir.join(format!("agent-run-{attempt}.log"));
        let out = std::fs::File::create(&log)?;
        cmd.stdout(out.try_clone()?).stderr(out);
        let started = Instant::now();
        let mut child = Running::spawn(cmd, "the ARMv6 agent")?;
        let status = child.wait_for(ATTEMPT_TIMEOUT)?;
        drop(child);
        let took = started.elapsed();
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        match status {
            None => bail!(
                "`{line}` did not finish within {ATTEMPT_TIMEOUT:?} (attempt {attempt}; killed)\n\
                 agent output:\n{}\nserver log (last lines):\n{}",
                output.trim(),
                read_tail(&server.log, 30)
            ),
            Some(status) if status.success() => {
                let window = e2e_parse::last_window(&output).with_context(|| {
                    format!(
                        "`{line}` exited 0 but printed no `window: ...` line:\n{}",
                        output.trim()
                    )
                })?;
                println!(
                    "  agent: `{line}` exited 0 on attempt {attempt} in {}: {} requests, {} records acknowledged",
                    format_elapsed(took),
                    window.requests,
                    window.records_acked
                );
                if window.records_acked == 0 {
                    bail!(
                        "the agent's window acknowledged no records:\n{}",
                        output.trim()
                    );
                }
                return Ok((window, took));
            }
            Some(status) => {
                let again = if attempt < ATTEMPTS { "; retrying" } else { "" };
                println!("  agent: attempt {attempt}/{ATTEMPTS} failed ({status}){again}");
                failures.push(format!(
                    "attempt {attempt} ({status}, {}):\n{}",
                    format_elapsed(took),
                    output.trim()
                ));
                if attempt < ATTEMPTS {
                    std::thread::sleep(PAUSE);
                }
            }
        }
    }
    bail!(
        "the ARMv6 agent under qemu did not complete `run --once` in {ATTEMPTS} attempts: `{line}`\n\
         {}\nserver log (last lines):\n{}",
        failures.join("\n"),
        read_tail(&server.log, 30)
    )
}

/// The server's side: the EdgeDevice exists and was seen, and it received the records.
fn verify_server(server: &Server, window: Window) -> Result<()> {
    let table = server.admin(&["get", "edgedevice", DEVICE_ID])?;
    let row = e2e_parse::table_row(&table, DEVICE_ID).with_context(|| {
        format!("`flotta-server get edgedevice {DEVICE_ID}` has no row for it:\n{table}")
    })?;
    let cell = |name: &str| row.get(name).map_or("", String::as_str);
    let seen = cell("LAST SEEN");
    if seen.is_empty() || seen == "<never>" {
        bail!("the server never saw {DEVICE_ID} use its device certificate:\n{table}");
    }
    let yaml = server.admin(&["get", "edgedevice", DEVICE_ID, "-o", "yaml"])?;
    let arch = e2e_parse::yaml_value(&yaml, ARCH_LABEL);
    if arch != Some(DEVICE_ARCH) {
        bail!(
            "{DEVICE_ID} registered with {ARCH_LABEL} {arch:?}, expected {DEVICE_ARCH:?} \
             (the ARMv6 binary reports its own architecture):\n{yaml}"
        );
    }
    println!(
        "  server: edgedevice {DEVICE_ID}: presence {}, phase {}, last seen {seen} ago, {ARCH_LABEL}: {DEVICE_ARCH}",
        cell("PRESENCE"),
        cell("PHASE")
    );

    let metrics = http_get(server.admin_port, "/metrics")?;
    let records = e2e_parse::samples(&metrics, "flotta_records_received_total");
    let total = e2e_parse::sum(&metrics, "flotta_records_received_total");
    let batches = e2e_parse::sum(&metrics, "flotta_batches_total");
    let acked = window.records_acked as f64;
    if total < acked || batches < 1.0 {
        bail!(
            "the agent says {} records were acknowledged, but the server's /metrics counts \
             {total} records in {batches} batches:\n{metrics}",
            window.records_acked
        );
    }
    let by_class: Vec<String> = records
        .iter()
        .map(|(l, v)| format!("{{{l}}} {v}"))
        .collect();
    println!(
        "  server: /metrics flotta_records_received_total {}; flotta_batches_total {batches}",
        by_class.join(", ")
    );
    Ok(())
}

/// `GET path` on the admin listener (plain HTTP on loopback); the body of a 200 answer.
pub(crate) fn http_get(port: u16, path: &str) -> Result<String> {
    let what = || format!("GET http://127.0.0.1:{port}{path}");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).with_context(what)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").with_context(what)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).with_context(what)?;
    Ok(e2e_parse::ok_body(&response).with_context(what)?.to_owned())
}
