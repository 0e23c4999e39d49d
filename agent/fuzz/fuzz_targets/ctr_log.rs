//! Fuzz the decoder of podman's `k8s-file` container logs (`ctr.log`,
//! written by conmon for the container: any bytes a crashed or malicious
//! writer left): never panic; a decoded timestamp is UTC and stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    flotta_agent::workloads::ctr_log::fuzz_line(data);
});
