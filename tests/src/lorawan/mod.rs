//! LoRaWAN network servers, simulated for end-to-end tests: each is a
//! [`crate::modem::lora::network::LoraNetwork`] (the radio side of the
//! simulated modems) that posts uplinks to the flotta server's webhooks as
//! the real service does and serves the downlink API the server calls.
//!
//! - [`chirpstack`]: ChirpStack v4 (HTTP integration; device-queue API over
//!   gRPC, `chirpstack_api`'s tonic server, and over its REST gateway);
//! - [`tts`]: The Things Stack v3 (webhook, `down/push` and `down/replace`);
//! - [`http`]: the small HTTP server and client both use, seeded loss.

pub mod chirpstack;
pub mod http;
pub mod tts;

pub use chirpstack::{ChirpstackNetwork, ChirpstackOptions};
pub use tts::{TtsNetwork, TtsOptions};
