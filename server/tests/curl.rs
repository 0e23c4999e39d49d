//! Debian's curl as the client (`--cert --key --cacert`): every status code
//! the Edge API answers, with a client that is not ours.
// Helpers outside #[test] functions fail the test by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use common::{API, CurlFiles, onboard};
use flotta_server::testing::{TestOptions, spawn};

#[test]
fn curl_sees_every_status_code() {
    let s = spawn(TestOptions::default()).unwrap();
    let base = s.base_url();
    let reg = CurlFiles::new(&s.ca_pem, &s.registration);
    let json = ["-H", "content-type: application/json", "-d"];
    let post = |files: &CurlFiles, id: &str, body: &str| {
        let mut args = json.to_vec();
        args.push(body);
        files.curl(&format!("{base}{API}/data/{id}/out"), &args)
    };
    let enrol =
        r#"{"type":"data","directive":"enrolment","content":{"target_namespace":"default"}}"#;

    let (code, _, _) = post(&reg, "dev-1", enrol);
    assert_eq!(code, 200);
    let (code, _, _) = post(&reg, "dev-1", enrol);
    assert_eq!(code, 208);
    let (code, body, _) = post(&reg, "dev-1", "{oops");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("malformed JSON"), "{body}");
    let (code, body, _) = reg.curl(&format!("{base}{API}/data/dev-1/in"), &[]);
    assert_eq!(code, 403, "{body}");

    let cert = onboard(&s, "dev-2");
    let dev = CurlFiles::new(&s.ca_pem, &cert);
    let (code, body, _) = dev.curl(&format!("{base}{API}/data/dev-2/in"), &[]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"device_id\":\"dev-2\""), "{body}");
    let (code, _, _) = dev.curl(&format!("{base}{API}/data/dev-1/in"), &[]);
    assert_eq!(code, 403);

    let now = SystemTime::now();
    let ghost = s
        .device_cert(
            "ghost",
            "default",
            now - Duration::from_secs(60),
            now + Duration::from_secs(600),
        )
        .unwrap();
    let (code, _, _) =
        CurlFiles::new(&s.ca_pem, &ghost).curl(&format!("{base}{API}/data/ghost/in"), &[]);
    assert_eq!(code, 404);

    let expired = s
        .device_cert(
            "dev-2",
            "default",
            now - Duration::from_secs(600),
            now - Duration::from_secs(60),
        )
        .unwrap();
    let (code, body, _) =
        CurlFiles::new(&s.ca_pem, &expired).curl(&format!("{base}{API}/data/dev-2/in"), &[]);
    assert_eq!(code, 401, "{body}");
}
