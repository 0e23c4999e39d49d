//! Client classes: what a connection is counted as once we know who it is.
//!
//! On the API listener the class comes from the client certificate, known
//! after the TLS handshake: a valid device certificate, the registration
//! certificate (shipped in every factory image, so anyone may hold it), or
//! `other` (an expired certificate, which may only renew, or a certificate
//! with neither role). The admin listener has one class of its own.

use std::fmt;
use std::time::SystemTime;

use crate::pki::{ClientIdentity, Role};

/// What a connection counts as in its listener's budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A valid device certificate: may use any free slot, and has a share
    /// nobody else can take.
    Device,
    /// The valid registration certificate (CN=`register`): a bounded share.
    Registration,
    /// An expired certificate or one with neither role: a bounded share.
    Other,
    /// A connection to the admin listener.
    Admin,
}

impl Class {
    /// Every class, in index order.
    pub const ALL: [Class; 4] = [
        Class::Device,
        Class::Registration,
        Class::Other,
        Class::Admin,
    ];

    /// The label used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Device => "device",
            Class::Registration => "registration",
            Class::Other => "other",
            Class::Admin => "admin",
        }
    }

    /// Position in [`Class::ALL`].
    pub fn index(self) -> usize {
        match self {
            Class::Device => 0,
            Class::Registration => 1,
            Class::Other => 2,
            Class::Admin => 3,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose connections count together against the per-client cap: one device
/// certificate (device id and serial), or another certificate (by CN).
///
/// Per certificate, not per device id: a superseded or revoked certificate
/// of a device (a stolen or discarded board) is refused on every request,
/// but it still completes the handshake; counted under the device's id it
/// could hold all of that device's connections and lock the real board out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey(pub(super) String);

impl ClientKey {
    /// The key as text, for logs.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The class and per-client key of a verified client certificate at `now`.
///
/// The valid registration certificate has no per-client key: every device
/// being onboarded shares it, so only its class share bounds it.
pub fn classify(identity: &ClientIdentity, now: SystemTime) -> (Class, Option<ClientKey>) {
    let expired = identity.is_expired(now);
    match &identity.role {
        Role::Registration if !expired => (Class::Registration, None),
        Role::Registration => (Class::Other, Some(ClientKey("register".into()))),
        Role::Device { id, .. } => {
            let class = if expired { Class::Other } else { Class::Device };
            let key = format!("device:{id}:{}", identity.serial);
            (class, Some(ClientKey(key)))
        }
        Role::Other { common_name } => (Class::Other, Some(ClientKey(format!("cn:{common_name}")))),
        Role::Admin { name, .. } => (Class::Other, Some(ClientKey(format!("admin:{name}")))),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::device_id::DeviceId;

    fn identity(role: Role, not_after: SystemTime) -> ClientIdentity {
        ClientIdentity {
            role,
            not_after,
            serial: "01".into(),
        }
    }

    #[test]
    fn classes_follow_role_and_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let (later, earlier) = (now + Duration::from_secs(60), now - Duration::from_secs(60));
        let device = |at| {
            let id = DeviceId::parse("dev-1").unwrap_or_else(|e| panic!("{e}"));
            identity(
                Role::Device {
                    id,
                    namespace: None,
                },
                at,
            )
        };
        assert_eq!(
            classify(&identity(Role::Registration, later), now),
            (Class::Registration, None)
        );
        let (class, key) = classify(&identity(Role::Registration, earlier), now);
        assert_eq!((class, key.is_some()), (Class::Other, true));
        let (valid, expired) = (
            classify(&device(later), now),
            classify(&device(earlier), now),
        );
        assert_eq!(valid.0, Class::Device);
        assert_eq!(expired.0, Class::Other);
        // Each certificate of a device counts as its own client: another
        // (e.g. superseded) one cannot use up the current one's connections.
        let mut superseded = device(later);
        superseded.serial = "02".into();
        assert_ne!(valid.1, classify(&superseded, now).1);
        assert_eq!(valid.1, classify(&device(later), now).1);
        assert_eq!(valid.1, expired.1, "same certificate, same client");
        let other = Role::Other {
            common_name: "server".into(),
        };
        assert_eq!(classify(&identity(other, later), now).0, Class::Other);
    }
}
