//! The operator console in a real browser (headless chromium through
//! chromedriver): a real `flotta-server` with an admin and a read-only
//! token and manual approval, real `flotta-agent`s. An operator signs in,
//! approves a pending device on the approvals page, sees it go online in
//! the fleet table, opens its page and sees an event sent with
//! `flotta-agent emit` appear without a reload (server-sent events). A
//! read-only operator sees the pending device but no Approve button, and
//! the server refuses the approval when the page posts it anyway.
//! Screenshots go to `target/console-screenshots/` for a human look.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use flotta_e2e::browser::Browser;
use flotta_e2e::procs::{AgentProc, ServerProc, bin_dir};
use flotta_server::admin_auth::token::hash_hex;

const ADMIN_TOKEN: &str = "flotta_console-test-admin-0123456789";
const VIEWER_TOKEN: &str = "flotta_console-test-viewer-0123456789";

const AGENT_TOML: &str = "heartbeat_period_seconds = 2
[link]
upload_interval_seconds = 2
backoff_initial_seconds = 1
backoff_max_seconds = 2
connect_timeout_seconds = 5
request_timeout_seconds = 5
";

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("console-screenshots")
}

/// Poll `check` until it holds or `limit` passes.
async fn until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("{what}: not within {limit:?}");
}

async fn text(c: &Client, css: &str) -> Option<String> {
    c.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

async fn sign_in(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/ui/")).await.unwrap();
    // Not signed in: the console sends the browser to sign in first.
    let url = c.current_url().await.unwrap();
    assert_eq!(url.path(), "/ui/login", "{url}");
    c.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        "the fleet page after signing in",
        Duration::from_secs(20),
        || async { text(c, "h1").await.as_deref() == Some("Fleet") },
    )
    .await;
}

#[test]
fn operators_sign_in_approve_watch_a_device_and_a_viewer_cannot_approve() {
    let bins = bin_dir().expect("flotta binaries");
    let dir = tempfile::tempdir().unwrap();
    let server_toml = format!(
        "auto_approve = false
controller_interval_seconds = 1
[[admin_tokens]]
name = \"alice\"
role = \"admin\"
sha256 = \"{}\"
[[admin_tokens]]
name = \"victor\"
role = \"read-only\"
sha256 = \"{}\"
",
        hash_hex(ADMIN_TOKEN),
        hash_hex(VIEWER_TOKEN)
    );
    let server = ServerProc::start(&bins, dir.path(), &server_toml).unwrap();
    let url = format!("https://localhost:{}", server.api_addr.port());
    let base = format!("http://{}", server.admin_addr);
    let agent = AgentProc::start(
        &bins,
        dir.path(),
        "console-dev-1",
        &url,
        &server.factory_dir,
        AGENT_TOML,
    )
    .unwrap();
    let shots = screenshots();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let browser = Browser::start().await.expect("headless chromium");
        let c = &browser.client;

        // An admin signs in and approves the pending device.
        sign_in(c, &base, ADMIN_TOKEN).await;
        assert_eq!(text(c, "#who").await.as_deref(), Some("alice"));
        until("console-dev-1 pending on the approvals page", Duration::from_secs(60), || async {
            c.goto(&format!("{base}/ui/approvals")).await.unwrap();
            c.find(Locator::Css("tr[data-device='console-dev-1'] button.approve"))
                .await
                .is_ok()
        })
        .await;
        browser.screenshot(&shots, "1-approvals-admin").await.unwrap();
        c.find(Locator::Css("tr[data-device='console-dev-1'] button.approve"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until("the approved device off the list", Duration::from_secs(20), || async {
            c.find(Locator::Css("tr[data-device='console-dev-1']")).await.is_err()
        })
        .await;

        // It registers, uploads and goes online in the fleet table.
        until("console-dev-1 online in the fleet table", Duration::from_secs(90), || async {
            c.goto(&format!("{base}/ui/?q=console-dev-1")).await.unwrap();
            text(c, "tr[data-device='console-dev-1'] td.presence").await.as_deref()
                == Some("online")
        })
        .await;
        assert_eq!(text(c, "#count-online").await.as_deref(), Some("1"));
        browser.screenshot(&shots, "2-fleet-online").await.unwrap();

        // Its page; an event emitted on the device appears without a reload.
        c.find(Locator::Css("tr[data-device='console-dev-1'] a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until("the device page with its event stream open", Duration::from_secs(20), || async {
            c.find(Locator::Css("#events[data-connected='1']")).await.is_ok()
        })
        .await;
        assert_eq!(text(c, "#device-name").await.as_deref(), Some("console-dev-1"));
        assert!(text(c, "#certificate").await.unwrap().contains("expires"));
        // A mark a reload would wipe.
        c.execute("window.flottaMark = 42; return 1;", vec![]).await.unwrap();
        let out = agent
            .emit(&["event", "--reason", "ConsoleLive", "--level", "warn", "cabinet door opened"])
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        until("the emitted event on the page", Duration::from_secs(60), || async {
            text(c, "#events").await.unwrap_or_default().contains("ConsoleLive")
        })
        .await;
        let mark = c.execute("return window.flottaMark;", vec![]).await.unwrap();
        assert_eq!(mark, serde_json::json!(42), "the page was reloaded");
        let li = text(c, "#events li.fresh").await.unwrap();
        assert!(li.contains("cabinet door opened") && li.contains("warn"), "{li}");
        browser.screenshot(&shots, "3-device-live-event").await.unwrap();

        // Sign out; a read-only operator sees a second pending device, no
        // button, and the server refuses the approval the page posts anyway.
        let second = AgentProc::start(
            &bins,
            dir.path(),
            "console-dev-2",
            &url,
            &server.factory_dir,
            AGENT_TOML,
        )
        .unwrap();
        c.find(Locator::Css("header form button")).await.unwrap().click().await.unwrap();
        until("signed out", Duration::from_secs(10), || async {
            c.current_url().await.map(|u| u.path() == "/ui/login").unwrap_or(false)
        })
        .await;
        sign_in(c, &base, VIEWER_TOKEN).await;
        assert_eq!(text(c, "#role").await.as_deref(), Some("read-only"));
        until("console-dev-2 pending for the viewer", Duration::from_secs(60), || async {
            c.goto(&format!("{base}/ui/approvals")).await.unwrap();
            c.find(Locator::Css("tr[data-device='console-dev-2']")).await.is_ok()
        })
        .await;
        assert!(c.find(Locator::Css("button.approve")).await.is_err(), "no Approve for read-only");
        assert!(c.find(Locator::Id("read-only-note")).await.is_ok());
        browser.screenshot(&shots, "4-approvals-read-only").await.unwrap();
        let status = c
            .execute(
                "return fetch('/ui/devices/console-dev-2/approve', {method: 'POST'}).then(r => r.status);",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(status, serde_json::json!(403));
        c.refresh().await.unwrap();
        assert!(
            c.find(Locator::Css("tr[data-device='console-dev-2']")).await.is_ok(),
            "still pending"
        );
        // The token's cookie is HttpOnly: no script on the page can read it.
        let cookie = c.execute("return document.cookie;", vec![]).await.unwrap();
        assert_eq!(cookie, serde_json::json!(""), "the token is not readable by scripts");
        drop(second);
        browser.close().await;
    });

    // The audit log has the admin's approval and the viewer's refusal.
    let audit: serde_json::Value = ureq_get_json(&base, "/apis/audit", ADMIN_TOKEN);
    let items = audit["items"].as_array().unwrap();
    assert!(
        items.iter().any(|i| i["principal"] == "alice"
            && i["path"] == "/ui/devices/console-dev-1/approve"
            && i["status"] == 303),
        "{audit}"
    );
    assert!(
        items.iter().any(|i| i["principal"] == "victor"
            && i["path"] == "/ui/devices/console-dev-2/approve"
            && i["status"] == 403),
        "{audit}"
    );
}

fn ureq_get_json(base: &str, path: &str, token: &str) -> serde_json::Value {
    let mut r = ureq::get(format!("{base}{path}"))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
}
