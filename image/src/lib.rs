//! flotta-image: writes the flotta agent, its configuration, certificates and a first-boot
//! installer into a Raspberry Pi OS image, so that a board flashed with it boots into a
//! registered device. Pure Rust on the image file: no root, no loop mounts, no external tools.
//!
//! `write` is the whole job; `inspect` and `cat` look at an image. Each concept is one
//! module: the partition table, the partition window, the FAT boot partition, image
//! detection, cmdline.txt, cloud-init user-data, the agent config, Wi-Fi, the scripts.
#![forbid(unsafe_code)]

pub mod agent_config;
pub mod board;
pub mod bootfs;
pub mod cloud_init;
pub mod cmdline;
pub mod detect;
pub mod elf;
pub mod error;
pub mod inspect;
pub mod partition;
pub mod provisioned;
pub mod scripts;
pub mod source;
pub mod wifi;
pub mod window;
pub mod write;

pub use error::{ImageError, Result};
pub use inspect::{Report, cat, inspect};
pub use write::{Enrolment, WriteOptions, Written, write};
