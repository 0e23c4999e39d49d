//! The boot partition of a written image passes `fsck.fat -n` (dosfstools): Raspberry Pi OS
//! checks it at boot (fstab pass 2) and "repairs" what it finds, so a FAT the driver wrote
//! wrongly breaks the first boot. Needs `fsck.fat`; without it the test fails, never skips.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ImageSpec, add_legacy_dir, inputs, options};
use flotta_image::board::Userland;
use flotta_image::wifi::Wifi;
use flotta_image::write;

/// `fsck.fat`, from PATH or the sbin directories PATH may leave out.
fn fsck_fat() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("fsck.fat"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("fsck.fat not found: install dosfstools (apt-get install dosfstools)")
        })
}

/// Words `fsck.fat -n` uses only about a damaged file system (the broken `flotta/` directory
/// fatfs wrote gave "Expected a valid '.' entry", "Start does point to root directory.
/// Deleting dir"; a FAT32 free count left unknown gives "Free cluster summary uninitialized").
const COMPLAINTS: [&str; 6] = [
    "Expected",
    "Deleting",
    "Free cluster summary",
    "Leaving filesystem unchanged",
    "Dirty bit",
    "FSCK",
];

/// The lines `fsck.fat -n -v -l` prints about a good file system that are not a complaint:
/// the version, "Checking …" progress (with -l "Checking file /LONG-NAME (SHORT)"), the boot sector dump ("Boot sector contents:" up to
/// "… sectors total") and the final "FILE: N files, U/T clusters". Anything else is a finding.
fn findings(text: &str) -> Vec<&str> {
    let mut in_dump = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("Boot sector contents:") {
            in_dump = true;
            continue;
        }
        if in_dump {
            in_dump = !line.trim_end().ends_with("sectors total");
            continue;
        }
        let summary = line.contains(" files, ") && line.ends_with(" clusters");
        if !(line.is_empty()
            || line.starts_with("fsck.fat ")
            || line.starts_with("Checking ")
            || summary)
        {
            found.push(line);
        }
    }
    found.extend(COMPLAINTS.iter().filter(|c| text.contains(**c)));
    found
}

/// Copy the boot partition of `image` to a file of its own and run `fsck.fat -n -v -l` on it:
/// its exit code and output.
fn fsck_boot(image: &Path) -> (Option<i32>, String) {
    let mut f = std::fs::File::open(image).unwrap();
    let len = f.metadata().unwrap().len();
    let table = flotta_image::partition::read_table(&mut f, len).unwrap();
    let boot = table.boot().unwrap().clone();
    let mut bytes = vec![0u8; usize::try_from(boot.len).unwrap()];
    f.seek(SeekFrom::Start(boot.start)).unwrap();
    f.read_exact(&mut bytes).unwrap();
    let part = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(part.path(), &bytes).unwrap();
    let out = Command::new(fsck_fat())
        .args(["-n", "-v", "-l"])
        .arg(part.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// Panic with fsck.fat's output unless the boot partition of `image` is clean.
fn assert_clean(image: &Path, what: &str) -> String {
    let (code, text) = fsck_boot(image);
    let found = findings(&text);
    assert!(
        code == Some(0) && found.is_empty(),
        "{what}: fsck.fat -n exited {code:?}, findings {found:?}:\n{text}"
    );
    // It looked at the files it was given.
    assert!(
        text.contains(" files, "),
        "{what}: no file count in:\n{text}"
    );
    text
}

#[test]
fn the_written_boot_partition_passes_fsck_for_both_flavours_rewrites_and_replacements() {
    for (spec, board, userland) in [
        (
            // fatfs's format leaves the free count unknown; the write fills it in.
            ImageSpec {
                free_count_known: false,
                ..ImageSpec::bookworm(Userland::Armhf)
            },
            "rpi-zero",
            Userland::Armhf,
        ),
        (ImageSpec::trixie(Userland::Arm64), "rpi-4", Userland::Arm64),
    ] {
        let d = tempfile::tempdir().unwrap();
        let i = inputs(d.path(), userland);
        let a = spec.build(&d.path().join("a.img"));
        if spec.free_count_known {
            assert_clean(&a, &format!("{board}: the synthetic input image"));
        }
        let b = d.path().join("b.img");
        let mut o = options(&i, &a, &b, board);
        o.hostname = Some("sensor-7".into());
        o.ssh_authorized_key = Some(d.path().join("id.pub"));
        o.wifi = Some(Wifi {
            ssid: "fieldnet".into(),
            psk: "correct horse battery".into(),
        });
        o.wifi_country = Some("DE".into());
        let w = write(&o).unwrap();
        let text = assert_clean(&b, &format!("{board}: first write"));
        // The long names (lower case, longer than 8.3) are read back from their LFN entries.
        assert_eq!(w.files.len(), 9, "{:?}", w.files);
        assert_long_names(&text, &w.files, board);
        o.image = b.clone();
        write(&o).unwrap();
        assert_clean(&b, &format!("{board}: second, idempotent write"));
        o.wifi = None;
        o.ssh_authorized_key = None;
        o.server_url = "https://other.example".into();
        write(&o).unwrap();
        assert_clean(&b, &format!("{board}: rewrite without Wi-Fi and ssh key"));
        let report = flotta_image::inspect(&b).unwrap();
        assert_eq!(report.payload.len(), 7, "{:?}", report.payload);
        // A provisioned rewrite: the registration files go, identity and frame keys come.
        let p = common::provision(d.path(), "prov", "sensor-7");
        let mut o = common::provisioned_options(&i, &p, "sensor-7", &b, &b, board);
        o.wifi = Some(Wifi {
            ssid: "fieldnet".into(),
            psk: "correct horse battery".into(),
        });
        o.ssh_authorized_key = Some(d.path().join("id.pub"));
        let w = write(&o).unwrap();
        let text = assert_clean(&b, &format!("{board}: provisioned rewrite"));
        assert_eq!(w.files.len(), 9, "{:?}", w.files);
        assert_long_names(&text, &w.files, board);
        // Between them the two writes put every payload file on the partition.
        assert!(
            flotta_image::write::PAYLOAD_FILES
                .iter()
                .all(|f| w.files.iter().any(|n| n == f) || f.contains("register")),
            "{:?}",
            w.files
        );
    }
}

/// fsck.fat listed each of `names` by its long name.
fn assert_long_names(text: &str, names: &[String], board: &str) {
    for name in names {
        assert!(
            text.contains(&format!("Checking file /{name} (FLOTTA~")),
            "{board}: {name} not listed by its long name:\n{text}"
        );
    }
}

#[test]
fn a_write_over_an_older_writers_flotta_directory_removes_it_and_fsck_is_clean() {
    let d = tempfile::tempdir().unwrap();
    let i = inputs(d.path(), Userland::Armhf);
    let a = ImageSpec::bookworm(Userland::Armhf).build(&d.path().join("a.img"));
    add_legacy_dir(
        &a,
        &["install.sh", "agent.toml", "register.key", "flotta-agent"],
    );
    // The check sees what the emulated board's systemd-fsck saw.
    let (code, text) = fsck_boot(&a);
    assert!(
        code != Some(0) && text.contains("Expected a valid '.' entry"),
        "fsck.fat no longer finds fatfs's subdirectory broken ({code:?}):\n{text}"
    );
    assert!(!findings(&text).is_empty());
    let report = flotta_image::inspect(&a).unwrap();
    assert!(
        report.payload.contains(&"flotta/register.key".to_owned()),
        "{:?}",
        report.payload
    );
    let b = d.path().join("b.img");
    write(&options(&i, &a, &b, "rpi-zero")).unwrap();
    assert_clean(&b, "a write over an older writer's flotta/");
    let report = flotta_image::inspect(&b).unwrap();
    assert!(
        !report.payload.iter().any(|p| p.starts_with("flotta/")),
        "{:?}",
        report.payload
    );
    assert!(flotta_image::cat(&b, "flotta/register.key").is_err());
}
