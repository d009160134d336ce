//! Reading and checking the pools document.

use std::collections::BTreeMap;

use runway_jobflow::{FlowConfig, PoolConfig};
use runway_providers::{
    Ec2PoolConfig, EcsPoolConfig, EksPoolConfig, LambdaPoolConfig, ProviderKind,
    RunnerTaskDefinition,
};
use serde_json::{Map, Value};

use crate::error::{ConfigError, Format, Problem};
use crate::provider::{
    Ec2Defaults, EcsDefaults, ProviderSettings, ec2_pool_config, ecs_default_task_definition,
    ecs_pool_config, eks_pool_config, lambda_pool_config,
};

/// Where a document runs, which decides the provider of a pool that names none and the
/// providers it may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// The deployed stack's Lambdas: runners on EC2 (the default).
    Lambda,
    /// `runway local`: runners as local processes (the default), on EC2 or on ECS.
    Local,
}

impl Host {
    fn default_provider(self) -> ProviderKind {
        match self {
            Host::Lambda => ProviderKind::Ec2,
            Host::Local => ProviderKind::Local,
        }
    }

    fn allows(self, kind: ProviderKind) -> bool {
        match self {
            Host::Lambda => kind != ProviderKind::Local,
            Host::Local => true,
        }
    }
}

/// How to read a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    pub host: Host,
    /// The stack the document configures: unless the document sets
    /// `github.runner_name_prefix`, runner names carry it
    /// ([`runway_jobflow::naming::stack_runner_name_prefix`]); EC2 settings are checked
    /// against it.
    pub stack: Option<String>,
}

impl ReadOptions {
    pub fn new(host: Host) -> ReadOptions {
        ReadOptions { host, stack: None }
    }

    pub fn for_stack(host: Host, stack: impl Into<String>) -> ReadOptions {
        ReadOptions {
            host,
            stack: Some(stack.into()),
        }
    }
}

/// A checked pools document: the job flow's configuration and where each pool's runners run.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub flow: FlowConfig,
    /// Every pool's provider, by pool name (a pool that named none has its host's default).
    providers: BTreeMap<String, ProviderSettings>,
}

/// Keys a pool's provider had before they moved to the pool, with where they are now.
const MOVED_PROVIDER_KEYS: &[(&str, &str)] = &[
    ("ami", "the pool's \"image\""),
    ("instance_types", "the pool's \"instance_types\""),
    ("disk_gib", "the pool's \"disk_gib\""),
    (
        "launch_template_id",
        "provider.launch_template = { id = \"lt-…\" }",
    ),
    (
        "launch_template_name",
        "provider.launch_template = { name = \"…\" }",
    ),
    (
        "launch_template_version",
        "provider.launch_template = { …, version = \"…\" }",
    ),
];

impl Document {
    /// Reads the JSON spelling.
    pub fn from_json(text: &str, options: &ReadOptions) -> Result<Document, ConfigError> {
        let value: Value = serde_json::from_str(text).map_err(|error| ConfigError::Syntax {
            format: Format::Json,
            message: error.to_string(),
        })?;
        Document::from_value(value, options)
    }

    /// Reads the TOML spelling.
    pub fn from_toml(text: &str, options: &ReadOptions) -> Result<Document, ConfigError> {
        let table: toml::Table =
            text.parse()
                .map_err(|error: toml::de::Error| ConfigError::Syntax {
                    format: Format::Toml,
                    message: error.to_string(),
                })?;
        Document::from_toml_table(table, options)
    }

    /// Reads a TOML table (what is left of a larger file once its own sections are taken).
    pub fn from_toml_table(
        table: toml::Table,
        options: &ReadOptions,
    ) -> Result<Document, ConfigError> {
        // One model: the TOML is read through the same path as the JSON.
        let value = serde_json::to_value(toml::Value::Table(table)).map_err(|error| {
            ConfigError::Syntax {
                format: Format::Toml,
                message: error.to_string(),
            }
        })?;
        Document::from_value(value, options)
    }

    /// Reads a document already parsed into JSON values.
    pub fn from_value(mut value: Value, options: &ReadOptions) -> Result<Document, ConfigError> {
        let mut problems = Vec::new();
        let Some(root) = value.as_object_mut() else {
            return Err(invalid(
                "",
                "the configuration must be a table (a JSON object) with \"pools\", and \
                 optionally \"github\", \"router_fallback\" and \"throttle_fallback\"",
            ));
        };
        let providers = take_providers(root, options.host, &mut problems);
        if let Some(stack) = &options.stack {
            let github = root
                .entry("github")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(github) = github.as_object_mut() {
                github.entry("runner_name_prefix").or_insert_with(|| {
                    Value::String(runway_jobflow::naming::stack_runner_name_prefix(stack))
                });
            }
        }
        let flow: FlowConfig = match serde_path_to_error::deserialize(value) {
            Ok(flow) => flow,
            Err(error) => {
                problems.push(Problem::new(
                    path_text(error.path()),
                    error.inner().to_string(),
                ));
                return Err(ConfigError::Invalid(problems));
            }
        };
        problems.extend(flow.problems());
        if flow.pools.is_empty() {
            problems.push(Problem::new(
                "pools",
                "the configuration has no pools: add at least one (a [[pools]] table in TOML)",
            ));
        }
        let mut by_name = BTreeMap::new();
        for (index, (pool, provider)) in flow.pools.iter().zip(providers).enumerate() {
            let Some(provider) = provider else { continue };
            if !options.host.allows(provider.kind()) {
                problems.push(Problem::new(
                    format!("pools[{index}].provider.kind"),
                    format!(
                        "pool {:?}: local runners run only under `runway local`; a deployed \
                         stack launches on ec2, ecs, eks or lambda",
                        pool.name
                    ),
                ));
            }
            let stack = options
                .stack
                .clone()
                .unwrap_or_else(|| runway_providers::DEFAULT_STACK.to_owned());
            match &provider {
                ProviderSettings::Ec2(settings) => {
                    // A deployed stack always has its Session Manager profile ([`Document::
                    // ec2_pools`] checks with the real one); `runway local` has none.
                    let defaults = Ec2Defaults {
                        session_instance_profile: (options.host == Host::Lambda)
                            .then(|| "stack-session-profile".to_owned()),
                        ..Ec2Defaults::for_stack(stack)
                    };
                    if let Err(problem) = ec2_pool_config(index, pool, settings, &defaults) {
                        problems.push(problem);
                    }
                }
                ProviderSettings::Ecs(settings) => {
                    // The stack's cluster and subnets are known only where the stack runs;
                    // stand-ins let everything else be checked here ([`Document::ecs_pools`]
                    // checks with the real ones).
                    let defaults = EcsDefaults {
                        cluster: Some("stack-cluster".to_owned()),
                        subnets: vec!["subnet-stack".to_owned()],
                        ..EcsDefaults::for_stack(stack)
                    };
                    if let Err(found) = ecs_pool_config(index, pool, settings, &defaults) {
                        problems.extend(found);
                    }
                }
                ProviderSettings::Eks(settings) => {
                    if let Err(found) = eks_pool_config(index, pool, settings, &stack) {
                        problems.extend(found);
                    }
                }
                ProviderSettings::Lambda(settings) => {
                    if let Err(found) = lambda_pool_config(index, pool, settings, &stack, None) {
                        problems.extend(found);
                    }
                }
                ProviderSettings::Local(_) => {}
            }
            by_name.entry(pool.name.clone()).or_insert(provider);
        }
        if problems.is_empty() {
            Ok(Document {
                flow,
                providers: by_name,
            })
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The provider of pool `name`.
    pub fn provider(&self, name: &str) -> Option<&ProviderSettings> {
        self.providers.get(name)
    }

    /// Every pool with its provider, in the document's order.
    pub fn pools(&self) -> impl Iterator<Item = (&PoolConfig, &ProviderSettings)> {
        self.flow
            .pools
            .iter()
            .filter_map(|pool| Some((pool, self.providers.get(&pool.name)?)))
    }

    /// The provider settings of every EC2 pool, with `defaults` filled in.
    pub fn ec2_pools(
        &self,
        defaults: &Ec2Defaults,
    ) -> Result<BTreeMap<String, Ec2PoolConfig>, ConfigError> {
        self.pools_of_kind(|index, pool, settings| match settings {
            ProviderSettings::Ec2(settings) => Some(
                ec2_pool_config(index, pool, settings, defaults).map_err(|problem| vec![problem]),
            ),
            _ => None,
        })
    }

    /// What `build` makes of each pool it takes (`None`: not its kind), by pool name; every
    /// pool's problems together when any has one.
    fn pools_of_kind<C>(
        &self,
        mut build: impl FnMut(usize, &PoolConfig, &ProviderSettings) -> Option<Result<C, Vec<Problem>>>,
    ) -> Result<BTreeMap<String, C>, ConfigError> {
        let mut pools = BTreeMap::new();
        let mut problems = Vec::new();
        for (index, pool) in self.flow.pools.iter().enumerate() {
            let Some(settings) = self.providers.get(&pool.name) else {
                continue;
            };
            match build(index, pool, settings) {
                Some(Ok(config)) => {
                    pools.insert(pool.name.clone(), config);
                }
                Some(Err(found)) => problems.extend(found),
                None => {}
            }
        }
        if problems.is_empty() {
            Ok(pools)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

impl Document {
    /// The provider settings of every ECS pool, with `defaults` filled in.
    pub fn ecs_pools(
        &self,
        defaults: &EcsDefaults,
    ) -> Result<BTreeMap<String, EcsPoolConfig>, ConfigError> {
        self.pools_of_kind(|index, pool, settings| match settings {
            ProviderSettings::Ecs(settings) => {
                Some(ecs_pool_config(index, pool, settings, defaults))
            }
            _ => None,
        })
    }

    /// The provider settings of every EKS pool of `stack`.
    pub fn eks_pools(&self, stack: &str) -> Result<BTreeMap<String, EksPoolConfig>, ConfigError> {
        self.pools_of_kind(|index, pool, settings| match settings {
            ProviderSettings::Eks(settings) => Some(eks_pool_config(index, pool, settings, stack)),
            _ => None,
        })
    }

    /// The provider settings of every Lambda pool of `stack`, their JIT configs encrypted
    /// with `kms_key` (none: the account's key for SSM).
    pub fn lambda_pools(
        &self,
        stack: &str,
        kms_key: Option<&str>,
    ) -> Result<BTreeMap<String, LambdaPoolConfig>, ConfigError> {
        self.pools_of_kind(|index, pool, settings| match settings {
            ProviderSettings::Lambda(settings) => {
                Some(lambda_pool_config(index, pool, settings, stack, kms_key))
            }
            _ => None,
        })
    }

    /// The task definitions the stack registers for `pools` (what [`Document::ecs_pools`]
    /// gave): one per ECS pool that names none, by pool.
    pub fn ecs_task_definitions(
        &self,
        pools: &BTreeMap<String, EcsPoolConfig>,
        defaults: &EcsDefaults,
    ) -> BTreeMap<String, RunnerTaskDefinition> {
        self.flow
            .pools
            .iter()
            .filter_map(|pool| {
                let config = pools.get(&pool.name)?;
                Some((
                    pool.name.clone(),
                    ecs_default_task_definition(pool, config, defaults)?,
                ))
            })
            .collect()
    }
}

fn invalid(path: &str, message: &str) -> ConfigError {
    ConfigError::Invalid(vec![Problem::new(path, message)])
}

/// A pool's `provider` table, or the path within it of what is wrong and why. The kind is read
/// first and the rest as that kind's settings: serde buffers an internally tagged enum's
/// content, which would lose the path to the field at fault.
fn provider_settings(value: Value) -> Result<ProviderSettings, (String, String)> {
    fn settings<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
        serde_path_to_error::deserialize(value)
            .map_err(|error| (path_text(error.path()), error.inner().to_string()))
    }
    let Value::Object(mut table) = value else {
        return settings::<ProviderSettings>(value);
    };
    let kind = match table.remove("kind") {
        Some(Value::String(kind)) => kind,
        other => {
            // No kind, or not a string: serde's own message says which kinds there are.
            if let Some(kind) = other {
                table.insert("kind".to_string(), kind);
            }
            return settings::<ProviderSettings>(Value::Object(table));
        }
    };
    let rest = Value::Object(table);
    match kind.as_str() {
        "local" => settings(rest).map(ProviderSettings::Local),
        "ec2" => settings(rest).map(ProviderSettings::Ec2),
        "ecs" => settings(rest).map(ProviderSettings::Ecs),
        "eks" => settings(rest).map(ProviderSettings::Eks),
        "lambda" => settings(rest).map(ProviderSettings::Lambda),
        _ => {
            let mut table = match rest {
                Value::Object(table) => table,
                _ => serde_json::Map::new(),
            };
            table.insert("kind".to_string(), Value::String(kind));
            settings::<ProviderSettings>(Value::Object(table))
                .map_err(|(_, message)| ("kind".to_string(), message))
        }
    }
}

/// `serde_path_to_error` writes the document's root as `.`.
fn path_text(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." { String::new() } else { text }
}

/// Removes each pool's `provider` (the job flow does not know it) and reads it; a pool that
/// names none gets the host's default. One entry per pool, `None` where the provider is
/// unreadable (its problem is recorded).
fn take_providers(
    root: &mut Map<String, Value>,
    host: Host,
    problems: &mut Vec<Problem>,
) -> Vec<Option<ProviderSettings>> {
    let Some(pools) = root.get_mut("pools").and_then(Value::as_array_mut) else {
        // Not a list: the job flow's own reading says so.
        return Vec::new();
    };
    let mut providers = Vec::with_capacity(pools.len());
    for (index, pool) in pools.iter_mut().enumerate() {
        let Some(pool) = pool.as_object_mut() else {
            providers.push(None);
            continue;
        };
        if pool.remove("ec2").is_some() {
            problems.push(Problem::new(
                format!("pools[{index}].ec2"),
                "a pool's EC2 settings are its provider: write \"provider\": {\"kind\": \
                 \"ec2\", …} (in TOML, [pools.provider] with kind = \"ec2\")",
            ));
        }
        let provider = match pool.remove("provider") {
            None => Some(ProviderSettings::defaults_of(host.default_provider())),
            Some(mut value) => {
                if let Some(settings) = value.as_object_mut() {
                    for (key, now) in MOVED_PROVIDER_KEYS {
                        if settings.remove(*key).is_some() {
                            problems.push(Problem::new(
                                format!("pools[{index}].provider.{key}"),
                                format!("this setting belongs to the pool now: use {now}"),
                            ));
                        }
                    }
                }
                match provider_settings(value) {
                    Ok(provider) => Some(provider),
                    Err((inner, message)) => {
                        let path = if inner.is_empty() {
                            format!("pools[{index}].provider")
                        } else {
                            format!("pools[{index}].provider.{inner}")
                        };
                        problems.push(Problem::new(path, message));
                        None
                    }
                }
            }
        };
        providers.push(provider);
    }
    providers
}
