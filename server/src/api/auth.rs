//! Authorisation: which client certificate may do what, for which device.
//!
//! | certificate | may | otherwise |
//! | --- | --- | --- |
//! | registration (CN=`register`) | enrol, register | 403 |
//! | device (CN=id) | anything for its own id | 403 for another id |
//! | expired device | register its own id (renewal) | 401 |
//! | expired registration | nothing | 401 |
//! | other (trusted CA, unknown CN) | nothing | 403 |

use std::time::SystemTime;

use crate::pki::{ClientIdentity, Role};

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `POST data/out`, directive `enrolment`.
    Enrol,
    /// `POST data/out`, directive `registration`.
    Register,
    /// `POST data/out`, directive `heartbeat`.
    Heartbeat,
    /// `GET data/in`.
    GetConfiguration,
    /// `GET control/in`.
    GetControl,
    /// `POST control/out`.
    PostControl,
    /// `POST batch`.
    Batch,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The certificate has expired (401).
    #[error(
        "client certificate expired; the only request it may still make is registration (renewal) for its own device id"
    )]
    Expired,
    /// The certificate does not allow this (403).
    #[error("{0}")]
    Forbidden(String),
}

/// Decide whether `identity` may perform `action` on device `path_id` at `now`.
pub fn authorize(
    identity: &ClientIdentity,
    path_id: &str,
    action: Action,
    now: SystemTime,
) -> Result<(), Denied> {
    let expired = identity.is_expired(now);
    match &identity.role {
        Role::Device { id, .. } => {
            let own = id.as_str() == path_id;
            if expired && !(own && action == Action::Register) {
                return Err(Denied::Expired);
            }
            if !own {
                return Err(Denied::Forbidden(format!(
                    "the certificate of device \"{}\" cannot act for device \"{path_id}\"",
                    id.as_str()
                )));
            }
            Ok(())
        }
        Role::Registration => {
            if expired {
                return Err(Denied::Expired);
            }
            match action {
                Action::Enrol | Action::Register => Ok(()),
                _ => Err(Denied::Forbidden(
                    "the registration certificate may only enrol and register devices".into(),
                )),
            }
        }
        Role::Admin { name, .. } => {
            if expired {
                return Err(Denied::Expired);
            }
            Err(Denied::Forbidden(format!(
                "the admin certificate of \"{name}\" is for the admin listener, not the device API"
            )))
        }
        Role::Other { common_name } => {
            if expired {
                return Err(Denied::Expired);
            }
            Err(Denied::Forbidden(format!(
                "a certificate for \"{common_name}\" is neither a device nor the registration certificate"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::device_id::DeviceId;

    const ALL: [Action; 7] = [
        Action::Enrol,
        Action::Register,
        Action::Heartbeat,
        Action::GetConfiguration,
        Action::GetControl,
        Action::PostControl,
        Action::Batch,
    ];

    fn ident(role: Role, expired: bool) -> (ClientIdentity, SystemTime) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let not_after = if expired {
            now - Duration::from_secs(1)
        } else {
            now + Duration::from_secs(1)
        };
        (
            ClientIdentity {
                role,
                not_after,
                serial: "01".into(),
            },
            now,
        )
    }

    fn device(id: &str) -> Role {
        Role::Device {
            id: DeviceId::parse(id).unwrap(),
            namespace: None,
        }
    }

    #[test]
    fn device_certificate_acts_only_for_itself() {
        let (i, now) = ident(device("a"), false);
        for act in ALL {
            assert_eq!(authorize(&i, "a", act, now), Ok(()), "{act:?}");
            assert!(matches!(
                authorize(&i, "b", act, now),
                Err(Denied::Forbidden(_))
            ));
        }
    }

    #[test]
    fn expired_device_certificate_may_only_renew() {
        let (i, now) = ident(device("a"), true);
        for act in ALL {
            let want = if act == Action::Register {
                Ok(())
            } else {
                Err(Denied::Expired)
            };
            assert_eq!(authorize(&i, "a", act, now), want, "{act:?}");
            assert_eq!(
                authorize(&i, "b", act, now),
                Err(Denied::Expired),
                "{act:?}"
            );
        }
    }

    #[test]
    fn registration_certificate_may_only_enrol_and_register() {
        let (i, now) = ident(Role::Registration, false);
        for act in ALL {
            let r = authorize(&i, "any", act, now);
            if matches!(act, Action::Enrol | Action::Register) {
                assert_eq!(r, Ok(()));
            } else {
                assert!(matches!(r, Err(Denied::Forbidden(_))), "{act:?}");
            }
        }
        let (i, now) = ident(Role::Registration, true);
        for act in ALL {
            assert_eq!(authorize(&i, "any", act, now), Err(Denied::Expired));
        }
    }

    #[test]
    fn other_certificates_may_do_nothing() {
        let (i, now) = ident(
            Role::Other {
                common_name: "Flotta Server".into(),
            },
            false,
        );
        for act in ALL {
            assert!(matches!(
                authorize(&i, "x", act, now),
                Err(Denied::Forbidden(_))
            ));
        }
    }
}
