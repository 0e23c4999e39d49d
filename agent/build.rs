//! Build script: the build-time floor of the agent's clock (`agent_time/`).
//!
//! `FLOTTA_BUILD_EPOCH_SECS` is `SOURCE_DATE_EPOCH` when set (reproducible
//! builds), else the time this script ran. A device's clock is never
//! earlier than the binary it runs, so agent time never starts below it.

use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=build.rs");
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=FLOTTA_BUILD_EPOCH_SECS={secs}");
}
