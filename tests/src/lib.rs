//! Harness for flotta's end-to-end tests (real server, real agents, emulated links).
//!
//! [`link`] is a user-space flaky-link emulator: a loopback TCP proxy that adds
//! latency, jitter, bandwidth caps, random drops and scripted blackouts, and
//! its UDP counterpart (a NAT with expiring bindings; per-direction loss,
//! duplication, reordering, latency and MTU).
//!
//! [`modem`] simulates serial modems on pseudo-terminals: a RockBLOCK 9603
//! (Iridium SBD) behind a pluggable gateway, and LoRaWAN modems behind a
//! pluggable network.
//!
//! [`lorawan`] simulates LoRaWAN network servers (ChirpStack v4, The Things
//! Stack v3) that post uplinks to the server's webhooks and serve the
//! downlink APIs it calls.
//!
//! [`podman`] is a private podman storage with a locally built busybox
//! image, for the workload tests; [`registry`] a registry that only checks
//! the credentials podman sends; [`nspawn`] a Debian 13 machine booted with
//! systemd-nspawn (systemd and podman 5 with Quadlet).
#![forbid(unsafe_code)]

pub mod browser;
pub mod kube;
pub mod link;
pub mod lorawan;
pub mod modem;
pub mod nspawn;
pub mod podman;
pub mod procs;
pub mod procstat;
pub mod registry;
pub mod sim_time;
pub mod wait;
