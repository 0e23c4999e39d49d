//! A temporary PostgreSQL cluster for tests (the store's own, and the
//! end-to-end tests' through `flotta_server::testing::TestPostgres`): [`Cluster::shared`] starts one
//! per test process (`initdb` into a temp dir, `pg_ctl start` listening only
//! on a Unix socket in that dir, `fsync=on`), [`fresh_store`] gives each
//! test its own new database (`CREATE DATABASE t_<n>`). A watchdog process
//! stops the cluster (`pg_ctl stop -m immediate`) and removes the dir when
//! the test process exits, however it exits.
//!
//! The binaries are taken from `FLOTTA_PG_BIN_DIR`, else the newest
//! `/usr/lib/postgresql/*/bin`. Without them the tests fail (they are never
//! skipped): install Debian's `postgresql` package. Run as root, the
//! cluster runs as the `postgres` OS user (`runuser -u postgres --`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// A running temporary cluster.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres: bool,
    next_db: AtomicU32,
}

fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FLOTTA_PG_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb and \
             FLOTTA_PG_BIN_DIR unset): the PostgreSQL store tests need them; install Debian's \
             `postgresql` package (apt-get install postgresql)"
        ),
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

impl Cluster {
    /// The cluster of this test process, started on first use; [`Cluster::create_database`] gives
    /// each test its own database.
    pub fn shared() -> &'static Cluster {
        static CLUSTER: OnceLock<Cluster> = OnceLock::new();
        CLUSTER.get_or_init(Cluster::start)
    }

    /// A new cluster of its own (tests that restart it).
    pub fn start() -> Cluster {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("flotta-pg-")
            .tempdir()
            .unwrap()
            .keep();
        let as_postgres = is_root();
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success(), "chown of {} failed", dir.display());
        }
        let cluster = Cluster {
            bin,
            dir,
            as_postgres,
            next_db: AtomicU32::new(0),
        };
        // Stop and remove the cluster when this process exits.
        let watchdog = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop}; rm -rf '{dir}'",
            pid = std::process::id(),
            stop = cluster.shell_pg_ctl("stop -m immediate"),
            dir = cluster.dir.display(),
        );
        // Never waited for: it outlives this process on purpose.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args(["-c", &watchdog])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the cluster's watchdog");
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data().display().to_string(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.pg_ctl("start");
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `pg_ctl` as a shell command line (for the watchdog).
    fn shell_pg_ctl(&self, args: &str) -> String {
        let line = format!(
            "'{}' -D '{}' {args}",
            self.bin.join("pg_ctl").display(),
            self.data().display()
        );
        if self.as_postgres {
            format!("runuser -u postgres -- {line} >/dev/null 2>&1")
        } else {
            format!("{line} >/dev/null 2>&1")
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let log = self.dir.join(format!("{program}.out"));
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let status = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        if self.as_postgres {
            let _ = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&log)
                .status();
        }
        assert!(
            status.success(),
            "{program} {args:?} failed: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// `pg_ctl <action>` (`start`, `stop -m immediate`, `restart`), waiting.
    pub fn pg_ctl(&self, action: &str) {
        let options = format!(
            "-k {} -c listen_addresses='' -p 5432 -c fsync=on -c max_connections=200",
            self.dir.display()
        );
        let data = self.data().display().to_string();
        let log = self.dir.join("server.log").display().to_string();
        let mut args = vec!["-D", &data, "-w", "-l", &log, "-o", &options];
        args.extend(action.split_whitespace());
        self.run("pg_ctl", &args);
    }

    /// The connection string of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "host={} port=5432 user=postgres dbname={db}",
            self.dir.display()
        )
    }

    /// A new empty database; returns its connection string.
    pub fn create_database(&self) -> String {
        let n = self.next_db.fetch_add(1, Ordering::SeqCst);
        let name = format!("t_{n}");
        let mut client = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .expect("connect to the test cluster");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        self.url(&name)
    }
}
