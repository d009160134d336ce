//! The reaper's wiring for a deployed stack: the same settings as the step Lambdas, plus the job state
//! machine whose executions own runners and slots, and optionally the reaper's own settings.
//!
//! - `RUNWAY_JOB_STATE_MACHINE_ARN` (required): the job state machine; execution ARNs for
//!   `states:DescribeExecution` are built from it, and `lost-jobs` starts its executions
//!   (`states:StartExecution`) for queued jobs whose webhook was lost.
//! - `RUNWAY_RUNNER_LABEL`, `RUNWAY_ALLOWED_OWNERS`, `RUNWAY_ALLOWED_REPOSITORIES` (optional):
//!   the webhook intake's job filter, read the same way, so `lost-jobs` starts only jobs the
//!   webhook would have started.
//! - `RUNWAY_REAPER_CONFIG` (optional): the reaper's settings as JSON (see
//!   [`runway_reaper::ReaperConfig`]: grace period, per-sweep bounds, GitHub request budget
//!   and rate-limit reserve, GitHub scopes to search for offline runners, repositories to
//!   check for lost jobs, retries of transiently failed jobs). Unset: the defaults, only an
//!   enterprise named by the configuration document's `github.scope` is searched for offline
//!   runners, and the repositories the intake allows (or, with no allow-list, the App
//!   installation's recently active ones) are checked for lost jobs.

use std::sync::Arc;

use aws_config::SdkConfig;
use runway_clock::SystemClock;
use runway_github::GitHub;
use runway_jobflow::{Deps, JobFlow, SfnCallbacks};
use runway_reaper::{Reaper, ReaperConfig, ReaperDeps, SfnExecutions};
use runway_store::DynamoStore;
use runway_webhook::{JobFilter, SfnExecutionStarter};
use tracing::info;

use crate::settings::{StackSettings, setting};
use crate::{SetupError, load_document};

/// The job state machine's ARN (required by the reap Lambda).
pub const JOB_STATE_MACHINE_ARN_ENV: &str = "RUNWAY_JOB_STATE_MACHINE_ARN";
/// The reaper's settings as JSON (optional).
pub const REAPER_CONFIG_ENV: &str = "RUNWAY_REAPER_CONFIG";

/// What the reap Lambda reads on top of [`StackSettings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaperSettings {
    pub job_state_machine_arn: String,
    pub config: ReaperConfig,
    /// The webhook intake's filter, from the same variables.
    pub job_filter: JobFilter,
}

impl ReaperSettings {
    pub fn from_env() -> Result<ReaperSettings, SetupError> {
        ReaperSettings::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Empty values count as unset, as for [`StackSettings::from_lookup`].
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ReaperSettings, SetupError> {
        let get = |name: &str| setting(lookup, name);
        let job_state_machine_arn = get(JOB_STATE_MACHINE_ARN_ENV).ok_or_else(|| {
            SetupError::Settings(format!(
                "{JOB_STATE_MACHINE_ARN_ENV} is not set: set it to the ARN of runway's job state \
                 machine, whose executions own the runners and slots the reaper checks"
            ))
        })?;
        if runway_reaper::execution_arn(&job_state_machine_arn, "probe").is_none() {
            return Err(SetupError::Settings(format!(
                "{JOB_STATE_MACHINE_ARN_ENV}={job_state_machine_arn:?} is not a state machine \
                 ARN: give arn:aws:states:REGION:ACCOUNT:stateMachine:NAME"
            )));
        }
        let config = match get(REAPER_CONFIG_ENV) {
            Some(text) => ReaperConfig::from_json(&text)
                .map_err(|error| SetupError::Config(format!("{REAPER_CONFIG_ENV}: {error}")))?,
            None => ReaperConfig::default(),
        };
        Ok(ReaperSettings {
            job_state_machine_arn,
            config,
            job_filter: JobFilter::from_lookup(lookup),
        })
    }
}

/// Builds the reaper on the AWS services of `aws`: the DynamoDB store, one EC2 provider per
/// pool, GitHub over REST, the job flow (for its release step) and Step Functions.
pub async fn build_reaper(
    settings: &StackSettings,
    reaper: &ReaperSettings,
    aws: &SdkConfig,
) -> Result<Reaper, SetupError> {
    let clock = SystemClock::shared();
    let ssm = aws_sdk_ssm::Client::new(aws);
    let document = load_document(settings, &ssm).await?;
    let store: Arc<dyn runway_store::Store> = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(aws),
        settings.table.clone(),
        clock.clone(),
    ));
    let github: Arc<dyn GitHub> = crate::wiring::github(settings, aws, clock.clone()).await?;
    let providers = crate::wiring::runner_providers(settings, &document, aws, &ssm, &clock)?;
    let sfn = aws_sdk_sfn::Client::new(aws);
    // Releasing a slot needs no policy: the job flow is built without them.
    let flow = JobFlow::new(
        Deps {
            store: store.clone(),
            github: github.clone(),
            providers: providers.clone(),
            router: None,
            throttle: None,
            callbacks: Arc::new(SfnCallbacks::new(sfn.clone())),
            clock: clock.clone(),
            metrics: Arc::new(runway_jobflow::metrics::Emf::stdout(
                runway_jobflow::metrics::namespace(&settings.stack),
            )),
        },
        document.flow,
    )
    .map_err(|error| SetupError::Config(error.to_string()))?;
    let executions = SfnExecutions::new(sfn.clone(), &reaper.job_state_machine_arn)
        .map_err(|error| SetupError::Settings(error.to_string()))?;
    let starter = SfnExecutionStarter::new(sfn, reaper.job_state_machine_arn.clone());
    let built = Reaper::new(
        ReaperDeps {
            flow,
            store,
            github,
            providers,
            executions: Arc::new(executions),
            starter: Arc::new(starter),
            job_filter: reaper.job_filter.clone(),
            // An App tells each repository's installation; a token knows of none.
            installation_id: None,
            clock,
        },
        reaper.config.clone(),
    )
    .map_err(|error| SetupError::Config(error.to_string()))?;
    info!(
        table = %settings.table,
        job_state_machine = %reaper.job_state_machine_arn,
        scopes = built.config().github_scopes.len(),
        repositories = built.config().repositories.len(),
        "reaper ready"
    );
    Ok(built)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<ReaperSettings, SetupError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ReaperSettings::from_lookup(&|name| env.get(name).cloned())
    }

    const MACHINE: &str = "arn:aws:states:eu-west-1:123456789012:stateMachine:runway-job";

    #[test]
    fn the_job_machine_is_required_and_must_be_an_arn() {
        let error = settings(&[]).unwrap_err().to_string();
        assert!(error.contains(JOB_STATE_MACHINE_ARN_ENV), "{error}");
        let error = settings(&[(JOB_STATE_MACHINE_ARN_ENV, "runway-job")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a state machine ARN"), "{error}");
        let read = settings(&[(JOB_STATE_MACHINE_ARN_ENV, MACHINE)]).unwrap();
        assert_eq!(read.job_state_machine_arn, MACHINE);
        assert_eq!(read.config, ReaperConfig::default());
    }

    #[test]
    fn the_reaper_config_is_read_and_checked() {
        let read = settings(&[
            (JOB_STATE_MACHINE_ARN_ENV, MACHINE),
            (
                REAPER_CONFIG_ENV,
                r#"{"github_scopes": [{"level": "organization", "org": "octo-org"}]}"#,
            ),
        ])
        .unwrap();
        assert_eq!(read.config.github_scopes.len(), 1);
        assert_eq!(read.job_filter, JobFilter::default());
        let read = settings(&[
            (JOB_STATE_MACHINE_ARN_ENV, MACHINE),
            ("RUNWAY_ALLOWED_OWNERS", "octo-org"),
        ])
        .unwrap();
        assert_eq!(
            read.job_filter,
            JobFilter::default().allow_owners(["octo-org"]),
            "the webhook intake's filter"
        );
        let error = settings(&[
            (JOB_STATE_MACHINE_ARN_ENV, MACHINE),
            (REAPER_CONFIG_ENV, r#"{"max_actions_per_sweep": 0}"#),
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains(REAPER_CONFIG_ENV), "{error}");
    }
}
