//! Unknown fields of applied manifests, as kubectl and the Kubernetes API
//! server handle them: `apply --validate=warn|strict|ignore` through the CLI
//! and `POST /apis/apply?fieldValidation=Warn|Strict|Ignore` with its
//! `Warning: 299 - "..."` headers on the raw admin route.
#![allow(clippy::unwrap_used)]

mod common;

use common::ctl::{ctl, fails, ok};
use flotta_server::testing::{TestOptions, TestServer, spawn};
use serde_json::Value;

const SET: &str = "apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDeviceSet
metadata: {name: cams, colour: red, labels: {any.key/x: kept}}
spec: {foo: 1, heartbeat: {periodSeconds: 30, bar: true}}
status: {whatever: ignored}
";

const WORKLOAD: &str = "apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeWorkload
metadata: {name: web}
spec:
  type: pod
  device: dev-1
  pod:
    spec:
      containers:
        - {name: a, image: nginx}
        - {name: b, image: nginx, foo: 1}
";

fn both() -> String {
    format!("{SET}---\n{WORKLOAD}")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stored(s: &TestServer, kind: &str, name: &str) -> Option<Value> {
    let out = ctl(s, &["get", kind, name, "-o", "json"], None);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn warn_is_the_default_stores_and_prints_one_line_per_unknown_field() {
    let s = spawn(TestOptions::default()).unwrap();
    let out = ctl(&s, &["apply", "-f", "-"], Some(&both()));
    let err = stderr(&out);
    let stdout = ok(out);
    assert!(stdout.contains("edgedeviceset/cams created"), "{stdout}");
    assert!(stdout.contains("edgeworkload/web created"), "{stdout}");
    // Several objects: each warning names its object. Nothing about status.
    assert_eq!(
        err,
        "Warning: edgedeviceset/cams: unknown field \"metadata.colour\"\n\
         Warning: edgedeviceset/cams: unknown field \"spec.foo\"\n\
         Warning: edgedeviceset/cams: unknown field \"spec.heartbeat.bar\"\n\
         Warning: edgeworkload/web: unknown field \"spec.pod.spec.containers[1].foo\"\n"
    );
    let set = stored(&s, "eds", "cams").unwrap();
    assert!(set["spec"].get("foo").is_none(), "{set}");
    assert_eq!(set["spec"]["heartbeat"]["periodSeconds"], 30);
    assert_eq!(set["metadata"]["labels"]["any.key/x"], "kept");

    // One object: exactly kubectl's line. Explicit --validate=warn is the same.
    let out = ctl(&s, &["apply", "--validate=warn", "-f", "-"], Some(WORKLOAD));
    assert_eq!(
        stderr(&out),
        "Warning: unknown field \"spec.pod.spec.containers[1].foo\"\n"
    );
    assert!(ok(out).contains("edgeworkload/web unchanged"));

    // What `get -o yaml` prints applies back without a warning.
    let yaml = ok(ctl(&s, &["get", "eds", "cams", "-o", "yaml"], None));
    let out = ctl(&s, &["apply", "-f", "-"], Some(&yaml));
    assert_eq!(stderr(&out), "");
    assert!(ok(out).contains("unchanged"));
}

#[test]
fn strict_refuses_everything_and_names_every_unknown_field() {
    let s = spawn(TestOptions::default()).unwrap();
    for flag in ["--validate=strict", "--validate=true", "--validate"] {
        let err = fails(ctl(&s, &["apply", flag, "-f", "-"], Some(&both())));
        assert_eq!(
            err.lines().next().unwrap_or_default(),
            "Error: server answered 400: EdgeDeviceSet \"cams\": strict decoding error: \
             unknown field \"metadata.colour\", unknown field \"spec.foo\", \
             unknown field \"spec.heartbeat.bar\"; EdgeWorkload \"web\": strict decoding \
             error: unknown field \"spec.pod.spec.containers[1].foo\"",
            "{flag}"
        );
        assert!(stored(&s, "eds", "cams").is_none(), "{flag}");
        assert!(stored(&s, "ew", "web").is_none(), "{flag}");
    }
    // Strict with nothing unknown stores as usual.
    let clean = "apiVersion: management.project-flotta.io/v1alpha1\nkind: EdgeDeviceSet\nmetadata: {name: clean}\nspec: {}\n";
    let out = ctl(&s, &["apply", "--validate=strict", "-f", "-"], Some(clean));
    assert_eq!(stderr(&out), "");
    assert!(ok(out).contains("edgedeviceset/clean created"));
    let err = fails(ctl(
        &s,
        &["apply", "--validate=maybe", "-f", "-"],
        Some(clean),
    ));
    assert!(
        err.contains("strict (or true), warn, ignore (or false)"),
        "{err}"
    );
}

#[test]
fn ignore_drops_unknown_fields_silently() {
    let s = spawn(TestOptions::default()).unwrap();
    for (flag, name) in [("--validate=ignore", "one"), ("--validate=false", "two")] {
        let manifests = both().replace("name: cams", &format!("name: {name}"));
        let out = ctl(&s, &["apply", flag, "-f", "-"], Some(&manifests));
        assert_eq!(stderr(&out), "", "{flag}");
        assert!(ok(out).contains(&format!("edgedeviceset/{name} created")));
        let set = stored(&s, "eds", name).unwrap();
        assert!(set["spec"].get("foo").is_none(), "{set}");
    }
}

fn post(s: &TestServer, query: &str, body: &str) -> (u16, Vec<String>, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("http://{}/apis/apply{query}", s.admin_addr);
    let mut resp = agent
        .post(&url)
        .content_type("application/yaml")
        .send(body)
        .unwrap();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let json = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    (resp.status().as_u16(), warnings, json)
}

#[test]
fn the_raw_route_takes_field_validation_and_answers_warning_headers() {
    let s = spawn(TestOptions::default()).unwrap();
    let set = "apiVersion: management.project-flotta.io/v1alpha1\nkind: EdgeDeviceSet\nmetadata: {name: cams}\nspec: {foo: 1}\n";

    let (status, _, body) = post(&s, "?fieldValidation=Strict", set);
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["message"],
        "EdgeDeviceSet \"cams\": strict decoding error: unknown field \"spec.foo\""
    );
    assert!(stored(&s, "eds", "cams").is_none());

    for query in ["?fieldValidation=Warn", ""] {
        let (status, warnings, body) = post(&s, query, set);
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            warnings,
            [r#"299 - "unknown field \"spec.foo\"""#],
            "{query}"
        );
        assert_eq!(body[0]["warnings"][0], "unknown field \"spec.foo\"");
    }
    let (status, warnings, body) = post(&s, "?fieldValidation=Ignore", set);
    assert_eq!(status, 200);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(body[0].get("warnings").is_none(), "{body}");
    assert!(stored(&s, "eds", "cams").is_some());

    // Several objects: each header names its object.
    let two = format!("{set}---\n{}", set.replace("cams", "more"));
    let (_, warnings, _) = post(&s, "?fieldValidation=Warn", &two);
    assert_eq!(
        warnings,
        [
            r#"299 - "edgedeviceset/cams: unknown field \"spec.foo\"""#,
            r#"299 - "edgedeviceset/more: unknown field \"spec.foo\"""#,
        ]
    );

    // Values are Kubernetes' own spelling.
    let (status, _, body) = post(&s, "?fieldValidation=strict", set);
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "fieldValidation: Unsupported value: \"strict\": supported values: \"Ignore\", \"Strict\", \"Warn\""
    );
}
