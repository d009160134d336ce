//! The Lambda's settings, read from environment variables (set by `template.yaml`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use runway_config::{Document, Ec2Defaults, EcsDefaults};
use runway_github::GITHUB_API_URL;
use runway_policy_host::{InstanceReuse, PolicyBounds};
use runway_providers::{DEFAULT_STACK, Ec2PoolConfig, LaunchTemplateRef};

use crate::SetupError;
use crate::policy_source::PolicyLocation;
use crate::secrets::is_secret_arn;

/// The DynamoDB table (required).
pub const TABLE_ENV: &str = "RUNWAY_TABLE";
/// The stack's name (`${AWS::StackName}`): tagged on every runner, the scope of every
/// look-up, the JIT config path `/runway/<stack>/jit` and, unless the document sets
/// `github.runner_name_prefix`, the runner names' prefix. Default [`DEFAULT_STACK`].
pub const STACK_ENV: &str = "RUNWAY_STACK";
/// The configuration document as JSON (see [`runway_config::Document`]).
pub const CONFIG_ENV: &str = "RUNWAY_CONFIG";
/// An SSM parameter holding the configuration document, used when [`CONFIG_ENV`] is empty.
pub const CONFIG_PARAMETER_ENV: &str = "RUNWAY_CONFIG_PARAMETER";
/// The GitHub App id; empty or unset: a token authenticates instead.
pub const GITHUB_APP_ID_ENV: &str = "RUNWAY_GITHUB_APP_ID";
/// The App installations runway serves (required with an App id), comma-separated: the
/// webhook takes their events, and each job is served through the installation on its
/// repository's owner.
pub const GITHUB_INSTALLATION_ID_ENV: &str = "RUNWAY_GITHUB_INSTALLATION_ID";
/// Where the App's private key (PEM), or the token, is stored: a Secrets Manager secret when
/// the value is a secret's ARN (`arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX`,
/// any partition), otherwise the name of an SSM SecureString (`/runway/github/private-key`).
/// The same rule holds for the webhook secret's location (see [`CredentialSource::from_location`]).
pub const GITHUB_CREDENTIAL_PARAMETER_ENV: &str = "RUNWAY_GITHUB_CREDENTIAL_PARAMETER";
/// The Secrets Manager secret the setup page stores the GitHub App in (`{"status":"pending"}`
/// until set up). Read only when no App id, credential or token is given: explicit settings
/// take precedence.
pub const GITHUB_APP_SECRET_ENV: &str = "RUNWAY_GITHUB_APP_SECRET";
/// The App's private key itself (for `sam local invoke`; prefer the parameter).
pub const GITHUB_PRIVATE_KEY_ENV: &str = "RUNWAY_GITHUB_PRIVATE_KEY";
/// A token itself (for `sam local invoke`; prefer the parameter).
pub const GITHUB_TOKEN_ENV: &str = "RUNWAY_GITHUB_TOKEN";
/// The GitHub REST API (default `https://api.github.com`).
pub const GITHUB_API_URL_ENV: &str = "RUNWAY_GITHUB_API_URL";
/// A PEM file of CA certificates trusted beside the system's roots, for a GitHub Enterprise
/// Server behind an internal CA (a path in the function's package or a mounted layer).
pub const GITHUB_CA_BUNDLE_ENV: &str = "RUNWAY_GITHUB_CA_BUNDLE";
/// The instance profile runner instances launch with, for pools that name none.
pub const RUNNER_INSTANCE_PROFILE_ENV: &str = "RUNWAY_RUNNER_INSTANCE_PROFILE";
/// The instance profile of pools with `session_manager = true`: the runner role's rights and
/// Session Manager's.
pub const RUNNER_SESSION_INSTANCE_PROFILE_ENV: &str = "RUNWAY_RUNNER_SESSION_INSTANCE_PROFILE";
/// Comma-separated subnets for pools that name none.
pub const RUNNER_SUBNETS_ENV: &str = "RUNWAY_RUNNER_SUBNETS";
/// Comma-separated security groups for pools that name none.
pub const RUNNER_SECURITY_GROUPS_ENV: &str = "RUNWAY_RUNNER_SECURITY_GROUPS";
/// The stack's runner launch template (its id, `lt-...`, or its name): pools that boot an
/// `image` launch through it, with their image as the launch's AMI.
pub const RUNNER_LAUNCH_TEMPLATE_ENV: &str = "RUNWAY_RUNNER_LAUNCH_TEMPLATE";
/// The KMS key (id, ARN or alias) that encrypts the JIT config SecureStrings; unset: the
/// account's AWS managed key for SSM.
pub const JIT_CONFIG_KMS_KEY_ENV: &str = "RUNWAY_JIT_CONFIG_KMS_KEY";
/// The stack's runner cache bucket: EC2 boots on images without the runner install it from
/// there, and the `runner-cache` function fills it.
pub const RUNNER_CACHE_BUCKET_ENV: &str = "RUNWAY_RUNNER_CACHE_BUCKET";
/// Days the runner log groups runway makes keep events (the stack's `LogRetentionDays`);
/// unset: forever.
pub const RUNNER_LOG_RETENTION_ENV: &str = "RUNWAY_RUNNER_LOG_RETENTION_DAYS";
/// The ECS cluster of ECS pools that name none.
pub const ECS_CLUSTER_ENV: &str = "RUNWAY_ECS_CLUSTER";
/// The role the containers of the task definitions runway registers run as (it may read the
/// tasks' JIT configs and nothing else).
pub const ECS_TASK_ROLE_ENV: &str = "RUNWAY_ECS_TASK_ROLE_ARN";
/// The role ECS pulls runner images and writes their logs with.
pub const ECS_EXECUTION_ROLE_ENV: &str = "RUNWAY_ECS_EXECUTION_ROLE_ARN";
/// The CloudWatch Logs group of ECS runners' output.
pub const ECS_LOG_GROUP_ENV: &str = "RUNWAY_ECS_LOG_GROUP";
/// The region the function runs in (set by Lambda).
pub const REGION_ENV: &str = "AWS_REGION";
/// The router policy: a file (`.wasm`, or `.cwasm` compiled for this architecture), or a
/// `.wasm` object in S3 pinned to one version,
/// `s3://BUCKET/KEY.wasm?versionId=VERSION[&sha256=HEX]` (see [`PolicyLocation`]).
pub const ROUTER_POLICY_ENV: &str = "RUNWAY_ROUTER_POLICY";
/// The throttle policy, a file or an S3 object as [`ROUTER_POLICY_ENV`].
pub const THROTTLE_POLICY_ENV: &str = "RUNWAY_THROTTLE_POLICY";
/// Whether a policy instance serves more than one decision: `never` (the default, a pristine
/// instance per decision), `verified` or `verified:N` (see [`InstanceReuse`]).
pub const POLICY_REUSE_ENV: &str = "RUNWAY_POLICY_REUSE";
/// The router policy's own bounds, `fuel=N,time=Dms,memory=MMiB` (any subset; see
/// [`PolicyBounds`]); unset, the defaults for the policy's kind.
pub const ROUTER_POLICY_BOUNDS_ENV: &str = "RUNWAY_ROUTER_POLICY_BOUNDS";
/// The throttle policy's own bounds, as [`ROUTER_POLICY_BOUNDS_ENV`].
pub const THROTTLE_POLICY_BOUNDS_ENV: &str = "RUNWAY_THROTTLE_POLICY_BOUNDS";

/// Where the configuration document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The JSON text itself.
    Inline(String),
    /// The name of an SSM parameter holding it.
    Parameter(String),
}

/// Where a credential (the GitHub App key or token, the webhook secret) comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// The name of an SSM SecureString holding it.
    Parameter(String),
    /// The ARN of a Secrets Manager secret holding it as its secret string.
    Secret(String),
    /// The value itself.
    Value(String),
}

impl CredentialSource {
    /// The store a credential's location names, by one rule: a Secrets Manager ARN
    /// (`arn:PARTITION:secretsmanager:...`) is a secret, anything else an SSM parameter name.
    /// A secret is named by its full ARN, the one its IAM grant is written for.
    pub fn from_location(location: &str) -> CredentialSource {
        let location = location.trim();
        if is_secret_arn(location) {
            CredentialSource::Secret(location.to_owned())
        } else {
            CredentialSource::Parameter(location.to_owned())
        }
    }
}

impl std::fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialSource::Parameter(name) => f.debug_tuple("Parameter").field(name).finish(),
            CredentialSource::Secret(arn) => f.debug_tuple("Secret").field(arn).finish(),
            CredentialSource::Value(_) => f.write_str("Value([redacted])"),
        }
    }
}

/// How runway authenticates to GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitHubAuth {
    App {
        app_id: String,
        /// Never empty; the first acts where a request names no owner (an enterprise's
        /// runners).
        installations: Vec<u64>,
        private_key: CredentialSource,
    },
    Token(CredentialSource),
    /// The App the setup page made, read from this secret (its ARN) while the functions run.
    SetupApp {
        secret: String,
    },
}

/// Settings for the runner instances of pools that do not set them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunnerDefaults {
    pub instance_profile: Option<String>,
    pub session_instance_profile: Option<String>,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
}

/// What the stack gives ECS pools: a cluster, and the roles and log group of the task
/// definitions runway registers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EcsStackSettings {
    pub cluster: Option<String>,
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
    /// A log group and its region.
    pub log_group: Option<(String, String)>,
}

/// Everything a runway Lambda reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackSettings {
    /// The stack's name ([`STACK_ENV`]).
    pub stack: String,
    pub table: String,
    pub config: ConfigSource,
    pub github_api_url: String,
    /// Extra CA certificates for the GitHub API ([`GITHUB_CA_BUNDLE_ENV`]).
    pub github_ca_bundle: Option<std::path::PathBuf>,
    pub github: GitHubAuth,
    pub runners: RunnerDefaults,
    /// ECS pools' cluster, roles and log group ([`ECS_CLUSTER_ENV`] and its neighbours).
    pub ecs: EcsStackSettings,
    /// The stack's runner launch template ([`RUNNER_LAUNCH_TEMPLATE_ENV`]).
    pub runner_launch_template: Option<LaunchTemplateRef>,
    /// The KMS key of the JIT config parameters ([`JIT_CONFIG_KMS_KEY_ENV`]).
    pub jit_config_kms_key: Option<String>,
    /// The runner cache bucket ([`RUNNER_CACHE_BUCKET_ENV`]).
    pub runner_cache_bucket: Option<String>,
    /// Days runner log groups keep events ([`RUNNER_LOG_RETENTION_ENV`]).
    pub runner_log_retention_days: Option<i32>,
    pub router_policy: Option<PolicyLocation>,
    pub throttle_policy: Option<PolicyLocation>,
    /// How the policies' instances are used ([`POLICY_REUSE_ENV`]).
    pub policy_reuse: InstanceReuse,
    /// The policies' own bounds ([`ROUTER_POLICY_BOUNDS_ENV`], [`THROTTLE_POLICY_BOUNDS_ENV`]).
    pub router_bounds: PolicyBounds,
    pub throttle_bounds: PolicyBounds,
    /// Where policies fetched from S3 are kept, by content hash, for the life of the
    /// execution environment (`/tmp/runway-policies` in Lambda). Not read from the
    /// environment.
    pub policy_cache_dir: PathBuf,
}

/// The value of `name` from `lookup`, trimmed; an empty value counts as unset, because
/// CloudFormation passes empty strings for parameters left at their empty default.
pub(crate) fn setting(lookup: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

impl StackSettings {
    /// The settings from the process environment.
    pub fn from_env() -> Result<StackSettings, SetupError> {
        StackSettings::from_lookup(&|name| std::env::var(name).ok())
    }

    /// The settings from `lookup` (name → value). Empty values count as unset: CloudFormation
    /// passes empty strings for parameters left at their empty default.
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<StackSettings, SetupError> {
        let get = |name: &str| setting(lookup, name);
        let table = get(TABLE_ENV).ok_or_else(|| {
            SetupError::Settings(format!(
                "{TABLE_ENV} is not set: set it to the DynamoDB table of runway's state"
            ))
        })?;
        let stack = get(STACK_ENV).unwrap_or_else(|| DEFAULT_STACK.to_owned());
        if !runway_providers::is_stack_name(&stack) {
            return Err(SetupError::Settings(format!(
                "{STACK_ENV}={stack:?} is not a stack name: set it to the CloudFormation stack's \
                 name (letters, digits and '-')"
            )));
        }
        let config = match (get(CONFIG_ENV), get(CONFIG_PARAMETER_ENV)) {
            (Some(text), _) => ConfigSource::Inline(text),
            (None, Some(name)) => ConfigSource::Parameter(name),
            (None, None) => {
                return Err(SetupError::Settings(format!(
                    "no configuration document: set {CONFIG_ENV} to its JSON, or \
                     {CONFIG_PARAMETER_ENV} to the SSM parameter holding it"
                )));
            }
        };
        let credential = |value_env: &str| -> Result<CredentialSource, SetupError> {
            match (get(value_env), get(GITHUB_CREDENTIAL_PARAMETER_ENV)) {
                (Some(value), _) => Ok(CredentialSource::Value(value)),
                (None, Some(location)) => Ok(CredentialSource::from_location(&location)),
                (None, None) => Err(SetupError::Settings(format!(
                    "no GitHub credential: set {GITHUB_CREDENTIAL_PARAMETER_ENV} to the SSM \
                     SecureString holding it or to the ARN of a Secrets Manager secret holding \
                     it (or {value_env} to the value itself), or {GITHUB_APP_SECRET_ENV} to \
                     the secret the setup page stores the App in"
                ))),
            }
        };
        let github = match get(GITHUB_APP_ID_ENV) {
            Some(app_id) => {
                let raw = get(GITHUB_INSTALLATION_ID_ENV).ok_or_else(|| {
                    SetupError::Settings(format!(
                        "{GITHUB_APP_ID_ENV} is set but {GITHUB_INSTALLATION_ID_ENV} is not: set \
                         it to the App installation's id (the number at the end of the \
                         installation's settings URL)"
                    ))
                })?;
                let installations =
                    runway_webhook::parse_installation_ids(&raw).map_err(|reason| {
                        SetupError::Settings(format!(
                            "{GITHUB_INSTALLATION_ID_ENV}={raw:?}: {reason}; give the App \
                             installation's numeric id (several, comma-separated)"
                        ))
                    })?;
                GitHubAuth::App {
                    app_id,
                    installations,
                    private_key: credential(GITHUB_PRIVATE_KEY_ENV)?,
                }
            }
            None => match (
                get(GITHUB_TOKEN_ENV),
                get(GITHUB_CREDENTIAL_PARAMETER_ENV),
                get(GITHUB_APP_SECRET_ENV),
            ) {
                (None, None, Some(secret)) => GitHubAuth::SetupApp { secret },
                _ => GitHubAuth::Token(credential(GITHUB_TOKEN_ENV)?),
            },
        };
        let list = |name: &str| -> Vec<String> {
            get(name)
                .map(|value| {
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let policy_location = |name: &str| -> Result<Option<PolicyLocation>, SetupError> {
            get(name)
                .map(|text| {
                    PolicyLocation::parse(&text)
                        .map_err(|reason| SetupError::Settings(format!("{name}: {reason}")))
                })
                .transpose()
        };
        let policy_reuse = match get(POLICY_REUSE_ENV) {
            None => InstanceReuse::Never,
            Some(text) => text.parse().map_err(|reason: String| {
                SetupError::Settings(format!("{POLICY_REUSE_ENV}: {reason}"))
            })?,
        };
        let bounds = |name: &str| -> Result<PolicyBounds, SetupError> {
            get(name)
                .map(|text| {
                    text.parse()
                        .map_err(|reason: String| SetupError::Settings(format!("{name}: {reason}")))
                })
                .transpose()
                .map(Option::unwrap_or_default)
        };
        Ok(StackSettings {
            stack,
            table,
            config,
            github_api_url: get(GITHUB_API_URL_ENV).unwrap_or_else(|| GITHUB_API_URL.to_owned()),
            github_ca_bundle: get(GITHUB_CA_BUNDLE_ENV).map(std::path::PathBuf::from),
            github,
            runners: RunnerDefaults {
                instance_profile: get(RUNNER_INSTANCE_PROFILE_ENV),
                session_instance_profile: get(RUNNER_SESSION_INSTANCE_PROFILE_ENV),
                subnets: list(RUNNER_SUBNETS_ENV),
                security_groups: list(RUNNER_SECURITY_GROUPS_ENV),
            },
            ecs: EcsStackSettings {
                cluster: get(ECS_CLUSTER_ENV),
                task_role_arn: get(ECS_TASK_ROLE_ENV),
                execution_role_arn: get(ECS_EXECUTION_ROLE_ENV),
                log_group: match (get(ECS_LOG_GROUP_ENV), get(REGION_ENV)) {
                    (Some(group), Some(region)) => Some((group, region)),
                    (Some(group), None) => {
                        return Err(SetupError::Settings(format!(
                            "{ECS_LOG_GROUP_ENV}={group:?} needs {REGION_ENV}, the region of \
                             the log group"
                        )));
                    }
                    (None, _) => None,
                },
            },
            runner_launch_template: get(RUNNER_LAUNCH_TEMPLATE_ENV).map(|template| {
                // CloudFormation's `!Ref` of a launch template is its id.
                if template.starts_with("lt-") {
                    LaunchTemplateRef::Id(template)
                } else {
                    LaunchTemplateRef::Name(template)
                }
            }),
            jit_config_kms_key: get(JIT_CONFIG_KMS_KEY_ENV),
            runner_cache_bucket: get(RUNNER_CACHE_BUCKET_ENV),
            runner_log_retention_days: match get(RUNNER_LOG_RETENTION_ENV) {
                None => None,
                Some(days) => {
                    Some(days.parse::<i32>().ok().filter(|d| *d > 0).ok_or_else(|| {
                        SetupError::Settings(format!(
                            "{RUNNER_LOG_RETENTION_ENV}={days:?} is not a number of days \
                             (one CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, ...)"
                        ))
                    })?)
                }
            },
            router_policy: policy_location(ROUTER_POLICY_ENV)?,
            throttle_policy: policy_location(THROTTLE_POLICY_ENV)?,
            policy_reuse,
            router_bounds: bounds(ROUTER_POLICY_BOUNDS_ENV)?,
            throttle_bounds: bounds(THROTTLE_POLICY_BOUNDS_ENV)?,
            policy_cache_dir: crate::policy_source::default_cache_dir(),
        })
    }

    /// What the stack fills in for every EC2 pool: its name, subnets, security groups and
    /// runner profile where a pool sets none, the JIT config key and, when the stack has a
    /// runner launch template, that template for every pool that boots an `image`. The
    /// template holds what the stack enforces (IMDSv2, the runner instance profile, encrypted
    /// volumes, tags) and runway's IAM policy lets the provision function launch only with
    /// it; the pool's image still chooses the AMI (the route step passes it with each launch).
    pub fn ec2_defaults(&self) -> Ec2Defaults {
        Ec2Defaults {
            stack: self.stack.clone(),
            instance_profile: self.runners.instance_profile.clone(),
            session_instance_profile: self.runners.session_instance_profile.clone(),
            subnets: self.runners.subnets.clone(),
            security_groups: self.runners.security_groups.clone(),
            launch_template: self.runner_launch_template.clone(),
            ssm_kms_key_id: self.jit_config_kms_key.clone(),
            runner_cache_bucket: self.runner_cache_bucket.clone(),
        }
    }

    /// What the stack fills in for every ECS pool: its name, cluster, subnets and security
    /// groups where a pool sets none, the JIT config key, and the roles and log group of the
    /// task definitions runway registers.
    pub fn ecs_defaults(&self) -> EcsDefaults {
        EcsDefaults {
            stack: self.stack.clone(),
            cluster: self.ecs.cluster.clone(),
            subnets: self.runners.subnets.clone(),
            security_groups: self.runners.security_groups.clone(),
            ssm_kms_key_id: self.jit_config_kms_key.clone(),
            task_role_arn: self.ecs.task_role_arn.clone(),
            execution_role_arn: self.ecs.execution_role_arn.clone(),
            log_group: self.ecs.log_group.clone(),
        }
    }

    /// Every pool's EC2 settings: the document's, with [`StackSettings::ec2_defaults`].
    pub fn ec2_pools(
        &self,
        document: &Document,
    ) -> Result<BTreeMap<String, Ec2PoolConfig>, SetupError> {
        document
            .ec2_pools(&self.ec2_defaults())
            .map_err(|error| SetupError::Config(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use runway_config::{Host, ReadOptions};
    use runway_providers::ImageSource;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<StackSettings, SetupError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        StackSettings::from_lookup(&|name| env.get(name).cloned())
    }

    const BASE: [(&str, &str); 3] = [
        (TABLE_ENV, "runway"),
        (CONFIG_ENV, "{}"),
        (GITHUB_CREDENTIAL_PARAMETER_ENV, "/runway/github/token"),
    ];

    #[test]
    fn a_token_setup_reads_the_parameter_name_and_defaults() {
        let settings = settings(&BASE).unwrap();
        assert_eq!(settings.table, "runway");
        assert_eq!(settings.config, ConfigSource::Inline("{}".into()));
        assert_eq!(
            settings.github,
            GitHubAuth::Token(CredentialSource::Parameter("/runway/github/token".into()))
        );
        assert_eq!(settings.github_api_url, GITHUB_API_URL);
        assert_eq!(settings.runners, RunnerDefaults::default());
        assert_eq!(settings.router_policy, None);
        assert_eq!(settings.stack, DEFAULT_STACK);
    }

    #[test]
    fn the_stack_scopes_every_pool_and_names_the_runners() {
        let mut pairs = BASE.to_vec();
        pairs.push((STACK_ENV, "ci-prod"));
        let read = settings(&pairs).unwrap();
        assert_eq!(read.stack, "ci-prod");
        let document = document_for_stack(TWO_POOLS, "ci-prod");
        assert_eq!(document.flow.github.runner_name_prefix, "ci-prod");
        for pool in read.ec2_pools(&document).unwrap().values() {
            assert_eq!(pool.stack, "ci-prod");
            assert_eq!(pool.jit_prefix(), "/runway/ci-prod/jit");
        }
        // A prefix the document sets stands.
        let document = document_for_stack(
            r#"{"github": {"runner_name_prefix": "ci"}, "pools": [
                {"name": "p", "labels": ["self-hosted"], "image": "ami-1", "instance_types": ["m5.large"]}]}"#,
            "ci-prod",
        );
        assert_eq!(document.flow.github.runner_name_prefix, "ci");

        let mut pairs = BASE.to_vec();
        pairs.push((STACK_ENV, "bad/stack"));
        let error = settings(&pairs).unwrap_err().to_string();
        assert!(error.starts_with(STACK_ENV), "{error}");
    }

    #[test]
    fn an_app_setup_needs_a_numeric_installation_id() {
        let mut pairs = BASE.to_vec();
        pairs.push((GITHUB_APP_ID_ENV, "12345"));
        let error = settings(&pairs).unwrap_err().to_string();
        assert!(error.contains(GITHUB_INSTALLATION_ID_ENV), "{error}");

        pairs.push((GITHUB_INSTALLATION_ID_ENV, "seven"));
        let error = settings(&pairs).unwrap_err().to_string();
        assert!(
            error.contains("\"seven\" is not an installation id"),
            "{error}"
        );

        pairs.pop();
        pairs.push((GITHUB_INSTALLATION_ID_ENV, "7"));
        assert_eq!(
            settings(&pairs).unwrap().github,
            GitHubAuth::App {
                app_id: "12345".into(),
                installations: vec![7],
                private_key: CredentialSource::Parameter("/runway/github/token".into()),
            }
        );
        // Several installations: the webhook takes each one's events, and runway serves each.
        pairs.pop();
        pairs.push((GITHUB_INSTALLATION_ID_ENV, "7, 8"));
        assert!(matches!(
            settings(&pairs).unwrap().github,
            GitHubAuth::App { installations, .. } if installations == [7, 8]
        ));
    }

    #[test]
    fn empty_values_count_as_unset() {
        let error = settings(&[
            (TABLE_ENV, "runway"),
            (CONFIG_ENV, ""),
            (CONFIG_PARAMETER_ENV, " "),
            (GITHUB_TOKEN_ENV, "t"),
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("no configuration document"), "{error}");

        let error = settings(&[(TABLE_ENV, ""), (CONFIG_ENV, "{}")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("RUNWAY_TABLE is not set"), "{error}");
    }

    #[test]
    fn lists_and_the_config_parameter_are_read() {
        let settings = settings(&[
            (TABLE_ENV, "t"),
            (CONFIG_PARAMETER_ENV, "/runway/config"),
            (GITHUB_TOKEN_ENV, "ghp_x"),
            (RUNNER_SUBNETS_ENV, "subnet-a, ,subnet-b"),
            (RUNNER_SECURITY_GROUPS_ENV, ""),
            (ROUTER_POLICY_ENV, "/opt/policies/router.cwasm"),
        ])
        .unwrap();
        assert_eq!(
            settings.config,
            ConfigSource::Parameter("/runway/config".into())
        );
        assert_eq!(settings.runners.subnets, ["subnet-a", "subnet-b"]);
        assert!(settings.runners.security_groups.is_empty());
        assert_eq!(
            settings.github,
            GitHubAuth::Token(CredentialSource::Value("ghp_x".into()))
        );
        assert_eq!(
            format!("{:?}", settings.github),
            "Token(Value([redacted]))",
            "a credential never reaches the logs"
        );
        assert_eq!(
            settings.router_policy,
            Some(PolicyLocation::File(PathBuf::from(
                "/opt/policies/router.cwasm"
            )))
        );
    }

    #[test]
    fn the_launch_template_and_jit_key_are_read_and_empty_means_unset() {
        let mut pairs = BASE.to_vec();
        pairs.push((RUNNER_LAUNCH_TEMPLATE_ENV, "lt-0123456789abcdef0"));
        pairs.push((JIT_CONFIG_KMS_KEY_ENV, " alias/runway/secrets "));
        let read = settings(&pairs).unwrap();
        assert_eq!(
            read.runner_launch_template,
            Some(LaunchTemplateRef::Id("lt-0123456789abcdef0".into()))
        );
        assert_eq!(
            read.jit_config_kms_key.as_deref(),
            Some("alias/runway/secrets")
        );

        let mut pairs = BASE.to_vec();
        pairs.push((RUNNER_LAUNCH_TEMPLATE_ENV, "runway-runner"));
        pairs.push((JIT_CONFIG_KMS_KEY_ENV, ""));
        let read = settings(&pairs).unwrap();
        assert_eq!(
            read.runner_launch_template,
            Some(LaunchTemplateRef::Name("runway-runner".into()))
        );
        assert_eq!(read.jit_config_kms_key, None);
        assert_eq!(settings(&BASE).unwrap().runner_launch_template, None);
    }

    fn document_for_stack(text: &str, stack: &str) -> Document {
        Document::from_json(text, &ReadOptions::for_stack(Host::Lambda, stack)).unwrap()
    }

    const TWO_POOLS: &str = r#"{"pools": [
        {"name": "ami", "labels": ["self-hosted", "arm64"], "image": "ami-0123456789abcdef0",
         "instance_types": ["c7g.large"]},
        {"name": "own", "labels": ["self-hosted", "x64"],
         "provider": {"kind": "ec2",
                      "launch_template": {"name": "team-template", "version": "3"}}}
    ]}"#;

    #[test]
    fn image_pools_launch_through_the_stack_template_and_every_pool_gets_the_key() {
        let mut pairs = BASE.to_vec();
        pairs.push((RUNNER_LAUNCH_TEMPLATE_ENV, "lt-0abc"));
        pairs.push((JIT_CONFIG_KMS_KEY_ENV, "alias/runway/secrets"));
        let read = settings(&pairs).unwrap();
        let document = document_for_stack(TWO_POOLS, DEFAULT_STACK);
        let pools = read.ec2_pools(&document).unwrap();
        assert_eq!(
            pools["ami"].image,
            ImageSource::LaunchTemplate {
                template: LaunchTemplateRef::Id("lt-0abc".into()),
                version: None,
            }
        );
        assert_eq!(pools["ami"].instance_types, ["c7g.large"]);
        assert_eq!(
            pools["own"].image,
            ImageSource::LaunchTemplate {
                template: LaunchTemplateRef::Name("team-template".into()),
                version: Some("3".into()),
            },
            "a pool's own template is kept"
        );
        for pool in pools.values() {
            assert_eq!(pool.ssm_kms_key_id.as_deref(), Some("alias/runway/secrets"));
        }

        // Without the stack's template and key, the document's settings stand.
        let pools = settings(&BASE).unwrap().ec2_pools(&document).unwrap();
        assert_eq!(
            pools["ami"].image,
            ImageSource::Ami("ami-0123456789abcdef0".into())
        );
        assert!(pools.values().all(|pool| pool.ssm_kms_key_id.is_none()));
    }

    #[test]
    fn session_manager_pools_get_the_stack_s_session_profile_and_others_its_runner_profile() {
        let mut pairs = BASE.to_vec();
        pairs.push((RUNNER_INSTANCE_PROFILE_ENV, "ci-RunnerInstanceProfile-A"));
        pairs.push((
            RUNNER_SESSION_INSTANCE_PROFILE_ENV,
            "ci-RunnerSessionInstanceProfile-B",
        ));
        let read = settings(&pairs).unwrap();
        let document = document_for_stack(
            r#"{"pools": [
                {"name": "plain", "labels": ["a"], "image": "ami-1", "instance_types": ["m7i.large"]},
                {"name": "shell", "labels": ["b"], "image": "ami-1", "instance_types": ["m7i.large"],
                 "provider": {"kind": "ec2", "session_manager": true}}
            ]}"#,
            DEFAULT_STACK,
        );
        let pools = read.ec2_pools(&document).unwrap();
        assert_eq!(
            pools["plain"].instance_profile.as_deref(),
            Some("ci-RunnerInstanceProfile-A")
        );
        assert_eq!(
            pools["shell"].instance_profile.as_deref(),
            Some("ci-RunnerSessionInstanceProfile-B")
        );
        // An empty variable (sam local invoke's) is unset: the pool cannot map.
        pairs.pop();
        pairs.push((RUNNER_SESSION_INSTANCE_PROFILE_ENV, ""));
        let error = settings(&pairs)
            .unwrap()
            .ec2_pools(&document)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("pools[1].provider.session_manager"),
            "{error}"
        );
    }

    #[test]
    fn ecs_pools_run_in_the_stack_s_cluster_with_its_roles_log_group_and_network() {
        let mut pairs = BASE.to_vec();
        pairs.extend([
            (STACK_ENV, "ci"),
            (ECS_CLUSTER_ENV, "ci-runners"),
            (ECS_TASK_ROLE_ENV, "arn:aws:iam::123456789012:role/ci-task"),
            (
                ECS_EXECUTION_ROLE_ENV,
                "arn:aws:iam::123456789012:role/ci-exec",
            ),
            (ECS_LOG_GROUP_ENV, "/runway/ci/ecs-runners"),
            (REGION_ENV, "eu-west-1"),
            (RUNNER_SUBNETS_ENV, "subnet-a,subnet-b"),
            (RUNNER_SECURITY_GROUPS_ENV, "sg-1"),
            (JIT_CONFIG_KMS_KEY_ENV, "alias/runway/secrets"),
        ]);
        let read = settings(&pairs).unwrap();
        let document = document_for_stack(
            r#"{"pools": [{"name": "containers", "labels": ["self-hosted", "container"],
                "image": "ghcr.io/actions/actions-runner:latest",
                "provider": {"kind": "ecs", "cpu": 1024, "memory": 2048}}]}"#,
            "ci",
        );
        let defaults = read.ecs_defaults();
        let pools = document.ecs_pools(&defaults).unwrap();
        let pool = &pools["containers"];
        assert_eq!(pool.cluster, "ci-runners");
        assert_eq!(pool.subnets, ["subnet-a", "subnet-b"]);
        assert_eq!(pool.security_groups, ["sg-1"]);
        assert_eq!(pool.ssm_kms_key_id.as_deref(), Some("alias/runway/secrets"));
        assert_eq!(pool.task_definition, "ci-runner-containers");
        let definitions = document.ecs_task_definitions(&pools, &defaults);
        let definition = &definitions["containers"];
        assert_eq!(
            definition.task_role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/ci-task")
        );
        assert_eq!(
            definition.execution_role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/ci-exec")
        );
        assert_eq!(
            definition.log_group,
            Some((
                "/runway/ci/ecs-runners".to_string(),
                "eu-west-1".to_string()
            ))
        );

        // A log group needs its region.
        let without_region: Vec<(&str, &str)> = pairs
            .iter()
            .copied()
            .filter(|(name, _)| *name != REGION_ENV)
            .collect();
        let error = settings(&without_region).unwrap_err().to_string();
        assert!(error.contains(REGION_ENV), "{error}");
    }

    /// The whole path on a real EC2 and SSM API (moto): the environment names the stack's
    /// launch template and key; an image pool launches through the template with its own AMI,
    /// and the JIT config is a SecureString under that key.
    #[tokio::test]
    async fn a_runner_launches_through_the_stack_template_and_its_config_uses_the_stack_key() {
        use aws_sdk_ec2::types::{
            LaunchTemplateHttpTokensState, LaunchTemplateInstanceMetadataOptionsRequest,
            RequestLaunchTemplateData,
        };
        use runway_providers::{Ec2Provider, JitConfig, LaunchOverrides, LaunchRequest, Provider};

        let moto = runway_testkit::MotoServer::shared().expect("moto (scripts/setup.sh)");
        let config = moto.sdk_config().await;
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let ssm = aws_sdk_ssm::Client::new(&config);
        let ami = ec2
            .describe_images()
            .owners("amazon")
            .send()
            .await
            .unwrap()
            .images()
            .iter()
            .find_map(|image| image.image_id().map(str::to_owned))
            .expect("moto has AMIs");
        let template = ec2
            .create_launch_template()
            .launch_template_name("settings-test-runner")
            .launch_template_data(
                RequestLaunchTemplateData::builder()
                    .metadata_options(
                        LaunchTemplateInstanceMetadataOptionsRequest::builder()
                            .http_tokens(LaunchTemplateHttpTokensState::Required)
                            .http_put_response_hop_limit(1)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .launch_template
            .and_then(|template| template.launch_template_id)
            .unwrap();
        let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let document = document_for_stack(
            &format!(
                r#"{{"pools": [{{"name": "ami", "labels": ["self-hosted"], "image": "{ami}",
                "instance_types": ["m5.large"]}}]}}"#
            ),
            DEFAULT_STACK,
        );
        let mut pairs = BASE.to_vec();
        pairs.push((RUNNER_LAUNCH_TEMPLATE_ENV, template.as_str()));
        pairs.push((JIT_CONFIG_KMS_KEY_ENV, key));
        let pools = settings(&pairs).unwrap().ec2_pools(&document).unwrap();
        let pool = pools["ami"].clone();
        let provider = Ec2Provider::new(ec2.clone(), ssm.clone(), pool).unwrap();
        let launched = provider
            .launch(LaunchRequest {
                execution: "settings-kms".into(),
                pool: "ami".into(),
                runner_name: "settings-kms-runner".into(),
                labels: vec!["self-hosted".into()],
                jit_config: JitConfig::new("jit-config-settings-kms"),
                // What the route step passes for a pool with an image.
                overrides: LaunchOverrides {
                    image: Some(ami.clone()),
                    ..LaunchOverrides::default()
                },
            })
            .await
            .unwrap();

        let instance = ec2
            .describe_instances()
            .instance_ids(&launched.instance_id)
            .send()
            .await
            .unwrap()
            .reservations()[0]
            .instances()[0]
            .clone();
        assert_eq!(instance.image_id(), Some(ami.as_str()), "the pool's AMI");

        // BASE names no stack: the default one.
        let name = format!("/runway/runway/jit/{}", launched.instance_id);
        let described = ssm
            .describe_parameters()
            .parameter_filters(
                aws_sdk_ssm::types::ParameterStringFilter::builder()
                    .key("Name")
                    .values(&name)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let parameter = &described.parameters()[0];
        assert_eq!(
            parameter.r#type().map(|kind| kind.as_str()),
            Some("SecureString")
        );
        assert_eq!(
            parameter.key_id(),
            Some(key),
            "encrypted with the stack's key"
        );
        let value = ssm
            .get_parameter()
            .name(&name)
            .with_decryption(true)
            .send()
            .await
            .unwrap()
            .parameter
            .and_then(|parameter| parameter.value);
        assert_eq!(value.as_deref(), Some("jit-config-settings-kms"));
        provider
            .terminate("settings-kms", "settings-kms-runner")
            .await
            .unwrap();
    }

    #[test]
    fn a_secret_arn_is_read_from_secrets_manager_and_an_s3_policy_must_pin_a_wasm_version() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:runway/key-AbCdEf";
        let mut pairs = BASE.to_vec();
        pairs[2] = (GITHUB_CREDENTIAL_PARAMETER_ENV, arn);
        pairs.push((
            ROUTER_POLICY_ENV,
            "s3://runway-policies/router.wasm?versionId=v1",
        ));
        let read = settings(&pairs).unwrap();
        assert_eq!(
            read.github,
            GitHubAuth::Token(CredentialSource::Secret(arn.into()))
        );
        assert!(matches!(
            read.router_policy,
            Some(PolicyLocation::S3(ref object)) if object.version_id == "v1"
        ));
        assert_eq!(read.throttle_policy, None);

        for refused in [
            "s3://runway-policies/throttle.wasm",
            "s3://runway-policies/throttle.cwasm?versionId=v1",
        ] {
            let mut pairs = BASE.to_vec();
            pairs.push((THROTTLE_POLICY_ENV, refused));
            let error = settings(&pairs).unwrap_err().to_string();
            assert!(error.starts_with(THROTTLE_POLICY_ENV), "{error}");
        }
    }

    #[test]
    fn policy_bounds_are_read_per_policy_and_a_bad_value_names_the_variable() {
        let defaults = settings(&BASE).unwrap();
        assert_eq!(defaults.router_bounds, PolicyBounds::default());
        assert_eq!(defaults.throttle_bounds, PolicyBounds::default());
        let mut pairs = BASE.to_vec();
        pairs.push((ROUTER_POLICY_BOUNDS_ENV, "time=300ms,memory=96MiB"));
        pairs.push((THROTTLE_POLICY_BOUNDS_ENV, ""));
        let read = settings(&pairs).unwrap();
        assert_eq!(
            read.router_bounds.time_budget,
            Some(std::time::Duration::from_millis(300))
        );
        assert_eq!(read.router_bounds.memory_limit_bytes, Some(96 << 20));
        assert_eq!(read.throttle_bounds, PolicyBounds::default());
        let mut pairs = BASE.to_vec();
        pairs.push((THROTTLE_POLICY_BOUNDS_ENV, "time=fast"));
        let message = settings(&pairs).unwrap_err().to_string();
        assert!(message.starts_with(THROTTLE_POLICY_BOUNDS_ENV), "{message}");
        assert!(message.contains("500ms"), "{message}");
    }

    #[test]
    fn policy_reuse_defaults_to_never_and_a_bad_value_names_the_variable() {
        assert_eq!(settings(&BASE).unwrap().policy_reuse, InstanceReuse::Never);
        for (value, reuse) in [
            ("", InstanceReuse::Never),
            ("never", InstanceReuse::Never),
            ("verified", InstanceReuse::verified()),
            (" verified:8 ", InstanceReuse::Verified { verify_every: 8 }),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.push((POLICY_REUSE_ENV, value));
            assert_eq!(settings(&pairs).unwrap().policy_reuse, reuse, "{value:?}");
        }
        for bad in ["sometimes", "verified:0", "verified:x"] {
            let mut pairs = BASE.to_vec();
            pairs.push((POLICY_REUSE_ENV, bad));
            let error = settings(&pairs).unwrap_err();
            assert!(matches!(error, SetupError::Settings(_)), "{error:?}");
            let message = error.to_string();
            assert!(message.starts_with(POLICY_REUSE_ENV), "{message}");
            assert!(message.contains(bad), "{message}");
            assert!(
                message.contains("expected never, verified or verified:N (N ≥ 1)"),
                "{message}"
            );
        }
    }

    #[test]
    fn the_setup_app_serves_when_nothing_explicit_is_given() {
        let secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:runway-app-AbCdEf";
        let read = settings(&[
            (TABLE_ENV, "t"),
            (CONFIG_ENV, "{}"),
            (GITHUB_APP_SECRET_ENV, secret),
        ])
        .unwrap();
        assert_eq!(
            read.github,
            GitHubAuth::SetupApp {
                secret: secret.into()
            }
        );
        // A token or an App given explicitly takes precedence.
        let read = settings(&[
            (TABLE_ENV, "t"),
            (CONFIG_ENV, "{}"),
            (GITHUB_APP_SECRET_ENV, secret),
            (GITHUB_CREDENTIAL_PARAMETER_ENV, "/runway/github/token"),
        ])
        .unwrap();
        assert!(matches!(read.github, GitHubAuth::Token(_)), "{read:?}");
        let read = settings(&[
            (TABLE_ENV, "t"),
            (CONFIG_ENV, "{}"),
            (GITHUB_APP_SECRET_ENV, secret),
            (GITHUB_APP_ID_ENV, "7"),
            (GITHUB_INSTALLATION_ID_ENV, "8"),
            (GITHUB_CREDENTIAL_PARAMETER_ENV, "/runway/github/key"),
        ])
        .unwrap();
        assert!(matches!(read.github, GitHubAuth::App { .. }), "{read:?}");
    }

    #[test]
    fn no_credential_is_a_clear_error() {
        let error = settings(&[(TABLE_ENV, "t"), (CONFIG_ENV, "{}")])
            .unwrap_err()
            .to_string();
        assert!(error.contains(GITHUB_CREDENTIAL_PARAMETER_ENV), "{error}");
    }
}
