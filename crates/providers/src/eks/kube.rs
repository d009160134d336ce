//! The Kubernetes API calls of the EKS provider, behind [`KubeApi`], and [`EksCluster`], the
//! implementation that reaches an EKS cluster's API (or any API server that takes EKS tokens,
//! such as runway's Kubernetes emulator) with kube-rs.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_eks::types::ClusterStatus;
use base64::Engine;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use tokio::sync::Mutex;
use tracing::{debug, info};

use super::token::{EksTokenSource, TOKEN_REUSE};
use crate::ProviderError;
use crate::shared::sdk_error;

/// Why a Kubernetes API call failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The object does not exist (HTTP 404).
    #[error("not found: {0}")]
    NotFound(String),
    /// An object of that name exists already (HTTP 409).
    #[error("already exists: {0}")]
    Conflict(String),
    /// The API server answered with an error status.
    #[error("the Kubernetes API answered {code} {reason}: {message}")]
    Api {
        code: u16,
        reason: String,
        message: String,
    },
    /// The API server could not be reached, or the connection could not be set up.
    #[error("the Kubernetes API could not be reached: {0}")]
    Unreachable(String),
    /// Connecting needs something the caller must fix (cluster, credentials).
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl KubeError {
    /// The error a provider's caller can act on.
    pub(crate) fn into_provider(self, action: &str) -> ProviderError {
        const FIX: &str = "check the pool's cluster and namespace, and that runway's role has an \
                           EKS access entry allowing it to create, list and delete pods and \
                           secrets in that namespace (see README, \"Runners on EKS\")";
        match self {
            KubeError::Provider(error) => error,
            KubeError::Unreachable(reason) => ProviderError::Unavailable {
                service: "Kubernetes API".into(),
                reason: format!("{action}: {reason}"),
            },
            KubeError::Api {
                code: 429, message, ..
            } => ProviderError::Throttled {
                service: "Kubernetes API".into(),
                reason: format!("{action}: {message}"),
            },
            KubeError::Api { code, message, .. }
                if code == 403 && message.contains("exceeded quota") =>
            {
                ProviderError::Capacity {
                    tried: vec![format!("{action}: {message}")],
                }
            }
            KubeError::Api {
                code,
                reason,
                message,
            } if code >= 500 => ProviderError::Unavailable {
                service: "Kubernetes API".into(),
                reason: format!("{action}: {code} {reason}: {message}"),
            },
            KubeError::Api {
                code,
                reason,
                message,
            } => ProviderError::config(format!("{action}: {code} {reason}: {message}; {FIX}")),
            KubeError::NotFound(what) => {
                ProviderError::config(format!("{action}: {what} not found; {FIX}"))
            }
            KubeError::Conflict(what) => {
                ProviderError::other(format!("{action}: {what} exists already"))
            }
        }
    }
}

impl From<kube::Error> for KubeError {
    fn from(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) if status.code == 404 => KubeError::NotFound(status.message),
            kube::Error::Api(status) if status.code == 409 => KubeError::Conflict(status.message),
            kube::Error::Api(status) => KubeError::Api {
                code: status.code,
                reason: status.reason,
                message: status.message,
            },
            other => KubeError::Unreachable(other.to_string()),
        }
    }
}

/// The Kubernetes API calls the EKS provider makes, on core v1 pods and secrets of one
/// namespace at a time.
#[async_trait]
pub trait KubeApi: Send + Sync + std::fmt::Debug {
    async fn create_secret(&self, namespace: &str, secret: &Secret) -> Result<Secret, KubeError>;
    /// A JSON merge patch of a secret.
    async fn patch_secret(
        &self,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<(), KubeError>;
    /// Whether the secret was there to delete.
    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<bool, KubeError>;
    async fn list_secrets(&self, namespace: &str, selector: &str)
    -> Result<Vec<Secret>, KubeError>;
    async fn create_pod(&self, namespace: &str, pod: &Pod) -> Result<Pod, KubeError>;
    async fn get_pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>, KubeError>;
    /// Whether the pod was there to delete.
    async fn delete_pod(&self, namespace: &str, name: &str) -> Result<bool, KubeError>;
    async fn list_pods(&self, namespace: &str, selector: &str) -> Result<Vec<Pod>, KubeError>;
}

/// Where to reach a cluster's API instead of the endpoint and CA `DescribeCluster` gives (an
/// emulator standing in for the cluster, or a private endpoint through a tunnel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeEndpoint {
    /// `https://host:port`.
    pub url: String,
    /// The PEM certificates the server's certificate is checked against.
    pub ca_pem: String,
}

/// An EKS cluster's Kubernetes API: `DescribeCluster` (the cluster must be `ACTIVE`) gives
/// the endpoint and CA, requests carry an EKS token of the SDK's credentials. The client is
/// rebuilt with a fresh token every [`TOKEN_REUSE`].
pub struct EksCluster {
    eks: aws_sdk_eks::Client,
    cluster: String,
    tokens: Arc<EksTokenSource>,
    endpoint_override: Option<KubeEndpoint>,
    connected: Mutex<Option<(kube::Client, std::time::Instant)>>,
}

impl std::fmt::Debug for EksCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EksCluster")
            .field("cluster", &self.cluster)
            .field("endpoint_override", &self.endpoint_override)
            .finish_non_exhaustive()
    }
}

impl EksCluster {
    pub fn new(
        eks: aws_sdk_eks::Client,
        cluster: impl Into<String>,
        tokens: Arc<EksTokenSource>,
    ) -> Self {
        EksCluster {
            eks,
            cluster: cluster.into(),
            tokens,
            endpoint_override: None,
            connected: Mutex::new(None),
        }
    }

    /// Reaches the API at `endpoint` rather than the one `DescribeCluster` gives (which is
    /// still called: the cluster must exist and be active).
    pub fn with_endpoint(mut self, endpoint: KubeEndpoint) -> Self {
        self.endpoint_override = Some(endpoint);
        self
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The cluster's API endpoint and CA, after checking it is active.
    pub async fn describe(&self) -> Result<KubeEndpoint, ProviderError> {
        const FIX: &str = "check the pool's provider.cluster and that runway's role may call \
                           eks:DescribeCluster on it";
        let described = self
            .eks
            .describe_cluster()
            .name(&self.cluster)
            .send()
            .await
            .map_err(|error| {
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception())
                {
                    // A cluster that is not there is the pool's setting to fix, not an outage.
                    ProviderError::config(format!(
                        "EKS DescribeCluster: there is no cluster {:?} in this account and \
                         region; {FIX}",
                        self.cluster
                    ))
                } else {
                    sdk_error("EKS", "DescribeCluster", error, FIX)
                }
            })?;
        let Some(cluster) = described.cluster() else {
            return Err(ProviderError::config(format!(
                "EKS describes no cluster {:?}; {FIX}",
                self.cluster
            )));
        };
        match cluster.status() {
            Some(ClusterStatus::Active) => {}
            status => {
                let status = status.map(|s| s.as_str().to_string());
                return Err(ProviderError::config(format!(
                    "the EKS cluster {:?} is {} rather than ACTIVE: runners start once it is \
                     active (a cluster being created or updated becomes so by itself)",
                    self.cluster,
                    status.as_deref().unwrap_or("of no known status")
                )));
            }
        }
        if let Some(endpoint) = &self.endpoint_override {
            return Ok(endpoint.clone());
        }
        let url = cluster.endpoint().unwrap_or_default().to_string();
        let ca = cluster
            .certificate_authority()
            .and_then(|ca| ca.data())
            .unwrap_or_default();
        let ca_pem = base64::engine::general_purpose::STANDARD
            .decode(ca.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default();
        if url.is_empty() || ca_pem.is_empty() {
            return Err(ProviderError::config(format!(
                "the EKS cluster {:?} has no API endpoint or CA yet",
                self.cluster
            )));
        }
        Ok(KubeEndpoint { url, ca_pem })
    }

    async fn client(&self) -> Result<kube::Client, KubeError> {
        let mut connected = self.connected.lock().await;
        if let Some((client, made)) = connected.as_ref()
            && made.elapsed() < TOKEN_REUSE
        {
            return Ok(client.clone());
        }
        let endpoint = self.describe().await?;
        self.tokens.forget(&self.cluster).await;
        let token = self.tokens.token(&self.cluster).await?;
        let client = kube_client(&endpoint, &token)?;
        debug!(cluster = %self.cluster, url = %endpoint.url, "connected to the cluster's API");
        *connected = Some((client.clone(), std::time::Instant::now()));
        Ok(client)
    }

    /// Drops the connection after the API refused its token, so the next call makes another.
    async fn refused(&self, error: &KubeError) {
        if matches!(error, KubeError::Api { code: 401, .. }) {
            info!(cluster = %self.cluster, "the cluster refused runway's token; signing another");
            *self.connected.lock().await = None;
        }
    }

    async fn pods(&self, namespace: &str) -> Result<Api<Pod>, KubeError> {
        Ok(Api::namespaced(self.client().await?, namespace))
    }

    async fn secrets(&self, namespace: &str) -> Result<Api<Secret>, KubeError> {
        Ok(Api::namespaced(self.client().await?, namespace))
    }

    async fn checked<T>(&self, result: Result<T, kube::Error>) -> Result<T, KubeError> {
        match result {
            Ok(value) => Ok(value),
            Err(error) => {
                let error = KubeError::from(error);
                self.refused(&error).await;
                Err(error)
            }
        }
    }
}

/// A kube-rs client of the API at `endpoint` sending `token`.
fn kube_client(endpoint: &KubeEndpoint, token: &str) -> Result<kube::Client, KubeError> {
    // rustls needs one process-wide crypto provider when more than one is compiled in; runway
    // uses ring. Installing fails only when one is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url: http::Uri = endpoint.url.parse().map_err(|error| {
        KubeError::Provider(ProviderError::config(format!(
            "the cluster's API endpoint {:?} is not a URL: {error}",
            endpoint.url
        )))
    })?;
    let mut config = kube::Config::new(url);
    config.root_cert = Some(pem_certificates(&endpoint.ca_pem)?);
    config.auth_info = serde_json::from_value(serde_json::json!({ "token": token }))
        .map_err(|error| KubeError::Unreachable(format!("token: {error}")))?;
    config.connect_timeout = Some(std::time::Duration::from_secs(10));
    config.read_timeout = Some(std::time::Duration::from_secs(30));
    kube::Client::try_from(config).map_err(|error| KubeError::Unreachable(error.to_string()))
}

/// The DER certificates of a PEM bundle.
fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, KubeError> {
    let mut certificates = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        if line == "-----BEGIN CERTIFICATE-----" {
            body = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            let encoded = body.take().unwrap_or_default();
            let der = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|error| {
                    KubeError::Provider(ProviderError::config(format!(
                        "the cluster's CA is not valid PEM: {error}"
                    )))
                })?;
            certificates.push(der);
        } else if let Some(body) = body.as_mut() {
            body.push_str(line);
        }
    }
    if certificates.is_empty() {
        return Err(KubeError::Provider(ProviderError::config(
            "the cluster's CA holds no PEM certificate",
        )));
    }
    Ok(certificates)
}

#[async_trait]
impl KubeApi for EksCluster {
    async fn create_secret(&self, namespace: &str, secret: &Secret) -> Result<Secret, KubeError> {
        let api = self.secrets(namespace).await?;
        self.checked(api.create(&PostParams::default(), secret).await)
            .await
    }

    async fn patch_secret(
        &self,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<(), KubeError> {
        let api = self.secrets(namespace).await?;
        self.checked(
            api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                .await,
        )
        .await
        .map(|_| ())
    }

    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<bool, KubeError> {
        let api = self.secrets(namespace).await?;
        match self
            .checked(api.delete(name, &DeleteParams::default()).await)
            .await
        {
            Ok(_) => Ok(true),
            Err(KubeError::NotFound(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn list_secrets(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<Secret>, KubeError> {
        let api = self.secrets(namespace).await?;
        let listed = self
            .checked(api.list(&ListParams::default().labels(selector)).await)
            .await?;
        Ok(listed.items)
    }

    async fn create_pod(&self, namespace: &str, pod: &Pod) -> Result<Pod, KubeError> {
        let api = self.pods(namespace).await?;
        self.checked(api.create(&PostParams::default(), pod).await)
            .await
    }

    async fn get_pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>, KubeError> {
        let api = self.pods(namespace).await?;
        self.checked(api.get_opt(name).await).await
    }

    async fn delete_pod(&self, namespace: &str, name: &str) -> Result<bool, KubeError> {
        let api = self.pods(namespace).await?;
        match self
            .checked(api.delete(name, &DeleteParams::default()).await)
            .await
        {
            Ok(_) => Ok(true),
            Err(KubeError::NotFound(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn list_pods(&self, namespace: &str, selector: &str) -> Result<Vec<Pod>, KubeError> {
        let api = self.pods(namespace).await?;
        let listed = self
            .checked(api.list(&ListParams::default().labels(selector)).await)
            .await?;
        Ok(listed.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bundles_become_der() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n\
                   -----BEGIN CERTIFICATE-----\nBAU=\n-----END CERTIFICATE-----\n";
        assert_eq!(
            pem_certificates(pem).unwrap(),
            vec![vec![0, 1, 2, 3], vec![4, 5]]
        );
        assert!(pem_certificates("not a certificate").is_err());
    }

    #[test]
    fn quota_refusals_are_capacity_and_auth_refusals_say_what_to_grant() {
        let quota = KubeError::Api {
            code: 403,
            reason: "Forbidden".into(),
            message: "pods \"x\" is forbidden: exceeded quota: compute".into(),
        };
        assert!(matches!(
            quota.into_provider("CreatePod"),
            ProviderError::Capacity { .. }
        ));
        let denied = KubeError::Api {
            code: 403,
            reason: "Forbidden".into(),
            message: "cannot create pods".into(),
        }
        .into_provider("CreatePod");
        assert!(denied.to_string().contains("access entry"), "{denied}");
        assert!(
            KubeError::Unreachable("reset".into())
                .into_provider("x")
                .is_retryable()
        );
    }
}
