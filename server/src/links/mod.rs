//! Links that identify a device by a network address instead of a frame
//! key id (Iridium SBD by IMEI, LoRaWAN by DevEUI): the address
//! kinds, their validation, and the binding of an address to a device that
//! the store keeps (`link_bindings`, schema 5).

mod address;

pub use address::{DEV_EUI_HEX_DIGITS, IMEI_DIGITS, InvalidAddress, LinkAddress, LinkKind};
