//! The CA and server certificate on disk: the CA created in the data
//! directory on first start and loaded afterwards, or loaded read-only from
//! configured files (`ca_cert_file`, `ca_key_file`: one CA that replicas
//! share, e.g. a Kubernetes Secret); the server certificate kept in the data
//! directory and re-issued when it nears expiry, its names change or another
//! CA signed it.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::{CertificateAuthority, IssuedCert, PkiError, Validity, cert_not_after};

/// The server certificate is re-issued when it expires within this period.
const SERVER_CERT_RENEW_BEFORE: Duration = Duration::from_secs(7 * 86_400);

/// What the PKI needs from the configuration.
#[derive(Debug, Clone)]
pub struct PkiSettings {
    /// DNS names and IP addresses of the API listener (server certificate SANs).
    pub server_names: Vec<String>,
    /// Lifetime of a newly created CA.
    pub ca_validity: Duration,
    /// Lifetime of the server certificate.
    pub server_cert_validity: Duration,
    /// PEM files of previous CAs whose device certificates are still trusted.
    pub old_ca_files: Vec<PathBuf>,
    /// The CA's files when they live outside the data directory: read,
    /// never created nor written.
    pub ca_files: Option<CaFiles>,
}

/// A CA kept outside the data directory (both files PEM; the key PKCS#8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFiles {
    /// The CA certificate.
    pub cert: PathBuf,
    /// The CA private key.
    pub key: PathBuf,
}

impl PkiSettings {
    /// Where the CA certificate is: the configured file, else `ca.pem` in
    /// `data_dir`.
    pub fn ca_cert_path(&self, data_dir: &Path) -> PathBuf {
        match &self.ca_files {
            Some(files) => files.cert.clone(),
            None => data_dir.join("ca.pem"),
        }
    }
}

/// The loaded PKI: CA, server certificate and trusted old CAs.
#[derive(Debug)]
pub struct Pki {
    ca: CertificateAuthority,
    server: IssuedCert,
    old_cas: Vec<CertificateDer<'static>>,
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(PkiError::io(path))
}

/// Write `contents` to `path` atomically (temp file, fsync, rename, fsync dir).
/// The temp file is created with mode 0600 and `mode` applied before the rename.
fn write_atomic(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(PkiError::io(dir))?;
    tmp.write_all(contents.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .and_then(|()| {
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))
        })
        .map_err(PkiError::io(path))?;
    tmp.persist(path).map_err(|e| PkiError::Io {
        path: path.to_owned(),
        source: e.error,
    })?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(PkiError::io(dir))
}

/// Write a private key (mode 0600).
pub(crate) fn write_private(path: &Path, contents: &str) -> Result<(), PkiError> {
    write_atomic(path, contents, 0o600)
}

/// Write a certificate (mode 0644).
pub(crate) fn write_public(path: &Path, contents: &str) -> Result<(), PkiError> {
    write_atomic(path, contents, 0o644)
}

fn normalise(name: &str) -> String {
    name.parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .unwrap_or_else(|_| name.to_ascii_lowercase())
}

fn san_names(der: &[u8]) -> Result<BTreeSet<String>, PkiError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| PkiError::BadCertificate(e.to_string()))?;
    let mut names = BTreeSet::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(s) => {
                    names.insert(normalise(s));
                }
                GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        names.insert(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(names)
}

/// Load the CA from its certificate and key files.
fn load_ca(cert: &Path, key: &Path) -> Result<CertificateAuthority, PkiError> {
    CertificateAuthority::from_pem(&read(cert)?, &read(key)?).map_err(|e| PkiError::BadFile {
        path: cert.to_owned(),
        what: "CA certificate and key",
        reason: e.to_string(),
    })
}

/// Whether `der` was signed by `ca` (a server certificate kept across a
/// change of CA is not).
fn signed_by(der: &[u8], ca: &CertificateAuthority) -> Result<bool, PkiError> {
    let parse =
        |d| X509Certificate::from_der(d).map_err(|e| PkiError::BadCertificate(e.to_string()));
    let (_, cert) = parse(der)?;
    let (_, issuer) = parse(ca.cert_der())?;
    Ok(cert.issuer() == issuer.subject()
        && cert.verify_signature(Some(issuer.public_key())).is_ok())
}

impl Pki {
    /// Load the PKI: the CA from `settings.ca_files` when set (never
    /// created or written: missing or unreadable files are an error naming
    /// them), else from `dir`, created there on first start; then
    /// (re-)issue the server certificate in `dir` when missing, near
    /// expiry, issued for other names than `settings.server_names`, or
    /// signed by another CA.
    pub fn load_or_init(
        dir: &Path,
        settings: &PkiSettings,
        now: SystemTime,
    ) -> Result<Self, PkiError> {
        std::fs::create_dir_all(dir).map_err(PkiError::io(dir))?;
        let (ca_pem, ca_key) = (settings.ca_cert_path(dir), dir.join("ca.key"));
        let ca = if let Some(files) = &settings.ca_files {
            load_ca(&files.cert, &files.key)?
        } else if ca_pem.exists() || ca_key.exists() {
            load_ca(&ca_pem, &ca_key)?
        } else {
            let ca =
                CertificateAuthority::generate(Validity::starting_at(now, settings.ca_validity)?)?;
            // Key first: a crash in between leaves a key without a
            // certificate, which the next start reports instead of silently
            // replacing the CA every device trusts.
            write_private(&ca_key, &ca.key_pem())?;
            write_public(&ca_pem, ca.cert_pem())?;
            tracing::info!(path = %ca_pem.display(), "created a new CA");
            ca
        };

        let (srv_pem, srv_key) = (dir.join("server.pem"), dir.join("server.key"));
        let wanted: BTreeSet<String> = settings.server_names.iter().map(|n| normalise(n)).collect();
        let existing = match (read(&srv_pem), read(&srv_key)) {
            (Ok(cert_pem), Ok(key_pem)) => Some(IssuedCert { cert_pem, key_pem }),
            _ => None,
        };
        let reusable = match &existing {
            Some(issued) => {
                let der =
                    CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).map_err(|e| {
                        PkiError::BadFile {
                            path: srv_pem.clone(),
                            what: "certificate",
                            reason: e.to_string(),
                        }
                    })?;
                let fresh = cert_not_after(&der)? > now + SERVER_CERT_RENEW_BEFORE;
                fresh && san_names(&der)? == wanted && signed_by(&der, &ca)?
            }
            None => false,
        };
        let server = match existing {
            Some(issued) if reusable => issued,
            _ => {
                let issued = ca.issue_server_cert(
                    &settings.server_names,
                    Validity::starting_at(now, settings.server_cert_validity)?,
                )?;
                write_private(&srv_key, &issued.key_pem)?;
                write_public(&srv_pem, &issued.cert_pem)?;
                tracing::info!(names = ?settings.server_names, "issued the server certificate");
                issued
            }
        };

        let mut old_cas = Vec::new();
        for path in &settings.old_ca_files {
            let pem = read(path)?;
            let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| PkiError::BadFile {
                    path: path.clone(),
                    what: "PEM certificate list",
                    reason: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(PkiError::BadFile {
                    path: path.clone(),
                    what: "PEM certificate list",
                    reason: "no certificate in it".into(),
                });
            }
            old_cas.extend(certs);
        }
        Ok(Self {
            ca,
            server,
            old_cas,
        })
    }

    /// The current CA.
    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    /// The API listener's certificate and key.
    pub fn server_cert(&self) -> &IssuedCert {
        &self.server
    }

    /// Every CA whose client certificates are accepted: the current one first,
    /// then the old ones from the configuration.
    pub fn client_roots(&self) -> Vec<CertificateDer<'static>> {
        std::iter::once(self.ca.cert_der().clone())
            .chain(self.old_cas.iter().cloned())
            .collect()
    }

    /// Write the registration bundle for factory images into `out_dir`:
    /// `ca.pem`, `register.pem`, `register.key` (0600).
    pub fn write_registration_bundle(
        &self,
        out_dir: &Path,
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<IssuedCert, PkiError> {
        std::fs::create_dir_all(out_dir).map_err(PkiError::io(out_dir))?;
        let issued = self
            .ca
            .issue_registration_cert(Validity::starting_at(now, lifetime)?)?;
        write_public(&out_dir.join("ca.pem"), self.ca.cert_pem())?;
        write_private(&out_dir.join("register.key"), &issued.key_pem)?;
        write_public(&out_dir.join("register.pem"), &issued.cert_pem)?;
        Ok(issued)
    }

    /// Issue an operator's admin certificate (`read_only`: the read-only
    /// role) and write `ca.pem`, `<name>.pem` and `<name>.key` (0600) to
    /// `out_dir`. `name` is checked by the caller.
    pub fn write_admin_bundle(
        &self,
        out_dir: &Path,
        name: &str,
        read_only: bool,
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<IssuedCert, PkiError> {
        std::fs::create_dir_all(out_dir).map_err(PkiError::io(out_dir))?;
        let issued =
            self.ca
                .issue_admin_cert(name, read_only, Validity::starting_at(now, lifetime)?)?;
        write_public(&out_dir.join("ca.pem"), self.ca.cert_pem())?;
        write_private(&out_dir.join(format!("{name}.key")), &issued.key_pem)?;
        write_public(&out_dir.join(format!("{name}.pem")), &issued.cert_pem)?;
        Ok(issued)
    }
}
