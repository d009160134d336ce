//! Runners on ECS: one task per runner, started with `RunTask`.
//!
//! # Where a task runs
//!
//! A pool names a cluster, a task definition (or runs the stack's default one, see
//! [`register_default_task_definition`]), subnets and security groups (`awsvpc`: every task has
//! its own network interface), and a capacity ([`EcsCapacity`]): Fargate Spot first with
//! Fargate when Spot has no capacity (like EC2's spot fallback), Fargate or Fargate Spot
//! alone, or EC2 capacity (the EC2 launch type, or the pool's Auto Scaling group capacity
//! provider). A Fargate pool needs the `FARGATE` and `FARGATE_SPOT` capacity providers
//! associated with its cluster.
//!
//! Docker in the job: a pool on EC2 capacity may run the runner beside a privileged
//! `docker:dind` sidecar ([`DockerMode::Dind`]); Fargate runs no privileged containers, so a
//! Fargate pool has no Docker daemon and a docker-in-docker request is refused.
//!
//! # How the JIT config reaches the task
//!
//! The JIT config is a credential, so it never goes into `RunTask` overrides (readable by
//! anyone with `ecs:DescribeTasks` for as long as the task is listed), the task definition,
//! logs, or the execution's state. Instead:
//!
//! 1. runway writes it to a new SSM SecureString `<prefix>/ecs/<128-bit random name>` (default
//!    prefix `/runway/<stack>/jit`, see [`ecs_jit_parameter_prefix`]) in the Advanced tier,
//!    with an `Expiration` policy ([`EcsPoolConfig::jit_ttl`], an hour by default) and the
//!    runner's ownership tags; throttled writes are retried with back-off (the writer the EC2
//!    provider uses);
//! 2. `RunTask` overrides the runner container's command with a short start script and its
//!    environment with the parameter's *name* (`RUNWAY_JIT_PARAMETER`) and the region; no
//!    secret;
//! 3. the script signs two SSM calls with the task role's credentials (`curl --aws-sigv4`,
//!    `jq`: both in the official `ghcr.io/actions/actions-runner` image): it reads the
//!    parameter, deletes it, removes the task role's credentials endpoint and the name from
//!    its environment, and runs `./run.sh --jitconfig "$JIT"`. When the ephemeral runner
//!    exits, the runner container (essential) exits and the task stops.
//!
//! Who can read a JIT config, and for how long:
//! - the task role of the pool's task definition, which may read and delete parameters under
//!   `<prefix>/ecs/` only (statement: [`ECS_TASK_ROLE_POLICY_DOC`]). IAM has no per-task
//!   variable like EC2's `ec2:InstanceID`, so the role could read any of its stack's pending
//!   ECS JIT configs *by name*; the names are random and it can list none, so a task knows only
//!   its own. Jobs do not get the task role: the script drops the credentials endpoint from the
//!   runner's environment before the runner starts;
//! - the provisioning function (writes) and the teardown and reaper functions (delete);
//! - principals of the account with `ssm:GetParameter` and `kms:Decrypt` on the key (admins).
//!
//! A parameter lives from just before `RunTask` until the task's start script deletes it,
//! usually seconds after the container starts (an image pull later). A launch that fails
//! deletes it at once; teardown deletes whatever is left; SSM's expiration removes it after
//! [`EcsPoolConfig::jit_ttl`] whatever else happens.
//!
//! # Finding tasks again
//!
//! Every task carries the tags `runway:stack`, `runway:execution`, `runway:pool`,
//! `runway:runner` and `runway:managed=true`, and is started with `startedBy` =
//! [`started_by`]`(stack, execution)`: `runway-` and 28 hex digits of a SHA-256 over the stack
//! and execution names (ECS allows 36 characters, fewer than an execution name has). Teardown
//! and [`Provider::owned_by`] ask `ListTasks` for that `startedBy` and check the tags of what
//! they get; [`Provider::owned`] lists the cluster's running tasks and keeps those tagged with
//! its stack. `terminate` is `StopTask` plus deleting the JIT parameter.
//!
//! A launch is safe to retry: it first looks for a live task of the same stack, execution and
//! runner (which then gets this try's JIT config), and each `RunTask` carries a `clientToken`
//! derived from the stack, execution, runner name (which counts the launch attempt) and the
//! capacity tried.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, Compatibility,
    ContainerCondition, ContainerDefinition, ContainerDependency, ContainerOverride, DesiredStatus,
    EphemeralStorage, HealthCheck, KeyValuePair, LaunchType, LogConfiguration, LogDriver,
    MountPoint, NetworkConfiguration, NetworkMode, Tag, Task, TaskField, TaskOverride, Volume,
};
use aws_smithy_types::error::display::DisplayErrorContext;
use runway_clock::{SharedClock, SystemClock};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::jit::{
    JitParameter, check_jit_prefix, check_kms_key, delete_jit_parameter, put_jit_parameter,
};
use crate::shared::{
    DEFAULT_STACK, TAG_EXECUTION, TAG_MANAGED, TAG_POOL, TAG_RUNNER, TAG_STACK, check_stack_name,
    first_problem, hashed_id, is_plain_path_char, sdk_error, to_chrono,
};
use crate::{
    Capacity, CapacityPreference, LaunchRequest, Launched, OwnedRunner, Provider, ProviderError,
    ProviderKind, Terminated, jit_parameter_prefix,
};

/// The IAM statement the runner task role needs (CloudFormation `!Sub` syntax), for the SAM
/// template to copy.
pub const ECS_TASK_ROLE_POLICY_DOC: &str = include_str!("ecs-task-role-policy.json");

/// The environment variable naming the task's JIT config parameter.
const PARAMETER_ENV: &str = "RUNWAY_JIT_PARAMETER";
/// The environment variable with the region of that parameter.
const REGION_ENV: &str = "RUNWAY_REGION";

/// The docker-in-docker sidecar's container name, and where its daemon listens (the task's
/// loopback: `awsvpc` containers of one task share it, nothing outside the task reaches it).
const DIND_CONTAINER: &str = "dind";
const DIND_HOST: &str = "tcp://127.0.0.1:2375";
/// The volume the runner and the sidecar share for the job's work directory, so that paths
/// the runner bind-mounts into job containers exist for the daemon too.
const WORK_VOLUME: &str = "work";
/// The Docker daemon's own share of a docker-in-docker task's memory (jobs' containers are
/// accounted to the runner's share).
const DIND_MEMORY_MIB: u32 = 512;

/// What to check when ECS refuses a request as misconfigured.
const ECS_FIX: &str = "check the pool's cluster (and its FARGATE and FARGATE_SPOT capacity \
                       providers), task definition, container name, subnets, security groups \
                       and runway's IAM permissions";

/// Where a pool's tasks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EcsCapacity {
    /// Fargate Spot, then Fargate when Spot has no capacity.
    #[default]
    FargateSpotThenFargate,
    /// Fargate only.
    Fargate,
    /// Fargate Spot only: no capacity is an error rather than a Fargate bill.
    FargateSpot,
    /// The cluster's EC2 container instances (the EC2 launch type, or the pool's capacity
    /// provider).
    Ec2,
}

impl EcsCapacity {
    pub fn is_fargate(self) -> bool {
        self != EcsCapacity::Ec2
    }

    fn placements(self, ec2_capacity_provider: Option<&str>) -> Vec<Placement> {
        let provider = |name: &str| Placement::CapacityProvider(name.to_string());
        match self {
            EcsCapacity::FargateSpotThenFargate => {
                vec![provider("FARGATE_SPOT"), provider("FARGATE")]
            }
            EcsCapacity::Fargate => vec![provider("FARGATE")],
            EcsCapacity::FargateSpot => vec![provider("FARGATE_SPOT")],
            EcsCapacity::Ec2 => vec![match ec2_capacity_provider {
                Some(name) => provider(name),
                None => Placement::Ec2LaunchType,
            }],
        }
    }
}

impl std::fmt::Display for EcsCapacity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EcsCapacity::FargateSpotThenFargate => "fargate_spot_then_fargate",
            EcsCapacity::Fargate => "fargate",
            EcsCapacity::FargateSpot => "fargate_spot",
            EcsCapacity::Ec2 => "ec2",
        })
    }
}

/// Whether jobs get a Docker daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DockerMode {
    /// No daemon: jobs run steps, not containers.
    #[default]
    None,
    /// A privileged `docker:dind` sidecar in the task (EC2 capacity only).
    Dind,
}

/// One way to place a task.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Placement {
    CapacityProvider(String),
    Ec2LaunchType,
}

impl Placement {
    fn describe(&self) -> String {
        match self {
            Placement::CapacityProvider(name) => name.clone(),
            Placement::Ec2LaunchType => "the EC2 launch type".to_string(),
        }
    }

    fn capacity(&self) -> Option<Capacity> {
        match self {
            Placement::CapacityProvider(name) if name == "FARGATE_SPOT" => Some(Capacity::Spot),
            Placement::CapacityProvider(name) if name == "FARGATE" => Some(Capacity::OnDemand),
            // An EC2 capacity provider's market is its Auto Scaling group's business.
            _ => None,
        }
    }
}

/// One pool's ECS settings.
#[derive(Debug, Clone)]
pub struct EcsPoolConfig {
    /// The runway stack the runners belong to: tagged on every task, and the scope of every
    /// look-up.
    pub stack: String,
    /// Cluster name or ARN.
    pub cluster: String,
    /// The task definition to run: `family`, `family:revision` or an ARN.
    pub task_definition: String,
    /// The runner's container in the task definition (its command and environment are
    /// overridden at launch).
    pub container_name: String,
    /// The image the task definition runs, when runway knows it: a launch asking for another
    /// image is refused (a task cannot change its image at launch).
    pub image: Option<String>,
    /// Subnets of the task's network interface (`awsvpc`; at least one, at most 16).
    pub subnets: Vec<String>,
    /// At most 5; none: the VPC's default security group.
    pub security_groups: Vec<String>,
    /// A public IP for the task (a public subnet without a NAT gateway needs one to pull the
    /// image and reach GitHub).
    pub assign_public_ip: bool,
    pub capacity: EcsCapacity,
    /// With [`EcsCapacity::Ec2`]: an Auto Scaling group capacity provider of the cluster;
    /// none: the EC2 launch type.
    pub ec2_capacity_provider: Option<String>,
    /// Task CPU units (1024 = 1 vCPU) overriding the task definition's.
    pub cpu: Option<u32>,
    /// Task memory in MiB overriding the task definition's.
    pub memory: Option<u32>,
    /// Fargate ephemeral storage in GiB (21 to 200; default 20).
    pub ephemeral_storage_gib: Option<u32>,
    /// Whether the task definition has a docker-in-docker sidecar (EC2 capacity only).
    pub docker: DockerMode,
    /// Tags added to tasks besides runway's own.
    pub extra_tags: BTreeMap<String, String>,
    /// SSM parameter prefix for JIT configs (ECS ones go under `<prefix>/ecs`); `None`:
    /// [`jit_parameter_prefix`] of the stack.
    pub ssm_prefix: Option<String>,
    /// The KMS key of the JIT config SecureString; `None`: the account's key for SSM.
    pub ssm_kms_key_id: Option<String>,
    /// How long an unread JIT config parameter lives before SSM deletes it.
    pub jit_ttl: Duration,
    /// Where `run.sh` is in the image (`/home/runner` in the official image).
    pub runner_dir: String,
}

impl EcsPoolConfig {
    /// A pool running `task_definition` in `cluster` within `subnets`, with runway's
    /// defaults elsewhere.
    pub fn new(
        cluster: impl Into<String>,
        task_definition: impl Into<String>,
        subnets: Vec<String>,
    ) -> EcsPoolConfig {
        EcsPoolConfig {
            stack: DEFAULT_STACK.to_string(),
            cluster: cluster.into(),
            task_definition: task_definition.into(),
            container_name: "runner".to_string(),
            image: None,
            subnets,
            security_groups: Vec::new(),
            assign_public_ip: false,
            capacity: EcsCapacity::default(),
            ec2_capacity_provider: None,
            cpu: None,
            memory: None,
            ephemeral_storage_gib: None,
            docker: DockerMode::None,
            extra_tags: BTreeMap::new(),
            ssm_prefix: None,
            ssm_kms_key_id: None,
            jit_ttl: Duration::from_secs(3600),
            runner_dir: "/home/runner".to_string(),
        }
    }

    /// Where this pool's JIT config parameters are kept.
    pub fn jit_prefix(&self) -> String {
        ecs_jit_parameter_prefix(
            &self
                .ssm_prefix
                .clone()
                .unwrap_or_else(|| jit_parameter_prefix(&self.stack)),
        )
    }

    /// Checks the settings an [`EcsProvider`] is built from, so a document can be checked
    /// before anything launches: the first of [`EcsPoolConfig::problems`].
    pub fn validate(&self) -> Result<(), ProviderError> {
        first_problem(self.problems())
    }

    /// Every problem with these settings, each with the pools document's key it is about
    /// (`cluster`, `subnets`, `docker`, …; empty: the provider as a whole).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems: Vec<(&'static str, String)> = Vec::new();
        let mut check = |key: &'static str, result: Result<(), ProviderError>| {
            if let Err(error) = result {
                problems.push((key, config_reason(error)));
            }
        };
        check("", check_stack_name(&self.stack));
        let base = self
            .ssm_prefix
            .clone()
            .unwrap_or_else(|| jit_parameter_prefix(&self.stack));
        check("ssm_prefix", check_jit_prefix(&base, &self.stack));
        check("ssm_prefix", plain_path("SSM prefix", &base));
        if let Some(key) = &self.ssm_kms_key_id {
            check("", check_kms_key(key));
        }
        check(
            "runner_dir",
            plain_path("runner directory", &self.runner_dir),
        );
        if !self.runner_dir.starts_with('/') {
            check(
                "runner_dir",
                Err(ProviderError::config(format!(
                    "the runner directory {:?} must be an absolute path (the official image's \
                     is /home/runner)",
                    self.runner_dir
                ))),
            );
        }
        if !is_ecs_name_or_arn(&self.cluster) {
            check(
                "cluster",
                Err(ProviderError::config(format!(
                    "the cluster {:?} must be a cluster name (letters, digits, '-', '_') or ARN",
                    self.cluster
                ))),
            );
        }
        if !is_task_definition_ref(&self.task_definition) {
            check(
                "task_definition",
                Err(ProviderError::config(format!(
                    "the task definition {:?} must be a family, family:revision or ARN",
                    self.task_definition
                ))),
            );
        }
        if !is_ecs_name(&self.container_name) {
            check(
                "container_name",
                Err(ProviderError::config(format!(
                    "the container name {:?} must be 1 to 255 letters, digits, '-' and '_'",
                    self.container_name
                ))),
            );
        }
        if self.subnets.is_empty() || self.subnets.len() > 16 {
            check(
                "subnets",
                Err(ProviderError::config(format!(
                    "an ECS pool needs 1 to 16 subnets (tasks use awsvpc networking), not {}; \
                     list them in the pool's provider settings",
                    self.subnets.len()
                ))),
            );
        }
        if self.security_groups.len() > 5 {
            check(
                "security_groups",
                Err(ProviderError::config(
                    "an ECS task takes at most 5 security groups",
                )),
            );
        }
        for (key, reason) in size_problems(
            self.capacity,
            self.cpu,
            self.memory,
            self.ephemeral_storage_gib,
        ) {
            check(key, Err(ProviderError::Config { reason }));
        }
        check("docker", check_docker(self.capacity, self.docker));
        match (&self.ec2_capacity_provider, self.capacity) {
            (None, _) => {}
            (Some(_), capacity) if capacity.is_fargate() => check(
                "capacity_provider",
                Err(ProviderError::config(
                    "a capacity provider name goes with capacity \"ec2\" only; Fargate pools \
                     use FARGATE and FARGATE_SPOT",
                )),
            ),
            (Some(name), _) if !is_ecs_name(name) || name.starts_with("FARGATE") => check(
                "capacity_provider",
                Err(ProviderError::config(format!(
                    "{name:?} is not an Auto Scaling group capacity provider name"
                ))),
            ),
            _ => {}
        }
        if self.jit_ttl < Duration::from_secs(300) || self.jit_ttl > Duration::from_secs(7 * 86400)
        {
            check(
                "",
                Err(ProviderError::config(
                    "the JIT config's time to live must be between 5 minutes and 7 days",
                )),
            );
        }
        problems
    }
}

fn config_reason(error: ProviderError) -> String {
    match error {
        ProviderError::Config { reason } => reason,
        other => other.to_string(),
    }
}

/// `value` may go into the start script unquoted.
fn plain_path(what: &str, value: &str) -> Result<(), ProviderError> {
    if value.is_empty() || !value.chars().all(is_plain_path_char) {
        return Err(ProviderError::config(format!(
            "the {what} {value:?} may only use letters, digits and '/', '_', '.', '-'"
        )));
    }
    Ok(())
}

/// Where a stack's ECS JIT configs are kept under its JIT `prefix`: `<prefix>/ecs` (the task
/// role reads this path only; EC2 runners read `<prefix>/<their instance id>`).
pub fn ecs_jit_parameter_prefix(prefix: &str) -> String {
    format!("{prefix}/ecs")
}

/// The `startedBy` of every task launched for `execution` by `stack`: `runway-` and 28 hex
/// digits of a SHA-256 over both names (35 characters; ECS takes at most 36), so teardown and
/// the reaper can ask `ListTasks` for one execution's tasks.
pub fn started_by(stack: &str, execution: &str) -> String {
    hashed_id("runway-", &[stack, execution], 14)
}

/// The family of the task definition the stack registers for `pool` when the pool names
/// none: `<stack>-runner-<pool>`, with characters ECS refuses replaced by `-`.
pub fn default_task_definition_family(stack: &str, pool: &str) -> String {
    let family: String = format!("{stack}-runner-{pool}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if family.len() <= 255 {
        family
    } else {
        // Long names keep a readable head and a hash of the whole.
        let hash = hashed_id("", &[stack, pool], 6);
        format!("{}-{hash}", &family[..255 - hash.len() - 1])
    }
}

fn is_ecs_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn is_ecs_name_or_arn(name: &str) -> bool {
    is_ecs_name(name) || (name.starts_with("arn:") && !name.chars().any(char::is_whitespace))
}

fn is_task_definition_ref(reference: &str) -> bool {
    if reference.starts_with("arn:") {
        return !reference.chars().any(char::is_whitespace);
    }
    match reference.split_once(':') {
        None => is_ecs_name(reference),
        Some((family, revision)) => {
            is_ecs_name(family)
                && !revision.is_empty()
                && revision.chars().all(|c| c.is_ascii_digit())
        }
    }
}

/// Task sizes Fargate runs: CPU units and the memory (MiB) each allows.
fn fargate_memory_allowed(cpu: u32, memory: u32) -> bool {
    let range = |low: u32, high: u32, step: u32| {
        memory >= low && memory <= high && (memory - low).is_multiple_of(step)
    };
    match cpu {
        256 => matches!(memory, 512 | 1024 | 2048),
        512 => range(1024, 4096, 1024),
        1024 => range(2048, 8192, 1024),
        2048 => range(4096, 16384, 1024),
        4096 => range(8192, 30720, 1024),
        8192 => range(16384, 61440, 4096),
        16384 => range(32768, 122880, 8192),
        _ => false,
    }
}

const FARGATE_CPUS: [u32; 7] = [256, 512, 1024, 2048, 4096, 8192, 16384];

/// Sizes ECS would refuse, each with its document key (`cpu`, `memory`,
/// `ephemeral_storage_gib`).
fn size_problems(
    capacity: EcsCapacity,
    cpu: Option<u32>,
    memory: Option<u32>,
    ephemeral_storage_gib: Option<u32>,
) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if cpu == Some(0) {
        problems.push(("cpu", "task CPU must be above 0 units".to_string()));
    }
    if memory == Some(0) {
        problems.push(("memory", "task memory must be above 0 MiB".to_string()));
    }
    if capacity.is_fargate() {
        match (cpu, memory) {
            (Some(cpu), _) if !FARGATE_CPUS.contains(&cpu) => problems.push((
                "cpu",
                format!(
                    "Fargate runs tasks of 256, 512, 1024, 2048, 4096, 8192 or 16384 CPU \
                     units, not {cpu}"
                ),
            )),
            (Some(cpu), Some(memory)) if !fargate_memory_allowed(cpu, memory) => problems.push((
                "memory",
                format!(
                    "Fargate has no task of {cpu} CPU units with {memory} MiB of memory; see \
                     the task sizes in the Fargate documentation (e.g. 2048 units: 4096 to \
                     16384 MiB in steps of 1024)"
                ),
            )),
            _ => {}
        }
        if let Some(gib) = ephemeral_storage_gib
            && !(21..=200).contains(&gib)
        {
            problems.push((
                "ephemeral_storage_gib",
                format!(
                    "Fargate ephemeral storage is 21 to 200 GiB (20 without the setting), not \
                     {gib}"
                ),
            ));
        }
    } else if ephemeral_storage_gib.is_some() {
        problems.push((
            "ephemeral_storage_gib",
            "ephemeral storage is a Fargate setting; a task on EC2 capacity uses its container \
             instance's disk"
                .to_string(),
        ));
    }
    problems
}

fn check_sizes(
    capacity: EcsCapacity,
    cpu: Option<u32>,
    memory: Option<u32>,
    ephemeral_storage_gib: Option<u32>,
) -> Result<(), ProviderError> {
    match size_problems(capacity, cpu, memory, ephemeral_storage_gib)
        .into_iter()
        .next()
    {
        None => Ok(()),
        Some((_, reason)) => Err(ProviderError::Config { reason }),
    }
}

fn check_docker(capacity: EcsCapacity, docker: DockerMode) -> Result<(), ProviderError> {
    if docker == DockerMode::Dind && capacity.is_fargate() {
        return Err(ProviderError::config(format!(
            "Docker-in-docker needs a privileged container, which Fargate does not run, so a \
             pool with capacity \"{capacity}\" cannot give its jobs Docker: use capacity \
             \"ec2\" (container instances of the cluster) for docker = \"dind\", or run jobs \
             that need no Docker daemon"
        )));
    }
    Ok(())
}

/// The runner container's start script (no secret in it, see the module docs).
fn start_script(runner_dir: &str) -> String {
    START_SCRIPT.replace("@RUNNER_DIR@", runner_dir)
}

const START_SCRIPT: &str = r#"# runway runner start: read this task's JIT config from SSM (its name is in
# RUNWAY_JIT_PARAMETER; the task role reads it), delete it, run one ephemeral runner.
set -uo pipefail
parameter="${RUNWAY_JIT_PARAMETER:?no JIT config parameter named}"
region="${RUNWAY_REGION:-${AWS_REGION:-}}"
case "$region" in cn-*) domain=amazonaws.com.cn ;; *) domain=amazonaws.com ;; esac
endpoint="${RUNWAY_SSM_ENDPOINT:-https://ssm.$region.$domain}"
credentials="${AWS_CONTAINER_CREDENTIALS_FULL_URI:-http://169.254.170.2${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI:-}}"
auth=()
if [ -n "${AWS_CONTAINER_AUTHORIZATION_TOKEN:-}" ]; then
  auth=(-H "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN")
fi
ssm() {
  local keys
  keys=$(curl -sf --max-time 10 "${auth[@]}" "$credentials") || return 1
  # The keys reach curl on stdin, never on a command line.
  jq -r '"user = \"\(.AccessKeyId):\(.SecretAccessKey)\"",
    (.Token // empty | "header = \"x-amz-security-token: \(.)\"")' <<<"$keys" |
    curl -sf --max-time 20 -K - --aws-sigv4 "aws:amz:$region:ssm" \
      -H 'Content-Type: application/x-amz-json-1.1' -H "X-Amz-Target: AmazonSSM.$1" \
      --data "$(jq -nc --arg name "$parameter" "$2")" "$endpoint/"
}
config=""
for attempt in $(seq 1 30); do
  config=$(ssm GetParameter '{Name: $name, WithDecryption: true}' | jq -er .Parameter.Value) && break
  config=""
  sleep 2
done
if [ -z "$config" ]; then
  echo "runway: could not read the JIT config $parameter; the task stops" >&2
  exit 1
fi
ssm DeleteParameter '{Name: $name}' >/dev/null ||
  echo "runway: could not delete $parameter; teardown will" >&2
# The job gets neither the task role nor the parameter's name.
unset AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_CREDENTIALS_FULL_URI \
  AWS_CONTAINER_AUTHORIZATION_TOKEN RUNWAY_JIT_PARAMETER RUNWAY_SSM_ENDPOINT
cd "@RUNNER_DIR@" || exit 1
if [ -d _work ] && [ ! -w _work ]; then sudo -n chown "$(id -u):$(id -g)" _work || true; fi
exec ./run.sh --jitconfig "$config"
"#;

/// The task definition the stack registers for a pool that names none: the pool's runner
/// image, and on EC2 capacity with [`DockerMode::Dind`] a privileged `docker:dind` sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerTaskDefinition {
    pub stack: String,
    pub pool: String,
    /// See [`default_task_definition_family`].
    pub family: String,
    /// The runner image, e.g. `ghcr.io/actions/actions-runner:latest`.
    pub image: String,
    pub capacity: EcsCapacity,
    pub docker: DockerMode,
    /// Task CPU units and memory (MiB).
    pub cpu: u32,
    pub memory: u32,
    /// Fargate only.
    pub ephemeral_storage_gib: Option<u32>,
    pub container_name: String,
    pub runner_dir: String,
    /// The role the runner's containers run as: it reads the JIT config
    /// ([`ECS_TASK_ROLE_POLICY_DOC`]).
    pub task_role_arn: Option<String>,
    /// The role ECS pulls images and writes logs with.
    pub execution_role_arn: Option<String>,
    /// A CloudWatch Logs group for the containers' output (`awslogs`), with its region.
    pub log_group: Option<(String, String)>,
    /// The sidecar's image (`docker:dind`; `public.ecr.aws/docker/library/docker:dind` avoids
    /// Docker Hub's pull limits).
    pub dind_image: String,
}

impl RunnerTaskDefinition {
    /// The default task definition of `pool` running `image`, sized and placed as the pool's
    /// settings say (2 vCPU and 4 GiB unless they say otherwise).
    pub fn for_pool(config: &EcsPoolConfig, pool: &str, image: &str) -> RunnerTaskDefinition {
        RunnerTaskDefinition {
            stack: config.stack.clone(),
            pool: pool.to_string(),
            family: default_task_definition_family(&config.stack, pool),
            image: image.to_string(),
            capacity: config.capacity,
            docker: config.docker,
            cpu: config.cpu.unwrap_or(2048),
            memory: config.memory.unwrap_or(4096),
            ephemeral_storage_gib: config.ephemeral_storage_gib,
            container_name: config.container_name.clone(),
            runner_dir: config.runner_dir.clone(),
            task_role_arn: None,
            execution_role_arn: None,
            log_group: None,
            dind_image: "docker:dind".to_string(),
        }
    }

    /// Checks what ECS would refuse, and docker-in-docker on Fargate.
    pub fn validate(&self) -> Result<(), ProviderError> {
        if !is_ecs_name(&self.family) {
            return Err(ProviderError::config(format!(
                "the task definition family {:?} must be 1 to 255 letters, digits, '-' and '_'",
                self.family
            )));
        }
        if self.image.trim().is_empty() || self.image.chars().any(char::is_whitespace) {
            return Err(ProviderError::config(format!(
                "the runner image {:?} must be an image reference, e.g. \
                 ghcr.io/actions/actions-runner:latest",
                self.image
            )));
        }
        if !is_ecs_name(&self.container_name) || self.container_name == DIND_CONTAINER {
            return Err(ProviderError::config(format!(
                "the container name {:?} must be 1 to 255 letters, digits, '-' and '_', and \
                 not {DIND_CONTAINER:?}",
                self.container_name
            )));
        }
        if !self.runner_dir.starts_with('/') || !self.runner_dir.chars().all(is_plain_path_char) {
            return Err(ProviderError::config(format!(
                "the runner directory {:?} must be an absolute path of letters, digits and \
                 '/', '_', '.', '-'",
                self.runner_dir
            )));
        }
        check_sizes(
            self.capacity,
            Some(self.cpu),
            Some(self.memory),
            self.ephemeral_storage_gib,
        )?;
        check_docker(self.capacity, self.docker)
    }

    /// Whether `registered` (a revision ECS holds) runs what this definition describes: the
    /// same sizes, roles, containers, images, commands and privileges.
    pub fn is_registered_as(&self, registered: &aws_sdk_ecs::types::TaskDefinition) -> bool {
        let Ok(wanted) = self.container_definitions() else {
            return false;
        };
        let shape = |container: &ContainerDefinition| {
            (
                container.name().map(str::to_string),
                container.image().map(str::to_string),
                container.command().to_vec(),
                container.privileged(),
                container.memory_reservation(),
            )
        };
        let mut have: Vec<_> = registered
            .container_definitions()
            .iter()
            .map(shape)
            .collect();
        let mut want: Vec<_> = wanted.iter().map(shape).collect();
        have.sort();
        want.sort();
        registered.cpu() == Some(self.cpu.to_string().as_str())
            && registered.memory() == Some(self.memory.to_string().as_str())
            && registered.task_role_arn() == self.task_role_arn.as_deref()
            && registered.execution_role_arn() == self.execution_role_arn.as_deref()
            && registered
                .ephemeral_storage()
                .map(|storage| storage.size_in_gib())
                == self
                    .ephemeral_storage_gib
                    .map(|gib| i32::try_from(gib).unwrap_or(i32::MAX))
            && have == want
    }

    /// The containers: the runner, and the docker-in-docker sidecar when asked for.
    pub fn container_definitions(&self) -> Result<Vec<ContainerDefinition>, ProviderError> {
        let dind = self.docker == DockerMode::Dind;
        let log = match &self.log_group {
            None => None,
            Some((group, region)) => Some(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Awslogs)
                    .options("awslogs-group", group)
                    .options("awslogs-region", region)
                    .options("awslogs-stream-prefix", "runway")
                    .build()
                    .map_err(|error| ProviderError::other(error.to_string()))?,
            ),
        };
        let work = MountPoint::builder()
            .source_volume(WORK_VOLUME)
            .container_path(format!("{}/_work", self.runner_dir))
            .build();
        // The task's memory split between its containers as soft reservations: EC2 capacity
        // places a task by them, and the sidecar's share is the daemon's own, not the jobs'.
        let sidecar_memory = if dind {
            DIND_MEMORY_MIB.min(self.memory / 4)
        } else {
            0
        };
        let runner_memory = self.memory - sidecar_memory;
        let mut runner = ContainerDefinition::builder()
            .name(&self.container_name)
            .image(&self.image)
            .essential(true)
            .memory_reservation(i32::try_from(runner_memory).unwrap_or(i32::MAX))
            .set_command(Some(start_command(&self.runner_dir)))
            .set_log_configuration(log.clone());
        if dind {
            runner = runner
                .environment(env("DOCKER_HOST", DIND_HOST))
                .mount_points(work.clone())
                .depends_on(
                    ContainerDependency::builder()
                        .container_name(DIND_CONTAINER)
                        .condition(ContainerCondition::Healthy)
                        .build()
                        .map_err(|error| ProviderError::other(error.to_string()))?,
                );
        }
        let mut containers = vec![runner.build()];
        if dind {
            containers.push(
                ContainerDefinition::builder()
                    .name(DIND_CONTAINER)
                    .image(&self.dind_image)
                    // The runner is the task: when it exits, the task stops, daemon and all.
                    .essential(false)
                    .privileged(true)
                    .memory_reservation(i32::try_from(sidecar_memory).unwrap_or(i32::MAX))
                    // No TLS: the daemon listens on the task's loopback only.
                    .environment(env("DOCKER_TLS_CERTDIR", ""))
                    .set_command(Some(vec![
                        "--host=unix:///var/run/docker.sock".to_string(),
                        format!("--host={DIND_HOST}"),
                        "--tls=false".to_string(),
                    ]))
                    .mount_points(work)
                    .health_check(
                        HealthCheck::builder()
                            .command("CMD")
                            .command("docker")
                            .command("info")
                            .interval(5)
                            .timeout(5)
                            .retries(10)
                            .start_period(10)
                            .build()
                            .map_err(|error| ProviderError::other(error.to_string()))?,
                    )
                    .set_log_configuration(log)
                    .build(),
            );
        }
        Ok(containers)
    }
}

/// Registers `definition` and returns its ARN (`family:revision`). Each call registers a new
/// revision: call it when the pool's image or sizes change, not per launch.
pub async fn register_default_task_definition(
    ecs: &aws_sdk_ecs::Client,
    definition: &RunnerTaskDefinition,
) -> Result<String, ProviderError> {
    definition.validate()?;
    let containers = definition.container_definitions()?;
    let tags = [
        (TAG_STACK, definition.stack.as_str()),
        (TAG_POOL, definition.pool.as_str()),
        (TAG_MANAGED, "true"),
    ]
    .into_iter()
    .map(|(key, value)| Tag::builder().key(key).value(value).build())
    .collect();
    let compatibility = if definition.capacity.is_fargate() {
        Compatibility::Fargate
    } else {
        Compatibility::Ec2
    };
    let output = ecs
        .register_task_definition()
        .family(&definition.family)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(compatibility)
        .cpu(definition.cpu.to_string())
        .memory(definition.memory.to_string())
        .set_ephemeral_storage(definition.ephemeral_storage_gib.map(|gib| {
            EphemeralStorage::builder()
                .size_in_gib(i32::try_from(gib).unwrap_or(i32::MAX))
                .build()
        }))
        .set_task_role_arn(definition.task_role_arn.clone())
        .set_execution_role_arn(definition.execution_role_arn.clone())
        .set_container_definitions(Some(containers))
        .set_volumes(
            (definition.docker == DockerMode::Dind)
                .then(|| vec![Volume::builder().name(WORK_VOLUME).build()]),
        )
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|error| sdk_error("ECS", "RegisterTaskDefinition", error, ECS_FIX))?;
    let arn = output
        .task_definition()
        .and_then(|registered| registered.task_definition_arn())
        .ok_or_else(|| ProviderError::other("RegisterTaskDefinition returned no ARN"))?;
    info!(family = %definition.family, arn, docker = ?definition.docker,
        capacity = %definition.capacity, "registered the runner task definition");
    Ok(arn.to_string())
}

/// The ARN of the latest revision of `definition`'s family when it runs what `definition`
/// describes; otherwise a new revision's, registered now.
pub async fn ensure_task_definition(
    ecs: &aws_sdk_ecs::Client,
    definition: &RunnerTaskDefinition,
) -> Result<String, ProviderError> {
    match ecs
        .describe_task_definition()
        .task_definition(&definition.family)
        .send()
        .await
    {
        Ok(found) => {
            if let Some(latest) = found.task_definition()
                && latest.status() == Some(&aws_sdk_ecs::types::TaskDefinitionStatus::Active)
                && definition.is_registered_as(latest)
                && let Some(arn) = latest.task_definition_arn()
            {
                info!(family = %definition.family, arn, "the runner task definition is current");
                return Ok(arn.to_string());
            }
        }
        // ECS answers a family it has never seen with a ClientException.
        Err(error) if error.code() == Some("ClientException") => {}
        Err(error) => {
            return Err(sdk_error("ECS", "DescribeTaskDefinition", error, ECS_FIX));
        }
    }
    register_default_task_definition(ecs, definition).await
}

/// The runner container's command: the start script under bash.
fn start_command(runner_dir: &str) -> Vec<String> {
    vec![
        "/bin/bash".to_string(),
        "-c".to_string(),
        start_script(runner_dir),
    ]
}

fn env(name: &str, value: &str) -> KeyValuePair {
    KeyValuePair::builder().name(name).value(value).build()
}

/// Runners as ECS tasks.
#[derive(Debug, Clone)]
pub struct EcsProvider {
    ecs: aws_sdk_ecs::Client,
    ssm: aws_sdk_ssm::Client,
    config: EcsPoolConfig,
    region: String,
    clock: SharedClock,
    /// The task definition runway registers for the pool, when the pool names none.
    default_definition: Option<Arc<RunnerTaskDefinition>>,
    /// What launches run: the pool's task definition, or the registered default's ARN once
    /// found or registered (shared by clones: one look-up per process).
    resolved_definition: Arc<tokio::sync::OnceCell<String>>,
}

impl EcsProvider {
    /// Checks the pool configuration; an unusable one is [`ProviderError::Config`].
    pub fn new(
        ecs: aws_sdk_ecs::Client,
        ssm: aws_sdk_ssm::Client,
        config: EcsPoolConfig,
    ) -> Result<EcsProvider, ProviderError> {
        config.validate()?;
        let region = ssm
            .config()
            .region()
            .map(|region| region.as_ref().to_string())
            .ok_or_else(|| {
                ProviderError::config(
                    "no AWS region is configured: the task must know where its JIT config is",
                )
            })?;
        Ok(EcsProvider {
            ecs,
            ssm,
            config,
            region,
            clock: SystemClock::shared(),
            default_definition: None,
            resolved_definition: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    /// Runs `definition` (registered by runway, see [`RunnerTaskDefinition`]) instead of a
    /// task definition the pool names: before the first launch, the family's latest revision
    /// is used when it is what `definition` describes, and a new revision is registered when
    /// it is not (the pool's image or size changed) or when there is none.
    pub fn with_default_task_definition(
        mut self,
        definition: RunnerTaskDefinition,
    ) -> Result<EcsProvider, ProviderError> {
        definition.validate()?;
        if definition.family != self.config.task_definition {
            return Err(ProviderError::config(format!(
                "the pool runs task definition {:?}, not the default family {:?}",
                self.config.task_definition, definition.family
            )));
        }
        self.default_definition = Some(Arc::new(definition));
        self.resolved_definition = Arc::new(tokio::sync::OnceCell::new());
        Ok(self)
    }

    /// The task definition launches run (see [`EcsProvider::with_default_task_definition`]).
    pub async fn task_definition(&self) -> Result<String, ProviderError> {
        let Some(definition) = &self.default_definition else {
            return Ok(self.config.task_definition.clone());
        };
        self.resolved_definition
            .get_or_try_init(|| ensure_task_definition(&self.ecs, definition))
            .await
            .cloned()
    }

    /// The provider of one pool of a pools document: its settings on `clock`, running
    /// `definition` (see [`EcsProvider::with_default_task_definition`]) when the pool names
    /// no task definition of its own.
    pub fn for_pool(
        ecs: aws_sdk_ecs::Client,
        ssm: aws_sdk_ssm::Client,
        config: EcsPoolConfig,
        definition: Option<RunnerTaskDefinition>,
        clock: SharedClock,
    ) -> Result<EcsProvider, ProviderError> {
        let provider = EcsProvider::new(ecs, ssm, config)?.with_clock(clock);
        match definition {
            Some(definition) => provider.with_default_task_definition(definition),
            None => Ok(provider),
        }
    }

    /// Uses `clock` for launch times, back-off and parameter expiry instead of the system clock.
    pub fn with_clock(mut self, clock: SharedClock) -> EcsProvider {
        self.clock = clock;
        self
    }

    pub fn config(&self) -> &EcsPoolConfig {
        &self.config
    }

    /// The runner container's command (the start script; no secret in it).
    pub fn start_command(&self) -> Vec<String> {
        start_command(&self.config.runner_dir)
    }

    /// A new, unguessable name for one launch's JIT config parameter.
    fn new_parameter_name(&self) -> String {
        format!(
            "{}/{:032x}",
            self.config.jit_prefix(),
            rand::random::<u128>()
        )
    }

    fn tags(&self, request: &LaunchRequest) -> Vec<Tag> {
        let mut tags: Vec<(String, String)> = self
            .config
            .extra_tags
            .iter()
            .filter(|(key, _)| !key.starts_with("runway:"))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        tags.extend([
            (TAG_STACK.to_string(), self.config.stack.clone()),
            (TAG_EXECUTION.to_string(), request.execution.clone()),
            (TAG_POOL.to_string(), request.pool.clone()),
            (TAG_RUNNER.to_string(), request.runner_name.clone()),
            (TAG_MANAGED.to_string(), "true".to_string()),
        ]);
        tags.into_iter()
            .map(|(key, value)| Tag::builder().key(key).value(value).build())
            .collect()
    }

    async fn write_parameter(
        &self,
        request: &LaunchRequest,
        name: &str,
    ) -> Result<(), ProviderError> {
        let parameter = JitParameter {
            name,
            runner_name: &request.runner_name,
            tags: vec![
                (TAG_STACK, &self.config.stack),
                (TAG_EXECUTION, &request.execution),
                (TAG_POOL, &request.pool),
                (TAG_RUNNER, &request.runner_name),
                (TAG_MANAGED, "true"),
            ],
            kms_key_id: self.config.ssm_kms_key_id.as_deref(),
            expires_at: Some(
                self.clock.now()
                    + chrono::Duration::from_std(self.config.jit_ttl)
                        .unwrap_or(chrono::Duration::hours(1)),
            ),
        };
        put_jit_parameter(&self.ssm, &self.clock, &parameter, &request.jit_config).await
    }

    /// Deletes a launch's parameter after the launch failed; a failure to is only logged (the
    /// parameter expires, and teardown looks for it by its tags).
    async fn discard_parameter(&self, name: &str) {
        if let Err(error) = delete_jit_parameter(&self.ssm, name).await {
            warn!(parameter = name, %error, "could not delete the JIT config of a failed launch");
        }
    }

    /// The pool's settings with the request's overrides, or why they cannot be honoured.
    fn placements_for(&self, request: &LaunchRequest) -> Result<Vec<Placement>, ProviderError> {
        let overrides = &request.overrides;
        if overrides
            .instance_types
            .as_ref()
            .is_some_and(|types| !types.is_empty())
        {
            return Err(ProviderError::config(
                "an ECS pool has no instance types: size its tasks with the provider's cpu and \
                 memory",
            ));
        }
        if let Some(image) = &overrides.image
            && self.config.image.as_ref() != Some(image)
        {
            return Err(ProviderError::config(format!(
                "an ECS task runs its task definition's image and cannot switch to {image:?} at \
                 launch: make a pool (or task definition) for that image"
            )));
        }
        let capacity = match (overrides.capacity, self.config.capacity) {
            (None, capacity) => capacity,
            (Some(_), EcsCapacity::Ec2) => {
                return Err(ProviderError::config(
                    "a pool on EC2 capacity takes no market override: its capacity provider \
                     decides",
                ));
            }
            (Some(CapacityPreference::SpotThenOnDemand), _) => EcsCapacity::FargateSpotThenFargate,
            (Some(CapacityPreference::SpotOnly), _) => EcsCapacity::FargateSpot,
            (Some(CapacityPreference::OnDemand), _) => EcsCapacity::Fargate,
        };
        Ok(capacity.placements(self.config.ec2_capacity_provider.as_deref()))
    }

    fn task_override(
        &self,
        request: &LaunchRequest,
        parameter: &str,
    ) -> Result<TaskOverride, ProviderError> {
        let storage = request
            .overrides
            .disk_gib
            .or(self.config.ephemeral_storage_gib);
        check_sizes(
            self.config.capacity,
            self.config.cpu,
            self.config.memory,
            storage,
        )?;
        let container = ContainerOverride::builder()
            .name(&self.config.container_name)
            .set_command(Some(self.start_command()))
            .environment(env(PARAMETER_ENV, parameter))
            .environment(env(REGION_ENV, &self.region))
            .build();
        Ok(TaskOverride::builder()
            .container_overrides(container)
            .set_cpu(self.config.cpu.map(|cpu| cpu.to_string()))
            .set_memory(self.config.memory.map(|memory| memory.to_string()))
            .set_ephemeral_storage(storage.map(|gib| {
                EphemeralStorage::builder()
                    .size_in_gib(i32::try_from(gib).unwrap_or(i32::MAX))
                    .build()
            }))
            .build())
    }

    fn network(&self) -> Result<NetworkConfiguration, ProviderError> {
        let awsvpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(self.config.subnets.clone()))
            .set_security_groups(
                (!self.config.security_groups.is_empty())
                    .then(|| self.config.security_groups.clone()),
            )
            .assign_public_ip(if self.config.assign_public_ip {
                AssignPublicIp::Enabled
            } else {
                AssignPublicIp::Disabled
            })
            .build()
            .map_err(|error| ProviderError::config(error.to_string()))?;
        Ok(NetworkConfiguration::builder()
            .awsvpc_configuration(awsvpc)
            .build())
    }

    /// One `RunTask` for one placement.
    async fn run_task(
        &self,
        task_definition: &str,
        request: &LaunchRequest,
        placement: &Placement,
        overrides: &TaskOverride,
        network: &NetworkConfiguration,
    ) -> RunOutcome {
        let mut call = self
            .ecs
            .run_task()
            .cluster(&self.config.cluster)
            .task_definition(task_definition)
            .count(1)
            .started_by(started_by(&self.config.stack, &request.execution))
            .set_tags(Some(self.tags(request)))
            .enable_ecs_managed_tags(true)
            .network_configuration(network.clone())
            .overrides(overrides.clone())
            .client_token(client_token(
                &self.config.stack,
                &request.execution,
                &request.runner_name,
                placement,
            ));
        call = match placement {
            Placement::CapacityProvider(name) => {
                match CapacityProviderStrategyItem::builder()
                    .capacity_provider(name)
                    .weight(1)
                    .build()
                {
                    Ok(item) => call.capacity_provider_strategy(item),
                    Err(error) => {
                        return RunOutcome::Failed(ProviderError::other(error.to_string()));
                    }
                }
            }
            Placement::Ec2LaunchType => call.launch_type(LaunchType::Ec2),
        };
        let action = format!("RunTask ({})", placement.describe());
        let output = match call.send().await {
            Ok(output) => output,
            Err(error) => {
                let message = DisplayErrorContext(&error).to_string();
                if matches!(error, SdkError::ServiceError(_)) && is_capacity_reason(&message) {
                    return RunOutcome::NoCapacity(error.code().unwrap_or("capacity").to_string());
                }
                return RunOutcome::Failed(sdk_error("ECS", &action, error, ECS_FIX));
            }
        };
        if let Some(task) = output.tasks().first() {
            return RunOutcome::Started(Box::new(task.clone()));
        }
        let reasons: Vec<String> = output
            .failures()
            .iter()
            .map(|failure| {
                let reason = failure.reason().unwrap_or("no reason given");
                match failure.detail() {
                    Some(detail) => format!("{reason} ({detail})"),
                    None => reason.to_string(),
                }
            })
            .collect();
        if !reasons.is_empty() && reasons.iter().all(|reason| is_capacity_reason(reason)) {
            return RunOutcome::NoCapacity(reasons.join("; "));
        }
        let reason = if reasons.is_empty() {
            "ECS started no task and gave no reason".to_string()
        } else {
            reasons.join("; ")
        };
        RunOutcome::Failed(ProviderError::Config {
            reason: format!("{action} failed: {reason}; {ECS_FIX}"),
        })
    }

    /// The tasks of this stack started for `execution` with the given desired status.
    async fn tasks_of(
        &self,
        execution: &str,
        status: DesiredStatus,
    ) -> Result<Vec<Task>, ProviderError> {
        let arns = self
            .list_tasks(Some(started_by(&self.config.stack, execution)), status)
            .await?;
        let tasks = self.describe(arns).await?;
        Ok(tasks
            .into_iter()
            // The tags are the proof: a `startedBy` is only a hash.
            .filter(|task| {
                tag(task, TAG_STACK).as_deref() == Some(self.config.stack.as_str())
                    && tag(task, TAG_EXECUTION).as_deref() == Some(execution)
            })
            .collect())
    }

    /// Task ARNs of the cluster, across pages.
    async fn list_tasks(
        &self,
        started_by: Option<String>,
        status: DesiredStatus,
    ) -> Result<Vec<String>, ProviderError> {
        let mut arns = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .ecs
                .list_tasks()
                .cluster(&self.config.cluster)
                .set_started_by(started_by.clone())
                // ECS lists RUNNING tasks unless told otherwise; say it either way.
                .desired_status(status.clone())
                .max_results(100)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|error| sdk_error("ECS", "ListTasks", error, ECS_FIX))?;
            arns.extend(page.task_arns().iter().cloned());
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => return Ok(arns),
            }
        }
    }

    /// The tasks behind `arns`, with their tags, 100 at a time (DescribeTasks' limit).
    async fn describe(&self, arns: Vec<String>) -> Result<Vec<Task>, ProviderError> {
        let mut tasks = Vec::with_capacity(arns.len());
        for chunk in arns.chunks(100) {
            let page = self
                .ecs
                .describe_tasks()
                .cluster(&self.config.cluster)
                .set_tasks(Some(chunk.to_vec()))
                .include(TaskField::Tags)
                .send()
                .await
                .map_err(|error| sdk_error("ECS", "DescribeTasks", error, ECS_FIX))?;
            tasks.extend(page.tasks().iter().cloned());
        }
        Ok(tasks)
    }

    async fn stop_task(
        &self,
        arn: &str,
        execution: &str,
        runner: &str,
    ) -> Result<(), ProviderError> {
        match self
            .ecs
            .stop_task()
            .cluster(&self.config.cluster)
            .task(arn)
            .reason(format!(
                "runway teardown of runner {runner} (execution {execution})"
            ))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Gone between the look-up and the stop.
            Err(error)
                if error.code() == Some("InvalidParameterException")
                    && error
                        .message()
                        .is_some_and(|message| message.contains("not found")) =>
            {
                Ok(())
            }
            Err(error) => Err(sdk_error("ECS", "StopTask", error, ECS_FIX)),
        }
    }

    /// JIT config parameters of this stack's `execution` and `runner` found by their tags
    /// (what a launch that died between the write and `RunTask` leaves).
    async fn tagged_parameters(
        &self,
        execution: &str,
        runner: &str,
    ) -> Result<Vec<String>, ProviderError> {
        use aws_sdk_ssm::types::ParameterStringFilter;
        let filter = |key: &str, option: Option<&str>, value: &str| {
            ParameterStringFilter::builder()
                .key(key)
                .set_option(option.map(str::to_string))
                .values(value)
                .build()
                .map_err(|error| ProviderError::other(error.to_string()))
        };
        let filters = vec![
            filter("Path", Some("Recursive"), &self.config.jit_prefix())?,
            filter(&format!("tag:{TAG_STACK}"), None, &self.config.stack)?,
            filter(&format!("tag:{TAG_EXECUTION}"), None, execution)?,
            filter(&format!("tag:{TAG_RUNNER}"), None, runner)?,
        ];
        let mut names = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .ssm
                .describe_parameters()
                .set_parameter_filters(Some(filters.clone()))
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|error| {
                    sdk_error(
                        "SSM",
                        "DescribeParameters",
                        error,
                        "check runway's IAM permissions (ssm:DescribeParameters)",
                    )
                })?;
            names.extend(
                page.parameters()
                    .iter()
                    .filter_map(|parameter| parameter.name().map(str::to_string)),
            );
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => return Ok(names),
            }
        }
    }

    fn launched(
        &self,
        request: LaunchRequest,
        task: &Task,
        capacity: Option<Capacity>,
    ) -> Launched {
        Launched {
            runner_name: request.runner_name,
            provider: ProviderKind::Ecs,
            instance_id: task.task_arn().unwrap_or_default().to_string(),
            instance_type: None,
            subnet_id: subnet_of(task),
            capacity,
            launched_at: task
                .created_at()
                .and_then(to_chrono)
                .unwrap_or_else(|| self.clock.now()),
        }
    }

    /// This stack's running tasks, only those of `execution` when given.
    async fn owned_where(
        &self,
        execution: Option<&str>,
    ) -> Result<Vec<OwnedRunner>, ProviderError> {
        let tasks = match execution {
            Some(execution) => self.tasks_of(execution, DesiredStatus::Running).await?,
            None => {
                let arns = self.list_tasks(None, DesiredStatus::Running).await?;
                self.describe(arns).await?
            }
        };
        let mut owned = Vec::with_capacity(tasks.len());
        for task in &tasks {
            if tag(task, TAG_STACK).as_deref() != Some(self.config.stack.as_str())
                || tag(task, TAG_MANAGED).as_deref() != Some("true")
                || task.desired_status() != Some("RUNNING")
            {
                continue;
            }
            let Some(arn) = task.task_arn() else { continue };
            let (Some(execution), Some(runner_name)) =
                (tag(task, TAG_EXECUTION), tag(task, TAG_RUNNER))
            else {
                warn!(
                    task = arn,
                    "a task tagged {TAG_MANAGED}=true lacks {TAG_EXECUTION} or {TAG_RUNNER}; it \
                     was not launched by runway as is, so it is left alone"
                );
                continue;
            };
            owned.push(OwnedRunner {
                provider: ProviderKind::Ecs,
                execution,
                runner_name,
                pool: tag(task, TAG_POOL),
                instance_id: arn.to_string(),
                launched_at: task.created_at().and_then(to_chrono),
            });
        }
        Ok(owned)
    }
}

/// What one `RunTask` came to.
enum RunOutcome {
    Started(Box<Task>),
    /// No capacity for this placement (the reason ECS gave): try the next.
    NoCapacity(String),
    Failed(ProviderError),
}

/// Reasons ECS gives when it has nowhere to put a task right now: Fargate (Spot) capacity, or
/// no container instance with room (`RESOURCE:CPU`, `RESOURCE:MEMORY`, ...).
fn is_capacity_reason(reason: &str) -> bool {
    reason.starts_with("RESOURCE:")
        || reason
            .to_ascii_lowercase()
            .contains("capacity is unavailable")
}

/// The `RunTask` idempotency token of one launch request: the same stack, execution, runner
/// name (which counts the launch attempt) and placement give the same token (ECS takes up to
/// 64 characters).
fn client_token(stack: &str, execution: &str, runner: &str, placement: &Placement) -> String {
    hashed_id(
        "runway-",
        &[stack, execution, runner, &placement.describe()],
        24,
    )
}

fn tag(task: &Task, key: &str) -> Option<String> {
    task.tags()
        .iter()
        .find(|tag| tag.key() == Some(key))
        .and_then(|tag| tag.value())
        .map(str::to_string)
}

/// The JIT config parameter a task was started with (its override's environment).
fn parameter_of(task: &Task) -> Option<String> {
    task.overrides()?
        .container_overrides()
        .iter()
        .flat_map(|container| container.environment())
        .find(|variable| variable.name() == Some(PARAMETER_ENV))
        .and_then(|variable| variable.value())
        .map(str::to_string)
}

fn subnet_of(task: &Task) -> Option<String> {
    task.attachments()
        .iter()
        .flat_map(|attachment| attachment.details())
        .find(|detail| detail.name() == Some("subnetId"))
        .and_then(|detail| detail.value())
        .map(str::to_string)
}

fn capacity_of(task: &Task) -> Option<Capacity> {
    match task.capacity_provider_name() {
        Some("FARGATE_SPOT") => Some(Capacity::Spot),
        Some("FARGATE") => Some(Capacity::OnDemand),
        _ => None,
    }
}

#[async_trait]
impl Provider for EcsProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Ecs
    }

    async fn launch(&self, request: LaunchRequest) -> Result<Launched, ProviderError> {
        let placements = self.placements_for(&request)?;
        // A retried launch whose first try went through finds that task instead of starting a
        // second one, and hands it this try's JIT config.
        let earlier = self
            .tasks_of(&request.execution, DesiredStatus::Running)
            .await?
            .into_iter()
            .find(|task| tag(task, TAG_RUNNER).as_deref() == Some(request.runner_name.as_str()));
        if let Some(task) = earlier {
            let arn = task.task_arn().unwrap_or_default();
            info!(task = arn, runner = %request.runner_name, execution = %request.execution,
                "the runner was launched by an earlier try; handing it this try's JIT config");
            if let Some(name) = parameter_of(&task) {
                self.write_parameter(&request, &name).await?;
            }
            let capacity = capacity_of(&task);
            return Ok(self.launched(request, &task, capacity));
        }

        let parameter = self.new_parameter_name();
        let overrides = self.task_override(&request, &parameter)?;
        let network = self.network()?;
        let task_definition = self.task_definition().await?;
        self.write_parameter(&request, &parameter).await?;
        let mut tried = Vec::new();
        for placement in &placements {
            match self
                .run_task(&task_definition, &request, placement, &overrides, &network)
                .await
            {
                RunOutcome::Started(task) => {
                    // A token ECS had seen answers with the first call's task and parameter.
                    if let Some(theirs) = parameter_of(&task)
                        && theirs != parameter
                    {
                        self.write_parameter(&request, &theirs).await?;
                        self.discard_parameter(&parameter).await;
                    }
                    info!(task = task.task_arn().unwrap_or_default(),
                        runner = %request.runner_name, execution = %request.execution,
                        placement = %placement.describe(), "launched runner on ECS");
                    return Ok(self.launched(request, &task, placement.capacity()));
                }
                RunOutcome::NoCapacity(reason) => {
                    info!(placement = %placement.describe(), %reason,
                        "no capacity; trying the next");
                    tried.push(format!("{}: {reason}", placement.describe()));
                }
                RunOutcome::Failed(error) => {
                    self.discard_parameter(&parameter).await;
                    return Err(error);
                }
            }
        }
        self.discard_parameter(&parameter).await;
        Err(ProviderError::Capacity { tried })
    }

    async fn terminate(
        &self,
        execution: &str,
        runner_name: &str,
    ) -> Result<Terminated, ProviderError> {
        let of_runner = |tasks: Vec<Task>| -> Vec<Task> {
            tasks
                .into_iter()
                .filter(|task| tag(task, TAG_RUNNER).as_deref() == Some(runner_name))
                .collect()
        };
        let running = of_runner(self.tasks_of(execution, DesiredStatus::Running).await?);
        // A runner that ended by itself may still have a parameter to remove.
        let stopped = of_runner(self.tasks_of(execution, DesiredStatus::Stopped).await?);
        let mut stopping = Vec::new();
        for task in &running {
            let Some(arn) = task.task_arn() else { continue };
            self.stop_task(arn, execution, runner_name).await?;
            stopping.push(arn.to_string());
        }
        let mut parameters: Vec<String> = running
            .iter()
            .chain(&stopped)
            .filter_map(parameter_of)
            .collect();
        if running.is_empty() && stopped.is_empty() {
            // Nothing ECS still lists: a launch may have died before its RunTask.
            parameters = self.tagged_parameters(execution, runner_name).await?;
        }
        parameters.sort();
        parameters.dedup();
        for name in &parameters {
            delete_jit_parameter(&self.ssm, name).await?;
        }
        if stopping.is_empty() {
            Ok(Terminated::AlreadyGone)
        } else {
            info!(execution, runner = runner_name, tasks = ?stopping, "stopped runner task");
            Ok(Terminated::Stopped {
                instance_ids: stopping,
            })
        }
    }

    async fn owned(&self) -> Result<Vec<OwnedRunner>, ProviderError> {
        self.owned_where(None).await
    }

    async fn owned_by(&self, execution: &str) -> Result<Vec<OwnedRunner>, ProviderError> {
        self.owned_where(Some(execution)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    fn pool() -> EcsPoolConfig {
        EcsPoolConfig::new("runners", "runway-runner", strings(&["subnet-a"]))
    }

    #[test]
    fn started_by_fits_ecs_and_names_the_stack_and_execution() {
        let id = started_by("ci-prod", "123-456-1-a1");
        assert!(id.len() <= 36, "{id}");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/')),
            "{id}"
        );
        assert_eq!(id, started_by("ci-prod", "123-456-1-a1"));
        assert_ne!(id, started_by("ci-test", "123-456-1-a1"));
        assert_ne!(id, started_by("ci-prod", "123-456-1-a2"));
        // A long execution name still fits.
        assert_eq!(started_by("s", &"x".repeat(80)).len(), id.len());
    }

    #[test]
    fn capacity_is_tried_spot_first() {
        assert_eq!(
            EcsCapacity::FargateSpotThenFargate.placements(None),
            vec![
                Placement::CapacityProvider("FARGATE_SPOT".into()),
                Placement::CapacityProvider("FARGATE".into())
            ]
        );
        assert_eq!(
            EcsCapacity::Ec2.placements(None),
            vec![Placement::Ec2LaunchType]
        );
        assert_eq!(
            EcsCapacity::Ec2.placements(Some("asg")),
            vec![Placement::CapacityProvider("asg".into())]
        );
        assert_eq!(
            Placement::CapacityProvider("FARGATE_SPOT".into()).capacity(),
            Some(Capacity::Spot)
        );
    }

    #[test]
    fn capacity_reasons_are_recognised() {
        assert!(is_capacity_reason(
            "Capacity is unavailable at this time. Please try again later or in a different \
             availability zone"
        ));
        assert!(is_capacity_reason("RESOURCE:MEMORY"));
        assert!(!is_capacity_reason("MISSING"));
        assert!(!is_capacity_reason("ATTRIBUTE"));
    }

    #[test]
    fn client_tokens_name_one_request_and_fit_ecs() {
        let spot = Placement::CapacityProvider("FARGATE_SPOT".into());
        let token = client_token("s", "e", "r", &spot);
        assert!(token.len() <= 64 && token.chars().all(|c| (33..=126).contains(&(c as u32))));
        assert_eq!(token, client_token("s", "e", "r", &spot));
        for other in [
            client_token("s2", "e", "r", &spot),
            client_token("s", "e2", "r", &spot),
            client_token("s", "e", "r2", &spot),
            client_token(
                "s",
                "e",
                "r",
                &Placement::CapacityProvider("FARGATE".into()),
            ),
        ] {
            assert_ne!(token, other);
        }
    }

    #[test]
    fn the_start_script_holds_no_secret_and_reads_then_deletes_its_parameter() {
        let script = start_script("/home/runner");
        assert!(script.contains("AmazonSSM.$1"));
        assert!(script.contains("ssm GetParameter '{Name: $name, WithDecryption: true}'"));
        assert!(script.contains("ssm DeleteParameter '{Name: $name}'"));
        assert!(script.contains("cd \"/home/runner\""));
        assert!(script.contains("exec ./run.sh --jitconfig \"$config\""));
        let get = script.find("ssm GetParameter").unwrap();
        let delete = script.find("ssm DeleteParameter").unwrap();
        let run = script.find("./run.sh").unwrap();
        assert!(get < delete && delete < run, "read, delete, then run");
        // RunTask overrides are at most 8 KiB in all.
        assert!(script.len() < 4096, "{}", script.len());
    }

    #[test]
    fn fargate_sizes_follow_the_fargate_table() {
        assert!(fargate_memory_allowed(256, 512));
        assert!(!fargate_memory_allowed(256, 4096));
        assert!(fargate_memory_allowed(2048, 4096));
        assert!(fargate_memory_allowed(2048, 16384));
        assert!(!fargate_memory_allowed(2048, 16385));
        assert!(fargate_memory_allowed(8192, 20480));
        assert!(!fargate_memory_allowed(8192, 18432));
        assert!(!fargate_memory_allowed(3000, 8192));
    }

    #[test]
    fn docker_in_docker_on_fargate_is_refused_with_a_way_out() {
        for capacity in [
            EcsCapacity::FargateSpotThenFargate,
            EcsCapacity::Fargate,
            EcsCapacity::FargateSpot,
        ] {
            let mut config = pool();
            config.capacity = capacity;
            config.docker = DockerMode::Dind;
            let error = config.validate().expect_err("dind on Fargate");
            let message = error.to_string();
            assert!(message.contains("Fargate"), "{message}");
            assert!(message.contains("capacity \"ec2\""), "{message}");
            let mut definition = RunnerTaskDefinition::for_pool(&pool(), "p", "img");
            definition.capacity = capacity;
            definition.docker = DockerMode::Dind;
            assert!(definition.validate().is_err());
        }
        let mut config = pool();
        config.capacity = EcsCapacity::Ec2;
        config.docker = DockerMode::Dind;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn the_dind_sidecar_is_there_only_when_asked_for() {
        let mut config = pool();
        config.capacity = EcsCapacity::Ec2;
        let plain = RunnerTaskDefinition::for_pool(&config, "p", "ghcr.io/actions/actions-runner");
        let containers = plain.container_definitions().unwrap();
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0].privileged(), None);

        config.docker = DockerMode::Dind;
        let dind = RunnerTaskDefinition::for_pool(&config, "p", "ghcr.io/actions/actions-runner");
        let containers = dind.container_definitions().unwrap();
        assert_eq!(containers.len(), 2);
        let runner = &containers[0];
        let sidecar = &containers[1];
        assert_eq!(runner.name(), Some("runner"));
        assert_eq!(runner.essential(), Some(true));
        assert!(
            runner
                .environment()
                .iter()
                .any(|pair| pair.name() == Some("DOCKER_HOST") && pair.value() == Some(DIND_HOST))
        );
        assert_eq!(runner.depends_on()[0].container_name(), DIND_CONTAINER);
        assert_eq!(sidecar.name(), Some(DIND_CONTAINER));
        assert_eq!(sidecar.image(), Some("docker:dind"));
        assert_eq!(sidecar.privileged(), Some(true));
        assert_eq!(sidecar.essential(), Some(false));
    }

    #[test]
    fn unusable_settings_are_refused() {
        assert!(pool().validate().is_ok());
        type Change = Box<dyn Fn(&mut EcsPoolConfig)>;
        let cases: Vec<(&str, Change)> = vec![
            ("no subnets", Box::new(|c| c.subnets.clear())),
            ("17 subnets", Box::new(|c| c.subnets = vec!["s".into(); 17])),
            (
                "6 security groups",
                Box::new(|c| c.security_groups = vec!["sg".into(); 6]),
            ),
            ("empty cluster", Box::new(|c| c.cluster = String::new())),
            (
                "cluster with a space",
                Box::new(|c| c.cluster = "a b".into()),
            ),
            (
                "bad revision",
                Box::new(|c| c.task_definition = "family:latest".into()),
            ),
            (
                "empty container",
                Box::new(|c| c.container_name = String::new()),
            ),
            ("fargate cpu", Box::new(|c| c.cpu = Some(3000))),
            (
                "fargate memory",
                Box::new(|c| {
                    c.cpu = Some(256);
                    c.memory = Some(8192)
                }),
            ),
            (
                "fargate storage",
                Box::new(|c| c.ephemeral_storage_gib = Some(500)),
            ),
            (
                "storage on ec2",
                Box::new(|c| {
                    c.capacity = EcsCapacity::Ec2;
                    c.ephemeral_storage_gib = Some(30)
                }),
            ),
            (
                "capacity provider on fargate",
                Box::new(|c| c.ec2_capacity_provider = Some("asg".into())),
            ),
            (
                "fargate as the ec2 capacity provider",
                Box::new(|c| {
                    c.capacity = EcsCapacity::Ec2;
                    c.ec2_capacity_provider = Some("FARGATE".into())
                }),
            ),
            (
                "shell in the runner dir",
                Box::new(|c| c.runner_dir = "/home/r; reboot".into()),
            ),
            (
                "relative runner dir",
                Box::new(|c| c.runner_dir = "home".into()),
            ),
            ("prefix", Box::new(|c| c.ssm_prefix = Some("jit".into()))),
            ("stack", Box::new(|c| c.stack = "a/b".into())),
            (
                "short ttl",
                Box::new(|c| c.jit_ttl = Duration::from_secs(10)),
            ),
        ];
        for (name, change) in cases {
            let mut config = pool();
            change(&mut config);
            let error = config.validate().expect_err(name);
            assert!(matches!(error, ProviderError::Config { .. }), "{name}");
        }
    }

    #[test]
    fn the_default_family_is_a_valid_ecs_name() {
        assert_eq!(
            default_task_definition_family("ci", "linux.x64"),
            "ci-runner-linux-x64"
        );
        let long = default_task_definition_family(&"s".repeat(128), &"p".repeat(300));
        assert!(is_ecs_name(&long), "{long}");
        assert_ne!(
            long,
            default_task_definition_family(&"s".repeat(128), &"p".repeat(301))
        );
    }

    #[test]
    fn ecs_jit_parameters_live_under_their_own_path() {
        let mut config = pool();
        assert_eq!(config.jit_prefix(), "/runway/runway/jit/ecs");
        config.stack = "ci".into();
        assert_eq!(config.jit_prefix(), "/runway/ci/jit/ecs");
        config.ssm_prefix = Some("/team/jit".into());
        assert_eq!(config.jit_prefix(), "/team/jit/ecs");
    }

    proptest::proptest! {
        /// Whatever the names, `startedBy` is a valid ECS value naming one stack and execution.
        #[test]
        fn started_by_is_always_valid(stack in "\\PC{0,200}", execution in "\\PC{0,200}") {
            let id = started_by(&stack, &execution);
            proptest::prop_assert!(id.len() <= 36);
            proptest::prop_assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        }

        /// Task definition references: whatever the text, checking never panics, and a
        /// family with a numeric revision is accepted.
        #[test]
        fn task_definition_refs(text in "\\PC{0,40}", family in "[A-Za-z0-9_-]{1,40}", revision in 1_u32..100_000) {
            let _ = is_task_definition_ref(&text);
            let reference = format!("{family}:{revision}");
            proptest::prop_assert!(is_task_definition_ref(&reference));
        }
    }
}
