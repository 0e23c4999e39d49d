//! Wire types shared by the flotta agent and the flotta server.
//!
//! This crate is deliberately tiny: the agent links it into a binary for a
//! 512 MiB ARMv6 board, so anything added here costs bytes on every device.
//!
//! Features:
//! - `std` (default): the Edge API models, our batch format and its zlib
//!   bodies (`serde`, `postcard`, `miniz_oxide`).
//! - `frame` (default): [`frame`], sealed frames for narrow links
//!   (AES-CCM-16-64-128, HKDF-SHA256, OSCORE-style keys). It needs neither
//!   `std` nor `alloc`: `--no-default-features --features frame` builds for a
//!   microcontroller (see `proto/FRAMES.md`).
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

#[cfg(feature = "std")]
pub mod batch;
#[cfg(feature = "std")]
pub mod compress;
#[cfg(feature = "frame")]
pub mod frame;
#[cfg(feature = "std")]
pub mod frame_keys;
#[cfg(feature = "std")]
pub mod payload;
#[cfg(feature = "std")]
pub mod record;
