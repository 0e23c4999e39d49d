//! The server under test: the real `flotta-server serve` in a process of its
//! own, its readiness, metrics and resident memory.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::Objects;
use crate::seed::{Backend, Fleet, server_bin};

/// Controller passes of one kind the server ran.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Passes {
    pub(crate) count: u64,
    pub(crate) mean: Duration,
    pub(crate) looked_at: u64,
}

/// A running `flotta-server serve`.
pub(crate) struct Server {
    child: Child,
    admin: String,
    /// `https://localhost:<port>` of the Edge API.
    pub(crate) base: String,
}

/// Value of the metric line starting with `prefix` in a scrape (0 when absent).
pub(crate) fn metric(scrape: &str, prefix: &str) -> f64 {
    scrape
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
}

impl Server {
    /// Start the server on `fleet`'s configuration and wait until it is
    /// ready (its first controller pass runs on in the background).
    pub(crate) fn start(fleet: &Fleet) -> Self {
        let child = Command::new(server_bin())
            .arg("--config")
            .arg(&fleet.config_path)
            .arg("serve")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting flotta-server");
        let server = Server {
            child,
            admin: format!("http://{}", fleet.config.admin_listen_addr),
            base: format!("https://localhost:{}", fleet.config.listen_addr.port()),
        };
        let deadline = Instant::now() + Duration::from_secs(1800);
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .new_agent();
        loop {
            let ready = agent
                .get(format!("{}/readyz", server.admin))
                .call()
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return server;
            }
            assert!(Instant::now() < deadline, "the server never got ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's metrics now (Prometheus text).
    pub(crate) fn scrape(&self) -> String {
        ureq::get(format!("{}/metrics", self.admin))
            .call()
            .and_then(|mut r| r.body_mut().read_to_string())
            .expect("scraping the metrics")
    }

    /// TLS handshakes on the API listener so far: (full, resumed, failed).
    pub(crate) fn handshakes(&self) -> (u64, u64, u64) {
        let s = self.scrape();
        (
            metric(&s, "flotta_tls_handshakes_total{kind=\"full\"}") as u64,
            metric(&s, "flotta_tls_handshakes_total{kind=\"resumed\"}") as u64,
            metric(&s, "flotta_tls_handshakes_total{kind=\"failed\"}") as u64,
        )
    }

    /// The server's own controller passes so far, of kind `pass` (`full` or
    /// `incremental`): how many, their mean duration, devices looked at.
    pub(crate) fn passes(&self, pass: &str) -> Passes {
        let s = self.scrape();
        let count = metric(
            &s,
            &format!("flotta_controller_pass_seconds_count{{pass=\"{pass}\"}}"),
        ) as u64;
        let sum = metric(
            &s,
            &format!("flotta_controller_pass_seconds_sum{{pass=\"{pass}\"}}"),
        );
        Passes {
            count,
            mean: Duration::from_secs_f64(sum / count.max(1) as f64),
            looked_at: metric(
                &s,
                &format!("flotta_controller_devices_looked_at_total{{pass=\"{pass}\"}}"),
            ) as u64,
        }
    }

    /// The server's resident set size now, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        crate::common::rss_kib(&self.child.id().to_string())
    }

    /// SIGTERM, then wait for the graceful shutdown.
    pub(crate) fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let status = self.child.wait().expect("waiting for the server");
        assert!(status.success(), "the server exited with {status}");
    }
}

/// RSS of a server with no device, after it settled: the fixed cost that
/// per-device figures leave out (in the Kubernetes mode, watching an empty
/// cluster of its own).
pub(crate) fn empty_rss_kib(backend: Backend, objects: Objects) -> u64 {
    let fleet = Fleet::empty(backend, objects, 0);
    let server = Server::start(&fleet);
    std::thread::sleep(Duration::from_secs(1));
    let rss = server.rss_kib();
    server.stop();
    rss
}
