//! Sealed frames for narrow links (LoRaWAN, Iridium SBD, NB-IoT UDP): the
//! protocol core of issue 10, without any I/O, `std` or `alloc`.
//!
//! A frame is `header(1) | counter(3) | [key id(4)] | ciphertext | tag(8)`,
//! sealed with AES-CCM-16-64-128 under keys derived as OSCORE does
//! (RFC 8613 §3.2). `proto/FRAMES.md` is the specification; each file here is
//! one concept:
//!
//! - [`header`](Header): the cleartext header byte, counter and key id;
//! - `context`: OSCORE key derivation and the per-device [`FrameContext`];
//! - `nonce`: the RFC 8613 §5.2 nonce;
//! - `aead`: AES-CCM-16-64-128 itself;
//! - `seal`: [`seal`] and [`open`];
//! - `replay`: the receiver's [`ReplayWindow`];
//! - `counter`: the sender's crash-safe [`CounterReserver`];
//! - `ack`: the cumulative [`Ack`] of a downlink answer;
//! - `item`: what a plaintext says ([`UpItem`], [`DownItem`]), `varint`;
//! - `pack`: filling one frame from queued records ([`pack`]);
//! - `part`: down items too large for one answer, in parts
//!   ([`DownItem::Part`], [`PartProgress`], [`next_part`], [`inner_item`]);
//! - `error`: [`FrameError`].
//!
//! This module must stay `no_std`-clean: only `core`, the RustCrypto crates
//! and `heapless` (a unit test in `tests/frame_no_std.rs` scans these files,
//! and `cargo +nightly build -Zbuild-std=core --target thumbv7em-none-eabihf
//! -p flotta-proto --no-default-features --features frame` builds it for a
//! microcontroller).

mod ack;
mod aead;
mod context;
mod counter;
mod error;
mod header;
mod item;
mod nonce;
mod pack;
mod part;
mod replay;
mod seal;
mod varint;

pub use ack::Ack;
pub use aead::{KEY_LEN, NONCE_LEN, TAG_LEN, decrypt_detached, encrypt_detached};
pub use context::{
    DEVICE_ID_MAX, FrameContext, KeyId, MASTER_SECRET_LEN, OscoreKeys, derive_oscore,
};
pub use counter::{CounterReserver, CounterStore, ReserveError};
pub use error::FrameError;
pub use header::{FrameType, Header, VERSION};
pub use item::{
    ConfigEncoding, DownItem, ItemWriter, Items, RecordHead, SALT_MAX, UpItem, VERSION_MAX,
    WireItem, down_items, down_tag, fragment_room, up_items, up_tag,
};
pub use nonce::oscore_nonce;
pub use pack::{Cursor, MIN_FRAGMENT, PackRecord, Packed, pack};
pub use part::{PartProgress, inner_item, next_part, part_id, part_room};
pub use replay::{REPLAY_WINDOW, ReplayWindow, Verdict};
pub use seal::{Opened, open, open_in_place, seal, sealed_len};
pub use varint::{VARINT_MAX, read_varint, varint_len, write_varint};

/// Bytes of the counter (the OSCORE Partial IV) on the wire.
pub const COUNTER_LEN: usize = 3;
/// The largest counter a frame can carry (24 bits). A sender must rotate to a
/// new epoch before it needs a larger one.
pub const COUNTER_MAX: u32 = (1 << 24) - 1;
/// Bytes of the key id when the carrier does not identify the device (UDP).
pub const KEY_ID_LEN: usize = 4;
/// Overhead of a frame without key id: header 1 + counter 3 + tag 8.
pub const OVERHEAD: usize = 1 + COUNTER_LEN + TAG_LEN;
/// Overhead of a frame with key id: 16 bytes.
pub const OVERHEAD_WITH_KEY_ID: usize = OVERHEAD + KEY_ID_LEN;

/// Which way a frame travels. Each direction has its own key, counter and
/// replay window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Device to server: sealed with the device's sender key.
    Up,
    /// Server to device: sealed with the server's sender key.
    Down,
}

/// Which end of the link a [`FrameContext`] belongs to: decides which key
/// seals and which opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The device: seals [`Direction::Up`], opens [`Direction::Down`].
    Device,
    /// The server: seals [`Direction::Down`], opens [`Direction::Up`].
    Server,
}

impl Role {
    /// The direction this role seals.
    #[must_use]
    pub const fn sends(self) -> Direction {
        match self {
            Self::Device => Direction::Up,
            Self::Server => Direction::Down,
        }
    }

    /// The direction this role opens.
    #[must_use]
    pub const fn receives(self) -> Direction {
        match self {
            Self::Device => Direction::Down,
            Self::Server => Direction::Up,
        }
    }
}
