//! The flotta device agent as a library: every piece of logic lives here so that
//! it can be tested with injected clocks and I/O; `main.rs` only wires it up.
#![forbid(unsafe_code)]

pub mod agent_time;
pub mod carrier;
pub mod client;
pub mod clock;
pub mod config;
pub mod desired;
pub mod emit;
pub mod frame_counter;
pub mod frame_keys;
pub mod frames;
pub mod fsutil;
pub mod governor;
pub mod heartbeat;
pub mod identity;
pub mod inbox;
pub mod journal;
pub mod link;
pub mod queue;
pub mod register;
pub mod renumber;
pub mod runtime;
pub mod schedule;
pub mod sd_notify;
pub mod selftest;
pub mod tls;
pub mod uplink;
pub mod window;
pub mod workloads;
