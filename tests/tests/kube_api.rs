//! The Kubernetes API server harness ([`flotta_e2e::kube`]) with flotta's own
//! CRDs, as `flotta-server crds` prints them: a real apiextensions-apiserver
//! establishes them, serves EdgeDevices and EdgeWorkloads with their
//! printer columns and status subresource, and refuses what their schemas
//! forbid. Needs `scripts/kube-crd-server.sh` (run by `scripts/setup.sh`)
//! and Debian's `etcd-server`; fails, never skips, without them.

use std::process::{Command, Output};

use flotta_e2e::kube::KubeApi;
use flotta_e2e::procs::bin_dir;

const GROUP: &str = "management.project-flotta.io";

const DEVICE_NAME: &str = "171303c8224e4b27a0f4dbb4a351e397";
const EDGE_DEVICE: &str = "\
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDevice
metadata:
  name: 171303c8224e4b27a0f4dbb4a351e397
  namespace: default
  labels:
    app: camera
spec:
  requestTime: \"2024-03-01T09:30:00Z\"
  heartbeat:
    periodSeconds: 30
";

const EDGE_WORKLOAD: &str = "\
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeWorkload
metadata:
  name: nginx
  namespace: default
spec:
  type: pod
  device: 171303c8224e4b27a0f4dbb4a351e397
  pod:
    spec:
      containers:
        - name: nginx
          image: docker.io/library/nginx:1.25
";

/// A kind whose CRD declares printer columns (deviceid, targetNamespace,
/// Approved, Status).
const REQUEST_NAME: &str = "5b2f6a4e9c8d4a0f8e1d2c3b4a596877";
const SIGNED_REQUEST: &str = "\
apiVersion: management.project-flotta.io/v1alpha1
kind: EdgeDeviceSignedRequest
metadata:
  name: 5b2f6a4e9c8d4a0f8e1d2c3b4a596877
  namespace: default
spec:
  targetNamespace: fleet-a
  approved: true
";

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The printer columns the CRD `crd` (its JSON) declares for its first
/// version, kubectl's default view (priority 0): (name, JSONPath, type).
fn printer_columns(crd: &serde_json::Value) -> Vec<(String, String, String)> {
    crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["priority"].as_i64().unwrap_or(0) == 0)
        .map(|c| {
            let field = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (field("name"), field("jsonPath"), field("type"))
        })
        .collect()
}

/// `kubectl get RESOURCE`: the header and the row of `name`, cut at the
/// header's column starts (kubectl aligns its columns; a cell may be empty).
fn table(kube: &KubeApi, resource: &str, name: &str) -> (Vec<String>, Vec<String>) {
    let text = kube.kubectl_ok(&["get", resource]);
    eprintln!("kubectl get {resource}:\n{text}");
    let mut lines = text.lines();
    let header_line = lines.next().unwrap_or_default();
    let mut starts = Vec::new();
    let mut header = Vec::new();
    let mut at = 0;
    for cell in header_line.split("  ") {
        if !cell.trim().is_empty() {
            starts.push(at + cell.len() - cell.trim_start().len());
            header.push(cell.trim().to_owned());
        }
        at += cell.len() + 2;
    }
    let cut = |line: &str| -> Vec<String> {
        (0..starts.len())
            .map(|i| {
                let end = starts.get(i + 1).copied().unwrap_or(usize::MAX);
                line.get(starts[i]..end.min(line.len()))
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            })
            .collect()
    };
    let row = lines
        .map(cut)
        .find(|r| r.first().map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("{name} not listed by kubectl get {resource}:\n{text}"));
    (header, row)
}

/// The server's table for `plural` shows, for `name`, the columns its CRD
/// declares (NAME and AGE when it declares none), each cell the value of
/// its JSONPath (evaluated by kubectl on the object; dates and list paths
/// are printed otherwise and only looked for). Returns header -> cell.
fn check_table(kube: &KubeApi, plural: &str, name: &str) -> Vec<(String, String)> {
    let crd = kube.kubectl_ok(&["get", "crd", &format!("{plural}.{GROUP}"), "-o", "json"]);
    let columns = printer_columns(&serde_json::from_str(&crd).expect("CRD JSON"));
    let (header, row) = table(kube, plural, name);
    let mut expected = vec!["NAME".to_owned()];
    if columns.is_empty() {
        expected.push("AGE".to_owned());
    }
    expected.extend(columns.iter().map(|(n, _, _)| n.to_uppercase()));
    assert_eq!(header, expected, "kubectl get {plural}: the CRD's columns");
    assert_eq!(row[0], name);
    for (i, (column, path, kind)) in columns.iter().enumerate() {
        if kind == "date" || path.contains('[') {
            continue;
        }
        let value = kube.kubectl_ok(&[
            "get",
            &format!("{plural}/{name}"),
            "-o",
            &format!("jsonpath={{{path}}}"),
        ]);
        assert_eq!(
            row[i + 1],
            value,
            "kubectl get {plural}: column {column} ({path})"
        );
    }
    header.into_iter().zip(row).collect()
}

#[test]
fn flotta_crds_are_served_by_a_real_api_server() {
    for (yaml, name) in [(EDGE_DEVICE, DEVICE_NAME), (SIGNED_REQUEST, REQUEST_NAME)] {
        assert!(yaml.contains(&format!("name: {name}\n")));
    }
    let bins = bin_dir().expect("flotta-server built");
    let out = Command::new(bins.join("flotta-server"))
        .arg("crds")
        .output()
        .expect("flotta-server runs");
    assert!(out.status.success(), "flotta-server crds: {}", stderr(&out));
    let crds = stdout(&out);
    let names: Vec<String> = crds
        .lines()
        .filter_map(|l| l.strip_prefix("  name: "))
        .filter(|n| n.ends_with(GROUP))
        .map(str::to_owned)
        .collect();
    for plural in ["edgedevices", "edgeworkloads", "edgedevicesignedrequest"] {
        assert!(
            names.contains(&format!("{plural}.{GROUP}")),
            "flotta-server crds has no {plural}: {names:?}"
        );
    }

    let kube = KubeApi::start();
    let applied = kube.apply_ok(&crds);
    for name in &names {
        let created = format!("customresourcedefinition.apiextensions.k8s.io/{name} created");
        assert!(applied.contains(&created), "{name} not created:\n{applied}");
        kube.wait_established(name);
    }
    // Discovery lists the group's resources, as kube-apiserver's does.
    let resources = kube.kubectl_ok(&["api-resources", "--api-group", GROUP, "-o", "name"]);
    for plural in ["edgedevices", "edgeworkloads"] {
        assert!(
            resources.lines().any(|r| r == format!("{plural}.{GROUP}")),
            "api-resources lacks {plural}:\n{resources}"
        );
    }

    kube.apply_ok(EDGE_DEVICE);
    kube.apply_ok(EDGE_WORKLOAD);
    kube.apply_ok(SIGNED_REQUEST);

    // `kubectl get` prints the columns each CRD declares (the server's
    // table), with the values of their JSONPaths.
    check_table(&kube, "edgeworkloads", "nginx");
    let request = check_table(&kube, "edgedevicesignedrequest", REQUEST_NAME);
    let shown = |table: &[(String, String)], value: &str| table.iter().any(|(_, v)| v == value);
    assert!(
        shown(&request, "fleet-a") && shown(&request, "true"),
        "the signed request's target namespace and approval are not shown: {request:?}"
    );

    // The status subresource: a merge patch of status through it is kept...
    let device = format!("edgedevice/{DEVICE_NAME}");
    let patch = |subresource: bool, patch: &str| {
        let mut args = vec!["patch", &device, "--type=merge", "-p", patch];
        if subresource {
            args.push("--subresource=status");
        }
        kube.kubectl(&args)
    };
    let get = |path: &str| kube.kubectl_ok(&["get", &device, "-o", &format!("jsonpath={path}")]);
    let out = patch(
        true,
        r#"{"status":{"phase":"up","lastSeenTime":"2024-03-01T10:00:00Z"}}"#,
    );
    assert!(out.status.success(), "status patch: {}", stderr(&out));
    assert_eq!(get("{.status.phase}"), "up");
    assert_eq!(get("{.status.lastSeenTime}"), "2024-03-01T10:00:00Z");
    // ...status sent to the main resource is ignored, and spec sent to the
    // status subresource too...
    let out = patch(false, r#"{"status":{"phase":"down"}}"#);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(get("{.status.phase}"), "up");
    let out = patch(true, r#"{"spec":{"heartbeat":{"periodSeconds":99}}}"#);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(get("{.spec.heartbeat.periodSeconds}"), "30");
    // ...and a status against the schema is refused.
    let out = patch(true, r#"{"status":{"phase":7}}"#);
    assert!(!out.status.success(), "a numeric status.phase was accepted");
    assert!(
        stderr(&out).contains("status.phase: Invalid value"),
        "{}",
        stderr(&out)
    );
    assert_eq!(get("{.status.phase}"), "up");

    // The device's table shows what its status says (the CRD's columns).
    let table = check_table(&kube, "edgedevices", DEVICE_NAME);
    assert!(
        table.len() > 2,
        "edgedevices has no printer columns: {table:?}"
    );
    assert!(shown(&table, "up"), "the phase is not shown: {table:?}");

    // Objects the schemas forbid are refused (422 Invalid; 400 for a field
    // the schema does not have, under kubectl's strict field validation),
    // and not stored.
    for (what, yaml, complaint) in [
        (
            "a workload without spec.type",
            EDGE_WORKLOAD
                .replace("  type: pod\n", "")
                .replace("name: nginx\n", "name: untyped\n"),
            "is invalid: spec.type: Required value",
        ),
        (
            "a heartbeat period below its minimum",
            EDGE_DEVICE
                .replace("periodSeconds: 30", "periodSeconds: 0")
                .replace(DEVICE_NAME, "0123456789abcdef0123456789abcdef"),
            "is invalid: spec.heartbeat.periodSeconds: Invalid value: 0",
        ),
        (
            "a signed request without its target namespace",
            SIGNED_REQUEST
                .replace("  targetNamespace: fleet-a\n", "")
                .replace(REQUEST_NAME, "fedcba9876543210fedcba9876543210"),
            "is invalid: spec.targetNamespace: Required value",
        ),
        (
            "a device with a field its schema does not have",
            EDGE_DEVICE
                .replace("spec:\n", "spec:\n  bogus: 1\n")
                .replace(DEVICE_NAME, "00112233445566778899aabbccddeeff"),
            "unknown field \"spec.bogus\"",
        ),
    ] {
        let out = kube.apply_stdin(&yaml);
        assert!(
            !out.status.success(),
            "{what} was accepted:\n{}",
            stdout(&out)
        );
        assert!(
            stderr(&out).contains(complaint),
            "{what}: refused, but not for its schema (expected {complaint:?}):\n{}",
            stderr(&out)
        );
    }
    for plural in ["edgeworkloads", "edgedevices", "edgedevicesignedrequest"] {
        let listed = kube.kubectl_ok(&["get", plural, "-o", "name"]);
        assert_eq!(listed.lines().count(), 1, "{plural}:\n{listed}");
    }

    // Deleting works.
    kube.kubectl_ok(&["delete", "edgeworkload", "nginx", "--wait=true"]);
    let listed = kube.kubectl_ok(&["get", "edgeworkloads", "-o", "name"]);
    assert_eq!(listed.trim(), "", "edgeworkloads left after delete");
}
