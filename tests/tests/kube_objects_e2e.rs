//! `objects = "kubernetes"` end to end: a real server whose objects live in
//! a real Kubernetes API server for CRDs (`flotta_e2e::kube`), a real agent,
//! and `kubectl` as an operator uses it.
//!
//! The agent enrols: its EdgeDeviceSignedRequest appears in the cluster,
//! pending; `kubectl patch … approved: true` lets it register; its
//! EdgeDevice appears (with the server's finalizer) and `kubectl get
//! edgedevices` shows it online and up. A heartbeat a second causes no
//! status write (presence and phase did not change). An EdgeWorkload applied
//! with `kubectl apply` (Flotta's sample, pointed at the device) reaches the
//! device; one applied while the server is down (killed -9) reaches it after
//! the restart (the watches list again). `kubectl delete edgedevice`
//! decommissions the device: the object goes only after the server
//! released it, and the device's certificate is refused from then on.

#![allow(clippy::unwrap_used)]

mod agent_support;

use std::process::Command;
use std::time::Duration;

use flotta_e2e::kube::KubeApi;
use flotta_e2e::procs::{AgentProc, ServerProc, bin_dir, parse_metric};
use flotta_e2e::wait::eventually;
use flotta_server::device_id::DeviceId;
use flotta_server::store::{SqliteStore, Store};

use agent_support::{NO_PODMAN_AGENT_TOML, delivered_workloads};

const ID: &str = "kube-dev-1";
const CRDS: [&str; 4] = [
    "edgedevices.management.project-flotta.io",
    "edgedevicesets.management.project-flotta.io",
    "edgeworkloads.management.project-flotta.io",
    "edgedevicesignedrequest.management.project-flotta.io",
];
const LIMIT: Duration = Duration::from_secs(60);

/// Flotta's sample workload (server/crd/examples/edgeworkload-device.yaml),
/// named `name` and pinned to the test's device.
fn workload(name: &str) -> String {
    let sample = include_str!("../../server/crd/examples/edgeworkload-device.yaml");
    sample
        .replace("name: nginx\n", &format!("name: {name}\n"))
        .replace("171303c8224e4b27a0f4dbb4a351e397", ID)
}

fn get(kube: &KubeApi, what: &str, path: &str) -> String {
    let out = kube.kubectl(&[
        "get",
        what,
        ID,
        "-n",
        "default",
        "-o",
        &format!("jsonpath={path}"),
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Wait for `done`; on time-out, fail with the ends of the server's and
/// the API server's logs.
#[track_caller]
fn wait_for(server: &ServerProc, kube: &KubeApi, what: &str, done: impl FnMut() -> bool) {
    if !eventually(LIMIT, done) {
        let log = std::fs::read_to_string(server.data_dir.join("serve.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        panic!(
            "timed out waiting for {what}\n--- serve.log ---\n{tail}\n{}",
            kube.logs()
        );
    }
}

fn metric(server: &ServerProc, sample: &str) -> f64 {
    parse_metric(&server.metrics().unwrap(), sample)
}

#[test]
fn kubectl_manages_enrolment_workloads_and_decommissioning() {
    let kube = KubeApi::start();
    let bins = bin_dir().unwrap();
    let crds = Command::new(bins.join("flotta-server"))
        .arg("crds")
        .output()
        .unwrap();
    assert!(crds.status.success());
    kube.apply_ok(&String::from_utf8(crds.stdout).unwrap());
    for crd in CRDS {
        kube.wait_established(crd);
    }

    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "objects = \"kubernetes\"\nkubeconfig_path = \"{}\"\nauto_approve = false\n\
         default_heartbeat_period_seconds = 1\ncontroller_interval_seconds = 2\n",
        kube.kubeconfig_path().display()
    );
    let mut server = ServerProc::start(&bins, dir.path(), &toml).unwrap();
    let url = format!("https://localhost:{}", server.api_addr.port());
    let agent = AgentProc::start(
        &bins,
        dir.path(),
        ID,
        &url,
        &server.factory_dir,
        NO_PODMAN_AGENT_TOML,
    )
    .unwrap();

    // Enrolment: the request is in the cluster, pending.
    wait_for(
        &server,
        &kube,
        "the EdgeDeviceSignedRequest in the cluster",
        || get(&kube, "edsr", "{.status.conditions[0].type}") == "pending",
    );
    assert_eq!(get(&kube, "edsr", "{.spec.approved}"), "false");
    assert_eq!(get(&kube, "edgedevice", "{.metadata.name}"), "");

    // An operator approves it with kubectl.
    kube.kubectl_ok(&[
        "patch",
        "edsr",
        ID,
        "-n",
        "default",
        "--type=merge",
        "-p",
        r#"{"spec":{"approved":true}}"#,
    ]);
    wait_for(&server, &kube, "the device online in the cluster", || {
        get(&kube, "edgedevice", "{.status.presence}") == "online"
            && get(&kube, "edgedevice", "{.status.phase}") == "up"
    });
    assert_eq!(
        get(&kube, "edsr", "{.status.conditions[0].type}"),
        "approved"
    );
    assert_eq!(
        get(&kube, "edgedevice", "{.metadata.finalizers}"),
        r#"["management.project-flotta.io/flotta-server"]"#
    );
    let table = kube.kubectl_ok(&["get", "edgedevices", "-n", "default"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "PRESENCE", "PHASE", "WORKLOADS", "AGE"],
        "{table}"
    );
    assert!(table.contains(ID) && table.contains("online"), "{table}");

    // Steady state: heartbeats arrive, the status does not change, nothing
    // is written to the API server.
    let heartbeats = || {
        metric(
            &server,
            "flotta_records_received_total{class=\"heartbeat\"}",
        )
    };
    let status_writes = || {
        metric(
            &server,
            "flotta_kubernetes_requests_total{verb=\"status\",result=\"ok\"}",
        )
    };
    wait_for(&server, &kube, "the status writes to settle", || {
        let before = status_writes();
        std::thread::sleep(Duration::from_secs(3));
        status_writes() == before
    });
    let (writes, beats) = (status_writes(), heartbeats());
    wait_for(&server, &kube, "ten more heartbeats", || {
        heartbeats() >= beats + 10.0
    });
    assert_eq!(status_writes(), writes, "a heartbeat caused a status write");
    assert!(writes >= 2.0, "status writes: {writes}");

    // A workload applied with kubectl reaches the device.
    kube.apply_ok(&workload("web"));
    wait_for(&server, &kube, "the workload on the device", || {
        delivered_workloads(&agent) == ["web"]
    });
    // Its references condition went through the status subresource.
    let resolved = "jsonpath={.status.conditions[?(@.type==\"ReferencesResolved\")].status}";
    wait_for(
        &server,
        &kube,
        "the workload's references condition",
        || {
            kube.kubectl_ok(&[
                "get",
                "edgeworkload",
                "web",
                "-n",
                "default",
                "-o",
                resolved,
            ]) == "True"
        },
    );

    // The server is killed; an operator goes on; the server comes back and
    // lists everything again.
    server.kill9();
    kube.apply_ok(&workload("db"));
    server.restart().unwrap();
    wait_for(&server, &kube, "the second workload on the device", || {
        let mut names = delivered_workloads(&agent);
        names.sort();
        names == ["db", "web"]
    });

    // Deleting the EdgeDevice decommissions the device.
    kube.kubectl_ok(&["delete", "edgedevice", ID, "-n", "default", "--wait=false"]);
    let store = SqliteStore::open(&server.store_path()).unwrap();
    let id = DeviceId::parse(ID).unwrap();
    wait_for(&server, &kube, "the device decommissioned", || {
        store.device(&id).unwrap().unwrap().decommissioned.is_some()
    });
    wait_for(
        &server,
        &kube,
        "the EdgeDevice and its request gone",
        || {
            kube.kubectl_ok(&["get", "edgedevices,edsr", "-A", "-o", "name"])
                .trim()
                .is_empty()
        },
    );
    let decommissioned = store.device(&id).unwrap().unwrap().decommissioned.unwrap();
    assert_eq!(decommissioned.by, "kubernetes (EdgeDevice deleted)");
    // Its certificate is refused (the agent's next windows get 401s).
    let refused = || {
        let m = server.metrics().unwrap();
        m.lines()
            .filter(|l| l.starts_with("flotta_http_requests_total") && l.contains("status=\"401\""))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum::<f64>()
    };
    wait_for(&server, &kube, "the device's certificate refused", || {
        refused() >= 1.0
    });
    drop(agent);
}
