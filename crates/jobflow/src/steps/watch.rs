//! Watch: parks a task token until the job or the runner changes, and completes it at once
//! when the awaited change already happened.

use runway_store::{JobWatch, RunnerName, RunnerState, RunnerWait, RunnerWatch};
use serde_json::{Value, json};

use crate::error::StepError;
use crate::flow::JobFlow;
use crate::input::{WatchInput, WatchKind, decode};
use crate::step::Step;
use crate::steps::{RECORD_TTL, read_job, runner_scope, wake};

pub(crate) async fn run(flow: &JobFlow, input: Value) -> Result<Value, StepError> {
    let input: WatchInput = decode(Step::Watch, input)?;
    match input.watch {
        WatchKind::JobCompleted => watch_job(flow, &input).await,
        WatchKind::RunnerBusy => watch_runner(flow, &input, RunnerWait::Busy).await,
        WatchKind::RunnerGone => watch_runner(flow, &input, RunnerWait::Gone).await,
    }
}

async fn watch_job(flow: &JobFlow, input: &WatchInput) -> Result<Value, StepError> {
    let deps = flow.deps();
    let common = &input.common;
    let job_id = common.job_id();
    let now = deps.clock.now();
    let watch = JobWatch {
        job_id,
        execution: common.execution.clone(),
        task_token: input.task_token.clone(),
        expires_at: now + RECORD_TTL,
    };
    if input.rerun {
        // Never over a later wait's watch: this task may have ended since.
        deps.store
            .restore_job_watch(&watch)
            .await
            .map_err(|e| StepError::store("put the job watch back", e))?;
    } else {
        deps.store
            .watch_job(&watch)
            .await
            .map_err(|e| StepError::store("register the job watch", e))?;
    }

    // Registered first, checked second: an event that came before the watch is not lost.
    let job = read_job(flow, common)
        .await
        .map_err(|e| StepError::github(&format!("read job {job_id}"), e))?;
    if job.status != "completed" {
        return Ok(json!({
            "watching": watch_name(input.watch),
            "completed_now": false,
            "reason": format!("waiting for job {job_id} ({})", job.status),
        }));
    }
    let output = json!({
        "status": "completed",
        "conclusion": job.conclusion,
        "runner_name": job.runner_name,
        "reason": format!(
            "job {job_id} had already completed ({})",
            job.conclusion.as_deref().unwrap_or("no conclusion")
        ),
    });
    // Whoever takes the watch completes it: the webhook may have been first. Only this step's
    // own watch: on AWS the webhook can complete this task while this call still runs, and
    // the job's next step may already have registered a watch of its own.
    let taken = deps
        .store
        .take_job_watch_of(job_id, &input.task_token)
        .await
        .map_err(|e| StepError::store("take the job watch back", e))?;
    let completed_now = if taken {
        wake(flow, input.task_token.as_str(), output.clone())
            .await
            .map_err(|e| StepError::transient(format!("could not complete the job watch: {e}")))?
    } else {
        false
    };
    Ok(json!({
        "watching": watch_name(input.watch),
        "completed_now": completed_now,
        "reason": output["reason"].clone(),
    }))
}

/// `wait` is what `input.watch` waits for; it is recorded with the token, so an event wakes
/// this wait only if it answers it.
async fn watch_runner(
    flow: &JobFlow,
    input: &WatchInput,
    wait: RunnerWait,
) -> Result<Value, StepError> {
    let deps = flow.deps();
    let runner = input.runner.as_ref().ok_or_else(|| {
        StepError::bad_input(format!(
            "the watch step needs `runner` (the provision output) to watch {}",
            watch_name(input.watch)
        ))
    })?;
    let name = &runner.runner_name;
    let registered = if input.rerun {
        // Never over a later wait's token: this task may have ended since. Not put back, it
        // is not this task's to complete (unless the runner has no record at all).
        let watch = RunnerWatch::new(input.task_token.clone(), wait);
        deps.store
            .restore_runner_token(name, &watch)
            .await
            .map_err(|e| StepError::store("put the runner watch back", e))?
            || deps
                .store
                .get_runner(name)
                .await
                .map_err(|e| StepError::store("read the runner record", e))?
                .is_some()
    } else {
        deps.store
            .set_runner_token(name, &input.task_token, wait)
            .await
            .map_err(|e| StepError::store("register the runner watch", e))?
    };
    let record = deps
        .store
        .get_runner(name)
        .await
        .map_err(|e| StepError::store("read the runner record", e))?;
    let state = record.map(|r| r.state).unwrap_or(RunnerState::Gone);
    let mut wake_output = match (input.watch, state) {
        (_, RunnerState::Gone) => Some(json!({
            "status": "gone",
            "reason": format!("runner {name} is already gone"),
        })),
        (WatchKind::RunnerBusy, RunnerState::Busy { job_id }) => Some(json!({
            "status": "busy",
            "job_id": job_id,
            "reason": format!("runner {name} already runs job {job_id}"),
        })),
        _ => None,
    };
    // A re-run after a timeout: the webhook that would have ended this wait may be lost, so
    // GitHub is asked (only then: the first run of every wait would double the API calls).
    if wake_output.is_none() && input.watch == WatchKind::RunnerGone && input.recheck > 0 {
        wake_output = runner_left_github(flow, input, name).await?;
    }
    let Some(output) = wake_output else {
        return Ok(json!({
            "watching": watch_name(input.watch),
            "completed_now": false,
            "reason": format!("waiting for runner {name} ({})", state.as_key()),
        }));
    };
    // As for jobs, only this step's own token: waking the runner's next wait (runner gone)
    // with this one's answer (runner busy) would tear down a runner in the middle of a job.
    let ours = if registered {
        deps.store
            .take_runner_token_of(name, &input.task_token)
            .await
            .map_err(|e| StepError::store("take the runner watch back", e))?
    } else {
        // No record to hold the token: nobody else can complete it.
        true
    };
    let completed_now = if ours {
        wake(flow, input.task_token.as_str(), output.clone())
            .await
            .map_err(|e| {
                StepError::transient(format!("could not complete the runner watch: {e}"))
            })?
    } else {
        false
    };
    Ok(json!({
        "watching": watch_name(input.watch),
        "completed_now": completed_now,
        "reason": output["reason"].clone(),
    }))
}

/// The wake output when GitHub no longer lists the runner, or lists it offline (its host is
/// lost): either way it is done with its job. A runner GitHub still shows online is waited for.
/// Teardown removes it from GitHub first, so an offline runner that still holds a job is not
/// terminated.
async fn runner_left_github(
    flow: &JobFlow,
    input: &WatchInput,
    name: &RunnerName,
) -> Result<Option<Value>, StepError> {
    let scope = runner_scope(flow, &input.common);
    let listed = flow
        .deps()
        .github
        .list_runners(&scope, Some(name.as_str()))
        .await
        .map_err(|e| StepError::github(&format!("look up runner {name} on GitHub"), e))?;
    let recheck = input.recheck;
    let mut output = match listed.iter().find(|runner| runner.name == name.as_str()) {
        None => json!({
            "status": "gone",
            "reason": format!(
                "runner {name} is no longer registered with GitHub (found on re-check {recheck}; \
                 the webhook saying its job completed never came)"
            ),
        }),
        Some(runner) if runner.status != "online" => json!({
            "status": "gone",
            "reason": format!(
                "runner {name} is {} on GitHub (found on re-check {recheck}); its host is lost \
                 or its runner exited",
                runner.status
            ),
        }),
        Some(_) => return Ok(None),
    };
    // The lost webhook would have named the job the runner ran: if it was this execution's
    // own, the job is done too and nothing more needs following.
    let job_id = input.common.job_id();
    let job = read_job(flow, &input.common)
        .await
        .map_err(|e| StepError::github(&format!("read job {job_id}"), e))?;
    if job.status == "completed" && job.runner_name.as_deref() == Some(name.as_str()) {
        output["job_id"] = json!(job_id.0);
    }
    Ok(Some(output))
}

fn watch_name(kind: WatchKind) -> &'static str {
    match kind {
        WatchKind::JobCompleted => "job-completed",
        WatchKind::RunnerBusy => "runner-busy",
        WatchKind::RunnerGone => "runner-gone",
    }
}
