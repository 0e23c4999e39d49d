//! Unit tests of the identity lifecycle in the SQLite store: serials,
//! renewal overlap, devices registered before serials were recorded,
//! lapsed enrolments and decommissioning.

use serde_json::json;

use super::test_backends::{Backend, both_backends};
use super::*;

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn cert(serial: &str, not_after_ms: u64, renewal: bool) -> IssuedCertificate {
    IssuedCertificate {
        serial: serial.into(),
        not_after_ms,
        renewal,
    }
}

fn enrolled(s: &dyn Store, d: &DeviceId) {
    let ns = Namespace::parse("default").unwrap();
    s.enrol(d, &ns, None, true, 1).unwrap();
}

fn first_certificate_is_current_and_a_renewal_waits_for_its_first_use(backend: &dyn Backend) {
    let s = backend.open();
    let d = id("dev-1");
    assert_eq!(
        s.certificate_standing(&d, "aa").unwrap(),
        CertStanding::UnknownDevice
    );
    enrolled(&*s, &d);
    assert_eq!(
        s.certificate_standing(&d, "aa").unwrap(),
        CertStanding::Superseded,
        "nothing issued yet"
    );
    s.record_certificate(&d, &cert("aa", 100, false), None, 2)
        .unwrap();
    assert_eq!(
        s.certificate_standing(&d, "aa").unwrap(),
        CertStanding::Current
    );
    s.record_certificate(&d, &cert("bb", 200, true), None, 3)
        .unwrap();
    assert_eq!(
        s.certificate_standing(&d, "aa").unwrap(),
        CertStanding::Current
    );
    assert_eq!(
        s.certificate_standing(&d, "bb").unwrap(),
        CertStanding::Promoted
    );
    assert_eq!(
        s.certificate_standing(&d, "bb").unwrap(),
        CertStanding::Current
    );
    assert_eq!(
        s.certificate_standing(&d, "aa").unwrap(),
        CertStanding::Superseded
    );
    let dev = s.device(&d).unwrap().unwrap();
    assert_eq!(
        (dev.cert_serial.as_deref(), dev.cert_not_after_ms),
        (Some("bb"), Some(200))
    );
}

fn devices_registered_before_serials_keep_working_until_their_first_renewal(backend: &dyn Backend) {
    let s = backend.open();
    let d = id("old-1");
    enrolled(&*s, &d);
    s.mark_registered(&d, None, 2).unwrap(); // as before migration 3
    assert_eq!(
        s.certificate_standing(&d, "any").unwrap(),
        CertStanding::Legacy
    );
    s.record_certificate(&d, &cert("cc", 100, true), None, 3)
        .unwrap();
    assert_eq!(
        s.certificate_standing(&d, "any").unwrap(),
        CertStanding::Legacy
    );
    assert_eq!(
        s.certificate_standing(&d, "cc").unwrap(),
        CertStanding::Promoted
    );
    assert_eq!(
        s.certificate_standing(&d, "any").unwrap(),
        CertStanding::Superseded
    );
}

fn a_lapsed_device_starts_over_once_and_a_decommissioned_one_waits_for_approval(
    backend: &dyn Backend,
) {
    let s = backend.open();
    let d = id("dev-1");
    enrolled(&*s, &d);
    s.record_certificate(&d, &cert("aa", 100, false), None, 2)
        .unwrap();
    s.record_certificate(&d, &cert("bb", 150, true), None, 3)
        .unwrap();
    // The renewed certificate has not lapsed yet.
    assert!(!s.enrol_again_if_lapsed(&d, 120, false).unwrap());
    assert!(s.enrol_again_if_lapsed(&d, 151, false).unwrap());
    assert_eq!(s.device(&d).unwrap().unwrap().approval, Approval::Pending);
    assert!(!s.enrol_again_if_lapsed(&d, 151, false).unwrap(), "once");

    let event = JsonEvent {
        at_ms: 5,
        index: 0,
        payload: vec![1, 2, 3],
    };
    s.set_configuration(&d, &json!({"workloads": []})).unwrap();
    s.decommission(&d, "alice", true, &event, 5).unwrap();
    let dev = s.device(&d).unwrap().unwrap();
    assert_eq!(dev.decommissioned.as_ref().unwrap().by, "alice");
    assert!(matches!(
        s.certificate_standing(&d, "bb").unwrap(),
        CertStanding::Revoked(_)
    ));
    assert!(s.configuration(&d).unwrap().is_none(), "purged");
    assert_eq!(
        s.events(&d, 10).unwrap().len(),
        1,
        "only the decommissioning"
    );
    let ns = Namespace::parse("default").unwrap();
    assert_eq!(
        s.enrol(&d, &ns, None, true, 6).unwrap(),
        EnrolOutcome::Created(Approval::Pending),
        "auto_approve does not apply"
    );
    assert_eq!(
        s.certificate_standing(&d, "bb").unwrap(),
        CertStanding::Superseded
    );
    assert!(matches!(
        s.decommission(&id("nobody"), "a", false, &event, 7),
        Err(StoreError::DeviceNotFound(_))
    ));
}

both_backends!(
    first_certificate_is_current_and_a_renewal_waits_for_its_first_use,
    devices_registered_before_serials_keep_working_until_their_first_renewal,
    a_lapsed_device_starts_over_once_and_a_decommissioned_one_waits_for_approval,
);
