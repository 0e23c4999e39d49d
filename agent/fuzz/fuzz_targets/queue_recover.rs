//! Fuzz the queue's recovery path: any bytes found in a segment file must be
//! recovered from without a panic, and the queue must go on working.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).expect("tempdir");
    let _ = flotta_agent::queue::fuzz_recover(dir.path(), data);
});
