//! Fuzz the decoder of `podman pod ps --format json` output (another
//! program's bytes, any podman version): never panic, never a pod without
//! a name.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    flotta_agent::workloads::pods::fuzz_pod_ps(data);
});
