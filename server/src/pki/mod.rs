//! Public-key infrastructure: the server's CA, its TLS certificate, the
//! factory registration certificate and device certificates.
//!
//! Layout of the data directory (keys are written with mode 0600):
//!
//! | file | what |
//! | --- | --- |
//! | `ca.pem`, `ca.key` | the current CA (unless `ca_cert_file`/`ca_key_file` name files elsewhere: then read only from those) |
//! | `server.pem`, `server.key` | the API listener's certificate, signed by the CA |

mod ca;
mod error;
mod files;
mod identity;
mod validity;

pub use ca::{CA_COMMON_NAME, CertificateAuthority, IssuedCert};
pub use error::PkiError;
pub use files::{CaFiles, Pki, PkiSettings};
pub use identity::{ADMIN_UNIT, ClientIdentity, READ_ONLY_UNIT, Role, cert_not_after};
pub use validity::{CLOCK_SKEW_ALLOWANCE, Validity};

#[cfg(test)]
mod tests;
