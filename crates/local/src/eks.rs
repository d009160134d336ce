//! EKS pools on `runway local`: the clusters are created in the AWS API (moto) when missing,
//! and their Kubernetes API is runway's Kubernetes emulator, started in-process, whose pods
//! run `runway runner-sim` with the JIT config read from the pod's mounted secret. So
//! `sam/local-eks.toml` needs nothing prepared.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_eks::types::VpcConfigRequest;
use runway_clock::SharedClock;
use runway_config::ProviderSettings;
use runway_kube_emulator::{
    Auth, ContainerExit, KubeEmulator, KubeEmulatorConfig, KubeEmulatorHandle, PodLaunch,
    PodRuntime, RunningPod, RuntimeError,
};
use runway_providers::{
    EksProvider, EksTokenSource, JIT_MOUNT_DIR, JIT_SECRET_KEY, KubeEndpoint, RUNNER_CONTAINER,
    eks_providers,
};
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::LocalConfig;
use crate::system::{LocalError, setup};

/// The role `runway local` names when it creates a cluster (moto checks only its shape).
const LOCAL_CLUSTER_ROLE: &str = "arn:aws:iam::123456789012:role/runway-local-eks";

/// Runs each pod's runner container as `command --jitconfig-file <the mounted JIT config>`
/// (`runway runner-sim`), its output in the container's log.
#[derive(Debug, Clone)]
pub struct RunnerSimRuntime {
    /// Program and arguments, e.g. `[runway, runner-sim, --poll-seconds, 2]`.
    pub command: Vec<String>,
    /// The GitHub emulator's URL (`RUNWAY_RUNNER_URL`); none: the one in the JIT config.
    pub url: Option<String>,
}

#[async_trait]
impl PodRuntime for RunnerSimRuntime {
    async fn start(&self, pod: PodLaunch) -> Result<RunningPod, RuntimeError> {
        let container = pod
            .containers
            .iter()
            .find(|container| container.name == RUNNER_CONTAINER)
            .ok_or_else(|| {
                RuntimeError::Other(format!(
                    "pod {} has no {RUNNER_CONTAINER:?} container",
                    pod.name
                ))
            })?;
        let jit_dir: PathBuf = container
            .mounts
            .iter()
            .find(|mount| mount.mount_path == JIT_MOUNT_DIR)
            .map(|mount| mount.host_dir.clone())
            .ok_or_else(|| {
                RuntimeError::Other(format!(
                    "pod {} mounts nothing at {JIT_MOUNT_DIR}, where the runner reads its JIT \
                     config",
                    pod.name
                ))
            })?;
        let (program, arguments) = self
            .command
            .split_first()
            .ok_or_else(|| RuntimeError::Other("the runner command is empty".into()))?;
        let log =
            std::fs::File::create(&container.log_path).map_err(|source| RuntimeError::Spawn {
                container: container.name.clone(),
                source,
            })?;
        let log_err = log.try_clone().map_err(|source| RuntimeError::Spawn {
            container: container.name.clone(),
            source,
        })?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(arguments)
            .arg("--jitconfig-file")
            .arg(jit_dir.join(JIT_SECRET_KEY))
            .current_dir(&pod.pod_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true);
        // The process gets neither runway's environment secrets nor a JIT config variable.
        command.env_remove("RUNWAY_JITCONFIG");
        if let Some(url) = &self.url {
            command.env("RUNWAY_RUNNER_URL", url);
        }
        let mut child = command.spawn().map_err(|source| RuntimeError::Spawn {
            container: container.name.clone(),
            source,
        })?;
        info!(pod = %pod.name, pid = ?child.id(), "runner-sim started for an EKS pod");
        let name = container.name.clone();
        let (kill, killed) = oneshot::channel::<()>();
        let exited = async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = killed => {
                    if let Err(error) = child.kill().await {
                        warn!(%error, "could not kill a pod's runner-sim");
                    }
                    child.wait().await
                }
            };
            let exit_code = match status {
                Ok(status) => status.code().unwrap_or(137),
                Err(_) => 1,
            };
            vec![ContainerExit {
                name,
                exit_code,
                reason: None,
            }]
        };
        Ok(RunningPod::new(exited, move || {
            let _ = kill.send(());
        }))
    }
}

/// The EKS pools' providers and the emulator standing in for their clusters' API.
pub(crate) struct LocalEks {
    pub providers: BTreeMap<String, EksProvider>,
    pub emulator: KubeEmulatorHandle,
}

/// Creates `cluster` in the AWS API when it does not exist (moto's cluster is ACTIVE at once).
async fn ensure_cluster(
    eks: &aws_sdk_eks::Client,
    ec2: &aws_sdk_ec2::Client,
    cluster: &str,
) -> Result<(), LocalError> {
    if eks.describe_cluster().name(cluster).send().await.is_ok() {
        return Ok(());
    }
    let subnets = runway_providers::default_vpc_subnets(ec2)
        .await
        .map_err(|error| {
            setup(format!(
                "could not find subnets for the EKS cluster: {error}"
            ))
        })?;
    eks.create_cluster()
        .name(cluster)
        .role_arn(LOCAL_CLUSTER_ROLE)
        .resources_vpc_config(
            VpcConfigRequest::builder()
                .set_subnet_ids(Some(subnets.into_iter().take(2).collect()))
                .build(),
        )
        .send()
        .await
        .map_err(|error| {
            setup(format!(
                "could not create the EKS cluster {cluster:?} for the EKS pools: {}; create it \
                 or name an existing one in the pools' provider.cluster",
                aws_smithy_types::error::display::DisplayErrorContext(&error)
            ))
        })?;
    info!(cluster, "created the EKS cluster for the EKS pools");
    Ok(())
}

/// A provider for every EKS pool of `config`, mapped as the deployed stack maps them, all
/// reaching one Kubernetes emulator (whose pods run `runner_command`) in place of their
/// clusters' API; `DescribeCluster` still answers for each cluster.
pub(crate) async fn providers(
    config: &LocalConfig,
    aws: &aws_config::SdkConfig,
    runner_command: Vec<String>,
    runner_url: Option<String>,
    clock: &SharedClock,
) -> Result<Option<LocalEks>, LocalError> {
    if !config
        .pools()
        .any(|(_, provider)| matches!(provider, ProviderSettings::Eks(_)))
    {
        return Ok(None);
    }
    let pools = config
        .document
        .eks_pools(config.stack.as_str())
        .map_err(|error| setup(error.to_string()))?;
    let eks = aws_sdk_eks::Client::new(aws);
    let ec2 = aws_sdk_ec2::Client::new(aws);
    let clusters: std::collections::BTreeSet<&str> =
        pools.values().map(|pool| pool.cluster.as_str()).collect();
    for cluster in &clusters {
        ensure_cluster(&eks, &ec2, cluster).await?;
    }
    let namespaces: std::collections::BTreeSet<String> =
        pools.values().map(|pool| pool.namespace.clone()).collect();
    let mut emulator_config = KubeEmulatorConfig::default().with_runtime(RunnerSimRuntime {
        command: runner_command,
        url: runner_url,
    });
    emulator_config.namespaces = namespaces.into_iter().collect();
    // One emulator answers for every cluster; a token's cluster is signed in and cannot be
    // checked offline, so the first cluster's name stands for all.
    if let Some(cluster) = clusters.iter().next() {
        emulator_config = emulator_config.with_auth(Auth::EksToken {
            cluster_name: cluster.to_string(),
        });
    }
    let emulator = KubeEmulator::start(emulator_config)
        .await
        .map_err(|error| setup(format!("the Kubernetes emulator did not start: {error}")))?;
    let endpoint = KubeEndpoint {
        url: emulator.url().to_string(),
        ca_pem: emulator.ca_pem().unwrap_or_default().to_string(),
    };
    let credentials = aws.credentials_provider().ok_or_else(|| {
        setup("EKS pools need AWS credentials to sign tokens with (AWS_ACCESS_KEY_ID=test works on moto)")
    })?;
    let region = aws
        .region()
        .map(|region| region.to_string())
        .ok_or_else(|| setup("EKS pools need an AWS region (AWS_REGION)"))?;
    let tokens = Arc::new(EksTokenSource::new(credentials, region));
    let providers = eks_providers(&eks, tokens, pools, Some(endpoint), clock.clone())
        .map_err(|error| setup(error.to_string()))?;
    info!(url = %emulator.url(), pools = providers.len(), "EKS pools run on the Kubernetes emulator");
    Ok(Some(LocalEks {
        providers,
        emulator,
    }))
}
