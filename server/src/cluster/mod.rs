//! `objects = "kubernetes"`: Flotta's objects as CRDs in a cluster, so that
//! `kubectl` manages them and the controller runs on them unchanged.
//!
//! - [`Cluster::connect`] reads the kubeconfig (or the in-cluster service
//!   account), checks that the cluster serves Flotta's CRDs (else it says
//!   how to install them), starts one watch per kind ([`mirror`]) and waits
//!   for their first lists;
//! - [`ClusterObjects`] is the controller's [`crate::objects::ObjectSource`]
//!   over them ([`objects`]); statuses go through a coalescing,
//!   rate-limited queue ([`status_queue`]);
//! - [`Cluster::spawn`] runs the watches, the status writer, and a
//!   controller pass soon after any change someone else made (a `kubectl
//!   apply`, an approval), after releasing deleted EdgeDevices
//!   ([`finalizer`]).
//!
//! ConfigMaps and Secrets are watched when the cluster serves them (a
//! CRD-only API server does not: workloads' references to them then stay
//! unresolved, and the start-up log says so). What the server may do in the
//! cluster, and so what its RBAC grants, is listed in [`access`].
//!
//! Without `kubeconfig_path` the client is kube's `Config::infer`:
//! `$KUBECONFIG`, `~/.kube/config`, then the in-cluster service account
//! (`KUBERNETES_SERVICE_HOST`/`_PORT`, the token file, re-read as it
//! rotates, and the CA under `/var/run/secrets/kubernetes.io/serviceaccount`).

pub mod access;
mod api;
mod changelog;
pub mod finalizer;
mod mirror;
mod objects;
pub mod status_queue;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::ApiResource;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use objects::ClusterObjects;

use crate::config::{Config, KubernetesSettings};
use crate::controller::runner::Runner;
use crate::metrics::Metrics;
use crate::objects::{Kind, ObjectSource};
use crate::service::EdgeService;
use mirror::Mirror;
use status_queue::StatusQueue;

/// Why the cluster cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No usable kubeconfig or in-cluster account.
    #[error("no usable Kubernetes configuration: {0}")]
    Config(String),
    /// The API server did not answer discovery.
    #[error("the Kubernetes API server did not answer: {0}")]
    Unreachable(String),
    /// Flotta's CRDs are not installed.
    #[error(
        "the cluster does not serve {0} (management.project-flotta.io/v1alpha1): install the CRDs with `flotta-server crds | kubectl apply -f -`"
    )]
    MissingCrds(String),
    /// A watch did not deliver its first list in time.
    #[error("no full list of {0} within kubernetes_sync_timeout_seconds")]
    NotSynced(String),
}

impl ClusterError {
    /// Whether connecting again later may succeed.
    pub fn is_retriable(&self) -> bool {
        !matches!(self, ClusterError::Config(_))
    }
}

/// What the cluster's parts share.
pub(crate) struct Shared {
    client: Client,
    resources: BTreeMap<Kind, ApiResource>,
    mirrors: BTreeMap<Kind, Arc<Mirror>>,
    status: StatusQueue,
    request_timeout: Duration,
    metrics: Arc<Metrics>,
    /// The last number the mirrors gave a changed object.
    change_numbers: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("kinds", &self.resources.keys().collect::<Vec<_>>())
            .field("status_pending", &self.status.len())
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// A connected cluster (see the module docs).
#[derive(Debug)]
pub struct Cluster {
    shared: Arc<Shared>,
    settings: KubernetesSettings,
    changed: Arc<watch::Sender<u64>>,
    stop: watch::Sender<bool>,
    watches: Vec<JoinHandle<()>>,
}

/// The kinds a cluster serves, from discovery: Flotta's four CRDs (all
/// required) and core v1 ConfigMaps and Secrets (when present). `flotta`
/// and `core` are the resource names (plurals) the API server listed.
pub fn served_kinds(flotta: &[String], core: &[String]) -> Result<Vec<Kind>, ClusterError> {
    let mut kinds = Vec::new();
    for kind in Kind::ALL {
        let listed = if kind.api_version() == "v1" {
            core
        } else {
            flotta
        };
        let plural = kind_plural(kind);
        if listed.iter().any(|r| r == plural) {
            kinds.push(kind);
        } else if kind.api_version() != "v1" {
            return Err(ClusterError::MissingCrds(kind.as_str().to_owned()));
        }
    }
    Ok(kinds)
}

/// The resource (plural) name the API server serves a kind under; Flotta's
/// EdgeDeviceSignedRequest CRD keeps its upstream singular plural.
fn kind_plural(kind: Kind) -> &'static str {
    match kind {
        Kind::EdgeDevice => "edgedevices",
        Kind::EdgeDeviceSet => "edgedevicesets",
        Kind::EdgeWorkload => "edgeworkloads",
        Kind::EdgeDeviceSignedRequest => "edgedevicesignedrequest",
        Kind::ConfigMap => "configmaps",
        Kind::Secret => "secrets",
    }
}

fn api_resource(kind: Kind) -> ApiResource {
    match kind {
        Kind::EdgeDevice => ApiResource::erase::<flotta_crd::EdgeDevice>(&()),
        Kind::EdgeDeviceSet => ApiResource::erase::<flotta_crd::EdgeDeviceSet>(&()),
        Kind::EdgeWorkload => ApiResource::erase::<flotta_crd::EdgeWorkload>(&()),
        Kind::EdgeDeviceSignedRequest => {
            ApiResource::erase::<flotta_crd::EdgeDeviceSignedRequest>(&())
        }
        Kind::ConfigMap => ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
        Kind::Secret => ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&()),
    }
}

async fn client(settings: &KubernetesSettings) -> Result<Client, ClusterError> {
    let config = match &settings.kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| ClusterError::Config(e.to_string()))?,
    };
    Client::try_from(config).map_err(|e| ClusterError::Config(e.to_string()))
}

impl Cluster {
    /// Connect as `config` says, check the CRDs, start the watches and wait
    /// for their first lists.
    pub async fn connect(config: &Config, metrics: Arc<Metrics>) -> Result<Self, ClusterError> {
        let settings = config.kubernetes_settings();
        let client = client(&settings).await?;
        let names = |list: k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList| {
            list.resources
                .into_iter()
                .map(|r| r.name)
                .collect::<Vec<_>>()
        };
        let flotta = match tokio::time::timeout(
            settings.request_timeout,
            client.list_api_group_resources(flotta_crd::API_VERSION),
        )
        .await
        {
            Ok(Ok(list)) => names(list),
            Ok(Err(kube::Error::Api(s))) if s.code == 404 => Vec::new(),
            Ok(Err(e)) => return Err(ClusterError::Unreachable(e.to_string())),
            Err(_) => return Err(ClusterError::Unreachable("discovery timed out".into())),
        };
        let core = match tokio::time::timeout(
            settings.request_timeout,
            client.list_core_api_resources("v1"),
        )
        .await
        {
            Ok(Ok(list)) => names(list),
            _ => Vec::new(),
        };
        let kinds = served_kinds(&flotta, &core)?;
        for missing in [Kind::ConfigMap, Kind::Secret] {
            if !kinds.contains(&missing) {
                tracing::warn!(
                    "the cluster serves no {missing}s: EdgeWorkloads that reference one stay unresolved"
                );
            }
        }
        let changed = Arc::new(watch::Sender::new(0u64));
        let change_numbers = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let resources: BTreeMap<Kind, ApiResource> =
            kinds.iter().map(|k| (*k, api_resource(*k))).collect();
        let mirrors: BTreeMap<Kind, Arc<Mirror>> = kinds
            .iter()
            .map(|k| {
                let mirror = Mirror::new(*k, changed.clone(), change_numbers.clone());
                (*k, Arc::new(mirror))
            })
            .collect();
        let (stop, stopped) = watch::channel(false);
        let watches = mirrors
            .iter()
            .map(|(kind, mirror)| {
                let api = kube::Api::all_with(client.clone(), &resources[kind]);
                tokio::spawn(mirror.clone().run(api, stopped.clone()))
            })
            .collect();
        let shared = Arc::new(Shared {
            client,
            resources,
            mirrors,
            status: StatusQueue::default(),
            request_timeout: settings.request_timeout,
            metrics,
            change_numbers,
        });
        let cluster = Self {
            shared,
            settings,
            changed,
            stop,
            watches,
        };
        cluster.wait_synced().await?;
        tracing::info!(kinds = ?kinds, "watching Flotta's objects in the cluster");
        Ok(cluster)
    }

    async fn wait_synced(&self) -> Result<(), ClusterError> {
        for mirror in self.shared.mirrors.values() {
            if tokio::time::timeout(self.settings.sync_timeout, mirror.wait_synced())
                .await
                .is_err()
            {
                let _ = self.stop.send(true);
                return Err(ClusterError::NotSynced(mirror.kind().to_string()));
            }
        }
        Ok(())
    }

    /// The controller's object source over this cluster (blocking calls:
    /// use it from tokio's blocking pool).
    pub fn objects(&self) -> Arc<dyn ObjectSource> {
        Arc::new(ClusterObjects::new(
            self.shared.clone(),
            tokio::runtime::Handle::current(),
        ))
    }

    /// Run the watches, the status writer and the passes after changes
    /// until `shutdown` turns true.
    pub fn spawn(
        self,
        runner: Runner,
        service: EdgeService,
        mut shutdown: watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        let Cluster {
            shared,
            settings,
            changed,
            stop,
            mut watches,
        } = self;
        let stopped = stop.subscribe();
        watches.push(tokio::spawn(status_queue::run_writer(
            shared.clone(),
            settings.status_writes_per_second,
            stopped.clone(),
        )));
        watches.push(tokio::spawn(after_changes(
            shared,
            runner,
            service,
            changed.subscribe(),
            stopped,
        )));
        watches.push(tokio::spawn(async move {
            let _ = shutdown.wait_for(|s| *s).await;
            let _ = stop.send(true);
        }));
        watches
    }
}

/// How long changes may gather before the pass they cause.
const SETTLE: Duration = Duration::from_millis(200);
/// How often deleted EdgeDevices are looked at without news (a failed
/// release is tried again).
const RELEASE_INTERVAL: Duration = Duration::from_secs(10);

/// After each batch of watched changes (and every [`RELEASE_INTERVAL`]),
/// release deleted EdgeDevices; after changes, run a controller pass.
async fn after_changes(
    shared: Arc<Shared>,
    runner: Runner,
    service: EdgeService,
    mut changed: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(RELEASE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let news = tokio::select! {
            r = changed.changed() => r.is_ok(),
            _ = tick.tick() => false,
            _ = stop.wait_for(|s| *s) => return,
        };
        if news {
            tokio::time::sleep(SETTLE).await;
            changed.mark_unchanged();
        }
        let released = finalizer::release_deleted(&shared, &service).await;
        if (news || released > 0)
            && let Err(e) = runner.run_now().await
        {
            tracing::warn!("controller pass after a cluster change failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn needs_every_crd_and_takes_core_kinds_when_served() {
        let flotta = names(&[
            "edgedevices",
            "edgedevices/status",
            "edgedevicesets",
            "edgeworkloads",
            "edgedevicesignedrequest",
        ]);
        // A CRD-only API server: no core v1 resources at all.
        let kinds = served_kinds(&flotta, &[]).unwrap();
        assert_eq!(kinds.len(), 4);
        assert!(!kinds.contains(&Kind::ConfigMap));
        // A full cluster.
        let kinds = served_kinds(&flotta, &names(&["pods", "configmaps", "secrets"])).unwrap();
        assert!(kinds.contains(&Kind::ConfigMap) && kinds.contains(&Kind::Secret));
        // A missing CRD is refused with the way to install it.
        let e = served_kinds(&names(&["edgedevices"]), &[]).unwrap_err();
        assert!(
            e.to_string().contains("flotta-server crds | kubectl apply"),
            "{e}"
        );
    }

    #[test]
    fn plurals_are_the_crds_own() {
        for (kind, crd) in [
            (Kind::EdgeDevice, flotta_crd::EdgeDevice::crd_name()),
            (Kind::EdgeDeviceSet, flotta_crd::EdgeDeviceSet::crd_name()),
            (Kind::EdgeWorkload, flotta_crd::EdgeWorkload::crd_name()),
            (
                Kind::EdgeDeviceSignedRequest,
                flotta_crd::EdgeDeviceSignedRequest::crd_name(),
            ),
        ] {
            assert_eq!(
                format!("{}.management.project-flotta.io", kind_plural(kind)),
                crd
            );
            assert_eq!(api_resource(kind).plural, kind_plural(kind));
        }
    }
}
