//! The `flotta-server` binary: init, registration bundle, config layering,
//! approve, serve.
// Helpers outside #[test] functions fail the test by panicking.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flotta-server"));
    // The environment layer must only see what each test sets.
    for (k, _) in std::env::vars() {
        if k.starts_with("FLOTTA_SERVER_") {
            c.env_remove(k);
        }
    }
    c
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `flotta-server init --data-dir <data>`, which must succeed.
fn init(data: &Path) -> String {
    ok(bin()
        .arg("init")
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap())
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_then_registration_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("factory");
    // Refused before init.
    let early = bin()
        .args(["issue-registration-cert", "--data-dir"])
        .arg(&data)
        .arg("--out-dir")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!early.status.success());
    assert!(String::from_utf8_lossy(&early.stderr).contains("flotta-server init"));

    init(&data);
    let ca = std::fs::read_to_string(data.join("ca.pem")).unwrap();
    assert_eq!(mode(&data.join("ca.key")), 0o600);
    init(&data);
    assert_eq!(
        std::fs::read_to_string(data.join("ca.pem")).unwrap(),
        ca,
        "init is idempotent"
    );

    ok(bin()
        .args([
            "issue-registration-cert",
            "--validity-seconds",
            "3600",
            "--data-dir",
        ])
        .arg(&data)
        .arg("--out-dir")
        .arg(&out)
        .output()
        .unwrap());
    assert_eq!(std::fs::read_to_string(out.join("ca.pem")).unwrap(), ca);
    assert_eq!(mode(&out.join("register.key")), 0o600);
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in"])
        .arg(out.join("register.pem"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("CN = register"));
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(out.join("ca.pem"))
        .arg(out.join("register.pem"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn a_ca_from_files_is_used_by_init_and_the_registration_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    init(&pki);
    let ca = std::fs::read_to_string(pki.join("ca.pem")).unwrap();
    let file = dir.path().join("server.toml");
    let data = dir.path().join("data");
    let out = dir.path().join("factory");
    let write = |cert: &Path| {
        std::fs::write(
            &file,
            format!(
                "data_dir = \"{}\"\nca_cert_file = \"{}\"\nca_key_file = \"{}\"\n",
                data.display(),
                cert.display(),
                pki.join("ca.key").display()
            ),
        )
        .unwrap()
    };
    write(&pki.join("ca.pem"));
    let printed = ok(bin()
        .arg("--config")
        .arg(&file)
        .arg("init")
        .output()
        .unwrap());
    assert_eq!(printed.trim(), pki.join("ca.pem").display().to_string());
    ok(bin()
        .arg("--config")
        .arg(&file)
        .arg("issue-registration-cert")
        .arg("--out-dir")
        .arg(&out)
        .output()
        .unwrap());
    assert_eq!(std::fs::read_to_string(out.join("ca.pem")).unwrap(), ca);
    assert!(data.join("server.pem").exists() && !data.join("ca.pem").exists());
    // A configured CA that is not there: refused, naming the file.
    write(&dir.path().join("nowhere/ca.pem"));
    for command in ["init", "issue-registration-cert"] {
        let o = bin()
            .arg("--config")
            .arg(&file)
            .arg(command)
            .args(
                ["--out-dir", "x"]
                    .iter()
                    .take(if command == "init" { 0 } else { 2 }),
            )
            .output()
            .unwrap();
        assert!(!o.status.success(), "{command}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("nowhere/ca.pem"), "{command}: {err}");
    }
}

#[test]
fn record_retention_days_from_the_environment() {
    let out = ok(bin().arg("config").output().unwrap());
    assert!(out.contains("record_retention_days = 30"), "default: {out}");
    let out = ok(bin()
        .arg("config")
        .env("FLOTTA_SERVER_RECORD_RETENTION_DAYS", "7")
        .output()
        .unwrap());
    assert!(out.contains("record_retention_days = 7"), "{out}");
    let bad = bin()
        .arg("config")
        .env("FLOTTA_SERVER_RECORD_RETENTION_DAYS", "3651")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("record_retention_days"));
}

#[test]
fn config_layers_defaults_file_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    std::fs::write(&file, "auto_approve = false\nmax_json_bytes = 1000\n").unwrap();
    let out = ok(bin()
        .arg("config")
        .arg("--config")
        .arg(&file)
        .env("FLOTTA_SERVER_MAX_JSON_BYTES", "2000")
        .output()
        .unwrap());
    assert!(out.contains("auto_approve = false"), "{out}");
    assert!(out.contains("max_json_bytes = 2000"), "env wins: {out}");
    assert!(
        out.contains("device_cert_validity_seconds = 2592000"),
        "default kept: {out}"
    );

    let bad = bin()
        .arg("config")
        .env("FLOTTA_SERVER_NO_SUCH_KEY", "1")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no_such_key"));

    std::fs::write(&file, "listen_port = 1\n").unwrap();
    let bad = bin()
        .arg("config")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("listen_port"));
}

#[test]
fn approve_marks_a_pending_device() {
    use flotta_server::device_id::{DeviceId, Namespace};
    use flotta_server::store::{Approval, SqliteStore, Store};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let id = DeviceId::parse("dev-1").unwrap();
    {
        let store = SqliteStore::open(&data.join("flotta.db")).unwrap();
        store
            .enrol(&id, &Namespace::parse("default").unwrap(), None, false, 1)
            .unwrap();
    }
    let out = ok(bin()
        .args(["approve", "dev-1", "--data-dir"])
        .arg(data)
        .output()
        .unwrap());
    assert!(out.contains("approved dev-1"));
    let store = SqliteStore::open(&data.join("flotta.db")).unwrap();
    assert_eq!(
        store.device(&id).unwrap().unwrap().approval,
        Approval::Approved
    );

    let missing = bin()
        .args(["approve", "dev-9", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
}

#[test]
fn serve_answers_health_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.toml");
    let port = |l: std::net::TcpListener| l.local_addr().unwrap().port();
    let api = port(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let admin = port(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    std::fs::write(
        &file,
        format!(
            "listen_addr = \"127.0.0.1:{api}\"\nadmin_listen_addr = \"127.0.0.1:{admin}\"\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = bin()
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{admin}/healthz");
    let mut healthy = false;
    for _ in 0..100 {
        let out = Command::new("curl").args(["-s", &url]).output().unwrap();
        if out.stdout == b"ok\n" {
            healthy = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The container probes' command: the admin listener's answers.
    let health = |ready: bool| {
        let mut c = bin();
        c.arg("--config").arg(&file).arg("health");
        if ready {
            c.arg("--ready");
        }
        c.output().unwrap()
    };
    let live = healthy.then(|| health(false));
    let ready = healthy.then(|| health(true));
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert!(healthy, "server never became healthy");
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    assert_eq!(ok(live.unwrap()), "ok\n");
    assert_eq!(ok(ready.unwrap()), "ready\n");
    let down = health(false);
    assert!(!down.status.success(), "health of a stopped server");
    assert!(String::from_utf8_lossy(&down.stderr).contains("cannot reach the admin listener"));
    assert!(
        dir.path().join("data/ca.pem").exists(),
        "CA created on first start"
    );
}

#[test]
fn provision_writes_a_frame_only_device_s_files_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("image");
    init(&data);
    let printed = ok(bin()
        .args(["provision", "sensor-7", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    for (file, m) in [
        ("identity/device.pem", 0o600),
        ("ca.pem", 0o644),
        ("frame/context.json", 0o600),
    ] {
        let path = out.join(file);
        assert!(printed.contains(&path.display().to_string()), "{printed}");
        assert_eq!(mode(&path), m, "{file}");
    }
    let identity = std::fs::read_to_string(out.join("identity/device.pem")).unwrap();
    let split = identity.find("-----BEGIN CERTIFICATE-----").unwrap();
    assert!(
        identity[..split].contains("PRIVATE KEY"),
        "key first, as the agent reads it"
    );
    let cert = flotta_server::pki::ClientIdentity::from_pem(&identity[split..]).unwrap();
    assert!(
        matches!(cert.role, flotta_server::pki::Role::Device { ref id, .. } if id.as_str() == "sensor-7")
    );
    assert_eq!(
        std::fs::read_to_string(out.join("ca.pem")).unwrap(),
        std::fs::read_to_string(data.join("ca.pem")).unwrap()
    );
    let keys: flotta_proto::frame_keys::FrameKeys =
        serde_json::from_str(&std::fs::read_to_string(out.join("frame/context.json")).unwrap())
            .unwrap();
    assert_eq!((keys.epoch, keys.master_salt.len()), (0, 8));

    use flotta_server::store::Store;
    let store = flotta_server::store::SqliteStore::open(&data.join("flotta.db")).unwrap();
    let id = flotta_server::device_id::DeviceId::parse("sensor-7").unwrap();
    let device = store.device(&id).unwrap().unwrap();
    assert!(device.registered && device.approval == flotta_server::store::Approval::Approved);
    assert_eq!(device.cert_serial.as_deref(), Some(cert.serial.as_str()));
    assert_eq!(store.frame_contexts(&id).unwrap()[0].keys, keys);
    drop(store);

    // Again into the same directory: refused, nothing replaced.
    let again = bin()
        .args(["provision", "sensor-8", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    assert_eq!(
        std::fs::read_to_string(out.join("identity/device.pem")).unwrap(),
        identity
    );
}

#[test]
fn provision_binds_an_imei_and_refuses_one_bound_to_another_device() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    init(&data);
    let provision = |id: &str, imei: &str, out: &str| {
        bin()
            .args(["provision", id, "--data-dir"])
            .arg(&data)
            .arg("--out")
            .arg(dir.path().join(out))
            .args(["--imei", imei])
            .output()
            .unwrap()
    };
    ok(provision("rb-1", "300234010753370", "a"));
    let refused = provision("rb-2", "300234010753370", "b");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("bound to device \"rb-1\""), "{stderr}");
    assert!(!dir.path().join("b").exists(), "nothing written");
    let bad = provision("rb-3", "12345", "c");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("15 decimal digits"));

    use flotta_server::store::Store;
    let store = flotta_server::store::SqliteStore::open(&data.join("flotta.db")).unwrap();
    let imei = flotta_server::links::LinkAddress::imei("300234010753370").unwrap();
    assert_eq!(
        store.linked_device(&imei).unwrap().map(|d| d.to_string()),
        Some("rb-1".to_owned())
    );
    let rb2 = flotta_server::device_id::DeviceId::parse("rb-2").unwrap();
    assert!(
        store.device(&rb2).unwrap().is_none(),
        "refused before it was made"
    );
}
