//! The frame module must build without `std` and `alloc` (a microcontroller
//! node could speak it). The real proof is a build for a bare-metal target:
//!
//! ```text
//! cargo build -p flotta-proto --no-default-features --features frame
//! cargo +nightly build -Zbuild-std=core --target thumbv7em-none-eabihf \
//!     -p flotta-proto --no-default-features --features frame
//! ```
//!
//! This test is the cheap guard that runs on every `cargo test`: no file of
//! `src/frame/` names `std`, `alloc` or an allocating type or macro outside
//! its `#[cfg(test)]` module.

use std::fs;
use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "std::",
    "alloc::",
    "extern crate",
    "String",
    "Vec<",
    "Box<",
    "format!",
    "vec!",
    "to_vec",
    "to_string",
    "println!",
];

#[test]
fn frame_sources_use_only_core() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/frame");
    let mut checked = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        // Unit tests may use std; they run on the host only.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            let line = line.trim_start();
            if line.starts_with("//") {
                continue;
            }
            for word in FORBIDDEN {
                // heapless::Vec is fine: it is not alloc's Vec.
                let hits =
                    line.matches(word).count() - line.matches(&format!("heapless::{word}")).count();
                assert!(
                    hits == 0,
                    "{}:{}: `{word}` in the no_std frame module: {line}",
                    path.display(),
                    n + 1
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 9, "only {checked} files checked");
}
