use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The hosts runway can launch runners on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Ec2,
    Ecs,
    Eks,
    Lambda,
    Local,
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProviderKind::Ec2 => "ec2",
            ProviderKind::Ecs => "ecs",
            ProviderKind::Eks => "eks",
            ProviderKind::Lambda => "lambda",
            ProviderKind::Local => "local",
        })
    }
}

/// A GitHub just-in-time runner configuration: a credential that registers one runner.
///
/// Its `Debug` and `Display` never show the value; read it with [`JitConfig::expose`] only
/// where it is handed to the runner.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JitConfig(String);

impl JitConfig {
    pub fn new(encoded: impl Into<String>) -> JitConfig {
        JitConfig(encoded.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for JitConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JitConfig(<redacted, {} bytes>)", self.0.len())
    }
}

impl fmt::Display for JitConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted JIT config>")
    }
}

/// Which market a runner was launched in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capacity {
    Spot,
    OnDemand,
}

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capacity::Spot => "spot",
            Capacity::OnDemand => "on-demand",
        })
    }
}

/// Which markets a launch may use, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CapacityPreference {
    /// Spot across every instance type and subnet, then on-demand across the same list.
    #[default]
    SpotThenOnDemand,
    /// Spot only: no capacity is an error rather than an on-demand bill.
    SpotOnly,
    /// On-demand only.
    OnDemand,
}

impl CapacityPreference {
    /// The markets to try, in order.
    pub fn markets(self) -> &'static [Capacity] {
        match self {
            CapacityPreference::SpotThenOnDemand => &[Capacity::Spot, Capacity::OnDemand],
            CapacityPreference::SpotOnly => &[Capacity::Spot],
            CapacityPreference::OnDemand => &[Capacity::OnDemand],
        }
    }
}

/// Per-launch changes to a pool's settings (from the routing policy or the job's labels).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchOverrides {
    /// Replaces the pool's instance types (in order of preference).
    pub instance_types: Option<Vec<String>>,
    /// An AMI id (EC2) replacing the pool's image; ECS refuses any image but its task
    /// definition's.
    pub image: Option<String>,
    /// Root disk size in GiB (ECS on Fargate: the task's ephemeral storage).
    pub disk_gib: Option<u32>,
    pub capacity: Option<CapacityPreference>,
}

/// Everything a provider needs to start one runner.
#[derive(Debug, Clone)]
pub struct LaunchRequest {
    /// The Step Functions execution that owns the runner (its name).
    pub execution: String,
    pub pool: String,
    /// The runner's name in GitHub, unique within runway.
    pub runner_name: String,
    pub labels: Vec<String>,
    pub jit_config: JitConfig,
    pub overrides: LaunchOverrides,
}

/// A runner that was started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launched {
    pub runner_name: String,
    pub provider: ProviderKind,
    /// EC2 instance id, ECS task ARN, or `pid-<n>` for a local process.
    pub instance_id: String,
    pub instance_type: Option<String>,
    pub subnet_id: Option<String>,
    pub capacity: Option<Capacity>,
    pub launched_at: DateTime<Utc>,
}

/// What [`crate::Provider::terminate`] did. Both variants are success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Terminated {
    /// These instances (processes) were told to stop.
    Stopped { instance_ids: Vec<String> },
    /// Nothing of that runner was left running.
    AlreadyGone,
}

/// A live runner the provider launched, as the reaper sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedRunner {
    pub provider: ProviderKind,
    pub execution: String,
    pub runner_name: String,
    pub pool: Option<String>,
    pub instance_id: String,
    pub launched_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jit_config_never_shows_in_debug_or_display() {
        let config = JitConfig::new("c2VjcmV0LWppdC1jb25maWc=");
        let request = LaunchRequest {
            execution: "e".into(),
            pool: "p".into(),
            runner_name: "r".into(),
            labels: vec![],
            jit_config: config.clone(),
            overrides: LaunchOverrides::default(),
        };
        for shown in [
            format!("{config:?}"),
            format!("{config}"),
            format!("{request:?}"),
            format!("{request:#?}"),
        ] {
            assert!(!shown.contains("c2VjcmV0"), "{shown}");
        }
        assert_eq!(config.expose(), "c2VjcmV0LWppdC1jb25maWc=");
    }

    #[test]
    fn capacity_preferences_try_markets_in_order() {
        assert_eq!(
            CapacityPreference::default().markets(),
            &[Capacity::Spot, Capacity::OnDemand]
        );
        assert_eq!(CapacityPreference::SpotOnly.markets(), &[Capacity::Spot]);
        assert_eq!(
            CapacityPreference::OnDemand.markets(),
            &[Capacity::OnDemand]
        );
    }
}
