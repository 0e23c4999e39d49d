//! Tests of `cross/zig-cc-armv6`: which arguments reach zig, and in what order.
//!
//! `FLOTTA_PYTHON` points the wrapper at a stub "python" that prints its arguments one per
//! line, so the tests see exactly what zig would have been given, without running zig.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn wrapper() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cross/zig-cc-armv6")
}

/// Run the wrapper with `args`; return the arguments the stub python received.
fn forwarded(args: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let stub = dir.path().join("python");
    std::fs::write(&stub, "#!/bin/sh\nprintf '%s\\n' \"$@\"\n").expect("write stub");
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).expect("chmod stub");
    let out = Command::new(wrapper())
        .args(args)
        .env("FLOTTA_PYTHON", &stub)
        .output()
        .expect("run wrapper");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

const ZIG_PREFIX: [&str; 6] = [
    "-m",
    "ziglang",
    "cc",
    "-target",
    "arm-linux-musleabihf",
    "-mcpu=arm1176jzf_s",
];

#[test]
fn rust_target_triples_are_dropped_and_zig_target_is_fixed() {
    let got = forwarded(&["--target=arm-unknown-linux-musleabihf", "-O2", "-c", "a.c"]);
    let mut want: Vec<&str> = ZIG_PREFIX.to_vec();
    want.extend(["-O2", "-c", "a.c"]);
    assert_eq!(got, want);
}

#[test]
fn missing_library_dirs_are_dropped_existing_ones_kept_in_order() {
    let tmp = std::env::temp_dir();
    let tmp = tmp.to_str().unwrap();
    let got = forwarded(&[
        "-L",
        "/flotta/no/such/dir",
        "x.o",
        "-L",
        tmp,
        "-L/flotta/also/missing",
        &format!("-L{tmp}"),
        "arg with spaces",
        "-lunwind",
    ]);
    let tail: Vec<String> = got[ZIG_PREFIX.len()..].to_vec();
    let joined = format!("-L{tmp}");
    assert_eq!(
        tail,
        [
            "x.o",
            "-L",
            tmp,
            joined.as_str(),
            "arg with spaces",
            "-lunwind"
        ]
    );
}

#[test]
fn a_trailing_bare_dash_l_is_passed_through() {
    let got = forwarded(&["a.o", "-L"]);
    assert_eq!(got[ZIG_PREFIX.len()..], ["a.o", "-L"]);
}
