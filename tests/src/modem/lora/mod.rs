//! Simulated LoRaWAN modems on pseudo-terminals and the network behind
//! them ([`network`]).

pub mod network;

pub use network::{LoraDownlink, LoraNetwork, LoraUplink, MemoryNetwork};
