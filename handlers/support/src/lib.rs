//! What every runway Lambda shares: its settings from the environment
//! ([`LambdaSettings`]; the webhook's own, [`WebhookSettings`]), the configuration document ([`runway_config::Document`]), the job flow wired
//! to AWS ([`build_flow`]: DynamoDB store, one EC2 provider per pool, GitHub over REST,
//! policies from files or S3, Step Functions callbacks), JSON logs ([`init_tracing`]) and the
//! loop of a step function ([`run_step`]).
//!
//! runway ships one Lambda executable (`handlers/lambda`); each function's `Handler` setting
//! names its entry point ([`Handler`]), and a step's entry point is one line:
//! `run_step(Step::Route)`. The library crates know nothing of Lambda; this crate and the
//! executable are the only places that do.
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

mod handler;
pub mod permissions;
mod policy_source;
pub mod reaper;
mod secrets;
mod settings;
mod webhook;
mod wiring;

use chrono::{DateTime, Utc};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use runway_jobflow::{JobFlow, Step, StepError};
use serde_json::Value;

pub use handler::{HANDLER_ENV, Handler, UnknownHandler};
pub use policy_source::{PolicyLocation, PolicyObjects, S3PolicyObject, default_cache_dir};
pub use secrets::{is_secret_arn, read_credential, read_secret};
pub use settings::*;
pub use webhook::{
    JOB_STATE_MACHINE_ENV, WEBHOOK_SECRET_PARAMETER_ENV, WebhookSecretSource, WebhookSettings,
    build_intake, webhook_secrets,
};
pub use wiring::{build_flow, lambda_engine, load_aws_config, load_document, read_parameter};

/// Why a Lambda could not start. Each says what to fix.
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

/// JSON log lines on stdout, filtered by `RUST_LOG` (default `info`). Lambda adds the time.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_target(false)
        .without_time()
        .try_init();
}

/// The Lambda error for a step failure: Step Functions matches `Retry`/`Catch` on the
/// function's error type, so it is the step error's name (`Runway.Transient`, ...).
pub fn diagnostic(error: StepError) -> Diagnostic {
    Diagnostic {
        error_type: error.error,
        error_message: error.cause,
    }
}

/// GitHub calls end this long before the invocation's deadline, leaving time to report.
pub const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The deadline of the GitHub calls of an invocation whose own deadline is `deadline_ms`
/// (Unix milliseconds, as Lambda gives it): [`DEADLINE_MARGIN`] earlier.
pub fn github_deadline(deadline_ms: u64) -> DateTime<Utc> {
    let margin = chrono::Duration::from_std(DEADLINE_MARGIN).unwrap_or(chrono::Duration::zero());
    i64::try_from(deadline_ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .map_or(DateTime::<Utc>::MAX_UTC, |deadline| deadline - margin)
}

/// Runs `step` on one invocation's payload (the Task state's Parameters, or the Payload of
/// `lambda:invoke.waitForTaskToken`). Its GitHub calls, retries and rate-limit waits included,
/// end [`DEADLINE_MARGIN`] before the invocation's deadline: a GitHub that keeps failing makes
/// the step fail with a retryable error the state machine retries, instead of a function
/// killed by its timeout (`Lambda.ClientExecutionTimeoutException`, retried with the step's
/// work lost).
pub async fn handle(
    flow: &JobFlow,
    step: Step,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let deadline = github_deadline(event.context.deadline);
    runway_github::with_call_deadline(deadline, flow.run(step, event.payload))
        .await
        .map_err(diagnostic)
}

/// The whole life of a step's Lambda: logs, settings, the job flow, then one [`handle`] per
/// invocation. A setup failure is returned (the runtime reports it as an init error).
pub async fn run_step(step: Step) -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let settings = LambdaSettings::from_env()?;
    let aws = load_aws_config().await;
    let flow = build_flow(&settings, &aws).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let flow = flow.clone();
        async move { handle(&flow, step, event).await }
    }))
    .await
}
