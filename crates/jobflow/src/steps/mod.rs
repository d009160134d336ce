//! One module per step of the job state machine.

pub(crate) mod admit;
pub(crate) mod check_job;
pub(crate) mod check_runner;
pub(crate) mod provision;
pub(crate) mod release;
pub(crate) mod route;
pub(crate) mod teardown;
pub(crate) mod watch;

use chrono::{DateTime, Utc};
use runway_github::{GitHubError, RunnerScope, WorkflowJob};
use runway_policy_host::{Instant, Job, Pool};
use serde_json::Value;
use tracing::{Instrument, info, info_span, warn};

use crate::callbacks::CallbackError;
use crate::config::{PoolConfig, RunnerScopeLevel};
use crate::error::StepError;
use crate::flow::JobFlow;
use crate::input::Common;
use crate::step::Step;

// The job flow's entry point lives with the steps it dispatches to, so the flow's own
// module (its dependencies and configuration) does not depend on them.
impl JobFlow {
    /// Runs one step on the task's input (the state's Parameters, or the Payload for
    /// `lambda:invoke`).
    pub async fn run(&self, step: Step, input: Value) -> Result<Value, StepError> {
        let execution = input
            .get("execution")
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned();
        let span = info_span!("step", step = step.name(), execution = %execution);
        async move {
            let result = match step {
                Step::Route => route::run(self, input).await,
                Step::Admit => admit::run(self, input).await,
                Step::WaitForSlot => admit::wait_for_slot(self, input).await,
                Step::Provision => provision::run(self, input).await,
                Step::Watch => watch::run(self, input).await,
                Step::CheckRunner => check_runner::run(self, input).await,
                Step::Teardown => teardown::run(self, input).await,
                Step::Release => release::run(self, input).await,
            };
            match &result {
                Ok(output) => {
                    let reason = output
                        .get("reason")
                        .or_else(|| output.get("summary"))
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("");
                    info!(reason, "step done")
                }
                Err(error) => warn!(error = %error.error, cause = %error.cause, "step failed"),
            }
            result
        }
        .instrument(span)
        .await
    }
}

/// How long runner records and job watches outlive their creation: longer than the job
/// machine's own 10-day timeout, so nothing an execution needs expires under it.
pub(crate) const RECORD_TTL: chrono::Duration = chrono::Duration::days(11);

/// A parked waiter outlives its re-check by this margin, so the store never drops an entry
/// whose execution is still about to come back.
pub(crate) const WAITER_MARGIN: chrono::Duration = chrono::Duration::seconds(60);

/// The execution's job as GitHub has it now.
pub(crate) async fn read_job(flow: &JobFlow, common: &Common) -> Result<WorkflowJob, GitHubError> {
    let repository = &common.input.repository;
    flow.deps()
        .github
        .workflow_job(&repository.owner, &repository.name, common.input.job.id)
        .await
}

/// Where this job's runners register.
pub(crate) fn runner_scope(flow: &JobFlow, common: &Common) -> RunnerScope {
    let repository = &common.input.repository;
    match &flow.config().github.scope {
        RunnerScopeLevel::Repository => {
            RunnerScope::repository(repository.owner.as_str(), repository.name.as_str())
        }
        RunnerScopeLevel::Organization => match &common.input.organization {
            Some(org) => RunnerScope::organization(org.as_str()),
            None => {
                warn!(
                    repository = %repository.full_name,
                    "organisation scope configured but the repository belongs to a user; registering at the repository"
                );
                RunnerScope::repository(repository.owner.as_str(), repository.name.as_str())
            }
        },
        RunnerScopeLevel::Enterprise(slug) => RunnerScope::enterprise(slug.as_str()),
    }
}

/// The job as the policies see it.
pub(crate) fn policy_job(common: &Common, now: DateTime<Utc>) -> Job {
    let input = &common.input;
    let event_time = instant(queued_at(common).unwrap_or(now));
    Job {
        job_id: input.job.id,
        run_id: input.job.run_id,
        run_attempt: input.job.run_attempt,
        repository: input.repository.full_name.clone(),
        owner: input.repository.owner.clone(),
        labels: input.job.labels.clone(),
        workflow_name: input.job.workflow_name.clone().unwrap_or_default(),
        job_name: input.job.name.clone(),
        branch: input.job.head_branch.clone(),
        event_time,
        installation_id: input.installation_id.unwrap_or(0),
        ..Job::default()
    }
}

/// A pool as the policies see it.
pub(crate) fn policy_pool(pool: &PoolConfig) -> Pool {
    Pool {
        name: pool.name.clone(),
        labels: pool.labels.clone(),
        instance_types: pool.instance_types.clone(),
        image: pool.image.clone(),
        disk_gib: pool.disk_gib,
        market: pool.market,
        max_running: pool.max_running,
        max_booting: pool.max_running,
        params: pool
            .params
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
    }
    .with_allow_lists(&runway_policy_host::AllowLists {
        instance_types: pool.allowed_instance_types.clone(),
        images: pool.allowed_images.clone(),
        max_disk_gib: pool.max_disk_gib,
        markets: pool.allowed_markets.clone(),
    })
}

pub(crate) fn instant(now: DateTime<Utc>) -> Instant {
    Instant {
        seconds: now.timestamp(),
        nanoseconds: now.timestamp_subsec_nanos(),
    }
}

/// Completes a waiting task. `Ok(false)`: the token was no longer waiting (skipped).
pub(crate) async fn wake(
    flow: &JobFlow,
    token: &str,
    output: Value,
) -> Result<bool, CallbackError> {
    match flow.deps().callbacks.send_task_success(token, output).await {
        Ok(()) => Ok(true),
        Err(CallbackError::TokenGone(reason)) => {
            tracing::info!(%reason, "a waiting task was already gone; skipped");
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// Millisecond RFC 3339, the form stored and shown.
pub(crate) fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// When GitHub queued the job (its `created_at`), if the input says.
pub(crate) fn queued_at(common: &Common) -> Option<DateTime<Utc>> {
    let text = common.input.job.created_at.as_deref()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// Records a measurement; recording never fails a step.
pub(crate) fn measure(flow: &JobFlow, sample: runway_metrics::Sample) {
    flow.deps().metrics.record(sample);
}

/// How long a policy (`router`, `throttle`) took to decide, and whether its fallback decided
/// instead.
pub(crate) fn record_policy(
    flow: &JobFlow,
    policy: &str,
    took: std::time::Duration,
    fallback: bool,
    now: DateTime<Utc>,
) {
    use runway_metrics::{Dimension, Metric, Sample};
    let millis = took.as_secs_f64() * 1000.0;
    measure(
        flow,
        Sample::new(Metric::PolicyDecisionMilliseconds, millis, now).by(Dimension::Policy, policy),
    );
    if fallback {
        measure(
            flow,
            Sample::count(Metric::PolicyFallbacks, now).by(Dimension::Policy, policy),
        );
    }
}
