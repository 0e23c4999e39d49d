//! A real browser for the console's tests: Debian's `chromium`, headless,
//! driven through `chromedriver` (WebDriver) with `fantoccini`. The driver
//! runs on a free loopback port and is killed on drop; the browser gets a
//! profile of its own in a temporary directory. Both programs come from
//! `scripts/setup.sh` (`chromium`, `chromium-driver`); a missing one is an
//! error that says so, never a skipped test.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::procs::free_port;

/// The driver and a session of the browser.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn find(env: &str, candidates: &[&str]) -> std::io::Result<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Ok(PathBuf::from(p));
    }
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| {
            std::io::Error::other(format!(
                "none of {candidates:?} exists (set {env}, or run scripts/setup.sh: \
                 it installs Debian's chromium and chromium-driver)"
            ))
        })
}

impl Browser {
    /// Start chromedriver and open a headless chromium session.
    pub async fn start() -> std::io::Result<Self> {
        let driver_bin = find(
            "FLOTTA_CHROMEDRIVER",
            &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
        )?;
        let chromium = find(
            "FLOTTA_CHROMIUM",
            &["/usr/lib/chromium/chromium", "/usr/bin/chromium"],
        )?;
        let port = free_port()?;
        // A process group of its own: on drop the driver and every chromium
        // process it started are killed together.
        let driver = Command::new(&driver_bin)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| std::io::Error::other(format!("{}: {e}", driver_bin.display())))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(std::io::Error::other(
                    "chromedriver did not listen within 20 s",
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir()?;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,1100", "--no-first-run",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        let mut browser = Browser {
            client: match builder.connect(&format!("http://127.0.0.1:{port}")).await {
                Ok(c) => c,
                Err(e) => {
                    let mut driver = driver;
                    let _ = driver.kill();
                    let _ = driver.wait();
                    return Err(std::io::Error::other(format!("WebDriver session: {e}")));
                }
            },
            driver,
            _profile: profile,
        };
        browser.driver_alive()?;
        Ok(browser)
    }

    fn driver_alive(&mut self) -> std::io::Result<()> {
        match self.driver.try_wait()? {
            Some(status) => Err(std::io::Error::other(format!(
                "chromedriver exited: {status}"
            ))),
            None => Ok(()),
        }
    }

    /// A PNG of the window, written to `dir/name.png` (for a human look).
    pub async fn screenshot(&self, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
        let png = self
            .client
            .screenshot()
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }
}

impl Browser {
    /// End the session (the browser exits), then the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and the browser it started.
        if let Ok(pgid) = i32::try_from(self.driver.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
