//! Runners on EKS: one pod per runner in a namespace of an EKS cluster.
//!
//! # Where a pod runs
//!
//! A pool names a cluster, a namespace and the runner image, and optionally the pods' service
//! account, CPU and memory requests and limits, node selector and tolerations. runway reaches
//! the cluster's API with the endpoint and CA that `DescribeCluster` gives (the cluster must be
//! `ACTIVE`) and an EKS token of its own IAM role ([`EksTokenSource`]); that role needs an EKS
//! access entry with a policy that may create, list and delete pods and secrets in the pool's
//! namespace. Pods run with `restartPolicy: Never` and without the service account's API
//! token: the job gets no Kubernetes credentials.
//!
//! # How the JIT config reaches the pod
//!
//! Each runner gets a Kubernetes Secret (`<pod>-jit`, key `jitconfig`) holding its JIT config;
//! the pod mounts it read-only at [`JIT_MOUNT_DIR`] and its start command reads the file. The
//! config is never a literal in the pod spec (which anyone allowed to `get pods` can read), in
//! logs or in the execution's state. Once the pod exists the secret is given the pod as its
//! owner, so the cluster's garbage collector removes it with the pod whatever happens to
//! runway; teardown deletes both explicitly.
//!
//! # Finding pods again
//!
//! Pods and secrets carry the labels `runway/stack`, `runway/execution`, `runway/pool`,
//! `runway/runner` and `runway/managed=true`. A label value is at most 63 characters of
//! `[A-Za-z0-9._-]`; execution names reach 80, so a value that does not fit is labelled by a
//! hash ([`label_value`]) and the full value is kept in an annotation of the same key, which
//! every look-up checks. Teardown and [`Provider::owned_by`] select by the execution's label;
//! [`Provider::owned`] selects the stack's pods, and reports secrets whose pod is gone too, so
//! the reaper removes them.
//!
//! A pod's name is derived from the stack, execution and runner, so a launch retried after a
//! lost answer finds its pod (which then gets this try's JIT config) instead of starting a
//! second.

mod kube;
mod token;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    Container, EnvVar, Pod, PodSpec, ResourceRequirements, Secret, SecretVolumeSource, Toleration,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use runway_clock::{SharedClock, SystemClock};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

pub use self::kube::{EksCluster, KubeApi, KubeEndpoint, KubeError};
pub use self::token::{EKS_TOKEN_PREFIX, EksTokenSource, TOKEN_REUSE, eks_token};
use crate::shared::{
    DEFAULT_STACK, check_stack_name, first_problem, hashed_id, is_plain_path_char,
};
use crate::{
    LaunchRequest, Launched, OwnedRunner, Provider, ProviderError, ProviderKind, Terminated,
};

/// Label (and annotation) keys of runway's pods and secrets.
pub const LABEL_STACK: &str = "runway/stack";
pub const LABEL_EXECUTION: &str = "runway/execution";
pub const LABEL_POOL: &str = "runway/pool";
pub const LABEL_RUNNER: &str = "runway/runner";
pub const LABEL_MANAGED: &str = "runway/managed";
/// The annotation naming a secret's pod.
pub const ANNOTATION_POD: &str = "runway/pod";

/// Where the pod mounts its runner's secret, and the key (file) holding the JIT config.
pub const JIT_MOUNT_DIR: &str = "/runway/jit";
pub const JIT_SECRET_KEY: &str = "jitconfig";
/// The environment variable naming the JIT config file (a path, not the secret).
pub const JIT_FILE_ENV: &str = "RUNWAY_JITCONFIG_FILE";
/// The runner's container in every pod.
pub const RUNNER_CONTAINER: &str = "runner";
const JIT_VOLUME: &str = "jit";

/// A toleration of the pods (Kubernetes' own fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EksToleration {
    pub key: Option<String>,
    /// `Equal` (default) or `Exists`.
    pub operator: Option<String>,
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`; none: every effect.
    pub effect: Option<String>,
    /// With `NoExecute`: how long the pod stays on a tainted node.
    pub toleration_seconds: Option<i64>,
}

/// One pool's EKS settings.
#[derive(Debug, Clone)]
pub struct EksPoolConfig {
    /// The runway stack the runners belong to: labelled on every pod, and the scope of every
    /// look-up.
    pub stack: String,
    /// The EKS cluster's name.
    pub cluster: String,
    /// The namespace the pods and secrets go in (it must exist).
    pub namespace: String,
    /// The runner image (e.g. `ghcr.io/actions/actions-runner:latest`).
    pub image: String,
    /// The pods' service account (for AWS access through IRSA or EKS Pod Identity); none: the
    /// namespace's `default`.
    pub service_account: Option<String>,
    /// CPU and memory requests and limits (Kubernetes quantities: `2`, `500m`, `4Gi`).
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub cpu_limit: Option<String>,
    pub memory_limit: Option<String>,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<EksToleration>,
    /// Extra labels and annotations of pods and secrets.
    pub extra_labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Where `run.sh` is in the image (the official image's is `/home/runner`).
    pub runner_dir: String,
}

impl EksPoolConfig {
    pub fn new(
        cluster: impl Into<String>,
        namespace: impl Into<String>,
        image: impl Into<String>,
    ) -> Self {
        EksPoolConfig {
            stack: DEFAULT_STACK.to_string(),
            cluster: cluster.into(),
            namespace: namespace.into(),
            image: image.into(),
            service_account: None,
            cpu: None,
            memory: None,
            cpu_limit: None,
            memory_limit: None,
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            extra_labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            runner_dir: "/home/runner".to_string(),
        }
    }

    /// Whether the settings can work; the first problem found.
    pub fn validate(&self) -> Result<(), ProviderError> {
        first_problem(self.problems())
    }

    /// Every problem of the settings, each with its setting's key (`cluster`, `namespace`,
    /// `cpu`, …; `""` for the stack).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if let Err(ProviderError::Config { reason }) = check_stack_name(&self.stack) {
            problems.push(("", reason));
        }
        if !is_eks_cluster_name(&self.cluster) {
            problems.push((
                "cluster",
                format!(
                    "the EKS cluster {:?} must be a cluster name: 1 to 100 letters, digits, \
                     '-' and '_', starting with a letter or digit (not an ARN)",
                    self.cluster
                ),
            ));
        }
        if !is_dns_label(&self.namespace) {
            problems.push((
                "namespace",
                format!(
                    "the namespace {:?} must be 1 to 63 lowercase letters, digits and '-', \
                     starting and ending with a letter or digit",
                    self.namespace
                ),
            ));
        }
        if self.image.is_empty() || self.image.chars().any(char::is_whitespace) {
            problems.push((
                "image",
                format!(
                    "the image {:?} is not a container image reference",
                    self.image
                ),
            ));
        } else if self.image.starts_with("ami-") {
            problems.push((
                "image",
                format!(
                    "{} is an AMI; an EKS pool runs a container image (e.g. \
                     ghcr.io/actions/actions-runner:latest)",
                    self.image
                ),
            ));
        }
        if let Some(account) = &self.service_account
            && !is_dns_subdomain(account)
        {
            problems.push((
                "service_account",
                format!(
                    "the service account {account:?} must be lowercase letters, digits, '-' \
                     and '.' (a Kubernetes name)"
                ),
            ));
        }
        for (key, value) in [
            ("cpu", &self.cpu),
            ("memory", &self.memory),
            ("cpu_limit", &self.cpu_limit),
            ("memory_limit", &self.memory_limit),
        ] {
            if let Some(value) = value
                && !is_quantity(value)
            {
                problems.push((
                    key,
                    format!(
                        "{value:?} is not a Kubernetes quantity (e.g. \"2\", \"500m\" for CPU; \
                         \"4Gi\", \"512Mi\" for memory)"
                    ),
                ));
            }
        }
        for (key, value) in self.node_selector.iter().chain(&self.extra_labels) {
            if !is_label_key(key) || !is_label_value(value) {
                problems.push((
                    if self.node_selector.contains_key(key) {
                        "node_selector"
                    } else {
                        "labels"
                    },
                    format!(
                        "{key:?} = {value:?} is not a Kubernetes label: keys are an optional \
                         DNS prefix and '/' then up to 63 characters; values up to 63 of \
                         letters, digits, '-', '_' and '.'"
                    ),
                ));
            }
        }
        for key in self.extra_labels.keys().chain(self.annotations.keys()) {
            if key.starts_with("runway/") {
                problems.push((
                    if self.extra_labels.contains_key(key) {
                        "labels"
                    } else {
                        "annotations"
                    },
                    format!("{key:?}: keys under runway/ are runway's own"),
                ));
            }
        }
        for key in self.annotations.keys() {
            if !is_label_key(key) {
                problems.push((
                    "annotations",
                    format!("{key:?} is not a Kubernetes annotation key"),
                ));
            }
        }
        for toleration in &self.tolerations {
            if let Some(reason) = toleration_problem(toleration) {
                problems.push(("tolerations", reason));
            }
        }
        if self.runner_dir.is_empty()
            || !self.runner_dir.starts_with('/')
            || !self.runner_dir.chars().all(is_plain_path_char)
        {
            problems.push((
                "runner_dir",
                format!(
                    "the runner directory {:?} must be an absolute path of letters, digits and \
                     '/', '_', '.', '-' (the official image's is /home/runner)",
                    self.runner_dir
                ),
            ));
        }
        problems
    }
}

fn toleration_problem(toleration: &EksToleration) -> Option<String> {
    let operator = toleration.operator.as_deref().unwrap_or("Equal");
    if !matches!(operator, "Equal" | "Exists") {
        return Some(format!(
            "a toleration's operator is \"Equal\" or \"Exists\", not {operator:?}"
        ));
    }
    if operator == "Exists" && toleration.value.is_some() {
        return Some("a toleration with operator \"Exists\" takes no value".to_string());
    }
    if operator == "Equal" && toleration.key.is_none() {
        return Some(
            "a toleration without a key must use operator \"Exists\" (it tolerates every taint)"
                .to_string(),
        );
    }
    if let Some(effect) = &toleration.effect
        && !matches!(
            effect.as_str(),
            "NoSchedule" | "PreferNoSchedule" | "NoExecute"
        )
    {
        return Some(format!(
            "a toleration's effect is NoSchedule, PreferNoSchedule or NoExecute, not {effect:?}"
        ));
    }
    if toleration.toleration_seconds.is_some() && toleration.effect.as_deref() != Some("NoExecute")
    {
        return Some("toleration_seconds goes with effect \"NoExecute\" only".to_string());
    }
    None
}

/// An EKS cluster name: 1 to 100 of `[A-Za-z0-9_-]`, starting with a letter or digit.
pub fn is_eks_cluster_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A DNS-1123 label (namespaces, pod names' parts).
fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A DNS-1123 subdomain (service accounts, label key prefixes).
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// A label value: at most 63 of `[A-Za-z0-9._-]`, starting and ending alphanumeric (or empty).
pub fn is_label_value(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= 63
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
}

fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    prefix.is_none_or(|prefix| !prefix.is_empty() && is_dns_subdomain(prefix))
        && !name.is_empty()
        && is_label_value(name)
}

/// A Kubernetes quantity as pods take them: a decimal number and an optional suffix.
fn is_quantity(value: &str) -> bool {
    const SUFFIXES: [&str; 13] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E",
    ];
    let number = SUFFIXES
        .iter()
        .find_map(|suffix| value.strip_suffix(suffix))
        .unwrap_or(value);
    !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.chars().filter(|c| *c == '.').count() <= 1
        && number != "."
}

/// `value` as a label value: itself when it is one, otherwise `h-` and 28 hex digits of its
/// SHA-256 (the full value then lives in the annotation of the same key).
pub fn label_value(value: &str) -> String {
    if is_label_value(value) && !value.starts_with("h-") {
        value.to_string()
    } else {
        hashed_id("h-", &[value], 14)
    }
}

/// The name of the pod of `runner` launched for `execution` by `stack`: the runner's name
/// made a DNS label (at most 40 characters) and a hash of all three, at most 63 in all.
pub fn pod_name(stack: &str, execution: &str, runner: &str) -> String {
    let mut readable: String = runner
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    readable = readable.trim_matches('-').to_string();
    let hash = hashed_id("", &[stack, execution, runner], 8);
    if readable.is_empty() {
        format!("runner-{hash}")
    } else {
        format!("{readable}-{hash}")
    }
}

/// The secret holding the JIT config of pod `pod`.
pub fn secret_name(pod: &str) -> String {
    format!("{pod}-jit")
}

/// The runner container's start command: it reads the mounted JIT config and runs one
/// ephemeral runner. No secret in it.
fn start_command(runner_dir: &str) -> Vec<String> {
    vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        format!("cd {runner_dir} && exec ./run.sh --jitconfig \"$(cat \"${JIT_FILE_ENV}\")\""),
    ]
}

/// Runners as pods of one EKS pool.
#[derive(Debug, Clone)]
pub struct EksProvider {
    kube: Arc<dyn KubeApi>,
    config: EksPoolConfig,
    clock: SharedClock,
}

impl EksProvider {
    /// A provider launching `config`'s pods through `kube` (an [`EksCluster`], or any
    /// Kubernetes API).
    pub fn new(kube: Arc<dyn KubeApi>, config: EksPoolConfig) -> Result<Self, ProviderError> {
        EksProvider::with_clock(kube, config, SystemClock::shared())
    }

    pub fn with_clock(
        kube: Arc<dyn KubeApi>,
        config: EksPoolConfig,
        clock: SharedClock,
    ) -> Result<Self, ProviderError> {
        config.validate()?;
        Ok(EksProvider {
            kube,
            config,
            clock,
        })
    }

    pub fn config(&self) -> &EksPoolConfig {
        &self.config
    }

    fn namespace(&self) -> &str {
        &self.config.namespace
    }

    /// The selector of the stack's objects, and of one execution's when given.
    fn selector(&self, execution: Option<&str>) -> String {
        let mut selector = format!(
            "{LABEL_STACK}={},{LABEL_MANAGED}=true",
            label_value(&self.config.stack)
        );
        if let Some(execution) = execution {
            selector.push_str(&format!(",{LABEL_EXECUTION}={}", label_value(execution)));
        }
        selector
    }

    /// Labels and annotations of a runner's pod and secret.
    fn metadata(&self, name: &str, request: &LaunchRequest) -> ObjectMeta {
        let mut labels = self.config.extra_labels.clone();
        let mut annotations = self.config.annotations.clone();
        for (key, value) in [
            (LABEL_STACK, self.config.stack.as_str()),
            (LABEL_EXECUTION, request.execution.as_str()),
            (LABEL_POOL, request.pool.as_str()),
            (LABEL_RUNNER, request.runner_name.as_str()),
        ] {
            labels.insert(key.to_string(), label_value(value));
            annotations.insert(key.to_string(), value.to_string());
        }
        labels.insert(LABEL_MANAGED.to_string(), "true".to_string());
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(self.namespace().to_string()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        }
    }

    fn secret(&self, pod: &str, request: &LaunchRequest) -> Secret {
        let mut metadata = self.metadata(&secret_name(pod), request);
        if let Some(annotations) = metadata.annotations.as_mut() {
            annotations.insert(ANNOTATION_POD.to_string(), pod.to_string());
        }
        Secret {
            metadata,
            type_: Some("Opaque".to_string()),
            data: Some(jit_data(request)),
            ..Secret::default()
        }
    }

    /// The runner's pod (its JIT config only by reference to its secret).
    pub fn pod(&self, request: &LaunchRequest) -> Pod {
        let name = pod_name(&self.config.stack, &request.execution, &request.runner_name);
        let config = &self.config;
        let quantities = |cpu: &Option<String>, memory: &Option<String>| {
            let mut map = BTreeMap::new();
            if let Some(cpu) = cpu {
                map.insert("cpu".to_string(), Quantity(cpu.clone()));
            }
            if let Some(memory) = memory {
                map.insert("memory".to_string(), Quantity(memory.clone()));
            }
            (!map.is_empty()).then_some(map)
        };
        let image = request
            .overrides
            .image
            .clone()
            .unwrap_or_else(|| config.image.clone());
        let container = Container {
            name: RUNNER_CONTAINER.to_string(),
            image: Some(image),
            command: Some(start_command(&config.runner_dir)),
            env: Some(vec![EnvVar {
                name: JIT_FILE_ENV.to_string(),
                value: Some(format!("{JIT_MOUNT_DIR}/{JIT_SECRET_KEY}")),
                ..EnvVar::default()
            }]),
            resources: Some(ResourceRequirements {
                requests: quantities(&config.cpu, &config.memory),
                limits: quantities(&config.cpu_limit, &config.memory_limit),
                ..ResourceRequirements::default()
            }),
            volume_mounts: Some(vec![VolumeMount {
                name: JIT_VOLUME.to_string(),
                mount_path: JIT_MOUNT_DIR.to_string(),
                read_only: Some(true),
                ..VolumeMount::default()
            }]),
            ..Container::default()
        };
        Pod {
            metadata: self.metadata(&name, request),
            spec: Some(PodSpec {
                restart_policy: Some("Never".to_string()),
                service_account_name: config.service_account.clone(),
                // Jobs get no Kubernetes API token.
                automount_service_account_token: Some(false),
                node_selector: (!config.node_selector.is_empty())
                    .then(|| config.node_selector.clone()),
                tolerations: (!config.tolerations.is_empty()).then(|| {
                    config
                        .tolerations
                        .iter()
                        .map(|t| Toleration {
                            key: t.key.clone(),
                            operator: t.operator.clone(),
                            value: t.value.clone(),
                            effect: t.effect.clone(),
                            toleration_seconds: t.toleration_seconds,
                        })
                        .collect()
                }),
                containers: vec![container],
                volumes: Some(vec![Volume {
                    name: JIT_VOLUME.to_string(),
                    secret: Some(SecretVolumeSource {
                        secret_name: Some(secret_name(&name)),
                        // The runner's (non-root) user reads it; nothing outside the pod can.
                        default_mode: Some(0o444),
                        ..SecretVolumeSource::default()
                    }),
                    ..Volume::default()
                }]),
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    /// Whether `metadata` (a pod's or secret's) names this stack, `execution` and, when given,
    /// `runner` in full: labels may be hashes, the annotations are the values.
    fn owns(&self, metadata: &ObjectMeta, execution: Option<&str>, runner: Option<&str>) -> bool {
        let annotation = |key: &str| {
            metadata
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.get(key))
                .map(String::as_str)
        };
        annotation(LABEL_STACK) == Some(self.config.stack.as_str())
            && execution.is_none_or(|execution| annotation(LABEL_EXECUTION) == Some(execution))
            && runner.is_none_or(|runner| annotation(LABEL_RUNNER) == Some(runner))
    }

    fn owned_runner(&self, metadata: &ObjectMeta, pod: &str) -> Option<OwnedRunner> {
        let annotations = metadata.annotations.as_ref()?;
        Some(OwnedRunner {
            provider: ProviderKind::Eks,
            execution: annotations.get(LABEL_EXECUTION)?.clone(),
            runner_name: annotations.get(LABEL_RUNNER)?.clone(),
            pool: annotations.get(LABEL_POOL).cloned(),
            instance_id: pod.to_string(),
            launched_at: created_at(metadata),
        })
    }

    async fn write_secret(&self, pod: &str, request: &LaunchRequest) -> Result<(), ProviderError> {
        let secret = self.secret(pod, request);
        match self.kube.create_secret(self.namespace(), &secret).await {
            Ok(_) => Ok(()),
            // A retried launch: this try's JIT config replaces the last one's.
            Err(KubeError::Conflict(_)) => self
                .kube
                .patch_secret(
                    self.namespace(),
                    &secret_name(pod),
                    &serde_json::json!({ "data": jit_data(request) }),
                )
                .await
                .map_err(|error| error.into_provider("updating the runner's secret")),
            Err(error) => Err(error.into_provider("creating the runner's secret")),
        }
    }

    async fn delete_quietly(&self, pod: &str) {
        if let Err(error) = self
            .kube
            .delete_secret(self.namespace(), &secret_name(pod))
            .await
        {
            warn!(%error, pod, "could not delete a failed launch's secret; teardown will");
        }
    }

    fn launched(&self, request: LaunchRequest, pod: &Pod) -> Launched {
        Launched {
            runner_name: request.runner_name,
            provider: ProviderKind::Eks,
            instance_id: pod.metadata.name.clone().unwrap_or_default(),
            instance_type: None,
            subnet_id: None,
            capacity: None,
            launched_at: created_at(&pod.metadata).unwrap_or_else(|| self.clock.now()),
        }
    }

    /// This stack's live runners, only those of `execution` when given: pods not being
    /// deleted, and secrets whose pod is gone.
    async fn owned_where(
        &self,
        execution: Option<&str>,
    ) -> Result<Vec<OwnedRunner>, ProviderError> {
        let selector = self.selector(execution);
        let pods = self
            .kube
            .list_pods(self.namespace(), &selector)
            .await
            .map_err(|error| error.into_provider("listing runner pods"))?;
        let mut owned = Vec::new();
        let mut pod_names = std::collections::BTreeSet::new();
        for pod in &pods {
            let Some(name) = pod.metadata.name.as_deref() else {
                continue;
            };
            pod_names.insert(name.to_string());
            if pod.metadata.deletion_timestamp.is_some()
                || !self.owns(&pod.metadata, execution, None)
            {
                continue;
            }
            match self.owned_runner(&pod.metadata, name) {
                Some(runner) => owned.push(runner),
                None => warn!(
                    pod = name,
                    "a pod labelled {LABEL_MANAGED}=true lacks runway's annotations; it was not \
                     launched by runway as is, so it is left alone"
                ),
            }
        }
        let secrets = self
            .kube
            .list_secrets(self.namespace(), &selector)
            .await
            .map_err(|error| error.into_provider("listing runner secrets"))?;
        for secret in &secrets {
            let Some(pod) = secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.get(ANNOTATION_POD))
            else {
                continue;
            };
            if pod_names.contains(pod)
                || secret.metadata.deletion_timestamp.is_some()
                || !self.owns(&secret.metadata, execution, None)
            {
                continue;
            }
            if let Some(runner) = self.owned_runner(&secret.metadata, pod) {
                owned.push(runner);
            }
        }
        Ok(owned)
    }
}

/// One provider per EKS pool of `pools`; pools of one cluster share its connection (and
/// token). `endpoint` replaces the API endpoint and CA of every cluster (`runway local`'s
/// Kubernetes emulator).
pub fn eks_providers(
    eks: &aws_sdk_eks::Client,
    tokens: Arc<EksTokenSource>,
    pools: BTreeMap<String, EksPoolConfig>,
    endpoint: Option<KubeEndpoint>,
    clock: SharedClock,
) -> Result<BTreeMap<String, EksProvider>, ProviderError> {
    let mut clusters: BTreeMap<String, Arc<EksCluster>> = BTreeMap::new();
    let mut providers = BTreeMap::new();
    for (pool, config) in pools {
        let cluster = clusters
            .entry(config.cluster.clone())
            .or_insert_with(|| {
                let cluster = EksCluster::new(eks.clone(), config.cluster.clone(), tokens.clone());
                Arc::new(match &endpoint {
                    Some(endpoint) => cluster.with_endpoint(endpoint.clone()),
                    None => cluster,
                })
            })
            .clone();
        let provider =
            EksProvider::with_clock(cluster, config, clock.clone()).map_err(|error| {
                ProviderError::config(format!("pool {pool:?}: {}", config_reason(error)))
            })?;
        providers.insert(pool, provider);
    }
    Ok(providers)
}

fn config_reason(error: ProviderError) -> String {
    match error {
        ProviderError::Config { reason } => reason,
        other => other.to_string(),
    }
}

fn jit_data(request: &LaunchRequest) -> BTreeMap<String, ByteString> {
    BTreeMap::from([(
        JIT_SECRET_KEY.to_string(),
        ByteString(request.jit_config.expose().as_bytes().to_vec()),
    )])
}

fn is_finished(pod: &Pod) -> bool {
    matches!(
        pod.status
            .as_ref()
            .and_then(|status| status.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

#[async_trait]
impl Provider for EksProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Eks
    }

    async fn launch(&self, request: LaunchRequest) -> Result<Launched, ProviderError> {
        if let Some(image) = &request.overrides.image
            && (image.starts_with("ami-") || image.chars().any(char::is_whitespace))
        {
            return Err(ProviderError::config(format!(
                "the launch asks for image {image:?}; an EKS pool runs container images"
            )));
        }
        let name = pod_name(&self.config.stack, &request.execution, &request.runner_name);
        let namespace = self.namespace();
        if let Some(existing) = self
            .kube
            .get_pod(namespace, &name)
            .await
            .map_err(|error| error.into_provider("looking for the runner's pod"))?
        {
            if !self.owns(
                &existing.metadata,
                Some(&request.execution),
                Some(&request.runner_name),
            ) {
                return Err(ProviderError::other(format!(
                    "a pod named {name} in namespace {namespace} is not this runner's; remove it"
                )));
            }
            if existing.metadata.deletion_timestamp.is_none() && !is_finished(&existing) {
                self.write_secret(&name, &request).await?;
                info!(pod = %name, runner = %request.runner_name, execution = %request.execution,
                    "the runner's pod exists already; it has this launch's JIT config");
                return Ok(self.launched(request, &existing));
            }
            // An ended pod of an earlier try: this launch starts another.
            self.kube
                .delete_pod(namespace, &name)
                .await
                .map_err(|error| error.into_provider("removing the runner's ended pod"))?;
            return Err(ProviderError::Unavailable {
                service: "Kubernetes API".into(),
                reason: format!("the runner's earlier pod {name} is being removed"),
            });
        }
        self.write_secret(&name, &request).await?;
        let created = match self.kube.create_pod(namespace, &self.pod(&request)).await {
            Ok(created) => created,
            Err(error) => {
                self.delete_quietly(&name).await;
                return Err(error.into_provider("creating the runner's pod"));
            }
        };
        // The cluster's garbage collector removes the secret with its pod.
        if let Some(uid) = created.metadata.uid.clone() {
            let owner = OwnerReference {
                api_version: "v1".to_string(),
                kind: "Pod".to_string(),
                name: name.clone(),
                uid,
                ..OwnerReference::default()
            };
            if let Err(error) = self
                .kube
                .patch_secret(
                    namespace,
                    &secret_name(&name),
                    &serde_json::json!({ "metadata": { "ownerReferences": [owner] } }),
                )
                .await
            {
                warn!(%error, pod = %name, "could not make the pod own its secret; teardown \
                    deletes it");
            }
        }
        info!(pod = %name, namespace, runner = %request.runner_name,
            execution = %request.execution, "launched runner on EKS");
        Ok(self.launched(request, &created))
    }

    async fn terminate(
        &self,
        execution: &str,
        runner_name: &str,
    ) -> Result<Terminated, ProviderError> {
        let selector = format!(
            "{},{LABEL_RUNNER}={}",
            self.selector(Some(execution)),
            label_value(runner_name)
        );
        let namespace = self.namespace();
        let pods = self
            .kube
            .list_pods(namespace, &selector)
            .await
            .map_err(|error| error.into_provider("listing the runner's pods"))?;
        let mut stopped = Vec::new();
        for pod in &pods {
            let Some(name) = pod.metadata.name.as_deref() else {
                continue;
            };
            if !self.owns(&pod.metadata, Some(execution), Some(runner_name))
                || pod.metadata.deletion_timestamp.is_some()
            {
                continue;
            }
            let deleted = self
                .kube
                .delete_pod(namespace, name)
                .await
                .map_err(|error| error.into_provider("deleting the runner's pod"))?;
            if deleted && !is_finished(pod) {
                stopped.push(name.to_string());
            }
        }
        let secrets = self
            .kube
            .list_secrets(namespace, &selector)
            .await
            .map_err(|error| error.into_provider("listing the runner's secrets"))?;
        for secret in &secrets {
            let Some(name) = secret.metadata.name.as_deref() else {
                continue;
            };
            if self.owns(&secret.metadata, Some(execution), Some(runner_name)) {
                self.kube
                    .delete_secret(namespace, name)
                    .await
                    .map_err(|error| error.into_provider("deleting the runner's secret"))?;
            }
        }
        if stopped.is_empty() {
            Ok(Terminated::AlreadyGone)
        } else {
            info!(execution, runner = runner_name, pods = ?stopped, "deleted runner pod");
            Ok(Terminated::Stopped {
                instance_ids: stopped,
            })
        }
    }

    async fn owned(&self) -> Result<Vec<OwnedRunner>, ProviderError> {
        self.owned_where(None).await
    }

    async fn owned_by(&self, execution: &str) -> Result<Vec<OwnedRunner>, ProviderError> {
        self.owned_where(Some(execution)).await
    }

    async fn runner_on(&self, instance_id: &str) -> Result<Option<OwnedRunner>, ProviderError> {
        let pod = self
            .kube
            .get_pod(self.namespace(), instance_id)
            .await
            .map_err(|error| error.into_provider("looking up a pod"))?;
        Ok(pod.and_then(|pod| {
            if pod.metadata.deletion_timestamp.is_some() || !self.owns(&pod.metadata, None, None) {
                return None;
            }
            self.owned_runner(&pod.metadata, instance_id)
        }))
    }
}

/// When an object was created.
fn created_at(metadata: &ObjectMeta) -> Option<DateTime<Utc>> {
    let time = &metadata.creation_timestamp.as_ref()?.0;
    DateTime::from_timestamp(time.as_second(), time.subsec_nanosecond().max(0) as u32)
}

#[cfg(test)]
mod tests;
