//! The device's identity: a key generated on the device (it never leaves it),
//! a CSR, and the certificate the server signed, stored together atomically in
//! one 0600 file so that key and certificate can never disagree.

use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

/// File holding the device key and certificate (PEM), mode 0600.
pub const IDENTITY_FILE: &str = "identity/device.pem";

/// A device key with its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PEM.
    pub key_pem: String,
    /// Validity start, seconds since the Unix epoch.
    pub not_before: i64,
    /// Validity end, seconds since the Unix epoch.
    pub not_after: i64,
}

/// A key waiting for its certificate.
#[derive(Debug)]
pub struct PendingKey {
    /// Private key, PEM (kept in memory until the certificate arrives).
    pub key_pem: String,
    /// Certificate signing request, PEM.
    pub csr_pem: String,
}

/// Identity errors.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Key or CSR generation failed.
    #[error("generating key or CSR: {0}")]
    Generate(#[from] rcgen::Error),
    /// The certificate could not be parsed.
    #[error("bad certificate: {0}")]
    BadCertificate(String),
    /// Reading or writing the identity file failed.
    #[error("identity file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Generate a P-256 key and a CSR asking for CN = `device_id`.
pub fn new_key_and_csr(device_id: &str) -> Result<PendingKey, IdentityError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, device_id);
    params.distinguished_name = dn;
    let csr = params.serialize_request(&key)?;
    Ok(PendingKey {
        key_pem: key.serialize_pem(),
        csr_pem: csr.pem()?,
    })
}

/// Validity (not_before, not_after) of a PEM certificate.
pub fn validity(cert_pem: &str) -> Result<(i64, i64), IdentityError> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
    let v = cert.validity();
    Ok((v.not_before.timestamp(), v.not_after.timestamp()))
}

impl DeviceIdentity {
    /// Pair a pending key with the certificate the server returned.
    pub fn new(pending: PendingKey, cert_pem: String) -> Result<Self, IdentityError> {
        let (not_before, not_after) = validity(&cert_pem)?;
        Ok(DeviceIdentity {
            cert_pem,
            key_pem: pending.key_pem,
            not_before,
            not_after,
        })
    }

    /// Whether the certificate has expired at `now` (seconds since the epoch).
    pub fn expired(&self, now: i64) -> bool {
        now >= self.not_after
    }

    /// Whether less than `percent` of the lifetime is left at `now`.
    pub fn renewal_due(&self, now: i64, percent: u8) -> bool {
        let life = (self.not_after - self.not_before).max(1);
        (self.not_after - now) * 100 < life * i64::from(percent)
    }

    /// Store durably (one file, mode 0600) under `data_dir`.
    pub fn save(&self, data_dir: &Path) -> Result<(), IdentityError> {
        let path = data_dir.join(IDENTITY_FILE);
        let both = format!("{}{}", self.key_pem, self.cert_pem);
        crate::fsutil::write_atomic(&path, both.as_bytes(), 0o600)
            .map_err(|source| IdentityError::Io { path, source })
    }

    /// Load from `data_dir`; `None` if there is no identity yet.
    pub fn load(data_dir: &Path) -> Result<Option<Self>, IdentityError> {
        let path = data_dir.join(IDENTITY_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(IdentityError::Io { path, source }),
        };
        let split = text.find("-----BEGIN CERTIFICATE-----").ok_or_else(|| {
            IdentityError::BadCertificate(format!("{} holds no certificate", path.display()))
        })?;
        let (key_pem, cert_pem) = text.split_at(split);
        let (not_before, not_after) = validity(cert_pem)?;
        Ok(Some(DeviceIdentity {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            not_before,
            not_after,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(days: i64) -> (PendingKey, String) {
        let pending = new_key_and_csr("dev-1").unwrap();
        let key = KeyPair::from_pem(&pending.key_pem).unwrap();
        let mut params = CertificateParams::new(vec!["dev-1".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2026, 1, 1);
        params.not_after = params.not_before + std::time::Duration::from_secs(days as u64 * 86400);
        let cert = params.self_signed(&key).unwrap();
        (pending, cert.pem())
    }

    #[test]
    fn csr_names_the_device() {
        let p = new_key_and_csr("abc-123").unwrap();
        assert!(p.csr_pem.contains("BEGIN CERTIFICATE REQUEST"));
        let params = rcgen::CertificateSigningRequestParams::from_pem(&p.csr_pem).unwrap();
        let cn = params
            .params
            .distinguished_name
            .get(&DnType::CommonName)
            .unwrap();
        assert_eq!(cn, &rcgen::DnValue::Utf8String("abc-123".into()));
    }

    #[test]
    fn save_load_roundtrip_and_renewal_window() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DeviceIdentity::load(dir.path()).unwrap().is_none());
        let (pending, cert) = self_signed(30);
        let id = DeviceIdentity::new(pending, cert).unwrap();
        id.save(dir.path()).unwrap();
        let back = DeviceIdentity::load(dir.path()).unwrap().unwrap();
        assert_eq!(back, id);
        let start = id.not_before;
        assert!(!id.renewal_due(start + 10 * 86400, 33));
        assert!(id.renewal_due(start + 21 * 86400, 33));
        assert!(!id.expired(start + 29 * 86400));
        assert!(id.expired(start + 30 * 86400));
    }

    #[test]
    fn garbage_identity_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        crate::fsutil::write_atomic(&dir.path().join(IDENTITY_FILE), b"junk", 0o600).unwrap();
        assert!(DeviceIdentity::load(dir.path()).is_err());
    }
}
