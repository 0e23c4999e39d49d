//! Errors of the device-facing operations, each mapping to one HTTP status.

use crate::frames::FramesError;
use crate::pki::PkiError;
use crate::store::StoreError;

/// Why a device operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The device is not enrolled (404).
    #[error("device \"{0}\" is not enrolled")]
    NotFound(String),
    /// The device is enrolled but waiting for approval (404, as in Flotta).
    #[error(
        "device \"{0}\" is enrolled but not approved yet; registration is possible once an operator approves it"
    )]
    NotApproved(String),
    /// The certificate is no longer accepted: superseded, revoked, or
    /// expired beyond the renewal grace (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The request is well-formed but its content is unusable (400).
    #[error("{0}")]
    BadRequest(String),
    /// The store failed (500, or 503 when retriable).
    #[error(transparent)]
    Store(StoreError),
    /// The CA failed (500).
    #[error(transparent)]
    Pki(PkiError),
    /// A blocking task panicked or was cancelled (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// Whether the same request may succeed later without changes.
    pub fn is_retriable(&self) -> bool {
        match self {
            ServiceError::Store(e) => e.is_retriable(),
            ServiceError::Pki(e) => e.is_retriable(),
            ServiceError::NotApproved(_) | ServiceError::Internal(_) => true,
            _ => false,
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::DeviceNotFound(id) => ServiceError::NotFound(id),
            StoreError::OutOfRange(m) => ServiceError::BadRequest(m),
            other => ServiceError::Store(other),
        }
    }
}

impl From<FramesError> for ServiceError {
    fn from(e: FramesError) -> Self {
        match e {
            FramesError::Store(e) => e.into(),
            FramesError::Random => ServiceError::Internal(e.to_string()),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

impl From<PkiError> for ServiceError {
    fn from(e: PkiError) -> Self {
        match e {
            PkiError::InvalidCsr(_) => ServiceError::BadRequest(e.to_string()),
            other => ServiceError::Pki(other),
        }
    }
}
