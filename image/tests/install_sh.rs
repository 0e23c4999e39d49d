//! The generated first-boot scripts, run with `sh` on the host against a scratch root
//! (`FLOTTA_ROOT`), with the boot partition's files extracted from a written image.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{CMDLINE, ImageSpec, inputs, options};
use flotta_image::board::Userland;
use flotta_image::wifi::Wifi;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Neighbours of the payload in the boot partition's root, which install.sh must leave.
const NEIGHBOURS: [&str; 3] = ["config.txt", "flotta-notes.txt", "flotta"];

/// Copy the boot partition's payload and top-level scripts out of `image` into `boot`, with
/// files next to them that are not the payload.
fn extract(image: &Path, boot: &Path) {
    std::fs::create_dir_all(boot).unwrap();
    let report = flotta_image::inspect(image).unwrap();
    assert!(report.payload.len() >= 7, "{:?}", report.payload);
    for f in &report.payload {
        let data = flotta_image::cat(image, f).unwrap();
        std::fs::write(boot.join(f), data).unwrap();
    }
    for f in NEIGHBOURS {
        std::fs::write(boot.join(f), f).unwrap();
    }
    for f in ["cmdline.txt", "firstrun.sh"] {
        if let Ok(data) = flotta_image::cat(image, f) {
            std::fs::write(boot.join(f), data).unwrap();
        }
    }
}

/// A Raspberry Pi OS-like root: passwd (with `user1000` if given), machine-id, hosts, rfkill.
fn root(dir: &Path, user1000: Option<&str>) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/systemd/rfkill")).unwrap();
    let mut passwd = String::from("root:x:0:0:root:/root:/bin/bash\n");
    if let Some(u) = user1000 {
        passwd.push_str(&format!("{u}:x:1000:1000:,,,:/home/{u}:/bin/bash\n"));
    }
    std::fs::write(root.join("etc/passwd"), passwd).unwrap();
    std::fs::write(
        root.join("etc/machine-id"),
        "0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/hosts"),
        "127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n",
    )
    .unwrap();
    std::fs::write(
        root.join("var/lib/systemd/rfkill/platform-3f300000.mmcnr:wlan"),
        "1\n",
    )
    .unwrap();
    root
}

/// Run `script` with sh, FLOTTA_ROOT=`root` and a systemctl that logs its arguments.
fn run(script: &Path, root: &Path, dir: &Path) -> String {
    let log = dir.join("systemctl.log");
    let fake = dir.join("systemctl");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("sh")
        .arg(script)
        .env("FLOTTA_ROOT", root)
        .env("FLOTTA_SYSTEMCTL", &fake)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&log).unwrap_or_default()
}

#[test]
fn firstrun_installs_everything_then_removes_the_payload_and_its_hook() {
    let d = tempfile::tempdir().unwrap();
    let i = inputs(d.path(), Userland::Armhf);
    let a = ImageSpec::bookworm(Userland::Armhf).build(&d.path().join("a.img"));
    let b = d.path().join("b.img");
    let mut o = options(&i, &a, &b, "rpi-zero");
    o.hostname = Some("sensor-7".into());
    o.ssh_authorized_key = Some(d.path().join("id.pub"));
    o.wifi = Some(Wifi {
        ssid: "fieldnet".into(),
        psk: "correct horse battery".into(),
    });
    o.wifi_country = Some("DE".into());
    flotta_image::write(&o).unwrap();
    let boot = d.path().join("boot");
    extract(&b, &boot);
    let root = root(d.path(), Some("pi"));
    let calls = run(&boot.join("firstrun.sh"), &root, d.path());

    let agent = root.join("usr/local/bin/flotta-agent");
    assert_eq!(std::fs::read(&agent).unwrap(), i.agent_bytes);
    assert_eq!(mode(&agent), 0o755);
    assert_eq!(mode(&root.join("etc/flotta")), 0o700);
    assert_eq!(mode(&root.join("etc/flotta/register.key")), 0o600);
    assert_eq!(mode(&root.join("etc/flotta/agent.toml")), 0o600);
    assert_eq!(
        std::fs::read_to_string(root.join("etc/flotta/register.key")).unwrap(),
        std::fs::read_to_string(d.path().join("register.key")).unwrap()
    );
    let toml = std::fs::read_to_string(root.join("etc/flotta/agent.toml")).unwrap();
    let cfg = flotta_image::agent_config::validate(&toml).unwrap();
    assert_eq!(cfg.device_id, "0123456789abcdef0123456789abcdef", "{toml}");
    assert!(
        root.join("etc/flotta/ca.pem").exists() && root.join("etc/flotta/register.pem").exists()
    );
    let unit = root.join("etc/systemd/system/flotta-agent.service");
    assert_eq!(
        std::fs::read_to_string(&unit).unwrap(),
        flotta_image::write::UNIT
    );
    let link = root.join("etc/systemd/system/multi-user.target.wants/flotta-agent.service");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("/etc/systemd/system/flotta-agent.service")
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "sensor-7\n"
    );
    assert!(
        std::fs::read_to_string(root.join("etc/hosts"))
            .unwrap()
            .contains("127.0.1.1\tsensor-7\n")
    );
    let nm = root.join("etc/NetworkManager/system-connections/flotta-wifi.nmconnection");
    assert_eq!(mode(&nm), 0o600);
    assert!(
        std::fs::read_to_string(&nm)
            .unwrap()
            .contains("psk=correct horse battery\n")
    );
    assert_eq!(
        std::fs::read_to_string(root.join("var/lib/systemd/rfkill/platform-3f300000.mmcnr:wlan"))
            .unwrap(),
        "0\n"
    );
    let keys = root.join("home/pi/.ssh/authorized_keys");
    assert_eq!(mode(&keys), 0o600);
    assert_eq!(mode(&root.join("home/pi/.ssh")), 0o700);
    assert!(
        std::fs::read_to_string(&keys)
            .unwrap()
            .starts_with("ssh-ed25519 ")
    );
    assert_eq!(
        calls, "enable ssh\n",
        "firstrun boots on: nothing is started now"
    );

    assert_payload_gone_neighbours_kept(&boot);
    assert!(!boot.join("firstrun.sh").exists());
    assert_eq!(
        std::fs::read_to_string(boot.join("cmdline.txt")).unwrap(),
        CMDLINE.replace('\n', " cfg80211.ieee80211_regdom=DE\n"),
        "the hook is removed, the country stays"
    );
}

#[test]
fn cloud_init_install_starts_the_agent_and_keys_go_to_root_without_a_user() {
    let d = tempfile::tempdir().unwrap();
    let i = inputs(d.path(), Userland::Arm64);
    let a = ImageSpec::trixie(Userland::Arm64).build(&d.path().join("a.img"));
    let b = d.path().join("b.img");
    let mut o = options(&i, &a, &b, "rpi-4");
    o.device_id = Some("gw-0001".into());
    o.ssh_authorized_key = Some(d.path().join("id.pub"));
    flotta_image::write(&o).unwrap();
    let boot = d.path().join("boot");
    extract(&b, &boot);
    let root = root(d.path(), None);
    // Keys already there are kept, ours added once even when run twice.
    std::fs::create_dir_all(root.join("root/.ssh")).unwrap();
    std::fs::write(
        root.join("root/.ssh/authorized_keys"),
        "ssh-rsa AAAAold old@host\n",
    )
    .unwrap();
    let calls = run(&boot.join("flotta-install.sh"), &root, d.path());
    let toml = std::fs::read_to_string(root.join("etc/flotta/agent.toml")).unwrap();
    assert!(toml.contains("device_id = \"gw-0001\""), "{toml}");
    let keys = std::fs::read_to_string(root.join("root/.ssh/authorized_keys")).unwrap();
    assert_eq!(keys.lines().count(), 2, "{keys}");
    assert!(keys.starts_with("ssh-rsa AAAAold"));
    assert!(
        !root.join("etc/hostname").exists(),
        "no --hostname, no change"
    );
    assert!(
        !root.join("etc/NetworkManager").exists(),
        "no Wi-Fi, no keyfile"
    );
    assert_eq!(
        calls,
        "enable ssh\nstart --no-block ssh\ndaemon-reload\nstart --no-block flotta-agent.service\n"
    );
    assert_payload_gone_neighbours_kept(&boot);
}

/// Every payload file is gone from `boot` (the registration key among them), nothing else.
fn assert_payload_gone_neighbours_kept(boot: &Path) {
    let left: Vec<String> = std::fs::read_dir(boot)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| flotta_image::write::PAYLOAD_FILES.contains(&n.as_str()))
        .collect();
    assert!(
        left.is_empty(),
        "the payload is still on the boot partition: {left:?}"
    );
    for f in NEIGHBOURS.iter().chain(&["cmdline.txt"]) {
        assert!(boot.join(f).exists(), "install.sh removed {f}");
    }
}

#[test]
fn a_failed_install_still_removes_the_secrets_and_the_hook() {
    let d = tempfile::tempdir().unwrap();
    let i = inputs(d.path(), Userland::Armhf);
    let a = ImageSpec::bookworm(Userland::Armhf).build(&d.path().join("a.img"));
    let b = d.path().join("b.img");
    let mut o = options(&i, &a, &b, "rpi-zero");
    o.wifi = Some(Wifi {
        ssid: "fieldnet".into(),
        psk: "correct horse battery".into(),
    });
    flotta_image::write(&o).unwrap();
    let boot = d.path().join("boot");
    extract(&b, &boot);
    assert!(boot.join("flotta-register.key").exists());
    // /usr/local/bin is a file: install.sh fails before its own clean-up.
    let root = root(d.path(), None);
    std::fs::create_dir_all(root.join("usr/local")).unwrap();
    std::fs::write(root.join("usr/local/bin"), "not a directory").unwrap();
    run(&boot.join("firstrun.sh"), &root, d.path());
    assert!(
        !root.join("etc/flotta/agent.toml").exists(),
        "install.sh did not fail"
    );
    assert_payload_gone_neighbours_kept(&boot);
    assert!(!boot.join("firstrun.sh").exists());
    let cmdline = std::fs::read_to_string(boot.join("cmdline.txt")).unwrap();
    assert!(!cmdline.contains("systemd.run"), "{cmdline}");
}

#[test]
fn a_provisioned_card_installs_identity_and_frame_keys_and_the_agent_needs_no_enrolment() {
    let d = tempfile::tempdir().unwrap();
    let i = inputs(d.path(), Userland::Armhf);
    let p = common::provision(d.path(), "prov", "sensor-0042");
    let a = ImageSpec::bookworm(Userland::Armhf).build(&d.path().join("a.img"));
    let b = d.path().join("b.img");
    let mut o = common::provisioned_options(&i, &p, "sensor-0042", &a, &b, "rpi-zero");
    o.link = Some("nb-iot".into());
    flotta_image::write(&o).unwrap();
    let boot = d.path().join("boot");
    extract(&b, &boot);
    let root = root(d.path(), Some("pi"));
    // A data directory from an earlier life is replaced: the card was written for this device.
    std::fs::create_dir_all(root.join("var/lib/flotta/identity")).unwrap();
    std::fs::write(root.join("var/lib/flotta/identity/device.pem"), "stale").unwrap();
    run(&boot.join("firstrun.sh"), &root, d.path());

    let data = root.join("var/lib/flotta");
    for dir in ["", "identity", "frame"] {
        assert_eq!(mode(&data.join(dir)), 0o700, "var/lib/flotta/{dir}");
    }
    let id = data.join("identity/device.pem");
    let fc = data.join("frame/context.json");
    assert_eq!(std::fs::read_to_string(&id).unwrap(), p.identity);
    assert_eq!(std::fs::read_to_string(&fc).unwrap(), p.frame_context);
    assert_eq!((mode(&id), mode(&fc)), (0o600, 0o600));
    let ca = root.join("etc/flotta/ca.pem");
    assert_eq!(std::fs::read_to_string(&ca).unwrap(), p.ca);
    assert!(
        !root.join("etc/flotta/register.pem").exists()
            && !root.join("etc/flotta/register.key").exists()
    );
    let toml = std::fs::read_to_string(root.join("etc/flotta/agent.toml")).unwrap();
    let mut cfg = flotta_image::agent_config::validate(&toml).unwrap();
    assert_eq!(
        cfg.device_id, "sensor-0042",
        "machine-id does not replace it"
    );
    assert_eq!(cfg.link_profile, "nb-iot");
    assert_payload_gone_neighbours_kept(&boot);

    // The agent, pointed at this root, has its identity and frame keys without enrolling: no
    // server answers at server_url, and there is no registration certificate.
    cfg.data_dir = data.clone();
    cfg.ca_cert_path = ca;
    cfg.server_url = "https://127.0.0.1:9".into();
    let identity = flotta_agent::register::ensure_identity(
        &cfg,
        "sensor-0042",
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap(),
        false,
        &flotta_agent::agent_time::AgentClock::system(),
    )
    .unwrap();
    assert_eq!(
        format!("{}{}", identity.key_pem, identity.cert_pem),
        p.identity
    );
    let keys = flotta_agent::frame_keys::load(&data).unwrap().unwrap();
    assert_eq!(keys.epoch, 1);
    flotta_agent::frame_keys::device_context(&keys, "sensor-0042").unwrap();
}
