//! Serial modems simulated on pseudo-terminals: the agent opens the pty's
//! slave path exactly as it opens a real `/dev/ttyUSB0`, and the simulator
//! answers on the master side, byte for byte, on its own thread (stopped
//! and joined on drop).
//!
//! - [`sbd`]: a RockBLOCK 9603 (Iridium SBD) whose satellite side is a
//!   [`sbd::Gateway`]: [`sbd::MemoryGateway`] for tests, or a Rock7 network
//!   simulator that posts MO messages to the server's webhook.
//! - [`lora`]: LoRaWAN modems (RAK3172 RUI3, RN2483) whose radio side is a
//!   [`lora::LoraNetwork`].

pub mod lora;
pub mod sbd;
