//! Real processes for end-to-end tests: the `flotta-server` and `flotta-agent`
//! binaries, started with their own configuration files in a scratch
//! directory, killable with SIGKILL and restartable on the same state.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Set by `cargo xtask test` (and `stress-tests`) to the directory where
/// `cargo nextest run --workspace` already built `flotta-agent` and
/// `flotta-server` (`target/debug`), so that no test builds them again: a
/// nested `cargo build` into its own target dir is a second full debug build,
/// paid inside the first end-to-end test's time (minutes on two cores, while
/// the other suites wait on cargo's lock).
pub const BIN_DIR_ENV: &str = "FLOTTA_E2E_BIN_DIR";

/// Set to an agent binary to run it instead of [`bin_dir`]'s (`cargo xtask
/// armv6-e2e` sets the ARMv6 build from `dist/`), with [`AGENT_RUNNER_ENV`].
pub const AGENT_BIN_ENV: &str = "FLOTTA_E2E_AGENT";
/// The command that runs [`AGENT_BIN_ENV`]'s binary, split at spaces (e.g.
/// `qemu-arm -cpu arm1176`: a Raspberry Pi Zero under user-mode emulation).
pub const AGENT_RUNNER_ENV: &str = "FLOTTA_E2E_AGENT_RUNNER";

/// Directory holding fresh `flotta-agent` and `flotta-server` binaries:
/// [`BIN_DIR_ENV`] when set (it must hold both), else built (incrementally)
/// into `target/e2e-bins`: a target dir of their own, so that the feature set
/// of the test build never forces a rebuild of the other. (Cargo has released
/// its lock by the time tests run, so this nests safely.)
pub fn bin_dir() -> std::io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        let dir = PathBuf::from(dir);
        for bin in ["flotta-agent", "flotta-server"] {
            if !dir.join(bin).is_file() {
                return Err(std::io::Error::other(format!(
                    "{BIN_DIR_ENV}={} has no {bin}",
                    dir.display()
                )));
            }
        }
        return Ok(dir);
    }
    build(&["-p", "flotta-agent", "-p", "flotta-server"], "debug")
}

/// Like [`bin_dir`], for a release `flotta-agent` alone (what ships: for
/// benchmarks of its size, memory and wake-ups).
pub fn release_agent_dir() -> std::io::Result<PathBuf> {
    build(&["--release", "-p", "flotta-agent"], "release")
}

fn build(args: &[&str], profile: &str) -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> -> target
    let target = exe
        .ancestors()
        .nth(3)
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("e2e-bins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--bins"])
        .args(args)
        .arg("--target-dir")
        .arg(&target)
        .status()?;
    if !status.success() {
        return Err(std::io::Error::other(format!(
            "cargo build {args:?} failed"
        )));
    }
    Ok(target.join(profile))
}

/// A free loopback port (bound and released; good enough for tests).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A `flotta-server` process.
#[derive(Debug)]
pub struct ServerProc {
    bin: PathBuf,
    config: PathBuf,
    /// Its data directory (CA, store).
    pub data_dir: PathBuf,
    /// Where factory material (`ca.pem`, `register.pem`, `register.key`) was written.
    pub factory_dir: PathBuf,
    /// The mTLS API address.
    pub api_addr: SocketAddr,
    /// The plain admin address (`/metrics`, `/healthz`).
    pub admin_addr: SocketAddr,
    /// Its log (stdout and stderr of `serve`).
    pub log: PathBuf,
    child: Option<Child>,
}

impl ServerProc {
    /// Initialise a server in `dir` (CA, registration certificate) and start it.
    pub fn start(bin_dir: &Path, dir: &Path, extra_toml: &str) -> std::io::Result<Self> {
        let api_addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let admin_addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let data_dir = dir.join("server");
        let config = dir.join("server.toml");
        std::fs::write(
            &config,
            format!(
                "listen_addr = \"{api_addr}\"\nadmin_listen_addr = \"{admin_addr}\"\ndata_dir = \"{}\"\n{extra_toml}",
                data_dir.display()
            ),
        )?;
        let bin = bin_dir.join("flotta-server");
        let factory_dir = dir.join("factory");
        for args in [
            vec!["init"],
            vec![
                "issue-registration-cert",
                "--out-dir",
                &factory_dir.to_string_lossy(),
            ],
        ] {
            let out = Command::new(&bin)
                .arg("--config")
                .arg(&config)
                .args(&args)
                .output()?;
            if !out.status.success() {
                return Err(std::io::Error::other(format!(
                    "flotta-server {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
        }
        let log = data_dir.join("serve.log");
        let mut s = ServerProc {
            bin,
            config,
            data_dir,
            factory_dir,
            api_addr,
            admin_addr,
            log,
            child: None,
        };
        s.restart()?;
        Ok(s)
    }

    /// Start another replica of `first`: the same data directory (CA,
    /// server certificate) and factory material, its own ports, config
    /// (`extra_toml` after the addresses) and log; `first`'s store settings
    /// come from `extra_toml` (replicas share a PostgreSQL store).
    pub fn start_replica(
        first: &ServerProc,
        name: &str,
        extra_toml: &str,
    ) -> std::io::Result<Self> {
        let api_addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let admin_addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let dir = first.config.parent().unwrap_or(Path::new("."));
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen_addr = \"{api_addr}\"\nadmin_listen_addr = \"{admin_addr}\"\ndata_dir = \"{}\"\n{extra_toml}",
                first.data_dir.display()
            ),
        )?;
        let mut s = ServerProc {
            bin: first.bin.clone(),
            config,
            data_dir: first.data_dir.clone(),
            factory_dir: first.factory_dir.clone(),
            api_addr,
            admin_addr,
            log: dir.join(format!("{name}.log")),
            child: None,
        };
        s.restart()?;
        Ok(s)
    }

    /// (Re)start the serving process on the same state and port.
    pub fn restart(&mut self) -> std::io::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.bin)
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(self.api_addr).is_err() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                // Its own lines, not a backtrace's frames.
                let tail: Vec<&str> = log
                    .lines()
                    .filter(|l| !l.starts_with(' '))
                    .rev()
                    .take(10)
                    .collect();
                return Err(std::io::Error::other(format!(
                    "server did not start listening; serve.log ends:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// SIGTERM the serving process and wait for its graceful shutdown.
    pub fn stop(&mut self) -> std::io::Result<std::process::ExitStatus> {
        let Some(mut c) = self.child.take() else {
            return Err(std::io::Error::other("the server is not running"));
        };
        Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()?;
        c.wait()
    }

    /// SIGKILL the serving process.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `GET /metrics` from the admin listener (Prometheus text).
    pub fn metrics(&self) -> std::io::Result<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.admin_addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
            self.admin_addr
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }

    /// One sample of `name{labels}` from [`ServerProc::metrics`] (0 if absent).
    pub fn metric(&self, name_and_labels: &str) -> std::io::Result<f64> {
        Ok(parse_metric(&self.metrics()?, name_and_labels))
    }

    /// `flotta-server --config <its config> ARGS...` run to completion
    /// (CLI commands: `apply`, `describe`, `provision`, ...).
    pub fn command(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        Command::new(&self.bin)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
    }

    /// `flotta-server apply` of the manifest `yaml`, which must succeed.
    ///
    /// # Panics
    /// The file cannot be written or the CLI refuses the manifest.
    pub fn apply(&self, yaml: &str) {
        let file = self.data_dir.join("applied.yaml");
        std::fs::write(&file, yaml).expect("manifest written");
        let out = self
            .command(&["apply", "-f", &file.to_string_lossy()])
            .expect("flotta-server runs");
        assert!(
            out.status.success(),
            "apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Path of the SQLite store.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("flotta.db")
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A `flotta-agent` process.
#[derive(Debug)]
pub struct AgentProc {
    bin: PathBuf,
    /// The emulator (and its arguments) the binary runs under, if any.
    runner: Vec<String>,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its data directory (queue, identity, cached configuration).
    pub data_dir: PathBuf,
    child: Option<Child>,
    env: Vec<(String, String)>,
}

impl AgentProc {
    /// Write the agent's configuration into `dir` and start it against `server_url`.
    pub fn start(
        bin_dir: &Path,
        dir: &Path,
        device_id: &str,
        server_url: &str,
        factory_dir: &Path,
        extra_toml: &str,
    ) -> std::io::Result<Self> {
        let mut a = Self::configure(bin_dir, dir, device_id, server_url, factory_dir, extra_toml)?;
        a.restart()?;
        Ok(a)
    }

    /// Write the agent's configuration and make its data directory, without
    /// starting it (to put provisioned files in place first).
    pub fn configure(
        bin_dir: &Path,
        dir: &Path,
        device_id: &str,
        server_url: &str,
        factory_dir: &Path,
        extra_toml: &str,
    ) -> std::io::Result<Self> {
        let data_dir = dir.join(device_id);
        let config = dir.join(format!("{device_id}.toml"));
        std::fs::write(
            &config,
            format!(
                "server_url = \"{server_url}\"\ndevice_id = \"{device_id}\"\ndata_dir = \"{}\"\n\
                 ca_cert_path = \"{f}/ca.pem\"\nregistration_cert_path = \"{f}/register.pem\"\n\
                 registration_key_path = \"{f}/register.key\"\n{extra_toml}",
                data_dir.display(),
                f = factory_dir.display()
            ),
        )?;
        std::fs::create_dir_all(&data_dir)?;
        let (bin, runner) = match std::env::var_os(AGENT_BIN_ENV) {
            Some(bin) => {
                let runner = std::env::var(AGENT_RUNNER_ENV).unwrap_or_default();
                (
                    PathBuf::from(bin),
                    runner.split_whitespace().map(str::to_owned).collect(),
                )
            }
            None => (bin_dir.join("flotta-agent"), Vec::new()),
        };
        Ok(AgentProc {
            bin,
            runner,
            config,
            data_dir,
            child: None,
            env: Vec::new(),
        })
    }

    /// Set `key=value` in the environment of every agent process started
    /// from now on (`run`, `run --once`, `emit`).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// A command running the agent binary (under its runner, if any).
    fn command(&self) -> Command {
        let mut c = match self.runner.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// (Re)start the agent on the same state.
    pub fn restart(&mut self) -> std::io::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.join("agent.log"))?;
        self.child = Some(
            self.command()
                .args(["run", "--config"])
                .arg(&self.config)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()?,
        );
        Ok(())
    }

    /// Process id of the running agent.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL the agent.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM the agent and wait for it to exit.
    pub fn stop(&mut self) -> std::io::Result<std::process::ExitStatus> {
        let Some(mut c) = self.child.take() else {
            return Err(std::io::Error::other("not running"));
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        c.wait()
    }

    /// Run `flotta-agent run --once` to completion (flush what is queued).
    pub fn run_once(&self) -> std::io::Result<std::process::Output> {
        self.command()
            .args(["run", "--once", "--config"])
            .arg(&self.config)
            .output()
    }

    /// `flotta-agent emit --config <its config> ARGS...` (hand a record to it).
    pub fn emit(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        self.command()
            .arg("emit")
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
    }

    /// Run `flotta-agent run --once` (its stderr appended to the agent's log),
    /// SIGKILLed and reported as [`std::io::ErrorKind::TimedOut`] if it has not
    /// finished within `timeout`.
    pub fn run_once_within(&self, timeout: Duration) -> std::io::Result<std::process::ExitStatus> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.join("agent.log"))?;
        let mut child = self
            .command()
            .args(["run", "--once", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("flotta-agent run --once did not finish within {timeout:?}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Upload windows that ended without an error, from its log.
    pub fn windows_ended(&self) -> usize {
        self.log().matches("flotta-agent: window: ").count()
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("agent.log")).unwrap_or_default()
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The value of the sample `name_and_labels` (e.g.
/// `flotta_tls_handshakes_total{kind="full"}`) in Prometheus text; 0 if absent.
pub fn parse_metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name_and_labels))
        .filter_map(|rest| rest.strip_prefix(' '))
        .find_map(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::parse_metric;

    #[test]
    fn metric_samples_are_found_by_name_and_labels() {
        let text = "# HELP x y\nflotta_tls_handshakes_total{kind=\"full\"} 3\n\
                    flotta_tls_handshakes_total{kind=\"resumed\"} 12\nflotta_batches_total 7\n";
        let resumed = "flotta_tls_handshakes_total{kind=\"resumed\"}";
        assert_eq!(parse_metric(text, resumed), 12.0);
        assert_eq!(parse_metric(text, "flotta_batches_total"), 7.0);
        let failed = "flotta_tls_handshakes_total{kind=\"failed\"}";
        assert_eq!(parse_metric(text, failed), 0.0);
        assert_eq!(parse_metric(text, "flotta_batches"), 0.0);
    }
}
