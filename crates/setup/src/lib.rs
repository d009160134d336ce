//! runway on a deployed stack, built from the function's environment: the settings
//! ([`StackSettings`]; the webhook's own, [`WebhookSettings`]; the reaper's,
//! [`reaper::ReaperSettings`]), the pools document ([`runway_config::Document`], inline or
//! from SSM), the job flow wired to AWS ([`build_flow`]: DynamoDB store, one EC2 provider per
//! pool, GitHub over REST, policies from files or S3, Step Functions callbacks), the webhook
//! intake ([`build_intake`]), the reaper ([`reaper::build_reaper`]) and the AWS actions each
//! function calls ([`permissions`]).
//!
//! Nothing here knows of Lambda: the functions (`handlers/`) decode an invocation, call
//! what this crate built, and encode the answer.
//!
//! Policies are files in the function's package: a Lambda layer mounted at `/opt` (template
//! parameters `PolicyLayerArn`, `RouterPolicyPath`, `ThrottlePolicyPath`). A `.cwasm` compiled
//! ahead of time for arm64 (`runway policy compile`) starts fastest; a `.wasm` component is
//! compiled at cold start. A new policy version is a new layer version and a stack update.
//!
//! A policy can instead be one version of a `.wasm` object in S3
//! (`s3://BUCKET/KEY.wasm?versionId=VERSION`, template parameters `RouterPolicyObject`,
//! `ThrottlePolicyObject`; see [`PolicyLocation`]): a new policy is an upload and a parameter
//! change, with no new layer. GitHub credentials and the webhook secret are SSM SecureStrings
//! or, when their location is a secret's ARN, Secrets Manager secrets ([`read_credential`]).

mod app_secret;
pub mod permissions;
mod policy_source;
pub mod reaper;
mod secrets;
mod settings;
mod setup_page;
mod setup_store;
mod webhook;
mod wiring;

pub use app_secret::{APP_SECRET_TTL, AppIntake, AppSecret, IntakeMaker, SetupAppGitHub};
pub use policy_source::{PolicyLocation, PolicyObjects, S3PolicyObject, default_cache_dir};
pub use secrets::{is_secret_arn, read_credential, read_secret};
pub use settings::*;
pub use setup_page::{SETUP_TOKEN_SECRET_ENV, SetupPageSettings, SetupPages};
pub use setup_store::{SecretsManagerSetupStore, successor_version};
pub use webhook::{
    JOB_STATE_MACHINE_ENV, WEBHOOK_SECRET_PARAMETER_ENV, Webhook, WebhookSecretSource,
    WebhookSettings, build_intake, build_webhook, build_webhook_with, webhook_secrets,
};
pub use wiring::{build_flow, load_aws_config, load_document, policy_engine, read_parameter};

/// Why runway could not be set up from the function's environment. Each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Settings(String),
    #[error("{0}")]
    Config(String),
    #[error(
        "cannot read SSM parameter {name}: {reason}; check that it exists in this region and that the function may read it"
    )]
    Parameter { name: String, reason: String },
    #[error("cannot read Secrets Manager secret {id}: {reason}")]
    Secret { id: String, reason: String },
    #[error("GitHub credentials: {0}")]
    GitHub(String),
    #[error("policy {path}: {reason}")]
    Policy { path: String, reason: String },
}
