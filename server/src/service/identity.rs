//! The device identity lifecycle, independent of HTTP: which certificate
//! may act for a device on each request (current, renewed-not-yet-used,
//! superseded, revoked), how long an expired one may still renew, and
//! decommissioning.
//!
//! Decommissioning lives here, behind the [`Store`](crate::store::Store)
//! trait, so that every front end reaches the same revocation path: the
//! admin listener (`flotta-server decommission`, deleting an EdgeDevice in
//! the embedded mode) and, with `objects = "kubernetes"`, the finalizer of
//! EdgeDevices deleted in the cluster (`crate::cluster::finalizer`).

use std::time::{Duration, SystemTime};

use flotta_proto::payload::{Event, Level, Payload};

use super::{EdgeService, ServiceError};
use crate::device_id::DeviceId;
use crate::frames::FrameKeyring;
use crate::pki::{ClientIdentity, Role};
use crate::store::{CertStanding, JsonEvent};

/// Refuse a renewal by a certificate that expired more than `grace` ago.
pub(super) fn check_renewal_grace(
    identity: &ClientIdentity,
    now: SystemTime,
    grace: Duration,
) -> Result<(), ServiceError> {
    if now > identity.not_after + grace {
        return Err(ServiceError::Unauthorized(format!(
            "client certificate expired more than renewal_grace_seconds ({}) ago and can no \
             longer renew itself; enrol again with the registration certificate",
            grace.as_secs()
        )));
    }
    Ok(())
}

/// The revocation path of the device's frame keys. The store's
/// decommissioning transaction has deleted them (every epoch, and the
/// device's pending fragments): its frames are unknown keys from the
/// commit on, since every frame's own transaction checks its context. This
/// forgets the derived contexts cached in memory, so they are not even
/// tried.
pub fn revoke_frame_keys(keyring: &FrameKeyring, id: &DeviceId) {
    keyring.revoke(id);
    tracing::info!(device = %id, "frame keys revoked");
}

impl EdgeService {
    /// Judge the certificate of a request, on every request (not only at the
    /// handshake: a connection, or a TLS session resumed from the cache, may
    /// outlive the certificate's standing). Only device certificates are
    /// judged here; their expiry and what they may do is `api::auth`'s.
    pub async fn authenticate(&self, identity: &ClientIdentity) -> Result<(), ServiceError> {
        let Role::Device { id, .. } = &identity.role else {
            return Ok(());
        };
        let (id, serial) = (id.clone(), identity.serial.clone());
        let shown = id.clone();
        let standing = self
            .blocking(move |s, _, _| Ok(s.certificate_standing(&id, &serial)?))
            .await?;
        match standing {
            CertStanding::Current | CertStanding::Legacy | CertStanding::UnknownDevice => Ok(()),
            CertStanding::Promoted => {
                tracing::info!(device = %shown, serial = %identity.serial, "renewed certificate in use; the previous one is superseded");
                Ok(())
            }
            CertStanding::Superseded => Err(ServiceError::Unauthorized(format!(
                "this certificate of device \"{shown}\" was superseded by a newer one (or was \
                 never its current certificate); renew with the newest certificate or enrol \
                 again with the registration certificate"
            ))),
            CertStanding::Revoked(d) => Err(ServiceError::Unauthorized(format!(
                "device \"{shown}\" was decommissioned by \"{}\" at {}; its certificates are \
                 revoked; an operator must approve a new enrolment",
                d.by,
                crate::controller::rfc3339(d.at_ms)
            ))),
        }
    }

    /// Decommission a device (operators): revoke every certificate of it at
    /// once, revoke its frame keys ([`revoke_frame_keys`]), delete its
    /// EdgeDevice and EdgeDeviceSignedRequest, keep its data unless `purge`,
    /// and record `actor` (as given, not authenticated) in its events. A
    /// later enrolment under the same id waits for explicit approval.
    pub async fn decommission(
        &self,
        id: DeviceId,
        actor: String,
        purge: bool,
    ) -> Result<(), ServiceError> {
        let keyring = self.keyring.clone();
        let objects = self.objects.clone();
        self.blocking(move |s, _, now| {
            let purged = if purge { "; its data was purged" } else { "" };
            let event = Payload::Event(Event {
                reason: "Decommissioned".into(),
                message: format!("decommissioned by {actor}{purged}; its certificates are revoked"),
                level: Level::Warn,
            });
            let event = JsonEvent {
                at_ms: now,
                index: 0,
                payload: event.encode(),
            };
            let namespace = s.device(&id)?.map(|d| d.namespace);
            s.decommission(&id, &actor, purge, &event, now)?;
            revoke_frame_keys(&keyring, &id);
            // A cluster's copies (the store deleted its own); a failure here
            // is repeated by every controller pass over the device.
            if let Some(ns) = namespace
                && let Err(e) = super::forget_enrolment_objects(&*objects, &ns, &id)
            {
                tracing::warn!(device = %id, "decommissioned; its enrolment objects stay until the next controller pass: {e}");
            }
            tracing::warn!(device = %id, %actor, purge, "device decommissioned");
            Ok(())
        })
        .await
    }
}
