//! The kubectl-style CLI against an in-process server's admin listener:
//! applying Flotta's example manifests unchanged, get/describe/delete output,
//! `-o yaml`/`-o json` round trips, clear errors; and `/metrics` scraped and
//! parsed.
#![allow(clippy::unwrap_used)]

mod common;

use common::ctl::{ctl, example, fails, ok};
use common::{Client, batch, batch_response, heartbeat, log, onboard};
use flotta_proto::payload::DeviceStatus;
use flotta_server::testing::{TestOptions, spawn};
use serde_json::Value;

#[test]
fn apply_get_describe_delete_with_flotta_examples() {
    let s = spawn(TestOptions::default()).unwrap();
    let dev = Client::new(&s, &onboard(&s, "dev-1"));
    let r = batch_response(&dev.batch(
        "dev-1",
        &batch("", vec![log(1, "hello"), heartbeat(2, DeviceStatus::Up)]),
    ));
    assert_eq!(r.acked_through, Some(2));

    for (file, want) in [
        ("edgedeviceset.yaml", "edgedeviceset/cameras created"),
        (
            "edgedevice.yaml",
            "edgedevice/171303c8224e4b27a0f4dbb4a351e397 created",
        ),
        ("edgedevice-status.yaml", "created"),
        (
            "edgedevicesignedrequest.yaml",
            "edgedevicesignedrequest/171303c8224e4b27a0f4dbb4a351e397 created",
        ),
        ("edgeworkload-device.yaml", "edgeworkload/nginx created"),
        (
            "edgeworkload-selector.yaml",
            "edgeworkload/camera-stream created",
        ),
    ] {
        let out = ok(ctl(&s, &["apply", "-f", &example(file)], None));
        assert!(out.contains(want), "{file}: {out}");
    }
    // Applying again changes nothing.
    let out = ok(ctl(
        &s,
        &["apply", "-f", &example("edgeworkload-device.yaml")],
        None,
    ));
    assert!(out.contains("edgeworkload/nginx unchanged"), "{out}");

    // Table: the enrolled device is online, with its last-seen age.
    let out = ok(ctl(&s, &["get", "edgedevices"], None));
    let header = out.lines().next().unwrap();
    for col in ["NAME", "PRESENCE", "PHASE", "LAST SEEN", "WORKLOADS"] {
        assert!(header.contains(col), "{out}");
    }
    let row = out
        .lines()
        .find(|l| l.starts_with("dev-1"))
        .expect("dev-1 listed");
    assert!(row.contains("online"), "{out}");
    assert!(row.contains("up"), "{out}");
    // WORKLOADS is assigned/running: nginx names the example device.
    let cell = |name: &str| {
        let row = out.lines().find(|l| l.starts_with(name)).unwrap();
        row.split_whitespace().nth(4).unwrap().to_owned()
    };
    assert_eq!(cell("dev-1"), "0/0", "{out}");
    assert_eq!(cell("171303c8224e4b27a0f4dbb4a351e397"), "1/0", "{out}");
    let out = ok(ctl(&s, &["get", "edsr", "-A"], None));
    assert!(out.starts_with("NAMESPACE"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("flotta") && l.contains("171303c8224e4b27a0f4dbb4a351e397")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("default") && l.contains("dev-1") && l.contains("true")),
        "{out}"
    );

    // describe shows labels (hardware, markers) and presence.
    let out = ok(ctl(&s, &["describe", "ed", "dev-1"], None));
    assert!(out.contains("Name:         dev-1"), "{out}");
    assert!(out.contains("edgedeviceSignedRequest=true"), "{out}");
    assert!(out.contains("Presence:     online"), "{out}");
    assert!(out.contains("Events:       <none>"), "{out}");

    // -o yaml / -o json round trip: delete, apply the output back, same object.
    for format in ["yaml", "json"] {
        let before = ok(ctl(&s, &["get", "ew", "camera-stream", "-o", format], None));
        let parsed: Value = serde_norway::from_str(&before).unwrap();
        assert_eq!(
            parsed["spec"]["deviceSelector"]["matchLabels"]["app"],
            "camera"
        );
        let out = ok(ctl(&s, &["delete", "ew", "camera-stream"], None));
        assert!(out.contains("edgeworkload/camera-stream deleted"), "{out}");
        let err = fails(ctl(&s, &["get", "ew", "camera-stream"], None));
        assert!(err.contains("not found"), "{err}");
        let out = ok(ctl(&s, &["apply", "-f", "-"], Some(&before)));
        assert!(out.contains("edgeworkload/camera-stream created"), "{out}");
        let after: Value = serde_norway::from_str(&ok(ctl(
            &s,
            &["get", "ew", "camera-stream", "-o", format],
            None,
        )))
        .unwrap();
        assert_eq!(after["spec"], parsed["spec"]);
        assert_eq!(after["metadata"]["labels"], parsed["metadata"]["labels"]);
    }
    // A list printed as YAML applies back as a whole.
    let list = ok(ctl(&s, &["get", "ew", "-o", "yaml"], None));
    let out = ok(ctl(&s, &["apply", "-f", "-"], Some(&list)));
    assert_eq!(out.matches("unchanged").count(), 2, "{out}");
}

#[test]
fn bad_input_is_refused_clearly_and_stores_nothing() {
    let s = spawn(TestOptions::default()).unwrap();
    let err = fails(ctl(&s, &["get", "pods"], None));
    assert!(err.contains("unknown kind \"pods\""), "{err}");
    let err = fails(ctl(&s, &["apply", "-f", &example("edgeconfig.yaml")], None));
    assert!(err.contains("unknown kind"), "{err}");
    let good = std::fs::read_to_string(example("edgedeviceset.yaml")).unwrap();
    let bad = format!(
        "{good}\n---\napiVersion: management.project-flotta.io/v1alpha1\nkind: EdgeDeviceSet\nmetadata: {{name: broken}}\nspec: {{heartbeat: {{periodSeconds: often}}}}\n"
    );
    let err = fails(ctl(&s, &["apply", "-f", "-"], Some(&bad)));
    assert!(
        err.contains("broken") && err.contains("periodSeconds"),
        "{err}"
    );
    // The valid first document was not stored either.
    let out = ctl(&s, &["get", "eds"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("No edgedevicesets found"));
    let err = fails(ctl(&s, &["delete", "ew", "nothing-here"], None));
    assert!(err.contains("not found"), "{err}");
    // The printed CRDs are the generated ones.
    let out = ok(ctl(&s, &["crds"], None));
    assert_eq!(out, flotta_crd::crds_yaml());
}

/// Parse the text exposition: every sample line is `name{labels} value`.
fn samples(text: &str) -> Vec<(String, f64)> {
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse::<f64>().unwrap())
        })
        .collect()
}

fn value(samples: &[(String, f64)], series: &str) -> f64 {
    samples
        .iter()
        .find(|(s, _)| s == series)
        .unwrap_or_else(|| panic!("no {series}"))
        .1
}

#[test]
fn metrics_are_scraped_and_parsed() {
    let s = spawn(TestOptions::default()).unwrap();
    let dev = Client::new(&s, &onboard(&s, "dev-1"));
    for i in 0..3 {
        let r = dev.batch(
            "dev-1",
            &batch(
                "",
                vec![log(i * 2 + 1, "x"), heartbeat(i * 2 + 2, DeviceStatus::Up)],
            ),
        );
        assert_eq!(r.status, 200);
    }
    // A pass counts devices by presence (it also runs after admin writes).
    ok(ctl(
        &s,
        &["apply", "-f", &example("edgedeviceset.yaml")],
        None,
    ));

    let url = format!("http://{}/metrics", s.admin_addr);
    let text = ureq::get(&url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let m = samples(&text);
    let batch_route = "/api/flotta-management/v1/batch/{device_id}";
    assert_eq!(
        value(
            &m,
            &format!("flotta_http_requests_total{{route=\"{batch_route}\",status=\"200\"}}")
        ),
        3.0
    );
    assert_eq!(value(&m, "flotta_batches_total"), 3.0);
    assert_eq!(
        value(&m, "flotta_records_received_total{class=\"log\"}"),
        3.0
    );
    assert_eq!(
        value(&m, "flotta_records_received_total{class=\"heartbeat\"}"),
        3.0
    );
    assert_eq!(value(&m, "flotta_devices{presence=\"online\"}"), 1.0);
    assert_eq!(value(&m, "flotta_devices{presence=\"offline\"}"), 0.0);
    let count = value(
        &m,
        "flotta_store_operation_seconds_count{op=\"ingest_batch\"}",
    );
    assert_eq!(count, 3.0);
    assert_eq!(
        value(
            &m,
            "flotta_store_operation_seconds_bucket{le=\"+Inf\",op=\"ingest_batch\"}"
        ),
        count
    );
}
