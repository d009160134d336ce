//! The configuration document: the job flow's [`FlowConfig`] plus, inside each pool, the
//! `ec2` settings of the EC2 instances its runners run on.
//!
//! ```json
//! {
//!   "github": { "scope": "organization" },
//!   "pools": [{
//!     "name": "linux-arm64",
//!     "labels": ["self-hosted", "linux", "arm64"],
//!     "image": "ami-0123456789abcdef0",
//!     "instance_types": ["c7g.large", "m7g.large"],
//!     "max_running": 20,
//!     "ec2": { "subnets": ["subnet-1", "subnet-2"], "security_groups": ["sg-1"] }
//!   }]
//! }
//! ```
//!
//! A pool boots its `image` (an AMI id) or, when `ec2.launch_template` is set, that launch
//! template. Subnets, security groups and the instance profile default to the stack's.

use std::collections::BTreeMap;

use runway_jobflow::{FlowConfig, PoolConfig};
use runway_policy_host::Market;
use runway_providers::{CapacityPreference, Ec2PoolConfig, LaunchTemplateRef};
use serde::Deserialize;
use serde_json::Value;

use crate::SetupError;
use crate::settings::RunnerDefaults;

/// A pool's EC2 settings (the `ec2` object of a pool).
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
    pub ssm_prefix: Option<String>,
    pub runner_dir: Option<String>,
    pub runner_user: Option<String>,
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

/// The parsed document.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigDocument {
    pub flow: FlowConfig,
    /// Each pool's EC2 settings, by pool name (every pool has an entry).
    pub ec2: BTreeMap<String, Ec2Settings>,
}

impl ConfigDocument {
    /// Parses and checks the JSON document.
    pub fn from_json(text: &str) -> Result<ConfigDocument, SetupError> {
        ConfigDocument::from_json_for_stack(text, None)
    }

    /// Parses and checks the JSON document of `stack`: unless the document sets
    /// `github.runner_name_prefix`, runner names carry the stack
    /// ([`runway_jobflow::naming::stack_runner_name_prefix`]).
    pub fn from_json_for_stack(
        text: &str,
        stack: Option<&str>,
    ) -> Result<ConfigDocument, SetupError> {
        let mut document: Value = serde_json::from_str(text).map_err(|error| {
            SetupError::Config(format!("the configuration document is not JSON: {error}"))
        })?;
        let Some(object) = document.as_object_mut() else {
            return Err(SetupError::Config(
                "the configuration document must be a JSON object with \"pools\" (and \
                 optionally \"github\", \"router_fallback\", \"throttle_fallback\")"
                    .into(),
            ));
        };
        let mut ec2 = Vec::new();
        if let Some(pools) = object.get_mut("pools") {
            let Some(pools) = pools.as_array_mut() else {
                return Err(SetupError::Config(
                    "\"pools\" must be a list of pool objects".into(),
                ));
            };
            for (index, pool) in pools.iter_mut().enumerate() {
                let name = pool
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("#{}", index + 1));
                let settings = match pool.as_object_mut().and_then(|pool| pool.remove("ec2")) {
                    Some(value) => {
                        serde_json::from_value::<Ec2Settings>(value).map_err(|error| {
                            SetupError::Config(format!("pool {name:?}: ec2: {error}"))
                        })?
                    }
                    None => Ec2Settings::default(),
                };
                ec2.push((name, settings));
            }
        }
        if let Some(stack) = stack {
            let github = object
                .entry("github")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(github) = github.as_object_mut() {
                github.entry("runner_name_prefix").or_insert_with(|| {
                    Value::String(runway_jobflow::naming::stack_runner_name_prefix(stack))
                });
            }
        }
        let flow: FlowConfig = serde_json::from_value(document)
            .map_err(|error| SetupError::Config(format!("the configuration document: {error}")))?;
        flow.validate()
            .map_err(|error| SetupError::Config(error.to_string()))?;
        if flow.pools.is_empty() {
            return Err(SetupError::Config(
                "the configuration document has no pools: add at least one to \"pools\"".into(),
            ));
        }
        Ok(ConfigDocument {
            flow,
            ec2: ec2.into_iter().collect(),
        })
    }

    /// The provider settings of every pool, with the stack's defaults filled in.
    pub fn ec2_pools(
        &self,
        defaults: &RunnerDefaults,
    ) -> Result<BTreeMap<String, Ec2PoolConfig>, SetupError> {
        self.flow
            .pools
            .iter()
            .map(|pool| {
                let settings = self.ec2.get(&pool.name).cloned().unwrap_or_default();
                Ok((
                    pool.name.clone(),
                    ec2_pool_config(pool, &settings, defaults)?,
                ))
            })
            .collect()
    }
}

fn ec2_pool_config(
    pool: &PoolConfig,
    settings: &Ec2Settings,
    defaults: &RunnerDefaults,
) -> Result<Ec2PoolConfig, SetupError> {
    let name = &pool.name;
    let mut config = match (&settings.launch_template, &pool.image) {
        (Some(template), _) => {
            let reference = match (&template.id, &template.name) {
                (Some(id), None) => LaunchTemplateRef::Id(id.clone()),
                (None, Some(template_name)) => LaunchTemplateRef::Name(template_name.clone()),
                _ => {
                    return Err(SetupError::Config(format!(
                        "pool {name:?}: ec2.launch_template needs exactly one of \"id\" or \"name\""
                    )));
                }
            };
            let mut config =
                Ec2PoolConfig::from_launch_template(reference, template.version.clone());
            config.instance_types = pool.instance_types.clone();
            config
        }
        (None, Some(image)) => {
            if pool.instance_types.is_empty() {
                return Err(SetupError::Config(format!(
                    "pool {name:?} boots image {image} but lists no instance_types: name at \
                     least one (e.g. [\"c7g.large\"]) or use ec2.launch_template"
                )));
            }
            Ec2PoolConfig::from_ami(image.clone(), pool.instance_types.clone())
        }
        (None, None) => {
            return Err(SetupError::Config(format!(
                "pool {name:?} has nothing to boot: set \"image\" to an AMI id (ami-...) or \
                 ec2.launch_template"
            )));
        }
    };
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
    if let Some(prefix) = &settings.ssm_prefix {
        config.ssm_prefix = Some(prefix.clone());
    }
    if let Some(dir) = &settings.runner_dir {
        config.runner_dir = dir.clone();
    }
    if let Some(user) = &settings.runner_user {
        config.runner_user = user.clone();
    }
    if let Some(limit) = settings.imds_hop_limit {
        config.imds_hop_limit = limit;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use runway_providers::ImageSource;

    use super::*;

    const GOOD: &str = r#"{
        "github": { "scope": "organization", "runner_name_prefix": "ci" },
        "router_fallback": { "pool": "arm" },
        "pools": [
            { "name": "arm", "labels": ["self-hosted", "arm64"], "image": "ami-0123456789abcdef0",
              "instance_types": ["c7g.large"], "max_running": 3, "market": "on-demand",
              "ec2": { "subnets": ["subnet-1"], "tags": { "team": "ci" }, "imds_hop_limit": 2 } },
            { "name": "x64", "labels": ["self-hosted", "x64"],
              "ec2": { "launch_template": { "name": "runner-x64", "version": "4" },
                       "capacity": "spot-only" } }
        ]
    }"#;

    fn defaults() -> RunnerDefaults {
        RunnerDefaults {
            instance_profile: Some("runway-runner".into()),
            subnets: vec!["subnet-default".into()],
            security_groups: vec!["sg-default".into()],
        }
    }

    #[test]
    fn a_good_document_gives_the_flow_and_every_pools_ec2_settings() {
        let document = ConfigDocument::from_json(GOOD).unwrap();
        assert_eq!(document.flow.pools.len(), 2);
        assert_eq!(document.flow.github.runner_name_prefix, "ci");
        assert_eq!(document.flow.pools[0].max_running, 3);

        let pools = document.ec2_pools(&defaults()).unwrap();
        let arm = &pools["arm"];
        assert_eq!(arm.image, ImageSource::Ami("ami-0123456789abcdef0".into()));
        assert_eq!(arm.instance_types, ["c7g.large"]);
        assert_eq!(arm.subnets, ["subnet-1"], "the pool's own subnets win");
        assert_eq!(arm.security_groups, ["sg-default"], "the stack's default");
        assert_eq!(arm.instance_profile.as_deref(), Some("runway-runner"));
        assert_eq!(arm.capacity, CapacityPreference::OnDemand, "from market");
        assert_eq!(arm.imds_hop_limit, 2);
        assert_eq!(arm.extra_tags["team"], "ci");

        let x64 = &pools["x64"];
        assert_eq!(
            x64.image,
            ImageSource::LaunchTemplate {
                template: LaunchTemplateRef::Name("runner-x64".into()),
                version: Some("4".into()),
            }
        );
        assert_eq!(x64.capacity, CapacityPreference::SpotOnly);
        assert_eq!(x64.subnets, ["subnet-default"]);
    }

    fn error_of(text: &str) -> String {
        match ConfigDocument::from_json(text) {
            Ok(document) => match document.ec2_pools(&defaults()) {
                Ok(_) => panic!("accepted: {text}"),
                Err(error) => error.to_string(),
            },
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn bad_documents_say_what_to_fix() {
        let cases = [
            ("not json", "not JSON"),
            ("[1]", "must be a JSON object"),
            (r#"{"pools": {}}"#, "must be a list"),
            (r#"{"pools": []}"#, "no pools"),
            (r#"{"poolz": []}"#, "unknown field `poolz`"),
            (
                r#"{"pools": [{"name": "a", "labels": ["x"], "image": "ami-1", "instance_types": ["t4g.small"], "ec2": {"subnet": "s"}}]}"#,
                "pool \"a\": ec2: unknown field `subnet`",
            ),
            (
                r#"{"pools": [{"name": "a", "labels": ["x"]}]}"#,
                "pool \"a\" has nothing to boot",
            ),
            (
                r#"{"pools": [{"name": "a", "labels": ["x"], "image": "ami-1"}]}"#,
                "lists no instance_types",
            ),
            (
                r#"{"pools": [{"name": "a", "labels": ["x"], "ec2": {"launch_template": {"id": "lt-1", "name": "n"}}}]}"#,
                "exactly one of \"id\" or \"name\"",
            ),
            (
                r#"{"pools": [{"name": "a", "labels": [], "image": "ami-1", "instance_types": ["t4g.small"]}]}"#,
                "needs labels",
            ),
            (
                r#"{"pools": [{"name": "a", "labels": ["x"], "image": "ami-1", "instance_types": ["t"], "max_running": 0}]}"#,
                "max_running = 0",
            ),
        ];
        for (text, expected) in cases {
            let error = error_of(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    proptest::proptest! {
        /// Whatever the text, parsing answers (never panics), and an accepted document
        /// has pools.
        #[test]
        fn parsing_never_panics(text in "\\PC{0,200}") {
            if let Ok(document) = ConfigDocument::from_json(&text) {
                proptest::prop_assert!(!document.flow.pools.is_empty());
            }
        }
    }
}
