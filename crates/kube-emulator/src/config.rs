//! What the emulator is started with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::PodRuntime;

/// Who may call the Kubernetes API (the `/_emulator` control API is always open).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Auth {
    /// Anyone.
    #[default]
    None,
    /// `Authorization: Bearer <token>` with exactly this token.
    Bearer(String),
    /// An EKS token (`k8s-aws-v1.…`) of the right shape and age; see [`crate::eks_token`].
    /// The cluster name is signed into the token and cannot be checked offline.
    EksToken { cluster_name: String },
}

#[derive(Debug, Clone)]
pub struct KubeEmulatorConfig {
    /// Where to listen; port 0 picks a free port. Loopback only in practice.
    pub listen: SocketAddr,
    /// Serve HTTPS with a CA and server certificate made at start (the default), or plain
    /// HTTP.
    pub tls: bool,
    pub auth: Auth,
    /// Namespaces to create besides `default` and `kube-system`.
    pub namespaces: Vec<String>,
    /// What runs pods; `None`: pods go `Running` and stay so until deleted (or set otherwise
    /// through the control API).
    pub runtime: Option<Arc<dyn crate::runtime::PodRuntime>>,
    /// Where pods' temporary directories go; `None`: a fresh directory under the system's
    /// temporary directory. Either way it is removed at shutdown.
    pub work_dir: Option<PathBuf>,
    /// How long a pod stays `Pending` before its containers are started.
    pub pod_start_delay: Duration,
}

impl Default for KubeEmulatorConfig {
    fn default() -> Self {
        KubeEmulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: true,
            auth: Auth::None,
            namespaces: Vec::new(),
            runtime: None,
            work_dir: None,
            pod_start_delay: Duration::ZERO,
        }
    }
}

impl KubeEmulatorConfig {
    pub fn with_runtime(mut self, runtime: impl PodRuntime + 'static) -> Self {
        self.runtime = Some(Arc::new(runtime));
        self
    }

    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Plain HTTP instead of HTTPS.
    pub fn http(mut self) -> Self {
        self.tls = false;
        self
    }
}
