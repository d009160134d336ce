//! The webhook function's settings and wiring.
//!
//! The webhook verifies deliveries, starts one execution per queued job and hands
//! `in_progress` / `completed` events to the executions waiting for them. That takes the
//! webhook secret, `StartExecution`, the store's watch and runner records and the task
//! callbacks, and nothing else: it never reads the GitHub credential, the configuration
//! document or the policies, so its role is not granted them either.

use std::fmt;
use std::sync::Arc;

use aws_config::SdkConfig;
use runway_clock::SystemClock;
use runway_jobflow::{JobEventRelay, SfnCallbacks};
use runway_store::DynamoStore;
use runway_webhook::{
    Delivery, InstallationFilter, Intake, IntakeConfig, IntakeResponse, SfnExecutionStarter,
    WebhookSecrets, parse_installation_ids,
};
use tracing::info;

use crate::SetupError;
use crate::app_secret::{AppIntake, AppSecret, IntakeMaker};
use crate::secrets::credential_value;
use crate::settings::{
    CredentialSource, GITHUB_APP_ID_ENV, GITHUB_APP_SECRET_ENV, GITHUB_INSTALLATION_ID_ENV,
    TABLE_ENV, setting,
};

/// The job state machine the webhook starts executions of (required).
pub const JOB_STATE_MACHINE_ENV: &str = "RUNWAY_JOB_STATE_MACHINE_ARN";
/// Where the webhook secret is stored: an SSM SecureString's name, or a Secrets Manager
/// secret's ARN (the rule of [`CredentialSource::from_location`]). While rotating, the stored
/// value is `{"current": "NEW", "previous": "OLD"}` ([`WebhookSecrets::from_stored`]).
pub const WEBHOOK_SECRET_PARAMETER_ENV: &str = "RUNWAY_WEBHOOK_SECRET_PARAMETER";

/// Where the webhook's secrets come from.
#[derive(Clone, PartialEq, Eq)]
pub enum WebhookSecretSource {
    /// An SSM parameter or a Secrets Manager secret holding the secret, or the rotation
    /// document with the current and the previous secret.
    Stored(CredentialSource),
    /// The secrets themselves (`RUNWAY_WEBHOOK_SECRET`, `RUNWAY_WEBHOOK_SECRET_PREVIOUS`), for
    /// `sam local invoke`.
    Given {
        current: String,
        previous: Option<String>,
    },
    /// The webhook secret of the App the setup page made, in this secret (its ARN); until
    /// setup, deliveries are answered 503 `not_set_up`.
    SetupApp(String),
}

impl fmt::Debug for WebhookSecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebhookSecretSource::Stored(source) => f.debug_tuple("Stored").field(source).finish(),
            WebhookSecretSource::SetupApp(arn) => f.debug_tuple("SetupApp").field(arn).finish(),
            WebhookSecretSource::Given { previous, .. } => f
                .debug_struct("Given")
                .field("current", &"[redacted]")
                .field("previous", &previous.as_ref().map(|_| "[redacted]"))
                .finish(),
        }
    }
}

/// Everything the webhook function reads from its environment besides the intake's own
/// variables (`runway_webhook::env`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    pub table: String,
    pub state_machine_arn: String,
    pub secret: WebhookSecretSource,
    /// With a GitHub App, only its configured installations' events are taken.
    pub installations: InstallationFilter,
}

impl WebhookSettings {
    pub fn from_env() -> Result<WebhookSettings, SetupError> {
        WebhookSettings::from_lookup(&|name| std::env::var(name).ok())
    }

    /// The settings from `lookup` (name → value); empty values count as unset.
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<WebhookSettings, SetupError> {
        let get = |name: &str| setting(lookup, name);
        let required = |name: &str, what: &str| {
            get(name)
                .ok_or_else(|| SetupError::Settings(format!("{name} is not set: set it to {what}")))
        };
        let table = required(TABLE_ENV, "the DynamoDB table of runway's state")?;
        let state_machine_arn = required(JOB_STATE_MACHINE_ENV, "the job state machine's ARN")?;
        let previous = get(runway_webhook::env::PREVIOUS_SECRET_ENV);
        let secret = match (get(WEBHOOK_SECRET_PARAMETER_ENV), previous) {
            (Some(_), Some(_)) => {
                return Err(SetupError::Settings(format!(
                    "{} is set, but the previous secret belongs in the same store as the \
                     current one: store {{\"current\": \"NEW\", \"previous\": \"OLD\"}} at \
                     {WEBHOOK_SECRET_PARAMETER_ENV} and unset it",
                    runway_webhook::env::PREVIOUS_SECRET_ENV
                )));
            }
            (Some(location), None) => {
                WebhookSecretSource::Stored(CredentialSource::from_location(&location))
            }
            (None, previous) => match lookup(runway_webhook::env::SECRET_ENV) {
                Some(current) if !current.trim().is_empty() => {
                    WebhookSecretSource::Given { current, previous }
                }
                _ if get(GITHUB_APP_SECRET_ENV).is_some() => {
                    WebhookSecretSource::SetupApp(get(GITHUB_APP_SECRET_ENV).unwrap_or_default())
                }
                _ => {
                    return Err(SetupError::Settings(format!(
                        "no webhook secret: set {WEBHOOK_SECRET_PARAMETER_ENV} to the SSM \
                         SecureString or the Secrets Manager secret ARN holding it (or {} to \
                         the secret itself), or {GITHUB_APP_SECRET_ENV} to the secret the setup \
                         page stores the App in",
                        runway_webhook::env::SECRET_ENV
                    )));
                }
            },
        };
        let installations = match get(GITHUB_APP_ID_ENV) {
            None => InstallationFilter::Any,
            Some(_) => {
                let raw = get(GITHUB_INSTALLATION_ID_ENV).unwrap_or_default();
                let ids = parse_installation_ids(&raw).map_err(|reason| {
                    SetupError::Settings(format!(
                        "{GITHUB_INSTALLATION_ID_ENV}={raw:?}: {reason}; with {GITHUB_APP_ID_ENV} \
                         set, give the App installation ids runway serves, comma-separated"
                    ))
                })?;
                InstallationFilter::only(ids)
            }
        };
        Ok(WebhookSettings {
            table,
            state_machine_arn,
            secret,
            installations,
        })
    }
}

/// The webhook secrets from where `source` says they are. A stored value may be the secret
/// or the rotation document; surrounding whitespace (the newline a `file://` value or an
/// editor leaves) is not part of a secret.
pub async fn webhook_secrets(
    aws: &SdkConfig,
    source: &WebhookSecretSource,
) -> Result<WebhookSecrets, SetupError> {
    match source {
        WebhookSecretSource::Stored(stored) => {
            let text = credential_value(aws, stored).await?;
            WebhookSecrets::from_stored(&text).map_err(|error| {
                SetupError::Settings(format!("the webhook secret at {stored:?}: {error}"))
            })
        }
        WebhookSecretSource::SetupApp(arn) => Err(SetupError::Settings(format!(
            "the webhook secret is the setup App's, in {arn}: it is read per delivery \
             (build_webhook)"
        ))),
        WebhookSecretSource::Given { current, previous } => {
            let given = |error: runway_webhook::SecretError| {
                SetupError::Settings(format!("{}: {error}", runway_webhook::env::SECRET_ENV))
            };
            let secrets = WebhookSecrets::new(current.as_bytes()).map_err(given)?;
            match previous {
                Some(previous) => secrets.with_previous(previous.as_bytes()).map_err(given),
                None => Ok(secrets),
            }
        }
    }
}

/// The webhook intake on AWS: executions started on the job state machine, job events
/// relayed through the store and the task callbacks. `lookup` gives the intake's own
/// variables (the runner label, allow-lists, body limit, call budget). For the setup App's
/// secret, use [`build_webhook`].
pub async fn build_intake(
    settings: &WebhookSettings,
    aws: &SdkConfig,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Intake, SetupError> {
    let secrets = webhook_secrets(aws, &settings.secret).await?;
    let rotating = secrets.is_rotating();
    let make = intake_maker(settings, aws, lookup)?;
    info!(
        table = %settings.table,
        installations = ?settings.installations,
        rotating,
        "webhook intake ready"
    );
    Ok(make(secrets))
}

/// What makes the intake for a webhook secret: the configuration read once, the secret given
/// each time.
fn intake_maker(
    settings: &WebhookSettings,
    aws: &SdkConfig,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IntakeMaker, SetupError> {
    // Replaced by each secret given; the configuration around it is read here, once.
    let placeholder = WebhookSecrets::new("placeholder")
        .map_err(|error| SetupError::Settings(error.to_string()))?;
    let mut config = IntakeConfig::with_secrets_from_lookup(placeholder, lookup)
        .map_err(|error| SetupError::Settings(error.to_string()))?;
    config.installations = settings.installations.clone();
    let sfn = aws_sdk_sfn::Client::new(aws);
    let starter = Arc::new(SfnExecutionStarter::new(
        sfn.clone(),
        settings.state_machine_arn.clone(),
    ));
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(aws),
        settings.table.clone(),
        SystemClock::shared(),
    );
    let relay = Arc::new(JobEventRelay::new(
        Arc::new(store),
        Arc::new(SfnCallbacks::new(sfn)),
    ));
    Ok(Arc::new(move |secrets: WebhookSecrets| {
        let mut config = config.clone();
        config.secrets = secrets;
        Intake::new(config, starter.clone()).with_job_events(relay.clone())
    }))
}

/// The webhook: an intake with the configured secret, or, on the setup App's secret, one
/// that answers 503 `not_set_up` until setup and then checks deliveries with the App's
/// webhook secret.
#[derive(Debug, Clone)]
pub enum Webhook {
    Ready(Intake),
    SetupApp(AppIntake),
}

impl Webhook {
    /// Handles a delivery; `setup_url` is where a pending setup is done.
    pub async fn handle(&self, delivery: Delivery, setup_url: &str) -> IntakeResponse {
        match self {
            Webhook::Ready(intake) => intake.handle(delivery).await,
            Webhook::SetupApp(intake) => intake.handle(delivery, setup_url).await,
        }
    }
}

/// The webhook from `settings` ([`build_intake`], or the setup App's [`AppIntake`]).
pub async fn build_webhook(
    settings: &WebhookSettings,
    aws: &SdkConfig,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Webhook, SetupError> {
    build_webhook_with(settings, aws, lookup, crate::app_secret::APP_SECRET_TTL).await
}

/// [`build_webhook`] with the App secret trusted for `ttl`.
pub async fn build_webhook_with(
    settings: &WebhookSettings,
    aws: &SdkConfig,
    lookup: &dyn Fn(&str) -> Option<String>,
    ttl: std::time::Duration,
) -> Result<Webhook, SetupError> {
    match &settings.secret {
        WebhookSecretSource::SetupApp(arn) => {
            let secret =
                AppSecret::with_ttl(aws_sdk_secretsmanager::Client::new(aws), arn.clone(), ttl);
            info!(secret = %arn, "webhook on the setup App's secret");
            Ok(Webhook::SetupApp(AppIntake::new(
                secret,
                intake_maker(settings, aws, lookup)?,
            )))
        }
        _ => Ok(Webhook::Ready(build_intake(settings, aws, lookup).await?)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<WebhookSettings, SetupError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        WebhookSettings::from_lookup(&|name| env.get(name).cloned())
    }

    const BASE: [(&str, &str); 3] = [
        (TABLE_ENV, "runway"),
        (
            JOB_STATE_MACHINE_ENV,
            "arn:aws:states:us-east-1:1:stateMachine:runway-job",
        ),
        (
            WEBHOOK_SECRET_PARAMETER_ENV,
            "/runway/github/webhook-secret",
        ),
    ];

    #[test]
    fn the_webhook_needs_no_github_credential_configuration_or_policy() {
        let read = settings(&BASE).unwrap();
        assert_eq!(
            read.secret,
            WebhookSecretSource::Stored(CredentialSource::Parameter(
                "/runway/github/webhook-secret".into()
            ))
        );
        assert_eq!(
            read.installations,
            InstallationFilter::Any,
            "a token: no filter"
        );
    }

    #[test]
    fn an_app_deployment_takes_only_its_installations() {
        let mut pairs = BASE.to_vec();
        pairs.push((GITHUB_APP_ID_ENV, "12345"));
        let error = settings(&pairs).unwrap_err().to_string();
        assert!(error.contains(GITHUB_INSTALLATION_ID_ENV), "{error}");
        pairs.push((GITHUB_INSTALLATION_ID_ENV, "23154469, 42"));
        assert_eq!(
            settings(&pairs).unwrap().installations,
            InstallationFilter::only([42, 23154469])
        );
        pairs.pop();
        pairs.push((GITHUB_INSTALLATION_ID_ENV, "seven"));
        let error = settings(&pairs).unwrap_err().to_string();
        assert!(
            error.contains("\"seven\" is not an installation id"),
            "{error}"
        );
    }

    #[test]
    fn a_stored_secret_keeps_its_previous_secret_in_the_same_store() {
        let mut pairs = BASE.to_vec();
        pairs.push((runway_webhook::env::PREVIOUS_SECRET_ENV, "old"));
        let error = settings(&pairs).unwrap_err().to_string();
        assert!(error.contains("same store"), "{error}");

        let given = settings(&[
            (TABLE_ENV, "t"),
            (JOB_STATE_MACHINE_ENV, "arn"),
            (runway_webhook::env::SECRET_ENV, "new"),
            (runway_webhook::env::PREVIOUS_SECRET_ENV, "old"),
        ])
        .unwrap();
        let shown = format!("{:?}", given.secret);
        assert!(!shown.contains("new") && !shown.contains("old"), "{shown}");

        let error = settings(&[(TABLE_ENV, "t"), (JOB_STATE_MACHINE_ENV, "arn")])
            .unwrap_err()
            .to_string();
        assert!(error.contains(WEBHOOK_SECRET_PARAMETER_ENV), "{error}");
    }
}
