//! The certificate authority: creates itself, issues the server certificate,
//! the factory registration certificate, and signs device CSRs.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use x509_parser::prelude::FromDer;

use super::identity::{ADMIN_UNIT, READ_ONLY_UNIT};
use super::{PkiError, Validity};
use crate::device_id::{DeviceId, Namespace, REGISTRATION_CN};

/// Common name of CAs this server creates.
pub const CA_COMMON_NAME: &str = "flotta-ca";

/// Organisation name put in every certificate this server creates.
const ORGANISATION: &str = "flotta";

/// A freshly issued certificate with its private key, both PEM.
#[derive(Clone)]
pub struct IssuedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its PKCS#8 private key, PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// A CA able to sign certificates.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes = *uuid::Uuid::new_v4().as_bytes();
    // Positive, non-zero first octet: a well-formed 128-bit DER INTEGER.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

fn name(cn: &str, ou: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ORGANISATION);
    if let Some(ou) = ou {
        dn.push(DnType::OrganizationalUnitName, ou);
    }
    dn.push(DnType::CommonName, cn);
    dn
}

fn leaf_params(dn: DistinguishedName, validity: Validity) -> Result<CertificateParams, PkiError> {
    let (not_before, not_after) = validity.to_rcgen()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(random_serial());
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

impl CertificateAuthority {
    /// Create a new CA with an ECDSA P-256 key.
    pub fn generate(validity: Validity) -> Result<Self, PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let (not_before, not_after) = validity.to_rcgen()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(CA_COMMON_NAME, None);
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(random_serial());
        // Only leaf certificates below this CA: no intermediates.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Load a CA from its certificate and PKCS#8 private key, both PEM.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        use rustls_pki_types::pem::PemObject;
        let key = KeyPair::from_pem(key_pem)?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| PkiError::BadCertificate(format!("CA certificate PEM: {e}")))?;
        let (_, cert) = x509_parser::prelude::X509Certificate::from_der(&cert_der)
            .map_err(|e| PkiError::BadCertificate(format!("CA certificate: {e}")))?;
        if *cert.public_key().subject_public_key.data != *key.public_key_raw() {
            return Err(PkiError::BadCertificate(
                "the CA key does not belong to the CA certificate".into(),
            ));
        }
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)?;
        Ok(Self {
            issuer,
            cert_pem: cert_pem.to_owned(),
            cert_der,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Issue the TLS server certificate for the given DNS names and IP addresses.
    pub fn issue_server_cert(
        &self,
        names: &[String],
        validity: Validity,
    ) -> Result<IssuedCert, PkiError> {
        let first = names.first().map(String::as_str).unwrap_or("flotta-server");
        let mut params = leaf_params(name(first, None), validity)?;
        // `CertificateParams::new` sorts names into DNS and IP SANs.
        params.subject_alt_names = CertificateParams::new(names.to_vec())?.subject_alt_names;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// Issue the factory registration certificate (CN=`register`), which may
    /// only enrol and register devices.
    pub fn issue_registration_cert(&self, validity: Validity) -> Result<IssuedCert, PkiError> {
        let mut params = leaf_params(name(REGISTRATION_CN, None), validity)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    /// Issue a device client certificate with a fresh key pair (for tests and
    /// tools; devices send CSRs instead).
    pub fn issue_device_cert(
        &self,
        device_id: &DeviceId,
        namespace: &Namespace,
        validity: Validity,
    ) -> Result<IssuedCert, PkiError> {
        let mut params = leaf_params(name(device_id.as_str(), Some(namespace.as_str())), validity)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    /// Issue an operator's client certificate for the admin listener:
    /// CN=`name`, OU=[`ADMIN_UNIT`] (or [`READ_ONLY_UNIT`] when
    /// `read_only`), with a fresh key pair.
    pub fn issue_admin_cert(
        &self,
        name: &str,
        read_only: bool,
        validity: Validity,
    ) -> Result<IssuedCert, PkiError> {
        let unit = if read_only {
            READ_ONLY_UNIT
        } else {
            ADMIN_UNIT
        };
        let mut params = leaf_params(self::name(name, Some(unit)), validity)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    /// Sign a device's certificate signing request (PEM).
    ///
    /// The CSR's signature is verified; only its public key is used. Whatever
    /// subject, SANs or extensions it asks for, the certificate says
    /// CN=`device_id`, OU=`namespace` and is a client-authentication leaf.
    pub fn sign_device_csr(
        &self,
        csr_pem: &str,
        device_id: &DeviceId,
        namespace: &Namespace,
        validity: Validity,
    ) -> Result<String, PkiError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| PkiError::InvalidCsr(e.to_string()))?;
        let mut params = leaf_params(name(device_id.as_str(), Some(namespace.as_str())), validity)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let forced = CertificateSigningRequestParams {
            params,
            public_key: csr.public_key,
        };
        Ok(forced.signed_by(&self.issuer)?.pem())
    }

    fn issue(&self, params: CertificateParams) -> Result<IssuedCert, PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
