//! Board profiles, embedded from the repository's `boards/*.toml` so that a user needs only
//! the `flotta-image` binary, never the source tree. `xtask` parses the same files strictly
//! (`xtask/src/boards.rs`); this copy reads the keys the image writer needs.

use serde::Deserialize;

use crate::error::{ImageError, Result};

/// The Raspberry Pi OS userland a board runs (`image_userland` in its profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Userland {
    /// 32-bit Raspberry Pi OS (ARMv6/v7 hard-float, EABI5).
    Armhf,
    /// 64-bit Raspberry Pi OS (AArch64).
    Arm64,
}

impl Userland {
    /// The name Raspberry Pi OS uses in its image file names.
    pub fn name(self) -> &'static str {
        match self {
            Userland::Armhf => "armhf",
            Userland::Arm64 => "arm64",
        }
    }

    /// What the agent binary must be for this userland, for messages.
    pub fn binary_kind(self) -> &'static str {
        match self {
            Userland::Armhf => "a 32-bit ARM EABI5 hard-float ELF",
            Userland::Arm64 => "a 64-bit AArch64 ELF",
        }
    }
}

impl std::fmt::Display for Userland {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One board profile.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// Short name (the file stem).
    pub name: String,
    /// Models covered and SoC.
    pub description: String,
    /// Rust target triple of the agent binary.
    pub target: String,
    /// LLVM target CPU.
    pub target_cpu: String,
    /// qemu-user CPU model.
    pub qemu_cpu: String,
    /// Raspberry Pi OS userland; absent for boards without a Raspberry Pi OS image.
    pub image_userland: Option<Userland>,
}

/// The embedded profiles: (file stem, contents).
pub const BOARD_FILES: &[(&str, &str)] = &[
    ("rpi-3", include_str!("../../boards/rpi-3.toml")),
    ("rpi-4", include_str!("../../boards/rpi-4.toml")),
    ("rpi-5", include_str!("../../boards/rpi-5.toml")),
    ("rpi-zero", include_str!("../../boards/rpi-zero.toml")),
    ("rpi-zero-2w", include_str!("../../boards/rpi-zero-2w.toml")),
    ("x86_64", include_str!("../../boards/x86_64.toml")),
];

/// The names of all embedded boards, comma-separated.
pub fn known_boards() -> String {
    BOARD_FILES
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Look up a board by name.
pub fn find(name: &str) -> Result<Board> {
    let Some((stem, text)) = BOARD_FILES.iter().find(|(n, _)| *n == name) else {
        return Err(ImageError::Board(format!(
            "unknown board {name:?}; known boards: {}",
            known_boards()
        )));
    };
    let board: Board = toml::from_str(text)
        .map_err(|e| ImageError::Board(format!("embedded profile {stem}.toml: {e}")))?;
    Ok(board)
}

/// Look up a board that can take a Raspberry Pi OS image, and its userland.
pub fn find_pi(name: &str) -> Result<(Board, Userland)> {
    let board = find(name)?;
    let Some(userland) = board.image_userland else {
        return Err(ImageError::Board(format!(
            "board {name:?} ({}) has no Raspberry Pi OS image (no `image_userland` in its \
             profile); flotta-image writes Raspberry Pi OS images only",
            board.description
        )));
    };
    Ok((board, userland))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_board_parses_and_pi_boards_have_a_userland() {
        for (name, _) in BOARD_FILES {
            let b = find(name).unwrap();
            assert_eq!(&b.name, name);
            assert_eq!(
                b.image_userland.is_some(),
                name.starts_with("rpi-"),
                "{name}"
            );
        }
        assert_eq!(find_pi("rpi-zero").unwrap().1, Userland::Armhf);
        for n in ["rpi-3", "rpi-4", "rpi-5", "rpi-zero-2w"] {
            assert_eq!(find_pi(n).unwrap().1, Userland::Arm64, "{n}");
        }
    }

    #[test]
    fn every_repository_board_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../boards");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                name.strip_suffix(".toml").map(str::to_owned)
            })
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = BOARD_FILES.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, embedded, "add new boards/*.toml to BOARD_FILES");
    }

    #[test]
    fn x86_64_and_unknown_boards_are_refused_by_name() {
        let err = find_pi("x86_64").unwrap_err().to_string();
        assert!(
            err.contains("x86_64") && err.contains("no Raspberry Pi OS image"),
            "{err}"
        );
        let err = find_pi("rpi-9").unwrap_err().to_string();
        assert!(
            err.contains("rpi-9") && err.contains("rpi-zero-2w"),
            "{err}"
        );
    }
}
