//! `flotta-server provision <device-id> --out DIR`: a frame-only device
//! (one that may never reach the mTLS API itself, e.g. an NB-IoT sensor
//! flashed in the factory) made complete by the server, and the files its
//! agent data directory needs.
//!
//! The device is created registered and approved; its certificate is
//! issued with a key **made by the server** — the only case where a device
//! key is not made on the device (the board cannot enrol over the narrow
//! link). The files:
//!
//! | file | what | mode |
//! | --- | --- | --- |
//! | `identity/device.pem` | key then certificate, PEM, as the agent's `identity.rs` reads it | 0600 |
//! | `ca.pem` | the CA certificate (the agent's `ca_cert_path`) | 0644 |
//! | `frame/context.json` | the frame keys (`FrameKeys` JSON, hex) | 0600 |
//!
//! Existing files are never overwritten, and a device that exists (and is
//! not decommissioned) is refused: provisioning makes new devices. With
//! `--imei` the device's RockBLOCK, with `--dev-eui` its LoRaWAN DevEUI, is
//! bound to it (refused, before anything is made, when another device has
//! that address).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use flotta_proto::frame_keys::FrameKeys;

use crate::clock::unix_ms;
use crate::device_id::{DeviceId, Namespace};
use crate::frames::{FrameKeyring, FramesError};
use crate::links::LinkAddress;
use crate::pki::{ClientIdentity, Pki, PkiError, Validity};
use crate::store::{Approval, EnrolOutcome, IssuedCertificate, Store, StoreError};

/// The identity file, relative to the agent's data directory.
pub const IDENTITY_FILE: &str = "identity/device.pem";
/// The CA certificate, relative to the output directory.
pub const CA_FILE: &str = "ca.pem";
/// The frame keys, relative to the agent's data directory.
pub const FRAME_CONTEXT_FILE: &str = "frame/context.json";

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// An output file exists already.
    #[error("{0} exists; refusing to overwrite it")]
    Exists(PathBuf),
    /// The device exists already.
    #[error("device \"{0}\" exists; provision makes new devices (decommission it first)")]
    DeviceExists(String),
    /// Writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The CA failed.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The frame keys could not be made.
    #[error(transparent)]
    Frames(#[from] FramesError),
}

impl ProvisionError {
    /// Whether running it again may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ProvisionError::Store(e) => e.is_retriable(),
            ProvisionError::Pki(e) => e.is_retriable(),
            ProvisionError::Frames(e) => e.is_retriable(),
            _ => false,
        }
    }
}

/// What was made.
#[derive(Debug)]
pub struct Provisioned {
    /// The files written.
    pub files: Vec<PathBuf>,
    /// The device's frame keys.
    pub keys: FrameKeys,
}

/// What to provision.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The device.
    pub id: &'a DeviceId,
    /// Its namespace.
    pub namespace: &'a Namespace,
    /// Lifetime of its certificate (`device_cert_validity_seconds`).
    pub validity: Duration,
    /// Frame key rotation period (`frame_rotation_days`).
    pub rotation: Duration,
    /// Now.
    pub now: SystemTime,
    /// The output directory (the agent's data directory to be).
    pub out: &'a Path,
    /// Link addresses to bind to the device (`--imei`: its RockBLOCK,
    /// `--dev-eui`: its LoRaWAN DevEUI).
    pub bind: &'a [LinkAddress],
}

/// Provision the device and write its files.
///
/// # Errors
/// [`ProvisionError`]; nothing is written when a file exists or the device
/// does.
pub fn provision(
    store: Arc<dyn Store>,
    pki: &Pki,
    req: &Request<'_>,
) -> Result<Provisioned, ProvisionError> {
    let Request {
        id,
        namespace,
        validity,
        rotation,
        now,
        out,
        bind,
    } = *req;
    let files = [IDENTITY_FILE, CA_FILE, FRAME_CONTEXT_FILE].map(|f| out.join(f));
    if let Some(existing) = files.iter().find(|f| f.exists()) {
        return Err(ProvisionError::Exists(existing.clone()));
    }
    if store
        .device(id)?
        .is_some_and(|d| d.decommissioned.is_none())
    {
        return Err(ProvisionError::DeviceExists(id.to_string()));
    }
    for address in bind {
        if let Some(holder) = store.linked_device(address)?
            && holder != *id
        {
            return Err(StoreError::AddressBound {
                address: address.to_string(),
                device: holder.to_string(),
            }
            .into());
        }
    }
    let now_ms = unix_ms(now);
    if store.enrol(id, namespace, None, true, now_ms)? != EnrolOutcome::Created(Approval::Approved)
    {
        // A decommissioned device enrols again pending: the operator
        // provisioning it approves it.
        store.approve(id)?;
    }
    let issued =
        pki.ca()
            .issue_device_cert(id, namespace, Validity::starting_at(now, validity)?)?;
    let cert = ClientIdentity::from_pem(&issued.cert_pem)?;
    store.record_certificate(
        id,
        &IssuedCertificate {
            serial: cert.serial,
            not_after_ms: unix_ms(cert.not_after),
            renewal: false,
        },
        None,
        now_ms,
    )?;
    for address in bind {
        store.bind_link(address, id, now_ms)?;
    }
    let keyring = FrameKeyring::new(store, 1, rotation);
    let keys = keyring.current(id, now_ms)?;
    let json = serde_json::to_string_pretty(&keys).unwrap_or_default();
    write_new(
        &files[0],
        format!("{}{}", issued.key_pem, issued.cert_pem).as_bytes(),
        0o600,
    )?;
    write_new(&files[1], pki.ca().cert_pem().as_bytes(), 0o644)?;
    write_new(&files[2], format!("{json}\n").as_bytes(), 0o600)?;
    Ok(Provisioned {
        files: files.to_vec(),
        keys,
    })
}

/// Create `path` (never replacing a file) with `bytes`, synced; parent
/// directories 0700.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ProvisionError> {
    let io = |source| ProvisionError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => ProvisionError::Exists(path.to_owned()),
            _ => io(e),
        })?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}
