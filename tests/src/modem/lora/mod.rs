//! Simulated LoRaWAN modems on pseudo-terminals and the network behind
//! them ([`network`]): a RAK3172 with RUI3 (`rak3172.rs`) and an RN2483
//! (`rn2483.rs`), sharing the pty thread, the knobs and the class A MAC
//! (`sim.rs`, [`SimModem`]).

mod mac;
pub mod network;
mod rak3172;
mod rn2483;
mod sim;

pub use mac::MAX_PAYLOAD;
pub use network::{LoraDownlink, LoraNetwork, LoraUplink, MemoryNetwork};
pub use sim::{Dialect, LoraModemConfig, LoraModemStats, OnAir, SimModem};
