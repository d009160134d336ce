//! Is the job still waiting for a runner? Asked by the admit step when it admits the job, and
//! by teardown when the execution's runner left without running it.

use runway_github::GitHubError;
use serde_json::{Value, json};

use crate::error::{JOB_NOT_FOUND, StepError};
use crate::flow::JobFlow;
use crate::input::Common;
use crate::steps::read_job;

/// When the job is read, which decides what its state means for the execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asked {
    /// Just admitted, before a runner is launched for it.
    OnAdmission,
    /// After the execution's runner left without running it.
    AfterRunnerLeft,
}

/// The job as GitHub has it: `queued`, `in_progress`, `completed` (before any runner took it)
/// or `completed-elsewhere`, with a sentence saying what that means for the execution.
pub(crate) async fn job_status(
    flow: &JobFlow,
    common: &Common,
    asked: Asked,
) -> Result<Value, StepError> {
    let repository = &common.input.repository;
    let job_id = common.input.job.id;
    let job = read_job(flow, common).await.map_err(|error| match error {
        GitHubError::NotFound { .. } => StepError::new(
            JOB_NOT_FOUND,
            format!(
                "job {job_id} of {} is not found on GitHub; the GitHub App may not be \
                     installed on that repository (or lacks the actions permission)",
                repository.full_name
            ),
        ),
        other => StepError::github(&format!("read job {job_id}"), other),
    })?;
    // The runner that ran the job, if one did (GitHub reports none, or an empty name, for a
    // job cancelled before any runner took it).
    let ran_on = job.runner_name.as_deref().filter(|name| !name.is_empty());
    let conclusion = job.conclusion.as_deref().unwrap_or("unknown");
    let (status, reason) = match (job.status.as_str(), ran_on) {
        ("completed", None) => (
            "completed",
            format!(
                "job {job_id} ended ({conclusion}) before any runner took it; it needs no runner"
            ),
        ),
        ("completed", Some(runner)) => (
            "completed-elsewhere",
            match asked {
                // The job ran on a runner launched for another job of the pool, which now
                // waits for a runner in its turn: skipping this launch would strand that job.
                Asked::OnAdmission => format!(
                    "job {job_id} already ran on {runner} ({conclusion}); a runner is launched \
                     anyway, for the job whose runner it took"
                ),
                Asked::AfterRunnerLeft => {
                    format!("job {job_id} ran on {runner} ({conclusion}); it needs no runner")
                }
            },
        ),
        ("in_progress", _) => {
            let runner = ran_on.unwrap_or("another runner");
            (
                "in_progress",
                match asked {
                    Asked::OnAdmission => format!(
                        "job {job_id} already runs on {runner}; a runner is launched anyway, \
                         for the next queued job of the pool"
                    ),
                    Asked::AfterRunnerLeft => {
                        format!("job {job_id} runs on {runner}; it needs no runner")
                    }
                },
            )
        }
        (other, _) => (
            "queued",
            format!("job {job_id} is {other} and needs a runner"),
        ),
    };
    let mut output = json!({"status": status, "reason": reason});
    if job.status == "completed" {
        output["conclusion"] = json!(conclusion);
    }
    if let Some(runner) = ran_on {
        output["runner_name"] = json!(runner);
    }
    Ok(output)
}

/// Whether a [`job_status`] says the job ended before any runner took it.
pub(crate) fn needs_no_runner(status: &Value) -> bool {
    status["status"] == "completed"
}
