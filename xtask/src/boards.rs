//! Board profiles: one TOML file per board under `boards/`, parsed strictly.
//!
//! A board maps to one of the `dist` targets; `dist` smoke-runs each target under the qemu CPU
//! of every board that uses it, and `cargo xtask boards` prints them as a markdown table.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

use crate::targets;

/// One board profile (`boards/<name>.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Board {
    /// Short name; must equal the file stem.
    pub(crate) name: String,
    /// Human description: models covered, SoC.
    pub(crate) description: String,
    /// Rust target triple; must be one `cargo xtask dist` builds.
    pub(crate) target: String,
    /// The board's CPU as an LLVM `-C target-cpu` name (a hint unless the target pins it).
    pub(crate) target_cpu: String,
    /// The qemu-user `-cpu` model closest to the board.
    pub(crate) qemu_cpu: String,
    /// The Raspberry Pi OS userland `flotta-image` writes for this board (`armhf`, `arm64`);
    /// absent for boards with no Raspberry Pi OS image.
    #[serde(default)]
    pub(crate) image_userland: Option<String>,
}

/// Parse one profile; `stem` is the file name without `.toml`.
pub(crate) fn parse(stem: &str, text: &str) -> Result<Board> {
    let board: Board = toml::from_str(text)?;
    if board.name != stem {
        bail!(
            "`name = \"{}\"` does not match the file name `{stem}.toml`",
            board.name
        );
    }
    let Some(target) = targets::find(&board.target) else {
        bail!(
            "unknown target `{}`; dist builds: {}",
            board.target,
            targets::known_triples()
        );
    };
    if let Some(pinned) = target.target_cpu
        && pinned != board.target_cpu
    {
        bail!(
            "target `{}` is always built for `{pinned}`, but the board says `{}`",
            board.target,
            board.target_cpu
        );
    }
    if let Some(userland) = &board.image_userland {
        let arch = match userland.as_str() {
            "armhf" => "arm-",
            "arm64" => "aarch64-",
            other => bail!("`image_userland = \"{other}\"`: expected \"armhf\" or \"arm64\""),
        };
        if !board.target.starts_with(arch) {
            bail!(
                "`image_userland = \"{userland}\"` does not fit target `{}`",
                board.target
            );
        }
    }
    for (key, value) in [
        ("description", &board.description),
        ("qemu_cpu", &board.qemu_cpu),
    ] {
        if value.trim().is_empty() {
            bail!("`{key}` is empty");
        }
    }
    Ok(board)
}

/// Load every `*.toml` in `dir`, sorted by name.
pub(crate) fn load_dir(dir: &Path) -> Result<Vec<Board>> {
    let mut boards = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        boards.push(parse(&stem, &text).with_context(|| format!("in {}", path.display()))?);
    }
    if boards.is_empty() {
        bail!("no board profiles (*.toml) in {}", dir.display());
    }
    boards.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(boards)
}

/// The distinct qemu CPUs of the boards using `triple`, sorted.
pub(crate) fn qemu_cpus_for<'a>(boards: &'a [Board], triple: &str) -> Vec<&'a str> {
    let mut cpus: Vec<&str> = boards
        .iter()
        .filter(|b| b.target == triple)
        .map(|b| b.qemu_cpu.as_str())
        .collect();
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}

/// The markdown table for README: board, target triple, cpu, qemu cpu.
pub(crate) fn markdown_table(boards: &[Board]) -> String {
    let mut out = String::from("| board | target triple | cpu | qemu cpu |\n|---|---|---|---|\n");
    for b in boards {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} |",
            b.name, b.target, b.target_cpu, b.qemu_cpu
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZERO: &str = r#"
name = "rpi-zero"
description = "Raspberry Pi Zero"
target = "arm-unknown-linux-musleabihf"
target_cpu = "arm1176jzf-s"
qemu_cpu = "arm1176"
"#;

    #[test]
    fn a_valid_profile_parses() {
        let b = parse("rpi-zero", ZERO).unwrap();
        assert_eq!(b.target, "arm-unknown-linux-musleabihf");
        assert_eq!(b.qemu_cpu, "arm1176");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = parse("rpi-zero", &format!("{ZERO}ram_mb = 512\n")).unwrap_err();
        assert!(format!("{err:#}").contains("ram_mb"), "{err:#}");
    }

    #[test]
    fn image_userland_is_optional_and_must_fit_the_target() {
        assert_eq!(parse("rpi-zero", ZERO).unwrap().image_userland, None);
        let armhf = format!("{ZERO}image_userland = \"armhf\"\n");
        assert_eq!(
            parse("rpi-zero", &armhf).unwrap().image_userland.as_deref(),
            Some("armhf")
        );
        let err = parse("rpi-zero", &armhf.replace("\"armhf\"", "\"arm64\"")).unwrap_err();
        assert!(format!("{err:#}").contains("does not fit"), "{err:#}");
        let err = parse("rpi-zero", &armhf.replace("\"armhf\"", "\"i386\"")).unwrap_err();
        assert!(format!("{err:#}").contains("i386"), "{err:#}");
    }

    #[test]
    fn missing_keys_name_mismatch_and_unknown_targets_are_rejected() {
        assert!(parse("rpi-zero", &ZERO.replace("qemu_cpu = \"arm1176\"", "")).is_err());
        assert!(parse("rpi-one", ZERO).is_err());
        let err = parse("rpi-zero", &ZERO.replace("musleabihf", "gnueabihf")).unwrap_err();
        assert!(format!("{err:#}").contains("unknown target"));
        let err = parse("rpi-zero", &ZERO.replace("arm1176jzf-s", "cortex-a7")).unwrap_err();
        assert!(format!("{err:#}").contains("always built for"));
    }

    #[test]
    fn the_repository_boards_load_and_cover_every_target() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../boards");
        let boards = load_dir(&dir).unwrap();
        for name in [
            "rpi-zero",
            "rpi-zero-2w",
            "rpi-3",
            "rpi-4",
            "rpi-5",
            "x86_64",
        ] {
            assert!(
                boards.iter().any(|b| b.name == name),
                "missing board {name}"
            );
        }
        for t in targets::TARGETS {
            assert!(
                !qemu_cpus_for(&boards, t.triple).is_empty(),
                "no board for {}",
                t.triple
            );
        }
    }

    #[test]
    fn table_has_a_row_per_board_and_cpus_dedup() {
        let zero = parse("rpi-zero", ZERO).unwrap();
        let mut zero_w = zero.clone();
        zero_w.name = "rpi-zero-w".into();
        let boards = [zero, zero_w];
        assert_eq!(
            qemu_cpus_for(&boards, "arm-unknown-linux-musleabihf"),
            ["arm1176"]
        );
        let table = markdown_table(&boards);
        assert_eq!(table.lines().count(), 4);
        assert!(
            table.contains(
                "| rpi-zero-w | `arm-unknown-linux-musleabihf` | arm1176jzf-s | arm1176 |"
            )
        );
    }
}
