//! The `flotta-image` binary: the command line contract, and the Wi-Fi passphrase that never
//! travels on argv.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{CMDLINE, ImageSpec, cat, inputs};
use flotta_image::board::Userland;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flotta-image"))
}

fn write_cmd(dir: &Path, image: &Path, out: &Path) -> Command {
    let mut c = bin();
    c.arg("write").arg(image).arg("-o").arg(out);
    c.args([
        "--board",
        "rpi-zero",
        "--server-url",
        "https://flotta.example:8043",
    ]);
    c.arg("--agent").arg(dir.join("flotta-agent"));
    c.arg("--ca").arg(dir.join("ca.pem"));
    c.arg("--registration-cert").arg(dir.join("register.pem"));
    c.arg("--registration-key").arg(dir.join("register.key"));
    c.env_remove("FLOTTA_WIFI_PSK");
    c
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn the_passphrase_comes_from_a_file_or_the_environment_never_argv() {
    let d = tempfile::tempdir().unwrap();
    inputs(d.path(), Userland::Armhf);
    let a = ImageSpec::bookworm(Userland::Armhf).build(&d.path().join("a.img"));
    let out = d.path().join("b.img");
    let help = ok(bin().args(["write", "--help"]).output().unwrap());
    assert!(
        help.contains("--wifi-psk-file") && !help.contains("--wifi-psk "),
        "{help}"
    );
    let o = write_cmd(d.path(), &a, &out)
        .args(["--wifi-ssid", "n", "--wifi-psk", "secret123"])
        .output()
        .unwrap();
    assert!(!o.status.success() && !out.exists());
    let o = write_cmd(d.path(), &a, &out)
        .args(["--wifi-ssid", "net"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("FLOTTA_WIFI_PSK"),
        "{o:?}"
    );
    assert!(!out.exists());

    ok(write_cmd(d.path(), &a, &out)
        .args(["--wifi-ssid", "net", "--wifi-country", "GB"])
        .env("FLOTTA_WIFI_PSK", "from-the-environment")
        .output()
        .unwrap());
    assert!(cat(&out, "flotta-wifi.nmconnection").contains("psk=from-the-environment\n"));

    let psk = d.path().join("psk");
    std::fs::write(&psk, "from-a-file-1\n").unwrap();
    ok(write_cmd(d.path(), &a, &out)
        .args(["--wifi-ssid", "net", "--wifi-psk-file"])
        .arg(&psk)
        .env("FLOTTA_WIFI_PSK", "ignored-when-a-file-is-given")
        .output()
        .unwrap());
    assert!(cat(&out, "flotta-wifi.nmconnection").contains("psk=from-a-file-1\n"));
}

#[test]
fn inspect_and_cat_read_the_boot_partition() {
    let d = tempfile::tempdir().unwrap();
    inputs(d.path(), Userland::Armhf);
    let a = ImageSpec::bookworm(Userland::Armhf).build(&d.path().join("a.img"));
    assert_eq!(
        ok(bin()
            .arg("cat")
            .arg(&a)
            .arg("cmdline.txt")
            .output()
            .unwrap()),
        CMDLINE
    );
    let report = ok(bin().arg("inspect").arg(&a).output().unwrap());
    assert!(report.contains("partition table: Mbr"), "{report}");
    assert!(
        report.contains("1: start 1 MiB, 40 MiB, type 0x0c (FAT)"),
        "{report}"
    );
    assert!(
        report.contains("userland: armhf") && report.contains("first boot: firstrun"),
        "{report}"
    );
    assert!(report.contains("flotta payload: none"), "{report}");
    let out = d.path().join("b.img");
    ok(write_cmd(d.path(), &a, &out).output().unwrap());
    assert!(
        ok(bin().arg("inspect").arg(&out).output().unwrap())
            .contains("flotta payload: flotta-agent,")
    );
    let o = bin().arg("cat").arg(&a).arg("nope.txt").output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("nope.txt"));
}

#[test]
fn registration_or_provisioned_exactly_one_and_provisioned_needs_the_device_id() {
    let d = tempfile::tempdir().unwrap();
    inputs(d.path(), Userland::Armhf);
    let p = common::provision(d.path(), "prov", "sensor-3");
    let a = ImageSpec::bookworm(Userland::Armhf).build(&d.path().join("a.img"));
    let out = d.path().join("b.img");
    let base = || {
        let mut c = bin();
        c.arg("write").arg(&a).arg("-o").arg(&out);
        c.args([
            "--board",
            "rpi-zero",
            "--server-url",
            "https://flotta.example:8043",
        ]);
        c.arg("--agent").arg(d.path().join("flotta-agent"));
        c.env_remove("FLOTTA_WIFI_PSK");
        c
    };
    let refused = |mut c: Command, needle: &str| {
        let o = c.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains(needle),
            "wanted {needle:?} in: {err}"
        );
        assert!(!out.exists());
    };
    // Both ways.
    let mut c = write_cmd(d.path(), &a, &out);
    c.arg("--provisioned")
        .arg(&p.dir)
        .args(["--device-id", "sensor-3"]);
    refused(c, "cannot be used with");
    // Neither.
    let mut c = base();
    c.arg("--ca").arg(d.path().join("ca.pem"));
    refused(c, "--registration-cert <FILE>|--provisioned <DIR>");
    // Half of the registration pair.
    let mut c = base();
    c.arg("--ca").arg(d.path().join("ca.pem"));
    c.arg("--registration-cert")
        .arg(d.path().join("register.pem"));
    refused(c, "--registration-key");
    // --provisioned without --device-id.
    let mut c = base();
    c.arg("--provisioned").arg(&p.dir);
    refused(c, "--device-id");
    // Registration without --ca.
    let mut c = base();
    c.arg("--registration-cert")
        .arg(d.path().join("register.pem"));
    c.arg("--registration-key")
        .arg(d.path().join("register.key"));
    refused(c, "--ca");
    // The id the directory was not provisioned for.
    let mut c = base();
    c.arg("--provisioned")
        .arg(&p.dir)
        .args(["--device-id", "sensor-4"]);
    refused(c, "is not the device");

    // --provisioned with --device-id, --ca optional; --link names a frame link profile.
    let mut c = base();
    c.arg("--provisioned").arg(&p.dir);
    c.args(["--device-id", "sensor-3", "--link", "lora"]);
    ok(c.output().unwrap());
    assert_eq!(cat(&out, "flotta-device.pem"), p.identity);
    assert!(cat(&out, "flotta-agent.toml").contains("link_profile = \"lora\""));
}
