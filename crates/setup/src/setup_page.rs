//! The setup function's settings and wiring: `runway_app_setup`'s pages on the stack's two
//! secrets ([`SecretsManagerSetupStore`]), converting manifests on github.com (or the
//! GitHub Enterprise Server the deployer names on the page).

use std::sync::Arc;

use aws_config::SdkConfig;
use runway_app_setup::{GitHubConversion, GitHubSite, SetupConfig, SetupService};

use crate::SetupError;
use crate::settings::{GITHUB_APP_SECRET_ENV, STACK_ENV, setting};
use crate::setup_store::SecretsManagerSetupStore;
use runway_providers::DEFAULT_STACK;

/// The secret holding the one-time setup token (`{"status":"pending","token":"..."}`,
/// generated at deploy). Only the setup function reads it.
pub const SETUP_TOKEN_SECRET_ENV: &str = "RUNWAY_SETUP_TOKEN_SECRET";

/// What the setup function reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupPageSettings {
    pub token_secret: String,
    pub app_secret: String,
    /// Names the suggested App (`runway-STACK`).
    pub stack: String,
}

impl SetupPageSettings {
    pub fn from_env() -> Result<SetupPageSettings, SetupError> {
        SetupPageSettings::from_lookup(&|name| std::env::var(name).ok())
    }

    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SetupPageSettings, SetupError> {
        let required = |name: &str, what: &str| {
            setting(lookup, name)
                .ok_or_else(|| SetupError::Settings(format!("{name} is not set: set it to {what}")))
        };
        Ok(SetupPageSettings {
            token_secret: required(SETUP_TOKEN_SECRET_ENV, "the setup token secret's ARN")?,
            app_secret: required(GITHUB_APP_SECRET_ENV, "the GitHub App secret's ARN")?,
            stack: setting(lookup, STACK_ENV).unwrap_or_else(|| DEFAULT_STACK.to_owned()),
        })
    }

    /// The one line that prints the token document (`{"status":"pending","token":"..."}`);
    /// the page takes the token or the whole document.
    pub fn token_command(&self) -> String {
        format!(
            "aws secretsmanager get-secret-value --secret-id {} --query SecretString --output text",
            self.token_secret
        )
    }

    /// The App's suggested name: GitHub's names are unique and at most 34 characters.
    pub fn app_name(&self) -> String {
        let name = format!("runway-{}", self.stack);
        name.chars().take(34).collect()
    }
}

/// What serves the setup pages of a stack; [`SetupPages::service`] makes the pages for the
/// root a request came in on.
#[derive(Clone)]
pub struct SetupPages {
    settings: SetupPageSettings,
    store: Arc<SecretsManagerSetupStore>,
    conversion: Arc<GitHubConversion>,
}

impl SetupPages {
    pub fn new(settings: SetupPageSettings, aws: &SdkConfig) -> SetupPages {
        let store = SecretsManagerSetupStore::new(
            aws_sdk_secretsmanager::Client::new(aws),
            settings.token_secret.clone(),
            settings.app_secret.clone(),
        );
        SetupPages {
            settings,
            store: Arc::new(store),
            conversion: Arc::new(GitHubConversion::default()),
        }
    }

    /// The pages for `base_url` (`https://API.execute-api.REGION.amazonaws.com`, from the
    /// request: the stack needs no parameter naming its own URL).
    pub fn service(&self, base_url: &str) -> SetupService {
        SetupService::new(
            SetupConfig {
                base_url: base_url.to_owned(),
                site: GitHubSite::github_com(),
                app_name: self.settings.app_name(),
                token_command: self.settings.token_command(),
            },
            self.store.clone(),
            self.conversion.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setup_function_needs_both_secrets() {
        let error = SetupPageSettings::from_lookup(&|_| None)
            .unwrap_err()
            .to_string();
        assert!(error.contains(SETUP_TOKEN_SECRET_ENV), "{error}");
        let settings = SetupPageSettings::from_lookup(&|name| match name {
            SETUP_TOKEN_SECRET_ENV => Some("arn:token".into()),
            GITHUB_APP_SECRET_ENV => Some("arn:app".into()),
            STACK_ENV => Some("a-very-long-stack-name-for-runway-runners".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(settings.app_name().chars().count(), 34);
        assert!(settings.app_name().starts_with("runway-a-very"));
        assert!(settings.token_command().contains("--secret-id arn:token"));
    }
}
