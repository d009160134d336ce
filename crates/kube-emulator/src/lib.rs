//! A loopback Kubernetes API emulator for tests of runway's EKS provider: core `v1`
//! namespaces, pods and secrets, with watches, label and field selectors, `Status` errors,
//! Tables for kubectl, and pods that really run (see [`PodRuntime`], [`CommandRuntime`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), runway_kube_emulator::KubeEmulatorError> {
//! use runway_kube_emulator::{CommandRuntime, KubeEmulator, KubeEmulatorConfig};
//! let config = KubeEmulatorConfig::default().with_runtime(CommandRuntime::new());
//! let kube = KubeEmulator::start(config).await?;
//! std::fs::write("/tmp/kubeconfig", kube.kubeconfig("any-token"))
//!     .map_err(runway_kube_emulator::KubeEmulatorError::WorkDir)?;
//! println!("API at {}", kube.url());
//! kube.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Served (JSON only, HTTP/1.1, HTTPS by default with a CA made at start):
//! - Discovery: `/version`, `/api`, `/api/v1`, `/apis` (no groups), `/healthz`, `/livez`,
//!   `/readyz`, and an OpenAPI v3 stub for `/api/v1` that tells kubectl to leave field
//!   validation to the server (which accepts unknown fields).
//! - `namespaces` (`default`, `kube-system` and the configured ones exist from the start),
//!   `pods` (with `pods/status`, `pods/log`) and `secrets`: create, get, list (also across
//!   namespaces: `/api/v1/pods`), update (`PUT`, with the `resourceVersion` precondition),
//!   patch (JSON merge; strategic merge and server-side apply are treated as merge patches,
//!   so lists are replaced, not merged by key; JSON patch), delete, deletecollection, and
//!   `?watch=true|1` with `resourceVersion`, `labelSelector`, `fieldSelector`,
//!   `allowWatchBookmarks`, `timeoutSeconds`. `limit` is ignored: a list is one page.
//! - `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` gets a Table (what kubectl prints).
//! - Control: `GET /_emulator/events`, `GET /_emulator/requests`,
//!   `POST /_emulator/pods/{ns}/{name}/phase` `{"phase": "Succeeded", "exitCode": 0}`.
//!
//! Simplifications: deletion is immediate (the `DELETED` event's object carries a
//! `deletionTimestamp` and a grace period of 0, no `Terminating` phase), a namespace's
//! deletion removes its objects at once; a pod runs once whatever its `restartPolicy`; there
//! is one node, `kube-emulator`, and no scheduling constraints.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod config;
pub mod eks_token;
mod names;
mod pods;
mod runtime;
pub mod selector;
mod server;
mod shared;
mod status;
mod store;
mod table;
mod tls;

pub use config::{Auth, KubeEmulatorConfig};
pub use eks_token::{EksToken, EksTokenError, check_eks_token, fake_eks_token, parse_eks_token};
pub use pods::NODE_NAME;
pub use runtime::{
    CommandRuntime, ContainerExit, ContainerLaunch, PodLaunch, PodRuntime, RunningPod,
    RuntimeError, VolumeMount, mount_env_name,
};
pub use selector::{FieldSelector, LabelSelector, SelectorError};
pub use server::{SERVER_VERSION, api_resource_list};
pub use status::ApiError;
pub use tls::TlsError;

use shared::Shared;
use status::Kind;
use store::{Change, Selection};

/// Why the emulator could not start, or refused a call made through the handle.
#[derive(Debug, thiserror::Error)]
pub enum KubeEmulatorError {
    #[error("cannot listen on {addr}: {source}; pick a free address or port 0")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot make the pods' work directory: {0}")]
    WorkDir(std::io::Error),
    #[error("unknown resource {0} (namespaces, pods, secrets)")]
    UnknownResource(String),
    #[error("the API refused: {0}")]
    Api(#[from] ApiError),
}

/// One change as watches saw it (`GET /_emulator/events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeView {
    pub resource_version: u64,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub event_type: String,
    /// `namespaces`, `pods` or `secrets`.
    pub resource: String,
    pub namespace: String,
    pub name: String,
    /// A pod's phase after the change.
    pub phase: Option<String>,
}

impl ChangeView {
    pub fn to_json(&self) -> Value {
        json!({
            "resourceVersion": self.resource_version.to_string(),
            "type": self.event_type,
            "resource": self.resource,
            "namespace": self.namespace,
            "name": self.name,
            "phase": self.phase,
        })
    }
}

pub(crate) fn change_view(change: &Change) -> ChangeView {
    ChangeView {
        resource_version: change.resource_version,
        event_type: change.event_type.as_str().to_string(),
        resource: change.kind.resource().to_string(),
        namespace: change.namespace.clone(),
        name: change.name.clone(),
        phase: (change.kind == Kind::Pod)
            .then(|| {
                change.object["status"]["phase"]
                    .as_str()
                    .map(str::to_string)
            })
            .flatten(),
    }
}

/// Sets a pod's phase as a kubelet would report it: `Succeeded`/`Failed` kill what runs it
/// and mark its containers terminated (exit code 0 or 1 unless given).
pub(crate) fn set_phase(
    shared: &Shared,
    namespace: &str,
    name: &str,
    phase: &str,
    exit_code: Option<i32>,
) -> Result<Value, ApiError> {
    let pod = shared.store().require(Kind::Pod, namespace, name)?;
    let uid = pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !["Pending", "Running", "Succeeded", "Failed", "Unknown"].contains(&phase) {
        return Err(ApiError::bad_request(format!("unknown phase {phase:?}")));
    }
    if matches!(phase, "Succeeded" | "Failed") {
        shared.kill(&uid);
    }
    let updated = pods::update_status(shared, namespace, name, &uid, |pod| match phase {
        "Succeeded" | "Failed" => {
            let code = exit_code.unwrap_or(if phase == "Succeeded" { 0 } else { 1 });
            let exits: Vec<ContainerExit> = pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| ContainerExit {
                    name: c["name"].as_str().unwrap_or_default().to_string(),
                    exit_code: code,
                    reason: None,
                })
                .collect();
            pods::set_terminated(pod, &uid, &exits);
            pod["status"]["phase"] = json!(phase);
        }
        _ => pod["status"]["phase"] = json!(phase),
    });
    updated.ok_or_else(|| ApiError::not_found(Kind::Pod, name))
}

/// Starts emulators.
pub struct KubeEmulator;

impl KubeEmulator {
    /// Binds the listen address and serves until [`KubeEmulatorHandle::shutdown`] (or the
    /// handle is dropped). Must be called inside a tokio runtime.
    pub async fn start(
        config: KubeEmulatorConfig,
    ) -> Result<KubeEmulatorHandle, KubeEmulatorError> {
        let work = match &config.work_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(KubeEmulatorError::WorkDir)?;
                tempfile::Builder::new()
                    .prefix("kube-emulator-")
                    .tempdir_in(dir)
            }
            None => tempfile::Builder::new().prefix("kube-emulator-").tempdir(),
        }
        .map_err(KubeEmulatorError::WorkDir)?;
        let shared = Arc::new(Shared::new(
            config.runtime.clone(),
            work.path().to_path_buf(),
            config.auth.clone(),
            config.pod_start_delay,
        ));
        {
            let mut store = shared.store();
            let mut namespaces = vec!["default".to_string(), "kube-system".to_string()];
            namespaces.extend(config.namespaces.iter().cloned());
            for namespace in namespaces {
                if store.get(Kind::Namespace, "", &namespace).is_none() {
                    store.create(
                        Kind::Namespace,
                        "",
                        json!({"metadata": {"name": namespace}}),
                    )?;
                }
            }
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| KubeEmulatorError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| KubeEmulatorError::Bind {
                addr: config.listen,
                source,
            })?;
        let app = server::router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let (url, ca_pem, server) = if config.tls {
            let pki = tls::pki()?;
            let listener = tls::TlsListener::new(listener, pki.acceptor, addr);
            let server = tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
                if let Err(error) = served {
                    tracing::error!(%error, "the Kubernetes emulator stopped serving");
                }
            });
            (format!("https://{addr}"), Some(pki.ca_pem), server)
        } else {
            let server = tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
                if let Err(error) = served {
                    tracing::error!(%error, "the Kubernetes emulator stopped serving");
                }
            });
            (format!("http://{addr}"), None, server)
        };
        tracing::info!(%url, work_dir = %work.path().display(), "Kubernetes emulator listening");
        Ok(KubeEmulatorHandle {
            shared,
            addr,
            url,
            ca_pem,
            work: Some(work),
            stop: Some(stop),
            server: Some(server),
        })
    }
}

/// A running emulator. Dropping it stops the server, kills the pods and removes their files.
pub struct KubeEmulatorHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    url: String,
    ca_pem: Option<String>,
    work: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for KubeEmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeEmulatorHandle")
            .field("url", &self.url)
            .finish()
    }
}

fn kind_of(resource: &str) -> Result<Kind, KubeEmulatorError> {
    Kind::from_resource(resource).ok_or_else(|| KubeEmulatorError::UnknownResource(resource.into()))
}

impl KubeEmulatorHandle {
    /// `https://127.0.0.1:PORT` (or `http://` without TLS): the API server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA that issued the server's certificate (PEM); `None` over plain HTTP.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The CA as a kubeconfig's `certificate-authority-data` (and EKS's
    /// `certificateAuthority.data`): base64 of the PEM.
    pub fn ca_base64(&self) -> Option<String> {
        self.ca_pem
            .as_ref()
            .map(|pem| base64::engine::general_purpose::STANDARD.encode(pem))
    }

    /// A kubeconfig (YAML) for kubectl, the Python client or kube-rs: one cluster, one user
    /// with the bearer `token`, one context (namespace `default`), current.
    pub fn kubeconfig(&self, token: &str) -> String {
        let mut cluster = json!({"server": self.url});
        if let Some(ca) = self.ca_base64() {
            cluster["certificate-authority-data"] = json!(ca);
        }
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kube-emulator", "cluster": cluster}],
            "users": [{"name": "kube-emulator", "user": {"token": token}}],
            "contexts": [{"name": "kube-emulator", "context": {
                "cluster": "kube-emulator", "user": "kube-emulator", "namespace": "default",
            }}],
            "current-context": "kube-emulator",
            "preferences": {},
        });
        serde_yaml::to_string(&config).unwrap_or_default()
    }

    /// Where the pods' directories are (`{work_dir}/{namespace}/{name}-{uid}`).
    pub fn work_dir(&self) -> &Path {
        &self.shared.work_dir
    }

    /// The objects of a resource (`pods`, `secrets`, `namespaces`), as the API returns them;
    /// `namespace` `None`: in every namespace.
    pub fn list(
        &self,
        resource: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, KubeEmulatorError> {
        let kind = kind_of(resource)?;
        let selection = Selection {
            namespace: namespace.map(str::to_string),
            ..Selection::default()
        };
        Ok(self.shared.store().list(kind, &selection))
    }

    pub fn pods(&self, namespace: &str) -> Vec<Value> {
        self.list("pods", Some(namespace)).unwrap_or_default()
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        self.shared.store().get(Kind::Pod, namespace, name).cloned()
    }

    /// A pod's `status.phase`.
    pub fn pod_phase(&self, namespace: &str, name: &str) -> Option<String> {
        self.pod(namespace, name)
            .and_then(|p| p["status"]["phase"].as_str().map(str::to_string))
    }

    pub fn secrets(&self, namespace: &str) -> Vec<Value> {
        self.list("secrets", Some(namespace)).unwrap_or_default()
    }

    pub fn secret(&self, namespace: &str, name: &str) -> Option<Value> {
        self.shared
            .store()
            .get(Kind::Secret, namespace, name)
            .cloned()
    }

    pub fn namespaces(&self) -> Vec<String> {
        self.list("namespaces", None)
            .unwrap_or_default()
            .iter()
            .map(|n| store::name_of(n).to_string())
            .collect()
    }

    /// Creates an object as `POST` does (a pod starts).
    pub fn create(
        &self,
        resource: &str,
        namespace: &str,
        object: Value,
    ) -> Result<Value, KubeEmulatorError> {
        let kind = kind_of(resource)?;
        let created = self.shared.store().create(kind, namespace, object)?;
        if kind == Kind::Pod {
            pods::spawn_launch(
                self.shared.clone(),
                namespace.to_string(),
                store::name_of(&created).to_string(),
                created["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        Ok(created)
    }

    /// Deletes an object as `DELETE` does (a pod is killed, a namespace empties).
    pub fn delete(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value, KubeEmulatorError> {
        let kind = kind_of(resource)?;
        let deleted = self.shared.store().delete(kind, namespace, name)?;
        server::after_delete(&self.shared, kind, &deleted);
        Ok(deleted)
    }

    /// Sets a pod's phase (as `POST /_emulator/pods/{ns}/{name}/phase`): `Succeeded` or
    /// `Failed` kill what runs the pod and mark its containers terminated with `exit_code`
    /// (default 0, or 1 for `Failed`).
    pub fn set_pod_phase(
        &self,
        namespace: &str,
        name: &str,
        phase: &str,
        exit_code: Option<i32>,
    ) -> Result<Value, KubeEmulatorError> {
        Ok(set_phase(&self.shared, namespace, name, phase, exit_code)?)
    }

    /// Every change kept (the last 10,000), oldest first.
    pub fn events(&self) -> Vec<ChangeView> {
        self.shared
            .store()
            .history()
            .map(|c| change_view(c))
            .collect()
    }

    /// Requests served, by `verb resource` (`list pods`, `watch pods`, `create secrets`,
    /// `delete pods`, `patch pods/status`; other paths as `get /version`).
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.shared.requests()
    }

    pub fn request_count(&self, what: &str) -> u64 {
        self.requests().get(what).copied().unwrap_or(0)
    }

    /// Waits until the pod exists and `check` holds for it; `None` on timeout.
    pub async fn wait_for_pod(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
        mut check: impl FnMut(&Value) -> bool,
    ) -> Option<Value> {
        let mut changes = self.shared.changes.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(pod) = self.pod(namespace, name).filter(|p| check(p)) {
                return Some(pod);
            }
            let wait = tokio::time::timeout_at(deadline, changes.recv()).await;
            match wait {
                Err(_) => return None,
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Waits until the pod reaches `phase`.
    pub async fn wait_for_phase(
        &self,
        namespace: &str,
        name: &str,
        phase: &str,
        timeout: Duration,
    ) -> Option<Value> {
        self.wait_for_pod(namespace, name, timeout, |p| p["status"]["phase"] == phase)
            .await
    }

    /// Stops serving: open watches end, pods are killed, their files removed.
    pub async fn shutdown(mut self) {
        self.stop_all();
        if let Some(server) = self.server.take() {
            let abort = server.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), server)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        if let Some(work) = self.work.take() {
            let path = work.path().to_path_buf();
            if let Err(error) = work.close() {
                tracing::warn!(dir = %path.display(), %error, "cannot remove the work directory");
            }
        }
    }

    fn stop_all(&mut self) {
        self.shared.stopping.send_replace(true);
        self.shared.kill_all();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for KubeEmulatorHandle {
    fn drop(&mut self) {
        self.stop_all();
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}
