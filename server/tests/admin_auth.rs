//! Access to the admin listener, route by route: no credentials, a wrong
//! token, the read-only and admin roles (tokens and certificates), an
//! expired admin certificate, a device certificate; the audit log of what
//! was changed and refused; the CLI with a token and with a certificate;
//! and a server that refuses to listen off loopback without credentials.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::ctl::{ctl, fails, ok};
use flotta_server::admin_auth::token;
use flotta_server::cli::{AdminAccess, AdminTls};
use flotta_server::pki::Validity;
use flotta_server::testing::{TestOptions, TestServer, spawn};
use serde_json::Value;

const ADMIN_TOKEN: &str = "flotta_test-admin-token";
const VIEWER_TOKEN: &str = "flotta_test-viewer-token";

/// Who asks, and whether a route that needs `admin` (else read-only) is theirs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// 401.
    Unauthenticated,
    /// 403.
    Forbidden,
    /// Neither (the handler answered).
    Served,
}

/// Every admin route: method, path, whether it needs the admin role
/// (`None`: open for probes).
const ROUTES: &[(&str, &str, Option<bool>)] = &[
    ("GET", "/healthz", None),
    ("GET", "/readyz", None),
    ("GET", "/metrics", Some(false)),
    ("POST", "/apis/apply", Some(true)),
    ("GET", "/apis/audit", Some(true)),
    ("POST", "/apis/devices/dev-1/approve", Some(true)),
    ("POST", "/apis/devices/dev-gone/decommission", Some(true)),
    ("GET", "/apis/devices/dev-1/links", Some(false)),
    (
        "POST",
        "/apis/devices/dev-1/links/sbd/300234010753370",
        Some(true),
    ),
    (
        "DELETE",
        "/apis/devices/dev-1/links/sbd/300234010753370",
        Some(true),
    ),
    ("GET", "/apis/devices/dev-1/events", Some(false)),
    ("GET", "/apis/devices/dev-1/logs", Some(false)),
    ("GET", "/apis/devices/dev-1/logs/stream", Some(false)),
    ("GET", "/apis/events", Some(false)),
    ("GET", "/apis/events/stream", Some(false)),
    ("GET", "/apis/edgedevices", Some(false)),
    ("GET", "/apis/edgedevices/default/dev-1", Some(false)),
    ("DELETE", "/apis/edgeworkloads/default/none", Some(true)),
    ("GET", "/apis/no-such-route", Some(false)),
    ("PUT", "/healthz", Some(true)),
    ("POST", "/ui/devices/dev-1/approve", Some(true)),
];

fn server() -> (TestServer, tempfile::TempDir) {
    let toml = format!(
        r#"admin_tls = true
admin_client_certs = true
[[admin_tokens]]
name = "alice"
role = "admin"
sha256 = "{}"
[[admin_tokens]]
name = "victor"
role = "read-only"
sha256 = "{}"
"#,
        token::hash_hex(ADMIN_TOKEN),
        token::hash_hex(VIEWER_TOKEN)
    );
    let s = spawn(TestOptions {
        config_toml: toml,
        ..TestOptions::default()
    })
    .unwrap();
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("ca.pem"), &s.ca_pem).unwrap();
    (s, files)
}

/// A client certificate (PEM cert, key) written to `dir` as `name.pem/.key`.
fn write_cert(dir: &Path, name: &str, cert: &flotta_server::pki::IssuedCert) -> (PathBuf, PathBuf) {
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, &cert.cert_pem).unwrap();
    std::fs::write(&k, &cert.key_pem).unwrap();
    (c, k)
}

fn access(files: &Path, token: Option<&str>, cert: Option<(PathBuf, PathBuf)>) -> AdminAccess {
    AdminAccess {
        token: token.map(str::to_owned),
        tls: Some(AdminTls {
            ca_file: files.join("ca.pem"),
            client: cert,
        }),
    }
}

/// The status of `method path` (a small valid body for `apply`).
fn status(s: &TestServer, a: &AdminAccess, method: &str, path: &str) -> u16 {
    let agent = a.agent().unwrap();
    // The server certificate names 127.0.0.1.
    let url = format!("{}://{}{path}", a.scheme(), s.admin_addr);
    let r = match method {
        "GET" => agent.get(&url).call(),
        "DELETE" => agent.delete(&url).call(),
        "PUT" => agent.put(&url).send_empty(),
        "POST" if path == "/apis/apply" => agent
            .post(&url)
            .content_type("application/yaml")
            .send("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: b}\n"),
        "POST" => agent.post(&url).send_empty(),
        other => panic!("{other}"),
    };
    r.unwrap().status().as_u16()
}

fn judge(code: u16) -> Expect {
    match code {
        401 => Expect::Unauthenticated,
        403 => Expect::Forbidden,
        _ => Expect::Served,
    }
}

fn check_all(s: &TestServer, who: &str, a: &AdminAccess, on_admin: Expect, on_read: Expect) {
    for (method, path, needs_admin) in ROUTES {
        let want = match needs_admin {
            None => Expect::Served,
            Some(true) => on_admin,
            Some(false) => on_read,
        };
        let code = status(s, a, method, path);
        assert_eq!(judge(code), want, "{who}: {method} {path} answered {code}");
    }
}

#[test]
fn every_route_by_credential_and_role() {
    let (s, files) = server();
    let dir = files.path();
    let now = SystemTime::now();
    let ca = s.pki().ca();
    let hour = Duration::from_secs(3600);
    let admin_cert = ca
        .issue_admin_cert("carol", false, Validity::starting_at(now, hour).unwrap())
        .unwrap();
    let viewer_cert = ca
        .issue_admin_cert("vera", true, Validity::starting_at(now, hour).unwrap())
        .unwrap();
    let expired = ca
        .issue_admin_cert("old", false, Validity::between(now - 3 * hour, now - hour))
        .unwrap();
    let device = s.device_cert("dev-1", "default", now, now + hour).unwrap();

    use Expect::*;
    check_all(
        &s,
        "nobody",
        &access(dir, None, None),
        Unauthenticated,
        Unauthenticated,
    );
    check_all(
        &s,
        "wrong token",
        &access(dir, Some("flotta_nope"), None),
        Unauthenticated,
        Unauthenticated,
    );
    check_all(
        &s,
        "viewer token",
        &access(dir, Some(VIEWER_TOKEN), None),
        Forbidden,
        Served,
    );
    check_all(
        &s,
        "admin token",
        &access(dir, Some(ADMIN_TOKEN), None),
        Served,
        Served,
    );
    let cert = |name, c| Some(write_cert(dir, name, c));
    check_all(
        &s,
        "admin cert",
        &access(dir, None, cert("carol", &admin_cert)),
        Served,
        Served,
    );
    check_all(
        &s,
        "viewer cert",
        &access(dir, None, cert("vera", &viewer_cert)),
        Forbidden,
        Served,
    );
    check_all(
        &s,
        "expired cert",
        &access(dir, None, cert("old", &expired)),
        Unauthenticated,
        Unauthenticated,
    );
    check_all(
        &s,
        "device cert",
        &access(dir, None, cert("dev-1", &device)),
        Forbidden,
        Forbidden,
    );
    // A wrong token beside a good certificate is still refused.
    check_all(
        &s,
        "wrong token + admin cert",
        &access(dir, Some("flotta_nope"), cert("carol", &admin_cert)),
        Unauthenticated,
        Unauthenticated,
    );
    // Plain HTTP is not served on a TLS listener.
    let plain = AdminAccess {
        token: Some(ADMIN_TOKEN.into()),
        tls: None,
    };
    let agent = plain.agent().unwrap();
    assert!(
        agent
            .get(format!("http://{}/apis/edgedevices", s.admin_addr))
            .call()
            .is_err()
    );
}

#[test]
fn state_changes_and_refusals_are_audited() {
    let (s, files) = server();
    let dir = files.path();
    let admin = access(dir, Some(ADMIN_TOKEN), None);
    let viewer = access(dir, Some(VIEWER_TOKEN), None);
    assert_eq!(status(&s, &admin, "POST", "/apis/apply"), 200);
    assert_eq!(
        status(&s, &viewer, "POST", "/apis/devices/dev-9/approve"),
        403
    );
    assert_eq!(
        status(&s, &access(dir, None, None), "POST", "/apis/apply"),
        401
    );
    // Reads are not audited.
    assert_eq!(status(&s, &viewer, "GET", "/apis/edgedevices"), 200);

    let out = ok(Command::new(env!("CARGO_BIN_EXE_flotta-server"))
        .args(["--admin-addr", &s.admin_addr.to_string(), "--admin-ca"])
        .arg(dir.join("ca.pem"))
        .args(["audit", "-o", "json"])
        .env("FLOTTA_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("RUST_LOG")
        .output()
        .unwrap());
    let items: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(items.len(), 2, "{out}");
    // Newest first: the viewer's refused approval, then alice's apply.
    assert_eq!(items[0]["principal"], "victor");
    assert_eq!(items[0]["role"], "read-only");
    assert_eq!(items[0]["path"], "/apis/devices/dev-9/approve");
    assert_eq!(items[0]["status"], 403);
    assert_eq!(items[1]["principal"], "alice");
    assert_eq!(items[1]["via"], "token");
    assert_eq!(items[1]["method"], "POST");
    assert_eq!(items[1]["status"], 200);
    assert_eq!(items[1]["detail"], "ConfigMap default/cm created");
    assert!(items[0]["id"].as_u64() > items[1]["id"].as_u64());
    // The read-only token may not read the audit log.
    let e = fails(
        Command::new(env!("CARGO_BIN_EXE_flotta-server"))
            .args(["--admin-addr", &s.admin_addr.to_string(), "--admin-ca"])
            .arg(dir.join("ca.pem"))
            .arg("audit")
            .env("FLOTTA_ADMIN_TOKEN", VIEWER_TOKEN)
            .env_remove("RUST_LOG")
            .output()
            .unwrap(),
    );
    assert!(
        e.contains("403") && e.contains("needs the admin role"),
        "{e}"
    );
}

#[test]
fn cli_with_a_token_on_loopback_and_with_an_issued_certificate() {
    // Tokens configured on plain loopback: required there too.
    let s = spawn(TestOptions {
        config_toml: format!(
            "[[admin_tokens]]\nname = \"alice\"\nrole = \"admin\"\nsha256 = \"{}\"\n",
            token::hash_hex(ADMIN_TOKEN)
        ),
        ..TestOptions::default()
    })
    .unwrap();
    let e = fails(ctl(&s, &["get", "edgedevices"], None));
    assert!(
        e.contains("401") && e.contains("credentials required"),
        "{e}"
    );
    let files = tempfile::tempdir().unwrap();
    let token_file = files.path().join("token");
    std::fs::write(&token_file, format!("{ADMIN_TOKEN}\n")).unwrap();
    // (No devices: an empty table, and success.)
    ok(ctl(
        &s,
        &[
            "--token-file",
            token_file.to_str().unwrap(),
            "get",
            "edgedevices",
        ],
        None,
    ));
    // Probes need nothing.
    ok(ctl(&s, &["health", "--ready"], None));

    // issue-admin-cert writes a certificate the TLS listener accepts.
    let (tls, _files) = server();
    let out_dir = files.path().join("carol");
    let issued = ok(Command::new(env!("CARGO_BIN_EXE_flotta-server"))
        .args(["--data-dir"])
        .arg(&tls.config.data_dir)
        .args([
            "issue-admin-cert",
            "--name",
            "carol",
            "--read-only",
            "--out-dir",
        ])
        .arg(&out_dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap());
    assert!(issued.contains("carol.pem"), "{issued}");
    let with_cert = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_flotta-server"));
        c.args(["--admin-addr", &tls.admin_addr.to_string(), "--admin-ca"])
            .arg(out_dir.join("ca.pem"))
            .arg("--admin-cert")
            .arg(out_dir.join("carol.pem"))
            .arg("--admin-key")
            .arg(out_dir.join("carol.key"))
            .args(args)
            .env_remove("FLOTTA_ADMIN_TOKEN")
            .env_remove("RUST_LOG");
        c.output().unwrap()
    };
    ok(with_cert(&["get", "edgedevices"]));
    let e = fails(with_cert(&["decommission", "dev-x"]));
    assert!(
        e.contains("403") && e.contains("carol has the read-only role"),
        "{e}"
    );
}

#[test]
fn admin_token_prints_a_working_entry_and_serve_refuses_an_open_network_listener() {
    let out = ok(Command::new(env!("CARGO_BIN_EXE_flotta-server"))
        .args(["admin-token", "--name", "ops", "--role", "admin"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap());
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("# flotta_"))
        .map(|t| format!("flotta_{t}"))
        .unwrap();
    let config = flotta_server::config::Config::from_toml_str(&out).unwrap();
    assert_eq!(config.admin_tokens[0].sha256, token::hash_hex(&token));

    let data = tempfile::tempdir().unwrap();
    let e = fails(
        Command::new(env!("CARGO_BIN_EXE_flotta-server"))
            .arg("--data-dir")
            .arg(data.path())
            .arg("serve")
            .env("FLOTTA_SERVER_ADMIN_LISTEN_ADDR", "0.0.0.0:0")
            .env("FLOTTA_SERVER_LISTEN_ADDR", "127.0.0.1:0")
            .env_remove("RUST_LOG")
            .output()
            .unwrap(),
    );
    assert!(
        e.contains("admin_listen_addr") && e.contains("not a loopback address"),
        "{e}"
    );
    assert!(
        std::fs::read_dir(data.path()).unwrap().next().is_none(),
        "nothing made"
    );
}
