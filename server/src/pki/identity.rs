//! Who a verified client certificate says the peer is.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::prelude::{FromDer, X509Certificate};

use super::PkiError;
use crate::device_id::{DeviceId, REGISTRATION_CN};

/// The role a client certificate grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// The factory registration certificate: may only enrol and register.
    Registration,
    /// A device certificate: may act for this device only.
    Device {
        /// The device id (the certificate's CN).
        id: DeviceId,
        /// The namespace (the certificate's OU), if present.
        namespace: Option<String>,
    },
    /// An operator's certificate for the admin listener (`flotta-server
    /// issue-admin-cert`): OU `flotta:admin` or `flotta:read-only`, a value
    /// no namespace can take (`:`), so no device certificate carries it.
    /// Allowed nothing on the device API.
    Admin {
        /// Who (the certificate's CN).
        name: String,
        /// Whether it may only read.
        read_only: bool,
    },
    /// Signed by a trusted CA but neither of the above (e.g. a server
    /// certificate presented as a client certificate): allowed nothing.
    Other {
        /// The certificate's CN, for logs.
        common_name: String,
    },
}

/// The identity established by a client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// What the certificate allows.
    pub role: Role,
    /// Its last valid instant.
    pub not_after: SystemTime,
    /// Its serial number, lowercase hex of the DER integer's bytes: what the
    /// store records to tell a device's current certificate from others.
    pub serial: String,
}

impl ClientIdentity {
    /// Read the identity from a DER certificate the TLS layer has already
    /// verified (chain, signature; expiry is decided by the caller).
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| PkiError::BadCertificate(e.to_string()))?;
        let subject = cert.subject();
        let common_name = subject
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .unwrap_or_default()
            .to_owned();
        let namespace = subject
            .iter_organizational_unit()
            .next()
            .and_then(|a| a.as_str().ok())
            .map(str::to_owned);
        let role = if let Some(read_only) = namespace.as_deref().and_then(admin_unit) {
            Role::Admin {
                name: common_name,
                read_only,
            }
        } else if common_name == REGISTRATION_CN {
            Role::Registration
        } else {
            match DeviceId::parse(&common_name) {
                Ok(id) => Role::Device { id, namespace },
                Err(_) => Role::Other { common_name },
            }
        };
        Ok(Self {
            role,
            not_after: not_after(&cert),
            serial: hex(cert.raw_serial()),
        })
    }

    /// Read the identity from a PEM certificate (e.g. one just issued).
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| PkiError::BadCertificate(format!("certificate PEM: {e}")))?;
        Self::from_der(&der)
    }

    /// Whether the certificate has expired at `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        now > self.not_after
    }
}

/// OU of admin certificates with full rights.
pub const ADMIN_UNIT: &str = "flotta:admin";
/// OU of admin certificates that may only read.
pub const READ_ONLY_UNIT: &str = "flotta:read-only";

/// `Some(read_only)` when `ou` marks an admin certificate.
fn admin_unit(ou: &str) -> Option<bool> {
    match ou {
        ADMIN_UNIT => Some(false),
        READ_ONLY_UNIT => Some(true),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn not_after(cert: &X509Certificate<'_>) -> SystemTime {
    let secs = cert.validity().not_after.timestamp();
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => UNIX_EPOCH,
    }
}

/// The `notAfter` time of a DER certificate.
pub fn cert_not_after(der: &[u8]) -> Result<SystemTime, PkiError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| PkiError::BadCertificate(e.to_string()))?;
    Ok(not_after(&cert))
}
