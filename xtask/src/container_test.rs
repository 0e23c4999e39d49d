//! `cargo xtask container --test` (and the CI step `container`): the image, run as
//! deploy/kubernetes runs it.
//!
//! 1. `--version` with no network: the binary starts in an empty root and says the
//!    workspace's version; the image's user is 65532:65532.
//! 2. The operator's CA: `init` in the container writes a CA into a volume (as the README's
//!    `kubectl create secret` recipe starts).
//! 3. `serve` as the Deployment has it: read-only root, every capability dropped, no new
//!    privileges, the CA mounted read-only (`ca_cert_file`/`ca_key_file`), `data_dir` a
//!    writable volume, host networking on loopback ports. The server must issue its own
//!    certificate into `data_dir` signed by that CA (never writing the CA's files), log
//!    "listening", answer the probes' command (`podman exec … health --ready`, the
//!    binary itself: there is no shell), and answer HTTPS on the Edge API to a client
//!    that trusts only the CA and presents a registration certificate the image made.
//! 4. SIGTERM (`podman stop`): a clean exit (status 0) within the Deployment's grace.
//!
//! Every failure is an error: nothing is skipped.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

use crate::container::{VERSION, podman};
use crate::process;

/// The image's user and group (Containerfile `USER`, the Deployment's `runAsUser`).
const UID: u32 = 65532;

/// How long the server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// `terminationGracePeriodSeconds` of deploy/kubernetes/deployment.yaml.
const GRACE_SECONDS: u64 = 15;

/// A container removed when dropped (whatever happened).
struct Running<'a> {
    root: &'a Path,
    name: String,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = podman(self.root)
            .args(["rm", "--force", "--time", "0", &self.name])
            .output();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A directory the image's user owns (root here: chown; else podman's user namespace).
fn owned_by_image_user(root: &Path, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if std::os::unix::fs::chown(dir, Some(UID), Some(UID)).is_ok() {
        return Ok(());
    }
    let mut cmd = podman(root);
    cmd.args(["unshare", "chown", &format!("{UID}:{UID}")])
        .arg(dir);
    process::stdout_of(&mut cmd).map(drop)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Run every check against `image` (module docs).
pub(crate) fn run(root: &Path, image: &str) -> Result<()> {
    let version = process::stdout_of(podman(root).args([
        "run",
        "--rm",
        "--network",
        "none",
        image,
        "--version",
    ]))?;
    ensure!(
        version.trim() == format!("flotta-server {VERSION}"),
        "--version in the image said {version:?}"
    );
    let user = process::stdout_of(podman(root).args([
        "image",
        "inspect",
        "--format",
        "{{.Config.User}}",
        image,
    ]))?;
    ensure!(user.trim() == format!("{UID}:{UID}"), "image user {user:?}");
    println!("  --version: {}, user {}", version.trim(), user.trim());

    let dir = tempfile::tempdir()?;
    let (pki, data) = (dir.path().join("pki"), dir.path().join("data"));
    owned_by_image_user(root, &pki)?;
    owned_by_image_user(root, &data)?;
    process::stdout_of(
        podman(root)
            .args(["run", "--rm", "--network", "none", "-v"])
            .arg(format!("{}:/pki", pki.display()))
            .args([image, "--data-dir", "/pki", "init"]),
    )?;
    let ca = read(&pki.join("ca.pem"))?;
    let ca_key = read(&pki.join("ca.key"))?;

    let (api, admin) = (free_port()?, free_port()?);
    std::fs::write(
        dir.path().join("server.toml"),
        format!(
            "listen_addr = \"127.0.0.1:{api}\"\nadmin_listen_addr = \"127.0.0.1:{admin}\"\n\
             server_names = [\"localhost\"]\ndata_dir = \"/var/lib/flotta-server\"\n\
             ca_cert_file = \"/etc/flotta-ca/ca.pem\"\nca_key_file = \"/etc/flotta-ca/ca.key\"\n"
        ),
    )?;
    let server = Running {
        root,
        name: format!("flotta-container-test-{}", std::process::id()),
    };
    let _ = podman(root).args(["rm", "--force", &server.name]).output();
    process::stdout_of(
        podman(root)
            .args([
                "run",
                "--detach",
                "--name",
                &server.name,
                "--network",
                "host",
            ])
            .args(["--read-only", "--cap-drop", "all"])
            .args(["--security-opt", "no-new-privileges", "-v"])
            .arg(format!("{}:/etc/flotta:ro", dir.path().display()))
            .arg("-v")
            .arg(format!("{}:/etc/flotta-ca:ro", pki.display()))
            .arg("-v")
            .arg(format!("{}:/var/lib/flotta-server", data.display()))
            .args([image, "serve", "--config", "/etc/flotta/server.toml"]),
    )?;
    let started = Instant::now();
    let logs = loop {
        let out = process::captured(podman(root).args(["logs", &server.name]))?;
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        if text.contains("flotta-server listening") {
            break text;
        }
        if started.elapsed() > START_TIMEOUT {
            bail!("the server in the container did not listen within {START_TIMEOUT:?}:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    println!("  serving after {:.1?}", started.elapsed());
    ensure!(
        read(&pki.join("ca.pem"))? == ca && read(&pki.join("ca.key"))? == ca_key,
        "the CA's files changed"
    );
    ensure!(
        !data.join("ca.pem").exists() && data.join("server.pem").exists(),
        "data_dir should hold the server certificate and no CA:\n{logs}"
    );

    let health = process::stdout_of(podman(root).args([
        "exec",
        &server.name,
        "/flotta-server",
        "--config",
        "/etc/flotta/server.toml",
        "health",
        "--ready",
    ]))?;
    ensure!(health == "ready\n", "health --ready said {health:?}");

    // A registration certificate from the image, then HTTPS that trusts only the CA.
    let factory = dir.path().join("factory");
    owned_by_image_user(root, &factory)?;
    process::stdout_of(
        podman(root)
            .args(["run", "--rm", "--network", "none", "-v"])
            .arg(format!("{}:/etc/flotta:ro", dir.path().display()))
            .arg("-v")
            .arg(format!("{}:/etc/flotta-ca:ro", pki.display()))
            .arg("-v")
            .arg(format!("{}:/var/lib/flotta-server", data.display()))
            .arg("-v")
            .arg(format!("{}:/factory", factory.display()))
            .args([image, "--config", "/etc/flotta/server.toml"])
            .args(["issue-registration-cert", "--out-dir", "/factory"]),
    )
    .context("issue-registration-cert in the image")?;
    let status = https_status(&factory, api)?;
    // The registration certificate may only enrol and register: refused by the
    // authorisation, after the TLS handshake and the routing.
    ensure!(
        status == "403",
        "GET …/data/probe/in with the registration certificate: HTTP {status}"
    );
    println!("  HTTPS on the Edge API with the configured CA: {status} as expected");

    let stopping = Instant::now();
    process::stdout_of(podman(root).args([
        "stop",
        "--time",
        &GRACE_SECONDS.to_string(),
        &server.name,
    ]))?;
    let code = process::stdout_of(podman(root).args([
        "inspect",
        "--format",
        "{{.State.ExitCode}}",
        &server.name,
    ]))?;
    ensure!(
        code.trim() == "0" && stopping.elapsed() < Duration::from_secs(GRACE_SECONDS),
        "SIGTERM: exit code {} after {:.1?}",
        code.trim(),
        stopping.elapsed()
    );
    println!("  SIGTERM: exit 0 after {:.1?}", stopping.elapsed());
    Ok(())
}

/// `curl` the Edge API with the registration bundle in `factory`; the HTTP status.
fn https_status(factory: &Path, api: u16) -> Result<String> {
    let url = format!("https://localhost:{api}/api/flotta-management/v1/data/probe/in");
    let status = process::stdout_of(
        Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "10"])
            .args(["--output", "/dev/null", "--write-out", "%{http_code}"])
            .arg("--cacert")
            .arg(factory.join("ca.pem"))
            .arg("--cert")
            .arg(factory.join("register.pem"))
            .arg("--key")
            .arg(factory.join("register.key"))
            .arg(&url),
    )?;
    Ok(status.trim().to_owned())
}
