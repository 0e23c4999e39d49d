//! A real Kubernetes API server for custom resources, on loopback, for
//! tests: `crdtestserver` (the CRD half of kube-apiserver,
//! k8s.io/apiextensions-apiserver; `tests/kube-crd-server/main.go`) backed by
//! Debian's `etcd`, both started as child processes in a scratch directory,
//! with a kubeconfig and a `kubectl` to drive them.
//!
//! What it serves, as kube-apiserver does: CustomResourceDefinitions and the
//! custom resources they define (structural-schema validation and pruning,
//! defaulting, printer columns, the status subresource, server-side apply,
//! watch), `/apis` discovery and OpenAPI v2/v3. What it does not: the core
//! API (namespaces, events, configmaps, secrets, leases: a namespaced custom
//! resource may live in a namespace that does not exist), RBAC, admission
//! and conversion webhooks, garbage collection. Clients authenticate with
//! the client certificate of the kubeconfig (group `system:masters`); there
//! are no tokens.
//!
//! The binaries come from `scripts/kube-crd-server.sh` (`scripts/setup.sh`
//! runs it): `crdtestserver` and a `kubectl` new enough for it, in
//! `~/.cache/flotta/kube-crd-server/current` ([`DIR_ENV`] overrides). `etcd`
//! is Debian's `etcd-server` package, found on `PATH` ([`ETCD_ENV`]
//! overrides). When any is missing, [`KubeApi::start`] panics saying so: a
//! test never skips.
//!
//! The file uses only crates `flotta-server` depends on, and nothing else of
//! this crate: the server's fleet benchmark compiles it in by path
//! (`server/benches/fleet/cluster.rs`) to run its Kubernetes mode.
//!
//! ```no_run
//! let kube = flotta_e2e::kube::KubeApi::start();
//! kube.apply_ok(&std::fs::read_to_string("crds.yaml").expect("CRDs"));
//! kube.wait_established("edgedevices.management.project-flotta.io");
//! println!("{}", kube.kubectl_ok(&["get", "edgedevices", "-A"]));
//! // Both processes are SIGKILLed, and etcd's data removed, when `kube` is dropped.
//! ```

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// Directory holding `crdtestserver` and `kubectl` (default
/// `~/.cache/flotta/kube-crd-server/current`, where
/// `scripts/kube-crd-server.sh` links its build).
pub const DIR_ENV: &str = "FLOTTA_KUBE_CRD_SERVER_DIR";

/// The `etcd` binary to run (default: `etcd` on `PATH`, from Debian's
/// `etcd-server`).
pub const ETCD_ENV: &str = "FLOTTA_ETCD";

/// How long the API server gets to answer `/readyz` (0.5-1.5 s on a
/// two-core machine, measured; the other suites run beside it).
const READY_WITHIN: Duration = Duration::from_secs(90);

/// How long [`KubeApi::wait_established`] waits.
const ESTABLISHED_WITHIN: Duration = Duration::from_secs(30);

/// How often readiness and other states are polled (each poll runs
/// `kubectl`, a process start of some 50 ms).
const POLL: Duration = Duration::from_millis(100);

/// Where the binaries are: [`DIR_ENV`], else
/// `~/.cache/flotta/kube-crd-server/current` (`$FLOTTA_CACHE_DIR` for
/// `~/.cache/flotta`, as the script).
pub fn binaries_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(DIR_ENV) {
        return dir.into();
    }
    let cache = match std::env::var_os("FLOTTA_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            Path::new(&home).join(".cache/flotta")
        }
    };
    cache.join("kube-crd-server/current")
}

/// A running etcd + API server pair; both SIGKILLed (by PID) and their
/// scratch directory (etcd's data included) removed when dropped.
pub struct KubeApi {
    dir: tempfile::TempDir,
    kubectl: PathBuf,
    server_url: String,
    etcd: Option<Child>,
    apiserver: Option<Child>,
    startup: Duration,
}

impl std::fmt::Debug for KubeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeApi")
            .field("dir", &self.dir.path())
            .field("server_url", &self.server_url)
            .finish_non_exhaustive()
    }
}

/// Why one attempt to start did not give a ready server.
enum StartFailure {
    /// A port picked free was taken meanwhile: worth another attempt.
    PortTaken(String),
    /// Anything else: the test fails with this.
    Fatal(String),
}

impl KubeApi {
    /// Start etcd and the API server on free loopback ports and wait until
    /// the API server is ready (`/readyz`).
    ///
    /// # Panics
    /// When a binary is missing (the message says how to get it), or the
    /// server is not ready within 90 s (the message carries the ends of
    /// both logs).
    #[track_caller]
    pub fn start() -> KubeApi {
        let bins = binaries_dir();
        for bin in ["crdtestserver", "kubectl"] {
            assert!(
                bins.join(bin).is_file(),
                "{} missing: run scripts/kube-crd-server.sh (scripts/setup.sh runs it) to build \
                 the Kubernetes API server for CRDs, or set {DIR_ENV} to a directory holding \
                 crdtestserver and kubectl",
                bins.join(bin).display()
            );
        }
        let etcd = std::env::var_os(ETCD_ENV).map_or_else(|| PathBuf::from("etcd"), PathBuf::from);
        let began = Instant::now();
        let mut last = String::new();
        // Ports are picked free, then bound by the children: another test may
        // take one in between. That, and only that, is tried again.
        for _attempt in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("flotta-kube")
                .tempdir()
                .expect("scratch directory");
            let mut kube = KubeApi {
                dir,
                kubectl: bins.join("kubectl"),
                server_url: String::new(),
                etcd: None,
                apiserver: None,
                startup: Duration::ZERO,
            };
            match kube.try_start(&bins, &etcd) {
                Ok(()) => {
                    kube.startup = began.elapsed();
                    eprintln!(
                        "kube: {} ready in {} ms ({})",
                        kube.server_url,
                        kube.startup.as_millis(),
                        kube.dir.path().display()
                    );
                    return kube;
                }
                Err(StartFailure::PortTaken(why)) => last = why,
                Err(StartFailure::Fatal(why)) => panic!("{why}"),
            }
        }
        panic!("the Kubernetes API server did not start in 3 attempts (ports taken):\n{last}");
    }

    fn try_start(&mut self, bins: &Path, etcd_bin: &Path) -> Result<(), StartFailure> {
        let fatal =
            |what: &str, e: &dyn std::fmt::Display| StartFailure::Fatal(format!("{what}: {e}"));
        let port = || free_port().map_err(|e| fatal("a free port", &e));
        let (etcd_port, peer_port, api_port) = (port()?, port()?, port()?);
        let dir = self.dir.path().to_path_buf();
        self.write_certs().map_err(|e| fatal("certificates", &e))?;

        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd = Command::new(etcd_bin)
            .current_dir(&dir)
            .arg("--name=flotta-test")
            .arg(format!("--data-dir={}", dir.join("etcd").display()))
            .arg(format!("--listen-client-urls={etcd_url}"))
            .arg(format!("--advertise-client-urls={etcd_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=flotta-test={peer_url}"))
            .stdin(Stdio::null())
            .stdout(log_file(&dir, "etcd.log")?)
            .stderr(log_file(&dir, "etcd.log")?)
            .spawn()
            .map_err(|e| {
                fatal(
                    &format!(
                        "{} does not run (install Debian's etcd-server: scripts/setup.sh does; \
                         or set {ETCD_ENV})",
                        etcd_bin.display()
                    ),
                    &e,
                )
            })?;
        self.etcd = Some(etcd);

        // The API server retries etcd, but would log failures until it is up.
        self.wait_until("etcd to listen", |_| {
            std::net::TcpStream::connect(("127.0.0.1", etcd_port)).is_ok()
        })?;

        let apiserver = Command::new(bins.join("crdtestserver"))
            .current_dir(&dir)
            .arg(format!("--etcd-servers={etcd_url}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--secure-port={api_port}"))
            .arg(format!(
                "--cert-dir={}",
                dir.join("apiserver-certs").display()
            ))
            .arg(format!(
                "--tls-cert-file={}",
                dir.join("server.crt").display()
            ))
            .arg(format!(
                "--tls-private-key-file={}",
                dir.join("server.key").display()
            ))
            .arg(format!("--client-ca-file={}", dir.join("ca.crt").display()))
            .stdin(Stdio::null())
            .stdout(log_file(&dir, "apiserver.log")?)
            .stderr(log_file(&dir, "apiserver.log")?)
            .spawn()
            .map_err(|e| {
                fatal(
                    &format!("{} does not run", bins.join("crdtestserver").display()),
                    &e,
                )
            })?;
        self.apiserver = Some(apiserver);
        self.server_url = format!("https://127.0.0.1:{api_port}");
        self.write_kubeconfig()
            .map_err(|e| fatal("kubeconfig", &e))?;

        self.wait_until("the API server to be ready (/readyz)", |kube| {
            kube.kubectl(&["get", "--raw", "/readyz"]).status.success()
        })
    }

    /// Polls `done` every [`POLL`] until it holds; fails early when a child
    /// exits, and after [`READY_WITHIN`], with the ends of the logs.
    fn wait_until(
        &mut self,
        what: &str,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<(), StartFailure> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if done(self) {
                return Ok(());
            }
            let exited = [
                ("etcd", &mut self.etcd),
                ("crdtestserver", &mut self.apiserver),
            ]
            .into_iter()
            .find_map(|(name, child)| {
                let status = child.as_mut()?.try_wait().ok()??;
                child.take();
                Some(format!("{name} exited ({status})"))
            });
            if let Some(exited) = exited {
                let why = format!("{exited} while waiting for {what}:\n{}", self.logs());
                return Err(if why.contains("address already in use") {
                    StartFailure::PortTaken(why)
                } else {
                    StartFailure::Fatal(why)
                });
            }
            if Instant::now() >= deadline {
                return Err(StartFailure::Fatal(format!(
                    "timed out after {READY_WITHIN:?} waiting for {what}:\n{}",
                    self.logs()
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// A CA, the server's certificate (`localhost`, `127.0.0.1`) and the
    /// client's (`O=system:masters`), as PEM files in the scratch directory.
    fn write_certs(&self) -> Result<(), String> {
        let dir = self.dir.path();
        let write = |name: &str, pem: &str| {
            std::fs::write(dir.join(name), pem).map_err(|e| format!("{name}: {e}"))
        };
        let rcgen = |e: rcgen::Error| e.to_string();

        let ca_key = KeyPair::generate().map_err(rcgen)?;
        let mut ca = CertificateParams::default();
        ca.distinguished_name
            .push(DnType::CommonName, "flotta-test-kube-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        write("ca.crt", &ca.self_signed(&ca_key).map_err(rcgen)?.pem())?;
        let issuer = Issuer::new(ca, ca_key);

        let server_key = KeyPair::generate().map_err(rcgen)?;
        let mut server = CertificateParams::new(["localhost".to_owned()]).map_err(rcgen)?;
        server
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.use_authority_key_identifier_extension = true;
        let server = server.signed_by(&server_key, &issuer).map_err(rcgen)?;
        write("server.crt", &server.pem())?;
        write("server.key", &server_key.serialize_pem())?;

        let client_key = KeyPair::generate().map_err(rcgen)?;
        let mut client = CertificateParams::default();
        client
            .distinguished_name
            .push(DnType::CommonName, "flotta-test-admin");
        client
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client.use_authority_key_identifier_extension = true;
        let client = client.signed_by(&client_key, &issuer).map_err(rcgen)?;
        write("client.crt", &client.pem())?;
        write("client.key", &client_key.serialize_pem())?;
        Ok(())
    }

    /// The kubeconfig: the server, the CA and the client certificate, all
    /// inline (usable by kube-rs's `Config::from_custom_kubeconfig` too).
    fn write_kubeconfig(&self) -> std::io::Result<()> {
        let b64 = |name: &str| -> std::io::Result<String> {
            Ok(base64::engine::general_purpose::STANDARD
                .encode(std::fs::read(self.dir.path().join(name))?))
        };
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: flotta-test\n  cluster:\n    \
             server: {}\n    certificate-authority-data: {}\nusers:\n- name: flotta-test-admin\n  \
             user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: \
             flotta-test\n  context:\n    cluster: flotta-test\n    user: flotta-test-admin\n    \
             namespace: default\ncurrent-context: flotta-test\n",
            self.server_url,
            b64("ca.crt")?,
            b64("client.crt")?,
            b64("client.key")?,
        );
        std::fs::write(self.kubeconfig_path(), config)
    }

    /// The kubeconfig file (context `flotta-test`, namespace `default`).
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The API server's URL, `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The scratch directory: `ca.crt`, `client.crt`, `client.key`,
    /// `kubeconfig`, `etcd.log`, `apiserver.log`, etcd's data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// How long [`KubeApi::start`] took, until `/readyz` answered.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// A `kubectl` command against this server (its own discovery cache in
    /// the scratch directory; `~/.kube` is not read), to add arguments to.
    pub fn kubectl_command(&self) -> Command {
        let mut c = Command::new(&self.kubectl);
        c.arg(format!("--kubeconfig={}", self.kubeconfig_path().display()))
            .arg(format!(
                "--cache-dir={}",
                self.dir.path().join("kubectl-cache").display()
            ))
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null());
        c
    }

    /// Run `kubectl ARGS...` to completion.
    ///
    /// # Panics
    /// When `kubectl` cannot be run at all.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_command()
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    /// Run `kubectl ARGS...` with `input` on its standard input.
    ///
    /// # Panics
    /// When `kubectl` cannot be run at all.
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .kubectl_command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        // Written from a thread: kubectl may answer before it has read all.
        let mut stdin = child.stdin.take().expect("kubectl's stdin");
        let input = input.to_owned();
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().expect("kubectl runs");
        // A write cut short by kubectl exiting (an error it reports) is no matter.
        let _ = writer.join();
        out
    }

    /// [`KubeApi::kubectl`] that must succeed: its standard output.
    ///
    /// # Panics
    /// When it fails (with its standard error and the ends of the logs).
    #[track_caller]
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        self.expect_ok(&format!("kubectl {}", args.join(" ")), out)
    }

    /// `kubectl apply -f -` of `yaml` (one or more documents).
    pub fn apply_stdin(&self, yaml: &str) -> Output {
        self.kubectl_stdin(&["apply", "-f", "-"], yaml)
    }

    /// [`KubeApi::apply_stdin`] that must succeed: its standard output.
    ///
    /// # Panics
    /// When it fails (with its standard error and the ends of the logs).
    #[track_caller]
    pub fn apply_ok(&self, yaml: &str) -> String {
        let out = self.apply_stdin(yaml);
        self.expect_ok("kubectl apply -f -", out)
    }

    #[track_caller]
    fn expect_ok(&self, what: &str, out: Output) -> String {
        assert!(
            out.status.success(),
            "{what} failed ({}):\n{}{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait until the CRD `name` (`<plural>.<group>`) is Established and its
    /// resource is served and discovered (`kubectl get <name>` lists).
    ///
    /// # Panics
    /// When that does not happen within 30 s.
    #[track_caller]
    pub fn wait_established(&self, name: &str) {
        let crd = format!("crd/{name}");
        let established = "jsonpath={.status.conditions[?(@.type==\"Established\")].status}";
        let deadline = Instant::now() + ESTABLISHED_WITHIN;
        loop {
            let out = self.kubectl(&["get", &crd, "-o", established]);
            if out.status.success()
                && String::from_utf8_lossy(&out.stdout).trim() == "True"
                && self
                    .kubectl(&["get", name, "--all-namespaces", "-o", "name"])
                    .status
                    .success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "CRD {name} not established and served within {ESTABLISHED_WITHIN:?}:\n{}\n{}",
                String::from_utf8_lossy(&self.kubectl(&["get", &crd, "-o", "yaml"]).stdout),
                self.logs()
            );
            std::thread::sleep(POLL);
        }
    }

    /// The last lines of etcd's and the API server's logs (for failure
    /// messages).
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for name in ["etcd.log", "apiserver.log"] {
            let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(25)..];
            s.push_str(&format!("--- {name} (last {} lines) ---\n", tail.len()));
            for l in tail {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        // The API server first: it would log etcd's going away otherwise.
        for mut child in [self.apiserver.take(), self.etcd.take()]
            .into_iter()
            .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A log file in `dir`, opened for appending (one per process, shared by
/// its standard output and error).
fn log_file(dir: &Path, name: &str) -> Result<std::fs::File, StartFailure> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
        .map_err(|e| StartFailure::Fatal(format!("{name}: {e}")))
}

/// A loopback port nobody listens on right now.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
