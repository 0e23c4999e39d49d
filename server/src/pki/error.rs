//! Errors of the certificate authority and of client certificate parsing.

use std::path::PathBuf;

/// Anything that can go wrong creating, loading or using the CA.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading or writing a key or certificate file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A key or certificate file exists but does not hold what it should.
    #[error("{}: not a valid {what}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// "certificate", "private key", ...
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// rcgen refused to build or sign a certificate.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A device's certificate signing request is unusable.
    #[error("certificate signing request refused: {0}")]
    InvalidCsr(String),
    /// A certificate presented by a client could not be parsed.
    #[error("certificate could not be parsed: {0}")]
    BadCertificate(String),
    /// A requested validity period is empty or out of range.
    #[error("invalid validity period: {0}")]
    Validity(String),
}

impl PkiError {
    /// Whether trying the same operation again may succeed (a transient I/O
    /// failure) rather than fail the same way (bad input, bad files).
    pub fn is_retriable(&self) -> bool {
        matches!(self, PkiError::Io { source, .. } if !matches!(source.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied))
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> PkiError {
        let path = path.into();
        move |source| PkiError::Io { path, source }
    }
}
