//! The documents the state machine passes to the steps, and the outputs steps pass to each
//! other through it.

use chrono::{DateTime, Utc};
use runway_providers::LaunchOverrides;
use runway_store::{ExecutionKey, JobId, OrgName, PoolName, RepoName, RunnerName, TaskToken};
use runway_webhook::JobExecutionInput;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::StepError;
use crate::step::Step;

/// Decodes a step's input, or says clearly what is wrong with it.
pub(crate) fn decode<T: DeserializeOwned>(step: Step, input: Value) -> Result<T, StepError> {
    serde_json::from_value(input).map_err(|error| {
        StepError::bad_input(format!(
            "the {step} step's input is not usable ({error}); it expects the Parameters that \
             statemachines/job.asl.json passes to it"
        ))
    })
}

/// `execution` and `input`, passed to every step.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Common {
    pub execution: ExecutionKey,
    pub input: JobExecutionInput,
}

impl Common {
    pub fn job_id(&self) -> JobId {
        JobId(self.input.job.id)
    }
}

/// The route step's output, read back by later steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Route {
    pub decision: String,
    pub pool: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub overrides: LaunchOverrides,
    pub reason: String,
    #[serde(default)]
    pub fallback: bool,
    pub boot_timeout_seconds: u32,
    pub idle_timeout_seconds: u32,
    pub recheck_after_seconds: u32,
    pub org: String,
    pub repo: String,
    pub owner: String,
    pub job_id: u64,
}

/// The names a routed job is counted under.
#[derive(Debug, Clone)]
pub(crate) struct Routed {
    pub pool: PoolName,
    pub org: OrgName,
    pub repo: RepoName,
}

impl Route {
    pub fn routed(&self, step: Step) -> Result<Routed, StepError> {
        let pool = self.pool.as_deref().ok_or_else(|| {
            StepError::bad_input(format!(
                "the {step} step got a route without a pool (decision {:?}); only jobs routed \
                 to a pool reach it",
                self.decision
            ))
        })?;
        let name_error =
            |error: runway_store::InvalidName| StepError::bad_input(format!("{step}: {error}"));
        Ok(Routed {
            pool: PoolName::new(pool).map_err(name_error)?,
            org: OrgName::new(self.org.as_str()).map_err(name_error)?,
            repo: RepoName::new(self.repo.as_str()).map_err(name_error)?,
        })
    }
}

/// The admit step's output, read back by wait-for-slot and a later admit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Admission {
    pub decision: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub priority: i32,
    pub enqueued_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub recheck_after_seconds: Option<u32>,
    /// `policy`, `ceiling` or `queue` for a job that waits.
    #[serde(default)]
    pub waiting_for: Option<String>,
    /// How many times the job has been sent to the queue so far.
    #[serde(default)]
    pub waits: u32,
}

/// The provision step's output, read back by watch, check-runner, teardown and provision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Runner {
    pub runner_name: RunnerName,
    #[serde(default)]
    pub runner_id: Option<u64>,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub instance_id: Option<String>,
    #[serde(default)]
    pub attempt: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RouteInput {
    #[serde(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AdmitInput {
    #[serde(flatten)]
    pub common: Common,
    pub route: Route,
    /// The previous admission when the job comes back from the queue (absent or `null` the
    /// first time).
    #[serde(default)]
    pub admission: Option<Value>,
    /// The state so far (`"state.$": "$"`), whose `admission` is the previous one: the job
    /// machine passes the whole state because a path to a field that is not there yet (the
    /// first time) would fail the task.
    #[serde(default)]
    pub state: Option<Value>,
}

impl AdmitInput {
    /// The admission a job back from the queue had, from `admission` or the state's.
    pub fn previous_admission(&self) -> Option<Value> {
        self.admission
            .clone()
            .or_else(|| {
                self.state
                    .as_ref()
                    .and_then(|state| state.get("admission").cloned())
            })
            .filter(|admission| !admission.is_null())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WaitInput {
    #[serde(flatten)]
    pub common: Common,
    pub route: Route,
    pub admission: Admission,
    pub task_token: TaskToken,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ProvisionInput {
    #[serde(flatten)]
    pub common: Common,
    pub route: Route,
    #[serde(default)]
    pub replaces: Option<Runner>,
    /// Why `replaces` is replaced.
    #[serde(default)]
    pub because: ReplaceReason,
}

/// Why a runner is replaced by another launch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ReplaceReason {
    /// It never registered with GitHub within the pool's boot timeout.
    #[default]
    NeverRegistered,
    /// It ran another job of the pool and left while this execution's job is still queued.
    RanAnotherJob,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum WatchKind {
    JobCompleted,
    RunnerBusy,
    RunnerGone,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WatchInput {
    #[serde(flatten)]
    pub common: Common,
    pub watch: WatchKind,
    pub task_token: TaskToken,
    #[serde(default)]
    pub runner: Option<Runner>,
    /// How many times this wait timed out and was run again (`$$.State.RetryCount`): a re-run
    /// asks GitHub, since the webhook it waits for may have been lost.
    #[serde(default)]
    pub recheck: u32,
    /// Run again by the reaper for a wait that may have missed its event, not by the engine:
    /// the task may have ended meanwhile, so its token is put back only where no later wait
    /// registered its own.
    #[serde(default)]
    pub rerun: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CheckRunnerInput {
    #[serde(flatten)]
    pub common: Common,
    pub runner: Runner,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TeardownInput {
    #[serde(flatten)]
    pub common: Common,
    #[serde(default)]
    pub route: Option<Route>,
    #[serde(default)]
    pub runner: Option<Runner>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub error: Option<Value>,
    /// The runner's last status (a watch's or check-runner's output, or a caught timeout):
    /// whether it ran the execution's own job.
    #[serde(default)]
    pub runner_status: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Outcome {
    /// The job ran on the execution's runner, which is gone.
    Done,
    /// The execution's runner is gone without having run the job, which is followed on.
    RunnerGone,
    /// The job ended before a runner was launched.
    Cancelled,
    Failed,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ReleaseInput {
    #[serde(flatten)]
    pub common: Common,
    pub outcome: Outcome,
    #[serde(default)]
    pub route: Option<Route>,
    #[serde(default)]
    pub error: Option<Value>,
}

impl Step {
    /// Checks that `input` is a payload this step can run on, without running it: the error a
    /// run would fail with ([`StepError`] `Runway.BadInput`) for one it cannot. For tools that
    /// hand-build payloads (sample events, replays).
    pub fn check_input(self, input: &Value) -> Result<(), StepError> {
        let input = input.clone();
        match self {
            Step::Route => decode::<RouteInput>(self, input).map(drop),
            Step::Admit => decode::<AdmitInput>(self, input).map(drop),
            Step::WaitForSlot => decode::<WaitInput>(self, input).map(drop),
            Step::Provision => decode::<ProvisionInput>(self, input).map(drop),
            Step::Watch => decode::<WatchInput>(self, input).map(drop),
            Step::CheckRunner => decode::<CheckRunnerInput>(self, input).map(drop),
            Step::Teardown => decode::<TeardownInput>(self, input).map(drop),
            Step::Release => decode::<ReleaseInput>(self, input).map(drop),
        }
    }
}

#[cfg(test)]
mod check_input_tests {
    use super::*;
    use serde_json::json;

    fn common() -> Value {
        json!({
            "execution": "job-1-r2-a1",
            "input": {
                "job": {"id": 1, "run_id": 3, "run_attempt": 1, "name": "build",
                        "labels": ["self-hosted"]},
                "repository": {"id": 2, "owner": "octo-org", "name": "app",
                               "full_name": "octo-org/app"},
                "organization": "octo-org", "installation_id": null, "delivery_id": null
            }
        })
    }

    #[test]
    fn a_step_takes_what_job_asl_json_passes_and_refuses_what_it_lacks() {
        let mut watch = common();
        watch["watch"] = json!("job-completed");
        watch["task_token"] = json!("token");
        assert_eq!(Step::Watch.check_input(&watch), Ok(()));
        assert_eq!(
            Step::Release.check_input(&common()).map_err(|e| e.error),
            Err("Runway.BadInput".into())
        );
        let error = Step::Watch.check_input(&common()).unwrap_err();
        assert_eq!(error.error, "Runway.BadInput");
        assert!(error.cause.contains("watch step"), "{}", error.cause);
        watch["watch"] = json!("job-vanished");
        assert!(Step::Watch.check_input(&watch).is_err());
        assert!(
            Step::CheckRunner.check_input(&common()).is_err(),
            "no runner"
        );
    }
}
