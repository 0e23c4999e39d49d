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
