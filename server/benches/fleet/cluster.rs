//! The Kubernetes mode (`FLOTTA_FLEET_OBJECTS=kubernetes`): a real
//! Kubernetes API server for CRDs (etcd + `crdtestserver`, the harness of
//! the end-to-end tests, `tests/src/kube.rs`, compiled in by path) with
//! Flotta's CRDs installed, and the server's configuration lines that keep
//! its objects there (`objects = "kubernetes"`).

use std::process::Command;

#[path = "../../../tests/src/kube.rs"]
#[allow(dead_code, unreachable_pub)]
mod kube;

use crate::seed::server_bin;

/// Where the server keeps Flotta's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Objects {
    /// The store's own table (`objects = "embedded"`, the default).
    Embedded,
    /// CRDs in a Kubernetes API server (`objects = "kubernetes"`).
    Kubernetes,
}

impl Objects {
    /// `FLOTTA_FLEET_OBJECTS`: `embedded` (default) or `kubernetes`.
    pub(crate) fn from_env() -> Self {
        match std::env::var("FLOTTA_FLEET_OBJECTS").as_deref() {
            Err(_) | Ok("" | "embedded") => Self::Embedded,
            Ok("kubernetes") => Self::Kubernetes,
            Ok(other) => panic!("FLOTTA_FLEET_OBJECTS={other}: embedded or kubernetes"),
        }
    }
}

/// Flotta's CRDs, as `flotta-server crds` names them.
const CRDS: [&str; 4] = [
    "edgedevices.management.project-flotta.io",
    "edgedevicesets.management.project-flotta.io",
    "edgeworkloads.management.project-flotta.io",
    "edgedevicesignedrequest.management.project-flotta.io",
];

/// A running API server with Flotta's CRDs; etcd and the API server are
/// killed, and etcd's data removed, when it is dropped.
pub(crate) struct Cluster {
    api: kube::KubeApi,
}

impl Cluster {
    /// Start etcd and the API server and install the CRDs the measured
    /// `flotta-server crds` prints.
    ///
    /// # Panics
    /// When a binary is missing (`crdtestserver`, `kubectl`: `cargo xtask
    /// kube-crd-server` builds them; `etcd`: Debian's `etcd-server`), naming
    /// it, or the API server does not get ready.
    pub(crate) fn start() -> Self {
        let api = kube::KubeApi::start();
        let crds = Command::new(server_bin())
            .arg("crds")
            .output()
            .expect("running flotta-server crds");
        assert!(crds.status.success(), "flotta-server crds failed");
        api.apply_ok(&String::from_utf8(crds.stdout).expect("UTF-8 CRDs"));
        for crd in CRDS {
            api.wait_established(crd);
        }
        Cluster { api }
    }

    /// The server's configuration lines for this cluster: objects there,
    /// status writes at most `status_writes_per_second`.
    pub(crate) fn config_toml(&self, status_writes_per_second: u32) -> String {
        format!(
            "objects = \"kubernetes\"\nkubeconfig_path = \"{}\"\n\
             kubernetes_status_writes_per_second = {status_writes_per_second}\n",
            self.api.kubeconfig_path().display()
        )
    }

    /// How many objects of `resource` (e.g. `edgedevices`) the cluster holds.
    pub(crate) fn count(&self, resource: &str) -> usize {
        self.api
            .kubectl_ok(&["get", resource, "--all-namespaces", "-o", "name"])
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    }

    /// The ends of etcd's and the API server's logs (for failure messages).
    pub(crate) fn logs(&self) -> String {
        self.api.logs()
    }
}
