//! Intake configuration from environment variables (the Lambda and `runway local`).

use std::time::Duration;

use crate::filter::JobFilter;
use crate::intake::IntakeConfig;
use crate::signature::{SecretError, WebhookSecrets};

/// The webhook secret (required).
pub const SECRET_ENV: &str = "RUNWAY_WEBHOOK_SECRET";
/// The previous secret, accepted too while a rotation is in progress (optional).
pub const PREVIOUS_SECRET_ENV: &str = "RUNWAY_WEBHOOK_SECRET_PREVIOUS";
/// The label jobs must carry (default `self-hosted`).
pub const RUNNER_LABEL_ENV: &str = "RUNWAY_RUNNER_LABEL";
/// Comma-separated owners (organizations or users) whose jobs are taken (default: all).
pub const ALLOWED_OWNERS_ENV: &str = "RUNWAY_ALLOWED_OWNERS";
/// Comma-separated `owner/name` repositories whose jobs are taken (default: all).
pub const ALLOWED_REPOSITORIES_ENV: &str = "RUNWAY_ALLOWED_REPOSITORIES";
/// The largest body accepted, in bytes (default 1 MiB).
pub const MAX_BODY_BYTES_ENV: &str = "RUNWAY_WEBHOOK_MAX_BODY_BYTES";
/// The budget for the engine call, in milliseconds (default 8000).
pub const CALL_TIMEOUT_MS_ENV: &str = "RUNWAY_WEBHOOK_CALL_TIMEOUT_MS";

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{SECRET_ENV} is not set: set it to the webhook secret configured in GitHub")]
    MissingSecret,
    #[error("{0}: set {SECRET_ENV} (and {PREVIOUS_SECRET_ENV}) to non-empty secrets")]
    Secret(#[from] SecretError),
    #[error("{name}={value:?} is not a positive whole number")]
    NotANumber { name: &'static str, value: String },
}

/// The webhook secrets from the environment, or `None` when [`SECRET_ENV`] is unset.
pub fn secrets_from_env() -> Result<Option<WebhookSecrets>, ConfigError> {
    secrets_from(&|name| std::env::var(name).ok())
}

fn secrets_from(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<WebhookSecrets>, ConfigError> {
    let Some(current) = lookup(SECRET_ENV) else {
        return Ok(None);
    };
    let mut secrets = WebhookSecrets::new(current)?;
    if let Some(previous) = lookup(PREVIOUS_SECRET_ENV).filter(|p| !p.is_empty()) {
        secrets = secrets.with_previous(previous)?;
    }
    Ok(Some(secrets))
}

impl IntakeConfig {
    /// The configuration from the process environment (see the `*_ENV` constants).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// The configuration from `lookup` (an environment: name → value).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let secrets = secrets_from(lookup)?.ok_or(ConfigError::MissingSecret)?;
        IntakeConfig::with_secrets_from_lookup(secrets, lookup)
    }

    /// The configuration from `lookup` with `secrets` read elsewhere (a secret store):
    /// [`SECRET_ENV`] and [`PREVIOUS_SECRET_ENV`] are not read.
    pub fn with_secrets_from_lookup(
        secrets: WebhookSecrets,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config = IntakeConfig::new(secrets);
        config.filter = JobFilter::from_lookup(lookup);
        if let Some(max) = number(lookup, MAX_BODY_BYTES_ENV)? {
            config.max_body_bytes = usize::try_from(max).unwrap_or(usize::MAX);
        }
        if let Some(ms) = number(lookup, CALL_TIMEOUT_MS_ENV)? {
            config.call_timeout = Duration::from_millis(ms);
        }
        Ok(config)
    }
}

impl JobFilter {
    /// The filter from `lookup` (an environment: name → value): [`RUNNER_LABEL_ENV`],
    /// [`ALLOWED_OWNERS_ENV`] and [`ALLOWED_REPOSITORIES_ENV`]. The reaper reads the same
    /// variables, so it takes on exactly the jobs the intake takes on.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> JobFilter {
        let mut filter = JobFilter::default();
        if let Some(label) = lookup(RUNNER_LABEL_ENV).filter(|l| !l.trim().is_empty()) {
            filter = filter.with_runner_label(label.trim());
        }
        if let Some(owners) = lookup(ALLOWED_OWNERS_ENV) {
            filter = filter.allow_owners(list(&owners));
        }
        if let Some(repositories) = lookup(ALLOWED_REPOSITORIES_ENV) {
            filter = filter.allow_repositories(list(&repositories));
        }
        filter
    }
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

fn number(
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<u64>, ConfigError> {
    let Some(value) = lookup(name) else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(ConfigError::NotANumber { name, value }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<IntakeConfig, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        IntakeConfig::from_lookup(&move |name| env.get(name).cloned())
    }

    #[test]
    fn defaults_need_only_the_secret() {
        assert_eq!(config(&[]).unwrap_err(), ConfigError::MissingSecret);
        let cfg = config(&[(SECRET_ENV, "s")]).unwrap();
        assert_eq!(cfg.filter, JobFilter::default());
        assert_eq!(cfg.max_body_bytes, crate::intake::DEFAULT_MAX_BODY_BYTES);
        assert_eq!(cfg.call_timeout, crate::intake::DEFAULT_CALL_TIMEOUT);
    }

    #[test]
    fn every_setting_is_read() {
        let cfg = config(&[
            (SECRET_ENV, "new"),
            (PREVIOUS_SECRET_ENV, "old"),
            (RUNNER_LABEL_ENV, " runway "),
            (ALLOWED_OWNERS_ENV, "octo-org, other,"),
            (ALLOWED_REPOSITORIES_ENV, "a/b"),
            (MAX_BODY_BYTES_ENV, "2048"),
            (CALL_TIMEOUT_MS_ENV, "500"),
        ])
        .unwrap();
        assert_eq!(
            cfg.filter,
            JobFilter::default()
                .with_runner_label("runway")
                .allow_owners(["octo-org", "other"])
                .allow_repositories(["a/b"])
        );
        assert_eq!(cfg.max_body_bytes, 2048);
        assert_eq!(cfg.call_timeout, Duration::from_millis(500));
        let body = b"{}";
        let old = crate::signature::sign_with(b"old", body);
        assert!(cfg.secrets.verify(Some(old.as_bytes()), body).is_ok());
    }

    #[test]
    fn bad_values_say_which_variable() {
        let err = config(&[(SECRET_ENV, "s"), (MAX_BODY_BYTES_ENV, "1MB")]).unwrap_err();
        assert!(err.to_string().contains(MAX_BODY_BYTES_ENV), "{err}");
        assert!(config(&[(SECRET_ENV, "")]).is_err());
        assert!(config(&[(SECRET_ENV, "s"), (CALL_TIMEOUT_MS_ENV, "0")]).is_err());
    }
}
