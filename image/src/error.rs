//! The one error type of the library: every refusal names what was looked for and what was
//! found, so a person flashing a card can act on it without reading the source.

use std::path::PathBuf;

/// Why an image could not be inspected or written.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Reading or writing a file failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done (`reading`, `writing`, ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The image is not a Raspberry Pi OS image this tool understands.
    #[error("{0}")]
    Unrecognised(String),
    /// The board name is not one of `boards/*.toml`, or cannot take a Raspberry Pi image.
    #[error("{0}")]
    Board(String),
    /// Board, image and agent binary do not fit together.
    #[error("{0}")]
    Mismatch(String),
    /// An argument or input file is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The final agent configuration is refused by the agent's own parser.
    #[error("the agent configuration would be refused by the agent: {0}")]
    AgentConfig(String),
    /// The boot (FAT) partition could not be read or changed.
    #[error("boot partition: {0}")]
    BootFs(std::io::Error),
}

impl ImageError {
    /// An [`ImageError::Io`] for `path`.
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ImageError::Io { what, path, source }
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;
