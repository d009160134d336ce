//! Where runway's runners run.
//!
//! One trait, [`Provider`], with one implementation per host:
//! - [`Ec2Provider`]: an EC2 instance per runner (launch template or AMI, instance types across
//!   subnets, spot with on-demand fallback, IMDSv2 required, JIT config handed over through an
//!   SSM SecureString only that instance can read);
//! - [`EcsProvider`]: an ECS task per runner (`RunTask` on Fargate, Fargate Spot with Fargate
//!   fallback, or EC2 capacity; JIT config handed over through an SSM SecureString the task
//!   reads at start and deletes);
//! - [`EksProvider`]: a pod per runner in an EKS cluster (JIT config handed over through a
//!   Kubernetes Secret the pod mounts, owned by the pod);
//! - [`LambdaProvider`]: an asynchronous invocation of a container-image Lambda function per
//!   runner (JIT config handed over through an SSM SecureString the function reads and
//!   deletes; an SSM record per runner stands in for tags);
//! - [`LocalProvider`]: a process on this machine, for `runway local` and tests.
//!
//! Every runner is recorded with the Step Functions execution that launched it (EC2 and ECS:
//! tags; EKS: labels; local: the provider's own table), so [`Provider::terminate`] finds it again and
//! [`Provider::owned`] lists everything the reaper may have to remove. Nothing leaks.
//!
//! Every implementation passes the same contract suite (`tests/contract`).

mod boot;
mod ec2;
mod ecs;
mod eks;
mod error;
mod jit;
mod lambda;
mod local;
mod network;
mod remembered;
mod runner_cache;
mod shared;
mod types;

pub use boot::{
    BootHooks, BootLogs, BootOs, BootScript, CachedRunner, DEFAULT_IMDS_URL, DEFAULT_LINUX_LOG_DIR,
    DEFAULT_WINDOWS_LOG_DIR, RunnerInstall, USER_DATA_LIMIT,
};
pub use ec2::{
    Ec2PoolConfig, Ec2Provider, IMAGE_PARAMETER_TTL, ImageSource, LaunchTemplateRef, RESOLVE_SSM,
    RUNNER_POLICY_DOC, check_instance_profile,
};
pub use ecs::{
    DockerMode, ECS_TASK_ROLE_POLICY_DOC, EcsCapacity, EcsPoolConfig, EcsProvider,
    RunnerTaskDefinition, default_task_definition_family, ecs_jit_parameter_prefix,
    ensure_task_definition, register_default_task_definition, started_by,
};
pub use eks::{
    ANNOTATION_POD, EKS_TOKEN_PREFIX, EksCluster, EksPoolConfig, EksProvider, EksTokenSource,
    EksToleration, JIT_FILE_ENV, JIT_MOUNT_DIR, JIT_SECRET_KEY, KubeApi, KubeEndpoint, KubeError,
    LABEL_EXECUTION, LABEL_MANAGED, LABEL_POOL, LABEL_RUNNER, LABEL_STACK, RUNNER_CONTAINER,
    TOKEN_REUSE, eks_providers, eks_token, is_eks_cluster_name, is_label_value, label_value,
    pod_name, secret_name,
};
pub use error::ProviderError;
pub use jit::{
    SSM_WRITE_ATTEMPTS, SSM_WRITE_FIRST_BACKOFF, SSM_WRITE_MAX_BACKOFF, jit_parameter_prefix,
};
pub use lambda::{
    DEFAULT_QUEUE_SLACK, LAMBDA_MAX_TIMEOUT, LambdaPoolConfig, LambdaProvider, LambdaRecord,
    TIME_LIMIT_MARGIN, default_lambda_function, is_lambda_function_ref, lambda_instance_id,
    lambda_parameter_prefix,
};
pub use local::{JITCONFIG_ENV, LocalConfig, LocalProvider};
pub use network::{default_vpc_security_group, default_vpc_subnets};
pub use runner_cache::{MANIFEST_TTL, ManifestReader, RunnerCacheReader, StoreFor};
pub use runway_runner_logs::runner_log_group;
pub use shared::{DEFAULT_STACK, is_stack_name};
pub use types::{
    Capacity, CapacityPreference, JitConfig, LaunchOverrides, LaunchRequest, Launched, OwnedRunner,
    ProviderKind, Terminated,
};

use async_trait::async_trait;

/// A host for ephemeral runners.
///
/// Runners are addressed by the execution that launched them and their runner name; a runner
/// name is unique within runway, the execution is what proves ownership.
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// Which host this is.
    fn kind(&self) -> ProviderKind;

    /// Starts one runner. On success the runner is recorded as owned by `request.execution`
    /// until [`Provider::terminate`] removes it or it ends by itself.
    async fn launch(&self, request: LaunchRequest) -> Result<Launched, ProviderError>;

    /// Stops the runner `runner_name` launched by `execution` and removes what it left (the
    /// JIT config parameter on EC2 and ECS). Idempotent: a runner that is unknown or already gone is
    /// [`Terminated::AlreadyGone`], which is success.
    async fn terminate(
        &self,
        execution: &str,
        runner_name: &str,
    ) -> Result<Terminated, ProviderError>;

    /// Every live runner this provider launched, for the reaper.
    async fn owned(&self) -> Result<Vec<OwnedRunner>, ProviderError>;

    /// The live runners launched for `execution` (a teardown's look for what a failure may
    /// have left). Providers that can ask their host for one execution's runners do so.
    async fn owned_by(&self, execution: &str) -> Result<Vec<OwnedRunner>, ProviderError> {
        let mut owned = self.owned().await?;
        owned.retain(|runner| runner.execution == execution);
        Ok(owned)
    }

    /// The longest one of this provider's runners can live when its host ends runners by
    /// itself (a Lambda function's timeout); `None`: no such limit. A runner that took a job
    /// and lived that long, less [`TIME_LIMIT_MARGIN`], was ended by the limit, not its job.
    async fn runner_time_limit(&self) -> Result<Option<std::time::Duration>, ProviderError> {
        Ok(None)
    }

    /// The live runner on the host `instance_id` (instance id, task ARN, process id), if this
    /// provider launched it: for events that name a host, such as a spot interruption
    /// warning. Providers that can ask their host for one instance do so.
    async fn runner_on(&self, instance_id: &str) -> Result<Option<OwnedRunner>, ProviderError> {
        Ok(self
            .owned()
            .await?
            .into_iter()
            .find(|runner| runner.instance_id == instance_id))
    }
}
