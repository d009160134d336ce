//! Where a pool's runners run: its `provider`, and how an EC2 pool's settings become an
//! [`Ec2PoolConfig`] and an ECS pool's an [`EcsPoolConfig`].
//!
//! What the job flow routes on (`image`, `instance_types`, `disk_gib`, `market`) is the
//! pool's own; the provider holds only what is particular to where runners run. For an ECS
//! pool, `image` is the runner's container image, `disk_gib` the task's ephemeral storage and
//! `market` picks Fargate Spot or Fargate. For an EKS pool ([`eks_pool_config`]), `image` is
//! the pod's runner image. A Lambda pool ([`lambda_pool_config`]) runs its function's image:
//! it takes no `image`, instance types, disk or market.

use std::collections::BTreeMap;
use std::path::PathBuf;

use runway_jobflow::PoolConfig;
use runway_policy_host::Market;
use runway_providers::{
    BootHooks, BootLogs, BootOs, BootScript, CachedRunner, CapacityPreference, DEFAULT_IMDS_URL,
    DEFAULT_LINUX_LOG_DIR, DEFAULT_WINDOWS_LOG_DIR, DockerMode, Ec2PoolConfig, EcsCapacity,
    EcsPoolConfig, EksPoolConfig, EksToleration, ImageSource, LambdaPoolConfig, LaunchTemplateRef,
    ProviderError, ProviderKind, RunnerInstall, RunnerTaskDefinition,
    default_task_definition_family,
};
use serde::Deserialize;

use crate::Problem;

/// Where a pool's runners run (`provider = { kind = "…", … }`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProviderSettings {
    /// Processes on the machine `runway local` runs on.
    Local(LocalRunners),
    /// EC2 instances, one per job.
    Ec2(Ec2Settings),
    /// ECS tasks, one per job.
    Ecs(EcsSettings),
    /// EKS pods, one per job.
    Eks(EksSettings),
    /// Invocations of a container-image Lambda function, one per job (15 minutes at most).
    Lambda(LambdaSettings),
}

impl ProviderSettings {
    /// The provider with every default.
    pub fn defaults_of(kind: ProviderKind) -> ProviderSettings {
        match kind {
            ProviderKind::Local => ProviderSettings::Local(LocalRunners::default()),
            ProviderKind::Ec2 => ProviderSettings::Ec2(Ec2Settings::default()),
            ProviderKind::Ecs => ProviderSettings::Ecs(EcsSettings::default()),
            ProviderKind::Eks => ProviderSettings::Eks(EksSettings::default()),
            ProviderKind::Lambda => ProviderSettings::Lambda(LambdaSettings::default()),
        }
    }

    pub fn kind(&self) -> ProviderKind {
        match self {
            ProviderSettings::Local(_) => ProviderKind::Local,
            ProviderSettings::Ec2(_) => ProviderKind::Ec2,
            ProviderSettings::Ecs(_) => ProviderKind::Ecs,
            ProviderSettings::Eks(_) => ProviderKind::Eks,
            ProviderSettings::Lambda(_) => ProviderKind::Lambda,
        }
    }
}

/// Runners as processes on this machine.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalRunners {
    /// Program and arguments (`{url}`, `{runner}`, `{execution}`, `{pool}` are filled in; the
    /// JIT config is in `$RUNWAY_JITCONFIG`). Default: this binary's `runway runner-sim`.
    pub command: Option<Vec<String>>,
    /// Where `<runner>.log` files go; none: runner output is discarded.
    pub log_dir: Option<PathBuf>,
    /// Extra environment for the runners.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Seconds a runner has to stop after SIGTERM (default 5).
    pub grace_seconds: Option<f64>,
}

/// A pool's EC2 settings. The pool boots its `image` (an AMI id) on its `instance_types`, or
/// launches from `launch_template`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ec2Settings {
    /// Boot from this launch template instead of the pool's `image`.
    pub launch_template: Option<LaunchTemplateSettings>,
    /// Subnets in order of preference (default: the stack's `RunnerSubnets`).
    pub subnets: Option<Vec<String>>,
    /// Default: the stack's `RunnerSecurityGroups`.
    pub security_groups: Option<Vec<String>>,
    /// An instance profile name or ARN (default: the stack's runner profile). On a deployed
    /// stack its role must be one of the stack's `RunnerPassableRoleArns`.
    pub instance_profile: Option<String>,
    /// Launch with the stack's Session Manager profile (the runner role's rights and
    /// `AmazonSSMManagedInstanceCore`) so `aws ssm start-session` reaches the instances.
    /// Default false.
    pub session_manager: Option<bool>,
    /// Overrides the pool's `market`: `spot-then-on-demand`, `spot-only` or `on-demand`.
    pub capacity: Option<CapacityPreference>,
    /// Extra tags on instances and volumes.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Where JIT configs are kept (default `/runway/<stack>/jit`).
    pub ssm_prefix: Option<String>,
    /// Where the actions runner is installed on the image (default `/opt/actions-runner`).
    pub runner_dir: Option<String>,
    /// The user that runs the runner (default `runner`).
    pub runner_user: Option<String>,
    /// IMDSv2 hop limit: 1 (default) keeps containers away from the instance role.
    pub imds_hop_limit: Option<u8>,
    /// `linux` or `windows` (default: `windows` when the pool's labels say so).
    pub os: Option<PoolOs>,
    /// Scripts the boot runs around the runner.
    pub hooks: Option<HookSettings>,
    /// Ship boot, hook and runner output to the pool's CloudWatch Logs group (default true;
    /// `runway logs` reads it).
    pub logs: Option<bool>,
}

/// What a pool's instances boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolOs {
    Linux,
    Windows,
}

/// A pool's boot hooks (`hooks = { before_runner = "...", job_started = "...",
/// job_completed = "..." }`): shell on Linux, PowerShell on Windows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookSettings {
    /// Runs as root (Administrator) once, before the runner starts; a failure stops the boot.
    pub before_runner: Option<String>,
    /// Runs before each job, as the runner (`ACTIONS_RUNNER_HOOK_JOB_STARTED`).
    pub job_started: Option<String>,
    /// Runs after each job, as the runner (`ACTIONS_RUNNER_HOOK_JOB_COMPLETED`).
    pub job_completed: Option<String>,
}

/// A launch template by id or by name, and optionally its version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchTemplateSettings {
    pub id: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
}

/// What the host fills in for EC2 pools: the stack, and what a deployed stack provides
/// (its subnets, security groups, runner profile, launch template and KMS key). `runway
/// local` provides only the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Defaults {
    pub stack: String,
    pub instance_profile: Option<String>,
    /// The stack's Session Manager profile, for pools with `session_manager = true`.
    pub session_instance_profile: Option<String>,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// The stack's runner launch template: a pool that boots an `image` launches through it
    /// (it holds what the stack enforces; the image still picks the AMI at launch).
    pub launch_template: Option<LaunchTemplateRef>,
    /// The KMS key of the JIT config parameters; none: the account's key for SSM.
    pub ssm_kms_key_id: Option<String>,
    /// The stack's runner cache bucket: boots on images without the runner install it from
    /// there.
    pub runner_cache_bucket: Option<String>,
}

impl Ec2Defaults {
    /// Nothing but the stack.
    pub fn for_stack(stack: impl Into<String>) -> Ec2Defaults {
        Ec2Defaults {
            stack: stack.into(),
            instance_profile: None,
            session_instance_profile: None,
            subnets: Vec::new(),
            security_groups: Vec::new(),
            launch_template: None,
            ssm_kms_key_id: None,
            runner_cache_bucket: None,
        }
    }
}

/// The provider settings of EC2 pool `pool` (at `pools[index]`) with `defaults` filled in:
/// one mapping, whether the pool runs under Lambda or `runway local`.
pub fn ec2_pool_config(
    index: usize,
    pool: &PoolConfig,
    settings: &Ec2Settings,
    defaults: &Ec2Defaults,
) -> Result<Ec2PoolConfig, Problem> {
    let at = |field: &str| format!("pools[{index}].{field}");
    let name = &pool.name;
    let mut config = match (&settings.launch_template, &pool.image) {
        (Some(template), _) => {
            let reference = match (&template.id, &template.name) {
                (Some(id), None) => LaunchTemplateRef::Id(id.clone()),
                (None, Some(template_name)) => LaunchTemplateRef::Name(template_name.clone()),
                _ => {
                    return Err(Problem::new(
                        at("provider.launch_template"),
                        format!("pool {name:?}: give exactly one of \"id\" or \"name\""),
                    ));
                }
            };
            let mut config =
                Ec2PoolConfig::from_launch_template(reference, template.version.clone());
            config.instance_types = pool.instance_types.clone();
            config
        }
        (None, Some(image)) => {
            if pool.instance_types.is_empty() {
                return Err(Problem::new(
                    at("instance_types"),
                    format!(
                        "pool {name:?} boots image {image} but lists no instance_types: name at \
                         least one (e.g. [\"c7g.large\"]) or use provider.launch_template"
                    ),
                ));
            }
            let mut config = Ec2PoolConfig::from_ami(image.clone(), pool.instance_types.clone());
            config.image = ImageSource::parse(image).map_err(|error| {
                Problem::new(at("image"), format!("pool {name:?}: {}", reason_of(error)))
            })?;
            if let Some(template) = &defaults.launch_template {
                config.image = ImageSource::LaunchTemplate {
                    template: template.clone(),
                    version: None,
                };
            }
            config
        }
        (None, None) => {
            return Err(Problem::new(
                at("image"),
                format!(
                    "pool {name:?} has nothing to boot: set \"image\" to an AMI id (ami-...) or \
                     provider.launch_template"
                ),
            ));
        }
    };
    config.stack = defaults.stack.clone();
    config.subnets = settings
        .subnets
        .clone()
        .unwrap_or_else(|| defaults.subnets.clone());
    config.security_groups = settings
        .security_groups
        .clone()
        .unwrap_or_else(|| defaults.security_groups.clone());
    config.instance_profile = instance_profile(settings, defaults)
        .map_err(|(field, message)| Problem::new(at(field), format!("pool {name:?}: {message}")))?;
    config.capacity = settings.capacity.unwrap_or(match pool.market {
        Market::Spot => CapacityPreference::SpotThenOnDemand,
        Market::OnDemand => CapacityPreference::OnDemand,
    });
    config.disk_gib = pool.disk_gib;
    config.extra_tags = settings.tags.clone();
    config.ssm_prefix = settings.ssm_prefix.clone();
    config.ssm_kms_key_id = defaults.ssm_kms_key_id.clone();
    if let Some(dir) = &settings.runner_dir {
        config.runner_dir = dir.clone();
    }
    if let Some(user) = &settings.runner_user {
        config.runner_user = user.clone();
    }
    if let Some(limit) = settings.imds_hop_limit {
        config.imds_hop_limit = limit;
    }
    let windows_labels = pool
        .labels
        .iter()
        .any(|label| label.eq_ignore_ascii_case("windows"));
    config.os = match settings.os {
        Some(PoolOs::Windows) => BootOs::Windows,
        Some(PoolOs::Linux) => BootOs::Linux,
        None if windows_labels => BootOs::Windows,
        None => BootOs::Linux,
    };
    if config.os == BootOs::Windows && settings.runner_user.is_some() {
        return Err(Problem::new(
            at("provider.runner_user"),
            format!(
                "pool {name:?} boots Windows, where the runner runs as the account EC2Launch \
                 runs user data as: remove runner_user (it applies to Linux pools), or create \
                 and switch to a user in the before_runner hook"
            ),
        ));
    }
    if config.os == BootOs::Windows && settings.runner_dir.is_none() {
        config.runner_dir = WINDOWS_RUNNER_DIR.to_string();
    }
    if let Some(hooks) = &settings.hooks {
        config.hooks = BootHooks {
            before_runner: hooks.before_runner.clone(),
            job_started: hooks.job_started.clone(),
            job_completed: hooks.job_completed.clone(),
        };
        config.hooks.validate().map_err(|error| {
            Problem::new(
                at("provider.hooks"),
                format!("pool {name:?}: {}", reason_of(error)),
            )
        })?;
    }
    config.runner_cache_bucket = defaults.runner_cache_bucket.clone();
    if settings.logs.unwrap_or(true) {
        config.log_group = Some(runway_providers::runner_log_group(&defaults.stack, name));
    }
    config.validate().map_err(|error| {
        Problem::new(
            at("provider"),
            format!("pool {name:?}: {}", reason_of(error)),
        )
    })?;
    // EC2 refuses user data over 16 KB: a pool whose hooks make it larger is refused now,
    // not at its first launch.
    let boot = BootScript {
        jit_prefix: config.jit_prefix(),
        runner_dir: config.runner_dir.clone(),
        runner_user: config.runner_user.clone(),
        imds_url: DEFAULT_IMDS_URL.to_string(),
        install: Some(RunnerInstall {
            bucket: "a-runner-cache-bucket-name-of-the-longest-length-s3-allows-xyz".to_string(),
            version: "999.999.999".to_string(),
            linux_x64: Some(longest_package("linux-x64", "tar.gz")),
            linux_arm64: Some(longest_package("linux-arm64", "tar.gz")),
            win_x64: Some(longest_package("win-x64", "zip")),
        }),
        hooks: config.hooks.clone(),
        // A runner name is at most 64 characters.
        logs: config.log_group.clone().map(|group| BootLogs {
            group,
            stream: "r".repeat(64),
            dir: match config.os {
                BootOs::Linux => DEFAULT_LINUX_LOG_DIR.to_string(),
                BootOs::Windows => DEFAULT_WINDOWS_LOG_DIR.to_string(),
            },
        }),
    };
    boot.render(config.os).map_err(|error| {
        Problem::new(
            at("provider.hooks"),
            format!("pool {name:?}: {}", reason_of(error)),
        )
    })?;
    Ok(config)
}

/// The profile an EC2 pool launches with: its own, the stack's Session Manager profile, or
/// the stack's runner profile; or the field at fault and what to do.
fn instance_profile(
    settings: &Ec2Settings,
    defaults: &Ec2Defaults,
) -> Result<Option<String>, (&'static str, String)> {
    let session_manager = settings.session_manager.unwrap_or(false);
    match (&settings.instance_profile, session_manager) {
        (Some(_), true) => Err((
            "provider.session_manager",
            "names its own provider.instance_profile and session_manager = true, but Session \
             Manager comes with the stack's own profile: attach AmazonSSMManagedInstanceCore to \
             your own role instead and drop session_manager"
                .to_string(),
        )),
        (Some(profile), false) => {
            runway_providers::check_instance_profile(profile)
                .map_err(|error| ("provider.instance_profile", reason_of(error)))?;
            Ok(Some(profile.clone()))
        }
        (None, true) => match &defaults.session_instance_profile {
            Some(profile) => Ok(Some(profile.clone())),
            None => Err((
                "provider.session_manager",
                "session_manager = true launches with the deployed stack's Session Manager \
                 profile (RunnerSessionInstanceProfile), which runway local does not have: \
                 name an instance_profile whose role has AmazonSSMManagedInstanceCore instead"
                    .to_string(),
            )),
        },
        (None, false) => Ok(defaults.instance_profile.clone()),
    }
}

/// Where Windows pools keep the runner unless they say otherwise.
pub const WINDOWS_RUNNER_DIR: &str = "C:\\actions-runner";

/// A package entry as long as a real manifest's can be, for the size check.
fn longest_package(platform: &str, extension: &str) -> CachedRunner {
    CachedRunner {
        key: format!("runners/999.999.999/actions-runner-{platform}-999.999.999.{extension}"),
        sha256: "0".repeat(64),
    }
}

fn reason_of(error: ProviderError) -> String {
    match error {
        ProviderError::Config { reason } => reason,
        other => other.to_string(),
    }
}

/// A pool's ECS settings. Its tasks run `task_definition`, or, when it names none, the task
/// definition the stack registers for it running the pool's `image` (a runner image such as
/// `ghcr.io/actions/actions-runner:latest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsSettings {
    /// Cluster name or ARN (default: the stack's cluster).
    pub cluster: Option<String>,
    /// `family`, `family:revision` or an ARN; its runner container must run an actions runner
    /// image with bash, curl and jq (the official image has them).
    pub task_definition: Option<String>,
    /// The runner's container in the task definition (default `runner`).
    pub container_name: Option<String>,
    /// Subnets of the tasks' network interfaces (default: the stack's `RunnerSubnets`).
    pub subnets: Option<Vec<String>>,
    /// Default: the stack's `RunnerSecurityGroups`.
    pub security_groups: Option<Vec<String>>,
    /// A public IP per task (default false: the subnets reach GitHub through a NAT gateway).
    pub assign_public_ip: Option<bool>,
    /// Task CPU units (1024 = 1 vCPU).
    pub cpu: Option<u32>,
    /// Task memory in MiB.
    pub memory: Option<u32>,
    /// Fargate ephemeral storage in GiB, 21 to 200 (or the pool's `disk_gib`).
    pub ephemeral_storage_gib: Option<u32>,
    /// `fargate_spot_then_fargate`, `fargate`, `fargate_spot` or `ec2` (default: from the
    /// pool's `market`).
    pub capacity: Option<EcsCapacity>,
    /// With capacity `ec2`: the cluster's Auto Scaling group capacity provider (default: the
    /// EC2 launch type).
    pub capacity_provider: Option<String>,
    /// `none` (default) or `dind`: a privileged docker-in-docker sidecar, EC2 capacity only.
    pub docker: Option<DockerMode>,
    /// Extra tags on tasks.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Where JIT configs are kept (default `/runway/<stack>/jit`; ECS ones under `.../ecs`).
    pub ssm_prefix: Option<String>,
    /// Where `run.sh` is in the image (default `/home/runner`, the official image's).
    pub runner_dir: Option<String>,
}

/// What the host fills in for ECS pools: the stack, and what a deployed stack provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsDefaults {
    pub stack: String,
    pub cluster: Option<String>,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// The KMS key of the JIT config parameters; none: the account's key for SSM.
    pub ssm_kms_key_id: Option<String>,
    /// The roles and log group of the task definitions the stack registers.
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
    /// A CloudWatch Logs group and its region.
    pub log_group: Option<(String, String)>,
}

impl EcsDefaults {
    /// Nothing but the stack.
    pub fn for_stack(stack: impl Into<String>) -> EcsDefaults {
        EcsDefaults {
            stack: stack.into(),
            cluster: None,
            subnets: Vec::new(),
            security_groups: Vec::new(),
            ssm_kms_key_id: None,
            task_role_arn: None,
            execution_role_arn: None,
            log_group: None,
        }
    }
}

/// The provider settings of ECS pool `pool` (at `pools[index]`) with `defaults` filled in,
/// or every problem found, each with its field path.
pub fn ecs_pool_config(
    index: usize,
    pool: &PoolConfig,
    settings: &EcsSettings,
    defaults: &EcsDefaults,
) -> Result<EcsPoolConfig, Vec<Problem>> {
    let at = |field: &str| format!("pools[{index}].{field}");
    let name = &pool.name;
    let mut problems = Vec::new();
    let mut problem = |field: &str, message: String| {
        problems.push(Problem::new(at(field), format!("pool {name:?}: {message}")));
    };
    if !pool.instance_types.is_empty() || !pool.allowed_instance_types.is_empty() {
        let field = if pool.instance_types.is_empty() {
            "allowed_instance_types"
        } else {
            "instance_types"
        };
        problem(
            field,
            "an ECS pool has no instance types: size its tasks with provider.cpu and \
             provider.memory"
                .to_string(),
        );
    }
    if !pool.allowed_images.is_empty() {
        problem(
            "allowed_images",
            "an ECS task runs its task definition's image and cannot switch images at launch: \
             make a pool per image"
                .to_string(),
        );
    }
    if let Some(image) = &pool.image
        && image.starts_with("ami-")
    {
        problem(
            "image",
            format!(
                "{image} is an AMI; an ECS pool runs a container image (e.g. \
                 ghcr.io/actions/actions-runner:latest)"
            ),
        );
    }
    let task_definition = match (&settings.task_definition, &pool.image) {
        (Some(task_definition), _) => task_definition.clone(),
        (None, Some(_)) => default_task_definition_family(&defaults.stack, name),
        (None, None) => {
            problem(
                "image",
                "names no provider.task_definition, so the stack registers one running the \
                 pool's image: set \"image\" to a runner image (e.g. \
                 ghcr.io/actions/actions-runner:latest) or name a task definition"
                    .to_string(),
            );
            String::new()
        }
    };
    let cluster = match settings
        .cluster
        .clone()
        .or_else(|| defaults.cluster.clone())
    {
        Some(cluster) => cluster,
        None => {
            problem(
                "provider.cluster",
                "runs on ECS but names no cluster: set provider.cluster".to_string(),
            );
            String::new()
        }
    };
    let capacity = settings.capacity.unwrap_or(match pool.market {
        Market::Spot => EcsCapacity::FargateSpotThenFargate,
        Market::OnDemand => EcsCapacity::Fargate,
    });
    if capacity == EcsCapacity::Ec2 && !pool.allowed_markets.is_empty() {
        problem(
            "allowed_markets",
            "a pool on EC2 capacity takes no market override: its capacity provider decides"
                .to_string(),
        );
    }
    // The pool's disk_gib reaches the provider with every launch: one size, said once.
    if let (Some(storage), Some(disk)) = (settings.ephemeral_storage_gib, pool.disk_gib)
        && storage != disk
    {
        problem(
            "provider.ephemeral_storage_gib",
            format!(
                "says {storage} GiB and the pool's disk_gib {disk} GiB: set the task's \
                 ephemeral storage once"
            ),
        );
    }
    let mut config = EcsPoolConfig::new(
        cluster,
        task_definition,
        settings
            .subnets
            .clone()
            .unwrap_or_else(|| defaults.subnets.clone()),
    );
    config.stack = defaults.stack.clone();
    config.image = if settings.task_definition.is_none() {
        pool.image.clone()
    } else {
        None
    };
    if let Some(container) = &settings.container_name {
        config.container_name = container.clone();
    }
    config.security_groups = settings
        .security_groups
        .clone()
        .unwrap_or_else(|| defaults.security_groups.clone());
    config.assign_public_ip = settings.assign_public_ip.unwrap_or(false);
    config.capacity = capacity;
    config.ec2_capacity_provider = settings.capacity_provider.clone();
    config.cpu = settings.cpu;
    config.memory = settings.memory;
    config.ephemeral_storage_gib = settings.ephemeral_storage_gib.or(pool.disk_gib);
    config.docker = settings.docker.unwrap_or_default();
    config.extra_tags = settings.tags.clone();
    config.ssm_prefix = settings.ssm_prefix.clone();
    config.ssm_kms_key_id = defaults.ssm_kms_key_id.clone();
    if let Some(dir) = &settings.runner_dir {
        config.runner_dir = dir.clone();
    }
    // Missing names were reported above; their follow-on problems would only repeat them.
    let reported: Vec<String> = problems.iter().map(|p| p.path.clone()).collect();
    for (key, message) in config.problems() {
        let field = match key {
            "" => "provider".to_string(),
            // The size came from the pool's disk_gib.
            "ephemeral_storage_gib" if settings.ephemeral_storage_gib.is_none() => {
                "disk_gib".to_string()
            }
            "cluster" | "task_definition"
                if reported
                    .iter()
                    .any(|path| path == &at("provider.cluster") || path == &at("image")) =>
            {
                continue;
            }
            key => format!("provider.{key}"),
        };
        problems.push(Problem::new(
            at(&field),
            format!("pool {name:?}: {message}"),
        ));
    }
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

/// The task definition the stack registers for ECS pool `pool`, or `None` when the pool names
/// its own. The pool's settings must have mapped ([`ecs_pool_config`]).
pub fn ecs_default_task_definition(
    pool: &PoolConfig,
    config: &EcsPoolConfig,
    defaults: &EcsDefaults,
) -> Option<RunnerTaskDefinition> {
    let image = config.image.as_ref()?;
    let mut definition = RunnerTaskDefinition::for_pool(config, &pool.name, image);
    definition.task_role_arn = defaults.task_role_arn.clone();
    definition.execution_role_arn = defaults.execution_role_arn.clone();
    definition.log_group = defaults.log_group.clone();
    Some(definition)
}

/// A pool's EKS settings: its runners are pods in `namespace` of EKS cluster `cluster`,
/// running the pool's `image`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EksSettings {
    /// The EKS cluster's name.
    pub cluster: Option<String>,
    /// The namespace of the pods and their secrets (it must exist).
    pub namespace: Option<String>,
    /// The pods' service account (default: the namespace's `default`).
    pub service_account: Option<String>,
    /// CPU and memory requests (Kubernetes quantities: `2`, `"500m"`, `"4Gi"`).
    #[serde(default, deserialize_with = "quantity")]
    pub cpu: Option<String>,
    #[serde(default, deserialize_with = "quantity")]
    pub memory: Option<String>,
    /// Limits (default: none for CPU, the request for memory).
    #[serde(default, deserialize_with = "quantity")]
    pub cpu_limit: Option<String>,
    #[serde(default, deserialize_with = "quantity")]
    pub memory_limit: Option<String>,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub tolerations: Vec<EksToleration>,
    /// Extra labels and annotations of pods and secrets.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Where `run.sh` is in the image (default `/home/runner`, the official image's).
    pub runner_dir: Option<String>,
}

/// A quantity written as a number (`cpu = 2`) or a string (`memory = "4Gi"`).
fn quantity<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Whole(u64),
        Decimal(f64),
    }
    Ok(
        Option::<Written>::deserialize(deserializer)?.map(|written| match written {
            Written::Text(text) => text,
            Written::Whole(number) => number.to_string(),
            Written::Decimal(number) => number.to_string(),
        }),
    )
}

/// Labels of runners an EKS pod cannot be (its nodes run Linux containers).
fn non_linux_label(labels: &[String]) -> Option<&String> {
    labels.iter().find(|label| {
        matches!(
            label.to_ascii_lowercase().as_str(),
            "windows" | "macos" | "osx" | "darwin"
        )
    })
}

/// The provider settings of EKS pool `pool` (at `pools[index]`) of `stack`, or every problem
/// found, each with its field path.
pub fn eks_pool_config(
    index: usize,
    pool: &PoolConfig,
    settings: &EksSettings,
    stack: &str,
) -> Result<EksPoolConfig, Vec<Problem>> {
    let at = |field: &str| format!("pools[{index}].{field}");
    let name = &pool.name;
    let mut problems = Vec::new();
    let mut problem = |field: &str, message: String| {
        problems.push(Problem::new(at(field), format!("pool {name:?}: {message}")));
    };
    if let Some(label) = non_linux_label(&pool.labels) {
        problem(
            "labels",
            format!(
                "offers {label:?}, but EKS runs runners as Linux containers: run {label} \
                 runners on EC2 (provider.kind = \"ec2\")"
            ),
        );
    }
    if !pool.instance_types.is_empty() || !pool.allowed_instance_types.is_empty() {
        let field = if pool.instance_types.is_empty() {
            "allowed_instance_types"
        } else {
            "instance_types"
        };
        problem(
            field,
            "an EKS pool has no instance types: size its pods with provider.cpu and \
             provider.memory, and pick nodes with provider.node_selector"
                .to_string(),
        );
    }
    if pool.disk_gib.is_some() || pool.max_disk_gib.is_some() {
        problem(
            if pool.disk_gib.is_some() {
                "disk_gib"
            } else {
                "max_disk_gib"
            },
            "an EKS pod uses its node's disk: size the node group's volumes instead".to_string(),
        );
    }
    if !pool.allowed_markets.is_empty() {
        problem(
            "allowed_markets",
            "an EKS pool takes no market: its node groups decide between spot and on-demand"
                .to_string(),
        );
    }
    let image = match &pool.image {
        Some(image) => image.clone(),
        None => {
            problem(
                "image",
                "an EKS pool runs its \"image\" in a pod: set it to a runner image (e.g. \
                 ghcr.io/actions/actions-runner:latest)"
                    .to_string(),
            );
            String::new()
        }
    };
    let cluster = settings.cluster.clone().unwrap_or_else(|| {
        problem(
            "provider.cluster",
            "runs on EKS but names no cluster: set provider.cluster to the EKS cluster's name"
                .to_string(),
        );
        String::new()
    });
    let namespace = settings.namespace.clone().unwrap_or_else(|| {
        problem(
            "provider.namespace",
            "runs on EKS but names no namespace: set provider.namespace (an existing namespace \
             runway's access entry may create pods and secrets in)"
                .to_string(),
        );
        String::new()
    });
    let mut config = EksPoolConfig::new(cluster, namespace, image);
    config.stack = stack.to_string();
    config.service_account = settings.service_account.clone();
    config.cpu = settings.cpu.clone();
    config.memory = settings.memory.clone();
    config.cpu_limit = settings.cpu_limit.clone();
    config.memory_limit = settings
        .memory_limit
        .clone()
        .or_else(|| settings.memory.clone());
    config.node_selector = settings.node_selector.clone();
    config.tolerations = settings.tolerations.clone();
    config.extra_labels = settings.labels.clone();
    config.annotations = settings.annotations.clone();
    if let Some(dir) = &settings.runner_dir {
        config.runner_dir = dir.clone();
    }
    // Missing names were reported above; their follow-on problems would only repeat them.
    let reported: Vec<String> = problems.iter().map(|p| p.path.clone()).collect();
    for (key, message) in config.problems() {
        let field = match key {
            "" => "provider".to_string(),
            "image" => "image".to_string(),
            "labels" => "provider.labels".to_string(),
            key => format!("provider.{key}"),
        };
        if reported.contains(&at(&field)) {
            continue;
        }
        problems.push(Problem::new(
            at(&field),
            format!("pool {name:?}: {message}"),
        ));
    }
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

/// A pool's Lambda settings: its runners are asynchronous invocations of `function`, whose
/// image holds the runner (see `sam/lambda-runner/`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaSettings {
    /// The function's name or ARN (default: the stack's `<stack>-lambda-runner`, which the
    /// template creates from `LambdaRunnerImageUri`).
    pub function: Option<String>,
    /// The function's timeout in seconds (60 to 900); default: asked of Lambda before the
    /// first launch.
    pub timeout_seconds: Option<u64>,
}

/// The provider settings of Lambda pool `pool` (at `pools[index]`) of `stack`, its JIT
/// configs encrypted with `kms_key` (none: the account's key for SSM), or every problem
/// found, each with its field path.
pub fn lambda_pool_config(
    index: usize,
    pool: &PoolConfig,
    settings: &LambdaSettings,
    stack: &str,
    kms_key: Option<&str>,
) -> Result<LambdaPoolConfig, Vec<Problem>> {
    let at = |field: &str| format!("pools[{index}].{field}");
    let name = &pool.name;
    let mut problems = Vec::new();
    let mut problem = |field: &str, message: String| {
        problems.push(Problem::new(at(field), format!("pool {name:?}: {message}")));
    };
    if let Some(label) = non_linux_label(&pool.labels) {
        problem(
            "labels",
            format!(
                "offers {label:?}, but a Lambda function runs Linux: run {label} runners on \
                 EC2 (provider.kind = \"ec2\")"
            ),
        );
    }
    if pool.image.is_some() {
        problem(
            "image",
            "a Lambda pool runs its function's image: build it from sam/lambda-runner and \
             deploy it with the template's LambdaRunnerImageUri (or name your function in \
             provider.function)"
                .to_string(),
        );
    }
    if !pool.instance_types.is_empty() || !pool.allowed_instance_types.is_empty() {
        let field = if pool.instance_types.is_empty() {
            "allowed_instance_types"
        } else {
            "instance_types"
        };
        problem(
            field,
            "a Lambda pool has no instance types: its function's memory (and so CPU) is set \
             in the template (LambdaRunnerMemory)"
                .to_string(),
        );
    }
    if pool.disk_gib.is_some() || pool.max_disk_gib.is_some() {
        problem(
            if pool.disk_gib.is_some() {
                "disk_gib"
            } else {
                "max_disk_gib"
            },
            "a Lambda function's disk is its /tmp (up to 10 GiB), set with the function"
                .to_string(),
        );
    }
    if !pool.allowed_markets.is_empty() {
        problem(
            "allowed_markets",
            "a Lambda pool takes no market: Lambda has no spot capacity".to_string(),
        );
    }
    let mut config = LambdaPoolConfig::new(stack);
    if let Some(function) = &settings.function {
        config.function = function.clone();
    }
    config.ssm_kms_key_id = kms_key.map(str::to_string);
    config.timeout = settings.timeout_seconds.map(std::time::Duration::from_secs);
    for (key, message) in config.problems() {
        let field = match key {
            "" => "provider".to_string(),
            // The key is the stack's, not the pool's.
            "ssm_kms_key_id" => "provider".to_string(),
            key => format!("provider.{key}"),
        };
        problems.push(Problem::new(
            at(&field),
            format!("pool {name:?}: {message}"),
        ));
    }
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}
