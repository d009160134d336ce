//! Where a pool's runners run: its `provider`, and how an EC2 pool's settings become an
//! [`Ec2PoolConfig`].
//!
//! What the job flow routes on (`image`, `instance_types`, `disk_gib`, `market`) is the
//! pool's own; the provider holds only what is particular to where runners run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use runway_jobflow::PoolConfig;
use runway_policy_host::Market;
use runway_providers::{
    CapacityPreference, Ec2PoolConfig, ImageSource, LaunchTemplateRef, ProviderError, ProviderKind,
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
}

impl ProviderSettings {
    /// The provider with every default.
    pub fn defaults_of(kind: ProviderKind) -> ProviderSettings {
        match kind {
            ProviderKind::Local => ProviderSettings::Local(LocalRunners::default()),
            ProviderKind::Ec2 => ProviderSettings::Ec2(Ec2Settings::default()),
        }
    }

    pub fn kind(&self) -> ProviderKind {
        match self {
            ProviderSettings::Local(_) => ProviderKind::Local,
            ProviderSettings::Ec2(_) => ProviderKind::Ec2,
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
    /// An instance profile name or ARN (default: the stack's runner profile).
    pub instance_profile: Option<String>,
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
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// The stack's runner launch template: a pool that boots an `image` launches through it
    /// (it holds what the stack enforces; the image still picks the AMI at launch).
    pub launch_template: Option<LaunchTemplateRef>,
    /// The KMS key of the JIT config parameters; none: the account's key for SSM.
    pub ssm_kms_key_id: Option<String>,
}

impl Ec2Defaults {
    /// Nothing but the stack.
    pub fn for_stack(stack: impl Into<String>) -> Ec2Defaults {
        Ec2Defaults {
            stack: stack.into(),
            instance_profile: None,
            subnets: Vec::new(),
            security_groups: Vec::new(),
            launch_template: None,
            ssm_kms_key_id: None,
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
    config.instance_profile = settings
        .instance_profile
        .clone()
        .or_else(|| defaults.instance_profile.clone());
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
    config.validate().map_err(|error| {
        let message = match error {
            ProviderError::Config { reason } => reason,
            other => other.to_string(),
        };
        Problem::new(at("provider"), format!("pool {name:?}: {message}"))
    })?;
    Ok(config)
}
