//! `write` end to end on synthetic images: payload, cmdline.txt, user-data, idempotence,
//! in place, xz input, refusals and atomicity.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{CMDLINE, ImageSpec, cat, inputs, options, stray_files};
use flotta_image::board::Userland;
use flotta_image::wifi::Wifi;
use flotta_image::{ImageError, write};

fn wifi() -> Option<Wifi> {
    Some(Wifi {
        ssid: "fieldnet".into(),
        psk: "correct horse battery".into(),
    })
}

#[test]
fn firstrun_image_gets_payload_hook_and_keeps_the_input() {
    let d = tempfile::tempdir().unwrap();
    let i = inputs(d.path(), Userland::Armhf);
    let a = ImageSpec::bookworm(Userland::Armhf).build(&d.path().join("a.img"));
    let a_before = std::fs::read(&a).unwrap();
    let b = d.path().join("b.img");
    let mut o = options(&i, &a, &b, "rpi-zero");
    o.wifi = wifi();
    o.wifi_country = Some("DE".into());
    o.hostname = Some("sensor-7".into());
    o.ssh_authorized_key = Some(d.path().join("id.pub"));
    o.link = Some("nb-iot".into());
    let w = write(&o).unwrap();
    assert_eq!(w.detected.userland, Userland::Armhf);
    assert_eq!(
        std::fs::read(&a).unwrap(),
        a_before,
        "the input is untouched"
    );
    assert_eq!(
        cat(&b, "cmdline.txt"),
        CMDLINE.replace(
            '\n',
            " cfg80211.ieee80211_regdom=DE systemd.run=/boot/firmware/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target\n"
        )
    );
    assert_eq!(
        flotta_image::cat(&b, "flotta-agent").unwrap(),
        i.agent_bytes
    );
    let toml = cat(&b, "flotta-agent.toml");
    let cfg = flotta_image::agent_config::validate(&toml).unwrap();
    assert_eq!(cfg.link_profile, "nb-iot");
    assert_eq!(cfg.server_url, "https://flotta.example:8043");
    assert!(toml.contains("device_id = \"\""), "{toml}");
    assert_eq!(
        cat(&b, "flotta-register.key"),
        std::fs::read_to_string(d.path().join("register.key")).unwrap()
    );
    assert_eq!(
        cat(&b, "flotta-agent.service"),
        include_str!("../../agent/systemd/flotta-agent.service")
    );
    assert!(cat(&b, "flotta-wifi.nmconnection").contains("ssid=fieldnet\n"));
    assert!(cat(&b, "flotta-authorized_keys").starts_with("ssh-ed25519 "));
    let install = cat(&b, "flotta-install.sh");
    assert!(
        install.contains("FLOTTA_HOSTNAME='sensor-7'") && install.contains("FLOTTA_START_NOW=0"),
        "{install}"
    );
    assert!(cat(&b, "firstrun.sh").contains(flotta_image::scripts::FIRSTRUN_MARK));
    let report = flotta_image::inspect(&b).unwrap().to_string();
    assert!(
        report.contains("flotta payload: flotta-agent, flotta-agent.service, flotta-agent.toml, flotta-authorized_keys, flotta-ca.pem, flotta-install.sh, flotta-register.key, flotta-register.pem, flotta-wifi.nmconnection\n")
            && report.contains("firstrun hook in cmdline.txt: yes"),
        "{report}"
    );
    assert!(
        flotta_image::inspect(&a)
            .unwrap()
            .to_string()
            .contains("flotta payload: none")
    );
    assert!(stray_files(d.path()).is_empty());
}

#[test]
fn cloud_init_image_gets_runcmd_merged_into_user_data() {
    let d = tempfile::tempdir().unwrap();
    let i = inputs(d.path(), Userland::Arm64);
    let a = ImageSpec::trixie(Userland::Arm64).build(&d.path().join("a.img"));
    let b = d.path().join("b.img");
    let mut o = options(&i, &a, &b, "rpi-4");
    o.hostname = Some("gw-1".into());
    write(&o).unwrap();
    assert_eq!(
        cat(&b, "cmdline.txt"),
        CMDLINE,
        "cloud-init images need no cmdline hook"
    );
    assert!(!flotta_image::inspect(&b).unwrap().firstrun_hook);
    assert!(flotta_image::cat(&b, "firstrun.sh").is_err());
    let ud = cat(&b, "user-data");
    assert!(ud.starts_with("#cloud-config\n"), "{ud}");
    let v: serde_norway::Value = serde_norway::from_str(&ud).unwrap();
    assert_eq!(v["users"][0]["name"].as_str(), Some("pi"), "{ud}");
    assert_eq!(v["hostname"].as_str(), Some("gw-1"));
    let runcmd = v["runcmd"].as_sequence().unwrap();
    assert_eq!(runcmd.len(), 2, "{ud}");
    assert_eq!(
        runcmd[1][1].as_str(),
        Some("/boot/firmware/flotta-install.sh")
    );
    assert!(cat(&b, "flotta-install.sh").contains("FLOTTA_START_NOW=1"));
    assert_eq!(cat(&b, "meta-data"), "instance-id: rpios-image\n");
}

#[test]
fn writing_twice_is_byte_identical_for_both_flavours() {
    for (spec, board, userland) in [
        (
            ImageSpec::bookworm(Userland::Armhf),
            "rpi-zero",
            Userland::Armhf,
        ),
        (
            ImageSpec::trixie(Userland::Arm64),
            "rpi-zero-2w",
            Userland::Arm64,
        ),
    ] {
        let d = tempfile::tempdir().unwrap();
        let i = inputs(d.path(), userland);
        let a = spec.build(&d.path().join("a.img"));
        let (b, c) = (d.path().join("b.img"), d.path().join("c.img"));
        let mut o = options(&i, &a, &b, board);
        o.wifi = wifi();
        o.wifi_country = Some("FR".into());
        o.ssh_authorized_key = Some(d.path().join("id.pub"));
        write(&o).unwrap();
        o.image = b.clone();
        o.output = c.clone();
        write(&o).unwrap();
        let (bb, cc) = (std::fs::read(&b).unwrap(), std::fs::read(&c).unwrap());
        assert_eq!(bb.len(), cc.len());
        assert!(bb == cc, "{board}: B and C differ");
        let a_bytes = std::fs::read(&a).unwrap();
        assert!(a_bytes != bb, "{board}: the write changed nothing");
    }
}

#[test]
fn a_rewrite_replaces_the_earlier_payload() {
    let d = tempfile::tempdir().unwrap();
    let i = inputs(d.path(), Userland::Armhf);
    let a = ImageSpec::bookworm(Userland::Armhf).build(&d.path().join("a.img"));
    let b = d.path().join("b.img");
    let mut o = options(&i, &a, &b, "rpi-zero");
    o.wifi = wifi();
    o.wifi_country = Some("DE".into());
    write(&o).unwrap();
    o.image = b.clone();
    o.wifi = None;
    o.wifi_country = Some("NL".into());
    o.server_url = "https://other.example".into();
    write(&o).unwrap();
    let report = flotta_image::inspect(&b).unwrap();
    assert!(
        !report.payload.iter().any(|f| f.contains("wifi")),
        "{:?}",
        report.payload
    );
    assert!(flotta_image::cat(&b, "flotta-wifi.nmconnection").is_err());
    assert_eq!(report.payload.len(), 7, "{:?}", report.payload);
    assert!(cat(&b, "flotta-agent.toml").contains("https://other.example"));
    let cmdline = cat(&b, "cmdline.txt");
    assert_eq!(cmdline.matches("systemd.run=").count(), 1, "{cmdline}");
    assert_eq!(cmdline.matches("regdom").count(), 1, "{cmdline}");
    assert!(cmdline.contains("regdom=NL"), "{cmdline}");
}

#[test]
fn in_place_and_xz_input_give_the_same_image() {
    let d = tempfile::tempdir().unwrap();
    let i = inputs(d.path(), Userland::Arm64);
    let a = ImageSpec::bookworm(Userland::Arm64).build(&d.path().join("a.img"));
    // xz of the pristine image, streamed through the encoder.
    let xz = d.path().join("a.img.xz");
    {
        let out = std::fs::File::create(&xz).unwrap();
        let mut w = lzma_rust2::XzWriter::new(out, lzma_rust2::XzOptions::with_preset(1)).unwrap();
        std::io::copy(&mut std::fs::File::open(&a).unwrap(), &mut w).unwrap();
        w.finish().unwrap();
    }
    let b = d.path().join("b.img");
    write(&options(&i, &a, &b, "rpi-5")).unwrap();
    let from_xz = d.path().join("from-xz.img");
    write(&options(&i, &xz, &from_xz, "rpi-5")).unwrap();
    assert!(
        std::fs::read(&b).unwrap() == std::fs::read(&from_xz).unwrap(),
        "xz input differs"
    );
    assert!(flotta_image::inspect(&xz).unwrap().payload.is_empty());
    write(&options(&i, &a, &a, "rpi-5")).unwrap();
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "in place differs"
    );
    write(&options(&i, &a, &a, "rpi-5")).unwrap();
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "second in-place write differs"
    );
    assert!(stray_files(d.path()).is_empty());
}

/// Write `image` for `board` and expect a refusal containing `needle`, with no output and no
/// temporary file left.
fn refused(dir: &Path, image: &Path, board: &str, agent: Userland, needle: &str) -> ImageError {
    let i = inputs(dir, agent);
    let out = dir.join("out.img");
    let err = write(&options(&i, image, &out, board)).unwrap_err();
    assert!(
        err.to_string().contains(needle),
        "wanted {needle:?} in: {err}"
    );
    assert!(!out.exists(), "{needle}: an output was left");
    assert!(
        stray_files(dir).is_empty(),
        "{needle}: temp left: {:?}",
        stray_files(dir)
    );
    err
}

#[test]
fn unrecognised_images_are_refused_by_what_was_looked_for() {
    let d = tempfile::tempdir().unwrap();
    let zeros = d.path().join("zeros.img");
    std::fs::write(&zeros, vec![0u8; 1 << 20]).unwrap();
    refused(
        d.path(),
        &zeros,
        "rpi-4",
        Userland::Arm64,
        "no MBR/GPT partition table",
    );
    let linux_p1 = ImageSpec {
        p1_type: 0x83,
        ..ImageSpec::bookworm(Userland::Arm64)
    }
    .build(&d.path().join("p1.img"));
    refused(
        d.path(),
        &linux_p1,
        "rpi-4",
        Userland::Arm64,
        "partition 1 is not FAT",
    );
    let unformatted = ImageSpec {
        format_p1: false,
        ..ImageSpec::bookworm(Userland::Arm64)
    }
    .build(&d.path().join("u.img"));
    refused(
        d.path(),
        &unformatted,
        "rpi-4",
        Userland::Arm64,
        "partition 1 is not FAT",
    );
    let no_cmdline = ImageSpec {
        cmdline: None,
        ..ImageSpec::bookworm(Userland::Arm64)
    }
    .build(&d.path().join("n.img"));
    refused(
        d.path(),
        &no_cmdline,
        "rpi-4",
        Userland::Arm64,
        "no cmdline.txt and config.txt",
    );
    let foreign = ImageSpec {
        extra: vec![("firstrun.sh".into(), b"#!/bin/bash\nset +e\n".to_vec())],
        ..ImageSpec::bookworm(Userland::Arm64)
    }
    .build(&d.path().join("f.img"));
    refused(
        d.path(),
        &foreign,
        "rpi-4",
        Userland::Arm64,
        "firstrun.sh that flotta-image did not write",
    );
}

#[test]
fn an_older_writers_flotta_directory_with_foreign_entries_is_refused_not_deleted() {
    let d = tempfile::tempdir().unwrap();
    let a = ImageSpec::bookworm(Userland::Arm64).build(&d.path().join("a.img"));
    common::add_legacy_dir(&a, &["install.sh", "notes.txt"]);
    let before = std::fs::read(&a).unwrap();
    refused(
        d.path(),
        &a,
        "rpi-4",
        Userland::Arm64,
        "a flotta/ directory with entries an older flotta-image did not write (notes.txt)",
    );
    assert!(std::fs::read(&a).unwrap() == before);
}

#[test]
fn board_image_and_binary_mismatches_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let img64 = ImageSpec::bookworm(Userland::Arm64).build(&d.path().join("64.img"));
    let err = refused(
        d.path(),
        &img64,
        "rpi-zero",
        Userland::Armhf,
        "board rpi-zero needs a 32-bit (armhf)",
    );
    assert!(
        err.to_string().contains("this image is 64-bit (arm64)"),
        "{err}"
    );
    let img32 = ImageSpec::bookworm(Userland::Armhf).build(&d.path().join("32.img"));
    refused(
        d.path(),
        &img32,
        "rpi-3",
        Userland::Arm64,
        "board rpi-3 needs a 64-bit (arm64)",
    );
    let err = refused(
        d.path(),
        &img32,
        "rpi-zero",
        Userland::Arm64,
        "board rpi-zero",
    );
    assert!(err.to_string().contains("64-bit AArch64 ELF"), "{err}");
    refused(
        d.path(),
        &img32,
        "x86_64",
        Userland::Armhf,
        "no Raspberry Pi OS image",
    );
}

#[test]
fn an_error_mid_write_leaves_no_output_no_temp_and_the_input_untouched() {
    let d = tempfile::tempdir().unwrap();
    let mut i = inputs(d.path(), Userland::Armhf);
    // An agent larger than the 40 MiB boot partition: the FAT fills up half-way through.
    let big = d.path().join("big-agent");
    std::fs::write(&big, common::agent_bytes(Userland::Armhf, 42 << 20)).unwrap();
    i.agent = big;
    let a = ImageSpec::bookworm(Userland::Armhf).build(&d.path().join("a.img"));
    let before = std::fs::read(&a).unwrap();
    let out = d.path().join("out.img");
    let err = write(&options(&i, &a, &out, "rpi-zero")).unwrap_err();
    assert!(matches!(err, ImageError::BootFs(_)), "{err}");
    assert!(!out.exists());
    let err = write(&options(&i, &a, &a, "rpi-zero")).unwrap_err();
    assert!(err.to_string().contains("boot partition"), "{err}");
    assert!(
        std::fs::read(&a).unwrap() == before,
        "in-place failure changed the input"
    );
    assert!(
        stray_files(d.path()).is_empty(),
        "{:?}",
        stray_files(d.path())
    );
}

#[test]
fn bad_agent_config_fragments_fail_before_the_image_is_touched() {
    let d = tempfile::tempdir().unwrap();
    let i = inputs(d.path(), Userland::Arm64);
    let a = ImageSpec::trixie(Userland::Arm64).build(&d.path().join("a.img"));
    let frag = d.path().join("frag.toml");
    std::fs::write(&frag, "[link]\nupload_interval_second = 60\n").unwrap();
    let out = d.path().join("out.img");
    let mut o = options(&i, &a, &out, "rpi-4");
    o.agent_config = Some(frag.clone());
    let err = write(&o).unwrap_err().to_string();
    assert!(err.contains("upload_interval_second"), "{err}");
    std::fs::write(&frag, "[link]\nupload_interval_seconds = 60\n").unwrap();
    write(&o).unwrap();
    assert!(cat(&out, "flotta-agent.toml").contains("upload_interval_seconds = 60"));
}

#[test]
fn a_provisioned_write_carries_identity_ca_and_frame_keys_and_no_registration() {
    let d = tempfile::tempdir().unwrap();
    let i = inputs(d.path(), Userland::Armhf);
    let p = common::provision(d.path(), "prov", "sensor-0042");
    let a = ImageSpec::bookworm(Userland::Armhf).build(&d.path().join("a.img"));
    let (b, c) = (d.path().join("b.img"), d.path().join("c.img"));
    let frag = d.path().join("frag.toml");
    std::fs::write(
        &frag,
        "links = [\"udp\"]\n[udp]\nserver_addr = \"frames.example:5684\"\n",
    )
    .unwrap();
    let mut o = common::provisioned_options(&i, &p, "sensor-0042", &a, &b, "rpi-zero");
    o.link = Some("nb-iot".into());
    o.agent_config = Some(frag);
    let w = write(&o).unwrap();
    assert!(
        w.files.contains(&"flotta-device.pem".to_owned())
            && !w.files.iter().any(|f| f.contains("register")),
        "{:?}",
        w.files
    );
    assert_eq!(cat(&b, "flotta-device.pem"), p.identity);
    assert_eq!(cat(&b, "flotta-frame-context.json"), p.frame_context);
    assert_eq!(cat(&b, "flotta-ca.pem"), p.ca);
    assert!(flotta_image::cat(&b, "flotta-register.key").is_err());
    let toml = cat(&b, "flotta-agent.toml");
    assert!(!toml.contains("registration"), "{toml}");
    let cfg = flotta_image::agent_config::validate(&toml).unwrap();
    assert_eq!(cfg.device_id, "sensor-0042");
    assert_eq!(cfg.link_profile, "nb-iot");
    assert_eq!(cfg.udp.server_addr, "frames.example:5684");
    assert!(cat(&b, "flotta-install.sh").contains("\nFLOTTA_PROVISIONED=1\n"));
    let report = flotta_image::inspect(&b).unwrap().to_string();
    assert!(
        report.contains("flotta payload: flotta-agent, flotta-agent.service, flotta-agent.toml, flotta-ca.pem, flotta-device.pem, flotta-frame-context.json, flotta-install.sh\n"),
        "{report}"
    );
    // Idempotent, and --ca naming the same CA (other PEM text, same certificate) changes nothing.
    let same_ca = d.path().join("same-ca.pem");
    std::fs::write(&same_ca, p.ca.replace('\n', "\r\n")).unwrap();
    o.ca = Some(same_ca);
    o.image = b.clone();
    o.output = c.clone();
    write(&o).unwrap();
    assert!(
        std::fs::read(&b).unwrap() == std::fs::read(&c).unwrap(),
        "B and C differ"
    );
    // Back to a registration write: the provisioned files go.
    let back = options(&i, &c, &c, "rpi-zero");
    write(&back).unwrap();
    assert!(flotta_image::cat(&c, "flotta-device.pem").is_err());
    assert!(flotta_image::cat(&c, "flotta-frame-context.json").is_err());
    assert!(cat(&c, "flotta-install.sh").contains("\nFLOTTA_PROVISIONED=0\n"));
    assert!(stray_files(d.path()).is_empty());
}

/// A provisioned write of `o` is refused with `needle` in the message; no output, no temp file.
fn provisioned_refused(dir: &Path, o: &flotta_image::WriteOptions, needle: &str) {
    let err = write(o).unwrap_err().to_string();
    assert!(err.contains(needle), "wanted {needle:?} in: {err}");
    assert!(!o.output.exists(), "{needle}: an output was left");
    assert!(stray_files(dir).is_empty(), "{needle}: temp left");
}

#[test]
fn bad_provisioning_directories_are_refused_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let i = inputs(d.path(), Userland::Arm64);
    let p = common::provision(d.path(), "prov", "gw-7");
    let a = ImageSpec::trixie(Userland::Arm64).build(&d.path().join("a.img"));
    let out = d.path().join("out.img");
    let good = common::provisioned_options(&i, &p, "gw-7", &a, &out, "rpi-4");
    let dir = p.dir.display().to_string();

    let mut o = good.clone();
    o.device_id = None;
    provisioned_refused(d.path(), &o, "needs --device-id");
    o.device_id = Some("gw-8".into());
    provisioned_refused(d.path(), &o, "--device-id \"gw-8\" is not the device");
    let err = write(&o).unwrap_err().to_string();
    assert!(
        err.contains("names \"gw-7\"") && err.contains("identity/device.pem"),
        "{err}"
    );

    // --ca other than DIR/ca.pem (the test inputs' placeholder CA).
    let mut o = good.clone();
    o.ca = Some(d.path().join("ca.pem"));
    provisioned_refused(d.path(), &o, "is not the CA of the provisioned device");

    // Damaged frame keys: the agent's loader names the file.
    let fc = p.dir.join("frame/context.json");
    std::fs::write(&fc, p.frame_context.replace("cafe0001", "cafe01")).unwrap();
    provisioned_refused(
        d.path(),
        &good,
        &format!("{dir}/frame/context.json is invalid"),
    );
    std::fs::write(&fc, "{ not json").unwrap();
    provisioned_refused(d.path(), &good, "frame/context.json is invalid");
    std::fs::remove_file(&fc).unwrap();
    provisioned_refused(d.path(), &good, "reading");
    std::fs::write(&fc, &p.frame_context).unwrap();

    // Identity and CA of two different provisionings.
    let other = common::provision(d.path(), "other", "gw-7");
    let ca = p.dir.join("ca.pem");
    std::fs::write(&ca, &other.ca).unwrap();
    provisioned_refused(d.path(), &good, "is not signed by");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    provisioned_refused(d.path(), &good, &format!("{dir}/ca.pem is not PEM"));
    std::fs::write(&ca, &p.ca).unwrap();

    // A key that is not the certificate's, and a damaged certificate.
    let id = p.dir.join("identity/device.pem");
    let (other_key, _) = other
        .identity
        .split_at(other.identity.find("-----BEGIN CERTIFICATE").unwrap());
    let (_, cert) = p
        .identity
        .split_at(p.identity.find("-----BEGIN CERTIFICATE").unwrap());
    std::fs::write(&id, format!("{other_key}{cert}")).unwrap();
    provisioned_refused(d.path(), &good, "the private key is not the certificate's");
    std::fs::write(&id, cert).unwrap();
    provisioned_refused(
        d.path(),
        &good,
        "identity/device.pem must hold the private key",
    );
    std::fs::write(
        &id,
        p.identity.replace(
            "-----BEGIN CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\nAAAA",
        ),
    )
    .unwrap();
    provisioned_refused(d.path(), &good, "device.pem would be refused by the agent");
    std::fs::write(&id, &p.identity).unwrap();

    // Not a directory; and an --agent-config that moves the data directory.
    let mut o = good.clone();
    o.enrolment = flotta_image::Enrolment::Provisioned(d.path().join("nope"));
    provisioned_refused(d.path(), &o, "is not a directory");
    let frag = d.path().join("frag.toml");
    std::fs::write(&frag, "data_dir = \"/srv/flotta\"\n").unwrap();
    let mut o = good.clone();
    o.agent_config = Some(frag);
    provisioned_refused(d.path(), &o, "data_dir");

    // Everything restored: it writes.
    write(&good).unwrap();
    assert_eq!(cat(&out, "flotta-device.pem"), p.identity);
}

#[test]
fn a_registration_write_needs_the_ca() {
    let d = tempfile::tempdir().unwrap();
    let i = inputs(d.path(), Userland::Arm64);
    let a = ImageSpec::trixie(Userland::Arm64).build(&d.path().join("a.img"));
    let mut o = options(&i, &a, &d.path().join("out.img"), "rpi-4");
    o.ca = None;
    provisioned_refused(d.path(), &o, "--ca is needed with --registration-cert");
}
