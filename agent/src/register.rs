//! Getting and keeping a device certificate: enrol with the factory
//! registration certificate until approved (208), register with a CSR made
//! here, renew with the device's own certificate well before it expires, and
//! fall back to the registration certificate when the server refuses ours.
//! Sealed-frame keys in a registration answer are stored (`frame_keys.rs`).

use std::path::Path;

use serde_json::{Value, json};

use crate::agent_time::AgentClock;
use crate::client::{ClientError, EdgeClient, Enrolment};
use crate::config::AgentConfig;
use crate::identity::{DeviceIdentity, IdentityError, new_key_and_csr};

/// Why no usable identity is available yet.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The server has the enrolment but no approval yet.
    #[error("enrolled, waiting for approval")]
    PendingApproval,
    /// A call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Key, CSR or identity file trouble.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A configured file (CA, registration certificate) is missing.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl RegisterError {
    /// Whether trying again later may help.
    pub fn is_retriable(&self) -> bool {
        match self {
            RegisterError::PendingApproval => true,
            RegisterError::Client(e) => e.is_retriable(),
            RegisterError::Identity(_) | RegisterError::Read { .. } => false,
        }
    }
}

fn read(path: &Path) -> Result<String, RegisterError> {
    std::fs::read_to_string(path).map_err(|source| RegisterError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Hardware facts for enrolment and registration (Flotta's `hardware-info`, trimmed).
pub fn hardware_info() -> Value {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    json!({
        "hostname": hostname.trim(),
        "cpu": {"architecture": std::env::consts::ARCH},
    })
}

/// Return a usable identity: the stored one if it is good, else renew or register.
/// `now` is seconds since the Unix epoch; `force_renew` renews even a fresh
/// certificate (after the server answered 401 to it).
pub fn ensure_identity(
    cfg: &AgentConfig,
    device_id: &str,
    now: i64,
    force_renew: bool,
    clock: &AgentClock,
) -> Result<DeviceIdentity, RegisterError> {
    let ca = read(&cfg.ca_cert_path)?;
    let link = cfg.link().map_err(|e| ClientError::Tls(e.to_string()))?;
    let hw = hardware_info();
    let current = DeviceIdentity::load(&cfg.data_dir)?;
    if let Some(id) = &current {
        if !force_renew && !id.renewal_due(now, cfg.renew_at_remaining_percent) {
            return Ok(id.clone());
        }
        // Renewal with our own (possibly expired) certificate.
        let client = EdgeClient::with_clock(
            &cfg.server_url,
            device_id,
            &ca,
            &id.cert_pem,
            &id.key_pem,
            &link,
            clock,
        )?;
        let pending = new_key_and_csr(device_id)?;
        match client.register_with_keys(&pending.csr_pem, &hw) {
            Ok((cert, keys)) => {
                let renewed = DeviceIdentity::new(pending, cert)?;
                renewed.save(&cfg.data_dir)?;
                store_frame_keys(&cfg.data_dir, keys);
                return Ok(renewed);
            }
            // Still valid: use it and try renewing next time.
            Err(e) if e.is_retriable() && !id.expired(now) && !force_renew => return Ok(id.clone()),
            Err(e) if e.is_retriable() => return Err(e.into()),
            // Refused (401: superseded, revoked, or expired beyond the
            // server's renewal grace): start over with the registration
            // certificate. The server lets a lapsed device enrol again
            // (approved per its auto_approve) and register anew; a
            // decommissioned one stays pending until an operator approves.
            // The identity file is only replaced once a new certificate came.
            Err(_) => {}
        }
    }
    let reg_cert = read(&cfg.registration_cert_path)?;
    let reg_key = read(&cfg.registration_key_path)?;
    let client = EdgeClient::with_clock(
        &cfg.server_url,
        device_id,
        &ca,
        &reg_cert,
        &reg_key,
        &link,
        clock,
    )?;
    if client.enrol(&cfg.target_namespace, &hw)? == Enrolment::Pending {
        // Auto-approval answers 200 first and 208 from then on: ask once more.
        if client.enrol(&cfg.target_namespace, &hw)? == Enrolment::Pending {
            return Err(RegisterError::PendingApproval);
        }
    }
    let pending = new_key_and_csr(device_id)?;
    let (cert, keys) = client.register_with_keys(&pending.csr_pem, &hw)?;
    let id = DeviceIdentity::new(pending, cert)?;
    id.save(&cfg.data_dir)?;
    store_frame_keys(&cfg.data_dir, keys);
    Ok(id)
}

/// Keep sealed-frame keys from a registration answer. A failure to store
/// them costs nothing lasting: the next batch announces the old epoch and
/// the server sends them again.
fn store_frame_keys(data_dir: &Path, keys: Option<flotta_proto::frame_keys::FrameKeys>) {
    if let Some(k) = keys
        && crate::frame_keys::load(data_dir).ok().flatten().as_ref() != Some(&k)
    {
        let _ = crate::frame_keys::store(data_dir, &k);
    }
}
