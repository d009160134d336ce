//! What the Lambda-support integration tests share: a pool configuration and settings read
//! from a given environment.

use std::collections::HashMap;

use runway_lambda_support::{SetupError, StackSettings};

/// One EC2 pool at repository level, as `RUNWAY_CONFIG` carries it.
pub const CONFIG: &str = r#"{
    "github": { "scope": "repository" },
    "pools": [{
        "name": "linux-x64", "labels": ["self-hosted", "k8s"], "max_running": 1,
        "image": "ami-0123456789abcdef0", "instance_types": ["c7g.large"],
        "provider": { "kind": "ec2", "subnets": ["subnet-1"] }
    }]
}"#;

/// The Lambda settings of an environment holding exactly `pairs`.
pub fn settings(pairs: &[(&str, &str)]) -> Result<StackSettings, SetupError> {
    let env: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    StackSettings::from_lookup(&|name| env.get(name).cloned())
}
