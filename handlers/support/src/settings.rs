//! The Lambda's settings, read from environment variables (set by `template.yaml`).

use std::path::PathBuf;

use runway_github::GITHUB_API_URL;

use crate::SetupError;

/// The DynamoDB table (required).
pub const TABLE_ENV: &str = "RUNWAY_TABLE";
/// The configuration document as JSON (see [`crate::ConfigDocument`]).
pub const CONFIG_ENV: &str = "RUNWAY_CONFIG";
/// An SSM parameter holding the configuration document, used when [`CONFIG_ENV`] is empty.
pub const CONFIG_PARAMETER_ENV: &str = "RUNWAY_CONFIG_PARAMETER";
/// The GitHub App id; empty or unset: a token authenticates instead.
pub const GITHUB_APP_ID_ENV: &str = "RUNWAY_GITHUB_APP_ID";
/// The App installation runway acts for (required with an App id).
pub const GITHUB_INSTALLATION_ID_ENV: &str = "RUNWAY_GITHUB_INSTALLATION_ID";
/// The SSM SecureString holding the App's private key (PEM), or the token.
pub const GITHUB_CREDENTIAL_PARAMETER_ENV: &str = "RUNWAY_GITHUB_CREDENTIAL_PARAMETER";
/// The App's private key itself (for `sam local invoke`; prefer the parameter).
pub const GITHUB_PRIVATE_KEY_ENV: &str = "RUNWAY_GITHUB_PRIVATE_KEY";
/// A token itself (for `sam local invoke`; prefer the parameter).
pub const GITHUB_TOKEN_ENV: &str = "RUNWAY_GITHUB_TOKEN";
/// The GitHub REST API (default `https://api.github.com`).
pub const GITHUB_API_URL_ENV: &str = "RUNWAY_GITHUB_API_URL";
/// The instance profile runner instances launch with, for pools that name none.
pub const RUNNER_INSTANCE_PROFILE_ENV: &str = "RUNWAY_RUNNER_INSTANCE_PROFILE";
/// Comma-separated subnets for pools that name none.
pub const RUNNER_SUBNETS_ENV: &str = "RUNWAY_RUNNER_SUBNETS";
/// Comma-separated security groups for pools that name none.
pub const RUNNER_SECURITY_GROUPS_ENV: &str = "RUNWAY_RUNNER_SECURITY_GROUPS";
/// The router policy file (`.wasm`, or `.cwasm` compiled for this architecture).
pub const ROUTER_POLICY_ENV: &str = "RUNWAY_ROUTER_POLICY";
/// The throttle policy file.
pub const THROTTLE_POLICY_ENV: &str = "RUNWAY_THROTTLE_POLICY";

/// Where the configuration document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The JSON text itself.
    Inline(String),
    /// The name of an SSM parameter holding it.
    Parameter(String),
}

/// Where a GitHub credential comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// The name of an SSM SecureString holding it.
    Parameter(String),
    /// The value itself.
    Value(String),
}

impl std::fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialSource::Parameter(name) => f.debug_tuple("Parameter").field(name).finish(),
            CredentialSource::Value(_) => f.write_str("Value([redacted])"),
        }
    }
}

/// How runway authenticates to GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitHubAuth {
    App {
        app_id: String,
        installation_id: u64,
        private_key: CredentialSource,
    },
    Token(CredentialSource),
}

/// Settings for the runner instances of pools that do not set them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunnerDefaults {
    pub instance_profile: Option<String>,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
}

/// Everything a runway Lambda reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaSettings {
    pub table: String,
    pub config: ConfigSource,
    pub github_api_url: String,
    pub github: GitHubAuth,
    pub runners: RunnerDefaults,
    pub router_policy: Option<PathBuf>,
    pub throttle_policy: Option<PathBuf>,
}

impl LambdaSettings {
    /// The settings from the process environment.
    pub fn from_env() -> Result<LambdaSettings, SetupError> {
        LambdaSettings::from_lookup(&|name| std::env::var(name).ok())
    }

    /// The settings from `lookup` (name → value). Empty values count as unset: CloudFormation
    /// passes empty strings for parameters left at their empty default.
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<LambdaSettings, SetupError> {
        let get = |name: &str| {
            lookup(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let table = get(TABLE_ENV).ok_or_else(|| {
            SetupError::Settings(format!(
                "{TABLE_ENV} is not set: set it to the DynamoDB table of runway's state"
            ))
        })?;
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
                (None, Some(name)) => Ok(CredentialSource::Parameter(name)),
                (None, None) => Err(SetupError::Settings(format!(
                    "no GitHub credential: set {GITHUB_CREDENTIAL_PARAMETER_ENV} to the SSM \
                     SecureString holding it (or {value_env} to the value itself)"
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
                let installation_id = raw.parse::<u64>().map_err(|_| {
                    SetupError::Settings(format!(
                        "{GITHUB_INSTALLATION_ID_ENV}={raw:?} is not a number: give the App \
                         installation's numeric id"
                    ))
                })?;
                GitHubAuth::App {
                    app_id,
                    installation_id,
                    private_key: credential(GITHUB_PRIVATE_KEY_ENV)?,
                }
            }
            None => GitHubAuth::Token(credential(GITHUB_TOKEN_ENV)?),
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
        Ok(LambdaSettings {
            table,
            config,
            github_api_url: get(GITHUB_API_URL_ENV).unwrap_or_else(|| GITHUB_API_URL.to_owned()),
            github,
            runners: RunnerDefaults {
                instance_profile: get(RUNNER_INSTANCE_PROFILE_ENV),
                subnets: list(RUNNER_SUBNETS_ENV),
                security_groups: list(RUNNER_SECURITY_GROUPS_ENV),
            },
            router_policy: get(ROUTER_POLICY_ENV).map(PathBuf::from),
            throttle_policy: get(THROTTLE_POLICY_ENV).map(PathBuf::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<LambdaSettings, SetupError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LambdaSettings::from_lookup(&|name| env.get(name).cloned())
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
    }

    #[test]
    fn an_app_setup_needs_a_numeric_installation_id() {
        let mut pairs = BASE.to_vec();
        pairs.push((GITHUB_APP_ID_ENV, "12345"));
        let error = settings(&pairs).unwrap_err().to_string();
        assert!(error.contains(GITHUB_INSTALLATION_ID_ENV), "{error}");

        pairs.push((GITHUB_INSTALLATION_ID_ENV, "seven"));
        let error = settings(&pairs).unwrap_err().to_string();
        assert!(error.contains("\"seven\" is not a number"), "{error}");

        pairs.pop();
        pairs.push((GITHUB_INSTALLATION_ID_ENV, "7"));
        assert_eq!(
            settings(&pairs).unwrap().github,
            GitHubAuth::App {
                app_id: "12345".into(),
                installation_id: 7,
                private_key: CredentialSource::Parameter("/runway/github/token".into()),
            }
        );
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
            Some(PathBuf::from("/opt/policies/router.cwasm"))
        );
    }

    #[test]
    fn no_credential_is_a_clear_error() {
        let error = settings(&[(TABLE_ENV, "t"), (CONFIG_ENV, "{}")])
            .unwrap_err()
            .to_string();
        assert!(error.contains(GITHUB_CREDENTIAL_PARAMETER_ENV), "{error}");
    }
}
