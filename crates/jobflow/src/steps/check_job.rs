//! Check job: is the job still waiting for a runner?

use runway_github::GitHubError;
use serde_json::{Value, json};

use crate::error::{JOB_NOT_FOUND, StepError};
use crate::flow::JobFlow;
use crate::input::{CheckJobInput, decode};
use crate::step::Step;

pub(crate) async fn run(flow: &JobFlow, input: Value) -> Result<Value, StepError> {
    let input: CheckJobInput = decode(Step::CheckJob, input)?;
    let repository = &input.common.input.repository;
    let job_id = input.common.input.job.id;
    let job = flow
        .deps()
        .github
        .workflow_job(&repository.owner, &repository.name, job_id)
        .await
        .map_err(|error| match error {
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
    let output = match (job.status.as_str(), ran_on) {
        ("completed", None) => {
            let conclusion = job.conclusion.clone().unwrap_or_else(|| "unknown".into());
            json!({
                "status": "completed",
                "conclusion": conclusion,
                "reason": format!(
                    "job {job_id} ended ({conclusion}) before any runner took it; it needs no runner"
                ),
            })
        }
        // The job ran on a runner launched for another job of the pool, which now waits for
        // a runner in its turn: skipping this launch would strand that job.
        ("completed", Some(runner)) => {
            let conclusion = job.conclusion.clone().unwrap_or_else(|| "unknown".into());
            json!({
                "status": "completed-elsewhere",
                "conclusion": conclusion,
                "runner_name": runner,
                "reason": format!(
                    "job {job_id} already ran on {runner} ({conclusion}); a runner is launched \
                     anyway, for the job whose runner it took"
                ),
            })
        }
        ("in_progress", _) => json!({
            "status": "in_progress",
            "runner_name": job.runner_name,
            "reason": format!(
                "job {job_id} already runs on {}; a runner is launched anyway, for the next queued job of the pool",
                job.runner_name.as_deref().unwrap_or("another runner")
            ),
        }),
        (other, _) => json!({
            "status": "queued",
            "reason": format!("job {job_id} is {other} and needs a runner"),
        }),
    };
    Ok(output)
}
