//! LoRaWAN through a network server (ChirpStack v4, The Things Stack v3),
//! server side.
//!
//! A LoRaWAN device sends sealed frames (`proto/FRAMES.md`) without key id
//! as the FRMPayload of unconfirmed uplinks on one FPort: the network
//! identifies the device by DevEUI, bound to a device in the store
//! ([`crate::links`], kind `lorawan`). The network server posts each
//! uplink to our webhook listener; the frame is stored exactly as over UDP
//! (link `lorawan`) and the sealed answer goes back as a downlink that
//! replaces whatever the network server still holds for the device, for
//! its next class A receive windows. The network server sees the sealed
//! frame, never its plaintext.
//!
//! - [`uplink`]: [`LoraUplink`], what both decoders produce;
//! - [`chirpstack`]: `POST /chirpstack?event=up` (HTTP integration, JSON);
//! - [`tts`]: `POST /tts/uplink` (webhook, uplink messages);
//! - [`auth`]: the shared-secret header both check in constant time;
//! - [`ingest`]: FPort and binding checks, the frame path, the answer;
//! - [`queue`]: the answers waiting, newest per device;
//! - [`downlink`]: the worker delivering them to the network servers;
//! - [`airtime`]: time on air from data rate and size (regions).

pub mod airtime;
pub mod auth;
pub mod chirpstack;
pub mod downlink;
pub mod ingest;
pub mod queue;
pub mod tts;
pub mod uplink;

pub use airtime::{Region, uplink_airtime_us};
pub use auth::SecretHeader;
pub use chirpstack::ChirpstackWebhook;
pub use downlink::{DownlinkQueue, DownlinkSettings, DownlinkTarget, DownlinkWorker, Network};
pub use ingest::LoraIngest;
pub use tts::TtsWebhook;
pub use uplink::{LoraUplink, UplinkError};
