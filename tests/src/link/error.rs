//! Errors from configuring and starting an emulated link.

use std::io;

/// Why a link could not be configured or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// A profile, schedule, time scale or seed setting is out of range.
    #[error("invalid link setting `{field}`: {reason}")]
    Invalid {
        /// The setting, named as in the Rust API (e.g. `drop_per_second`).
        field: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// The loopback listener could not be bound or configured.
    #[error("cannot bind the link's listener on 127.0.0.1")]
    Bind(#[source] io::Error),
    /// The link's runtime or its thread could not be started.
    #[error("cannot start the link's runtime thread")]
    Runtime(#[source] io::Error),
}

impl LinkError {
    /// Whether trying again (with the same settings) may succeed: resource
    /// errors may be transient, invalid settings never are.
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Invalid { .. } => false,
            Self::Bind(_) | Self::Runtime(_) => true,
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_resource_errors_are_retriable() {
        assert!(!LinkError::invalid("mtu_bytes", "must be at least 1").is_retriable());
        assert!(LinkError::Bind(io::Error::from(io::ErrorKind::AddrInUse)).is_retriable());
        assert!(LinkError::Runtime(io::Error::other("no threads")).is_retriable());
    }

    #[test]
    fn invalid_names_the_field() {
        let message =
            LinkError::invalid("drop_per_second", "must be within 0..=1, got 2").to_string();
        assert!(message.contains("drop_per_second"), "{message}");
        assert!(message.contains("got 2"), "{message}");
    }
}
