//! Runners on EC2: one instance per runner.
//!
//! # How the JIT config reaches the instance
//!
//! The JIT config is a credential, so it never goes into user data (readable by anyone with
//! `ec2:DescribeInstanceAttribute`, and kept for the instance's life). Instead:
//!
//! 1. `RunInstances` starts the instance with a small user-data script that holds no secret;
//! 2. runway writes the config to the SSM SecureString `<prefix>/<instance id>` (default
//!    prefix `/runway/<stack>/jit`, see [`jit_parameter_prefix`]) in the Advanced tier: a
//!    GitHub JIT config is about 4 KB and growing, and the Standard tier refuses values over
//!    4,096 characters. A throttled write (`ThrottlingException`, `TooManyUpdates`: a large
//!    matrix writes hundreds at once) is retried with back-off on the provider's clock before
//!    it is reported as [`ProviderError::Throttled`] (the writer the ECS provider uses too);
//! 3. on boot the script reads its own instance id through IMDSv2 (required on every
//!    instance), fetches `<prefix>/<instance id>` with the instance role, deletes it (the
//!    config registers one runner only), installs the runner from the stack's runner cache
//!    when the image has none, and runs it for one job; when the ephemeral runner exits the
//!    instance shuts down, which terminates it. See [`crate::BootScript`] for the Linux and
//!    Windows scripts.
//!
//! A pool's image is an AMI id or `resolve:ssm:<parameter>` (AWS's public parameters such as
//! `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64`), resolved at
//! launch and remembered for [`IMAGE_PARAMETER_TTL`].
//!
//! The runner role may read and delete only its own parameter. Statement for the runner
//! role (CloudFormation `!Sub` syntax; the `${!...}` escapes keep the IAM policy variable):
//!
//! ```json
#![doc = include_str!("runner-policy.json")]
//! ```
//!
//! Every instance and its volumes carry the tags `runway:stack`, `runway:execution`,
//! `runway:pool`, `runway:runner`, `runway:managed=true` and `Name=runway-<runner>`; terminate,
//! the look-ups and the reaper find instances by these tags, always within the provider's
//! stack, so two runway stacks in one account never touch each other's runners (the stack's
//! IAM policies hold the same line).
//!
//! A launch is safe to retry: it first looks for a live instance of the same stack, execution
//! and runner, and each `RunInstances` carries a `ClientToken` derived from the stack,
//! execution, runner name (which counts the launch attempt), instance type, subnet and market,
//! so EC2 starts at most one instance per request even when a retried call races the first.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::error::SdkError;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Filter, HttpTokensState, IamInstanceProfileSpecification,
    InstanceInterruptionBehavior, InstanceMarketOptionsRequest, InstanceMetadataEndpointState,
    InstanceMetadataOptionsRequest, InstanceStateName, InstanceType, LaunchTemplateSpecification,
    MarketType, ResourceType, ShutdownBehavior, SpotInstanceType, SpotMarketOptions, Tag,
    TagSpecification, VolumeType,
};
use aws_smithy_types::error::display::DisplayErrorContext;
use base64::Engine;
use runway_clock::{SharedClock, SystemClock};
use tracing::{info, warn};

use crate::boot::{
    BootHooks, BootLogs, BootOs, BootScript, DEFAULT_IMDS_URL, DEFAULT_LINUX_LOG_DIR,
    DEFAULT_WINDOWS_LOG_DIR,
};
use crate::jit::{
    JitParameter, check_jit_prefix, check_kms_key, delete_jit_parameter, put_jit_parameter,
};
use crate::remembered::Remembered;
use crate::runner_cache::RunnerCacheReader;
use crate::shared::{
    DEFAULT_STACK, TAG_EXECUTION, TAG_MANAGED, TAG_POOL, TAG_RUNNER, TAG_STACK, check_stack_name,
    hashed_id, is_plain_path_char, sdk_error, to_chrono,
};
use crate::{
    Capacity, CapacityPreference, LaunchRequest, Launched, OwnedRunner, Provider, ProviderError,
    ProviderKind, Terminated, jit_parameter_prefix,
};
use runway_runner_logs::RunnerLogGroups;

/// What to check when EC2 refuses a launch as misconfigured.
const EC2_FIX: &str = "check the pool's image, instance types, subnets, security groups, \
                       instance profile and runway's IAM permissions";

/// The IAM policy statement the runner role needs (CloudFormation `!Sub` syntax), for the
/// SAM template to copy.
pub const RUNNER_POLICY_DOC: &str = include_str!("runner-policy.json");

const TAG_INSTANCE_ID: &str = "runway:instance-id";

/// Instance states in which a runner still costs money or may still run.
const LIVE_STATES: [&str; 4] = ["pending", "running", "stopping", "stopped"];

/// A launch template, by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchTemplateRef {
    Id(String),
    Name(String),
}

/// What the instance boots from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A launch template; `version` defaults to the template's default version. Its user data
    /// is replaced by runway's.
    LaunchTemplate {
        template: LaunchTemplateRef,
        version: Option<String>,
    },
    /// An AMI id; instance types must then be listed in the pool.
    Ami(String),
    /// `resolve:ssm:<parameter>`: the AMI id an SSM parameter holds (such as AWS's public
    /// `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64`), read at
    /// launch and remembered for [`IMAGE_PARAMETER_TTL`].
    SsmParameter(String),
}

/// The prefix of an image named through an SSM parameter.
pub const RESOLVE_SSM: &str = "resolve:ssm:";

/// How long an image resolved through SSM is reused before it is read again.
pub const IMAGE_PARAMETER_TTL: std::time::Duration = std::time::Duration::from_secs(300);

impl ImageSource {
    /// `ami-...` or `resolve:ssm:/parameter`, as a pool's `image` says it.
    pub fn parse(image: &str) -> Result<ImageSource, ProviderError> {
        match image.strip_prefix(RESOLVE_SSM) {
            Some(parameter) => {
                check_image_parameter(parameter)?;
                Ok(ImageSource::SsmParameter(parameter.to_string()))
            }
            None if image.starts_with("ami-") => Ok(ImageSource::Ami(image.to_string())),
            None => Err(ProviderError::config(format!(
                "{image:?} is neither an AMI id (ami-...) nor resolve:ssm:<parameter>"
            ))),
        }
    }
}

/// An SSM parameter name runway may resolve an image through: a path of plain characters.
fn check_image_parameter(parameter: &str) -> Result<(), ProviderError> {
    if parameter.len() > 1
        && parameter.starts_with('/')
        && parameter.chars().all(is_plain_path_char)
    {
        Ok(())
    } else {
        Err(ProviderError::config(format!(
            "the image parameter {parameter:?} is not an SSM parameter path (resolve:ssm:/aws/service/...)"
        )))
    }
}

/// One pool's EC2 settings.
#[derive(Debug, Clone)]
pub struct Ec2PoolConfig {
    /// The runway stack (CloudFormation stack name, or `runway local`'s `stack`) the runners
    /// belong to: tagged on everything launched, and the scope of every look-up.
    pub stack: String,
    pub image: ImageSource,
    /// Instance types in order of preference (may be empty with a launch template that names
    /// one).
    pub instance_types: Vec<String>,
    /// Subnets in order of preference (empty: the launch template's or the default VPC's).
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// The runner role's instance profile: a name, or an ARN (`arn:...`).
    pub instance_profile: Option<String>,
    pub capacity: CapacityPreference,
    /// Root volume size in GiB (gp3, encrypted, deleted with the instance).
    pub disk_gib: Option<u32>,
    /// Tags added to instances and volumes besides runway's own.
    pub extra_tags: BTreeMap<String, String>,
    /// SSM parameter prefix for JIT configs: starts with `/`, no trailing `/`; `None`:
    /// [`jit_parameter_prefix`] of the stack.
    pub ssm_prefix: Option<String>,
    /// The KMS key (id, ARN, alias name or alias ARN) that encrypts the JIT config
    /// SecureString; `None`: the account's AWS managed key for SSM (`alias/aws/ssm`).
    pub ssm_kms_key_id: Option<String>,
    /// Where the actions runner is installed on the image.
    pub runner_dir: String,
    /// The user that runs the runner on the instance.
    pub runner_user: String,
    /// IMDSv2 PUT response hop limit: 1 keeps containers on the instance away from the
    /// instance role; 2 lets them reach it.
    pub imds_hop_limit: u8,
    /// Linux (a bash boot script) or Windows (PowerShell).
    pub os: BootOs,
    /// The pool's scripts around the runner.
    pub hooks: BootHooks,
    /// The stack's runner cache: a boot on an image without the runner installs it from here.
    pub runner_cache_bucket: Option<String>,
    /// The pool's runner log group (`/runway/<stack>/runners/<pool>`); `None`: runner output
    /// stays on the instance.
    pub log_group: Option<String>,
}

impl Ec2PoolConfig {
    /// A pool booting `ami` on the given instance types, with runway's defaults elsewhere.
    pub fn from_ami(ami: impl Into<String>, instance_types: Vec<String>) -> Ec2PoolConfig {
        Ec2PoolConfig::with_image(ImageSource::Ami(ami.into()), instance_types)
    }

    /// A pool launching from a launch template (default version unless `version`).
    pub fn from_launch_template(
        template: LaunchTemplateRef,
        version: Option<String>,
    ) -> Ec2PoolConfig {
        Ec2PoolConfig::with_image(
            ImageSource::LaunchTemplate { template, version },
            Vec::new(),
        )
    }

    fn with_image(image: ImageSource, instance_types: Vec<String>) -> Ec2PoolConfig {
        Ec2PoolConfig {
            stack: DEFAULT_STACK.to_string(),
            image,
            instance_types,
            subnets: Vec::new(),
            security_groups: Vec::new(),
            instance_profile: None,
            capacity: CapacityPreference::default(),
            disk_gib: None,
            extra_tags: BTreeMap::new(),
            ssm_prefix: None,
            ssm_kms_key_id: None,
            runner_dir: "/opt/actions-runner".to_string(),
            runner_user: "runner".to_string(),
            imds_hop_limit: 1,
            os: BootOs::Linux,
            hooks: BootHooks::default(),
            runner_cache_bucket: None,
            log_group: None,
        }
    }

    /// Where this pool's JIT config parameters are kept.
    pub fn jit_prefix(&self) -> String {
        self.ssm_prefix
            .clone()
            .unwrap_or_else(|| jit_parameter_prefix(&self.stack))
    }

    /// Checks the settings an [`Ec2Provider`] is built from (the stack name, the JIT config
    /// path, the IMDS hop limit), so a document can be checked before anything launches.
    pub fn validate(&self) -> Result<(), ProviderError> {
        check_stack_name(&self.stack)?;
        let prefix = &self.jit_prefix();
        check_jit_prefix(prefix, &self.stack)?;
        // These go into the boot script: plain path characters only.
        for (what, value) in [("SSM prefix", prefix), ("runner user", &self.runner_user)] {
            if value.is_empty() || !value.chars().all(is_plain_path_char) {
                return Err(ProviderError::config(format!(
                    "the {what} {value:?} may only use letters, digits and '/', '_', '.', '-'"
                )));
            }
        }
        check_runner_dir(&self.runner_dir, self.os)?;
        self.hooks.validate()?;
        if let Some(bucket) = &self.runner_cache_bucket {
            check_bucket_name(bucket)?;
        }
        match &self.image {
            ImageSource::Ami(ami) if !ami.starts_with("ami-") => {
                return Err(ProviderError::config(format!(
                    "{ami:?} is not an AMI id (ami-...)"
                )));
            }
            ImageSource::SsmParameter(parameter) => check_image_parameter(parameter)?,
            ImageSource::LaunchTemplate {
                template: LaunchTemplateRef::Id(id) | LaunchTemplateRef::Name(id),
                ..
            } if id.is_empty() => {
                return Err(ProviderError::config(
                    "the launch template id or name is empty",
                ));
            }
            _ => {}
        }
        if let Some(key) = &self.ssm_kms_key_id {
            check_kms_key(key)?;
        }
        if let Some(profile) = &self.instance_profile {
            check_instance_profile(profile)?;
        }
        // The stack's IAM policy allows launches with a hop limit of at most 2.
        if !(1..=2).contains(&self.imds_hop_limit) {
            return Err(ProviderError::config(
                "the IMDS hop limit must be 1 (only the host reaches the instance role) or 2 \
                 (containers on the instance reach it too)",
            ));
        }
        Ok(())
    }
}

/// A runner directory the boot script can use as is: absolute, plain characters.
fn check_runner_dir(dir: &str, os: BootOs) -> Result<(), ProviderError> {
    let usable = match os {
        BootOs::Linux => dir.starts_with('/') && dir.chars().all(is_plain_path_char),
        // `C:\actions-runner`
        BootOs::Windows => {
            let bytes = dir.as_bytes();
            bytes.len() > 3
                && bytes[0].is_ascii_alphabetic()
                && &bytes[1..3] == b":\\"
                && dir[3..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '\\' | '_' | '.' | '-'))
        }
    };
    if usable {
        Ok(())
    } else {
        Err(ProviderError::config(format!(
            "the runner directory {dir:?} must be an absolute path of letters, digits and              '_', '.', '-' (/opt/actions-runner on Linux, C:\\actions-runner on Windows)"
        )))
    }
}

/// An instance profile as RunInstances takes it: a name (`runway-runner`), or an ARN,
/// `arn:<partition>:iam::<account>:instance-profile/[<path>/]<name>`. Anything else would
/// fail at the first launch with an error naming neither the pool nor the setting.
pub fn check_instance_profile(profile: &str) -> Result<(), ProviderError> {
    let usable = match profile.strip_prefix("arn:") {
        Some(rest) => is_instance_profile_arn(rest),
        None => is_iam_name(profile),
    };
    if usable {
        return Ok(());
    }
    let hint = if profile.contains(":role/") {
        " (that is a role: name its instance profile)"
    } else {
        ""
    };
    Err(ProviderError::config(format!(
        "the instance profile {profile:?} is neither a name (at most 128 letters, digits and \
         '+=,.@_-') nor an instance profile ARN \
         (arn:<partition>:iam::<account>:instance-profile/<name>){hint}"
    )))
}

/// An IAM name: 1 to 128 letters, digits and `+=,.@_-`.
fn is_iam_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '+' | '=' | ',' | '.' | '@' | '_' | '-')
        })
}

/// What follows `arn:` in an instance profile's ARN.
fn is_instance_profile_arn(rest: &str) -> bool {
    let mut parts = rest.splitn(5, ':');
    let (Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let Some(path_and_name) = resource.strip_prefix("instance-profile/") else {
        return false;
    };
    // `aws`, `aws-cn`, `aws-us-gov`, `aws-iso-b`, ...
    let partition_ok = partition.strip_prefix("aws").is_some_and(|tail| {
        tail.is_empty()
            || tail.strip_prefix('-').is_some_and(|tail| {
                tail.split('-').all(|part| {
                    !part.is_empty()
                        && part
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                })
            })
    });
    let account_ok = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
    // `[<path>/]<name>`: every segment, the name last, a plain IAM name.
    let path_ok = path_and_name.len() < 512 + 128 && path_and_name.split('/').all(is_iam_name);
    partition_ok && account_ok && path_ok
}

/// An S3 bucket name: 3 to 63 lower-case letters, digits, '.', '-'.
fn check_bucket_name(bucket: &str) -> Result<(), ProviderError> {
    let usable = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-'));
    if usable {
        Ok(())
    } else {
        Err(ProviderError::config(format!(
            "{bucket:?} is not an S3 bucket name (3 to 63 lower-case letters, digits, '.', '-')"
        )))
    }
}

/// Runners as EC2 instances.
#[derive(Debug, Clone)]
pub struct Ec2Provider {
    ec2: aws_sdk_ec2::Client,
    ssm: aws_sdk_ssm::Client,
    config: Ec2PoolConfig,
    clock: SharedClock,
    /// Reads the runner cache's manifest; `None`: boots install nothing.
    runner_cache: Option<Arc<dyn RunnerCacheReader>>,
    /// Images resolved through SSM: parameter → AMI id.
    resolved_images: Remembered<String>,
    /// Makes the pool's log group before a launch; `None`: runner output stays on the
    /// instance.
    runner_logs: Option<Arc<dyn RunnerLogGroups>>,
}

impl Ec2Provider {
    /// Checks the pool configuration; an unusable one is [`ProviderError::Config`].
    pub fn new(
        ec2: aws_sdk_ec2::Client,
        ssm: aws_sdk_ssm::Client,
        config: Ec2PoolConfig,
    ) -> Result<Ec2Provider, ProviderError> {
        config.validate()?;
        Ok(Ec2Provider {
            ec2,
            ssm,
            config,
            clock: SystemClock::shared(),
            runner_cache: None,
            resolved_images: Remembered::new(IMAGE_PARAMETER_TTL),
            runner_logs: None,
        })
    }

    /// Boots install the runner the cache's manifest names when the image lacks it; the
    /// pool's `runner_cache_bucket` says which bucket the instance reads.
    pub fn with_runner_cache(mut self, reader: Arc<dyn RunnerCacheReader>) -> Ec2Provider {
        self.runner_cache = Some(reader);
        self
    }

    /// Boots ship their output to the pool's `log_group`, which `groups` makes before the
    /// first launch.
    pub fn with_runner_logs(mut self, groups: Arc<dyn RunnerLogGroups>) -> Ec2Provider {
        self.runner_logs = Some(groups);
        self
    }

    /// Uses `clock` for launch times instead of the system clock.
    pub fn with_clock(mut self, clock: SharedClock) -> Ec2Provider {
        self.clock = clock;
        self
    }

    pub fn config(&self) -> &Ec2PoolConfig {
        &self.config
    }

    /// The SSM parameter that holds the JIT config of `instance_id`.
    pub fn parameter_name(&self, instance_id: &str) -> String {
        format!("{}/{instance_id}", self.config.jit_prefix())
    }

    /// What the boot script of runner `runner_name` says, with the runner the cache holds now
    /// (read through the runner cache reader, when the pool has a cache bucket), shipping its
    /// output to the runner's stream of the pool's log group (made here when missing).
    pub async fn boot_script(&self, runner_name: &str) -> Result<BootScript, ProviderError> {
        let install = match (&self.config.runner_cache_bucket, &self.runner_cache) {
            (Some(bucket), Some(reader)) => {
                let install = reader.runner_install(bucket).await?;
                if install.is_none() {
                    warn!(%bucket, "the runner cache is empty: only images with the runner \
                        boot; run `runway runner-cache sync --bucket {bucket}`");
                }
                install
            }
            _ => None,
        };
        let logs = match (&self.config.log_group, &self.runner_logs) {
            (Some(group), Some(groups)) => {
                groups.ensure_group(group).await.map_err(|error| {
                    if error.is_retryable() {
                        ProviderError::Throttled {
                            service: "CloudWatch Logs".to_string(),
                            reason: error.to_string(),
                        }
                    } else {
                        ProviderError::other(format!(
                            "{error} (the provision function's role needs logs:CreateLogGroup \
                             and logs:PutRetentionPolicy on {group})"
                        ))
                    }
                })?;
                Some(BootLogs {
                    group: group.clone(),
                    stream: runner_name.to_string(),
                    dir: match self.config.os {
                        BootOs::Linux => DEFAULT_LINUX_LOG_DIR.to_string(),
                        BootOs::Windows => DEFAULT_WINDOWS_LOG_DIR.to_string(),
                    },
                })
            }
            _ => None,
        };
        Ok(BootScript {
            jit_prefix: self.config.jit_prefix(),
            runner_dir: self.config.runner_dir.clone(),
            runner_user: self.config.runner_user.clone(),
            imds_url: DEFAULT_IMDS_URL.to_string(),
            install,
            hooks: self.config.hooks.clone(),
            logs,
        })
    }

    /// The user data of runner `runner_name`: the boot script for the pool's OS. No secret
    /// in it, see the module docs; refused when over EC2's 16 KB.
    pub async fn user_data_script(&self, runner_name: &str) -> Result<String, ProviderError> {
        self.boot_script(runner_name).await?.render(self.config.os)
    }

    /// The AMI `image` names: itself, or what its SSM parameter holds (read at most once
    /// every [`IMAGE_PARAMETER_TTL`]).
    async fn resolve_image(&self, image: &str) -> Result<String, ProviderError> {
        let parameter = match ImageSource::parse(image)? {
            ImageSource::Ami(ami) => return Ok(ami),
            ImageSource::SsmParameter(parameter) => parameter,
            ImageSource::LaunchTemplate { .. } => {
                return Err(ProviderError::config(format!("{image:?} is not an image")));
            }
        };
        let now = self.clock.now();
        if let Some(ami) = self.resolved_images.get(&parameter, now) {
            return Ok(ami);
        }
        let output = self
            .ssm
            .get_parameter()
            .name(&parameter)
            .send()
            .await
            .map_err(|error| {
                sdk_error(
                    "SSM",
                    "GetParameter",
                    error,
                    "check the pool's image parameter exists in this region and runway may \
                     read it (ssm:GetParameter)",
                )
            })?;
        let ami = output
            .parameter()
            .and_then(|parameter| parameter.value())
            .unwrap_or_default()
            .to_string();
        if !ami.starts_with("ami-") {
            return Err(ProviderError::config(format!(
                "the SSM parameter {parameter} holds {ami:?}, not an AMI id"
            )));
        }
        info!(%parameter, %ami, "resolved the pool's image");
        self.resolved_images.put(&parameter, ami.clone(), now);
        Ok(ami)
    }

    /// The root device of `ami`, to size its volume.
    async fn root_device_name(&self, ami: &str) -> Result<String, ProviderError> {
        let images = self
            .ec2
            .describe_images()
            .image_ids(ami)
            .send()
            .await
            .map_err(|error| sdk_error("EC2", "DescribeImages", error, EC2_FIX))?;
        images
            .images()
            .first()
            .and_then(|image| image.root_device_name())
            .map(str::to_string)
            .ok_or_else(|| {
                ProviderError::config(format!(
                    "the AMI {ami} does not exist or has no root device: check the pool's image"
                ))
            })
    }

    fn tags(&self, request: &LaunchRequest) -> Vec<Tag> {
        let mut tags: Vec<(String, String)> = self
            .config
            .extra_tags
            .iter()
            .filter(|(key, _)| !key.starts_with("runway:") && key.as_str() != "Name")
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        tags.extend([
            (TAG_STACK.to_string(), self.config.stack.clone()),
            (TAG_EXECUTION.to_string(), request.execution.clone()),
            (TAG_POOL.to_string(), request.pool.clone()),
            (TAG_RUNNER.to_string(), request.runner_name.clone()),
            (TAG_MANAGED.to_string(), "true".to_string()),
            (
                "Name".to_string(),
                format!("runway-{}", request.runner_name),
            ),
        ]);
        tags.into_iter()
            .map(|(key, value)| Tag::builder().key(key).value(value).build())
            .collect()
    }

    /// Writes the JIT config for `instance_id`, retrying throttled writes with back-off.
    async fn put_jit_config(
        &self,
        request: &LaunchRequest,
        instance_id: &str,
    ) -> Result<(), ProviderError> {
        let name = self.parameter_name(instance_id);
        let parameter = JitParameter {
            name: &name,
            runner_name: &request.runner_name,
            tags: vec![
                (TAG_STACK, &self.config.stack),
                (TAG_EXECUTION, &request.execution),
                (TAG_POOL, &request.pool),
                (TAG_RUNNER, &request.runner_name),
                (TAG_INSTANCE_ID, instance_id),
                (TAG_MANAGED, "true"),
            ],
            kms_key_id: self.config.ssm_kms_key_id.as_deref(),
            expires_at: None,
        };
        put_jit_parameter(&self.ssm, &self.clock, &parameter, &request.jit_config).await
    }

    async fn delete_jit_config(&self, instance_id: &str) -> Result<(), ProviderError> {
        delete_jit_parameter(&self.ssm, &self.parameter_name(instance_id)).await
    }

    async fn terminate_instances(&self, ids: Vec<String>) -> Result<(), ProviderError> {
        match self
            .ec2
            .terminate_instances()
            .set_instance_ids(Some(ids))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.code() == Some("InvalidInstanceID.NotFound") => Ok(()),
            Err(error) => Err(sdk_error("EC2", "TerminateInstances", error, EC2_FIX)),
        }
    }

    /// Writes the JIT config for the launched `instance_id`; an instance that cannot get its
    /// config would only idle, so it is terminated then.
    async fn hand_over(
        &self,
        request: &LaunchRequest,
        instance_id: &str,
    ) -> Result<(), ProviderError> {
        if let Err(error) = self.put_jit_config(request, instance_id).await {
            warn!(%instance_id, runner = %request.runner_name, %error,
                "could not store the JIT config; terminating the instance");
            if let Err(cleanup) = self
                .terminate_instances(vec![instance_id.to_string()])
                .await
            {
                warn!(%instance_id, error = %cleanup,
                    "could not terminate the instance; the reaper will remove it");
            }
            return Err(error);
        }
        Ok(())
    }

    /// A live instance of this stack already launched for the request's execution and runner.
    async fn launched_before(
        &self,
        request: &LaunchRequest,
    ) -> Result<Option<aws_sdk_ec2::types::Instance>, ProviderError> {
        let instances = self
            .describe(vec![
                filter(&format!("tag:{TAG_STACK}"), [self.config.stack.as_str()]),
                filter(
                    &format!("tag:{TAG_EXECUTION}"),
                    [request.execution.as_str()],
                ),
                filter(&format!("tag:{TAG_RUNNER}"), [request.runner_name.as_str()]),
                filter("instance-state-name", LIVE_STATES),
            ])
            .await?;
        Ok(instances
            .into_iter()
            .find(|instance| instance.instance_id().is_some()))
    }

    /// Every instance matching `filters`, across pages.
    async fn describe(
        &self,
        filters: Vec<Filter>,
    ) -> Result<Vec<aws_sdk_ec2::types::Instance>, ProviderError> {
        let mut instances = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .ec2
                .describe_instances()
                .set_filters(Some(filters.clone()))
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|error| sdk_error("EC2", "DescribeInstances", error, EC2_FIX))?;
            for reservation in page.reservations() {
                instances.extend(reservation.instances().iter().cloned());
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => return Ok(instances),
            }
        }
    }
}

#[async_trait]
impl Provider for Ec2Provider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Ec2
    }

    async fn launch(&self, request: LaunchRequest) -> Result<Launched, ProviderError> {
        // A retried launch whose first try went through finds that instance instead of
        // starting a second one.
        if let Some(existing) = self.launched_before(&request).await? {
            let instance_id = existing.instance_id().unwrap_or_default().to_string();
            info!(%instance_id, runner = %request.runner_name, execution = %request.execution,
                "the runner was launched by an earlier try; handing it this try's JIT config");
            self.hand_over(&request, &instance_id).await?;
            let capacity = match existing.instance_lifecycle() {
                Some(aws_sdk_ec2::types::InstanceLifecycleType::Spot) => Capacity::Spot,
                _ => Capacity::OnDemand,
            };
            return Ok(Launched {
                runner_name: request.runner_name,
                provider: ProviderKind::Ec2,
                instance_id,
                instance_type: existing.instance_type().map(|t| t.as_str().to_string()),
                subnet_id: existing.subnet_id().map(str::to_string),
                capacity: Some(capacity),
                launched_at: existing
                    .launch_time()
                    .and_then(to_chrono)
                    .unwrap_or_else(|| self.clock.now()),
            });
        }
        let overrides = &request.overrides;
        let instance_types = overrides
            .instance_types
            .clone()
            .unwrap_or_else(|| self.config.instance_types.clone());
        let image = overrides
            .image
            .clone()
            .or_else(|| match &self.config.image {
                ImageSource::Ami(ami) => Some(ami.clone()),
                ImageSource::SsmParameter(parameter) => Some(format!("{RESOLVE_SSM}{parameter}")),
                ImageSource::LaunchTemplate { .. } => None,
            });
        let ami = match &image {
            Some(image) => Some(self.resolve_image(image).await?),
            None => None,
        };
        let template = match &self.config.image {
            ImageSource::LaunchTemplate { template, version } => {
                let spec = LaunchTemplateSpecification::builder().set_version(version.clone());
                Some(
                    match template {
                        LaunchTemplateRef::Id(id) => spec.launch_template_id(id),
                        LaunchTemplateRef::Name(name) => spec.launch_template_name(name),
                    }
                    .build(),
                )
            }
            ImageSource::Ami(_) | ImageSource::SsmParameter(_) => None,
        };
        if template.is_none() && instance_types.is_empty() {
            return Err(ProviderError::config(
                "no instance types: list at least one in the pool (or use a launch template \
                 that names one)",
            ));
        }
        let block_device = match overrides.disk_gib.or(self.config.disk_gib) {
            None => None,
            Some(gib) => {
                let Some(ami) = &ami else {
                    return Err(ProviderError::config(
                        "a disk size with a launch template needs the AMI too (to find its \
                         root device): set the size in the launch template, or set the image",
                    ));
                };
                let size = i32::try_from(gib).map_err(|_| {
                    ProviderError::config(format!("a disk of {gib} GiB is too large"))
                })?;
                Some(
                    BlockDeviceMapping::builder()
                        .device_name(self.root_device_name(ami).await?)
                        .ebs(
                            EbsBlockDevice::builder()
                                .volume_size(size)
                                .volume_type(VolumeType::Gp3)
                                .encrypted(true)
                                .delete_on_termination(true)
                                .build(),
                        )
                        .build(),
                )
            }
        };
        let tags = self.tags(&request);
        let profile = self.config.instance_profile.as_ref().map(|profile| {
            let spec = IamInstanceProfileSpecification::builder();
            if profile.starts_with("arn:") {
                spec.arn(profile).build()
            } else {
                spec.name(profile).build()
            }
        });
        let api = Ec2RunInstances {
            client: &self.ec2,
            token_seed: [
                self.config.stack.clone(),
                request.execution.clone(),
                request.runner_name.clone(),
            ],
            ami,
            template,
            security_groups: self.config.security_groups.clone(),
            profile,
            user_data: base64::engine::general_purpose::STANDARD
                .encode(self.user_data_script(&request.runner_name).await?),
            hop_limit: i32::from(self.config.imds_hop_limit),
            block_device,
            tag_specifications: [ResourceType::Instance, ResourceType::Volume]
                .into_iter()
                .map(|resource| {
                    TagSpecification::builder()
                        .resource_type(resource)
                        .set_tags(Some(tags.clone()))
                        .build()
                })
                .collect(),
        };
        let capacity = overrides.capacity.unwrap_or(self.config.capacity);
        let plan = plan(&instance_types, &self.config.subnets, capacity);
        let (attempt, instance_id) = first_fit(&api, &plan).await?;
        self.hand_over(&request, &instance_id).await?;
        info!(%instance_id, runner = %request.runner_name, execution = %request.execution,
            instance_type = ?attempt.instance_type, subnet = ?attempt.subnet_id,
            capacity = %attempt.capacity, "launched runner on EC2");
        Ok(Launched {
            runner_name: request.runner_name,
            provider: ProviderKind::Ec2,
            instance_id,
            instance_type: attempt.instance_type,
            subnet_id: attempt.subnet_id,
            capacity: Some(attempt.capacity),
            launched_at: self.clock.now(),
        })
    }

    async fn terminate(
        &self,
        execution: &str,
        runner_name: &str,
    ) -> Result<Terminated, ProviderError> {
        // Every state: a runner that shut itself down may still have a parameter to remove.
        let instances = self
            .describe(vec![
                filter(&format!("tag:{TAG_STACK}"), [self.config.stack.as_str()]),
                filter(&format!("tag:{TAG_EXECUTION}"), [execution]),
                filter(&format!("tag:{TAG_RUNNER}"), [runner_name]),
            ])
            .await?;
        let live: Vec<String> = instances
            .iter()
            .filter(|instance| is_live(instance))
            .filter_map(|instance| instance.instance_id().map(str::to_string))
            .collect();
        if !live.is_empty() {
            self.terminate_instances(live.clone()).await?;
        }
        for instance_id in instances
            .iter()
            .filter_map(|instance| instance.instance_id())
        {
            self.delete_jit_config(instance_id).await?;
        }
        if live.is_empty() {
            Ok(Terminated::AlreadyGone)
        } else {
            info!(execution, runner = runner_name, instances = ?live, "terminated runner");
            Ok(Terminated::Stopped { instance_ids: live })
        }
    }

    async fn owned(&self) -> Result<Vec<OwnedRunner>, ProviderError> {
        self.owned_where(None).await
    }

    async fn owned_by(&self, execution: &str) -> Result<Vec<OwnedRunner>, ProviderError> {
        self.owned_where(Some(filter(&format!("tag:{TAG_EXECUTION}"), [execution])))
            .await
    }

    async fn runner_on(&self, instance_id: &str) -> Result<Option<OwnedRunner>, ProviderError> {
        let owned = self
            .owned_where(Some(filter("instance-id", [instance_id])))
            .await?;
        Ok(owned.into_iter().next())
    }
}

impl Ec2Provider {
    /// This stack's live instances, only those `narrower` matches when given (one execution's,
    /// one instance): filters, so EC2 does the filtering, and another stack's instances are
    /// never listed.
    async fn owned_where(
        &self,
        narrower: Option<Filter>,
    ) -> Result<Vec<OwnedRunner>, ProviderError> {
        let mut filters = vec![
            filter(&format!("tag:{TAG_MANAGED}"), ["true"]),
            filter(&format!("tag:{TAG_STACK}"), [self.config.stack.as_str()]),
            filter("instance-state-name", LIVE_STATES),
        ];
        filters.extend(narrower);
        let instances = self.describe(filters).await?;
        let mut owned = Vec::with_capacity(instances.len());
        for instance in &instances {
            let Some(instance_id) = instance.instance_id() else {
                continue;
            };
            let tag = |key: &str| {
                instance
                    .tags()
                    .iter()
                    .find(|tag| tag.key() == Some(key))
                    .and_then(|tag| tag.value())
                    .map(str::to_string)
            };
            let (Some(execution), Some(runner_name)) = (tag(TAG_EXECUTION), tag(TAG_RUNNER)) else {
                warn!(
                    instance_id,
                    "an instance tagged {TAG_MANAGED}=true lacks \
                    {TAG_EXECUTION} or {TAG_RUNNER}; it was not launched by runway as is, \
                    so it is left alone"
                );
                continue;
            };
            owned.push(OwnedRunner {
                provider: ProviderKind::Ec2,
                execution,
                runner_name,
                pool: tag(TAG_POOL),
                instance_id: instance_id.to_string(),
                launched_at: instance.launch_time().and_then(to_chrono),
            });
        }
        Ok(owned)
    }
}

fn filter<'a>(name: &str, values: impl IntoIterator<Item = &'a str>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().map(str::to_string).collect()))
        .build()
}

fn is_live(instance: &aws_sdk_ec2::types::Instance) -> bool {
    matches!(
        instance.state().and_then(|state| state.name()),
        Some(
            InstanceStateName::Pending
                | InstanceStateName::Running
                | InstanceStateName::Stopping
                | InstanceStateName::Stopped
        )
    )
}

/// The `RunInstances` idempotency token of one launch request: the same stack, execution,
/// runner name (which counts the launch attempt) and combination give the same token, so a
/// retried call starts no second instance; another combination is another request.
pub(crate) fn client_token(seed: &[String; 3], attempt: &Attempt) -> String {
    let capacity = attempt.capacity.to_string();
    let parts = [
        seed[0].as_str(),
        seed[1].as_str(),
        seed[2].as_str(),
        attempt.instance_type.as_deref().unwrap_or(""),
        attempt.subnet_id.as_deref().unwrap_or(""),
        capacity.as_str(),
    ];
    // EC2 takes up to 64 ASCII characters.
    hashed_id("runway-", &parts, 24)
}

/// One combination to try: instance type × subnet × market.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attempt {
    pub(crate) instance_type: Option<String>,
    pub(crate) subnet_id: Option<String>,
    pub(crate) capacity: Capacity,
}

impl Attempt {
    fn describe(&self) -> String {
        format!(
            "{} in {} ({})",
            self.instance_type
                .as_deref()
                .unwrap_or("the template's type"),
            self.subnet_id.as_deref().unwrap_or("the default subnet"),
            self.capacity
        )
    }
}

/// Every market in order, and within it every instance type, and within that every subnet.
pub(crate) fn plan(
    instance_types: &[String],
    subnets: &[String],
    capacity: CapacityPreference,
) -> Vec<Attempt> {
    let types: Vec<Option<String>> = if instance_types.is_empty() {
        vec![None]
    } else {
        instance_types.iter().cloned().map(Some).collect()
    };
    let subnets: Vec<Option<String>> = if subnets.is_empty() {
        vec![None]
    } else {
        subnets.iter().cloned().map(Some).collect()
    };
    let mut plan = Vec::new();
    for &market in capacity.markets() {
        for instance_type in &types {
            for subnet_id in &subnets {
                plan.push(Attempt {
                    instance_type: instance_type.clone(),
                    subnet_id: subnet_id.clone(),
                    capacity: market,
                });
            }
        }
    }
    plan
}

/// Why one `RunInstances` call failed.
#[derive(Debug, Clone)]
pub(crate) struct RunFailure {
    /// The service's error code; `None` when the request never got an answer.
    pub(crate) code: Option<String>,
    pub(crate) message: String,
}

/// One `RunInstances` call for one combination; the seam that lets the fallback order be
/// tested without a cloud that runs out of capacity.
#[async_trait]
pub(crate) trait RunInstancesApi: Send + Sync {
    /// Starts one instance; returns its id.
    async fn run_instance(&self, attempt: &Attempt) -> Result<String, RunFailure>;
}

/// Error codes meaning "not here, not now": try the next combination.
const CAPACITY_CODES: [&str; 6] = [
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "SpotMaxPriceTooLow",
    "MaxSpotInstanceCountExceeded",
    "Unsupported",
    "InsufficientFreeAddressesInSubnet",
];

/// Tries each combination in order until one starts an instance.
pub(crate) async fn first_fit(
    api: &dyn RunInstancesApi,
    plan: &[Attempt],
) -> Result<(Attempt, String), ProviderError> {
    let mut tried = Vec::new();
    for attempt in plan {
        match api.run_instance(attempt).await {
            Ok(instance_id) => return Ok((attempt.clone(), instance_id)),
            Err(failure) => {
                let code = failure.code.as_deref();
                if code.is_some_and(|code| CAPACITY_CODES.contains(&code)) {
                    info!(attempt = %attempt.describe(), code, "no capacity; trying the next");
                    tried.push(format!("{}: {}", attempt.describe(), code.unwrap_or("")));
                    continue;
                }
                return Err(classify(
                    "EC2",
                    &format!("RunInstances ({})", attempt.describe()),
                    code,
                    &failure.message,
                ));
            }
        }
    }
    Err(ProviderError::Capacity { tried })
}

fn classify(service: &str, action: &str, code: Option<&str>, message: &str) -> ProviderError {
    crate::shared::classify(service, action, code, message, EC2_FIX)
}

/// The real `RunInstances`, with everything but the combination fixed.
struct Ec2RunInstances<'a> {
    client: &'a aws_sdk_ec2::Client,
    /// Stack, execution and runner name: with the combination tried, the launch's identity.
    token_seed: [String; 3],
    ami: Option<String>,
    template: Option<LaunchTemplateSpecification>,
    security_groups: Vec<String>,
    profile: Option<IamInstanceProfileSpecification>,
    user_data: String,
    hop_limit: i32,
    block_device: Option<BlockDeviceMapping>,
    tag_specifications: Vec<TagSpecification>,
}

#[async_trait]
impl RunInstancesApi for Ec2RunInstances<'_> {
    async fn run_instance(&self, attempt: &Attempt) -> Result<String, RunFailure> {
        let market = match attempt.capacity {
            Capacity::OnDemand => None,
            Capacity::Spot => Some(
                InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .spot_options(
                        SpotMarketOptions::builder()
                            .spot_instance_type(SpotInstanceType::OneTime)
                            .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
                            .build(),
                    )
                    .build(),
            ),
        };
        let security_groups =
            (!self.security_groups.is_empty()).then(|| self.security_groups.clone());
        let output = self
            .client
            .run_instances()
            .min_count(1)
            .max_count(1)
            .set_image_id(self.ami.clone())
            .set_launch_template(self.template.clone())
            .set_instance_type(attempt.instance_type.as_deref().map(InstanceType::from))
            .set_subnet_id(attempt.subnet_id.clone())
            .set_security_group_ids(security_groups)
            .set_iam_instance_profile(self.profile.clone())
            .set_instance_market_options(market)
            .set_block_device_mappings(self.block_device.clone().map(|device| vec![device]))
            .user_data(&self.user_data)
            .metadata_options(
                InstanceMetadataOptionsRequest::builder()
                    .http_tokens(HttpTokensState::Required)
                    .http_endpoint(InstanceMetadataEndpointState::Enabled)
                    .http_put_response_hop_limit(self.hop_limit)
                    .build(),
            )
            .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
            .client_token(client_token(&self.token_seed, attempt))
            .set_tag_specifications(Some(self.tag_specifications.clone()))
            .send()
            .await;
        match output {
            Ok(output) => output
                .instances()
                .first()
                .and_then(|instance| instance.instance_id())
                .map(str::to_string)
                .ok_or_else(|| RunFailure {
                    code: Some("NoInstanceReturned".to_string()),
                    message: "RunInstances succeeded but returned no instance".to_string(),
                }),
            Err(error) => Err(RunFailure {
                code: match &error {
                    SdkError::ServiceError(_) => error.code().map(str::to_string),
                    _ => None,
                },
                message: DisplayErrorContext(&error).to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Answers each attempt from a script keyed by (type, subnet, market), recording the order.
    struct Scripted {
        answers: Vec<(Attempt, Result<String, &'static str>)>,
        calls: Mutex<Vec<Attempt>>,
    }

    #[async_trait]
    impl RunInstancesApi for Scripted {
        async fn run_instance(&self, attempt: &Attempt) -> Result<String, RunFailure> {
            self.calls.lock().unwrap().push(attempt.clone());
            let answer = self
                .answers
                .iter()
                .find(|(scripted, _)| scripted == attempt)
                .map(|(_, answer)| answer.clone())
                .unwrap_or(Err("InsufficientInstanceCapacity"));
            answer.map_err(|code| RunFailure {
                code: Some(code.to_string()),
                message: format!("scripted {code}"),
            })
        }
    }

    fn attempt(instance_type: &str, subnet: &str, capacity: Capacity) -> Attempt {
        Attempt {
            instance_type: Some(instance_type.to_string()),
            subnet_id: Some(subnet.to_string()),
            capacity,
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    fn scripted(answers: Vec<(Attempt, Result<String, &'static str>)>) -> Scripted {
        Scripted {
            answers,
            calls: Mutex::new(Vec::new()),
        }
    }

    #[test]
    fn the_plan_is_markets_then_types_then_subnets() {
        let plan = plan(
            &strings(&["m7g.large", "c7g.large"]),
            &strings(&["subnet-a", "subnet-b"]),
            CapacityPreference::SpotThenOnDemand,
        );
        let expected = [
            attempt("m7g.large", "subnet-a", Capacity::Spot),
            attempt("m7g.large", "subnet-b", Capacity::Spot),
            attempt("c7g.large", "subnet-a", Capacity::Spot),
            attempt("c7g.large", "subnet-b", Capacity::Spot),
            attempt("m7g.large", "subnet-a", Capacity::OnDemand),
            attempt("m7g.large", "subnet-b", Capacity::OnDemand),
            attempt("c7g.large", "subnet-a", Capacity::OnDemand),
            attempt("c7g.large", "subnet-b", Capacity::OnDemand),
        ];
        assert_eq!(plan, expected);
    }

    #[test]
    fn an_empty_list_leaves_the_choice_to_ec2() {
        let plan = plan(&[], &[], CapacityPreference::OnDemand);
        assert_eq!(
            plan,
            vec![Attempt {
                instance_type: None,
                subnet_id: None,
                capacity: Capacity::OnDemand
            }]
        );
        assert_eq!(
            super::plan(&[], &[], CapacityPreference::SpotOnly)[0].capacity,
            Capacity::Spot
        );
    }

    #[tokio::test]
    async fn capacity_errors_move_to_the_next_combination_and_spot_falls_back_to_on_demand() {
        let plan = plan(
            &strings(&["m7g.large", "c7g.large"]),
            &strings(&["subnet-a", "subnet-b"]),
            CapacityPreference::SpotThenOnDemand,
        );
        let api = scripted(vec![
            (
                attempt("m7g.large", "subnet-a", Capacity::Spot),
                Err("SpotMaxPriceTooLow"),
            ),
            (
                attempt("m7g.large", "subnet-b", Capacity::Spot),
                Err("MaxSpotInstanceCountExceeded"),
            ),
            (
                attempt("c7g.large", "subnet-a", Capacity::Spot),
                Err("Unsupported"),
            ),
            (
                attempt("c7g.large", "subnet-b", Capacity::Spot),
                Err("InsufficientCapacity"),
            ),
            (
                attempt("m7g.large", "subnet-a", Capacity::OnDemand),
                Err("InsufficientFreeAddressesInSubnet"),
            ),
            (
                attempt("m7g.large", "subnet-b", Capacity::OnDemand),
                Ok("i-0123".to_string()),
            ),
        ]);
        let (chosen, instance_id) = first_fit(&api, &plan).await.unwrap();
        assert_eq!(instance_id, "i-0123");
        assert_eq!(chosen, attempt("m7g.large", "subnet-b", Capacity::OnDemand));
        assert_eq!(*api.calls.lock().unwrap(), plan[..6].to_vec());
    }

    #[tokio::test]
    async fn exhausting_every_combination_is_a_capacity_error_listing_them() {
        let plan = plan(
            &strings(&["m7g.large"]),
            &strings(&["subnet-a", "subnet-b"]),
            CapacityPreference::SpotThenOnDemand,
        );
        let api = scripted(vec![]);
        let error = first_fit(&api, &plan).await.unwrap_err();
        let ProviderError::Capacity { tried } = &error else {
            panic!("expected a capacity error, got {error:?}");
        };
        assert_eq!(tried.len(), 4);
        assert_eq!(
            tried[0],
            "m7g.large in subnet-a (spot): InsufficientInstanceCapacity"
        );
        assert_eq!(
            tried[3],
            "m7g.large in subnet-b (on-demand): InsufficientInstanceCapacity"
        );
        assert!(error.is_retryable());
        assert_eq!(api.calls.lock().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn spot_only_never_tries_on_demand() {
        let plan = plan(
            &strings(&["m7g.large"]),
            &strings(&["subnet-a"]),
            CapacityPreference::SpotOnly,
        );
        let api = scripted(vec![]);
        assert!(matches!(
            first_fit(&api, &plan).await,
            Err(ProviderError::Capacity { .. })
        ));
        let calls = api.calls.lock().unwrap();
        assert!(calls.iter().all(|call| call.capacity == Capacity::Spot));
    }

    #[tokio::test]
    async fn throttling_stops_the_loop_and_is_retryable() {
        let plan = plan(
            &strings(&["m7g.large", "c7g.large"]),
            &strings(&["subnet-a"]),
            CapacityPreference::SpotThenOnDemand,
        );
        let api = scripted(vec![(
            attempt("m7g.large", "subnet-a", Capacity::Spot),
            Err("RequestLimitExceeded"),
        )]);
        let error = first_fit(&api, &plan).await.unwrap_err();
        assert!(
            matches!(error, ProviderError::Throttled { .. }),
            "{error:?}"
        );
        assert!(error.is_retryable());
        assert_eq!(api.calls.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn configuration_errors_stop_the_loop_and_are_not_retryable() {
        let plan = plan(
            &strings(&["m7g.large", "c7g.large"]),
            &strings(&["subnet-a"]),
            CapacityPreference::SpotThenOnDemand,
        );
        let api = scripted(vec![
            (
                attempt("m7g.large", "subnet-a", Capacity::Spot),
                Err("InsufficientInstanceCapacity"),
            ),
            (
                attempt("c7g.large", "subnet-a", Capacity::Spot),
                Err("InvalidAMIID.NotFound"),
            ),
        ]);
        let error = first_fit(&api, &plan).await.unwrap_err();
        assert!(matches!(error, ProviderError::Config { .. }), "{error:?}");
        assert!(!error.is_retryable());
        let message = error.to_string();
        assert!(message.contains("InvalidAMIID.NotFound"), "{message}");
        assert!(
            message.contains("c7g.large in subnet-a (spot)"),
            "{message}"
        );
        assert_eq!(api.calls.lock().unwrap().len(), 2);
    }

    #[test]
    fn errors_are_classified_for_the_caller() {
        assert!(matches!(
            classify("EC2", "x", Some("Throttling"), "m"),
            ProviderError::Throttled { .. }
        ));
        assert!(matches!(
            classify("EC2", "x", None, "connection refused"),
            ProviderError::Unavailable { .. }
        ));
        assert!(matches!(
            classify("EC2", "x", Some("UnauthorizedOperation"), "m"),
            ProviderError::Config { .. }
        ));
        assert!(matches!(
            classify("EC2", "x", Some("SomethingNew"), "m"),
            ProviderError::Other { .. }
        ));
    }

    #[test]
    fn the_jit_prefix_follows_the_stack_unless_set() {
        let mut config = Ec2PoolConfig::from_ami("ami-123", strings(&["m7g.large"]));
        assert_eq!(config.jit_prefix(), "/runway/runway/jit");
        config.stack = "ci-prod".into();
        assert_eq!(config.jit_prefix(), "/runway/ci-prod/jit");
        config.ssm_prefix = Some("/team/jit".into());
        assert_eq!(config.jit_prefix(), "/team/jit");
    }

    fn seed(stack: &str, execution: &str, runner: &str) -> [String; 3] {
        [stack.into(), execution.into(), runner.into()]
    }

    #[test]
    fn a_client_token_names_one_launch_request() {
        let spot = attempt("m7g.large", "subnet-a", Capacity::Spot);
        let base = client_token(&seed("s", "job-1-r2-a1", "runway-1-a1-1"), &spot);
        assert!(base.len() <= 64 && base.is_ascii(), "{base}");
        assert_eq!(
            base,
            client_token(&seed("s", "job-1-r2-a1", "runway-1-a1-1"), &spot),
            "a retry sends the same token"
        );
        let others = [
            client_token(&seed("other", "job-1-r2-a1", "runway-1-a1-1"), &spot),
            client_token(&seed("s", "job-1-r2-a2", "runway-1-a1-1"), &spot),
            client_token(&seed("s", "job-1-r2-a1", "runway-1-a1-2"), &spot),
            client_token(
                &seed("s", "job-1-r2-a1", "runway-1-a1-1"),
                &attempt("m7g.large", "subnet-b", Capacity::Spot),
            ),
            client_token(
                &seed("s", "job-1-r2-a1", "runway-1-a1-1"),
                &attempt("m7g.large", "subnet-a", Capacity::OnDemand),
            ),
            client_token(
                &seed("s", "job-1-r2-a1", "runway-1-a1-1"),
                &attempt("c7g.large", "subnet-a", Capacity::Spot),
            ),
        ];
        for other in others {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn unsafe_settings_are_refused() {
        let good = Ec2PoolConfig::from_ami("ami-123", strings(&["m7g.large"]));
        assert!(good.validate().is_ok());
        for key in [
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "alias/runway/secrets",
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        ] {
            let mut keyed = good.clone();
            keyed.ssm_kms_key_id = Some(key.into());
            assert!(keyed.validate().is_ok(), "{key}");
        }
        type Change = Box<dyn Fn(&mut Ec2PoolConfig)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "no slash",
                Box::new(|c| c.ssm_prefix = Some("runway/jit".into())),
            ),
            (
                "trailing slash",
                Box::new(|c| c.ssm_prefix = Some("/runway/".into())),
            ),
            ("root", Box::new(|c| c.ssm_prefix = Some("/".into()))),
            (
                "shell in prefix",
                Box::new(|c| c.ssm_prefix = Some("/x$(reboot)".into())),
            ),
            (
                "shell in dir",
                Box::new(|c| c.runner_dir = "/opt/r; rm -rf /".into()),
            ),
            ("empty user", Box::new(|c| c.runner_user = String::new())),
            ("quote in user", Box::new(|c| c.runner_user = "a\"b".into())),
            (
                "not an AMI",
                Box::new(|c| c.image = ImageSource::Ami("img".into())),
            ),
            ("hop limit", Box::new(|c| c.imds_hop_limit = 0)),
            ("hop limit 3", Box::new(|c| c.imds_hop_limit = 3)),
            ("empty stack", Box::new(|c| c.stack = String::new())),
            ("stack with a slash", Box::new(|c| c.stack = "a/b".into())),
            ("stack with a space", Box::new(|c| c.stack = "a b".into())),
            ("stack too long", Box::new(|c| c.stack = "s".repeat(129))),
            (
                "empty KMS key",
                Box::new(|c| c.ssm_kms_key_id = Some(String::new())),
            ),
            (
                "KMS key with a space",
                Box::new(|c| c.ssm_kms_key_id = Some("alias/runway jit".into())),
            ),
            (
                "empty template",
                Box::new(|c| {
                    c.image = ImageSource::LaunchTemplate {
                        template: LaunchTemplateRef::Name(String::new()),
                        version: None,
                    }
                }),
            ),
            (
                "role ARN as the profile",
                Box::new(|c| {
                    c.instance_profile = Some("arn:aws:iam::123456789012:role/runners".into())
                }),
            ),
        ];
        for (name, change) in cases {
            let mut config = good.clone();
            change(&mut config);
            let error = config.validate().expect_err(name);
            assert!(matches!(error, ProviderError::Config { .. }), "{name}");
        }
    }

    #[test]
    fn instance_profiles_are_names_or_instance_profile_arns() {
        for good in [
            "runway-runner",
            "team+ci=1,a.b@c_d-e",
            "arn:aws:iam::123456789012:instance-profile/runners",
            "arn:aws-us-gov:iam::123456789012:instance-profile/ci/linux/runners",
            "arn:aws-cn:iam::123456789012:instance-profile/runners",
        ] {
            assert!(check_instance_profile(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "team runners",
            "runners/linux",
            "arn:aws:iam::123456789012:instance-profile/",
            "arn:aws:iam::123456789012:instance-profile//runners",
            "arn:aws:iam::12345678901:instance-profile/runners",
            "arn:aws:iam:us-east-1:123456789012:instance-profile/runners",
            "arn:aws:ec2::123456789012:instance-profile/runners",
            "arn:azure:iam::123456789012:instance-profile/runners",
            "arn:aws-:iam::123456789012:instance-profile/runners",
            "arn:aws:iam::123456789012:role/runners",
        ] {
            let error = check_instance_profile(bad).expect_err(bad).to_string();
            assert!(error.contains("instance-profile/<name>"), "{bad}: {error}");
        }
        let role = check_instance_profile("arn:aws:iam::123456789012:role/runners")
            .unwrap_err()
            .to_string();
        assert!(role.contains("that is a role"), "{role}");
        assert!(check_instance_profile(&"p".repeat(128)).is_ok());
        assert!(check_instance_profile(&"p".repeat(129)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn every_well_formed_profile_arn_is_accepted(
            partition in "aws(-[a-z]{2,4}){0,2}",
            account in "[0-9]{12}",
            path in proptest::collection::vec("[A-Za-z0-9_.-]{1,12}", 0..3),
            name in "[A-Za-z0-9+=,.@_-]{1,64}",
        ) {
            let path: String = path.iter().map(|segment| format!("{segment}/")).collect();
            let arn = format!("arn:{partition}:iam::{account}:instance-profile/{path}{name}");
            proptest::prop_assert!(check_instance_profile(&arn).is_ok(), "{}", arn);
            proptest::prop_assert!(check_instance_profile(&name).is_ok());
        }

        #[test]
        fn a_name_with_any_other_character_is_refused(
            head in "[A-Za-z0-9_-]{0,10}",
            odd in "[^A-Za-z0-9+=,.@_-]",
            tail in "[A-Za-z0-9_-]{0,10}",
        ) {
            let name = format!("{head}{odd}{tail}");
            // A name that happens to start an ARN is judged as one.
            proptest::prop_assume!(!name.starts_with("arn:"));
            proptest::prop_assert!(check_instance_profile(&name).is_err(), "{:?}", name);
        }

        #[test]
        fn any_text_is_judged_without_panicking(text in ".{0,200}") {
            let _ = check_instance_profile(&text);
        }
    }
}
