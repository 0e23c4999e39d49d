//! Real `flotta-server` and `flotta-agent` processes for `demo` and `armv6-e2e`: their
//! configuration files, a server initialised (CA, registration certificate) and serving on
//! free loopback ports, its admin CLI, and a guard that kills a child on every path.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::process;

/// A child process, stopped on drop (SIGTERM, then SIGKILL after 5 s), so a failure anywhere
/// leaves nothing running.
pub(crate) struct Running(Child);

impl Running {
    /// Start `cmd`; `what` names it in the error.
    pub(crate) fn spawn(cmd: &mut Command, what: &str) -> Result<Self> {
        let line = process::describe(cmd);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {what}: `{line}`"))?;
        Ok(Self(child))
    }

    /// Wait up to `within` for the child to exit; `None` if it is still running.
    pub(crate) fn wait_for(&mut self, within: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() > deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.0.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        if let Ok(Some(_)) = self.wait_for(Duration::from_secs(5)) {
            return;
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port (bound and released).
pub(crate) fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Wait until something accepts connections on `127.0.0.1:port`.
pub(crate) fn wait_for_port(port: u16, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on 127.0.0.1:{port} after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Remove `FLOTTA_<component>_*` variables from `cmd`'s environment: the configuration file
/// must say everything (the programs let such variables override it).
pub(crate) fn scrub_flotta_env(cmd: &mut Command, prefix: &str) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with(prefix) {
            cmd.env_remove(key);
        }
    }
}

/// `s` as a TOML basic string (quoted, with `"`, `\` and control characters escaped).
/// (The workspace's `toml` has no serializer; enabling one for xtask would change the
/// features every workspace build compiles it with, the agent's included.)
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn path_str(p: &Path) -> String {
    toml_str(&p.display().to_string())
}

/// The server's TOML: API and admin listeners on loopback, state in `data_dir`.
pub(crate) fn server_toml(api_port: u16, admin_port: u16, data_dir: &Path) -> String {
    format!(
        "listen_addr = \"127.0.0.1:{api_port}\"\nadmin_listen_addr = \"127.0.0.1:{admin_port}\"\n\
         data_dir = {}\n",
        path_str(data_dir)
    )
}

/// What an agent's configuration file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AgentToml<'a> {
    /// `https://localhost:<port>`: the server certificate names `localhost`.
    pub(crate) server_url: String,
    pub(crate) device_id: &'a str,
    pub(crate) data_dir: &'a Path,
    /// Holds `ca.pem`, `register.pem` and `register.key` (`issue-registration-cert`).
    pub(crate) factory_dir: &'a Path,
    pub(crate) heartbeat_period_seconds: u64,
    /// Keys of the `[link]` table (`upload_interval_seconds`, `backoff_initial_seconds`, ...).
    pub(crate) link: &'a [(&'a str, u64)],
}

impl AgentToml<'_> {
    /// The TOML text.
    pub(crate) fn render(&self) -> String {
        let mut out = format!(
            "server_url = {}\ndevice_id = {}\ndata_dir = {}\n",
            toml_str(&self.server_url),
            toml_str(self.device_id),
            path_str(self.data_dir)
        );
        for (key, file) in [
            ("ca_cert_path", "ca.pem"),
            ("registration_cert_path", "register.pem"),
            ("registration_key_path", "register.key"),
        ] {
            out.push_str(&format!(
                "{key} = {}\n",
                path_str(&self.factory_dir.join(file))
            ));
        }
        out.push_str(&format!(
            "heartbeat_period_seconds = {}\n",
            self.heartbeat_period_seconds
        ));
        if !self.link.is_empty() {
            out.push_str("\n[link]\n");
            for (key, value) in self.link {
                out.push_str(&format!("{key} = {value}\n"));
            }
        }
        out
    }
}

/// A `flotta-server` initialised in a directory of its own and serving; stopped on drop.
pub(crate) struct Server {
    bin: PathBuf,
    /// Its configuration file.
    pub(crate) config: PathBuf,
    /// Port of the mTLS Edge API.
    pub(crate) api_port: u16,
    /// Port of the plain-HTTP admin listener.
    pub(crate) admin_port: u16,
    /// `ca.pem`, `register.pem`, `register.key` for agents.
    pub(crate) factory_dir: PathBuf,
    /// stdout and stderr of `serve`.
    pub(crate) log: PathBuf,
    _serving: Running,
}

impl Server {
    /// In `dir` (which must exist): write `server.toml`, run `init` and
    /// `issue-registration-cert --out-dir <dir>/factory`, start `serve` and wait for the API.
    pub(crate) fn start(bin: &Path, dir: &Path) -> Result<Self> {
        let (api_port, admin_port) = (free_port()?, free_port()?);
        let config = dir.join("server.toml");
        std::fs::write(
            &config,
            server_toml(api_port, admin_port, &dir.join("server")),
        )
        .with_context(|| format!("writing {}", config.display()))?;
        let factory_dir = dir.join("factory");
        let command = |args: &[&str]| {
            let mut cmd = Command::new(bin);
            scrub_flotta_env(&mut cmd, "FLOTTA_SERVER_");
            cmd.arg("--config").arg(&config).args(args);
            cmd
        };
        process::stdout_of(&mut command(&["init"]))?;
        let mut issue = command(&["issue-registration-cert", "--out-dir"]);
        process::stdout_of(issue.arg(&factory_dir))?;
        let log = dir.join("server.log");
        let out = std::fs::File::create(&log)?;
        let serving = Running::spawn(
            command(&["serve"]).stdout(out.try_clone()?).stderr(out),
            "flotta-server",
        )?;
        wait_for_port(api_port, Duration::from_secs(20)).with_context(|| {
            format!(
                "flotta-server did not start; its log:\n{}",
                read_tail(&log, 40)
            )
        })?;
        wait_for_port(admin_port, Duration::from_secs(5))?;
        Ok(Self {
            bin: bin.to_owned(),
            config,
            api_port,
            admin_port,
            factory_dir,
            log,
            _serving: serving,
        })
    }

    /// `https://localhost:<api port>`, what agents connect to.
    pub(crate) fn url(&self) -> String {
        format!("https://localhost:{}", self.api_port)
    }

    /// `flotta-server --config .. --admin-addr .. <args>` (get, describe, ...); its stdout.
    pub(crate) fn admin(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new(&self.bin);
        scrub_flotta_env(&mut cmd, "FLOTTA_SERVER_");
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--admin-addr")
            .arg(format!("127.0.0.1:{}", self.admin_port))
            .args(args);
        process::stdout_of(&mut cmd)
    }
}

/// The last `lines` lines of the file at `path` (or a note that it cannot be read).
pub(crate) fn read_tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_toml_names_loopback_listeners_and_the_data_dir() {
        let text = server_toml(8043, 8044, Path::new("/tmp/a \"b\"/server"));
        let t: toml::Table = text.parse().unwrap();
        assert_eq!(t["listen_addr"].as_str(), Some("127.0.0.1:8043"));
        assert_eq!(t["admin_listen_addr"].as_str(), Some("127.0.0.1:8044"));
        assert_eq!(t["data_dir"].as_str(), Some("/tmp/a \"b\"/server"));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn agent_toml_has_the_factory_files_and_the_link_table() {
        let text = AgentToml {
            server_url: "https://localhost:9000".into(),
            device_id: "pi-zero-1",
            data_dir: Path::new("/d/agent"),
            factory_dir: Path::new("/d/factory"),
            heartbeat_period_seconds: 30,
            link: &[("backoff_initial_seconds", 1), ("backoff_max_seconds", 2)],
        }
        .render();
        let t: toml::Table = text.parse().unwrap();
        assert_eq!(t["server_url"].as_str(), Some("https://localhost:9000"));
        assert_eq!(t["device_id"].as_str(), Some("pi-zero-1"));
        assert_eq!(t["data_dir"].as_str(), Some("/d/agent"));
        assert_eq!(t["ca_cert_path"].as_str(), Some("/d/factory/ca.pem"));
        assert_eq!(
            t["registration_cert_path"].as_str(),
            Some("/d/factory/register.pem")
        );
        assert_eq!(
            t["registration_key_path"].as_str(),
            Some("/d/factory/register.key")
        );
        assert_eq!(t["heartbeat_period_seconds"].as_integer(), Some(30));
        let link = t["link"].as_table().unwrap();
        assert_eq!(link["backoff_initial_seconds"].as_integer(), Some(1));
        assert_eq!(link["backoff_max_seconds"].as_integer(), Some(2));
        assert_eq!(t.len(), 8);
    }

    #[test]
    fn agent_toml_without_link_overrides_has_no_link_table() {
        let text = AgentToml {
            server_url: "https://localhost:1".into(),
            device_id: "d",
            data_dir: Path::new("/a"),
            factory_dir: Path::new("/f"),
            heartbeat_period_seconds: 2,
            link: &[],
        }
        .render();
        assert!(!text.parse::<toml::Table>().unwrap().contains_key("link"));
    }

    #[test]
    fn a_running_child_is_stopped_on_drop() {
        let mut cmd = Command::new("sleep");
        let running = Running::spawn(cmd.arg("600"), "sleep").unwrap();
        let pid = running.0.id();
        let started = Instant::now();
        drop(running);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "SIGTERM sufficed"
        );
        let alive = Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(!alive, "pid {pid} still runs");
    }

    #[test]
    fn wait_for_reports_exit_or_timeout() {
        let mut quick = Running::spawn(&mut Command::new("true"), "true").unwrap();
        assert!(
            quick
                .wait_for(Duration::from_secs(5))
                .unwrap()
                .unwrap()
                .success()
        );
        let mut slow = Running::spawn(Command::new("sleep").arg("600"), "sleep").unwrap();
        assert!(slow.wait_for(Duration::from_millis(100)).unwrap().is_none());
    }

    #[test]
    fn toml_strings_round_trip_whatever_they_hold() {
        for s in [
            "plain",
            "with \"quotes\"",
            r"back\slash",
            "tab\tand\nnewline",
            "é ü 日本",
        ] {
            let t: toml::Table = format!("k = {}", toml_str(s)).parse().unwrap();
            assert_eq!(t["k"].as_str(), Some(s), "{s:?}");
        }
    }

    #[test]
    fn read_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("log");
        std::fs::write(&f, "1\n2\n3\n").unwrap();
        assert_eq!(read_tail(&f, 2), "2\n3");
        assert_eq!(read_tail(&f, 10), "1\n2\n3");
        assert!(read_tail(&dir.path().join("none"), 1).contains("cannot read"));
    }
}
