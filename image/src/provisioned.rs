//! `--provisioned DIR`: a frame-only device made complete by the server
//! (`flotta-server provision <device-id> --out DIR`) instead of enrolling with the factory
//! registration certificate. DIR holds what the agent's data directory needs:
//! `identity/device.pem` (key then certificate), `ca.pem` and `frame/context.json` (the frame
//! keys). Every file is checked here, with the agent's own loaders where it has them, before
//! the image is touched: a card that would not work is refused with the file named.

use std::path::Path;

use flotta_agent::frame_keys::{self, FRAME_KEYS_FILE};
use flotta_agent::identity::{DeviceIdentity, IDENTITY_FILE};
use rcgen::{KeyPair, PublicKeyData as _};
use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;

use crate::error::{ImageError, Result};

/// The CA certificate in DIR (the agent's `ca_cert_path`).
pub const CA_FILE: &str = "ca.pem";
/// A file of DIR larger than this is not one `flotta-server provision` wrote.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// The checked contents of a provisioning directory, as they go on the card.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// `identity/device.pem`: key then certificate.
    pub identity: Vec<u8>,
    /// `ca.pem`.
    pub ca: Vec<u8>,
    /// `frame/context.json`.
    pub frame_context: Vec<u8>,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .map_err(ImageError::io("--provisioned: reading", path))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(ImageError::Invalid(format!(
            "--provisioned: {} has {len} bytes; flotta-server provision writes a few hundred",
            path.display()
        )));
    }
    std::fs::read(path).map_err(ImageError::io("--provisioned: reading", path))
}

/// The PEM blocks of `data` (the file `path`), at least one.
fn pem_blocks(data: &[u8], path: &Path) -> Result<Vec<Pem>> {
    let blocks = Pem::iter_from_buffer(data)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            ImageError::Invalid(format!("--provisioned: {} is not PEM: {e}", path.display()))
        })?;
    if blocks.is_empty() {
        return Err(ImageError::Invalid(format!(
            "--provisioned: {} is not PEM (no -----BEGIN line)",
            path.display()
        )));
    }
    Ok(blocks)
}

/// The first certificate among `blocks` (of the file `path`), parsed.
fn certificate<'a>(blocks: &'a [Pem], path: &Path) -> Result<X509Certificate<'a>> {
    let pem = blocks
        .iter()
        .find(|b| b.label == "CERTIFICATE")
        .ok_or_else(|| {
            ImageError::Invalid(format!(
                "--provisioned: {} holds no certificate",
                path.display()
            ))
        })?;
    pem.parse_x509().map_err(|e| {
        ImageError::Invalid(format!(
            "--provisioned: {} holds no valid certificate: {e}",
            path.display()
        ))
    })
}

/// Check the provisioning directory `dir` for the device `device_id` (and, if given, that
/// `--ca` is its CA) and return its files.
///
/// Refused: a missing or unreadable file; an identity file the agent cannot load, whose key is
/// not its certificate's, whose certificate names another device (subject CN) or was not
/// signed by `dir/ca.pem`; a `--ca` other than `dir/ca.pem`; frame keys the agent's loader
/// refuses or that make no frame context for `device_id`.
pub fn load(dir: &Path, device_id: &str, ca: Option<&Path>) -> Result<Provisioned> {
    if !dir.is_dir() {
        return Err(ImageError::Invalid(format!(
            "--provisioned {} is not a directory (give the --out DIR of flotta-server provision)",
            dir.display()
        )));
    }

    // identity/device.pem, as the agent reads it (key, then certificate).
    let id_path = dir.join(IDENTITY_FILE);
    let identity = read(&id_path)?;
    let loaded = DeviceIdentity::load(dir)
        .map_err(|e| {
            ImageError::Invalid(format!(
                "--provisioned: {} would be refused by the agent: {e}",
                id_path.display()
            ))
        })?
        .ok_or_else(|| {
            ImageError::Invalid(format!("--provisioned: {} is missing", id_path.display()))
        })?;
    let blocks = pem_blocks(&identity, &id_path)?;
    let keys = blocks
        .iter()
        .filter(|b| b.label.ends_with("PRIVATE KEY"))
        .count();
    if keys != 1 || !blocks[0].label.ends_with("PRIVATE KEY") {
        return Err(ImageError::Invalid(format!(
            "--provisioned: {} must hold the private key, then the certificate (it has {})",
            id_path.display(),
            blocks
                .iter()
                .map(|b| b.label.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let cert = certificate(&blocks, &id_path)?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default();
    if cn != device_id {
        return Err(ImageError::Mismatch(format!(
            "--device-id {device_id:?} is not the device {} was provisioned for: its certificate \
             names {cn:?}",
            id_path.display()
        )));
    }
    let key = KeyPair::from_pem(&loaded.key_pem).map_err(|e| {
        ImageError::Invalid(format!(
            "--provisioned: {}: the private key cannot be read: {e}",
            id_path.display()
        ))
    })?;
    if key.subject_public_key_info() != cert.public_key().raw {
        return Err(ImageError::Invalid(format!(
            "--provisioned: {}: the private key is not the certificate's",
            id_path.display()
        )));
    }

    // ca.pem: the CA that signed the device certificate; --ca, if given, is the same.
    let ca_path = dir.join(CA_FILE);
    let ca_bytes = read(&ca_path)?;
    let ca_blocks = pem_blocks(&ca_bytes, &ca_path)?;
    let ca_cert = certificate(&ca_blocks, &ca_path)?;
    if let Some(given) = ca {
        let given_bytes = std::fs::read(given).map_err(ImageError::io("reading", given))?;
        let same = Pem::iter_from_buffer(&given_bytes)
            .collect::<std::result::Result<Vec<_>, _>>()
            .is_ok_and(|g| {
                let ders = |bs: &[Pem]| {
                    bs.iter()
                        .filter(|b| b.label == "CERTIFICATE")
                        .map(|b| b.contents.clone())
                        .collect::<Vec<_>>()
                };
                ders(&g) == ders(&ca_blocks)
            });
        if !same {
            return Err(ImageError::Mismatch(format!(
                "--ca {} is not the CA of the provisioned device ({}); leave --ca out, {} is used",
                given.display(),
                ca_path.display(),
                ca_path.display()
            )));
        }
    }
    cert.verify_signature(Some(ca_cert.public_key()))
        .map_err(|e| {
            ImageError::Mismatch(format!(
                "--provisioned: the certificate in {} is not signed by {} ({e}): files of \
                 different provisionings?",
                id_path.display(),
                ca_path.display()
            ))
        })?;

    // frame/context.json, with the agent's own loader.
    let fc_path = dir.join(FRAME_KEYS_FILE);
    let frame_context = read(&fc_path)?;
    let keys = frame_keys::load(dir)
        .map_err(|e| ImageError::Invalid(format!("--provisioned: {e}")))?
        .ok_or_else(|| {
            ImageError::Invalid(format!("--provisioned: {} is missing", fc_path.display()))
        })?;
    frame_keys::device_context(&keys, device_id)
        .map_err(|e| ImageError::Invalid(format!("--provisioned: {}: {e}", fc_path.display())))?;

    Ok(Provisioned {
        identity,
        ca: ca_bytes,
        frame_context,
    })
}
